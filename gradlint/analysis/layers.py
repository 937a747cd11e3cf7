"""Layer-construction facts: what an `nn.RNN(...)`, `nn.Linear(...)` or `nn.Conv2d(...)` call builds.

A layer call's arguments are mapped to torch's parameter names (positional and keyword), and
each one is resolved through the project index in the scope of the function the call sits in,
so `nn.RNN(ninp, nhid, nlayers)` in `__init__` gets `nlayers` from the constructor's call sites
(`RNNModel(ntokens, args.nlayers)`) and from there from argparse. Parameters the call leaves
out take torch's defaults; those it passes but that cannot be resolved are `None` and listed
as unresolved. Rules report the result as their finding's `data`, so it holds only JSON values.

The module also answers the questions the model rules share about where a construction sits:
how many times it runs (`for _ in range(N)`, `[... for _ in range(N)]`, `[...] * N`), the class
that owns it, and what counts as a normalization layer or an activation.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.analysis.model import ClassInfo, FileModel, Function
from gradlint.analysis.names import dotted_name, last_segment
from gradlint.analysis.walk import children

if TYPE_CHECKING:
    from gradlint.index.values import Resolver, Scope

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
_INT = "int"
_SIZE = "int or ints"
_EXPECTED: dict[str, str] = {
    "input_size": _INT, "hidden_size": _INT, "num_layers": _INT, "proj_size": _INT,
    "in_features": _INT, "out_features": _INT, "in_channels": _INT, "out_channels": _INT, "groups": _INT,
    "kernel_size": _SIZE, "stride": _SIZE, "dilation": _SIZE, "padding": "int, ints or str",
    "nonlinearity": "str", "padding_mode": "str",
    "bias": "bool", "batch_first": "bool", "bidirectional": "bool", "dropout": "number",
}
"""What each parameter holds: a resolved value of another type (`width, d = 256, 32` read as a
tuple) is treated as unresolved rather than passed on."""


def _plausible(name: str, value: Any) -> bool:
    expected = _EXPECTED.get(name)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ints = isinstance(value, list) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if expected == _INT:
        return is_int
    if expected == _SIZE:
        return is_int or ints
    if expected == "int, ints or str":
        return is_int or ints or isinstance(value, str)
    if expected == "str":
        return isinstance(value, str)
    if expected == "bool":
        return isinstance(value, bool) or value in (0, 1)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


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
ACTIVATION_MODULES = UNBOUNDED_MODULES | frozenset(
    {"Tanh", "Sigmoid", "Hardtanh", "ReLU6", "Softsign", "Hardsigmoid", "Hardswish", "LogSigmoid", "Tanhshrink"}
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


@dataclass
class LayerConfig:
    """A layer call's resolved configuration: every parameter by torch's name."""

    kind: str
    values: dict[str, JSONValue] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    """Where each passed value came from (`argparse default of --nlayers (train.py:30)`)."""
    unresolved: list[str] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)
    """The parameters the call gives explicitly (the others are torch's defaults)."""

    def get(self, name: str) -> JSONValue:
        return self.values.get(name)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def describe(self, name: str) -> str:
        """`num_layers=4 (argparse default of --nlayers (train.py:30))` for messages."""
        value = self.values.get(name)
        shown = f"'{value}'" if isinstance(value, str) else "unresolved" if name in self.unresolved else f"{value}"
        origin = self.origins.get(name)
        if name not in self.passed and name not in self.unresolved:
            origin = "torch's default"
        return f"{name}={shown}" + (f" ({origin})" if origin else "")

    def data(self, **extra: JSONValue) -> dict:
        """The JSON `data` of a finding: `{"layer": "RNN", "input_size": 64, ..., "unresolved": [...]}`."""
        result: dict[str, JSONValue] = {"layer": self.kind, **self.values}
        unresolved = list(self.unresolved)
        for key, value in extra.items():
            if key == "unresolved":
                unresolved.extend(name for name in value if name not in unresolved)
            else:
                result[key] = json_value(value)
        result["unresolved"] = unresolved
        return result


def resolve_layer(
    project: Any, path: Path, model: FileModel, call: cst.Call, kind: str, function: Function | None
) -> LayerConfig:
    """Every parameter of a layer call, resolved in the scope of the function it sits in."""
    cache = model.derived.setdefault("layers.configs", {})
    return project.deps.memo(cache, id(call), lambda: _resolve_layer(project, path, model, call, kind, function))


def _resolve_layer(
    project: Any, path: Path, model: FileModel, call: cst.Call, kind: str, function: Function | None
) -> LayerConfig:
    from gradlint.index.values import Scope

    scope = Scope(path, model, function)
    passed, opaque = bound_arguments(call, kind)
    config = LayerConfig(kind, passed=set(passed))
    for name, default in SIGNATURES[kind]:
        if name in passed:
            resolved = project.resolver.resolve(passed[name], scope)
            value = json_value(resolved.value) if resolved is not None else None
            if resolved is None or (value is None and resolved.value is not None) or not _plausible(name, value):
                config.values[name] = None
                config.unresolved.append(name)
                continue
            config.values[name] = value
            if resolved.origin:
                config.origins[name] = resolved.origin
        elif name in opaque or default is REQUIRED:
            config.values[name] = None
            config.unresolved.append(name)
        else:
            config.values[name] = default
    return config


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


@dataclass(frozen=True)
class Count:
    """How many times something runs or appears, and why (`range(args.depth)`)."""

    value: int | None
    """None when a loop's length could not be resolved."""
    origins: tuple[str, ...] = ()

    def times(self, other: Count) -> Count:
        value = None if self.value is None or other.value is None else self.value * other.value
        return Count(value, self.origins + other.origins)


ONCE = Count(1)


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    cst.Add: operator.add,
    cst.Subtract: operator.sub,
    cst.Multiply: operator.mul,
    cst.FloorDivide: operator.floordiv,
}


def integer(node: cst.BaseExpression | None, resolver: Resolver, scope: Scope) -> Count:
    """An integer expression's value; also understands `len(x)` of a resolved list."""
    if node is None:
        return Count(None)
    if isinstance(node, cst.BinaryOperation) and type(node.operator) in _BINARY:
        left, right = integer(node.left, resolver, scope), integer(node.right, resolver, scope)
        if left.value is None or right.value is None:
            return Count(None)
        return Count(_BINARY[type(node.operator)](left.value, right.value), left.origins + right.origins)
    if isinstance(node, cst.Call) and dotted_name(node.func) == "len" and len(node.args) == 1:
        resolved = resolver.resolve(node.args[0].value, scope)
        if resolved is None or not isinstance(resolved.value, (tuple, list, str, dict)):
            return Count(None)
        return Count(len(resolved.value), (resolved.origin,) if resolved.origin else ())
    resolved = resolver.resolve(node, scope)
    if resolved is None or not isinstance(resolved.value, int) or isinstance(resolved.value, bool):
        return Count(None)
    return Count(resolved.value, (resolved.origin,) if resolved.origin else ())


def iterations(iterable: cst.BaseExpression, resolver: Resolver, scope: Scope) -> Count:
    """How many times `for _ in <iterable>` runs: `range(...)`, `enumerate`/`zip` of known
    lengths, or a list/tuple that resolves."""
    if isinstance(iterable, cst.Call):
        callee = dotted_name(iterable.func)
        args = [arg for arg in iterable.args if arg.keyword is None and not arg.star]
        if callee == "range" and 1 <= len(args) <= 3 and len(args) == len(iterable.args):
            counts = [integer(arg.value, resolver, scope) for arg in args]
            if any(count.value is None for count in counts):
                return Count(None)
            values = [count.value for count in counts]
            try:
                length = len(range(*values))  # type: ignore[arg-type]
            except (ValueError, TypeError):
                return Count(None)
            return Count(length, tuple(origin for count in counts for origin in count.origins))
        if callee in ("enumerate", "reversed") and args:
            return iterations(args[0].value, resolver, scope)
        if callee == "zip" and args:
            counts = [iterations(arg.value, resolver, scope) for arg in args]
            if any(count.value is None for count in counts):
                return Count(None)
            return Count(min(count.value for count in counts if count.value is not None))
    if isinstance(iterable, (cst.List, cst.Tuple)) and not any(
        isinstance(element, cst.StarredElement) for element in iterable.elements
    ):
        return Count(len(iterable.elements))
    resolved = resolver.resolve(iterable, scope)
    if resolved is not None and isinstance(resolved.value, (tuple, list)):
        return Count(len(resolved.value), (resolved.origin,) if resolved.origin else ())
    return Count(None)


def comprehension_count(comp: cst.BaseComp, resolver: Resolver, scope: Scope) -> Count:
    """How many elements `[elt for a in A for b in B]` builds (unknown with an `if` filter)."""
    count = ONCE
    for_in: cst.CompFor | None = comp.for_in
    while for_in is not None:
        if for_in.ifs:
            return Count(None)
        count = count.times(iterations(for_in.iter, resolver, scope))
        for_in = for_in.inner_for_in
    return count


def element_repeats(
    comp: cst.BaseComp, child: cst.CSTNode, visited: set[int], resolver: Resolver, scope: Scope
) -> Count | None:
    """How many times a construction under `comp` (reached through `child`; `visited` holds the
    ids on the way up) becomes one of its elements. In the element expression: once per
    iteration. In the iterable of a clause whose variable is the element
    (`[m for _ in range(n) for m in (nn.Linear(w, w), nn.ReLU())]`): once per iteration of the
    other clauses. None when the construction is not an element (a filter, another iterable)."""
    if in_comprehension_element(comp, child):
        return comprehension_count(comp, resolver, scope)
    element = getattr(comp, "elt", None)
    count = ONCE
    source: cst.CompFor | None = None
    for_in: cst.CompFor | None = comp.for_in
    while for_in is not None:
        if source is None and id(for_in.iter) in visited:
            source = for_in
            if not (
                isinstance(element, cst.Name) and isinstance(for_in.target, cst.Name)
                and for_in.target.value == element.value
            ):
                return None
        elif for_in.ifs:
            return Count(None)
        else:
            count = count.times(iterations(for_in.iter, resolver, scope))
        for_in = for_in.inner_for_in
    return count if source is not None else None


def repeat_factor(operation: cst.BinaryOperation, child: cst.CSTNode, resolver: Resolver, scope: Scope) -> Count | None:
    """`[layers] * N` (or `N * [layers]`) with `child` the list side: N. None when it is no repetition."""
    if not isinstance(operation.operator, cst.Multiply):
        return None
    other = operation.right if child is operation.left else operation.left
    if not isinstance(child, (cst.List, cst.Tuple, cst.ListComp)):
        return None
    return integer(other, resolver, scope)


def loop_count(loop: cst.For | cst.While, resolver: Resolver, scope: Scope) -> Count:
    if isinstance(loop, cst.While):
        return Count(None)
    return iterations(loop.iter, resolver, scope)


def in_loop_body(loop: cst.For | cst.While, child: cst.CSTNode) -> bool:
    """Whether the path down from `loop` goes through its body (not its iterable or `else`)."""
    return child is loop.body


def in_comprehension_element(comp: cst.BaseComp, child: cst.CSTNode) -> bool:
    if isinstance(comp, cst.DictComp):
        return child is comp.key or child is comp.value
    return child is getattr(comp, "elt", None)


def describe_count(count: Count) -> str:
    origins = [origin for origin in count.origins if origin]
    return f" ({'; '.join(dict.fromkeys(origins))})" if origins else ""
