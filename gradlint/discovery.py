"""File discovery: which `.py` files and Jupyter notebooks (`.ipynb`) a run looks at.

Paths given explicitly are always taken (the user asked for them). Directories are walked with
`os.scandir`, pruning excluded directories before descending: the built-in default excludes, any
directory holding a `pyvenv.cfg`, the configured `exclude`/`extend-exclude` patterns (gitignore
syntax, relative to the configuration root) and, with `respect-gitignore`, `.gitignore` files
(the repository's, from its top down to the walked directory, nested ones for their subtree, and
`.git/info/exclude`). Problems on the way (unreadable directories, symlink loops, broken links) are
warnings, never crashes.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from gradlint.config import Config

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".pytype",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
    "*.egg-info",
)
"""Directory names never walked into (a directory holding `pyvenv.cfg` is skipped too)."""

_DEFAULT_NAMES = frozenset(name for name in DEFAULT_EXCLUDES if not name.startswith("*"))
_DEFAULT_SUFFIXES = tuple(name[1:] for name in DEFAULT_EXCLUDES if name.startswith("*"))
_VENV_MARKER = "pyvenv.cfg"
SOURCE_SUFFIXES = (".py", ".ipynb")
"""What a directory walk takes (`.ipynb_checkpoints` directories are among the default excludes)."""


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    """Absolute, sorted, de-duplicated."""
    warnings: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) for what could not be walked: unreadable directories, symlink loops, broken links."""
    missing: list[str] = field(default_factory=list)
    """Paths given on the command line that do not exist, as given."""


# --------------------------------------------------------------------------------------------
# Pattern layers


class _Layer:
    """A list of gitignore patterns anchored at `base` (an absolute directory path)."""

    __slots__ = ("base", "prefix", "patterns")

    def __init__(self, base: str, patterns: list) -> None:
        self.base = base
        self.prefix = base.rstrip(os.sep) + os.sep
        self.patterns = [p for p in patterns if p.include is not None]

    def relative(self, path: str) -> str | None:
        if not path.startswith(self.prefix):
            return None
        rel = path[len(self.prefix) :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def verdict(self, rel: str) -> bool | None:
        """True: ignored, False: re-included by a `!` pattern, None: no pattern says anything."""
        for pattern in reversed(self.patterns):
            if pattern.match_file(rel) is not None:
                return bool(pattern.include)
        return None

    def without_patterns_matching(self, rels: list[str]) -> "_Layer":
        """Drop the patterns that exclude an explicitly given directory, so its contents are walked."""
        kept = [p for p in self.patterns if not (p.include and any(p.match_file(r) is not None for r in rels))]
        layer = _Layer(self.base, [])
        layer.patterns = kept
        return layer


def _read_patterns(path: str) -> list:
    import pathspec  # here: a run given only files reads no ignore file (10 ms of its start-up)

    with open(path, encoding="utf-8", errors="replace") as handle:
        return pathspec.GitIgnoreSpec.from_lines(handle.read().splitlines()).patterns


def _compiled(patterns: list[str]) -> list:
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(patterns).patterns


class _Walker:
    def __init__(self, config: Config, result: Discovery) -> None:
        self.config = config
        self.result = result
        self.root = os.path.abspath(config.root)
        patterns = list(config.exclude) + list(config.extend_exclude)
        self.exclude = _Layer(self.root, _compiled(patterns)) if patterns else None
        self.visited: set[tuple[int, int]] = set()
        self.files: dict[tuple[int, int], tuple[bool, str]] = {}
        """(device, inode) -> (reached through a symlink, path): a real name wins over a linked one."""
        self.deferred: list[tuple[str, list[_Layer], _Layer | None, tuple[tuple[int, int], ...]]] = []

    # -- helpers ------------------------------------------------------------------------------

    def warn(self, path: str, reason: str) -> None:
        self.result.warnings.append((path, reason))

    def add_file(self, path: str, stat: os.stat_result, via_link: bool = False) -> None:
        key = (stat.st_dev, stat.st_ino)
        candidate = (via_link, path)
        known = self.files.get(key)
        if known is None or candidate < known:
            self.files[key] = candidate

    def excluded_by_config(self, path: str, is_dir: bool, exclude: _Layer | None) -> bool:
        if exclude is None:
            return False
        rel = exclude.relative(path)
        if rel is None:  # outside the root: unanchored patterns still match by name
            rel = path.replace(os.sep, "/").lstrip("/")
        return exclude.verdict(rel + "/" if is_dir else rel) is True

    @staticmethod
    def gitignored(path: str, is_dir: bool, layers: list[_Layer]) -> bool:
        for layer in reversed(layers):  # the deepest .gitignore has the last word
            rel = layer.relative(path)
            if rel is None:
                continue
            verdict = layer.verdict(rel + "/" if is_dir else rel)
            if verdict is not None:
                return verdict
        return False

    # -- starting points ----------------------------------------------------------------------

    def initial_layers(self, start: str) -> list[_Layer]:
        """The ignore files above `start` that apply inside it, outermost first.

        In a repository: `.git/info/exclude` and the `.gitignore` files from the repository top down
        to `start`'s parent. Outside one: the `.gitignore` files from the configuration root down.
        (`start`'s own `.gitignore` is read when `start` is walked.)
        """
        if not self.config.respect_gitignore:
            return []
        above: list[str] = []  # start's ancestors, innermost first
        top: str | None = None
        directory = start
        while True:
            if os.path.exists(os.path.join(directory, ".git")):
                top = directory
                break
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
            above.append(directory)
        if top is None:
            root_prefix = self.root.rstrip(os.sep) + os.sep
            above = [d for d in above if d == self.root or d.startswith(root_prefix)]
        layers: list[_Layer] = []
        if top is not None:
            info_exclude = os.path.join(top, ".git", "info", "exclude")
            if os.path.isfile(info_exclude):
                layers.append(self.load_layer(top, info_exclude))
        for directory in reversed(above):
            gitignore = os.path.join(directory, ".gitignore")
            if os.path.isfile(gitignore):
                layers.append(self.load_layer(directory, gitignore))
        return [layer for layer in layers if layer.patterns]

    def load_layer(self, base: str, path: str) -> _Layer:
        try:
            return _Layer(base, _read_patterns(path))
        except OSError as exc:
            self.warn(path, f"cannot read ignore file: {exc.strerror or exc}")
            return _Layer(base, [])

    def walk_start(self, start: str) -> None:
        """Walk a directory the user named: it is taken even if a pattern excludes it."""
        layers = self.initial_layers(start)
        if self.gitignored(start, True, layers):
            layers = [layer.without_patterns_matching(self._rels_down_to(layer.base, start)) for layer in layers]
        exclude = self.exclude
        if exclude is not None and self.excluded_by_config(start, True, exclude):
            rels = self._rels_down_to(exclude.base, start) or [start.replace(os.sep, "/").lstrip("/") + "/"]
            exclude = exclude.without_patterns_matching(rels)
        try:
            stat = os.stat(start)
        except OSError as exc:
            self.warn(start, f"cannot read directory: {exc.strerror or exc}")
            return
        self.walk(start, layers, exclude, ((stat.st_dev, stat.st_ino),), is_start=True)

    @staticmethod
    def _rels_down_to(base: str, start: str) -> list[str]:
        """`a/`, `a/b/`, ... for each directory from below `base` down to `start` (as directories)."""
        prefix = base.rstrip(os.sep) + os.sep
        if not start.startswith(prefix):
            return []
        parts = start[len(prefix) :].split(os.sep)
        return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]

    # -- the walk -----------------------------------------------------------------------------

    def walk(
        self,
        directory: str,
        layers: list[_Layer],
        exclude: _Layer | None,
        ancestry: tuple[tuple[int, int], ...],
        is_start: bool = False,
        via_link: bool = False,
    ) -> None:
        stack = [(directory, layers, ancestry, is_start)]
        while stack:
            current, layers, ancestry, is_start = stack.pop()
            if ancestry[-1] in self.visited:
                continue
            self.visited.add(ancestry[-1])
            try:
                with os.scandir(current) as iterator:
                    entries = list(iterator)
            except PermissionError as exc:
                self.warn(current, f"permission denied: cannot read directory ({exc.strerror or exc})")
                continue
            except OSError as exc:
                self.warn(current, f"cannot read directory: {exc.strerror or exc}")
                continue

            names = {entry.name for entry in entries}
            if not is_start and _VENV_MARKER in names:
                continue  # a virtual environment
            if self.config.respect_gitignore and ".gitignore" in names:
                layer = self.load_layer(current, os.path.join(current, ".gitignore"))
                if layer.patterns:
                    layers = [*layers, layer]

            subdirectories = []
            for entry in entries:
                name = entry.name
                if name in _DEFAULT_NAMES or name.endswith(_DEFAULT_SUFFIXES):
                    continue
                path = entry.path
                try:
                    is_link = entry.is_symlink()
                    is_dir = entry.is_dir()
                    is_file = not is_dir and entry.is_file()
                except OSError as exc:
                    if self.excluded_by_config(path, False, exclude) or self.gitignored(path, False, layers):
                        continue
                    if exc.errno == errno.ELOOP:
                        self.warn(path, "symlink loop: the link resolves to itself, not followed")
                    else:
                        self.warn(path, f"cannot inspect: {exc.strerror or exc}")
                    continue

                if is_dir:
                    if self.excluded_by_config(path, True, exclude) or self.gitignored(path, True, layers):
                        continue
                    if is_link:
                        self.deferred.append((path, layers, exclude, ancestry))
                    else:
                        try:
                            stat = entry.stat(follow_symlinks=False)
                        except OSError as exc:
                            self.warn(path, f"cannot inspect: {exc.strerror or exc}")
                            continue
                        subdirectories.append((path, layers, ancestry + ((stat.st_dev, stat.st_ino),), False))
                elif is_file:
                    if not name.endswith(SOURCE_SUFFIXES):
                        continue
                    if self.excluded_by_config(path, False, exclude) or self.gitignored(path, False, layers):
                        continue
                    try:
                        self.add_file(path, entry.stat(), via_link or is_link)
                    except OSError as exc:
                        self.warn(path, f"cannot inspect: {exc.strerror or exc}")
                elif is_link and name.endswith(SOURCE_SUFFIXES) and not name.startswith(".#"):
                    self.warn(path, self._link_problem(path))
            # Depth first, in name order.
            subdirectories.sort(key=lambda item: item[0], reverse=True)
            stack.extend(subdirectories)

    @staticmethod
    def _link_problem(path: str) -> str:
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symlink loop: the link resolves to itself"
        return "broken symbolic link: its target does not exist"

    def follow_deferred_links(self) -> None:
        """Symlinked directories are walked last, so a real directory always wins over a link to it."""
        while self.deferred:
            self.deferred.sort(key=lambda item: item[0], reverse=True)
            path, layers, exclude, ancestry = self.deferred.pop()
            try:
                stat = os.stat(path)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    self.warn(path, "symlink loop: the link resolves to itself, not followed")
                else:
                    self.warn(path, f"cannot follow symbolic link: {exc.strerror or exc}")
                continue
            key = (stat.st_dev, stat.st_ino)
            target = os.path.realpath(path)
            parent = os.path.realpath(os.path.dirname(path))
            if key in ancestry or parent == target or parent.startswith(target.rstrip(os.sep) + os.sep):
                self.warn(path, f"symlink loop: points back to its ancestor {target}, not followed")
                continue
            if key in self.visited:
                continue  # already walked under its real name
            self.walk(path, layers, exclude, ancestry + (key,), via_link=True)


def discover(paths: Sequence[Path], config: Config) -> Discovery:
    result = Discovery()
    walker = _Walker(config, result)
    for given in paths:
        path = os.path.abspath(given)
        if not os.path.exists(path):
            if os.path.lexists(path):
                result.warnings.append((str(given), _Walker._link_problem(path)))
            result.missing.append(str(given))
            continue
        if os.path.isdir(path):
            walker.walk_start(path)
        elif os.path.isfile(path):
            # Named explicitly: taken whatever its name or the exclude patterns say.
            walker.add_file(path, os.stat(path))
        else:
            result.warnings.append((str(given), "not a regular file or directory"))
    walker.follow_deferred_links()
    result.files = sorted({Path(p) for _, p in walker.files.values()})
    return result


__all__ = ["DEFAULT_EXCLUDES", "SOURCE_SUFFIXES", "Discovery", "discover"]
