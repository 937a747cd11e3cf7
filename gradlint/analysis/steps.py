"""The training-step model: backward() ... optimizer.step(), with everything in between.

Each function (and the module body) is flattened into a sequence of event occurrences in
program order, with same-module helpers inlined where they are called. A training step
is an optimizer step paired with the nearest backward before it; its window is what runs
between the two, and its scope is the innermost loop holding both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.model import (
    Block,
    BlockKind,
    ClassInfo,
    Event,
    FileModel,
    Function,
    Kind,
    enclosing_class,
)
from gradlint.analysis.names import dotted_name, last_segment

MAX_INLINE_DEPTH = 4


@dataclass(eq=False)
class Occurrence:
    event: Event
    index: int
    path: tuple[Block, ...]
    """Enclosing blocks, outermost first (the context's body included)."""
    via: tuple[Event, ...] = ()
    """The helper calls through which this event was reached."""

    @property
    def kind(self) -> Kind:
        return self.event.kind

    def inside(self, block: Block) -> bool:
        return any(b is block for b in self.path)

    @property
    def loops(self) -> list[Block]:
        return [b for b in self.path if b.kind is BlockKind.LOOP]


@dataclass(eq=False)
class Context:
    """One function or the module body, flattened with its helpers inlined."""

    model: FileModel
    function: Function | None
    occurrences: list[Occurrence] = field(default_factory=list)

    def of_kind(self, *kinds: Kind) -> Iterator[Occurrence]:
        return (occ for occ in self.occurrences if occ.kind in kinds)

    def between(self, start: int, end: int) -> list[Occurrence]:
        return self.occurrences[start + 1 : end]

    def binding(self, name: str, before: int) -> cst.BaseExpression | None:
        """The value last assigned to `name` before occurrence `before` (None when unknown)."""
        for occ in reversed(self.occurrences[:before]):
            event = occ.event
            if event.kind is Kind.ASSIGN and event.targets == (name,) and event.augmented is None:
                return event.value
        if name.startswith("self.") and name.count(".") == 1:
            owner = self.owner_class()
            if owner is not None:
                return owner.attribute_values.get(name[5:])
        if "." not in name:
            return self.model.constants.get(name)
        return None

    def value_lookup(self, before: int):
        """Resolve bare names as Python would here: locals and parameters shadow module constants."""

        def lookup(name: str) -> cst.BaseExpression | None:
            for occ in reversed(self.occurrences[:before]):
                if occ.kind is Kind.ASSIGN and name in occ.event.targets:
                    if occ.event.targets == (name,) and occ.event.augmented is None:
                        return occ.event.value
                    return None
            function = self.function
            while function is not None:
                if name in function.params or _assigns(function, name):
                    return None
                function = function.parent
            return self.model.constants.get(name)

        return lookup

    def owner_class(self) -> ClassInfo | None:
        return enclosing_class(self.function, self.model)

    @cached_property
    def training_steps(self) -> list["TrainingStep"]:
        return list(_find_steps(self))


def _assigns(function: Function, name: str) -> bool:
    return any(event.kind is Kind.ASSIGN and name in event.targets for event in function.body.events())


@dataclass(eq=False)
class TrainingStep:
    context: Context
    backward: Occurrence
    step: Occurrence

    @property
    def window(self) -> list[Occurrence]:
        return self.context.between(self.backward.index, self.step.index)

    @cached_property
    def scope(self) -> Block | None:
        """The innermost loop holding both backward and step (None: the function body)."""
        common = None
        for left, right in zip(self.backward.path, self.step.path):
            if left is not right:
                break
            if left.kind is BlockKind.LOOP:
                common = left
        return common

    def in_scope(self) -> list[Occurrence]:
        scope = self.scope
        if scope is None:
            return self.context.occurrences
        return [occ for occ in self.context.occurrences if occ.inside(scope)]

    @property
    def clips(self) -> list[Occurrence]:
        return [occ for occ in self.window if occ.kind is Kind.CLIP]

    @property
    def is_engine_step(self) -> bool:
        return self.step.event.receiver in self.context.model.owner_receivers

    @cached_property
    def misplaced_clips(self) -> list[tuple[Occurrence, str]]:
        """Clips in the same iteration that run after the step or before the backward."""
        if self.clips:
            return []
        found: list[tuple[Occurrence, str]] = []
        scoped = self.in_scope()
        for occ in scoped:
            if occ.kind is not Kind.CLIP or occ.event.form == "assumed":
                continue
            if occ.index > self.step.index:
                between = self.context.between(self.step.index, occ.index)
                if not any(o.kind is Kind.BACKWARD for o in between):
                    found.append((occ, "after"))
            elif occ.index < self.backward.index:
                between = self.context.between(occ.index, self.backward.index)
                if not any(o.kind in (Kind.STEP, Kind.BACKWARD) for o in between):
                    found.append((occ, "before"))
        return found

    @property
    def accumulation_guard(self) -> Block | None:
        """The `if (i + 1) % accum == 0:` around the step that the backward is not inside."""
        for block in reversed(self.step.path):
            if self.backward.inside(block):
                return None
            if block.is_accumulation_guard:
                return block
        return None


def contexts(model: FileModel) -> list[Context]:
    """Every function and the module body, each flattened."""
    if "contexts" not in model.derived:
        model.derived["contexts"] = [flatten(model, None)] + [
            flatten(model, function) for function in model.all_functions
        ]
    return model.derived["contexts"]


def step_instances(model: FileModel) -> list[list[TrainingStep]]:
    """Each (backward, step) pair of the file with every context it was found in.

    A `train_step()` helper is seen on its own and again inlined into the loop that calls
    it; only the caller shows the loop (for GL107) or a clip after the call (for GL102).
    """
    if "steps" not in model.derived:
        groups: dict[tuple[int, int], list[TrainingStep]] = {}
        for context in contexts(model):
            for step in context.training_steps:
                groups.setdefault((id(step.backward.event), id(step.step.event)), []).append(step)
        model.derived["steps"] = list(groups.values())
    return model.derived["steps"]


def training_steps(model: FileModel) -> list[TrainingStep]:
    """Every training step instance, in every context it runs in."""
    return [step for group in step_instances(model) for step in group]


def flatten(model: FileModel, function: Function | None) -> Context:
    context = Context(model, function)
    body = function.body if function is not None else model.body
    _flatten_block(context, body, (), (), function, {id(function)} if function else set())
    return context


def _flatten_block(
    context: Context,
    block: Block,
    path: tuple[Block, ...],
    via: tuple[Event, ...],
    function: Function | None,
    active: set[int],
) -> None:
    path = path + (block,)
    for item in block.items:
        if isinstance(item, Block):
            _flatten_block(context, item, path, via, function, active)
            continue
        if item.kind is Kind.CALL:
            helper = resolve_helper(context.model, function, item.name or "")
            if helper is not None and id(helper) not in active and len(via) < MAX_INLINE_DEPTH:
                _flatten_block(context, helper.body, path, via + (item,), helper, active | {id(helper)})
            elif helper is None and "." not in (item.name or "") and "clip" in (item.name or "").lower():
                # A clip helper defined elsewhere (a star import, a builtin-like name): assume it clips.
                _append(context, Event(Kind.CLIP, item.node, form="assumed", call=item.call), path, via)
            _append(context, item, path, via)
            continue
        if item.kind is Kind.STEP and item.closure:
            closure = resolve_helper(context.model, function, item.closure)
            if closure is not None and id(closure) not in active:
                _flatten_block(context, closure.body, path, via + (item,), closure, active | {id(closure)})
        _append(context, item, path, via)


def _append(context: Context, event: Event, path: tuple[Block, ...], via: tuple[Event, ...]) -> None:
    context.occurrences.append(Occurrence(event, len(context.occurrences), path, via))


def resolve_helper(model: FileModel, function: Function | None, name: str) -> Function | None:
    """The same-module function or method that a call by this name runs, if any."""
    receiver, _, attr = name.rpartition(".")
    if not receiver:
        scope = function
        while scope is not None:
            if name in scope.local_functions:
                return scope.local_functions[name]
            scope = scope.parent
        return model.functions.get(name)
    if receiver in ("self", "cls"):
        owner = function
        while owner is not None and owner.class_name is None:
            owner = owner.parent
        if owner is None:
            return None
        return _method(model, model.classes.get(owner.class_name or ""), attr, set())
    return _method(model, model.classes.get(receiver), attr, set())


def _method(model: FileModel, info: ClassInfo | None, name: str, seen: set[str]) -> Function | None:
    if info is None or info.name in seen:
        return None
    if name in info.methods:
        return info.methods[name]
    seen.add(info.name)
    for base in info.bases:
        found = _method(model, model.classes.get(base), name, seen)
        if found is not None:
            return found
    return None


# ----------------------------------------------------------------------------- steps


def is_optimizer_step(context: Context, occ: Occurrence) -> bool:
    event = occ.event
    if event.via_scaler or event.receiver in context.model.owner_receivers:
        return True
    receiver = event.receiver or ""
    value = context.binding(receiver, occ.index)
    if isinstance(value, cst.Call):
        qualified = context.model.qualify_call(value)
        if vocab.is_optimizer_class(qualified):
            return True
        if vocab.is_scheduler_factory(qualified) or qualified in vocab.GRAD_SCALERS:
            return False
        if isinstance(value.func, cst.Attribute) and value.func.attr.value == "optimizers":
            return True  # Lightning manual optimization: opt = self.optimizers()
    return vocab.looks_like_optimizer(last_segment(receiver))


def _find_steps(context: Context) -> Iterator[TrainingStep]:
    last_backward: Occurrence | None = None
    paired_backward: Occurrence | None = None
    for occ in context.occurrences:
        if occ.kind is Kind.BACKWARD:
            last_backward = occ
        elif occ.kind is Kind.STEP and last_backward is not None:
            if not is_optimizer_step(context, occ):
                continue
            if paired_backward is last_backward:
                continue  # a second optimizer stepped on the same gradients: one training step
            paired_backward = last_backward
            yield TrainingStep(context, last_backward, occ)


def optimizer_name(step: TrainingStep) -> str:
    """The optimizer a step steps, as written (`optimizer`, `self.opt`; the scaler's argument for
    `scaler.step(optimizer)`)."""
    event = step.step.event
    if event.via_scaler and isinstance(event.node, cst.Call) and event.node.args:
        return dotted_name(event.node.args[0].value) or "optimizer"
    return event.receiver or "optimizer"
