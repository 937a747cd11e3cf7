"""GL102 clipping-misplaced: clipping after step() or before backward() clips nothing the step uses."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import contexts, training_steps
from gradlint.findings import Severity
from gradlint.rules._helpers import text
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class ClippingMisplaced(Rule):
    code = "GL102"
    name = "clipping-misplaced"
    severity = Severity.ERROR
    summary = "Gradient clipping runs after step() or before backward(), so it clips nothing the step uses."
    triggers = ("clip_grad",)

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
                )
        yield from self._lightning_training_step(model)

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
