"""GL107 gradients-never-cleared: a training loop that never zeroes the gradients."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import training_steps
from gradlint.findings import Severity
from gradlint.analysis.steps import optimizer_name
from gradlint.rules._helpers import text
from gradlint.fix import FixSpec, InsertAtBodyStart
from gradlint.rules._helpers import resolved_optimizer
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class GradientsNeverCleared(Rule):
    code = "GL107"
    name = "gradients-never-cleared"
    severity = Severity.ERROR
    summary = "A training loop calls backward() and step() but never zeroes the gradients, so they add up across iterations."
    fix = "unsafe"
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for step in training_steps(model):
            if step.scope is None or step.is_engine_step:
                continue
            in_loop = step.in_scope()
            if any(occ.kind is Kind.ZERO_GRAD for occ in in_loop):
                continue
            if any(occ.kind is Kind.CALL and "zero" in (occ.event.name or "").lower() for occ in in_loop):
                continue  # an unresolved helper named like a zero_grad: give it the benefit of the doubt
            backward, optimizer_step = step.backward.event, step.step.event
            yield Diagnostic(
                backward.node,
                f"{text(model, backward)} adds to gradients that this loop never clears: each "
                f"{text(model, optimizer_step)} (line {ctx.line_of(optimizer_step.node)}) applies the sum of "
                "all previous gradients, which grows without bound",
                hint=f"Call `{optimizer_name(step)}.zero_grad(set_to_none=True)` at the start of each step.",
                related=((optimizer_step.node, "the accumulated gradients are applied here"),),
                fix_safety="unsafe",
                fix=self._fix(step),
            )

    @staticmethod
    def _fix(step) -> FixSpec | None:
        optimizer = resolved_optimizer(step)
        if optimizer is None or step.step.via or step.scope is None:
            return None
        zero = f"{optimizer}.zero_grad()"
        return FixSpec("unsafe", f"insert `{zero}` at the start of the loop", (InsertAtBodyStart(step.scope.node, (zero,)),))
