"""Reading a call's arguments the way Python binds them."""

from __future__ import annotations

import libcst as cst


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
