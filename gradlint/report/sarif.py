"""The `sarif` format: SARIF 2.1.0, one run, for GitHub code scanning and other SARIF viewers.

Every registered rule is described in `tool.driver.rules` (not only those with findings), with
its document as help when `gradlint.docs` can provide it. Paths are relative to the report's
root, which is given as `%SRCROOT%` in `originalUriBaseIds`. The output holds no timestamps,
so the same report always renders the same bytes.

Notebooks: a region in a `.ipynb` file would index its JSON text, where a cell's code sits inside
escaped strings, so no line/column of the real file is meaningful. The location keeps the
notebook as its artifact and the region in the notebook's joined code cells (the lines
gradlint.notebook builds, which is also what the other formats' `line` means), and carries the
cell on the location as `properties`: `{"cell": 4, "cellLine": 3}` (cell = 1-based position among
all cells). Viewers that know nothing of notebooks still open the right file; tools that do can
go to the cell.

Related sites (the text format's `note:` lines) are `relatedLocations`, and the message names
each as the text format does, `note: [train.py:116](1): ...`, an embedded link to it (SARIF
3.11.6), which is how GitHub code scanning shows related locations; literal brackets in such a
message are escaped (`\\[`). `partialFingerprints` hash the rule, the repository-relative path
and the line's text (`Report.fingerprint`), never the working directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import gradlint
from gradlint.findings import Finding, InternalError, Report, Severity, SkippedFile
from gradlint.rules import ALL_RULES
from gradlint.rules.base import Rule

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFORMATION_URI = "https://github.com/gradlint/gradlint"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "gradlint/v1"

LEVELS: dict[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
}


def help_uri(code: str, name: str) -> str:
    return f"{INFORMATION_URI}/blob/main/rules/{code}-{name}.md"


def _rule_document(code: str) -> str | None:
    """The rule's Markdown document, or None when gradlint.docs is missing or has none."""
    try:
        from gradlint.docs import rule_markdown
    except ImportError:
        return None
    try:
        text = rule_markdown(code)
    except (OSError, KeyError, ValueError):
        return None
    return text if isinstance(text, str) and text.strip() else None


def _tags(rule: type[Rule]) -> list[str]:
    if rule.code.startswith("GL0"):
        return ["gradlint", "meta"]
    return ["pytorch", "gradients", "training-stability"]


def rule_descriptor(rule: type[Rule]) -> dict[str, Any]:
    document = _rule_document(rule.code)
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.summary},
        "help": {"text": document or rule.summary, "markdown": document or rule.summary},
        "helpUri": help_uri(rule.code, rule.name),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {"tags": _tags(rule)},
    }


def _unknown_rule_descriptor(finding: Finding) -> dict[str, Any]:
    """For a finding whose code is not registered (a plugin, a stale baseline): still valid SARIF."""
    return {
        "id": finding.code,
        "name": finding.name,
        "shortDescription": {"text": finding.name},
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
    }


# -- locations -------------------------------------------------------------------------------


def _absolute(path: Path) -> Path:
    return path if path.is_absolute() else Path.cwd() / path


def root_uri(root: Path) -> str:
    uri = _absolute(root).as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _artifact_for_relative(relative: str) -> dict[str, Any]:
    """`relative` is what `Report.relative_to_root` gives: posix and relative, or absolute."""
    as_path = Path(relative)
    if as_path.is_absolute():
        return {"uri": as_path.as_uri()}
    return {"uri": quote(relative, safe="/"), "uriBaseId": SRCROOT}


def _artifact_for_path(path: str, root: Path) -> dict[str, Any]:
    """Skipped files and internal errors carry a string path (relative ones are taken from the cwd)."""
    absolute = _absolute(Path(path))
    try:
        relative = absolute.relative_to(_absolute(root)).as_posix()
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative, safe="/"), "uriBaseId": SRCROOT}


def escape_brackets(text: str) -> str:
    """Literal `[` and `]` in a message with embedded links (SARIF 3.11.6): `\\[`, `\\]`."""
    return text.replace("[", "\\[").replace("]", "\\]")


def region(finding: Finding) -> dict[str, int]:
    start_line = max(finding.line, 1)
    start_column = max(finding.column, 1)
    end_line = max(finding.end_line, start_line)
    end_column = max(finding.end_column, 1)
    if end_line == start_line and end_column <= start_column:
        end_column = start_column + 1
    return {"startLine": start_line, "startColumn": start_column, "endLine": end_line, "endColumn": end_column}


def _result(finding: Finding, rule_index: int, report: Report) -> dict[str, Any]:
    relative = report.relative_to_root(finding)
    artifact = _artifact_for_relative(relative)
    text = finding.message if not finding.hint else f"{finding.message}\nhelp: {finding.hint}"
    if finding.related:  # as the text format's notes, each linked to its relatedLocation
        text = escape_brackets(text) + "".join(
            f"\nnote: [{escape_brackets(related.place(relative))}]({number}): {escape_brackets(related.message)}"
            for number, related in enumerate(finding.related, start=1)
        )
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": artifact, "region": region(finding)}}
    if finding.cell is not None:
        location["properties"] = {"cell": finding.cell, "cellLine": finding.cell_line}
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": text},
        "locations": [location],
    }
    if finding.related:
        result["relatedLocations"] = [
            {
                "id": number,
                "physicalLocation": {
                    "artifactLocation": dict(artifact),
                    "region": {"startLine": max(related.line, 1), "startColumn": max(related.column, 1)},
                },
                "message": {"text": related.message},
                **(
                    {"properties": {"cell": related.cell, "cellLine": related.cell_line}}
                    if related.cell is not None
                    else {}
                ),
            }
            for number, related in enumerate(finding.related, start=1)
        ]
    result["partialFingerprints"] = {FINGERPRINT_KEY: report.fingerprint(finding)}
    properties: dict[str, Any] = {}
    if finding.data is not None:
        properties["gradlint"] = finding.data
    if finding.probe is not None:  # the same object as the json format's `probe`
        properties["probe"] = finding.probe
    if properties:
        result["properties"] = properties
    return result


def _error_notification(error: InternalError, report: Report, indices: dict[str, int]) -> dict[str, Any]:
    text = f"internal error in {error.code}: {error.message}" if error.code else f"internal error: {error.message}"
    notification: dict[str, Any] = {
        "level": "error",
        "message": {"text": text},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact_for_path(error.path, report.root)}}],
    }
    if error.code in indices:
        notification["associatedRule"] = {"id": error.code, "index": indices[error.code]}
    return notification


def _skipped_notification(skipped: SkippedFile, report: Report) -> dict[str, Any]:
    return {
        "level": "warning",
        "message": {"text": f"skipped: {skipped.reason}"},
        "locations": [{"physicalLocation": {"artifactLocation": _artifact_for_path(skipped.path, report.root)}}],
    }


# -- the document ----------------------------------------------------------------------------


def report_to_sarif(report: Report) -> dict[str, Any]:
    rules = [rule_descriptor(rule) for rule in ALL_RULES]
    indices = {rule.code: index for index, rule in enumerate(ALL_RULES)}
    results = []
    for finding in sorted(report.findings, key=lambda f: f.sort_key()):
        if finding.code not in indices:
            indices[finding.code] = len(rules)
            rules.append(_unknown_rule_descriptor(finding))
        results.append(_result(finding, indices[finding.code], report))
    notifications = [_error_notification(error, report, indices) for error in report.errors]
    notifications += [_skipped_notification(skipped, report) for skipped in report.skipped]
    invocation: dict[str, Any] = {"executionSuccessful": not report.errors}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "gradlint",
                        "version": gradlint.__version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "invocations": [invocation],
                "originalUriBaseIds": {SRCROOT: {"uri": root_uri(report.root)}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def write_sarif(
    report: Report,
    stream: TextIO,
    *,
    color: bool = False,
    statistics: bool = False,
    quiet: bool = False,
) -> None:
    """Machine output: `color`, `statistics` and `quiet` do not change it."""
    stream.write(json.dumps(report_to_sarif(report), indent=2))
    stream.write("\n")
