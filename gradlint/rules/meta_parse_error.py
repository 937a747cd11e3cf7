"""GL000 parse-error: The file is not valid Python, so nothing in it was checked."""

from __future__ import annotations

from typing import Iterator

from gradlint.analysis.model import FileModel
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class ParseError(Rule):
    code = "GL000"
    name = "parse-error"
    severity = Severity.ERROR
    summary = "The file is not valid Python, so nothing in it was checked."
    triggers = ()

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        return iter(())
