"""Layer constructions in one file: what an `nn.RNN(...)`, `nn.Linear(...)` or `nn.Conv2d(...)` call is.

torch's layer signatures (so a call's arguments map to torch's parameter names, positional and
keyword), the kinds gradlint tells apart (recurrent, vanilla, stackable, containers,
normalization, unbounded activations), every layer construction of a file with the function it
sits in, and where a node sits (its ancestors inside a function). Resolving the values of the
arguments across the project is gradlint.index.layer_config's job; counting repetitions,
gradlint.index.counts'.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import libcst as cst

from gradlint.analysis.model import ClassInfo, FileModel, Function
from gradlint.analysis.names import last_segment
from gradlint.analysis.walk import children

REQUIRED = object()
"""A parameter without a default (`input_size`): missing from a call means unknown."""

_RNN_BASE = (
    ("input_size", REQUIRED),
    ("hidden_size", REQUIRED),
    ("num_layers", 1),
)
_RNN_TAIL = (
    ("bias", True),
    ("batch_first", False),
    ("dropout", 0.0),
    ("bidirectional", False),
)
_CONV = (
    ("in_channels", REQUIRED),
    ("out_channels", REQUIRED),
    ("kernel_size", REQUIRED),
    ("stride", 1),
    ("padding", 0),
    ("dilation", 1),
    ("groups", 1),
    ("bias", True),
    ("padding_mode", "zeros"),
)

SIGNATURES: dict[str, tuple[tuple[str, Any], ...]] = {
    # torch.nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    #              batch_first=False, dropout=0.0, bidirectional=False)
    "RNN": (*_RNN_BASE, ("nonlinearity", "tanh"), *_RNN_TAIL),
    "LSTM": (*_RNN_BASE, *_RNN_TAIL, ("proj_size", 0)),
    "GRU": (*_RNN_BASE, *_RNN_TAIL),
    # torch.nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh')
    "RNNCell": (("input_size", REQUIRED), ("hidden_size", REQUIRED), ("bias", True), ("nonlinearity", "tanh")),
    "LSTMCell": (("input_size", REQUIRED), ("hidden_size", REQUIRED), ("bias", True)),
    "GRUCell": (("input_size", REQUIRED), ("hidden_size", REQUIRED), ("bias", True)),
    # torch.nn.Linear(in_features, out_features, bias=True)
    "Linear": (("in_features", REQUIRED), ("out_features", REQUIRED), ("bias", True)),
    "Conv1d": _CONV,
    "Conv2d": _CONV,
    "Conv3d": _CONV,
}

RECURRENT_KINDS = frozenset({"RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"})
VANILLA_KINDS = frozenset({"RNN", "RNNCell"})
STACK_KINDS = frozenset({"Linear", "Conv1d", "Conv2d", "Conv3d"})
"""The layers GL204 counts as depth."""

CONTAINERS = frozenset({"Sequential", "ModuleList"})

NORM_LAYERS = frozenset(
    {
        "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm",
        "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
        "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm",
        "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
        "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d",
        "weight_norm", "spectral_norm", "remove_weight_norm",
    }
)
_NORM_MEASURES = frozenset({"norm", "vector_norm", "matrix_norm", "frobenius_norm", "nuclear_norm", "normal_", "normal"})

# Unbounded activations: the hidden state (and its gradient) can grow without limit.
UNBOUNDED_FUNCTIONS = frozenset(
    {
        "relu", "relu_", "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu", "selu", "selu_",
        "celu", "celu_", "softplus", "silu", "mish", "prelu", "rrelu", "rrelu_",
    }
)
UNBOUNDED_MODULES = frozenset(
    {"ReLU", "LeakyReLU", "ELU", "GELU", "SELU", "CELU", "Softplus", "SiLU", "Mish", "PReLU", "RReLU"}
)

JSONValue = Any


# ----------------------------------------------------------------------------- kinds


def torch_nn_name(qualified: str | None) -> str | None:
    """`Linear` for `torch.nn.Linear` / `torch.nn.modules.linear.Linear`, else None."""
    if not qualified:
        return None
    parts = qualified.split(".")
    if len(parts) == 3 and parts[:2] == ["torch", "nn"]:
        return parts[2]
    if len(parts) == 5 and parts[:3] == ["torch", "nn", "modules"]:
        return parts[4]
    return None


def layer_kind(qualified: str | None) -> str | None:
    """`RNN`, `LSTMCell`, `Linear`, `Conv2d`... for a torch.nn layer class, else None."""
    name = torch_nn_name(qualified)
    return name if name in SIGNATURES else None


def is_container(qualified: str | None) -> bool:
    return torch_nn_name(qualified) in CONTAINERS


def is_normalization(qualified: str | None, spelled: str | None) -> bool:
    """A normalization layer or weight reparametrisation: torch's (`nn.LayerNorm`,
    `nn.utils.weight_norm`) or a project's own (`RMSNorm`, `LayerNorm2d`, `norm_layer(...)`)."""
    name = last_segment(qualified or spelled)
    if name in NORM_LAYERS:
        return True
    lowered = name.lower()
    if lowered in _NORM_MEASURES or lowered.startswith(("clip", "normal", "get_")):
        return False
    return "norm" in lowered


def is_unbounded_module(qualified: str | None) -> bool:
    return torch_nn_name(qualified) in UNBOUNDED_MODULES


# ----------------------------------------------------------------------------- layers


@dataclass(eq=False)
class Layer:
    """One `torch.nn` layer construction in a file."""

    node: cst.Call
    kind: str
    function: Function | None
    """The function the call sits in (None at module or class level)."""

    @property
    def owner(self) -> str | None:
        """The name of the class whose method builds the layer."""
        function = self.function
        while function is not None and function.class_name is None:
            function = function.parent
        return function.class_name if function is not None else None


def layers(model: FileModel) -> list[Layer]:
    """Every `torch.nn` layer construction of the file, in source order."""
    found = model.derived.get("layers.layers")
    if found is None:
        found = []
        for site in model.calls:
            kind = layer_kind(site.qualified)
            if kind is not None:
                found.append(Layer(site.node, kind, site.function))
        model.derived["layers.layers"] = found
    return found


def owner_class(model: FileModel, function: Function | None) -> ClassInfo | None:
    """The class whose method (or a function nested in it) `function` is."""
    while function is not None and function.class_name is None:
        function = function.parent
    if function is None or function.class_name is None:
        return None
    info = model.classes.get(function.class_name)
    return info if info is not None and info.methods.get(function.name) is function else None


def function_of(model: FileModel, call: cst.Call) -> Function | None:
    """The function a call sits in, as the file model records it."""
    index = model.derived.get("layers.call_functions")
    if index is None:
        index = {id(site.node): site.function for site in model.calls}
        model.derived["layers.call_functions"] = index
    return index.get(id(call))


# ------------------------------------------------------------------- arguments


def bound_arguments(call: cst.Call, kind: str) -> tuple[dict[str, cst.BaseExpression], set[str]]:
    """The expression passed for each parameter of the layer, and the parameters that cannot be
    known because of `*args` / `**kwargs` in the call."""
    names = [name for name, _ in SIGNATURES[kind]]
    passed: dict[str, cst.BaseExpression] = {}
    opaque: set[str] = set()
    position = 0
    star = False
    double_star = False
    for arg in call.args:
        if arg.star == "**":
            double_star = True
            continue
        if arg.star == "*":
            star = True
            continue
        if arg.keyword is not None:
            passed[arg.keyword.value] = arg.value
            continue
        if star:
            continue
        if position < len(names):
            passed[names[position]] = arg.value
        position += 1
    for index, name in enumerate(names):
        if name in passed:
            continue
        if double_star or (star and index >= position):
            opaque.add(name)
    return passed, opaque


def json_value(value: Any) -> JSONValue:
    """The value as JSON can hold it (numbers, strings, booleans, null, lists), else None."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (tuple, list)):
        items = [json_value(item) for item in value]
        if any(item is None and original is not None for item, original in zip(items, value)):
            return None
        return items
    return None


# --------------------------------------------------------------- where a node sits


def parents(model: FileModel, function: Function | None) -> dict[int, cst.CSTNode]:
    """Each node's parent (by id) inside one function (or, for None, the module and class bodies
    outside any function), built on first use with one read-only walk of that part only."""
    tables = model.derived.setdefault("layers.parents", {})
    key = id(function) if function is not None else None
    found = tables.get(key)
    if found is None:
        found = {}
        root: cst.CSTNode = function.node if function is not None else model.module
        stack: list[cst.CSTNode] = [root]
        while stack:
            node = stack.pop()
            for child in children(node):
                found[id(child)] = node
                if not isinstance(child, (cst.FunctionDef, cst.Lambda)):
                    stack.append(child)
        tables[key] = found
    return found


def ancestors(
    model: FileModel, node: cst.CSTNode, function: Function | None
) -> Iterator[tuple[cst.CSTNode, cst.CSTNode]]:
    """(ancestor, the child of it on the way down to `node`), innermost first, up to the
    enclosing function or class definition (not beyond). `function` is the function the node
    sits in (`CallSite.function`)."""
    table = parents(model, function)
    child = node
    while True:
        parent = table.get(id(child))
        if parent is None:
            return
        yield parent, child
        if isinstance(parent, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return
        child = parent


def in_loop_body(loop: cst.For | cst.While, child: cst.CSTNode) -> bool:
    """Whether the path down from `loop` goes through its body (not its iterable or `else`)."""
    return child is loop.body


def in_comprehension_element(comp: cst.BaseComp, child: cst.CSTNode) -> bool:
    if isinstance(comp, cst.DictComp):
        return child is comp.key or child is comp.value
    return child is getattr(comp, "elt", None)


