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
    CallEffect,
    ClassInfo,
    Event,
    FileModel,
    Function,
    Kind,
    enclosing_class,
)
from gradlint.analysis.names import dotted_name, last_segment
from gradlint.analysis.roles import assign_roles

MAX_INLINE_DEPTH = 4


@dataclass(eq=False)
class Occurrence:
    event: Event
    index: int
    path: tuple[Block, ...]
    """Enclosing blocks, outermost first (the context's body included)."""
    via: tuple[Event, ...] = ()
    """The helper calls through which this event was reached."""
    inlined: bool = False
    """For a CALL: its body (a helper of this file) is inlined after it."""

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

    # ------------------------------------------------------- what a call does

    def effect(self, occ: Occurrence) -> CallEffect | None:
        """What a call this file cannot inline does to gradients: read from the callee's body by
        the project index, declared in the configuration, or (only for a callee that cannot be
        read) guessed from its name. None for anything but such a call."""
        event = occ.event
        if event.kind is not Kind.CALL or occ.inlined:
            return None
        oracle = self.model.oracle
        owner = self.owner_function(occ)
        if oracle is not None:
            table = self.model.derived.setdefault("effects", {})
            found = oracle.remember(str(id(event)), table, lambda: oracle.call_effect(owner, event))
            if found is not None:
                return found
        name = last_segment(event.qualified or event.name or "")
        arguments = [dotted_name(arg.value.func if isinstance(arg.value, cst.Call) else arg.value) or "" for arg in event.call.args] if event.call is not None else []
        clips = vocab.clips_by_name(name, arguments)
        return CallEffect(
            clips=f"`{event.name}(...)` cannot be read, and its name says it clips gradients" if clips else None,
            form="assumed",
            zeroes="zero" in name.lower(),
            detaches=True if vocab.detaches_by_name(name) else None,
        )

    def owner_function(self, occ: Occurrence) -> Function | None:
        """The function whose body holds the event (a helper's, for an inlined one)."""
        owners = self.model.derived.get("steps.owners")
        if owners is None:
            owners = {id(event): None for event in self.model.body.events()}
            for function in self.model.all_functions:
                for event in function.body.events():
                    owners[id(event)] = function
            self.model.derived["steps.owners"] = owners
        return owners.get(id(occ.event), self.function)

    def clip_of(self, occ: Occurrence) -> Occurrence | None:
        """The occurrence as a clip: a CLIP event, a call whose callee clips (a project function,
        a configured one, or one named like a clip that cannot be read), or an optimizer step that
        clips by itself (a wrapper optimizer whose `step()` clips). None when it does not clip."""
        event = occ.event
        if event.kind is Kind.CLIP:
            return occ
        if event.kind is Kind.STEP and event.origin:
            return self._synthesised(occ, "wrapper", event.origin)
        effect = self.effect(occ)
        if effect is not None and effect.clips:
            return self._synthesised(occ, effect.form, effect.clips)
        return None

    def zeroes(self, occ: Occurrence) -> bool:
        if occ.kind is Kind.ZERO_GRAD:
            return True
        effect = self.effect(occ)
        return effect is not None and effect.zeroes

    def _synthesised(self, occ: Occurrence, form: str, origin: str) -> Occurrence:
        table = self.model.derived.setdefault("steps.synthesised", {})
        key = (id(self), occ.index)
        found = table.get(key)
        if found is None:
            event = occ.event
            clip = Event(Kind.CLIP, event.node, receiver=event.receiver, form=form, origin=origin, call=event.call)
            found = table[key] = Occurrence(clip, occ.index, occ.path, occ.via)
        return found

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
        """The clips between backward and step (a call whose callee clips counts, and so does a
        step of a wrapper optimizer that clips first)."""
        found = [clip for clip in map(self.context.clip_of, self.window) if clip is not None]
        own = self.context.clip_of(self.step)
        return found + ([own] if own is not None else [])

    @property
    def conditional_clips(self) -> list[str]:
        """Calls between backward and step that clip only when the configuration registers a
        clipping object (an algorithm, callback or plugin run over a collection)."""
        found = []
        for occ in self.window:
            effect = self.context.effect(occ)
            if effect is not None and effect.clips_if:
                found.append(effect.clips_if)
        return found

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
        for candidate in scoped:
            occ = self.context.clip_of(candidate) if candidate.kind in (Kind.CLIP, Kind.CALL) else None
            if occ is None or occ.event.form == "assumed":
                continue
            if exclusive(occ, self.step) or exclusive(occ, self.backward):
                continue  # another branch of the same if (or the path an early `continue` leaves)
            if occ.index > self.step.index:
                between = self.context.between(self.step.index, occ.index)
                if any(o.kind is Kind.BACKWARD for o in between):
                    continue
                later = self.context.occurrences[occ.index + 1 :]
                if any(o.kind is Kind.STEP and is_optimizer_step(self.context, o) for o in _until_backward(later)):
                    continue  # it clips for a later step after the same backward (a second optimizer)
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


def exclusive(first: Occurrence, second: Occurrence) -> bool:
    """Two occurrences in different branches of one if/elif/else: one iteration runs one of them."""
    return any(a.exclusive_with(b) for a in first.path for b in second.path)


def _until_backward(occurrences: list[Occurrence]) -> Iterator[Occurrence]:
    for occ in occurrences:
        if occ.kind is Kind.BACKWARD:
            return
        yield occ


def contexts(model: FileModel) -> list[Context]:
    """Every function and the module body, each flattened; then the steps a class splits over
    two methods (`backward(loss)` in one, `optimize(opt)` in another, see `class_contexts`)."""

    def compute() -> list[Context]:
        assign_roles(model)
        found = [flatten(model, None)] + [flatten(model, function) for function in model.all_functions]
        return found + class_contexts(model, found)

    if model.oracle is not None:
        return model.oracle.remember("contexts", model.derived, compute)
    if "contexts" not in model.derived:
        model.derived["contexts"] = compute()
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
            helper = None
            if item.qualified is None:
                helper = resolve_helper(context.model, function, item.name or "", context)
            if helper is not None and id(helper) not in active and len(via) < MAX_INLINE_DEPTH:
                _append(context, item, path, via).inlined = True
                _flatten_block(context, helper.body, path, via + (item,), helper, active | {id(helper)})
            else:
                # Defined elsewhere (another file, a star import): the project index reads it
                # when a rule asks what it does (Context.effect).
                _append(context, item, path, via)
            continue
        if item.kind is Kind.STEP and item.closure:
            closure = resolve_helper(context.model, function, item.closure)
            if closure is not None and id(closure) not in active:
                _flatten_block(context, closure.body, path, via + (item,), closure, active | {id(closure)})
        _append(context, item, path, via)


def _append(context: Context, event: Event, path: tuple[Block, ...], via: tuple[Event, ...]) -> Occurrence:
    occurrence = Occurrence(event, len(context.occurrences), path, via)
    context.occurrences.append(occurrence)
    return occurrence


def resolve_helper(model: FileModel, function: Function | None, name: str, context: Context | None = None) -> Function | None:
    """The same-module function or method that a call by this name runs, if any: a function, a
    method of the enclosing class (or a base class of this file), a class's method, or a method
    of an object built from a class of this file (`clipper = Clipper(); clipper.clip(...)`,
    `self.clipper.clip(...)` with `self.clipper = Clipper()`)."""
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
    if receiver in model.classes:
        return _method(model, model.classes[receiver], attr, set())
    if context is not None:
        value = context.binding(receiver, len(context.occurrences))
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and model.qualify_call(value) is None:
            return _method(model, model.classes.get(value.func.value), attr, set())
    return None


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
    """A step of an optimizer, a GradScaler or an engine (its role is decided by what the
    receiver is bound to, gradlint.analysis.roles)."""
    event = occ.event
    return event.kind is Kind.STEP and (
        event.via_scaler or event.role in ("optimizer", "engine") or event.receiver in context.model.owner_receivers
    )


def _find_steps(context: Context) -> Iterator[TrainingStep]:
    """Each optimizer step with the nearest backward before it. Two optimizers stepped after one
    backward (an encoder's and a decoder's) are two training steps: each is checked."""
    last_backward: Occurrence | None = None
    for occ in context.occurrences:
        if occ.kind is Kind.BACKWARD:
            last_backward = occ
        elif occ.kind is Kind.STEP and last_backward is not None:
            if not is_optimizer_step(context, occ):
                continue
            yield TrainingStep(context, last_backward, occ)


# ------------------------------------------------------------------ class protocols


def class_contexts(model: FileModel, regular: list[Context]) -> list[Context]:
    """Steps a class splits over two methods that its users call in turn: `backward(loss)` runs
    the backward, `optimize(opt)` (or `step()`) steps the optimizer, as guided-diffusion's
    MixedPrecisionTrainer does. The pair is one training step when no method of the class
    clips (a class that offers clipping, like fairseq's optimizers, leaves it to its caller),
    and no context of the file already pairs the step with a backward."""
    paired = {id(step.step.event) for context in regular for step in context.training_steps}
    by_function = {id(context.function): context for context in regular if context.function is not None}
    found: list[Context] = []
    for info in model.classes.values():
        methods = list(info.methods.values())
        backward_methods = [m for m in methods if _backward_service(by_function.get(id(m)), m)]
        if not backward_methods:
            continue
        if any(_clips_anywhere(context) for context in (by_function.get(id(m)) for m in methods) if context is not None):
            continue
        for method in methods:
            context = by_function.get(id(method))
            if context is None or method in backward_methods:
                continue
            steps = [
                occ for occ in context.occurrences
                if occ.kind is Kind.STEP and is_optimizer_step(context, occ) and id(occ.event) not in paired
            ]
            if not steps or any(occ.kind is Kind.BACKWARD for occ in context.occurrences):
                continue
            backward = by_function[id(backward_methods[0])]
            joined = Context(model, method)
            for occ in backward.occurrences + context.occurrences:
                joined.occurrences.append(
                    Occurrence(occ.event, len(joined.occurrences), occ.path, occ.via, occ.inlined)
                )
            found.append(joined)
    return found


def _clips_anywhere(context: Context) -> bool:
    """A clip in the context (one guessed from a name counts too: the class may clip, so its
    caller's steps are left alone)."""
    return any(
        context.clip_of(occ) is not None for occ in context.occurrences if occ.kind in (Kind.CLIP, Kind.CALL, Kind.STEP)
    )


def _backward_service(context: Context | None, method: Function) -> bool:
    """A method that runs the backward of a loss it is given and steps nothing."""
    if context is None:
        return False
    backwards = [occ for occ in context.occurrences if occ.kind is Kind.BACKWARD and not occ.event.owner]
    if not backwards or any(occ.kind is Kind.STEP for occ in context.occurrences):
        return False
    params = set(method.params) - {"self", "cls"}
    for occ in backwards:
        tensor = occ.event.tensor
        names = {dotted_name(node) for node in _names_in(tensor)} if tensor is not None else set()
        if names & params:
            return True
    return False


def _names_in(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    from gradlint.analysis.walk import walk

    for inner in walk(node):
        if isinstance(inner, cst.Name):
            yield inner


def optimizer_name(step: TrainingStep) -> str:
    """The optimizer a step steps, as written (`optimizer`, `self.opt`; the scaler's argument for
    `scaler.step(optimizer)`)."""
    event = step.step.event
    if event.via_scaler and isinstance(event.node, cst.Call) and event.node.args:
        return dotted_name(event.node.args[0].value) or "optimizer"
    return event.receiver or "optimizer"
