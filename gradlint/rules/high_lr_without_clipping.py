"""GL401 high-lr-without-clipping: A learning rate above the optimizer's usual range is used in a training step with no gradient clipping."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.analysis.steps import step_instances
from gradlint.findings import Severity
from gradlint.index.optimizers import learning_rate
from gradlint.rules._helpers import origin_text, text, trained_model_name, unclipped
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext
from gradlint.rules._helpers import fmt

ADAPTIVE = {"Adam", "AdamW", "RMSprop", "Adamax", "NAdam", "RAdam"}
FIXED_LIMITS = {"Adagrad": 0.1}


class HighLrWithoutClipping(Rule):
    code = "GL401"
    name = "high-lr-without-clipping"
    severity = Severity.WARNING
    summary = "A learning rate above the optimizer's usual range is used in a training step with no gradient clipping."
    options = (
        Option("sgd-limit", 1.0, "SGD learning rates at or above this are reported."),
        Option("adaptive-limit", 0.01, "Adam/AdamW/RMSprop/Adamax/NAdam/RAdam learning rates at or above this are reported."),
    )
    triggers = ("backward",)

    def limit(self, family: str, ctx: RuleContext) -> float | None:
        if family == "SGD":
            return float(ctx.options.get("sgd-limit", 1.0))
        if family in ADAPTIVE:
            return float(ctx.options.get("adaptive-limit", 0.01))
        return FIXED_LIMITS.get(family)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        path = ctx.source.path
        reported: set[int] = set()
        for instances in step_instances(model):
            if not unclipped(instances):
                continue
            lr = next(
                (found for found in (learning_rate(step, ctx.project, path) for step in instances) if found), None
            )
            if lr is None:
                continue
            family = lr.site.family
            limit = self.limit(family, ctx)
            if limit is None or lr.value < limit:
                continue
            step = instances[0]
            optimizer_step = step.step.event
            here = lr.site.path == path
            node = lr.node if here else optimizer_step.node
            if id(node) in reported:
                continue
            reported.add(id(node))
            origin = f" ({origin_text(lr.origin)})" if lr.origin else ""
            setting = f"`lr={fmt(lr.value)}`{origin}"
            where_set = "" if here else f", set at {ctx.project.where(lr.site.path, lr.node)},"
            step_line = ctx.line_of(optimizer_step.node)
            message = (
                f"{setting}{where_set} is outside {family}'s usual range (< {fmt(limit)}) and the step it drives "
                f"({text(model, optimizer_step)} at line {step_line}) has no gradient clipping: "
                "a few oversized updates can push the weights where the gradients explode, and nothing bounds them."
            )
            params = f"{trained_model_name(step)}.parameters()"
            hint = (
                f"Clip between backward and step (`torch.nn.utils.clip_grad_norm_({params}, max_norm=1.0)`), "
                f"or lower the learning rate below {fmt(limit)}."
            )
            related = ((optimizer_step.node, "the unclipped optimizer step"),) if here else ()
            yield Diagnostic(node, message, hint=hint, related=related)
