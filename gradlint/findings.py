"""The data every stage hands to the next: findings and the report that carries them."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradlint.baseline import Entry
    from gradlint.fix.files import FixResult
    from gradlint.probe.confirm import ConfirmSummary


class Severity(enum.IntEnum):
    """Ordered so that `severity >= fail_on` reads naturally."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {choices})") from None


@dataclass(frozen=True)
class Related:
    """Another site that explains a finding ("loss.backward() is here")."""

    line: int
    column: int
    message: str
    cell: int | None = None
    """In a notebook: the 1-based position of the cell among all cells; None for a `.py` file."""
    cell_line: int | None = None
    """In a notebook: the line within that cell; None for a `.py` file."""

    def place(self, path: str) -> str:
        """`train.py:116`, or `notebook.ipynb:cell 4:line 3` in a notebook: how every format's
        notes name the site (`path` is the finding's file as that format names it)."""
        where = f"cell {self.cell}:line {self.cell_line}" if self.cell is not None else str(self.line)
        return f"{path}:{where}"


@dataclass
class Finding:
    code: str
    name: str
    severity: Severity
    message: str
    path: Path
    """Absolute path of the file."""
    display_path: str
    """The path as the user should read it (relative to the working directory when possible)."""
    line: int
    column: int
    """1-based, in characters."""
    end_line: int
    end_column: int
    hint: str | None = None
    """How to fix it: one sentence."""
    related: tuple[Related, ...] = ()
    source_line: str = ""
    """The text of `line`, kept for code frames and fingerprints."""
    fix_safety: str | None = None
    """'safe' or 'unsafe' when a fix exists (autofix issue), else None."""
    data: dict | None = None
    """The resolved configuration the finding rests on (sizes, layers, init, sequence length)."""
    probe: dict | None = None
    """What `gradlint check --probe` measured for this finding (JSON-safe; see
    gradlint.probe.confirm and docs/json-schema.md); None when the probe did not look at it."""
    cell: int | None = None
    """In a notebook (`.ipynb`): the cell, its 1-based position among ALL cells (markdown included)
    as the file orders them; `line` stays the line in the notebook's joined code. None for `.py`."""
    cell_line: int | None = None
    """In a notebook: the 1-based line within `cell`; None for a `.py` file."""
    fix: object = field(default=None, repr=False, compare=False)
    """The resolved `gradlint.fix.Fix` (line edits) when `--fix` can fix this finding; never serialised."""

    def sort_key(self) -> tuple:
        return (self.display_path, self.line, self.column, self.code)

    def fingerprint(self, path: str | None = None) -> str:
        """Stable across line moves: rule, file and the normalised code of the line. `path` names
        the file (default: the display path); `Report.fingerprint` passes the repository-relative
        one, which does not depend on the working directory."""
        text = " ".join(self.source_line.split())
        name = self.display_path if path is None else path
        digest = hashlib.sha256(f"{self.code}\0{name}\0{text}".encode()).hexdigest()
        return digest[:16]


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class InternalError:
    path: str
    message: str
    code: str | None = None
    """The rule that crashed, when one did."""


@dataclass
class Report:
    """Everything a reporter needs; reporters never look anywhere else."""

    findings: list[Finding] = field(default_factory=list)
    files_checked: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    suppressed: int = 0
    root: Path = field(default_factory=Path.cwd)
    """Repository root: SARIF and GitHub paths are relative to it."""
    baselined: int | None = None
    """Findings dropped because the baseline (`check --baseline`) covers them; None without one."""
    stale_baseline: int | None = None
    """Baseline entries that matched no finding; None without a baseline."""
    from_cache: int = 0
    """Files whose results the cache still held (not parsed or checked again)."""

    # What the later stages of `gradlint.api.check` did, for the CLI to tell on stderr;
    # reporters do not read them.
    stale_entries: list[Entry] = field(default_factory=list)
    """The baseline entries counted in `stale_baseline` (sorted by path, code, fingerprint)."""
    fixes: FixResult | None = None
    """What `check(fix=True)` changed on disk before this (final) check; None when it did not fix."""
    probe_summary: ConfirmSummary | None = None
    """What `check(probe=...)` probed; None when the probe did not run."""
    probe_error: str | None = None
    """Why the probe could not run (torch missing, or a crash); the findings are then unprobed."""

    def counts(self) -> dict[str, int]:
        counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for finding in self.findings:
            counts[finding.severity.label] += 1
        return counts

    def fingerprint(self, finding: Finding) -> str:
        """The finding's fingerprint with its repository-relative path and its code: the same
        from any working directory (SARIF `partialFingerprints`, the json `fingerprint`, the
        baseline)."""
        return finding.fingerprint(self.relative_to_root(finding))

    def relative_to_root(self, finding: Finding) -> str:
        try:
            return finding.path.relative_to(self.root).as_posix()
        except ValueError:
            return finding.path.as_posix()
