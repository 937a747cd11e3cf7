"""GL001 unused-suppression: A gradlint suppression comment that suppresses nothing."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class UnusedSuppression(Rule):
    code = "GL001"
    name = "unused-suppression"
    severity = Severity.WARNING
    summary = "A gradlint suppression comment that suppresses nothing."
    triggers = ()

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        return iter(())
