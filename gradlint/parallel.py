"""Checking files over worker processes (`--jobs N`).

The files are read once in the parent; the workers are forked from it, so each inherits
the whole run (every file's text) and builds its own project index over it. A worker parses
its own share of the files plus whatever another file's questions reach, and because the
index's answers never depend on what happens to be parsed (index/project.py), every file
gets the findings it gets with `--jobs 1`.

Shares are runs of neighbouring paths (a script and the model it imports usually sit in one
folder), balanced by the text there is to parse, handed out a few per worker, heaviest first,
so a slow share does not leave the other workers idle. Where fork is not available (Windows,
macOS's default), gradlint checks in one process.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from gradlint.findings import InternalError
from gradlint.texts import holding, text_length

if TYPE_CHECKING:
    from gradlint.cache import Cache
    from gradlint.engine import FileChecker, FileResult
    from gradlint.index import ProjectIndex
    from gradlint.source import SourceFile

PARSED_LINES_KEPT = 3_000
"""Syntax trees cost about 8 MiB per 1,000 lines: past this many parsed lines the index lets
go of them between two files (see ProjectIndex.release). Cross-file answers come from summaries
and tree-free tables, so on a big run a tree is dropped soon after its file is checked (on the
2,074-file tree one file of 1,428 was parsed again). A small run keeps its trees: a training
script and the model file it imports each read the other's tree, and releasing after every
file parsed each of the ten files of a pre-commit run twice (0.2 s of its 1.2 s)."""

TRIM_LINES = 10_000
"""Each time trees of this many lines were released, the C allocator gives its free memory back
(`give_back_memory`): after every release it cost 8 s of system time on the 2,000-file corpus
(pages handed back and faulted in again), this often a fraction of a second."""
_released_lines = 0

MIN_FILES_PER_WORKER = 8
"""Below this many files to parse per worker, forking costs more than it saves."""
SHARES_PER_WORKER = 4


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    import multiprocessing  # only when there is enough work to share (it costs ~7 ms to import)

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def worth_parallel(pending: Sequence["SourceFile"], jobs: int) -> bool:
    parsing = sum(1 for source in pending if source.needs_parse)
    return jobs > 1 and parsing >= MIN_FILES_PER_WORKER * 2 and can_fork()


def check_one(checker: "FileChecker", source: "SourceFile", project: "ProjectIndex") -> "FileResult":
    """Check a file; a crash outside the rules (which catch their own) becomes an internal error.

    The cycle collector is off while a file is checked: parsing allocates a syntax tree of
    ~100,000 objects that stays alive for the whole check, and the collector, triggered every
    700 allocations, kept walking it and, more and more often, everything the index holds
    (a fifth of the CPU time on runs of many files). A tree is freed by reference counting
    when the index releases it; what little forms cycles is collected at that point, among
    the objects made since the last release."""
    global _released_lines
    enabled = gc.isenabled()
    gc.disable()
    try:
        with holding(source):  # read once for the whole check, when the index let it go
            return _check(checker, source, project)
    finally:
        if project.parsed_lines > PARSED_LINES_KEPT:
            _released_lines += project.parsed_lines
            project.release()
            gc.collect(1)
            if _released_lines >= TRIM_LINES:
                _released_lines = 0
                give_back_memory()
        if enabled:
            gc.enable()


def give_back_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's `malloc_trim`; elsewhere
    nothing). libcst parses in a thread of its own (source.py), and glibc gives that thread its own
    arenas, which keep the peak of the largest parse resident for the rest of the run: at the end
    of the 2,000-file corpus 101 of glibc's 134 MiB were free, 63 MiB of it in that thread's arena
    (Python's own allocator had 5 of its 146 MiB free)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def _check(checker: "FileChecker", source: "SourceFile", project: "ProjectIndex") -> "FileResult":
    from gradlint.engine import FileResult

    try:
        return checker.check(source, project)
    except Exception as error:  # noqa: BLE001 - one file must never take the run down
        frame = traceback.extract_tb(error.__traceback__)[-1]
        result = FileResult(source.path, source.display_path)
        result.errors.append(
            InternalError(
                source.display_path,
                f"internal error: {type(error).__name__}: {error} ({Path(frame.filename).name}:{frame.lineno})",
            )
        )
        return result


# The run a forked worker inherits: set by check_parallel just before the pool starts.
_RUN: "tuple[FileChecker, list[SourceFile], list[Path], Cache | None] | None" = None
_WORKER_PROJECT: "ProjectIndex | None" = None


def check_parallel(
    checker: "FileChecker",
    sources: list["SourceFile"],
    pending: list["SourceFile"],
    roots: list[Path],
    jobs: int,
    cache: "Cache | None",
    on_done: Callable[[int], None] | None = None,
) -> list["FileResult"]:
    global _RUN
    _RUN = (checker, sources, roots, cache)
    shares = _shares(pending, jobs * SHARES_PER_WORKER)
    results: list[FileResult] = []
    try:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        with context.Pool(processes=min(jobs, len(shares)), initializer=_leave_interrupts_to_the_parent) as pool:
            for part in pool.imap_unordered(_check_share, shares):
                results.extend(part)
                if on_done is not None:
                    on_done(len(part))
    finally:
        _RUN = None
    return results


def _leave_interrupts_to_the_parent() -> None:
    """Ctrl-C reaches every process of the run; the parent stops the pool (terminating the
    workers) and says "Aborted!". A worker that took it too printed "Process ForkPoolWorker-1:"
    (and at times its traceback)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_share(paths: list[Path]) -> list["FileResult"]:
    global _WORKER_PROJECT
    assert _RUN is not None
    checker, sources, roots, cache = _RUN
    if _WORKER_PROJECT is None:
        from gradlint.index import ProjectIndex

        _WORKER_PROJECT = ProjectIndex(sources, roots=roots, declared=checker.declared)
    project = _WORKER_PROJECT
    results = []
    for path in paths:
        source = project.sources[path]
        result = check_one(checker, source, project)
        if cache is not None:
            cache.store(source, result, project)
        result.dependencies = set()  # not needed in the parent: keep the pickle small
        results.append(result)
    return results


def _shares(pending: list["SourceFile"], count: int) -> list[list[Path]]:
    """Runs of neighbouring paths, each with about the same work, heaviest first.

    Work is the text to parse: a file libcst parses costs about its length, one CPython only
    reads for syntax (no trigger word) about an eighth of it. Counting files instead left the
    share holding timm's models twice the others' work, and a worker alone with it at the end.
    Handing out the heaviest shares first keeps the last ones short."""
    ordered = sorted(pending, key=lambda source: source.path)
    weights = [_weight(source) for source in ordered]
    size = max(1, -(-sum(weights) // max(1, count)))
    shares: list[tuple[int, list[Path]]] = []
    share: list[Path] = []
    weight = 0
    for source, cost in zip(ordered, weights):
        share.append(source.path)
        weight += cost
        if weight >= size:
            shares.append((weight, share))
            share, weight = [], 0
    if share:
        shares.append((weight, share))
    shares.sort(key=lambda item: -item[0])
    return [share for _, share in shares]


def _weight(source: "SourceFile") -> int:
    length = text_length(source)
    return 1 + (length if source.needs_parse else length // 8)
