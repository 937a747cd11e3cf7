"""Reading a call's arguments the way Python binds them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

if TYPE_CHECKING:
    from gradlint.analysis.model import Function


def arg_value(call: cst.Call, position: int, name: str) -> cst.BaseExpression | None:
    """The argument bound to parameter `name` at `position`: by keyword, else by position.

    None when it is not passed, or when a `*args` before it hides where it lands.
    """
    positional = 0
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg.value
            continue
        if arg.star:
            return None
        if positional == position:
            return arg.value
        positional += 1
    return None


def kwarg_value(call: cst.Call, name: str) -> cst.BaseExpression | None:
    """The value of keyword argument `name`, or None when it is not passed by keyword."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def parameter(function: "Function", name: str) -> cst.Param | None:
    """The parameter `name` of a function (positional-only, regular or keyword-only)."""
    params = function.node.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param
    return None


def argument_for(function: "Function", param: cst.Param, call: cst.Call) -> cst.BaseExpression | None:
    """The argument a call of `function` passes for `param` (keyword or position; a method's
    `self`/`cls` is not passed), None when it passes none."""
    name = param.name.value
    params = function.node.params
    ordered = [p.name.value for p in (*params.posonly_params, *params.params)]
    if function.class_name is not None and ordered and ordered[0] in ("self", "cls"):
        ordered = ordered[1:]
    if name not in ordered:
        return kwarg_value(call, name)
    return arg_value(call, ordered.index(name), name)


def argument_named(call: cst.Call, positional: list[str], name: str) -> cst.BaseExpression | None:
    """The argument a call passes for parameter `name`, given the names its positional arguments
    fill in order (`positional`): by keyword, else by position; None when not passed or hidden
    behind a `*args`."""
    if name in positional:
        return arg_value(call, positional.index(name), name)
    return kwarg_value(call, name)
