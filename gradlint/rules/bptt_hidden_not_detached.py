"""GL108 bptt-hidden-not-detached: a hidden state fed back each iteration without detach()."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, snippet
from gradlint.analysis.recurrence import CarriedState, carried_states
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class BpttHiddenNotDetached(Rule):
    code = "GL108"
    name = "bptt-hidden-not-detached"
    severity = Severity.WARNING
    summary = "A recurrent hidden state is fed back into the model each iteration without detach(), so backward runs through the whole history."
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
            )
