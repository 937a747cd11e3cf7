"""Safe evaluation of constant expressions: 1e3, -1, 2**10, float("inf"), math.inf, MAX_NORM.

Unknown stays unknown: every function returns None rather than guess.
"""

from __future__ import annotations

import math
import operator
from typing import Callable, Mapping

import libcst as cst

from gradlint.analysis.names import ImportMap

Number = float | int

INF_NAMES = {"math.inf", "torch.inf", "numpy.inf", "numpy.Inf", "numpy.infty", "cmath.inf"}
NAN_NAMES = {"math.nan", "torch.nan", "numpy.nan", "numpy.NaN", "numpy.NAN", "cmath.nan"}

_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Power: operator.pow,
}


Lookup = Callable[[str], "cst.BaseExpression | None"]


def evaluate_number(
    node: cst.BaseExpression,
    imports: ImportMap,
    lookup: "Mapping[str, cst.BaseExpression] | Lookup | None" = None,
    _depth: int = 0,
) -> Number | None:
    """The numeric value of `node`, or None when it is not a constant we can prove.

    `lookup` gives the expression a bare name is bound to (a mapping of module constants,
    or a function that knows local scopes); a name it does not know stays unknown.
    """
    if _depth > 8:
        return None
    if lookup is None:
        lookup = {}.get
    elif not callable(lookup):
        lookup = lookup.get
    recurse = lambda n: evaluate_number(n, imports, lookup, _depth + 1)  # noqa: E731
    if isinstance(node, cst.Integer):
        return int(node.evaluated_value)
    if isinstance(node, cst.Float):
        return float(node.evaluated_value)
    if isinstance(node, cst.UnaryOperation):
        value = recurse(node.expression)
        if value is None:
            return None
        if isinstance(node.operator, cst.Minus):
            return -value
        if isinstance(node.operator, cst.Plus):
            return value
        return None
    if isinstance(node, cst.BinaryOperation):
        op = _BINARY.get(type(node.operator))
        left, right = recurse(node.left), recurse(node.right)
        if op is None or left is None or right is None:
            return None
        try:
            result = op(left, right)
        except (ArithmeticError, ValueError):
            return None
        return result if isinstance(result, (int, float)) else None
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in ("float", "int"):
        if len(node.args) == 1:
            arg = node.args[0].value
            if isinstance(arg, cst.SimpleString):
                try:
                    return float(arg.evaluated_value) if node.func.value == "float" else None
                except (ValueError, TypeError):
                    return None
            return recurse(arg)
        return None
    if isinstance(node, (cst.Name, cst.Attribute)):
        qualified = imports.qualify_expr(node)
        if qualified in INF_NAMES:
            return math.inf
        if qualified in NAN_NAMES:
            return math.nan
        if isinstance(node, cst.Name):
            bound = lookup(node.value)
            if bound is not None:
                return recurse(bound)
    return None


def is_true(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, cst.Name) and node.value == "True"


def string_value(node: cst.BaseExpression | None) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None
