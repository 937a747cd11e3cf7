"""Where a framework call sits in its function, and what a name is bound to just before it."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, contexts
from gradlint.analysis.walk import walk
from gradlint.index.testcode import in_test_file

MAX_DEPTH = 6


def in_test_code(path, project) -> bool:
    """A framework run in test code checks behaviour for a step or an epoch; it is no training run."""
    return in_test_file(path, project)


def context_of(model: FileModel, function: Function | None) -> Context | None:
    """The flattened context of a function (or of the module body for None)."""
    for context in contexts(model):
        if context.function is function:
            return context
    return None


def index_of(context: Context, call: cst.Call) -> int:
    """The occurrence index of a call in its own function's context (the end when it has no event)."""
    for occ in context.occurrences:
        if not occ.via and (occ.event.call is call or occ.event.node is call):
            return occ.index
    # No event for the call itself (`trainer.fit(LitModel())`): the first event after it in the source.
    orders = context.model.derived.setdefault("frameworks.order", {})
    scope = context.function.node if context.function is not None else context.model.module
    order = orders.get(id(scope))
    if order is None:
        order = orders[id(scope)] = {id(node): position for position, node in enumerate(walk(scope))}
    target = order.get(id(call))
    if target is not None:
        for occ in context.occurrences:
            position = order.get(id(occ.event.node))
            if not occ.via and position is not None and position > target:
                return occ.index
    return len(context.occurrences)


def bound_value(
    expression: cst.BaseExpression | None, model: FileModel, context: Context | None, before: int, depth: int = 0
) -> cst.BaseExpression | None:
    """What a name (`trainer`, `self.trainer`, `config`) was last assigned before occurrence `before`.

    Other expressions are returned as they are; a name that is not assigned (a parameter) gives None.
    """
    if expression is None or depth > MAX_DEPTH:
        return None
    if not isinstance(expression, (cst.Name, cst.Attribute)):
        return expression
    name = dotted_name(expression)
    if name is None:
        return expression
    if context is None:
        value = model.constants.get(name) if "." not in name else None
    else:
        value = context.binding(name, before)
    if value is None:
        return None
    if isinstance(value, (cst.Name, cst.Attribute)) and dotted_name(value) != name:
        return bound_value(value, model, context, before, depth + 1)
    return value
