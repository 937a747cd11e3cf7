"""GL401 high-lr-without-clipping: A learning rate above the optimizer's usual range is used in a training step with no gradient clipping."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.analysis.steps import step_instances
from gradlint.findings import Severity
from gradlint.index.optimizers import learning_rate
from gradlint.index.optimizer_clipping import optimizer_clipping
from gradlint.index.probe_data import model_probe_data
from gradlint.rules._helpers import fmt, origin_text, text, trained_model_name, unclipped
from gradlint.rules._training import weight_training
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class HighLrWithoutClipping(Rule):
    code = "GL401"
    name = "high-lr-without-clipping"
    severity = Severity.WARNING
    summary = "A learning rate above the optimizer's usual range is used in a training step with no gradient clipping."
    options = (
        Option("sgd-limit", 1.0, "SGD learning rates above this are reported (GL101 uses it too)."),
        Option(
            "adaptive-limit", 0.01,
            "Adam/AdamW/RMSprop/Adamax/NAdam/RAdam learning rates above this are reported (GL101 uses it too).",
        ),
    )
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        path, project = ctx.source.path, ctx.project
        reported: set = set()
        for instances in step_instances(model):
            if not unclipped(instances):
                continue
            found = weight_training(instances, path, project)
            if found is None:
                continue  # a check in a test, or an optimizer over plain tensors
            clipping = optimizer_clipping(found.site, project)
            if clipping is not None:
                continue  # the optimizer's own step() clips (or does when the configuration says so)
            lr = next((rate for rate in (learning_rate(s, project, path, ctx.options) for s in instances) if rate), None)
            if lr is None or not lr.high:
                continue
            family, limit = lr.site.family, lr.limit
            step = instances[0]
            optimizer_step = step.step.event
            here = lr.site.path == path
            node = lr.node if here else optimizer_step.node
            key = project.where(path, node) if not here else project.where(lr.site.path, lr.node)
            if key in reported:
                continue
            reported.add(key)
            origin = f" ({origin_text(lr.origin)})" if lr.origin else ""
            setting = f"`lr={fmt(lr.value)}`{origin}"
            where_set = "" if here else f", set at {ctx.project.where(lr.site.path, lr.node)},"
            step_line = ctx.line_of(optimizer_step.node)
            message = (
                f"{setting}{where_set} is above {family}'s usual range (<= {fmt(limit)}) and the step it drives "
                f"({text(model, optimizer_step)} at line {step_line}) has no gradient clipping: "
                "a few oversized updates can push the weights where the gradients explode, and nothing bounds them."
            )
            params = f"{trained_model_name(step)}.parameters()"
            hint = (
                f"Clip between backward and step (`torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)`), "
                f"or lower the learning rate to {fmt(limit)} or less."
            )
            related = ((optimizer_step.node, "the unclipped optimizer step"),) if here else ()
            data = model_probe_data(project, found.recurrent, clip_max_norm=1.0)
            yield Diagnostic(node, message, hint=hint, related=related, data=data)
