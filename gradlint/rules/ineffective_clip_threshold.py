"""GL104 ineffective-clip-threshold: a clipping threshold that never clips, or destroys gradients."""

from __future__ import annotations

import math
from typing import Iterator

from gradlint.analysis.model import FileModel
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
        for clip in model.clip_events:
            if clip.threshold is None:
                continue
            value = model.number(clip.threshold)
            if value is None:
                continue
            name = f"{clip.threshold_name}={value:g}"
            function = f"`{call_name(clip)}`"
            if math.isnan(value):
                problem = f"{name}: every comparison with nan is false, so {function} never clips"
                hint = "Use a finite positive threshold such as 1.0."
            elif math.isinf(value):
                problem = f"{name}: {function} only measures the gradient norm and never clips"
                hint = (
                    "Use a finite threshold (e.g. 1.0) to clip; to only measure the norm, use "
                    "`torch.nn.utils.get_total_norm` and clip separately."
                )
            elif value <= 0:
                effect = "zeroes every gradient" if value == 0 else "flips or zeroes the gradients"
                problem = f"{name}: {function} {effect}, so training stops making progress"
                hint = "Use a positive threshold such as 1.0, or skip the call when clipping is disabled."
            elif value >= limit:
                problem = f"{name}: gradient norms almost never reach this, so {function} never clips"
                hint = f"Use a threshold below {limit:g}; 0.25 to 5 is typical."
            else:
                continue
            yield Diagnostic(clip.threshold, f"ineffective clipping threshold {problem}", hint=hint)
