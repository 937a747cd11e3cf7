"""Stacks of modules: which Linear/Conv layers a container or a class chains, how many times
each is repeated, and whether the class normalizes or has residual connections (GL204's facts).

A module construction is placed in the `nn.Sequential`/`nn.ModuleList` that holds it (through
lists it is appended to and `*layers`), or in the class that keeps it as an attribute; loops,
comprehensions and `[...] * N` around it multiply it, with N resolved through the project index.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import libcst as cst

from gradlint.analysis.layers import (
    STACK_KINDS,
    ancestors,
    function_of,
    in_comprehension_element,
    in_loop_body,
    is_container,
    is_normalization,
    owner_class,
    torch_nn_name,
)
from gradlint.analysis.model import CallSite, ClassInfo, FileModel, in_class
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import children, walk
from gradlint.index.counts import ONCE, Count, element_repeats, loop_count, repeat_factor

_TRANSPARENT = (cst.Arg, cst.Element, cst.StarredElement, cst.List, cst.Tuple, cst.DictElement, cst.Dict)
_TRANSPARENT_CALLS = {"OrderedDict", "collections.OrderedDict", "list", "tuple", "dict"}
_LIST_METHODS = {"append", "extend", "insert", "add_module", "register_module"}
MAX_LISTED = 1000
"""Longest `layers`/`widths` list a finding's data spells out."""


class Factor:
    """One loop, comprehension or list multiplication, evaluated once and shared by all the
    modules it repeats."""

    def __init__(self, node: cst.CSTNode, evaluate: Callable[[], Count | None]) -> None:
        self.node = node
        self._evaluate = evaluate
        self._value: Count | None = None

    def value(self) -> Count:
        if self._value is None:
            self._value = self._evaluate() or Count(None)
        return self._value


@dataclass
class Block:
    """A class of the project whose instances a stack repeats (`[Block(w) for _ in range(n)]`)."""

    name: str
    where: str
    depth: int
    """Linear/Conv layers one instance chains."""
    breaks: str | None
    """Why the class is not a plain chain (`normalizes`, `has a residual connection`), else None."""
    layers: list[tuple[Any, Any, Any, str]] = field(default_factory=list)
    """(path, model, CallSite, kind) of its layers in order (widths are resolved in its scope)."""
    activation: str | None = None


@dataclass(eq=False)
class Placed:
    """A module construction and the stack it ends up in."""

    site: CallSite
    index: int
    """Its position among the file's calls (source order)."""
    kind: str
    """`Linear`, `Conv2d`, `ReLU`, `BatchNorm1d`, `norm` (a project's own norm)."""
    factors: tuple[Factor, ...]
    """What multiplies it (loops, comprehensions, `[...] * N`), resolved only when asked: most
    stacks are ruled out by a norm or a residual first, and resolving costs."""
    repeats: tuple[int, ...]
    """The loops, comprehensions and `[...] * N` repeating it, innermost first (ids)."""
    container: cst.Call | None = None
    owner: ClassInfo | None = None
    """The class holding it as attributes when no container holds it."""
    attribute: str | None = None
    """`fc1` for `self.fc1 = nn.Linear(...)` (the class's own stacks are chained through these)."""
    block: Block | None = None
    """For an instance of a project class: what one instance stacks."""

    @cached_property
    def count(self) -> Count:
        total = ONCE
        for factor in self.factors:
            total = total.times(factor.value())
        return total

    @property
    def is_layer(self) -> bool:
        return self.kind in STACK_KINDS or (self.block is not None and self.block.depth > 0)

    @property
    def is_norm(self) -> bool:
        """A normalization layer, or a block that normalizes or skips (either breaks the product)."""
        return self.kind == "norm" or (self.block is not None and self.block.breaks is not None)

    @property
    def layers_each(self) -> int:
        """Linear/Conv layers per repetition (a block's own depth)."""
        return self.block.depth if self.block is not None else 1


@dataclass
class Stack:
    node: cst.CSTNode
    what: str
    placed: list[Placed] = field(default_factory=list)
    owner: ClassInfo | None = None
    container: cst.Call | None = None


# --------------------------------------------------------------------------- stacks


def stacks(project: Any, path: Path, model: FileModel, depth: int = 0) -> list[Stack]:
    """Module constructions grouped by the container (`nn.Sequential`/`nn.ModuleList`) or the
    class (separate attributes) that holds them."""
    resolver = project.resolver
    by_container: dict[int, Stack] = {}
    by_class: dict[str, Stack] = {}
    shared: dict = {}
    containing = {id(site.function) for site in model.calls if is_container(site.qualified)}
    for index, site in enumerate(model.calls):
        kind = _module_kind(site)
        if kind is None and (id(site.function) not in containing or not _may_be_block(site)):
            continue  # a project class counts only in a function that builds a container
        scope = project.scope(path, site.function)
        placed = _place(model, site, index, kind or "block", resolver, scope, shared)
        if placed is None:
            continue
        if kind is None:
            # A project class counts inside a container only (resolving it reads its file).
            block = project_block(project, path, site, depth) if placed.container is not None else None
            if block is None:
                continue
            placed.kind, placed.block = block.name, block
        if placed.container is not None:
            stack = by_container.get(id(placed.container))
            if stack is None:
                container = placed.container
                name = dotted_name(container.func) or "nn.Sequential"
                info = owner_class(model, function_of(model, container))
                stack = Stack(container, f"This `{name}(...)`", owner=info, container=container)
                by_container[id(container)] = stack
            stack.placed.append(placed)
        elif placed.owner is not None:
            info = placed.owner
            stack = by_class.get(info.name)
            if stack is None:
                stack = Stack(info.node, f"Class `{info.name}`", owner=info)
                by_class[info.name] = stack
            stack.placed.append(placed)
    return [*by_container.values(), *by_class.values()]


def class_stack(model: FileModel, stack: Stack, minimum: int) -> list[Placed]:
    """What a class stacks through its own attributes: the longest chain of its Linear/Conv
    attributes applied one to the output of another in its methods (`self.fc2(F.relu(self.fc1(x)))`,
    through locals and calls of its other methods); else the layers it builds in loops.
    Attributes used side by side (gate projections, several heads) are not a stack."""
    attributes = {p.attribute: p for p in stack.placed if p.attribute and p.is_layer}
    looped = [p for p in stack.placed if p.attribute is None]
    norms = [p for p in stack.placed if p.is_norm]
    info = stack.owner
    chain: list[Placed] = []
    if info is not None and len(attributes) >= minimum:
        path = _ChainFinder(info, set(attributes)).longest()
        chain = [
            Placed(attributes[name].site, index, attributes[name].kind, (), (index,), owner=info, attribute=name)
            for index, name in enumerate(path)
        ]
    if len(chain) >= minimum:
        return chain + norms
    return looped + norms


class _ChainFinder:
    """Longest path of layer attributes through the data flow of a class's methods."""

    def __init__(self, info: ClassInfo, layers: set[str]) -> None:
        self.info = info
        self.layers = layers
        self.memo: dict[str, tuple[str, ...]] = {}
        self.active: set[str] = set()

    def longest(self) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for name in self.info.methods:
            if name != "__init__":
                best = max(best, self.method(name), key=len)
        return best

    def method(self, name: str) -> tuple[str, ...]:
        """The longest chain a method builds from its inputs (returned or assigned)."""
        if name in self.memo:
            return self.memo[name]
        method = self.info.methods.get(name)
        if method is None or name in self.active:
            return ()
        self.active.add(name)
        values: dict[str, tuple[str, ...]] = {}
        best: tuple[str, ...] = ()
        for node in walk(method.node.body):
            if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)) and node.value is not None:
                path = self.expression(node.value, values)
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for target in targets:
                    for inner in walk(target):
                        if isinstance(inner, cst.Name):
                            values[inner.value] = max(values.get(inner.value, ()), path, key=len) if isinstance(
                                node, cst.AugAssign
                            ) else path
                best = max(best, path, key=len)
            elif isinstance(node, cst.Return) and node.value is not None:
                best = max(best, self.expression(node.value, values), key=len)
        self.active.discard(name)
        self.memo[name] = best
        return best

    def expression(self, node: cst.CSTNode, values: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        if isinstance(node, cst.Name):
            return values.get(node.value, ())
        if isinstance(node, (cst.Lambda, cst.SimpleString, cst.Integer, cst.Float)):
            return ()
        inner: tuple[str, ...] = ()
        if isinstance(node, cst.Call):
            for arg in node.args:
                inner = max(inner, self.expression(arg.value, values), key=len)
            func = node.func
            if isinstance(func, cst.Attribute) and dotted_name(func.value) == "self":
                attribute = func.attr.value
                if attribute in self.layers:
                    return inner + (attribute,)
                if attribute in self.info.methods:
                    return inner + self.method(attribute)
                return inner
            if isinstance(func, cst.Attribute):
                inner = max(inner, self.expression(func.value, values), key=len)
            return inner
        for child in children(node):
            inner = max(inner, self.expression(child, values), key=len)
        return inner


_ACTIVATION_FUNCTIONS = {
    "torch.relu": "relu", "torch.tanh": "tanh", "torch.sigmoid": "sigmoid", "torch.nn.functional.relu": "relu",
    "torch.nn.functional.tanh": "tanh", "torch.nn.functional.gelu": "gelu", "torch.nn.functional.silu": "silu",
    "torch.nn.functional.leaky_relu": "leaky_relu", "torch.nn.functional.elu": "elu",
    "torch.nn.functional.sigmoid": "sigmoid",
}
_ACTIVATION_MODULES = {"ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "GELU": "gelu", "SiLU": "silu",
                       "LeakyReLU": "leaky_relu", "ELU": "elu", "SELU": "selu"}


def _may_be_block(site: CallSite) -> bool:
    callee = site.callee
    if site.qualified is not None and site.qualified.startswith(("torch.", "numpy.", "math.")):
        return False
    return bool(callee) and callee.rsplit(".", 1)[-1][:1].isupper()


def project_block(project: Any, path: Path, site: CallSite, depth: int = 0) -> Block | None:
    """What one instance of a project class stacks, when `site` constructs one: its Linear/Conv
    layers (chained through its attributes or in its own containers), whether it normalizes or
    has a residual connection, its activation. None for anything else (functions, torch classes,
    classes without layers). Cached per class for the run's trees."""
    callee = site.callee
    if site.qualified is not None and site.qualified.startswith(("torch.", "numpy.", "math.")):
        return None
    if not callee or not callee.rsplit(".", 1)[-1][:1].isupper() or depth > 3:
        return None
    symbol = project.resolve_callee(path, callee)
    if symbol is None or symbol.kind != "class":
        return None
    table = project.table("stacks.blocks")
    key = (str(symbol.path), symbol.name)
    if key in table:
        entry = table[key]
        if entry is not None:
            project.deps.note_all(entry[1])
            return entry[0]
        return None
    table[key] = None  # a class that stacks itself
    with project.deps.recording() as dependencies:
        block = _block_of(project, symbol.path, symbol.name, depth)
    table[key] = (block, dependencies)
    return block


def _block_of(project: Any, path: Path, name: str, depth: int) -> Block | None:
    model = project.model(path)
    info = model.classes.get(name) if model is not None else None
    if model is None or info is None:
        return None
    own = [s for s in stacks(project, path, model, depth + 1) if s.owner is info]
    best: list[Placed] = []
    breaks = None
    if has_residual(model, info):
        breaks = "has a residual connection"
    elif class_normalizes(model, info) or class_has_norm_layer(model, info):
        breaks = "normalizes"
    total = 0
    for stack in own:
        if stack.container is None:
            chain = [p for p in class_stack(model, stack, 1) if p.is_layer]
        else:
            chain = [p for p in stack.placed if p.is_layer]
        count = sum((p.count.value or 0) * p.layers_each for p in chain)
        if count > total:
            total, best = count, chain
    if total == 0:
        return None
    layers = [(path, model, p.site, p.kind) for p in best if p.block is None]
    activation = None
    for site in model.calls:
        if not in_class(site.function, info):
            continue
        nn_name = torch_nn_name(site.qualified)
        if nn_name in _ACTIVATION_MODULES:
            activation = _ACTIVATION_MODULES[nn_name]
            break
        if site.qualified in _ACTIVATION_FUNCTIONS:
            activation = _ACTIVATION_FUNCTIONS[site.qualified]
            break
    return Block(name, project.where(path, info.node), total, breaks, layers, activation)


def _module_kind(site: CallSite) -> str | None:
    name = torch_nn_name(site.qualified)
    if is_normalization(site.qualified, site.callee):
        return "norm"
    if name and name[:1].isupper() and name not in ("Sequential", "ModuleList", "ModuleDict", "Parameter"):
        return name
    return None


def _place(model: FileModel, site: CallSite, index: int, kind: str, resolver: Any, scope: Any, shared: dict) -> Placed | None:
    """Where one construction ends up, and what repeats it on the way (`shared` holds one
    Factor per loop or comprehension node, so modules repeated together share it)."""

    def factor(node: cst.CSTNode, evaluate: Callable[[], Count | None], key: cst.CSTNode | None = None) -> Factor:
        index = (id(node), id(key))
        if index not in shared:
            shared[index] = Factor(node, evaluate)
        return shared[index]

    factors: list[Factor] = []
    loops: list[Factor] = []
    container: cst.Call | None = None
    at_container: tuple[Factor, ...] = ()
    sink: tuple[str, str] | None = None
    chain = True
    """Still climbing through elements: an outer container can take over."""
    visited = {id(site.node)}
    for parent, child in ancestors(model, site.node, site.function):
        visited.add(id(child))
        if isinstance(parent, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            break
        if isinstance(parent, (cst.For, cst.While)):
            if in_loop_body(parent, child):
                loop = parent
                loops.append(factor(loop, lambda loop=loop: loop_count(loop, resolver, scope)))
            continue
        if not chain:
            continue
        if isinstance(parent, cst.CompFor):
            continue
        if isinstance(parent, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            if not _is_element(parent, child, visited):
                chain = False
                if container is None:
                    return None
                continue
            comp, seen = parent, set(visited)
            factors.append(
                factor(comp, lambda c=comp, ch=child, v=seen: element_repeats(c, ch, v, resolver, scope), key=child)
            )
            continue
        if isinstance(parent, cst.BinaryOperation):
            if not isinstance(parent.operator, cst.Multiply) or not isinstance(child, (cst.List, cst.Tuple, cst.ListComp)):
                chain = False
                continue
            operation = parent
            factors.append(factor(operation, lambda o=operation, ch=child: repeat_factor(o, ch, resolver, scope)))
            continue
        if isinstance(parent, _TRANSPARENT):
            continue
        if isinstance(parent, cst.Call):
            qualified = model.qualify_call(parent)
            spelled = dotted_name(parent.func) or ""
            if is_container(qualified):
                container, at_container = parent, tuple(factors)
                continue
            if spelled in _TRANSPARENT_CALLS or qualified in _TRANSPARENT_CALLS:
                continue
            if isinstance(parent.func, cst.Attribute) and parent.func.attr.value in _LIST_METHODS:
                receiver = dotted_name(parent.func.value)
                if container is None and receiver == "self":
                    sink = ("attribute", "add_module")  # `self.add_module(f"fc{i}", nn.Linear(...))`
                elif container is None and receiver:
                    sink = ("list", receiver)
                chain = False
                continue
            if spelled == "setattr" and parent.args and dotted_name(parent.args[0].value) == "self":
                if container is None:
                    sink = ("attribute", "setattr")
                chain = False
                continue
            chain = False  # wrapped in another call (a custom block, `weight_norm(...)`): not placed here
            if container is None:
                return None
            continue
        if isinstance(parent, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            chain = False
            if container is not None:
                continue
            raw = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
            if len(raw) != 1 or not isinstance(raw[0], (cst.Name, cst.Attribute)):
                return None  # `self.gates[g] = nn.Linear(...)`: an entry of a dict or list, side by side
            target = dotted_name(raw[0]) or ""
            if target.startswith("self.") and target.count(".") == 1:
                sink = ("attribute", target)
            elif target and "." not in target:
                sink = ("list", target)
            continue
        if container is None and sink is None:
            return None  # returned, passed along, used in an expression: not a stack member here
        chain = False
    function = site.function
    if container is not None:
        return _placed(site, index, kind, at_container, [], container=container)
    if sink is None:
        return None
    if sink[0] == "list":
        name = sink[1]
        if name.startswith("self.") and name.count(".") == 1:
            info = owner_class(model, function)
            bound = info.attribute_values.get(name[5:]) if info else None
            if isinstance(bound, cst.Call) and is_container(model.qualify_call(bound)):
                return _placed(site, index, kind, factors, loops, container=bound)
            return _placed(site, index, kind, factors, loops, owner=info) if info else None
        target = _list_container(model, site, name)
        if target is None:
            return None
        enclosing = {id(node) for node, _ in ancestors(model, target, site.function)}
        kept = [loop for loop in loops if id(loop.node) not in enclosing]
        return _placed(site, index, kind, factors, kept, container=target)
    info = owner_class(model, function)
    if info is None:
        return None
    placed = _placed(site, index, kind, factors, loops, owner=info)
    if sink[1].startswith("self.") and not loops and not factors:
        placed.attribute = sink[1][5:]
    return placed


def _is_element(comp: cst.BaseComp, child: cst.CSTNode, visited: set[int]) -> bool:
    """Whether the construction is one of the comprehension's elements (see `element_repeats`)."""
    if in_comprehension_element(comp, child):
        return True
    element = getattr(comp, "elt", None)
    for_in: cst.CompFor | None = comp.for_in
    while for_in is not None:
        if id(for_in.iter) in visited:
            return (
                isinstance(element, cst.Name) and isinstance(for_in.target, cst.Name)
                and for_in.target.value == element.value
            )
        for_in = for_in.inner_for_in
    return False


def _placed(
    site: CallSite,
    index: int,
    kind: str,
    factors: list[Factor] | tuple[Factor, ...],
    loops: list[Factor],
    container: cst.Call | None = None,
    owner: ClassInfo | None = None,
) -> Placed:
    """A member of a container, list or class: its comprehensions and enclosing loops repeat it."""
    everything = (*factors, *loops)
    repeats = tuple(id(f.node) for f in everything)
    return Placed(site, index, kind, everything, repeats, container=container, owner=owner)


def _list_container(model: FileModel, site: CallSite, name: str) -> cst.Call | None:
    """The `nn.Sequential(*layers)` / `nn.ModuleList(layers)` the list `name` is turned into, in
    the same function."""
    table = model.derived.get("gl204_list_containers")
    if table is None:
        table = {}
        for other in model.calls:
            if not is_container(other.qualified):
                continue
            for arg in other.node.args:
                if isinstance(arg.value, cst.Name):
                    table.setdefault((id(other.function), arg.value.value), other.node)
        model.derived["gl204_list_containers"] = table
    return table.get((id(site.function), name))


# ---------------------------------------------------------------------- the class


def has_residual(model: FileModel, info: ClassInfo) -> bool:
    """A skip connection in a method other than `__init__`: `x + f(x)`, `out += identity`,
    `out = out + x` (x an input of the method), `torch.add(x, ...)`."""
    for name, method in info.methods.items():
        if name == "__init__":
            continue
        inputs = {param for param in method.params if param not in ("self", "cls")}
        for node in walk(method.node):
            if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.AddAssign):
                if _skip_operand(node.value, inputs):
                    return True
            elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
                left, right = node.left, node.right
                if _tensorish(left) and _tensorish(right) and (
                    _skip_operand(left, inputs) or _skip_operand(right, inputs)
                    or _applied_to(left, right) or _applied_to(right, left)
                ):
                    return True
            elif isinstance(node, cst.Call):
                if model.qualify_call(node) == "torch.add":
                    return True
                if isinstance(node.func, cst.Attribute) and node.func.attr.value in ("add", "add_") and node.args:
                    if _skip_operand(node.args[0].value, inputs):
                        return True
    return False


_SKIP_NAME = re.compile(r"identity|residual|shortcut|skip|^res(_|$)|^inp", re.IGNORECASE)


def _skip_operand(node: cst.BaseExpression, inputs: set[str]) -> bool:
    """An input of the method, or a value named like a skip connection (`identity`, `residual`)."""
    return isinstance(node, cst.Name) and (node.value in inputs or bool(_SKIP_NAME.search(node.value)))


def _applied_to(name: cst.BaseExpression, other: cst.BaseExpression) -> bool:
    """`x + f(x)`: `other` is a call whose arguments use `name`."""
    if not isinstance(name, cst.Name) or not isinstance(other, cst.Call):
        return False
    return any(isinstance(n, cst.Name) and n.value == name.value for arg in other.args for n in walk(arg))


def _tensorish(node: cst.BaseExpression) -> bool:
    """A name, a subscript or a call: could be a tensor (a literal or a bare attribute is not counted)."""
    if isinstance(node, cst.Name):
        return node.value not in ("None", "True", "False")
    return isinstance(node, (cst.Call, cst.Subscript))


def class_normalizes(model: FileModel, info: ClassInfo) -> bool:
    """The class applies a weight or spectral norm, or a functional normalization, somewhere."""
    for site in model.calls:
        if in_class(site.function, info) and is_normalization(site.qualified, site.callee):
            if torch_nn_name(site.qualified) is None:
                return True
    return False


def class_has_norm_layer(model: FileModel, info: ClassInfo) -> bool:
    return any(in_class(site.function, info) and is_normalization(site.qualified, site.callee) for site in model.calls)
