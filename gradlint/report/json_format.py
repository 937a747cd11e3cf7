"""The `json` format: a versioned, documented object (docs/json-schema.md).

Stability: within `"version": 1` fields are only ever added, never renamed, retyped or removed.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import gradlint
from gradlint.findings import Finding, Report

JSON_VERSION = 1


def finding_to_dict(finding: Finding, report: Report | None = None) -> dict[str, Any]:
    out = {
        "code": finding.code,
        "name": finding.name,
        "severity": finding.severity.label,
        "message": finding.message,
        "hint": finding.hint,
        "path": finding.display_path,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "related": [
            {
                "line": related.line,
                "column": related.column,
                "message": related.message,
                "cell": related.cell,
                "cell_line": related.cell_line,
            }
            for related in finding.related
        ],
        "fix_safety": finding.fix_safety,
        "fingerprint": finding.fingerprint() if report is None else report.fingerprint(finding),
        "data": finding.data,
        "cell": finding.cell,
        "cell_line": finding.cell_line,
    }
    if finding.probe is not None:  # only on findings `gradlint check --probe` looked at
        out["probe"] = finding.probe
    return out


def report_to_dict(report: Report) -> dict[str, Any]:
    counts = report.counts()
    summary: dict[str, Any] = {
        "files_checked": report.files_checked,
        "findings": len(report.findings),
        "by_severity": {"error": counts["error"], "warning": counts["warning"], "info": counts["info"]},
        "suppressed": report.suppressed,
    }
    if report.baselined is not None:  # only with `gradlint check --baseline`
        summary["baselined"] = report.baselined
        summary["stale_baseline"] = report.stale_baseline or 0
    return {
        "version": JSON_VERSION,
        "tool": {"name": "gradlint", "version": gradlint.__version__},
        "findings": [finding_to_dict(f, report) for f in sorted(report.findings, key=lambda f: f.sort_key())],
        "summary": summary,
        "skipped": [{"path": skipped.path, "reason": skipped.reason} for skipped in report.skipped],
        "errors": [{"path": error.path, "code": error.code, "message": error.message} for error in report.errors],
    }


def write_json(
    report: Report,
    stream: TextIO,
    *,
    color: bool = False,
    statistics: bool = False,
    quiet: bool = False,
) -> None:
    """Machine output: `color`, `statistics` and `quiet` do not change it."""
    # ASCII-only (non-ASCII as \uXXXX escapes), so any stream encoding can carry it.
    stream.write(json.dumps(report_to_dict(report), indent=2))
    stream.write("\n")
