"""Fixes applied to files: `--fix` rewrites them in place, `--diff` shows them as a unified diff.

Both take a checked `Report` (whose findings carry their resolved `Fix`) and return a
`FixResult`: what was fixed or would be, per file, and what was left alone. Nothing here
prints; the CLI does.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from gradlint.findings import Finding, Report
from gradlint.fix.edits import SAFE, fixed_text, wanted
from gradlint.source import read_source


@dataclass
class FileFix:
    """One file with a wanted fix."""

    path: Path
    name: str
    """The display path, as findings name the file."""
    fixed: int = 0
    """Findings fixed (or, for a diff, that would be); 0 when the file is left unchanged."""
    diff: str = ""
    """For a diff: the unified diff of the fixes; empty when the file is left unchanged."""
    error: str | None = None
    """Why the file could not be read (diff) or fixed (in place); it is left as it was."""


@dataclass
class FixResult:
    files: list[FileFix] = field(default_factory=list)
    """Every file with a wanted fix, in the report's order."""
    unsafe_left: int = 0
    """Fixes not applied because they are unsafe and unsafe fixes were not asked for."""
    in_notebooks: int = 0
    """Findings in notebooks that have a fix kind: notebooks are never fixed."""

    @property
    def changed(self) -> int:
        """Files changed (or that would be)."""
        return sum(1 for file in self.files if file.fixed)

    @property
    def fixed(self) -> int:
        """Findings fixed (or that would be)."""
        return sum(file.fixed for file in self.files)


def fix_files(report: Report, unsafe: bool) -> FixResult:
    """Apply the wanted fixes of `report` in place (safe ones; unsafe ones too when `unsafe`).
    A file that cannot be fixed is left as it was, with the reason in its `error`."""
    result = _result(report, unsafe)
    for file, findings in _fixable(report, unsafe, result):
        try:
            before = read_text(file.path)
            after, fixed = fixed_text(before, findings, unsafe)
            if after != before:
                write_atomic(file.path, after)
                file.fixed = len(fixed)
        except Exception as error:  # never a bare traceback; the file is left as it was
            file.error = str(error)
    return result


def diff_files(report: Report, unsafe: bool) -> FixResult:
    """The wanted fixes of `report` as unified diffs, one per file; nothing is written."""
    result = _result(report, unsafe)
    for file, findings in _fixable(report, unsafe, result):
        try:
            before = read_text(file.path)
        except Exception as error:
            file.error = str(error)
            continue
        after, fixed = fixed_text(before, findings, unsafe)
        if after != before:
            file.fixed = len(fixed)
            file.diff = unified_diff(before, after, file.name)
    return result


def _result(report: Report, unsafe: bool) -> FixResult:
    return FixResult(
        unsafe_left=sum(1 for f in report.findings if f.fix is not None and f.fix.safety != SAFE and not unsafe),
        in_notebooks=sum(1 for f in report.findings if f.fix_safety and f.cell is not None),
    )


def _fixable(report: Report, unsafe: bool, result: FixResult) -> list[tuple[FileFix, list[Finding]]]:
    """Each file with a wanted fix (added to `result`) and its findings that have one; notebooks
    are never fixed (their findings carry no `Fix`)."""
    by_file: dict[Path, list[Finding]] = {}
    names: dict[Path, str] = {}
    for finding in report.findings:
        if wanted(finding, unsafe):
            by_file.setdefault(finding.path, []).append(finding)
            names[finding.path] = finding.display_path
    fixable = []
    for path, findings in by_file.items():
        file = FileFix(path, names[path])
        result.files.append(file)
        fixable.append((file, findings))
    return fixable


def unified_diff(before: str, after: str, name: str) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def read_text(path: Path) -> str:
    """The file as text with its line endings as they are (no newline translation)."""
    return read_source(path)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder + os.replace, keeping the mode and
    the encoding (a UTF-8 BOM or a coding cookie) of the original."""
    import tempfile
    import tokenize
    from io import BytesIO

    original = path.read_bytes()
    encoding, _ = tokenize.detect_encoding(BytesIO(original).readline)
    data = text.encode("utf-8" if encoding == "utf-8-sig" else encoding)
    if original.startswith(b"\xef\xbb\xbf"):
        data = b"\xef\xbb\xbf" + data
    mode = stat.S_IMODE(path.stat().st_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gradlint-fix", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
