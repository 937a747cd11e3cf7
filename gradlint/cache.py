"""The results cache: a file's findings are reused while nothing they rest on has changed.

An entry is keyed by what determines a file's findings on its own: gradlint's code, the
rule selection and options, the file's path and text. It stores, beside the findings, every
cross-file fact the project index read while checking the file (see index/deps.py) with
the value it had; the entry is reused only when each of those still reads the same, so
editing `model.py` re-checks the `train.py` that imports it and nothing else.

One file per entry, written to a temporary file and renamed into place, so two runs that
share the cache never see a half-written entry; an entry that cannot be read (corrupt,
truncated, from another version) is ignored and rewritten. Entries are pickled, as black
does for its cache: the cache is a folder of the user's own project, which nobody else
writes to, and pickle keeps a warm run cheap.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import gradlint
from gradlint import __version__

if TYPE_CHECKING:
    from gradlint.engine import FileChecker, FileResult
    from gradlint.index import ProjectIndex
    from gradlint.source import SourceFile

DEFAULT_DIRECTORY = ".gradlint_cache"
"""Where the cache lives, in the project root, unless `--cache-dir` says otherwise."""
_FORMAT = 1


def code_fingerprint() -> str:
    """gradlint's version and its own files' sizes and modification times: an edited checkout
    (an editable install) must not reuse findings its old code produced."""
    package = Path(gradlint.__file__).parent
    digest = hashlib.blake2b(f"{__version__}/{_FORMAT}".encode(), digest_size=16)
    for path in sorted(package.rglob("*.py")):
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path.relative_to(package)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


class Cache:
    def __init__(self, directory: Path, checker: "FileChecker", cwd: Path) -> None:
        self.directory = directory
        settings = (
            code_fingerprint(),
            sorted(checker.enabled_codes),
            # The configured options: the defaults are part of the code (the fingerprint), and
            # reading them would import every rule.
            sorted((code, sorted(options.items(), key=repr)) for code, options in checker.configured_options.items()),
            checker.report_unused_ignores,
            sorted(checker.declared.items()),  # `clip-functions` / `detach-functions`
            str(cwd),  # paths in messages are written relative to it
        )
        self._settings = hashlib.blake2b(repr(settings).encode(), digest_size=16).hexdigest()
        self._ready = False
        self.hits = 0
        self.misses = 0

    # --------------------------------------------------------------- lookup

    def key(self, source: "SourceFile") -> str | None:
        if source.text is None:
            return None
        digest = hashlib.blake2b(digest_size=20)
        digest.update(self._settings.encode())
        digest.update(f"\0{source.path}\0{source.display_path}\0{sorted(source.ignored_codes)}\0".encode())
        digest.update(source.text.encode("utf-8", "surrogatepass"))
        if source.notebook is not None:  # cell boundaries decide the reported locations
            digest.update(repr(source.notebook.locations).encode())
        return digest.hexdigest()

    def lookup(self, source: "SourceFile", project: "ProjectIndex") -> "FileResult | None":
        key = self.key(source)
        if key is None:
            return None
        try:
            with open(self._entry(key), "rb") as stream:
                stored_key, dependencies, result = pickle.load(stream)
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception:  # corrupt or foreign entry: check the file again and rewrite it
            self.misses += 1
            return None
        if stored_key != key or any(project.dependency_value(dep) != value for dep, value in dependencies):
            self.misses += 1
            return None
        self.hits += 1
        return result

    # ---------------------------------------------------------------- store

    def store(self, source: "SourceFile", result: "FileResult", project: "ProjectIndex") -> None:
        """Keep the result (never one with an internal error: a crash is retried next run)."""
        key = self.key(source)
        if key is None or result.errors:
            return
        dependencies = sorted((dep, project.dependency_value(dep)) for dep in result.dependencies)
        kept = _without_dependencies(result)
        try:
            payload = pickle.dumps((key, dependencies, kept), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # a finding that cannot be stored is simply not cached
            return
        try:
            self._prepare()
            entry = self._entry(key)
            entry.parent.mkdir(parents=True, exist_ok=True)
            import tempfile

            handle, temporary = tempfile.mkstemp(prefix=".entry.", dir=entry.parent)
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(payload)
                os.replace(temporary, entry)
            except BaseException:
                _unlink(temporary)
                raise
        except OSError:
            pass  # a read-only or full disk costs speed, never the run

    def _entry(self, key: str) -> Path:
        return self.directory / f"v{_FORMAT}" / key[:2] / key

    def _prepare(self) -> None:
        if self._ready:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        gitignore = self.directory / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text("# Created by gradlint: the cache is not part of the project.\n*\n")
        tag = self.directory / "CACHEDIR.TAG"
        if not tag.exists():  # backup tools skip folders with this tag (bford.info/cachedir)
            tag.write_text(
                "Signature: 8a477f597d28d172789f06886806bc55\n"
                "# This file is a cache directory tag created by gradlint.\n"
            )
        self._ready = True


def _without_dependencies(result: "FileResult") -> Any:
    from dataclasses import replace

    return replace(result, dependencies=set())


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def clear(directory: Path) -> int:
    """Remove the cache folder's entries; returns how many files were removed."""
    removed = 0
    if not directory.is_dir():
        return 0
    for path in sorted(directory.rglob("*"), reverse=True):
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
                removed += 1
        except OSError:
            continue
    try:
        directory.rmdir()
    except OSError:
        pass
    return removed


def entries(directory: Path) -> Iterable[Path]:
    root = directory / f"v{_FORMAT}"
    return root.glob("*/*") if root.is_dir() else []
