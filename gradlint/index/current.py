"""What the cross-file facts a file's findings rest on read now (index/deps.py): the project
index's answers for the results cache and the language server, as digests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from gradlint.index.deps import Dependency
from gradlint.source import SourceError, read_source

if TYPE_CHECKING:
    from gradlint.source import SourceFile


class CurrentValues:
    """Part of ProjectIndex (index/project.py): `dependency_value` and what each kind reads."""

    sources: "dict[Path, SourceFile]"
    _values: dict[Dependency, str]

    def dependency_value(self, dependency: Dependency) -> str:
        """What a dependency reads now, as a digest (the cache compares it with the stored one)."""
        value = self._values.get(dependency)
        if value is None and dependency[0] in ("text", "file"):
            # A file of the run read from disk: the digest of the text it was read with (also
            # once that text was let go), as `_digest(source.text)` gives it.
            source = self.sources.get(Path(dependency[1]))
            disk = source.disk_text() if source is not None else None
            if disk is not None:
                value = self._values[dependency] = disk.digest
        if value is None:
            value = self._values[dependency] = _digest(self._current(dependency))
        return value

    def _current(self, dependency: Dependency) -> object:
        kind, *args = dependency
        if kind in ("text", "file"):
            path = Path(args[0])
            source = self.sources.get(path)
            if source is not None and source.text is not None:
                return source.text
            if kind == "text":  # as the index reads it
                try:
                    return read_source(path)
                except SourceError as error:
                    return f"unreadable: {error}"
            try:  # a file read as bytes (a DeepSpeed JSON config)
                return path.read_bytes()
            except OSError:
                return None
        if kind == "exists":
            return self._is_file(Path(args[0]))
        if kind == "scan":
            all_of, any_of = (tuple(part.split("\0")) if part else () for part in args)
            return [str(path) for path in self._matching(all_of, any_of)]
        if kind == "folder":
            return [str(path) for path in self._folders.get(Path(args[0]), ())]
        if kind == "listing":
            try:
                return sorted(entry.name for entry in Path(args[0]).iterdir())
            except OSError:
                return None
        if kind == "module":
            found = self._root_module_file(tuple(part for part in args[0].split(".") if part))
            return str(found) if found is not None else None
        if kind == "roots":
            return [str(root) for root in self._import_roots]
        if kind == "members":
            return sorted(str(path) for path in self.sources)
        raise ValueError(f"unknown dependency {dependency!r}")


def _digest(value: object) -> str:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        data = repr(value).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()
