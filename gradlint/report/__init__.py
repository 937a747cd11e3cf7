"""Reporters: turn a `Report` into text for a stream, one module per output format.

Adding a format is one module with a function of the `Reporter` shape and one entry in
`_REPORTERS`. Reporters read only the `Report` they are given (plus the rule registry and
rule documents for SARIF) and never print skipped files or internal errors themselves in
the human formats: the CLI sends those to stderr.
"""

from __future__ import annotations

from typing import Protocol, TextIO

from gradlint.findings import Report
from gradlint.report.github import write_github
from gradlint.report.json_format import write_json
from gradlint.report.sarif import write_sarif
from gradlint.report.text import write_concise, write_text


class Reporter(Protocol):
    def __call__(
        self,
        report: Report,
        stream: TextIO,
        *,
        color: bool = False,
        statistics: bool = False,
        quiet: bool = False,
    ) -> None: ...


_REPORTERS: dict[str, Reporter] = {
    "text": write_text,
    "concise": write_concise,
    "json": write_json,
    "sarif": write_sarif,
    "github": write_github,
}

FORMATS: tuple[str, ...] = ("text", "concise", "json", "sarif", "github")
"""Every output format, the default first (the order `--format` lists them in)."""

if set(FORMATS) != set(_REPORTERS):
    raise RuntimeError("gradlint.report: FORMATS and the reporter table must name the same formats")


def write_report(
    report: Report,
    fmt: str,
    stream: TextIO,
    *,
    color: bool = False,
    statistics: bool = False,
    quiet: bool = False,
) -> None:
    """Render `report` in format `fmt` onto `stream`.

    `color`, `statistics` and `quiet` shape the human formats (text, concise); the machine
    formats (json, sarif, github) ignore them.
    """
    try:
        reporter = _REPORTERS[fmt]
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r} (expected one of: {', '.join(FORMATS)})") from None
    reporter(report, stream, color=color, statistics=statistics, quiet=quiet)


__all__ = ["FORMATS", "Reporter", "write_report"]
