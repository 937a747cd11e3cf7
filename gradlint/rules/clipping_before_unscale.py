"""GL103 clipping-before-unscale: AMP gradients clipped while still multiplied by the loss scale."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import training_steps
from gradlint.findings import Severity
from gradlint.analysis.steps import optimizer_name
from gradlint.rules._helpers import scaler_name, text
from gradlint.fix import FixSpec, InsertBefore
from gradlint.rules._helpers import resolved_optimizer, resolved_scaler
from gradlint.rules.base import Diagnostic, Rule, RuleContext

# Accelerate, Fabric and Lightning unscale inside their own clipping methods.
_NEEDS_UNSCALE = ("torch", "fsdp")


class ClippingBeforeUnscale(Rule):
    code = "GL103"
    name = "clipping-before-unscale"
    severity = Severity.ERROR
    summary = "With a GradScaler, gradients are clipped before scaler.unscale_(), so the threshold applies to scaled gradients."
    fix = "safe"
    triggers = ("scale(",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for step in training_steps(model):
            backward = step.backward.event
            if not backward.scaled:
                continue
            for clip in step.clips:
                if clip.event.form not in _NEEDS_UNSCALE:
                    continue
                before_clip = step.context.between(step.backward.index, clip.index)
                if any(occ.kind is Kind.UNSCALE for occ in before_clip):
                    continue
                unscale = f"{scaler_name(backward)}.unscale_({optimizer_name(step)})"
                yield Diagnostic(
                    clip.event.node,
                    f"{text(model, clip.event)} clips gradients that {text(model, backward)} at line "
                    f"{ctx.line_of(backward.node)} multiplied by the loss scale, and `{unscale}` is missing: "
                    "the threshold is effectively divided by the scale (often 65536)",
                    hint=f"Call `{unscale}` right before clipping.",
                    related=((backward.node, "scaled gradients are computed here"),),
                    fix_safety="safe",
                    fix=self._fix(step, clip),
                )

    @staticmethod
    def _fix(step, clip) -> FixSpec | None:
        scaler, optimizer = resolved_scaler(step.backward.event), resolved_optimizer(step)
        if scaler is None or optimizer is None or not (clip.via == step.step.via == step.backward.via):
            return None
        unscale = f"{scaler}.unscale_({optimizer})"
        return FixSpec("safe", f"insert `{unscale}` before the clip", (InsertBefore(clip.event.node, (unscale,)),))
