"""The project's answers to a checked file's model (gradlint.analysis.model.Oracle): what a
call the file cannot inline does, what an object is, from gradlint.index.behaviour; and what
the configuration's `clip-functions` / `detach-functions` declare for code that cannot be read.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis.model import CallEffect, Event, Function, Oracle, Role
from gradlint.analysis.names import dotted_name
from gradlint.analysis.roles import is_one_shot
from gradlint.index.behaviour import Behaviour
from gradlint.index.summary import FileSummary

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex


class FileOracle(Oracle):
    """The project's answers for one checked file's model (gradlint.analysis.model.Oracle)."""

    def __init__(self, project: "ProjectIndex", behaviour: Behaviour, path: Path) -> None:
        self.project = project
        self.behaviour = behaviour
        self.path = path

    def _summary(self) -> FileSummary | None:
        return self.project.summary(self.path)

    def remember(self, key: str, table: dict, compute):
        return self.project.deps.memo(table, key, compute)

    def declared(self, qualified: str) -> str | None:
        return self.behaviour.declared.get(qualified)

    def call_effect(self, function: Function | None, event: Event) -> CallEffect | None:
        summary = self._summary()
        if summary is None:
            return None
        spelled = event.name or ""
        declared = self.behaviour.declared.get(event.qualified or "")
        if declared == "clip":
            return CallEffect(clips=f"`{spelled}(...)` is declared in `clip-functions`", form="declared", resolved=True)
        if declared == "detach":
            return CallEffect(detaches=True, form="declared", resolved=True)
        owner = self.project.function_summary(self.path, function)
        target = self.behaviour.callee(self.path, summary, owner, spelled, event.qualified)
        if target is None:
            return None
        effects = self.behaviour.effects(target.path, target.summary, target.function)
        clips = self.behaviour.describe_clip(effects, spelled) if effects.clips is not None else None
        clips_if = self.behaviour.describe_dispatch(effects, spelled) if effects.clips_if is not None else None
        return CallEffect(clips=clips, zeroes=effects.zeroes, detaches=effects.detaches, resolved=True, clips_if=clips_if)

    def returns_iterator(self, function: Function | None, call: cst.Call) -> bool | None:
        summary = self._summary()
        spelled = dotted_name(call.func)
        if summary is None or spelled is None:
            return None
        owner = self.project.function_summary(self.path, function)
        target = self.behaviour.callee(self.path, summary, owner, spelled, summary.qualify(spelled))
        if target is None:
            return None
        if target.function.facts.yields:
            return True
        returns = [target.summary.expression(span) for span in target.function.facts.returns]
        return bool(returns) and all(is_one_shot(value) for value in returns)

    def role(self, function: Function | None, value: cst.BaseExpression, position: int | None = None) -> Role | None:
        summary = self._summary()
        if summary is None:
            return None
        owner = self.project.function_summary(self.path, function)
        return self.behaviour.role_of_value(self.path, summary, owner, value, position=position)

    def parameter_role(self, function: Function, name: str) -> Role | None:
        summary = self._summary()
        owner = self.project.function_summary(self.path, function)
        if summary is None or owner is None:
            return None
        return self.behaviour.parameter_role(self.path, summary, owner, name)
