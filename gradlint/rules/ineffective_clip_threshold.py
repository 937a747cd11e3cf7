"""GL104 ineffective-clip-threshold: a clipping threshold that never clips, or destroys gradients."""

from __future__ import annotations

import math
from typing import Iterator

from gradlint.analysis.model import Event, FileModel, Kind
from gradlint.analysis.steps import contexts, training_steps
from gradlint.findings import Severity
from gradlint.rules._helpers import call_name
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class IneffectiveClipThreshold(Rule):
    code = "GL104"
    name = "ineffective-clip-threshold"
    severity = Severity.WARNING
    summary = "The clipping threshold is inf, nan, zero, negative or so large that clipping never happens."
    options = (
        Option("max-norm-limit", 1000.0, "Thresholds at or above this value are reported as too large to clip."),
    )
    triggers = ("clip_grad",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        limit = ctx.options["max-norm-limit"]
        measuring_only = self._clips_that_only_measure_if_infinite(model)
        for context in contexts(model):
            for occ in context.of_kind(Kind.CLIP):
                if occ.via or occ.event.threshold is None:
                    continue  # a helper's clip is judged in the helper's own context
                value = model.number(occ.event.threshold, context.value_lookup(occ.index))
                if value is None:
                    continue
                if math.isinf(value) and value > 0 and occ.event not in measuring_only:
                    continue  # `clip_grad_norm_(params, float("inf"))` to log the norm is an idiom
                problem = _problem(occ.event, value, limit)
                if problem is not None:
                    message, hint = problem
                    yield Diagnostic(occ.event.threshold, f"ineffective clipping threshold {message}", hint=hint)


    @staticmethod
    def _clips_that_only_measure_if_infinite(model: FileModel) -> list[Event]:
        """Clips that are the only clipping of some training step.

        With max_norm=inf such a clip is the step's only protection and does nothing; elsewhere
        (a logging helper, or beside a real clip) an infinite threshold just measures the norm.
        """
        alone: list[Event] = []
        for step in training_steps(model):
            clips = step.clips
            if len(clips) == 1 and not any(clips[0].event is known for known in alone):
                alone.append(clips[0].event)
        for context in contexts(model):
            # Lightning runs this hook between backward and step: it is the step's clipping.
            if context.function is not None and context.function.name == "configure_gradient_clipping":
                alone.extend(occ.event for occ in context.of_kind(Kind.CLIP))
        return alone


def _problem(clip: Event, value: float, limit: float) -> tuple[str, str] | None:
    """What is wrong with this threshold value, and the fix; None when it is sensible."""
    name = f"{clip.threshold_name}={value:g}"
    function = f"`{call_name(clip)}`"
    if math.isnan(value):
        return (
            f"{name}: every comparison with nan is false, so {function} never clips",
            "Use a finite positive threshold such as 1.0.",
        )
    if math.isinf(value):
        return (
            f"{name}: {function} only measures the gradient norm and never clips, and it is this "
            "training step's only clipping",
            "Use a finite threshold (e.g. 1.0) to clip; to only measure the norm, use "
            "`torch.nn.utils.get_total_norm` and clip separately.",
        )
    if value <= 0:
        effect = "zeroes every gradient" if value == 0 else "flips or zeroes the gradients"
        return (
            f"{name}: {function} {effect}, so training stops making progress",
            "Use a positive threshold such as 1.0, or skip the call when clipping is disabled.",
        )
    if value >= limit:
        return (
            f"{name}: gradient norms almost never reach this, so {function} never clips",
            f"Use a threshold below {limit:g}; 0.25 to 5 is typical.",
        )
    return None
