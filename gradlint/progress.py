"""The progress bar of long runs: on stderr, only on a terminal, only for human-readable output.

A bar appears once a stage has worked for about a second (`DELAY`), whatever the number of
files (an 80-file run that takes 38 s shows one; a 5,000-file run of cached results that takes
0.3 s does not), disappears when done (transient), and never reaches a pipe, a CI log or a
JSON/SARIF report. The delay is a timer, so a stage whose first file alone takes long still gets
its bar. `GRADLINT_PROGRESS_DELAY=SECONDS` changes the delay (0: at once).
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

DELAY = 1.0
"""Seconds a stage runs before its bar appears: shorter runs finish before a bar is worth reading."""


def delay_from_environment() -> float:
    value = os.environ.get("GRADLINT_PROGRESS_DELAY", "")
    try:
        return max(0.0, float(value)) if value.strip() else DELAY
    except ValueError:
        return DELAY


class Bar:
    """`start(total)` / `advance(n)` / `close()`; does nothing unless the bar is shown."""

    def __init__(self, description: str, delay: float | None = None, enabled: bool = True, console: Any = None) -> None:
        self.description = description
        self.delay = delay_from_environment() if delay is None else delay
        self.enabled = enabled and (console is not None or wanted())
        self.console = console
        self.shown = False
        """Whether the bar appeared (at some point of the stage)."""
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._progress: Any = None
        self._task: Any = None
        self._total = 0
        self._completed = 0
        self._closed = False

    def start(self, total: int) -> None:
        if not self.enabled or total <= 0 or self._timer is not None or self._closed:
            return
        self._total = total
        if self.delay <= 0:
            self._show()
            return
        self._timer = threading.Timer(self.delay, self._show)
        self._timer.daemon = True
        self._timer.start()

    def _show(self) -> None:
        with self._lock:
            if self._closed or self._progress is not None:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=self.console or Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self._total, completed=self._completed)
            self.shown = True

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self._completed += count
            if self._progress is not None:
                self._progress.advance(self._task, count)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
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
        return Bar(stage, enabled=self.enabled)


def wanted() -> bool:
    """stderr is a terminal and the user has not asked for quiet output."""
    if os.environ.get("GRADLINT_NO_PROGRESS") or os.environ.get("CI"):
        return False
    stream = sys.stderr
    return hasattr(stream, "isatty") and stream.isatty()
