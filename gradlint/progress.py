"""The progress bar of long runs: on stderr, only on a terminal, only for human-readable output.

It appears when a run has many files to check (or findings to probe), disappears when done
(transient), and never reaches a pipe, a CI log or a JSON/SARIF report.
"""

from __future__ import annotations

import os
import sys
from typing import Any

MIN_FILES = 200
"""Fewer files than this finish before a bar would be worth reading."""
MIN_PROBED = 5
"""Probing takes long per finding: a bar is worth reading from this many."""


class Bar:
    """`start(total)` / `advance(n)` / `close()`; does nothing unless the bar is shown."""

    def __init__(self, description: str, minimum: int = MIN_FILES, enabled: bool = True) -> None:
        self.description = description
        self.minimum = minimum
        self.enabled = enabled and wanted()
        self._progress: Any = None
        self._task: Any = None

    def start(self, total: int) -> None:
        if not self.enabled or total < self.minimum or self._progress is not None:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=total)

    def advance(self, count: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, count)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bars:
    """A new bar for each stage of `gradlint.api.check` ("checking", "probing")."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def __call__(self, stage: str) -> Bar:
        return Bar(stage, minimum=MIN_PROBED if stage == "probing" else MIN_FILES, enabled=self.enabled)


def wanted() -> bool:
    """stderr is a terminal and the user has not asked for quiet output."""
    if os.environ.get("GRADLINT_NO_PROGRESS") or os.environ.get("CI"):
        return False
    stream = sys.stderr
    return hasattr(stream, "isatty") and stream.isatty()
