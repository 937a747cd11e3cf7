"""What the disk holds, asked through folder listings read once per run.

A module name is tried in every import root, and a run of many script folders has hundreds of
roots: one `stat` (and one cached Path) per candidate came to 400,000 of each on the torch
corpus. So a file's existence is answered from its folder's listing (a folder that is not
there is never listed), and the roots that can hold a top-level name are found once, from
those listings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Container, Iterable


class Disk:
    def __init__(self, run_files: Container[Path]) -> None:
        self._run_files = run_files
        """Files of the run: they count as there even when the disk does not hold them (an
        editor's unsaved buffer)."""
        self._files: dict[Path, bool] = {}
        self._listings: dict[Path, frozenset[str]] = {}
        """A folder -> the names in it (empty when it is not there)."""

    def is_file(self, path: Path) -> bool:
        """Whether a file is in the run or on disk (asked once per run: the disk does not change)."""
        if path in self._run_files:
            return True
        if path.name not in self.names_in(path.parent):
            return False
        known = self._files.get(path)
        if known is None:
            known = self._files[path] = path.is_file()
        return known

    def names_in(self, folder: Path) -> frozenset[str]:
        names = self._listings.get(folder)
        if names is None:
            parent = folder.parent
            if parent != folder and folder.name not in self.names_in(parent):
                names = frozenset()
            else:
                try:
                    names = frozenset(os.listdir(folder))
                except OSError:
                    names = frozenset()
            self._listings[folder] = names
        return names

    def roots_by_name(self, roots: list[Path], run_files: Iterable[Path]) -> dict[str, list[Path]]:
        """top-level module name -> the roots (in order) that hold a file or folder of that name,
        on disk or in the run: `import a.b` can only load from these. Trying every root for every
        name cost roots x names candidate paths (330,000 on the torch corpus, most of a warm
        run's time)."""
        order = {root: position for position, root in enumerate(roots)}
        holding: dict[str, set[Path]] = {}
        for root in roots:
            for entry in self.names_in(root):
                holding.setdefault(_module_name(entry), set()).add(root)
        for path in run_files:
            child = path
            for folder in path.parents:
                if folder in order:
                    holding.setdefault(_module_name(child.name), set()).add(folder)
                child = folder
        return {name: sorted(found, key=order.__getitem__) for name, found in holding.items()}


def module_candidates(base: Path, parts: "list[str] | tuple[str, ...]") -> tuple[Path, ...]:
    """The files `import a.b` may load under `base`: `a/b.py`, then `a/b/__init__.py`."""
    if not parts:
        return (base / "__init__.py",)
    candidate = base.joinpath(*parts)
    return (candidate.with_suffix(".py"), candidate / "__init__.py")


def _module_name(entry: str) -> str:
    return entry[:-3] if entry.endswith(".py") else entry
