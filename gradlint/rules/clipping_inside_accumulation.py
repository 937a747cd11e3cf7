"""GL110 clipping-inside-accumulation: clipping every micro-batch instead of the accumulated gradient."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import BlockKind, FileModel, snippet
from gradlint.analysis.steps import training_steps
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
    triggers = ("clip_grad",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for step in training_steps(model):
            guard = step.accumulation_guard
            optimizer_step = step.step.event
            for clip in step.clips:
                if guard is not None and not clip.inside(guard):
                    condition = snippet(model.module, guard.test)
                    yield Diagnostic(
                        clip.event.node,
                        f"{text(model, clip.event)} runs on every micro-batch, but {text(model, optimizer_step)} "
                        f"(line {ctx.line_of(optimizer_step.node)}) only runs when `{condition}`: partial sums are "
                        "clipped, the accumulated gradient is not",
                        hint="Move the clip inside that `if`, right before the optimizer step.",
                        related=((guard.node, "the accumulation boundary"),),
                        fix_safety="unsafe",
                        fix=_move_into_guard(step, clip) or no_fix("unsafe", "the clip cannot be moved into that `if`"),
                    )
                    continue
                accumulate = [b for b in clip.path if b.kind is BlockKind.WITH and b.accumulate]
                if accumulate and not any(b.tests_sync_gradients for b in clip.path):
                    yield Diagnostic(
                        clip.event.node,
                        f"{text(model, clip.event)} runs on every micro-batch inside `accumulate()`: partial sums "
                        "are clipped, the accumulated gradient is not",
                        hint="Clip under `if accelerator.sync_gradients:`, which holds once per accumulated step.",
                        related=((accumulate[-1].node, "gradient accumulation starts here"),),
                        fix_safety="unsafe",
                        fix=no_fix("unsafe", "no branch that steps is visible to move the clip into"),
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
