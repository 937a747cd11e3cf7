"""The values the init-program interpreter (gradlint.index.init_program) computes with.

A value is the layer (`LayerRef`), a module holding it (`OwnerRef`), one of its parameters
(`ParamRef`, with a row slice), another module or tensor (`OtherRef`), a function (`FunctionRef`),
`type(m)` (`TypeRef`), a torch class (`ClassRef`), a Python number, string, list or tuple, or
`UNKNOWN`. The helpers here combine them (arithmetic, comparisons, truth, `isinstance`) and answer
UNKNOWN whenever the code's value cannot be known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradlint.analysis.model import FileModel, Function

GATES = {"RNN": 1, "RNNCell": 1, "LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3}
BASES = {"RNNBase": ("RNN", "LSTM", "GRU"), "RNNCellBase": ("RNNCell", "LSTMCell", "GRUCell")}




class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class LayerRef:
    """The layer itself."""


@dataclass(frozen=True)
class OwnerRef:
    """A module that holds the layer at `path` (`("rnn",)`, `("encoder", "rnn")`)."""

    path: tuple[str, ...]
    cls: str = ""


@dataclass(frozen=True)
class OtherRef:
    """A module or tensor that is not the layer nor one of its parameters."""


@dataclass(frozen=True)
class ParamRef:
    name: str
    """torch's name in the layer: `weight_hh_l0`."""
    dims: int
    rows: tuple[int, int] | None = None
    """A row slice (dim 0), in the user's sizes."""
    block: tuple[int, int] | None = None
    """(index, count): one of `count` equal row blocks (`chunk`), when the sizes are unknown."""
    label: str = ""
    """The name as the loop sees it (`rnn.weight_hh_l0` from the owner's named_parameters())."""


@dataclass(frozen=True)
class FunctionRef:
    path: Path
    model: FileModel
    function: Function
    bound_self: Any = None


@dataclass(frozen=True)
class TypeRef:
    """`type(m)` of the layer (or another module)."""

    of: Any


@dataclass(frozen=True)
class ClassRef:
    names: tuple[str, ...] | None
    """torch.nn classes by last segment; None: a class that is not torch's (a project class)."""


@dataclass
class Layer:
    """What the interpreter knows about the layer whose program it collects."""

    kind: str
    hidden_size: int | None
    input_size: int | None
    num_layers: int
    bias: bool
    bidirectional: bool

    @property
    def gates(self) -> int:
        return GATES.get(self.kind, 1)

    def parameters(self) -> list[ParamRef]:
        """torch's parameters of the layer, in registration order."""
        suffixes = [""] if self.kind.endswith("Cell") else [
            f"_l{index}{direction}" for index in range(self.num_layers)
            for direction in (("", "_reverse") if self.bidirectional else ("",))
        ]
        names: list[ParamRef] = []
        for suffix in suffixes:
            names.append(ParamRef(f"weight_ih{suffix}", 2))
            names.append(ParamRef(f"weight_hh{suffix}", 2))
            if self.bias:
                names.append(ParamRef(f"bias_ih{suffix}", 1))
                names.append(ParamRef(f"bias_hh{suffix}", 1))
        return names

    def parameter(self, name: str) -> ParamRef | None:
        for param in self.parameters():
            if param.name == name:
                return param
        return None

    def rows(self) -> int | None:
        return self.gates * self.hidden_size if self.hidden_size else None





BUILTINS = {
    "range": range, "len": len, "str": str, "int": int, "float": float, "list": list, "tuple": tuple,
    "reversed": lambda v: list(reversed(v)), "abs": abs, "min": min, "max": max, "sorted": sorted,
}
STRING_METHODS = {
    "startswith", "endswith", "find", "rfind", "split", "rsplit", "lower", "upper", "replace", "strip", "count",
    "index", "partition", "rpartition", "isdigit",
}


def listed(value: Any) -> list:
    if isinstance(value, (list, tuple, range, str)):
        return list(value)
    raise TypeError("not iterable")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_same(value: Any, other: Any) -> bool:
    return value is other


def has_refs(*values: Any) -> bool:
    return any(isinstance(v, (LayerRef, OwnerRef, ParamRef, OtherRef, TypeRef)) for v in values)


def truth(value: Any) -> bool | None:
    if value is UNKNOWN or isinstance(value, (OtherRef, TypeRef, ClassRef, FunctionRef)):
        return None
    if isinstance(value, (LayerRef, OwnerRef, ParamRef)):
        return True
    try:
        return bool(value)
    except Exception:  # noqa: BLE001
        return None


def arith(operator: str, left: Any, right: Any) -> Any:
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if isinstance(left, str) and isinstance(right, str) and operator == "Add":
        return left + right
    if isinstance(left, (str, list, tuple)) and isinstance(right, int) and operator == "Multiply":
        return left * right
    if not (is_number(left) and is_number(right)):
        return UNKNOWN
    operations = {
        "Add": lambda a, b: a + b, "Subtract": lambda a, b: a - b, "Multiply": lambda a, b: a * b,
        "Divide": lambda a, b: a / b, "FloorDivide": lambda a, b: a // b, "Modulo": lambda a, b: a % b,
        "Power": lambda a, b: a ** b,
    }
    operation = operations.get(operator)
    return operation(left, right) if operation is not None else UNKNOWN


def compare_values(operator: str, left: Any, right: Any, layer: Layer) -> Any:
    if isinstance(left, TypeRef) or isinstance(right, TypeRef):
        subject, other = (left, right) if isinstance(left, TypeRef) else (right, left)
        if operator in ("Equal", "Is", "NotEqual", "IsNot", "In", "NotIn"):
            classes = [other] if isinstance(other, ClassRef) else other if isinstance(other, (list, tuple)) else None
            if classes is None or not all(isinstance(c, ClassRef) for c in classes):
                return UNKNOWN
            exact = exact_type(subject.of, list(classes), layer)
            if exact is UNKNOWN:
                return UNKNOWN
            return exact if operator in ("Equal", "Is", "In") else not exact
        return UNKNOWN
    if left is UNKNOWN or right is UNKNOWN or has_refs(left, right):
        return UNKNOWN
    try:
        if operator == "Equal":
            return left == right
        if operator == "NotEqual":
            return left != right
        if operator == "In":
            return left in right
        if operator == "NotIn":
            return left not in right
        if operator == "LessThan":
            return left < right
        if operator == "LessThanEqual":
            return left <= right
        if operator == "GreaterThan":
            return left > right
        if operator == "GreaterThanEqual":
            return left >= right
        if operator == "Is":
            return left is right
        if operator == "IsNot":
            return left is not right
    except TypeError:
        return UNKNOWN
    return UNKNOWN


def instance_of(subject: Any, classes: list[ClassRef] | None, layer: Layer) -> Any:
    if classes is None:
        return UNKNOWN
    if isinstance(subject, LayerRef):
        for ref in classes:
            if ref.names is None:
                continue
            if layer.kind in ref.names or "Module" in ref.names:
                return True
        return False
    if isinstance(subject, OwnerRef):
        if any(ref.names is not None and "Module" in ref.names for ref in classes):
            return True
        if all(ref.names is not None for ref in classes):
            return False  # the owner is a project class, not one of torch's
        return UNKNOWN
    if isinstance(subject, ParamRef):
        return UNKNOWN
    return UNKNOWN


def exact_type(subject: Any, classes: list[ClassRef], layer: Layer) -> Any:
    if not isinstance(subject, LayerRef):
        return UNKNOWN
    return any(ref.names is not None and layer.kind in ref.names and len(ref.names) == 1 for ref in classes)


def torch_class(qualified: str | None) -> ClassRef | None:
    """`torch.nn.LSTM` -> ClassRef(("LSTM",)); `torch.nn.RNNBase` -> its three kinds."""
    if not qualified or not qualified.startswith("torch.nn."):
        return None
    last = qualified.rsplit(".", 1)[-1]
    if not last[:1].isupper() or qualified.startswith("torch.nn.init") or qualified.startswith("torch.nn.functional"):
        return None
    return ClassRef(BASES.get(last, (last,)))


class Return(Exception):
    """A `return` in the code being run (or the statement budget ran out)."""

    pass


@dataclass
class Frame:
    path: Path
    model: FileModel
    function: Function | None
    env: dict[str, Any]
    dry: str | None = None
    """Set when the code runs under a condition gradlint cannot evaluate (its text): an init of
    the layer met here is reported as unresolved instead of applied."""

    def child(self, **changes: Any) -> Frame:
        values = dict(path=self.path, model=self.model, function=self.function, env=self.env, dry=self.dry)
        values.update(changes)
        return Frame(**values)
