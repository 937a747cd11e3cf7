"""GL107 gradients-never-cleared: a training loop that never zeroes the gradients."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.analysis.steps import training_steps
from gradlint.index.testcode import in_test
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
            if in_test(step.context.function, ctx.source.path, ctx.project):
                continue  # a unit test that accumulates on purpose (a gradient-parity check)
            in_loop = step.in_scope()
            # Cleared by a zero_grad, by `p.grad = None`, by a helper whose body (in any file)
            # clears them (an unreadable one named like a zero_grad gets the benefit of the doubt),
            # or by a gradient scope that starts each iteration from zero (`dist_autograd.context()`).
            if any(step.context.zeroes(occ) for occ in in_loop):
                continue
            if _in_gradient_scope(step):
                continue
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



def _in_gradient_scope(step) -> bool:
    """The backward runs in a gradient scope opened inside the loop (`with dist_autograd.context()
    as context_id:`): each iteration's gradients live in their own context and start from zero."""
    path = step.backward.path
    start = next((index for index, block in enumerate(path) if block is step.scope), None)
    return start is not None and any(block.grad_scope for block in path[start + 1 :])
