"""Weights across the project: which matrix an init call targets, and how big it is.

GL301 and GL302 ask two questions of a weight expression such as `self.rnn.weight_hh_l0`:

- what it is: the recurrent matrix of an `nn.RNN/LSTM/GRU` (or `*Cell`) attribute, the weight
  of a square `nn.Linear(n, n)`, or a square `nn.Parameter(torch.empty(n, n))`;
- its size n (the recurrent gain concerns the hidden size h, also for the (4h, h) LSTM and (3h, h)
  GRU `weight_hh`), resolved through the project index in the scope of the function that builds
  the layer, so constructor parameters resolve through call sites and argparse defaults.

A loop `for name, p in self.rnn.named_parameters(): if "weight_hh" in name: init(p)` targets the
RNN's recurrent matrices too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import shorten
from gradlint.analysis.names import dotted_name
from gradlint.analysis.tensors import (
    LINEAR_CLASSES,
    PARAMETER_CLASSES,
    code,
    qualified,
    recurrent_layer,
    requires_grad,
    strip_data,
    tensor_call,
    tensor_shape,
    unwrap_tensor,
)
from gradlint.analysis.values import string_value
from gradlint.index.layer_config import resolve_layer
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary
from gradlint.index.values import Scope

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_DEPTH = 6
_WEIGHT_HH = re.compile(r"^weight_hh(_l\d+)?(_reverse)?$")


@dataclass(frozen=True)
class Bound:
    """An expression with the file and function it is evaluated in."""

    value: cst.BaseExpression
    path: Path
    model: FileSummary
    """The summary of the file the expression is in."""
    function: FunctionSummary | None

    @property
    def scope(self) -> Scope:
        return Scope(self.path, self.model, self.function)


def bind_name(name: str, scope: Scope) -> Bound | None:
    """The expression a bare name is assigned from: in its function (or an enclosing one), else at module level."""
    function = scope.function
    while function is not None:
        assigned = function.bindings.get(name)
        if assigned is not None:
            value = scope.expression(assigned)
            return Bound(value, scope.path, scope.summary, function) if value is not None else None
        if name in function.param_names:
            return None
        function = function.parent
    span = scope.summary.constants.get(name)
    value = scope.expression(span) if span is not None else None
    return Bound(value, scope.path, scope.summary, None) if value is not None else None


def unwrap_module(bound: Bound, depth: int = 0) -> Bound:
    """`RNN(...).to(device)`, `DataParallel(model)` -> the module construction, following names."""
    while depth < MAX_DEPTH:
        depth += 1
        value = bound.value
        if isinstance(value, cst.Call):
            func = value.func
            if isinstance(func, cst.Attribute) and func.attr.value in vocab.MODULE_MOVES:
                bound = Bound(func.value, bound.path, bound.model, bound.function)
                continue
            name = dotted_name(func) or ""
            if name.rsplit(".", 1)[-1] in vocab.MODULE_WRAPPERS and value.args:
                bound = Bound(value.args[0].value, bound.path, bound.model, bound.function)
                continue
            return bound
        if isinstance(value, cst.Name):
            inner = bind_name(value.value, bound.scope)
            if inner is None:
                return bound
            bound = inner
            continue
        if isinstance(value, cst.Attribute) and dotted_name(value) and dotted_name(value).startswith("self."):
            parts = dotted_name(value).split(".")
            if len(parts) == 2:
                info = owner_class(bound.model, bound.function)
                inner = bound.model.expression(info.attribute_values.get(parts[1])) if info is not None else None
                if info is not None and inner is not None:
                    bound = Bound(inner, bound.path, bound.model, info.attribute_functions.get(parts[1]))
                    continue
        return bound
    return bound


@dataclass(frozen=True)
class ModuleRef:
    """What a dotted module path (`self.rnn`, `model.encoder.rnn`) was built by."""

    bound: Bound
    """The construction call (`nn.RNN(...)`, `RNNModel(...)`) or other value."""
    rest: tuple[str, ...]
    """Attribute names left after the last module that could be followed (`weight_hh_l0`)."""
    owner: ClassSummary | None = None
    """For `self` (or an instance of a project class): the class."""
    owner_path: Path | None = None
    owner_model: FileSummary | None = None


def resolve_path(parts: list[str], scope: Scope, project: ProjectIndex) -> ModuleRef | None:
    """Follow `self.rnn.weight_hh_l0` / `model.rnn.weight_hh_l0` to the layer call and what is left."""
    if not parts:
        return None
    head = parts[0]
    if head == "self":
        info = owner_class(scope.summary, scope.function)
        if info is None:
            return None
        if len(parts) == 1:
            return ModuleRef(
                Bound(cst.Name("self"), scope.path, scope.summary, scope.function), (), info, scope.path, scope.summary
            )
        return _follow_class(info, scope.path, scope.summary, parts[1:], project, 0)
    bound = bind_name(head, scope)
    if bound is None:
        return None
    return _follow(bound, parts[1:], project, 0)


def _follow(bound: Bound, rest: list[str], project: ProjectIndex, depth: int) -> ModuleRef | None:
    bound = unwrap_module(bound)
    value = bound.value
    if not isinstance(value, cst.Call):
        return ModuleRef(bound, tuple(rest)) if not rest else None
    callee = dotted_name(value.func) or ""
    name = qualified(bound.model, value.func)
    if name is not None and name.startswith("torch."):
        return ModuleRef(bound, tuple(rest))
    if depth >= MAX_DEPTH or not callee:
        return None
    symbol = project.resolve_callee(bound.path, callee)
    if symbol is None or symbol.kind != "class" or not isinstance(symbol.target, ClassSummary):
        return None
    if not rest:
        return ModuleRef(bound, (), symbol.target, symbol.path, symbol.summary)
    return _follow_class(symbol.target, symbol.path, symbol.summary, rest, project, depth + 1)


def _follow_class(
    info: ClassSummary, path: Path, summary: FileSummary, rest: list[str], project: ProjectIndex, depth: int
) -> ModuleRef | None:
    attribute = rest[0]
    value = summary.expression(info.attribute_values.get(attribute))
    if value is None:
        return None
    bound = Bound(value, path, summary, info.attribute_functions.get(attribute))
    return _follow(bound, rest[1:], project, depth)


def resolve_number(project: ProjectIndex, node: cst.BaseExpression | None, scope: Scope):
    """(value, origin) of a number, or (None, "") when it does not resolve."""
    if node is None:
        return None, ""
    resolved = project.resolver.resolve(node, scope)
    if resolved is None or isinstance(resolved.value, bool) or not isinstance(resolved.value, (int, float)):
        return None, ""
    return resolved.value, resolved.origin


def resolve_size(project: ProjectIndex, node: cst.BaseExpression | None, scope: Scope):
    """(n, origin) for a dimension: a positive integer (or integral float), else (None, "")."""
    value, origin = resolve_number(project, node, scope)
    if value is None or not math.isfinite(value) or value <= 0 or value != int(value):
        return None, ""
    return int(value), origin


def square_size(
    project: ProjectIndex, model: object, dims: list[cst.BaseExpression], scope: Scope
) -> tuple[bool, int | None, str]:
    """Whether the last two dimensions are equal, and n with its origin (n None when unresolved)."""
    if len(dims) < 2:
        return False, None, ""
    first, second = dims[-2], dims[-1]
    a, origin_a = resolve_size(project, first, scope)
    b, origin_b = resolve_size(project, second, scope)
    if a is not None and b is not None:
        return a == b, (a if a == b else None), origin_a or origin_b
    if first.deep_equals(second):
        return True, None, ""
    return False, None, ""


# --------------------------------------------------------------------------- weight targets


@dataclass
class WeightTarget:
    """A weight matrix that an init operation sets."""

    name: str
    """For messages and data: `rnn.weight_hh_l0`, `fc.weight`, `W`."""
    kind: str
    """'recurrent' (an RNN's weight_hh), 'linear' (square nn.Linear weight) or 'parameter' (square tensor)."""
    n: int | None = None
    built_by: str = ""
    """What builds it, without the place: `hidden_size=256 of nn.RNN`, `nn.Linear(n, n)`."""
    site: tuple[Path, cst.CSTNode] | None = None
    """The construction call, for `at model.py:30` (positions are computed only when a finding needs them)."""
    value_origin: str = ""
    """Where n comes from (`argparse default of --nhid (train.py:12)`)."""
    layer: dict | None = None
    unresolved: list[str] = field(default_factory=list)

    @property
    def shape(self) -> str:
        return f"{self.n} x {self.n}" if self.n is not None else "n x n"

    def origin(self, project: ProjectIndex) -> str:
        """`hidden_size=256 of nn.RNN at model.py:30, argparse default of --nhid (train.py:12)`."""
        text = self.built_by
        if self.site is not None:
            text += f" at {project.where(*self.site)}"
        return text + (f", {self.value_origin}" if self.value_origin else "")

    def layer_data(self, project: ProjectIndex) -> dict | None:
        """The layer's resolved configuration (`gradlint.index.layer_config`), with where it is built.
        For a square `nn.Linear` / `nn.Parameter`, what the code does with it: the stack, loop or
        cell the probe rebuilds (gradlint.index.weight_use); None when the code never multiplies
        by it."""
        if self.layer is None:
            if self.kind in ("linear", "parameter") and self.site is not None:
                from gradlint.index.weight_use import square_weight_use  # weight_use reads weights too

                used = square_weight_use(project, self.site[0], self.site[1], self.n, layer=self.kind == "linear")
                if used is None:
                    return None
                return dict(used, where=project.where(*self.site))
            return None
        data = dict(self.layer)
        if self.site is not None:
            data["where"] = project.where(*self.site)
        return data


def weight_target(
    node: cst.BaseExpression, scope: Scope, project: ProjectIndex, stack: tuple = ()
) -> WeightTarget | None:
    """What an init operation's tensor argument is, when it is a recurrent or square weight."""
    node = strip_data(node)
    if isinstance(node, cst.Name):
        looped = _loop_target(node.value, scope, project, stack)
        if looped is not None:
            return looped
    name = dotted_name(node)
    if name is None or _subscripted(node):
        return None
    parts = name.split(".")
    ref = resolve_path(parts, scope, project)
    if ref is None:
        return None
    return _target_of(ref, parts, project)


def _subscripted(node: cst.BaseExpression) -> bool:
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        if isinstance(node, cst.Subscript):
            return True
        node = node.value
    return False


def _display(parts: list[str]) -> str:
    return ".".join(parts[1:] if parts[0] == "self" and len(parts) > 1 else parts)


def _target_of(ref: ModuleRef, parts: list[str], project: ProjectIndex) -> WeightTarget | None:
    bound = ref.bound
    value = bound.value
    if not isinstance(value, cst.Call):
        return None
    display = _display(parts)
    layer = recurrent_layer(bound.model, value)
    if layer is not None:
        if len(ref.rest) != 1 or not _WEIGHT_HH.match(ref.rest[0]):
            return None
        return _recurrent_target(display, bound, project)
    name = qualified(bound.model, value.func)
    if name in LINEAR_CLASSES:
        if ref.rest != ("weight",):
            return None
        fan_in, fan_out = arg_value(value, 0, "in_features"), arg_value(value, 1, "out_features")
        if fan_in is None or fan_out is None:
            return None
        square, n, origin = square_size(project, bound.model, [fan_out, fan_in], bound.scope)
        if not square:
            return None
        built_by = f"nn.Linear({code(fan_in)}, {code(fan_out)})"
        return WeightTarget(
            display, "linear", n, built_by, (bound.path, value), origin, unresolved=[] if n is not None else ["n"]
        )
    if ref.rest:
        return None
    tensor = _parameter_tensor(bound)
    if tensor is None:
        return None
    shape = tensor_shape(bound.model, tensor)
    if shape is None:
        return None
    square, n, origin = square_size(project, bound.model, shape[1], bound.scope)
    if not square:
        return None
    built_by = f"`{shorten(code(value), 50)}`"
    return WeightTarget(
        display, "parameter", n, built_by, (bound.path, value), origin, unresolved=[] if n is not None else ["n"]
    )


def _parameter_tensor(bound: Bound) -> cst.Call | None:
    """The tensor construction inside `nn.Parameter(torch.empty(n, n))` (or a requires_grad tensor)."""
    value = bound.value
    if not isinstance(value, cst.Call):
        return None
    name = qualified(bound.model, value.func)
    if name in PARAMETER_CLASSES:
        inner = arg_value(value, 0, "data")
        return tensor_call(inner) if inner is not None else None
    tensor = unwrap_tensor(value)
    if isinstance(tensor, cst.Call) and requires_grad(value):
        return tensor
    return None


def _recurrent_target(display: str, bound: Bound, project: ProjectIndex) -> WeightTarget | None:
    call = bound.value
    assert isinstance(call, cst.Call)
    layer = recurrent_layer(bound.model, call) or ""
    config = resolve_layer(project, bound.path, bound.model, call, layer, bound.function)
    if config.get("proj_size") or "proj_size" in config.unresolved:
        return None  # with projections the recurrence goes through an (h, proj_size) matrix
    n = config.integer("hidden_size")
    n = n if n is not None and n > 0 else None
    origin = config.origins.get("hidden_size", "") if n is not None else ""
    hidden = arg_value(call, 1, "hidden_size")
    text = f"hidden_size={n if n is not None else code(hidden) if hidden is not None else '?'}"
    unresolved = [] if n is not None else ["hidden_size"]
    return WeightTarget(
        display, "recurrent", n, f"{text} of nn.{layer}", (bound.path, call), origin, config.data(), unresolved
    )


def layer_weight_target(project: ProjectIndex, path: Path, call: cst.Call, function, display: str) -> WeightTarget | None:
    """The recurrent weight of the layer built by `call` in the checked file (`function`: the
    libcst function it sits in), named `display` in messages."""
    summary = project.summary(path)
    if summary is None:
        return None
    bound = Bound(call, path, summary, project.function_summary(path, function))
    return _recurrent_target(display, bound, project)


def _loop_target(name: str, scope: Scope, project: ProjectIndex, stack: tuple) -> WeightTarget | None:
    """`p` in `for name, p in self.rnn.named_parameters(): if "weight_hh" in name: ...`."""
    for index in range(len(stack) - 1, -1, -1):
        entry = stack[index]
        if entry[0] != "for":
            continue
        loop: cst.For = entry[1]
        target = loop.target
        if isinstance(target, cst.Name):
            if target.value != name:
                continue
            return _listed_target(loop.iter, scope, project)
        if not isinstance(target, cst.Tuple) or len(target.elements) != 2:
            continue
        names = [element.value.value if isinstance(element.value, cst.Name) else None for element in target.elements]
        if names[1] != name:
            continue
        iterator = loop.iter
        if isinstance(iterator, cst.Call) and dotted_name(iterator.func) == "list" and iterator.args:
            iterator = iterator.args[0].value
        if not (
            isinstance(iterator, cst.Call)
            and isinstance(iterator.func, cst.Attribute)
            and iterator.func.attr.value == "named_parameters"
        ):
            return None
        if names[0] is None or not any(
            entry[0] == "if" and _selects_weight_hh(entry[1], names[0]) for entry in stack[index + 1 :]
        ):
            return None
        owner = dotted_name(iterator.func.value)
        if owner is None:
            return None
        ref = resolve_path(owner.split("."), scope, project)
        if ref is None:
            return None
        label = f"{_display(owner.split('.'))}.weight_hh" if owner != "self" else "weight_hh"
        if recurrent_layer(ref.bound.model, ref.bound.value) is not None and not ref.rest:
            return _recurrent_target(label, ref.bound, project)
        if ref.owner is not None and ref.owner_path is not None and ref.owner_model is not None and not ref.rest:
            return _class_recurrent_target(ref.owner, ref.owner_path, ref.owner_model, project, label)
        return None
    return None


def _listed_target(iterator: cst.BaseExpression, scope: Scope, project: ProjectIndex) -> WeightTarget | None:
    """`for w in (self.rnn.weight_hh_l0, self.rnn.weight_hh_l1):` -> the common target."""
    if not isinstance(iterator, (cst.List, cst.Tuple)) or not iterator.elements:
        return None
    targets = [weight_target(element.value, scope, project) for element in iterator.elements]
    if any(target is None for target in targets):
        return None
    first = targets[0]
    assert first is not None
    if any(target.kind != first.kind or target.n != first.n for target in targets if target is not None):
        return None
    return first


def _class_recurrent_target(
    info: ClassSummary, path: Path, symbol_model: FileSummary, project: ProjectIndex, label: str
) -> WeightTarget | None:
    """`self.named_parameters()` filtered to weight_hh: the class's recurrent layers, when they agree on h."""
    found: list[WeightTarget] = []
    for attribute, span in info.attribute_values.items():
        value = symbol_model.expression(span)
        if value is None:
            continue
        layer_bound = unwrap_module(Bound(value, path, symbol_model, info.attribute_functions.get(attribute)))
        if recurrent_layer(layer_bound.model, layer_bound.value) is None:
            continue
        target = _recurrent_target(f"{attribute}.weight_hh", layer_bound, project)
        if target is None:
            return None
        found.append(target)
    if not found or any(target.n != found[0].n for target in found):
        return None
    found[0].name = label
    return found[0]


def _selects_weight_hh(test: cst.BaseExpression, name: str) -> bool:
    """`"weight_hh" in name`, `name.startswith("weight_hh")`, `"hh" in name and "weight" in name`."""
    mentions_hh = False
    for node in _conjuncts(test):
        if isinstance(node, cst.UnaryOperation):
            return False
        if isinstance(node, cst.Comparison) and len(node.comparisons) == 1:
            target = node.comparisons[0]
            if isinstance(target.operator, cst.NotIn):
                continue
            if not isinstance(target.operator, cst.In):
                continue
            literal = string_value(node.left)
            if literal is None or not (isinstance(target.comparator, cst.Name) and target.comparator.value == name):
                continue
            if "bias" in literal or "ih" in literal.replace("weight", ""):
                return False
            mentions_hh |= "hh" in literal
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if dotted_name(node.func.value) != name or node.func.attr.value not in ("startswith", "endswith"):
                continue
            literal = string_value(node.args[0].value) if node.args else None
            if literal is None or "bias" in literal:
                return False
            mentions_hh |= "hh" in literal
    return mentions_hh


def _conjuncts(test: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(test, cst.BooleanOperation):
        if isinstance(test.operator, cst.Or):
            return [test]  # an `or` may select other parameters too
        return _conjuncts(test.left) + _conjuncts(test.right)
    return [test]


def owner_class(summary: FileSummary, function: FunctionSummary | None) -> ClassSummary | None:
    """The class whose method (or a function nested in it) `function` is (only a method the
    class holds, as `gradlint.analysis.layers.owner_class` has it for libcst)."""
    while function is not None and function.class_name is None:
        function = function.parent
    if function is None or function.class_name is None:
        return None
    info = summary.classes.get(function.class_name)
    return info if info is not None and info.methods.get(function.name) is function else None
