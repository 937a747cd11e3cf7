"""GL101 missing-gradient-clipping: a training step with no clipping between backward and step."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.analysis.steps import step_instances
from gradlint.findings import Finding, Related, Severity
from gradlint.rules._helpers import optimizer_name, scaler_name, text, trained_model_name
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class MissingGradientClipping(Rule):
    code = "GL101"
    name = "missing-gradient-clipping"
    severity = Severity.WARNING
    summary = "A training step runs the optimizer with no gradient clipping between backward() and step()."
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for instances in step_instances(model):
            if any(s.clips or s.misplaced_clips or s.is_engine_step for s in instances):
                continue
            step = instances[0]
            backward, optimizer_step = step.backward.event, step.step.event
            params = f"{trained_model_name(step)}.parameters()"
            if backward.scaled:
                hint = (
                    f"After {text(model, backward)}, call `{scaler_name(backward)}.unscale_({optimizer_name(step)})` "
                    f"then `torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)` before the step."
                )
            else:
                hint = f"Clip between backward and step: `torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)`."
            yield Diagnostic(
                optimizer_step.node,
                f"{text(model, optimizer_step)} updates the weights with no gradient clipping since "
                f"{text(model, backward)} at line {ctx.line_of(backward.node)}: one bad batch can blow up the weights",
                hint=hint,
                related=((backward.node, "gradients are computed here"),),
                # Provisional: `finalize` decides from the risk factors of the project.
                severity=Severity.INFO,
                fix_safety="unsafe",
            )

    @staticmethod
    def finalize(finding: Finding, project) -> None:
        """Warning when the step's project has a risk factor (recurrent layers, high lr), else info."""
        if finding.severity is not Severity.INFO:
            return
        sites = project.risk_factors_near(finding.path)
        if not sites:
            finding.message += " (no recurrent layer or high learning rate found nearby, so this is informational)"
            return
        site = sites[0]
        finding.severity = Severity.WARNING
        where = f"line {site.line}" if site.path == finding.path else f"{site.display_path}:{site.line}"
        finding.message += f"; the project has {site.description} at {where}, a known cause of exploding gradients"
        if site.path == finding.path:
            finding.related = finding.related + (Related(site.line, 1, f"risk factor: {site.description}"),)
