"""Tensor and weight constructions in one file: what builds a tensor, and of which shape.

`nn.Parameter(torch.empty(n, n))`, `torch.randn(n, n).to(device)`, `self.rnn = nn.RNN(...)`:
the per-file facts that the init rules (GL301, GL302) and the project's weight targets
(gradlint.index.weights) read. Nothing here looks beyond the file.
"""

from __future__ import annotations

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import kwarg_value
from typing import Any

from gradlint.analysis.layers import ancestors
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name

PARAMETER_CLASSES = {"torch.nn.Parameter", "torch.nn.parameter.Parameter"}
LINEAR_CLASSES = {"torch.nn.Linear", "torch.nn.modules.linear.Linear"}
TENSOR_FACTORIES = {
    "empty", "zeros", "ones", "randn", "rand", "eye", "full", "Tensor", "FloatTensor", "DoubleTensor",
    "HalfTensor", "BFloat16Tensor", "tensor",
}
"""`torch.<name>(...)` calls that build a tensor of a given shape (`tensor` only for its data)."""
TENSOR_MOVES = {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "contiguous", "requires_grad_", "clone", "detach"}


def qualified(model: "FileModel | Any", node: cst.BaseExpression) -> str | None:
    """The qualified name of `node` through the imports of `model` (a FileModel, or any object
    with `qualify_expr`, such as a file summary)."""
    return model.qualify_expr(node)


def strip_data(node: cst.BaseExpression) -> cst.BaseExpression:
    """`w.data` / `w.detach()` -> `w`: the same storage."""
    while True:
        if isinstance(node, cst.Attribute) and node.attr.value == "data":
            node = node.value
        elif (
            isinstance(node, cst.Call)
            and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "detach"
            and not node.args
        ):
            node = node.func.value
        else:
            return node


_EMPTY_MODULE = cst.Module(body=[])


def code(node: cst.CSTNode) -> str:
    """A node's source on one line (whitespace collapsed), for messages."""
    return " ".join(_EMPTY_MODULE.code_for_node(node).split())


# --------------------------------------------------------------------------- layers


def recurrent_layer(model: FileModel, call: cst.CSTNode) -> str | None:
    """`LSTM` when `call` builds `nn.LSTM(...)` (any import spelling), else None."""
    if not isinstance(call, cst.Call):
        return None
    name = qualified(model, call.func)
    return name.rsplit(".", 1)[-1] if name in vocab.RECURRENT_LAYERS else None


def tensor_shape(model: FileModel, call: cst.Call) -> tuple[str, list[cst.BaseExpression]] | None:
    """(`randn`, [dims]) for `torch.randn(a, b)` / `torch.empty((a, b))` / `torch.zeros(size=(a, b))`."""
    name = qualified(model, call.func)
    if name is None or not name.startswith("torch."):
        return None
    factory = name.rsplit(".", 1)[-1]
    if factory not in TENSOR_FACTORIES or factory == "tensor":
        return None
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    if any(arg.star for arg in call.args):
        return None
    size = kwarg_value(call, "size")
    if size is not None:
        positional = [size]
    if factory == "full":
        positional = positional[:1]
    if len(positional) == 1 and isinstance(positional[0], (cst.Tuple, cst.List)):
        positional = [element.value for element in positional[0].elements]
    if factory == "eye":
        if len(positional) == 1:
            positional = [positional[0], positional[0]]
        elif kwarg_value(call, "m") is not None:
            positional = [positional[0], kwarg_value(call, "m")]  # type: ignore[list-item]
    if not positional or any(isinstance(dim, (cst.SimpleString, cst.Tuple, cst.List)) for dim in positional):
        return None
    return factory, positional


def tensor_call(node: cst.BaseExpression, depth: int = 0) -> cst.Call | None:
    """The tensor construction in `torch.eye(n) * k`, `torch.randn(n, n).to(device) / d` (for its shape)."""
    node = unwrap_tensor(node)
    if isinstance(node, cst.Call):
        return node
    if depth < 4 and isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Multiply, cst.Divide)):
        return tensor_call(node.left, depth + 1) or (
            tensor_call(node.right, depth + 1) if isinstance(node.operator, cst.Multiply) else None
        )
    return None


def requires_grad(call: cst.BaseExpression) -> bool:
    for node in [call, unwrap_tensor(call)]:
        if isinstance(node, cst.Call):
            flag = kwarg_value(node, "requires_grad")
            if isinstance(flag, cst.Name) and flag.value == "True":
                return True
            if isinstance(node.func, cst.Attribute) and node.func.attr.value == "requires_grad_":
                return True
    return False


def unwrap_tensor(node: cst.BaseExpression) -> cst.BaseExpression:
    """`torch.randn(n, n).to(device).requires_grad_()` -> `torch.randn(n, n)` (moves keep the values)."""
    while (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value in TENSOR_MOVES
        and isinstance(node.func.value, cst.Call)
    ):
        node = node.func.value
    return node


def assigned_to(model: FileModel, call: cst.Call, function: "Function | None") -> str | None:
    """`self.rnn` / `rnn` for `self.rnn = nn.RNN(...)` / `rnn = nn.RNN(...).to(device)`."""
    child: cst.CSTNode = call
    for parent, node in ancestors(model, call, function):
        if isinstance(parent, cst.Attribute) and parent.value is node:
            child = parent
            continue
        if isinstance(parent, cst.Call) and parent.func is child and isinstance(child, cst.Attribute) \
                and child.attr.value in vocab.MODULE_MOVES:
            child = parent
            continue
        if isinstance(parent, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
            if len(targets) == 1 and parent.value is node:
                return dotted_name(targets[0])
            return None
        return None
    return None
