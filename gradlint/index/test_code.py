"""Whether a file is test code (a unit test or a pytest fixture module), by its place in the
project: under a `tests/` or `test/` folder, or named `test_*.py`, `*_test.py` or `conftest.py`.

Rules use it to keep findings on small weights and layers that a test builds but never trains at
`info` (documented in the rule documents of GL201 and GL302): a 4 x 4 `torch.randn` parameter of
an optimizer unit test is not a model anyone trains.
"""

from __future__ import annotations

from pathlib import Path

_FOLDERS = frozenset({"tests", "test", "unit_tests", "unittests"})


def is_test_file(path: Path) -> bool:
    name = path.name
    if name == "conftest.py" or (name.startswith("test_") and name.endswith(".py")) or name.endswith("_test.py"):
        return True
    return any(part in _FOLDERS for part in path.parts[:-1])


__all__ = ["is_test_file"]
