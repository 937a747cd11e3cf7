"""Findings as the editor shows them: LSP diagnostics and hovers.

gradlint's positions are 1-based lines and 1-based columns counted in characters (code
points), end exclusive; LSP's are 0-based lines and columns counted in the code units of the
negotiated position encoding (UTF-16 unless the client offers another). A `Layout` says where
a checked file's lines are shown: in the text document itself, or, for a notebook, in its cells'
documents (gradlint reports a notebook's findings on the lines of its joined code cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from lsprotocol import types

from gradlint.findings import Finding, Severity
from gradlint.fix import split_lines
from gradlint.notebook import NotebookSource
from gradlint.report.sarif import help_uri
from gradlint.rules import RULES_BY_CODE

SOURCE = "gradlint"
"""The `source` of every diagnostic: editors show it beside the code."""

SEVERITIES: dict[Severity, types.DiagnosticSeverity] = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


def lines_of(text: str) -> list[str]:
    """The lines of a text without their endings, split where LSP splits them (\\r\\n, \\r, \\n)."""
    return [line.rstrip("\r\n") for line in split_lines(text)]


def units(text: str, encoding: str) -> int:
    """The length of `text` in the client's position units."""
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass
class Layout:
    """Where the lines of one checked file are shown in the client."""

    texts: dict[str, list[str]]
    """Document URI -> its lines (one URI for a `.py` file, one per cell for a notebook)."""
    place: Callable[[int], tuple[str, int] | None]
    """1-based line of the checked text -> (document URI, 0-based line there); None: nowhere."""
    uris: list[str] = field(default_factory=list)
    """Every document the file is shown in, in order (diagnostics are published for each)."""

    @classmethod
    def text_document(cls, uri: str, text: str) -> "Layout":
        lines = lines_of(text)
        return cls({uri: lines}, lambda line: (uri, line - 1) if line >= 1 else None, [uri])

    @classmethod
    def notebook(cls, cells: list[tuple[str, str]], notebook: NotebookSource | None) -> "Layout":
        """`cells`: (cell document URI, its text) for every cell, markdown ones included, in
        order: gradlint numbers cells among all of them. `notebook`: the joined code gradlint read."""
        texts = {uri: lines_of(text) for uri, text in cells}

        def place(line: int) -> tuple[str, int] | None:
            where = notebook.locate(line) if notebook is not None else None
            if where is None or not 0 < where[0] <= len(cells):
                return None
            return cells[where[0] - 1][0], where[1] - 1

        return cls(texts, place, [uri for uri, _ in cells])

    def line(self, uri: str, line: int) -> str:
        lines = self.texts.get(uri, [])
        return lines[line] if 0 <= line < len(lines) else ""

    def position(self, uri: str, line: int, column: int, encoding: str) -> types.Position:
        """`column`: 0-based, in characters."""
        text = self.line(uri, line)
        return types.Position(line=max(line, 0), character=units(text[: max(column, 0)], encoding))


def finding_location(finding: Finding, layout: Layout, encoding: str) -> tuple[str, types.Range] | None:
    """The document and range a finding is shown at; None when its line is in no document."""
    start = layout.place(finding.line)
    if start is None:
        return None
    uri, line = start
    begin = layout.position(uri, line, finding.column - 1, encoding)
    end_place = layout.place(finding.end_line)
    if end_place is not None and end_place[0] == uri and end_place[1] >= line:
        end = layout.position(uri, end_place[1], finding.end_column - 1, encoding)
    else:  # ends in another cell: show it to the end of its first line
        end = types.Position(line=line, character=units(layout.line(uri, line), encoding))
    if (end.line, end.character) < (begin.line, begin.character):
        end = begin
    if end == begin:  # an empty range (a syntax error's point): one character wide when there is one
        text = layout.line(uri, line)
        if finding.column - 1 < len(text):
            end = layout.position(uri, line, finding.column, encoding)
    return uri, types.Range(start=begin, end=end)


def diagnostic(finding: Finding, layout: Layout, encoding: str) -> tuple[str, types.Diagnostic] | None:
    """The finding as an LSP diagnostic, with the document it belongs to."""
    location = finding_location(finding, layout, encoding)
    if location is None:
        return None
    uri, where = location
    related = []
    for item in finding.related:
        place = layout.place(item.line)
        if place is None:
            continue
        other, line = place
        text = layout.line(other, line)
        start = layout.position(other, line, item.column - 1, encoding)
        end = types.Position(line=line, character=max(start.character, units(text.rstrip(), encoding)))
        related.append(
            types.DiagnosticRelatedInformation(
                location=types.Location(uri=other, range=types.Range(start=start, end=end)), message=item.message
            )
        )
    return uri, types.Diagnostic(
        range=where,
        message=finding.message,
        severity=SEVERITIES[finding.severity],
        code=finding.code,
        code_description=types.CodeDescription(href=help_uri(finding.code, finding.name)),
        source=SOURCE,
        related_information=related or None,
    )


def diagnostics(findings: Iterable[Finding], layout: Layout, encoding: str) -> dict[str, list[types.Diagnostic]]:
    """URI -> its diagnostics, for every document of the layout (empty lists clear old ones)."""
    shown: dict[str, list[types.Diagnostic]] = {uri: [] for uri in layout.uris}
    for finding in findings:
        converted = diagnostic(finding, layout, encoding)
        if converted is not None:
            shown.setdefault(converted[0], []).append(converted[1])
    return shown


def contains(where: types.Range, position: types.Position) -> bool:
    point = (position.line, position.character)
    return (where.start.line, where.start.character) <= point <= (where.end.line, where.end.character)


def overlaps(first: types.Range, second: types.Range) -> bool:
    return not (
        (first.end.line, first.end.character) < (second.start.line, second.start.character)
        or (second.end.line, second.end.character) < (first.start.line, first.start.character)
    )


def hover_text(finding: Finding) -> str:
    """Markdown: the rule, its summary, the fix (the finding's hint) and the rule's document."""
    rule = RULES_BY_CODE.get(finding.code)
    summary = rule.summary if rule is not None else finding.name
    parts = [f"**{finding.code}** `{finding.name}` ({finding.severity.label}): {summary}"]
    if finding.hint:
        parts.append(f"**Fix:** {finding.hint}")
    if finding.fix is not None:
        safety = getattr(finding.fix, "safety", None)
        parts.append("Quick fix available" + (" (unsafe: it changes training)" if safety != "safe" else "") + ".")
    parts.append(f"[{finding.code} {finding.name}]({help_uri(finding.code, finding.name)})")
    return "\n\n".join(parts)


def hover(findings: list[tuple[Finding, types.Range]]) -> types.Hover | None:
    """One hover for the findings under the cursor; None when there are none."""
    if not findings:
        return None
    text = "\n\n---\n\n".join(hover_text(finding) for finding, _ in findings)
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
        range=findings[0][1],
    )
