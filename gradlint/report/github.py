"""The `github` format: GitHub Actions workflow commands, one annotation per finding.

    ::error file=train.py,line=12,col=5,endLine=12,endColumn=40,title=GL103 clipping-before-unscale::message

The message is the finding's message, then `help: ...` (the fix) and one `note: path:line: ...`
line per related site, as in the text format. Escaping follows GitHub's toolkit (`@actions/core`, `command.ts`): the message escapes `%`,
`\\r` and `\\n`; property values also escape `:` and `,`. Nothing else is printed.

In a notebook, `file` is the `.ipynb` file and `line` the line in its joined code cells (see
gradlint.notebook); the title names the cell and the line within it, `GL101 name (cell 4, line 3)`.
"""

from __future__ import annotations

from typing import TextIO

from gradlint.findings import Finding, Report, Severity

COMMANDS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "notice",
}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding, report: Report) -> str:
    properties: list[tuple[str, object]] = [("file", report.relative_to_root(finding)), ("line", finding.line)]
    if finding.end_line == finding.line:
        # GitHub accepts columns only for an annotation on a single line.
        properties.append(("col", finding.column))
    properties.append(("endLine", max(finding.end_line, finding.line)))
    if finding.end_line == finding.line:
        properties.append(("endColumn", finding.end_column))
    title = f"{finding.code} {finding.name}"
    if finding.cell is not None:  # `line` is the notebook's joined-code line; say which cell it is
        title += f" (cell {finding.cell}, line {finding.cell_line})"
    properties.append(("title", title))
    rendered = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties)
    message = finding.message if not finding.hint else f"{finding.message}\nhelp: {finding.hint}"
    path = report.relative_to_root(finding)
    message += "".join(f"\nnote: {related.place(path)}: {related.message}" for related in finding.related)
    return f"::{COMMANDS[finding.severity]} {rendered}::{escape_data(message)}"


def write_github(
    report: Report,
    stream: TextIO,
    *,
    color: bool = False,
    statistics: bool = False,
    quiet: bool = False,
) -> None:
    """Machine output: `color`, `statistics` and `quiet` do not change it."""
    for finding in sorted(report.findings, key=lambda f: f.sort_key()):
        stream.write(annotation(finding, report) + "\n")
