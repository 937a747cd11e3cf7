"""Reading CPython syntax trees the way gradlint reads libcst's: dotted names, call arguments,
calls in evaluation order (the file summaries read their trees with these)."""

from __future__ import annotations

import ast
from typing import Iterator, Mapping

import libcst as cst

from gradlint.analysis import values as arithmetic
from gradlint.analysis.values import INF_NAMES, NAN_NAMES

Span = tuple[int, int, int, int]
"""(line, column, end line, end column) of an expression, as CPython gives them (1-based lines,
columns in UTF-8 bytes)."""


def span_of(node: ast.AST) -> Span:
    return (node.lineno, node.col_offset, node.end_lineno or node.lineno, node.end_col_offset or 0)  # type: ignore[attr-defined]


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` for Name/Attribute chains; a subscripted base is skipped (`a[0].b` -> `a.b`), as
    `gradlint.analysis.names.dotted_name` does for libcst."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return None


def string_value(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    for item in call.keywords:
        if item.arg == name:
            return item.value
    return None


def argument(call: ast.Call, position: int, name: str) -> ast.expr | None:
    """The argument bound to parameter `name` at `position`: by keyword, else by position
    (None when not passed, or when a `*args` before it hides where it lands)."""
    found = keyword(call, name)
    if found is not None:
        return found
    for index, arg in enumerate(call.args):
        if isinstance(arg, ast.Starred):
            return None
        if index == position:
            return arg
    return None


def calls_in(node: ast.AST) -> Iterator[ast.Call]:
    """The calls in an expression in evaluation order (arguments before the call), lambda bodies
    skipped, as `gradlint.analysis.builder.iter_calls` orders them."""
    stack: list[tuple[ast.AST, bool]] = [(node, False)]
    while stack:
        current, done = stack.pop()
        if done:
            yield current  # type: ignore[misc]
            continue
        if isinstance(current, (ast.Lambda, ast.Constant, ast.Name)):
            continue
        if isinstance(current, ast.Call):
            stack.append((current, True))
            children: list[ast.AST] = [current.func, *_call_arguments(current)]
        elif isinstance(current, ast.Dict):
            children = [item for key, value in zip(current.keys, current.values) for item in (key, value) if item]
        else:
            children = list(ast.iter_child_nodes(current))
        stack.extend((child, False) for child in reversed(children))


def _call_arguments(call: ast.Call) -> list[ast.AST]:
    """Positional and keyword arguments in source order (the AST keeps them apart; libcst, whose
    field order the walk follows elsewhere, does not)."""
    items: list[ast.AST] = [*call.args, *call.keywords]
    return sorted(items, key=lambda item: (item.lineno, item.col_offset))


_OPERATORS: dict[type, "cst.BaseBinaryOp | cst.BaseUnaryOp"] = {
    ast.Add: cst.Add(),
    ast.Sub: cst.Subtract(),
    ast.Mult: cst.Multiply(),
    ast.Div: cst.Divide(),
    ast.FloorDiv: cst.FloorDivide(),
    ast.Mod: cst.Modulo(),
    ast.Pow: cst.Power(),
    ast.USub: cst.Minus(),
    ast.UAdd: cst.Plus(),
    ast.Not: cst.Not(),
    ast.And: cst.And(),
    ast.Or: cst.Or(),
    ast.Eq: cst.Equal(),
    ast.NotEq: cst.NotEqual(),
    ast.Lt: cst.LessThan(),
    ast.LtE: cst.LessThanEqual(),
    ast.Gt: cst.GreaterThan(),
    ast.GtE: cst.GreaterThanEqual(),
    ast.In: cst.In(),
    ast.NotIn: cst.NotIn(),
    ast.Is: cst.Is(),
    ast.IsNot: cst.IsNot(),
}
"""CPython's operators as the libcst ones the shared arithmetic (gradlint.analysis.values) knows."""

def _evaluate(node: ast.expr | None, qualify, constants: Mapping[str, ast.expr], depth: int):
    if node is None or depth > 8:
        return None
    recurse = lambda n: _evaluate(n, qualify, constants, depth + 1)  # noqa: E731
    if isinstance(node, ast.Constant):
        value = node.value
        return value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    if isinstance(node, ast.UnaryOp):
        operator_node = _OPERATORS.get(type(node.op))
        return arithmetic.unary(operator_node, recurse(node.operand)) if operator_node is not None else None  # type: ignore[arg-type]
    if isinstance(node, ast.BinOp):
        operator_node = _OPERATORS.get(type(node.op))
        if operator_node is None:
            return None
        return arithmetic.binary(operator_node, recurse(node.left), recurse(node.right))  # type: ignore[arg-type]
    if isinstance(node, ast.BoolOp):
        operator_node = _OPERATORS[type(node.op)]
        value = recurse(node.values[0])
        for following in node.values[1:]:
            if value is None or arithmetic.short_circuits(operator_node, value):  # type: ignore[arg-type]
                return value
            value = recurse(following)
        return value
    if isinstance(node, ast.Compare):
        left = recurse(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = recurse(comparator)
            outcome = arithmetic.compare(_OPERATORS[type(op)], left, right) if left is not None and right is not None else None  # type: ignore[arg-type]
            if not outcome:
                return outcome
            left = right
        return True
    if isinstance(node, ast.Call):
        spelled = dotted(node.func)
        qualified = qualify(spelled)
        name = qualified if qualified in arithmetic.FUNCTIONS else spelled if isinstance(node.func, ast.Name) else None
        if name not in arithmetic.FUNCTIONS or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            return None
        return arithmetic.function(name, [recurse(arg) for arg in node.args])
    if isinstance(node, (ast.Name, ast.Attribute)):
        qualified = qualify(dotted(node))
        if qualified in INF_NAMES:
            return float("inf")
        if qualified in NAN_NAMES:
            return float("nan")
        if isinstance(node, ast.Name) and node.id in constants:
            return recurse(constants[node.id])
    return None


def target_names(node: ast.AST) -> list[str]:
    if isinstance(node, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in node.elts:
            names.extend(target_names(element))
        return names
    if isinstance(node, ast.Starred):
        return target_names(node.value)
    name = dotted(node)
    return [name] if name and not isinstance(node, ast.Subscript) else []


def unpacked_values(raw_targets: list[ast.expr], value: ast.expr) -> dict[str, ast.expr]:
    """`a = b = 1` binds both to 1; `w, d = 256, 32` binds element-wise; `w, d = f()` binds nothing."""
    bound: dict[str, ast.expr] = {}
    for raw in raw_targets:
        if isinstance(raw, (ast.Tuple, ast.List)):
            if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(raw.elts):
                for target, element in zip(raw.elts, value.elts):
                    name = dotted(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
                    if name:
                        bound[name] = element
        else:
            name = dotted(raw) if isinstance(raw, (ast.Name, ast.Attribute)) else None
            if name:
                bound[name] = value
    return bound
