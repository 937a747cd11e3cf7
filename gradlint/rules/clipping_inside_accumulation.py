"""GL110 clipping-inside-accumulation: clipping every micro-batch instead of the accumulated gradient."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import BlockKind, FileModel, Kind, snippet
from gradlint.analysis.steps import contexts, training_steps
from gradlint.findings import Severity
from gradlint.fix import FixSpec, MoveBefore, no_fix
from gradlint.rules._helpers import text
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class ClippingInsideAccumulation(Rule):
    code = "GL110"
    name = "clipping-inside-accumulation"
    severity = Severity.WARNING
    summary = "With gradient accumulation, clipping runs on every micro-batch instead of once before the optimizer step."
    fix = "unsafe"
    # Clipping may be any project function (`trainer.rescale_gradients()`), so any file with a
    # backward can hold it.
    triggers = ("backward", "clip_grad")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        yield from self._no_sync(model)
        for step in training_steps(model):
            guard = step.accumulation_guard
            optimizer_step = step.step.event
            for clip in step.clips:
                if clip.event.node is optimizer_step.node:
                    continue  # a wrapper optimizer that clips inside its own step
                if guard is not None and not clip.inside(guard):
                    condition = snippet(model.module, guard.test)
                    when = (
                        f"only runs past the early exit `if {condition}:` at line {ctx.line_of(guard.node)}"
                        if guard.early_exit
                        else f"only runs when `{condition}`"
                    )
                    yield Diagnostic(
                        clip.event.node,
                        f"{text(model, clip.event)} runs on every micro-batch, but {text(model, optimizer_step)} "
                        f"(line {ctx.line_of(optimizer_step.node)}) {when}: partial sums are "
                        "clipped, the accumulated gradient is not",
                        hint=(
                            "Move the clip after the early exit, right before the optimizer step."
                            if guard.early_exit
                            else "Move the clip inside that `if`, right before the optimizer step."
                        ),
                        related=((guard.node, "the accumulation boundary"),),
                        fix_safety="unsafe",
                        fix=_move_into_guard(step, clip) or no_fix("unsafe", "the clip cannot be moved into that `if`"),
                    )
                    continue
                accumulate = [b for b in clip.path if b.kind is BlockKind.WITH and b.accumulate]
                if not accumulate or any(b.tests_sync_gradients for b in clip.path):
                    continue
                if accumulate[-1].accumulate_call == "no_sync":
                    continue  # reported by `_no_sync`, with or without a step after it
                yield Diagnostic(
                    clip.event.node,
                    f"{text(model, clip.event)} runs on every micro-batch inside `accumulate()`: partial sums "
                    "are clipped, the accumulated gradient is not",
                    hint="Clip under `if accelerator.sync_gradients:`, which holds once per accumulated step.",
                    related=((accumulate[-1].node, "gradient accumulation starts here"),),
                    fix_safety="unsafe",
                    fix=no_fix("unsafe", "no branch that steps is visible to move the clip into"),
                )

    def _no_sync(self, model: FileModel) -> Iterator[Diagnostic]:
        """A clip inside `with model.no_sync():` (DDP's gradient accumulation) where no optimizer
        step runs: it clips a micro-batch's unsynchronised partial gradient."""
        for context in contexts(model):
            for occ in context.occurrences:
                blocks = [b for b in occ.path if b.kind is BlockKind.WITH and b.accumulate_call == "no_sync"]
                if not blocks or occ.kind not in (Kind.CLIP, Kind.CALL):
                    continue
                clip = context.clip_of(occ)
                if clip is None or clip.event.form == "assumed":
                    continue
                block = blocks[-1]
                if any(other.kind is Kind.STEP and other.inside(block) for other in context.occurrences):
                    continue  # the step is skipped with it: a whole step without gradient sync
                yield Diagnostic(
                    clip.event.node,
                    f"{text(model, clip.event)} runs inside `no_sync()`, on a micro-batch whose gradients "
                    "are neither fully accumulated nor synchronised across ranks: the gradient the step "
                    "applies is not the one clipped",
                    hint="Clip once, after the last micro-batch's backward (outside `no_sync()`), right before the step.",
                    related=((block.node, "gradient synchronisation is skipped here"),),
                    fix_safety="unsafe",
                    fix=no_fix("unsafe", "no step is visible to move the clip before"),
                )


def _move_into_guard(step, clip) -> FixSpec | None:
    """Move the clip into the branch that steps, right before the step: it then clips the
    accumulated gradient once. Unsafe: the clipped gradient, hence training, changes. Only a bare
    clip call moves (`norm = clip(...)` may be read on every micro-batch), and only within one
    function (not into or out of a helper)."""
    if clip.via != step.step.via:
        return None
    return FixSpec("unsafe", "move the clip into the branch that steps, just before the step", (
        MoveBefore(clip.event.node, step.step.event.node, bare_call_only=True),
    ))
