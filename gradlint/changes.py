"""`--changed-since REV`: the lines a change touches, from git.

Changed lines are those added or modified since REV in the work tree, counting committed,
staged and unstaged changes (`git diff --unified=0 REV`), plus every line of untracked,
not-ignored files (`git ls-files --others --exclude-standard`). Only reporting is filtered:
the check itself still sees the whole project.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from gradlint.findings import Finding


class ChangesError(Exception):
    """Not a git repository, git missing, or an unknown revision."""


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", '"': '"', "\\": "\\"}

WHOLE_FILE = None


@dataclass
class ChangedLines:
    """Absolute file path -> changed line numbers (1-based), or None for a whole new file."""

    files: dict[Path, set[int] | None] = field(default_factory=dict)

    def touches(self, path: Path, first: int, last: int) -> bool:
        if path not in self.files:
            return False
        lines = self.files[path]
        if lines is None:
            return True
        return any(line in lines for line in range(first, max(first, last) + 1))

    def filter(self, findings: Iterable[Finding]) -> list[Finding]:
        return [f for f in findings if self.touches(f.path.resolve(), f.line, f.end_line)]


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-c", "core.quotePath=false", *args], cwd=cwd, capture_output=True, check=False
        )
    except FileNotFoundError:
        raise ChangesError("--changed-since needs git, and no `git` executable was found") from None


def _toplevel(path: Path) -> Path:
    start = path.resolve()
    directory = start if start.is_dir() else start.parent
    while not directory.exists():  # a missing target: look from the nearest existing folder
        directory = directory.parent
    result = _git(["rev-parse", "--show-toplevel"], directory)
    if result.returncode != 0:
        raise ChangesError(f"--changed-since: {start} is not inside a git repository")
    return Path(result.stdout.decode("utf-8", "surrogateescape").strip()).resolve()


def _unquote(name: str) -> str:
    """git's C-style quoting of unusual file names (`"a\\tb.py"`, octal bytes)."""
    if not (len(name) >= 2 and name.startswith('"') and name.endswith('"')):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567":
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += char.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_diff(text: str) -> dict[str, set[int]]:
    """`git diff --unified=0` output -> repository-relative path -> added/modified lines."""
    files: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            target = line[4:].rstrip("\t")
            if target == "/dev/null":
                current = None
                continue
            target = _unquote(target)
            if target.startswith("b/"):
                target = target[2:]
            current = files.setdefault(target, set())
        elif line.startswith("@@") and current is not None:
            match = _HUNK.match(line)
            if match:
                start = int(match.group(1))
                count = 1 if match.group(2) is None else int(match.group(2))
                current.update(range(start, start + count))
    return files


def _repository_changes(top: Path, rev: str) -> dict[Path, set[int] | None]:
    verify = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], top)
    if verify.returncode != 0:
        raise ChangesError(f"--changed-since: unknown git revision {rev!r} in {top}")
    commit = verify.stdout.decode().strip()
    diff = _git(
        [
            "diff", "--unified=0", "--no-color", "--no-ext-diff", "--no-textconv", "-M",
            "--src-prefix=a/", "--dst-prefix=b/", commit, "--",
        ],
        top,
    )
    if diff.returncode != 0:
        raise ChangesError(f"--changed-since: git diff failed: {diff.stderr.decode(errors='replace').strip()}")
    changes: dict[Path, set[int] | None] = {
        (top / name).resolve(): lines
        for name, lines in parse_diff(diff.stdout.decode("utf-8", "surrogateescape")).items()
    }
    untracked = _git(["ls-files", "-z", "--others", "--exclude-standard"], top)
    if untracked.returncode != 0:
        raise ChangesError(f"--changed-since: git ls-files failed: {untracked.stderr.decode(errors='replace').strip()}")
    for name in untracked.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if name:
            changes[(top / name).resolve()] = WHOLE_FILE
    return changes


def changed_lines(targets: Sequence[Path], rev: str) -> ChangedLines:
    """The changed lines of every git repository holding one of `targets`."""
    result = ChangedLines()
    seen: set[Path] = set()
    for target in targets:
        top = _toplevel(target)
        if top not in seen:
            seen.add(top)
            result.files.update(_repository_changes(top, rev))
    return result
