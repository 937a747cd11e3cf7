"""GL108 bptt-hidden-not-detached: a hidden state fed back each iteration without detach()."""

from __future__ import annotations

import re
from typing import Iterator

import libcst as cst

from gradlint.analysis.model import FileModel, snippet
from gradlint.analysis.names import dotted_name, last_segment
from gradlint.analysis.recurrence import CarriedState, carried_states
from gradlint.findings import Severity
from gradlint.fix import EnsureImport, FixSpec, InsertBefore, no_fix
from gradlint.rules.base import Diagnostic, Rule, RuleContext

# Layers whose state is one tensor, and those whose state is an `(h, c)` tuple.
_TENSOR_STATE_LAYERS = {"torch.nn.RNN", "torch.nn.GRU", "torch.nn.RNNCell", "torch.nn.GRUCell"}
_TUPLE_STATE_LAYERS = {"torch.nn.LSTM", "torch.nn.LSTMCell"}
# Calls that build a fresh tensor (a zero initial state).
_TENSOR_FACTORIES = {
    "zeros", "ones", "randn", "rand", "empty", "full", "tensor",
    "zeros_like", "ones_like", "randn_like", "rand_like", "empty_like", "full_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor",
}


class BpttHiddenNotDetached(Rule):
    code = "GL108"
    name = "bptt-hidden-not-detached"
    severity = Severity.WARNING
    summary = "A recurrent hidden state is fed back into the model each iteration without detach(), so backward runs through the whole history."
    fix = "unsafe"
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        by_call: dict[int, list[CarriedState]] = {}
        for state in carried_states(model):
            if not state.detached:
                by_call.setdefault(id(state.call.event), []).append(state)
        for states in by_call.values():
            first = states[0]
            call = first.call.event.value
            assert call is not None
            names = " and ".join(f"`{state.name}`" for state in states)
            verb = "is" if len(states) == 1 else "are"
            yield Diagnostic(
                first.call.event.node,
                f"{names} returned by `{snippet(model.module, call)}` {verb} fed back on the next iteration "
                "without detach(): every backward() runs through all previous iterations, so the gradient "
                "path (and its growth) spans the whole history",
                hint=(
                    f"Detach before the call: `{first.name} = repackage_hidden({first.name})` "
                    "(a helper returning `h.detach()`, or a tuple of them for LSTM)."
                ),
                related=((first.loop.node, "the loop that carries the state"),),
                fix_safety="unsafe",
                fix=_fix(model, states) or no_fix("unsafe", "the state cannot be detached here"),
            )


def _fix(model: FileModel, states: list[CarriedState]) -> FixSpec | None:
    """Detach each carried state on the line before the call that feeds it back: the state is
    certainly bound there (the call reads it), and any reset earlier in the loop still runs first.
    A state that starts as `None` (the first call builds it) is left as it is while it is None."""
    lines: list[str] = []
    needs_torch = False
    call = states[0].call.event.value
    assert isinstance(call, cst.Call)
    argument_order = cst.Module([]).code_for_node(call)
    # In the order the call passes them: `h` then `c` for `lstm(x, (h, c))`.
    for state in sorted(states, key=lambda state: _first_use(argument_order, state.name)):
        starts_none, shape = _state_shape(model, state)
        name = state.name
        if shape == "tensor":
            detached = f"{name}.detach()"
        else:
            item = "s" if last_segment(name) == "h" else "h"
            detached = f"tuple({item}.detach() for {item} in {name})"
            if shape != "tuple":  # a GRU's tensor or an LSTM's (h, c): the model does not say, so handle both
                detached = f"{name}.detach() if isinstance({name}, torch.Tensor) else {detached}"
                needs_torch = True
        if starts_none:
            detached = f"None if {name} is None else {detached}"
        lines.append(f"{name} = {detached}")
    parts: tuple = (InsertBefore(states[0].call.event.node, tuple(lines)),)
    if needs_torch:
        parts += (EnsureImport("torch"),)
    names = ", ".join(f"`{state.name}`" for state in states)
    return FixSpec("unsafe", f"detach {names} before the call", parts)


def _state_shape(model: FileModel, state: CarriedState) -> tuple[bool, str]:
    """(starts as None, 'tensor' | 'tuple' | 'unknown'), from what the code shows: the state's
    value before the call, the layer that is called, or the call's argument shape. A state that
    starts as None takes the shape the layer returns."""
    call = state.call.event.value
    assert isinstance(call, cst.Call)
    context, index = state.context, state.call.index
    value = None if state.call.via else context.binding(state.name, index)
    starts_none = isinstance(value, cst.Name) and value.value == "None"
    for arg in call.args:
        if isinstance(arg.value, (cst.Tuple, cst.List)) and any(
            dotted_name(element.value) == state.name for element in arg.value.elements
        ):
            return starts_none, "tensor"  # `lstm(x, (h, c))`: `h` is one element of the pair
    if state.call.via:
        # The call is in a helper inlined here: the caller's names are not its names, and a
        # caller may pass None on the first call.
        return True, "unknown"
    if isinstance(value, cst.Tuple) and len(value.elements) >= 2:
        return False, "tuple"
    if isinstance(value, cst.Call) and last_segment(dotted_name(value.func) or "") in _TENSOR_FACTORIES:
        return False, "tensor"
    layer = context.binding(dotted_name(call.func) or "", index)
    qualified = model.qualify_call(layer) if isinstance(layer, cst.Call) else None
    if qualified in _TENSOR_STATE_LAYERS:
        return starts_none, "tensor"
    if qualified in _TUPLE_STATE_LAYERS:
        return starts_none, "tuple"
    return starts_none, "unknown"


def _first_use(code: str, name: str) -> int:
    match = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", code)
    return match.start() if match else len(code)
