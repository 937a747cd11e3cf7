"""GL108 bptt-hidden-not-detached: a hidden state fed back each iteration without detach()."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, snippet
from gradlint.analysis.recurrence import carried_states
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class BpttHiddenNotDetached(Rule):
    code = "GL108"
    name = "bptt-hidden-not-detached"
    severity = Severity.WARNING
    summary = "A recurrent hidden state is fed back into the model each iteration without detach(), so backward runs through the whole history."
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for state in carried_states(model):
            if state.detached:
                continue
            call = state.call.event.value
            assert call is not None
            described = snippet(model.module, call)
            yield Diagnostic(
                state.call.event.node,
                f"`{state.name}` returned by `{described}` is fed back on the next iteration without detach(): "
                "every backward() runs through all previous iterations, so the gradient path (and its growth) "
                "spans the whole history",
                hint=(
                    f"Detach it before the call: `{state.name} = repackage_hidden({state.name})` "
                    "(a helper returning `h.detach()`, or a tuple of them for LSTM)."
                ),
                related=((state.loop.node, "the loop that carries the state"),),
                fix_safety="unsafe",
            )
