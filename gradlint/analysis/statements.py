"""Reading statements and expressions for the model builder: assignment targets, calls in
evaluation order, early exits, and which calls are never worth a question to the project."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.model import is_accumulation_test
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import children


def target_names(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in node.elements:
            names.extend(target_names(element.value))
        return names
    if isinstance(node, cst.StarredElement):
        return target_names(node.value)
    name = dotted_name(node)
    return [name] if name and not isinstance(node, cst.Subscript) else []


def unpacked(
    raw_targets: list[cst.BaseExpression], targets: list[str], value: cst.BaseExpression
) -> dict[str, cst.BaseExpression]:
    """`a = b = 1` binds both to 1; `w, d = 256, 32` binds element-wise; `w, d = f()` binds nothing."""
    bound: dict[str, cst.BaseExpression] = {}
    for raw in raw_targets:
        if isinstance(raw, (cst.Tuple, cst.List)):
            elements = [element.value for element in raw.elements]
            if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(elements):
                for target, element in zip(elements, value.elements):
                    name = dotted_name(target) if isinstance(target, (cst.Name, cst.Attribute)) else None
                    if name:
                        bound[name] = element.value
        else:
            name = dotted_name(raw) if isinstance(raw, (cst.Name, cst.Attribute)) else None
            if name:
                bound[name] = value
    return bound




_LEAVES = frozenset({cst.Lambda, cst.SimpleString, cst.Name, cst.Integer, cst.Float})


def iter_calls(expression: cst.CSTNode) -> list[cst.Call | cst.CompFor]:
    """The calls (and comprehension `for`s) in an expression, in evaluation order.

    Arguments come before the call. Lambda bodies are skipped: they run later, if at all.
    """
    found: list[cst.Call | cst.CompFor] = []
    stack: list[tuple[cst.CSTNode, bool]] = [(expression, False)]
    while stack:
        node, done = stack.pop()
        if done:
            found.append(node)  # type: ignore[arg-type]
            continue
        node_type = type(node)  # exact types: isinstance against libcst's ABCs is slow
        if node_type in _LEAVES:
            continue
        if node_type is cst.Call or node_type is cst.CompFor:
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(children(node)))
    return found


def exits_early(statement: cst.BaseStatement) -> bool:
    """`if not at_boundary: return` (or `continue`) about gradient accumulation, with no else."""
    if not isinstance(statement, cst.If) or statement.orelse is not None:
        return False
    body = statement.body
    last = body.body[-1] if isinstance(body, cst.IndentedBlock) and body.body else None
    if isinstance(body, cst.SimpleStatementSuite):
        small = body.body[-1] if body.body else None
    elif isinstance(last, cst.SimpleStatementLine) and last.body:
        small = last.body[-1]
    else:
        small = None
    return isinstance(small, (cst.Return, cst.Continue)) and is_accumulation_test(statement.test)


def consumed_name(node: cst.BaseExpression) -> str | None:
    """A name whose value a call or a loop consumes when it is an iterator: `params`,
    `self.params` (not `model.encoder`, an attribute of something else)."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return f"self.{node.attr.value}"
    return None


LIBRARIES = ("torch.", "numpy.", "np.", "math.", "os.", "sys.", "re.", "json.", "logging.", "time.", "random.")
"""Calls of these are never helpers worth asking the project about (torch's clip API is matched
by its qualified name; `torch.clamp` clamps values, not gradients)."""

PLAIN_METHODS = frozenset({
    "append", "extend", "insert", "pop", "items", "keys", "values", "get", "setdefault", "format",
    "join", "split", "strip", "item", "tolist", "numpy", "size", "dim", "numel", "view", "reshape",
    "permute", "transpose", "contiguous", "squeeze", "unsqueeze", "flatten", "float", "half",
    "double", "long", "int", "bool", "cuda", "cpu", "to", "type", "mean", "sum", "max", "min",
    "argmax", "softmax", "log_softmax", "exp", "log", "sqrt", "abs", "clone", "detach", "expand",
    "repeat", "fill_", "add_", "sub_", "copy_", "mul_", "div_", "add", "mul", "sub", "div", "pow",
    "info", "debug", "warning", "warn", "error", "print", "write", "add_scalar", "add_scalars",
    "update", "set_postfix", "set_description", "parameters", "named_parameters", "state_dict",
    "load_state_dict", "train", "eval", "forward", "register_buffer", "register_parameter",
    "startswith", "endswith", "replace", "lower", "upper", "encode", "decode", "copy", "index",
    "count", "read", "close", "open", "exists", "is_available", "manual_seed", "chunk", "cat",
    "stack", "split_with_sizes", "narrow", "masked_fill", "masked_fill_", "new_zeros", "new_ones",
    "zeros_like", "ones_like", "apply", "modules", "children", "named_modules", "named_children",
})
"""Methods of tensors, containers, strings and loggers: never a helper that clips or zeroes."""
