"""Constant arithmetic, the one implementation: 1e3, -1, 2**10, 7 % 3, float("inf"), math.sqrt(2).

`binary`, `unary` and `function` say what an operator or a pure function gives for known
operands; `evaluate_number` applies them to one file's constants (the libcst model's per-file
use), and the project's resolver (`gradlint.index.values`) applies the same three to values it
follows across files. Unknown stays unknown: every function returns None rather than guess.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Mapping

import libcst as cst

from gradlint.analysis.names import ImportMap

Number = float | int

INF_NAMES = {"math.inf", "torch.inf", "numpy.inf", "numpy.Inf", "numpy.infty", "cmath.inf"}
NAN_NAMES = {"math.nan", "torch.nan", "numpy.nan", "numpy.NaN", "numpy.NAN", "cmath.nan"}

BINARY_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.Divide: operator.truediv,
    cst.FloorDivide: operator.floordiv,
    cst.Modulo: operator.mod,
    cst.Power: operator.pow,
}
UNARY_OPERATORS: dict[type, Callable[[Any], Any]] = {
    cst.Minus: operator.neg,
    cst.Plus: operator.pos,
    cst.Not: operator.not_,
}
COMPARISONS: dict[type, Callable[[Any, Any], bool]] = {
    cst.Equal: operator.eq,
    cst.NotEqual: operator.ne,
    cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le,
    cst.GreaterThan: operator.gt,
    cst.GreaterThanEqual: operator.ge,
    cst.In: lambda left, right: left in right,
    cst.NotIn: lambda left, right: left not in right,
    cst.Is: operator.is_,
    cst.IsNot: operator.is_not,
}
_SINGLETONS = (type(None), bool)
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "int": int,
    "float": float,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "math.sqrt": math.sqrt,
    "math.pow": math.pow,
    "math.exp": math.exp,
    "math.log": math.log,
    "numpy.sqrt": math.sqrt,
}
"""Pure functions of constants, by qualified name (builtins by their bare name)."""

MAX_EXPONENT = 4096
"""`2 ** N` with a larger integer N is not computed (it could take the run down)."""

_FAILURES = (ArithmeticError, ValueError, TypeError, OverflowError)


def binary(operator_node: cst.BaseBinaryOp, left: Any, right: Any) -> Any:
    """`left <op> right`, or None when the operator is not constant arithmetic or fails."""
    apply = BINARY_OPERATORS.get(type(operator_node))
    if apply is None or left is None or right is None:
        return None
    if isinstance(operator_node, cst.Power) and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
        return None
    try:
        return apply(left, right)
    except _FAILURES:
        return None


def unary(operator_node: cst.BaseUnaryOp, value: Any) -> Any:
    apply = UNARY_OPERATORS.get(type(operator_node))
    if apply is None or value is None:
        return None
    try:
        return apply(value)
    except _FAILURES:
        return None


def compare(operator_node: cst.BaseCompOp, left: Any, right: Any) -> bool | None:
    """`left <op> right` for constants (a bool), or None when it cannot be said. `is` compares
    only None, True and False (the identity of other constants is an implementation detail)."""
    apply = COMPARISONS.get(type(operator_node))
    if apply is None:
        return None
    if isinstance(operator_node, (cst.Is, cst.IsNot)) and not (
        isinstance(left, _SINGLETONS) or isinstance(right, _SINGLETONS)
    ):
        return None
    try:
        return bool(apply(left, right))
    except _FAILURES:
        return None


def short_circuits(operator_node: cst.BaseBooleanOp, left: Any) -> bool:
    """Whether `left and ...` / `left or ...` is `left` itself (Python never reads the right side)."""
    return bool(left) if isinstance(operator_node, cst.Or) else not left


def function(name: str | None, args: list[Any]) -> Any:
    """A pure function of constants (`float("inf")`, `max(1, n)`), None when it is not one."""
    apply = FUNCTIONS.get(name or "")
    if apply is None or any(arg is None for arg in args):
        return None
    try:
        return apply(*args)
    except _FAILURES:
        return None


def function_name(func: cst.BaseExpression, qualify: Callable[[cst.BaseExpression], str | None]) -> str | None:
    """The name `FUNCTIONS` knows a callee by: qualified through the imports, or a bare builtin."""
    qualified = qualify(func)
    if qualified in FUNCTIONS:
        return qualified
    if isinstance(func, cst.Name) and func.value in FUNCTIONS:
        return func.value
    return None


def literal(node: cst.BaseExpression) -> Any:
    """The value of a number or string literal (None for anything else)."""
    if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
        return node.evaluated_value
    if isinstance(node, cst.ConcatenatedString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


Lookup = Callable[[str], "cst.BaseExpression | None"]


def evaluate_number(
    node: cst.BaseExpression,
    imports: ImportMap,
    lookup: "Mapping[str, cst.BaseExpression] | Lookup | None" = None,
    _depth: int = 0,
) -> Number | None:
    """The numeric value of `node` in one file, or None when it is not a constant we can prove.

    `lookup` gives the expression a bare name is bound to (a mapping of module constants,
    or a function that knows local scopes); a name it does not know stays unknown.
    """
    if lookup is None:
        lookup = {}.get
    elif not callable(lookup):
        lookup = lookup.get
    value = _evaluate(node, imports, lookup, _depth)
    return value if is_number(value) else None


def _evaluate(node: cst.BaseExpression, imports: ImportMap, lookup: Lookup, depth: int) -> Any:
    if depth > 8:
        return None
    recurse = lambda n: _evaluate(n, imports, lookup, depth + 1)  # noqa: E731
    value = literal(node)
    if value is not None:
        return value
    if isinstance(node, cst.UnaryOperation):
        return unary(node.operator, recurse(node.expression))
    if isinstance(node, cst.BinaryOperation):
        return binary(node.operator, recurse(node.left), recurse(node.right))
    if isinstance(node, cst.Comparison):
        left = recurse(node.left)
        for target in node.comparisons:
            right = recurse(target.comparator)
            outcome = compare(target.operator, left, right) if left is not None and right is not None else None
            if not outcome:
                return outcome
            left = right
        return True
    if isinstance(node, cst.BooleanOperation):
        left = recurse(node.left)
        if left is None:
            return None
        return left if short_circuits(node.operator, left) else recurse(node.right)
    if isinstance(node, cst.Call):
        name = function_name(node.func, imports.qualify_expr)
        if name is None or any(arg.keyword is not None or arg.star for arg in node.args):
            return None
        return function(name, [recurse(arg.value) for arg in node.args])
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
