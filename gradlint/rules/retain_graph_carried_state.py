"""GL111 retain-graph-carried-state: backward(retain_graph=True) in a loop that carries a state."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.recurrence import carried_states
from gradlint.findings import Severity
from gradlint.rules._helpers import text
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class RetainGraphCarriedState(Rule):
    code = "GL111"
    name = "retain-graph-carried-state"
    severity = Severity.WARNING
    summary = "backward(retain_graph=True) in a loop that carries a recurrent state turns truncated BPTT into backprop through the whole history."
    triggers = ("retain_graph",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for state in carried_states(model):
            for occ in state.context.occurrences:
                if occ.kind is not Kind.BACKWARD or not occ.event.retain_graph or not occ.inside(state.loop):
                    continue
                yield Diagnostic(
                    occ.event.node,
                    f"{text(model, occ.event)} keeps every previous iteration's graph alive while `{state.name}` "
                    f"is carried from line {ctx.line_of(state.call.event.node)}: each backward runs through the "
                    "whole history, slower every step and with gradients that compound",
                    hint=f"Detach `{state.name}` each iteration (repackage_hidden) and drop `retain_graph=True`.",
                    related=((state.call.event.node, f"`{state.name}` is carried here"),),
                    fix_safety="unsafe",
                )
