"""Recurrent state carried across training-loop iterations: `output, hidden = model(x, hidden)`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.model import Block, BlockKind, Event, FileModel, Function, Kind
from gradlint.analysis.names import dotted_name, last_segment
from gradlint.analysis.steps import Context, Occurrence, contexts, resolve_helper
from gradlint.analysis.walk import walk

# Names that hold a recurrent state. Anything else passed in and returned (metrics, augmented
# inputs) is not reported: a carried dict of metrics is not a graph through time.
STATE_NAME = re.compile(
    r"^(h|c|hx|cx|h0|c0|hn|cn|ht|ct|h_t|c_t|hc|s|st|state|states|carry|mem|mems|memory|hidden\w*|\w*_hidden"
    r"|\w*_state|state_\w*|h_\w+|\w+_h)$",
    re.IGNORECASE,
)


def _calls_detach(node: cst.CSTNode) -> bool:
    """`x.detach()`, `x.detach_()` or `x.data` anywhere under `node`."""
    for inner in walk(node):
        if isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute):
            if inner.func.attr.value in ("detach", "detach_"):
                return True
        elif isinstance(inner, cst.Attribute) and inner.attr.value == "data":
            return True
    return False




@dataclass(eq=False)
class CarriedState:
    context: Context
    loop: Block
    call: Occurrence
    """The assignment whose call takes and returns the state."""
    name: str
    detached: bool


def carried_states(model: FileModel) -> list[CarriedState]:
    if model.oracle is not None:  # the index replays what the answers rested on (the cache)
        return model.oracle.remember("carried", model.derived, lambda: _carried_states(model))
    if "carried" not in model.derived:
        model.derived["carried"] = _carried_states(model)
    return model.derived["carried"]


def _carried_states(model: FileModel) -> list[CarriedState]:
    found: list[CarriedState] = []
    seen: set[tuple[int, str]] = set()
    for context in contexts(model):
        training_loops = _training_loops(context)
        for occ in context.occurrences:
            value = occ.event.value
            if occ.kind is not Kind.ASSIGN or not isinstance(value, cst.Call) or occ.event.augmented:
                continue
            # Cheap tests first: a name both passed in and assigned, named like a state.
            names = [
                name for name in sorted(set(occ.event.targets) & _argument_names(value))
                if STATE_NAME.match(last_segment(name))
            ]
            if not names:
                continue
            # The innermost loop around the call that also runs a backward: the training loop.
            loop = next((b for b in reversed(occ.loops) if any(b is t for t in training_loops)), None)
            if loop is None or any(block.no_grad for block in occ.path) or _detaches(model, context, value):
                continue
            inside = [other for other in context.occurrences if other.inside(loop)]
            loop_targets = {name for block in _loops_within(inside, loop) for name in block.loop_target}
            for name in names:
                if name in loop_targets:
                    continue
                key = (id(occ.event), name)
                if key in seen:
                    continue
                seen.add(key)
                detached = _reset_elsewhere(model, context, inside, occ, name) or _callee_detaches(model, context, occ, value)
                found.append(CarriedState(context, loop, occ, name, detached))
    return _without_pass_through(found)


def _without_pass_through(found: list[CarriedState]) -> list[CarriedState]:
    """`hidden = repackage_hidden(hidden)` beside `output, hidden = model(x, hidden)`: a call that
    is given nothing but the state only passes it along (a repackaging helper that does not
    detach); the model call is where the state is carried, and where it is reported."""
    kept = []
    for state in found:
        call = state.call.event.value
        only_state = isinstance(call, cst.Call) and _argument_names(call) == {state.name} and len(call.args) == 1
        carried_elsewhere = any(
            other is not state and other.name == state.name and other.loop is state.loop and other.context is state.context
            for other in found
        )
        if not (only_state and carried_elsewhere):
            kept.append(state)
    return kept


def _training_loops(context: Context) -> list[Block]:
    loops: list[Block] = []
    for occ in context.of_kind(Kind.BACKWARD):
        for block in occ.loops:
            if not any(block is known for known in loops):
                loops.append(block)
    return loops


def _loops_within(inside: list[Occurrence], loop: Block) -> list[Block]:
    blocks: list[Block] = [loop]
    for occ in inside:
        for block in occ.path:
            if block.kind is BlockKind.LOOP and not any(block is known for known in blocks):
                blocks.append(block)
    return blocks


def _argument_names(call: cst.Call) -> set[str]:
    names: set[str] = set()
    for arg in call.args:
        value = arg.value
        elements = value.elements if isinstance(value, (cst.Tuple, cst.List)) else [value]
        for element in elements:
            inner = element.value if isinstance(element, cst.BaseElement) else element
            name = dotted_name(inner) if isinstance(inner, (cst.Name, cst.Attribute)) else None
            if name:
                names.add(name)
    return names


def _reset_elsewhere(model: FileModel, context: Context, inside: list[Occurrence], call: Occurrence, name: str) -> bool:
    """Another assignment in the loop cuts the state's history: a detach, a repackaging helper,
    or a fresh value that does not use the old one (`hidden = model.init_hidden(bsz)`).
    `hidden = hidden * mask` keeps the graph, so it does not count."""
    for occ in inside:
        if occ is call:
            continue
        if occ.kind is Kind.DETACH_INPLACE:
            return True
        if occ.kind is not Kind.ASSIGN or name not in occ.event.targets or occ.event.value is None:
            continue
        if _detaches(model, context, occ.event.value) or not _uses(occ.event.value, name):
            return True
    return False


def _detaches(model: FileModel, context: Context, value: cst.BaseExpression) -> bool:
    """`h.detach()`, `h.data`, or a call of a function whose body detaches (`repackage_hidden(h)`
    that returns `h.detach()`; one that returns `h` unchanged does not). A function in another
    file is read through the project index; only one that cannot be read is judged by its name
    (`repackage*`, `*detach*`), or by the configuration's `detach-functions`."""
    if _calls_detach(value):
        return True
    for inner in (node for node in walk(value) if isinstance(node, cst.Call)):
        if call_detaches(model, context.function, inner, 0):
            return True
    return False


def call_detaches(model: FileModel, function: Function | None, call: cst.Call, depth: int) -> bool:
    callee = dotted_name(call.func) or ""
    qualified = model.qualify_call(call)
    if not callee or (qualified or "").startswith("torch."):
        return False
    if qualified is None:
        helper = resolve_helper(model, function, callee)
        if helper is not None:
            return _function_detaches(model, helper, depth + 1)
    if model.oracle is not None:
        effect = model.oracle.call_effect(function, Event(Kind.CALL, call, name=callee, call=call, qualified=qualified))
        if effect is not None and effect.detaches is not None:
            return effect.detaches
        if effect is not None and effect.resolved:
            return False
    return vocab.detaches_by_name(last_segment(qualified or callee))


def _function_detaches(model: FileModel, function: Function, depth: int) -> bool:
    """A function of this file whose body detaches, by itself or through what it calls."""
    if _calls_detach(function.node):
        return True
    if depth > 4:
        return False
    for site in model.calls:
        if site.function is function and site.callee != function.name:
            if call_detaches(model, function, site.node, depth + 1):
                return True
    return False


def _uses(value: cst.BaseExpression, name: str) -> bool:
    return any(isinstance(node, (cst.Name, cst.Attribute)) and dotted_name(node) == name for node in walk(value))


def _callee_detaches(model: FileModel, context: Context, occ: Occurrence, call: cst.Call) -> bool:
    """The called helper, or the forward of the model class it instantiates, detaches by itself."""
    callee = dotted_name(call.func) or ""
    helper = resolve_helper(model, context.function, callee)
    if helper is not None and _calls_detach(helper.node):
        return True
    bound = context.binding(callee, occ.index)
    if isinstance(bound, cst.Call) and isinstance(bound.func, cst.Name):
        info = model.classes.get(bound.func.value)
        forward = info.methods.get("forward") if info else None
        if forward is not None and _calls_detach(forward.node):
            return True
    return False
