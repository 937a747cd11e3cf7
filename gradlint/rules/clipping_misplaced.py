"""GL102 clipping-misplaced: clipping after step() or before backward() clips nothing the step uses."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import Occurrence, TrainingStep, contexts, training_steps
from gradlint.findings import Severity
from gradlint.fix import FixSpec, MoveBefore, no_fix
from gradlint.rules._helpers import resolved_optimizer, resolved_scaler, text
from gradlint.rules.base import Diagnostic, Rule, RuleContext

# Clipping forms that need `scaler.unscale_(optimizer)` before them (the others unscale themselves).
_NEEDS_UNSCALE = ("torch", "fsdp")


class ClippingMisplaced(Rule):
    code = "GL102"
    name = "clipping-misplaced"
    severity = Severity.ERROR
    summary = "Gradient clipping runs after step() or before backward(), so it clips nothing the step uses."
    fix = "safe"
    # Clipping may be any project function (`trainer.rescale_gradients()`), so any file with a
    # backward can hold it.
    triggers = ("backward", "clip_grad")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for step in training_steps(model):
            backward, optimizer_step = step.backward.event, step.step.event
            for clip, where in step.misplaced_clips:
                if where == "after":
                    message = (
                        f"{text(model, clip.event)} runs after {text(model, optimizer_step)} at line "
                        f"{ctx.line_of(optimizer_step.node)}: the weights were already updated with unclipped "
                        "gradients, so this clip changes nothing"
                    )
                else:
                    message = (
                        f"{text(model, clip.event)} runs before {text(model, backward)} at line "
                        f"{ctx.line_of(backward.node)}: it clips stale gradients, not the ones "
                        f"{text(model, optimizer_step)} applies"
                    )
                yield Diagnostic(
                    clip.event.node,
                    message,
                    hint="Move the clip between backward() and step().",
                    related=(
                        (backward.node, "gradients are computed here"),
                        (optimizer_step.node, "the weights are updated here"),
                    ),
                    fix_safety="safe",
                    fix=self._fix(step, clip, where) or no_fix("safe", "the clip cannot be moved here"),
                )
        yield from self._lightning_training_step(model)

    @staticmethod
    def _fix(step: TrainingStep, clip: Occurrence, where: str) -> FixSpec | None:
        """Move the clip to just before the step: the one place that is after the backward, after
        any `scaler.unscale_` between them, and inside whatever guards the step (an accumulation
        `if`). With a GradScaler and no unscale there yet, `scaler.unscale_(optimizer)` comes with it."""
        if clip.via != step.step.via:
            return None  # the clip and the step are in different functions
        lines: tuple[str, ...] = ()
        if step.backward.event.scaled and clip.event.form in _NEEDS_UNSCALE:
            if not any(occ.kind is Kind.UNSCALE for occ in step.window):
                if any(occ.kind is Kind.UNSCALE for occ in step.in_scope()):
                    return None  # an unscale outside the window is misplaced too: not a one-line move
                scaler, optimizer = resolved_scaler(step.backward.event), resolved_optimizer(step)
                if scaler is None or optimizer is None or step.backward.via != step.step.via:
                    return None
                lines = (f"{scaler}.unscale_({optimizer})",)
        description = "move the clip to just before the step" + (f" after `{lines[0]}`" if lines else "")
        return FixSpec("safe", description, (
            # Moved later, `norm = clip(...)` could leave a use of `norm` before its binding.
            MoveBefore(clip.event.node, step.step.event.node, lines, bare_call_only=where == "before"),
        ))

    def _lightning_training_step(self, model: FileModel) -> Iterator[Diagnostic]:
        """In automatic optimization Lightning calls backward after `training_step` returns."""
        for context in contexts(model):
            function = context.function
            if function is None or function.name != "training_step" or function.class_name is None:
                continue
            if any(occ.kind is Kind.BACKWARD for occ in context.occurrences):
                continue  # manual optimization: the step analysis covers it
            for occ in context.of_kind(Kind.CLIP):
                if occ.event.form == "assumed":
                    continue
                yield Diagnostic(
                    occ.event.node,
                    f"{text(model, occ.event)} runs inside `training_step`, before Lightning calls backward() "
                    "on the returned loss: it clips the previous batch's gradients (or none), not this one's",
                    hint="Remove it and set `Trainer(gradient_clip_val=1.0)`, or clip in `configure_gradient_clipping`.",
                    fix_safety="unsafe",
                )

