"""GL109 sum-reduction-loss: a reduction='sum' loss backpropagated without normalization."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.analysis.model import FileModel, Kind, snippet
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, contexts
from gradlint.analysis.values import string_value
from gradlint.findings import Severity
from gradlint.rules._helpers import latest_assignment, text
from gradlint.rules.base import Diagnostic, Rule, RuleContext

_SUMS = (cst.Add, cst.Subtract, cst.Multiply)
_NORMALIZERS = (cst.Divide, cst.FloorDivide)
_NORMALIZING_AUGMENTS = ("DivideAssign", "FloorDivideAssign")


def _is_sum_reduced(call: cst.Call) -> bool:
    for arg in call.args:
        if arg.keyword is None:
            continue
        if arg.keyword.value == "reduction" and string_value(arg.value) == "sum":
            return True
        if arg.keyword.value == "size_average" and isinstance(arg.value, cst.Name) and arg.value.value == "False":
            return True
    return False


def sum_reduced_source(context: Context, expr: cst.BaseExpression | None, before: int, depth: int = 0) -> cst.CSTNode | None:
    """The sum-reduced loss that `expr` carries unnormalized at occurrence `before`, if any."""
    if expr is None or depth > 8:
        return None
    if isinstance(expr, cst.Call):
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "mean":
            return None
        if _is_sum_reduced(expr):
            return expr
        callee = dotted_name(expr.func)
        if callee:
            bound = context.binding(callee, before)
            if isinstance(bound, cst.Call) and _is_sum_reduced(bound):
                return bound
        return None
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, _NORMALIZERS):
            return None
        if isinstance(expr.operator, _SUMS):
            return sum_reduced_source(context, expr.left, before, depth + 1) or sum_reduced_source(
                context, expr.right, before, depth + 1
            )
        return None
    if isinstance(expr, (cst.Name, cst.Attribute)):
        name = dotted_name(expr)
        if name is None:
            return None
        assignment = latest_assignment(context, name, before)
        if assignment is None or assignment.event.targets != (name,):
            return None
        event = assignment.event
        if event.augmented is not None:
            if event.augmented in _NORMALIZING_AUGMENTS:
                return None
            return sum_reduced_source(context, event.value, assignment.index, depth + 1) or sum_reduced_source(
                context, expr, assignment.index, depth + 1
            )
        return sum_reduced_source(context, event.value, assignment.index, depth + 1)
    return None


class SumReductionLoss(Rule):
    code = "GL109"
    name = "sum-reduction-loss"
    severity = Severity.INFO
    summary = "A loss built with reduction='sum' is backpropagated without normalization, so the gradient grows with the batch size."
    triggers = ("sum", "size_average")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for context in contexts(model):
            for occ in context.of_kind(Kind.BACKWARD):
                source = sum_reduced_source(context, occ.event.tensor, occ.index)
                if source is None:
                    continue
                loss = snippet(model.module, source, limit=50)
                yield Diagnostic(
                    occ.event.node,
                    f"{text(model, occ.event)} backpropagates a loss summed with reduction='sum' (`{loss}` at line "
                    f"{ctx.line_of(source)}): the gradient grows with the batch size and sequence length, so a "
                    "learning rate tuned on one size explodes on a larger one",
                    hint="Use reduction='mean', or divide the loss by the number of elements before backward().",
                    related=((source, "the loss is summed here"),),
                )
