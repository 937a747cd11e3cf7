"""Test code: which files and functions are tests, read the same way by every rule.

A file named `test_*.py`, `*_test.py` or `conftest.py`, or under a `tests/`, `test/` or `testing/`
folder of the project (never the folders above a project root: a checkout under `/home/me/tests/`
is not test code); a `test_*` function or a method of a `Test*` class. A training step or a
framework run there checks behaviour; it is no training run (see the GL101 and GL106 documents).
"""

from __future__ import annotations

from pathlib import Path

from gradlint.analysis.model import Function

TEST_FOLDERS = frozenset({"tests", "test", "testing"})


def is_test_file(parts: tuple[str, ...]) -> bool:
    """`parts`: the file's path inside the project, folders then file name."""
    if not parts:
        return False
    stem = parts[-1].rsplit(".", 1)[0]
    return (
        stem.startswith("test_")
        or stem.endswith(("_test", "_tests"))
        or stem == "conftest"
        or any(folder in TEST_FOLDERS for folder in parts[:-1])
    )


def project_parts(path: Path, project) -> tuple[str, ...]:
    """The file's path relative to the outermost project root that holds it."""
    best: tuple[str, ...] | None = None
    for root in project.roots if project is not None else ():
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            continue
        if best is None or len(parts) > len(best):
            best = parts
    return best if best is not None else (path.name,)


def in_test_file(path: Path, project) -> bool:
    return is_test_file(project_parts(path, project))


def in_test_function(function: Function | None) -> bool:
    while function is not None:
        if function.name.startswith("test_") or (function.class_name or "").startswith("Test"):
            return True
        function = function.parent
    return False


def in_test(function: Function | None, path: Path, project) -> bool:
    """A test itself: a `test_*` function (or a method of a `Test*` class) in a test file, or a
    method of a `Test*` class anywhere."""
    if not in_test_function(function):
        return False
    owner = function
    while owner is not None and owner.class_name is None:
        owner = owner.parent
    return in_test_file(path, project) or bool(owner and (owner.class_name or "").startswith("Test"))
