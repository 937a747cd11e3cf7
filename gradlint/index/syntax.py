"""Reading CPython syntax trees the way gradlint reads libcst's: dotted names, call arguments,
calls in evaluation order and provably constant numbers (the summary and the resolver share
these)."""

from __future__ import annotations

import ast
import operator
from typing import Callable, Iterator, Mapping

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


_BINARY: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}


def evaluate_number(
    node: ast.expr | None, qualify: Callable[[str | None], str | None], constants: Mapping[str, ast.expr], depth: int = 0
):
    """A constant number (literals, + - * / // **, float("..."), int(...), inf/nan names, module
    constants seen so far); None when it is not one we can prove."""
    if node is None or depth > 8:
        return None
    recurse = lambda n: evaluate_number(n, qualify, constants, depth + 1)  # noqa: E731
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value
    if isinstance(node, ast.UnaryOp):
        value = recurse(node.operand)
        if value is None:
            return None
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        return None
    if isinstance(node, ast.BinOp):
        op = _BINARY.get(type(node.op))
        left, right = recurse(node.left), recurse(node.right)
        if op is None or left is None or right is None:
            return None
        try:
            result = op(left, right)
        except (ArithmeticError, ValueError):
            return None
        return result if isinstance(result, (int, float)) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("float", "int"):
        if len(node.args) == 1 and not node.keywords:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                try:
                    return float(arg.value) if node.func.id == "float" else None
                except ValueError:
                    return None
            return recurse(arg)
        return None
    if isinstance(node, (ast.Name, ast.Attribute)):
        qualified = qualify(dotted(node))
        if qualified in INF_NAMES:
            return float("inf")
        if qualified in NAN_NAMES:
            return float("nan")
        if isinstance(node, ast.Name) and node.id in constants:
            return recurse(constants[node.id])
    return None
