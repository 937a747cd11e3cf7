"""Baselines: record today's findings so that a legacy repository can adopt gradlint and
report only what is new (`gradlint baseline create FILE`, `gradlint check --baseline FILE`).

An entry is keyed by (rule code, repository-relative path, fingerprint). The fingerprint is
`Finding.fingerprint()` computed with the repository-relative path (rule, path and the
normalised text of the line), so it survives the line moving and does not depend on the
directory gradlint is run from. Identical keys (the same line text twice in a file) carry a
`count`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from gradlint.findings import Finding, Report

BASELINE_VERSION = 1

Key = tuple[str, str, str]
"""(code, repository-relative posix path, fingerprint)."""


class BaselineError(Exception):
    """The baseline file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Entry:
    code: str
    path: str
    fingerprint: str
    message: str = ""
    count: int = 1

    @property
    def key(self) -> Key:
        return (self.code, self.path, self.fingerprint)


@dataclass
class Baseline:
    entries: list[Entry] = field(default_factory=list)


@dataclass
class BaselineResult:
    findings: list[Finding]
    """The findings the baseline does not cover, in their original order."""
    baselined: int
    stale: list[Entry]
    """Entries (with the unmatched part of their count) that matched no finding."""

    @property
    def stale_count(self) -> int:
        return sum(entry.count for entry in self.stale)


def finding_key(report: Report, finding: Finding) -> Key:
    return (finding.code, report.relative_to_root(finding), report.fingerprint(finding))


def build(report: Report) -> Baseline:
    counts: Counter[Key] = Counter()
    messages: dict[Key, str] = {}
    for finding in report.findings:
        key = finding_key(report, finding)
        counts[key] += 1
        messages.setdefault(key, finding.message)
    entries = [
        Entry(code=code, path=path, fingerprint=fp, message=messages[(code, path, fp)], count=counts[(code, path, fp)])
        for code, path, fp in sorted(counts, key=lambda key: (key[1], key[0], key[2]))
    ]
    return Baseline(entries)


def to_dict(baseline: Baseline) -> dict[str, Any]:
    rows = []
    for entry in baseline.entries:
        row: dict[str, Any] = {
            "code": entry.code,
            "path": entry.path,
            "fingerprint": entry.fingerprint,
            "message": entry.message,
        }
        if entry.count != 1:
            row["count"] = entry.count
        rows.append(row)
    return {"version": BASELINE_VERSION, "tool": "gradlint", "entries": rows}


def write(baseline: Baseline, path: Path) -> None:
    """Atomically: a temporary file beside `path`, then os.replace."""
    text = json.dumps(to_dict(baseline), indent=2) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(path: Path) -> Baseline:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"baseline file {path} does not exist (create it with `gradlint baseline create {path}`)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"cannot read baseline file {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(f"baseline file {path} is not valid JSON: {error}") from None
    return from_dict(data, path)


def from_dict(data: Any, path: Path | str = "<baseline>") -> Baseline:
    def bad(why: str) -> BaselineError:
        return BaselineError(f"baseline file {path} is malformed: {why}")

    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    if data.get("version") != BASELINE_VERSION:
        raise bad(f"unsupported version {data.get('version')!r} (expected {BASELINE_VERSION})")
    if "tool" in data and data["tool"] != "gradlint":
        raise bad(f"written by {data['tool']!r}, not gradlint")
    rows = data.get("entries")
    if not isinstance(rows, list):
        raise bad("'entries' must be a list")
    entries = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise bad(f"entry {index} is not an object")
        for name in ("code", "path", "fingerprint"):
            if not isinstance(row.get(name), str) or not row[name]:
                raise bad(f"entry {index} has no string {name!r}")
        message = row.get("message", "")
        count = row.get("count", 1)
        if not isinstance(message, str):
            raise bad(f"entry {index}: 'message' must be a string")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise bad(f"entry {index}: 'count' must be a positive integer")
        entries.append(Entry(row["code"], row["path"], row["fingerprint"], message, count))
    return Baseline(entries)


def apply(
    baseline: Baseline,
    report: Report,
    *,
    in_scope: Callable[[Entry], bool] = lambda entry: True,
) -> BaselineResult:
    """Drop the findings the baseline covers (respecting counts).

    Unmatched entries are stale only when `in_scope` says this run could have produced them
    (their rule is enabled and their file was checked, or no longer exists): checking one
    file does not make the rest of the baseline stale.
    """
    remaining: Counter[Key] = Counter()
    by_key: dict[Key, Entry] = {}
    for entry in baseline.entries:
        remaining[entry.key] += entry.count
        by_key.setdefault(entry.key, entry)
    kept: list[Finding] = []
    baselined = 0
    for finding in report.findings:
        key = finding_key(report, finding)
        if remaining[key] > 0:
            remaining[key] -= 1
            baselined += 1
        else:
            kept.append(finding)
    stale = [
        dataclasses.replace(by_key[key], count=count)
        for key, count in remaining.items()
        if count > 0 and in_scope(by_key[key])
    ]
    stale.sort(key=lambda entry: (entry.path, entry.code, entry.fingerprint))
    return BaselineResult(kept, baselined, stale)


def scope(root: Path, checked: Iterable[Path], targets: Iterable[Path], enabled: Iterable[str]) -> Callable[[Entry], bool]:
    """The default `in_scope` for a run over `targets` that checked the files `checked`."""
    checked_set = {path.resolve() for path in checked}
    target_dirs = [target.resolve() for target in targets]
    enabled_set = set(enabled)

    def in_scope(entry: Entry) -> bool:
        if entry.code not in enabled_set:
            return False
        absolute = (root / entry.path).resolve()
        if absolute in checked_set:
            return True
        if absolute.exists():
            return False  # excluded from or outside this run: cannot tell
        return any(absolute == target or target in absolute.parents for target in target_dirs)

    return in_scope
