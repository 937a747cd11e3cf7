"""GL101 missing-gradient-clipping: a training step with no clipping between backward and step."""

from __future__ import annotations

import math
from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.analysis.steps import step_instances
from gradlint.findings import Severity
from gradlint.analysis.steps import optimizer_name
from gradlint.rules._helpers import high_learning_rate, scaler_name, text, trained_model_name
from gradlint.analysis.model import Kind
from gradlint.fix import EnsureImport, FixSpec, InsertBefore, no_fix
from gradlint.rules._helpers import resolved_model, resolved_optimizer, resolved_scaler
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class MissingGradientClipping(Rule):
    code = "GL101"
    name = "missing-gradient-clipping"
    severity = Severity.WARNING
    summary = "A training step runs the optimizer with no gradient clipping between backward() and step()."
    options = (
        Option("fix-max-norm", 1.0, "The `max_norm` of the clip that the fix (and the hint) inserts."),
    )
    fix = "unsafe"
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        max_norm = ctx.options.get("fix-max-norm", 1.0)
        # A threshold that cannot clip (GL104) is never inserted; the hint then shows the default.
        usable = math.isfinite(max_norm) and max_norm > 0
        norm = repr(float(max_norm)) if usable else "1.0"
        for instances in step_instances(model):
            if any(s.clips or s.misplaced_clips or s.is_engine_step for s in instances):
                continue
            step = instances[0]
            backward, optimizer_step = step.backward.event, step.step.event
            params = f"{trained_model_name(step)}.parameters()"
            owner = (backward.receiver or "") if backward.owner else ""
            if "accelerator" in owner.lower():
                hint = (
                    f"Clip with Accelerate, which unscales first: `{owner}.clip_grad_norm_({params}, max_norm={norm})` "
                    "between backward and step (under `if accelerator.sync_gradients:` when accumulating)."
                )
            elif "fabric" in owner.lower():
                hint = (
                    f"Clip with Fabric, which unscales first: `{owner}.clip_gradients({trained_model_name(step)}, "
                    f"{optimizer_name(step)}, max_norm={norm})` between backward and step."
                )
            elif backward.scaled:
                hint = (
                    f"After {text(model, backward)}, call `{scaler_name(backward)}.unscale_({optimizer_name(step)})` "
                    f"then `torch.nn.utils.clip_grad_norm_({params}, max_norm={norm})` before the step."
                )
            else:
                hint = f"Clip between backward and step: `torch.nn.utils.clip_grad_norm_({params}, max_norm={norm})`."
            message = (
                f"{text(model, optimizer_step)} updates the weights with no gradient clipping since "
                f"{text(model, backward)} at line {ctx.line_of(backward.node)}: one bad batch can blow up the weights"
            )
            risk = self._risk(instances, ctx)
            yield Diagnostic(
                optimizer_step.node,
                message + (f"; {risk}, a known cause of exploding gradients" if risk else self._no_risk(instances, ctx)),
                hint=hint,
                related=((backward.node, "gradients are computed here"),),
                severity=Severity.WARNING if risk else Severity.INFO,
                fix_safety="unsafe",
                fix=(None if owner or not usable else self._fix(step, norm))
                or no_fix("unsafe", "the clip cannot be inserted here"),
            )

    @staticmethod
    def _fix(step, max_norm: str) -> FixSpec | None:
        backward, optimizer_step = step.backward.event, step.step.event
        optimizer, model_name = resolved_optimizer(step), resolved_model(step)
        if optimizer is None or model_name is None or step.step.via != step.backward.via or optimizer_step.closure:
            return None
        lines = []
        if backward.scaled:
            scaler = resolved_scaler(backward)
            if scaler is None:
                return None
            if not any(occ.kind is Kind.UNSCALE for occ in step.window):
                lines.append(f"{scaler}.unscale_({optimizer})")
        clip = f"torch.nn.utils.clip_grad_norm_({model_name}.parameters(), max_norm={max_norm})"
        lines.append(clip)
        return FixSpec(
            "unsafe",
            f"insert `{clip}` before the step",
            (InsertBefore(optimizer_step.node, tuple(lines)), EnsureImport("torch")),
        )

    @staticmethod
    def _trained(instances, ctx: RuleContext):
        project = ctx.project
        for step in instances:
            facts = project.facts.trained_by(step, ctx.source.path)
            if facts is not None:
                return facts
        return None

    def _risk(self, instances, ctx: RuleContext) -> str | None:
        """Why exploding gradients are likely here: the trained model, its learning rate, or (when the
        model cannot be resolved) a risk factor in the file or beside it."""
        project = ctx.project
        facts = self._trained(instances, ctx)
        if facts is not None:
            described = facts.describe_risk(project)
            if described:
                return described
        lr = high_learning_rate(instances[0], ctx)
        if lr is not None:
            return lr
        if facts is None:
            sites = project.risk_factors_near(ctx.source.path)
            if sites:
                site = sites[0]
                where = f"line {site.line}" if site.path == ctx.source.path else f"{site.display_path}:{site.line}"
                return f"the project has {site.description} at {where}"
        return None

    def _no_risk(self, instances, ctx: RuleContext) -> str:
        facts = self._trained(instances, ctx)
        if facts is not None:
            return f" (the trained model `{facts.name}` has no recurrent layer and the learning rate is moderate, so this is informational)"
        return " (no recurrent layer or high learning rate found nearby, so this is informational)"
