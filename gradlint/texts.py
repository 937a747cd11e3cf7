"""Source texts that need not stay in memory: a file read from disk is read again on demand.

A run reads every file up front (phase 1), but after that a file's text is only needed while
the file is checked, when its summary or word hashes are taken, and for the few spans of
another file a cross-file question parses back. On the 2,000-file corpus the texts were 74 MiB
held to the end of the run. So a text that came from disk is let go (`release`), keeping only
its digest; reading it again asks the disk and accepts the text only when it has the same
digest: a file edited during the run reads as unreadable (None) rather than as a text the rest
of the run did not see. Texts that did not come from disk (an editor's buffers, notebooks'
joined cells, in-memory sources) are never let go.

The last texts read again are kept in a small cache, since one file's check often asks about
the same few other files many times.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

RECENT_CHARS = 4_000_000
"""Characters of texts read back that stay cached (the most recently read first kept)."""


def text_digest(text: str) -> str:
    """The digest the project index gives a text dependency (index/project.py `_digest`)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class DiskText:
    """Where a let-go text is read again: its file, as `gradlint.source.read_source` decodes it,
    and the digest the text had."""

    __slots__ = ("digest", "length", "path")

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.digest = text_digest(text)
        self.length = len(text)

    def read(self) -> str | None:
        """The text, or None when the file cannot be read or no longer holds it."""
        found = _recent.get(self)
        if found is not None:
            return found
        from gradlint.source import SourceError, read_source

        try:
            text = read_source(self.path)
        except (SourceError, OSError):
            return None
        if len(text) != self.length or text_digest(text) != self.digest:
            return None
        _recent.put(self, text)
        return text


class _Recent:
    """The texts read back last, up to RECENT_CHARS characters (thread-safe: the language server
    checks in a thread)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._texts: OrderedDict[int, tuple[DiskText, str]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, disk: DiskText) -> str | None:
        with self._lock:
            entry = self._texts.get(id(disk))
            if entry is None or entry[0] is not disk:
                return None
            self._texts.move_to_end(id(disk))
            return entry[1]

    def put(self, disk: DiskText, text: str) -> None:
        with self._lock:
            old = self._texts.pop(id(disk), None)
            if old is not None:
                self._chars -= len(old[1])
            self._texts[id(disk)] = (disk, text)
            self._chars += len(text)
            while self._chars > self.budget and len(self._texts) > 1:
                _, (_, dropped) = self._texts.popitem(last=False)
                self._chars -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._texts.clear()
            self._chars = 0


_recent = _Recent(RECENT_CHARS)


class ReleasableText:
    """A dataclass field (`text: str | None = ReleasableText()`) holding a text in memory until
    `release(owner, disk)` lets it go; from then on reading the field reads `disk` again (a text
    that cannot be read back reads as `unreadable`). Setting the field holds the new value."""

    def __init__(self, unreadable: Any = None) -> None:
        self.unreadable = unreadable

    def __set_name__(self, owner: type, name: str) -> None:
        self.held = f"_{name}_held"
        self.disk = f"_{name}_disk"

    def __get__(self, owner: Any, kind: type | None = None) -> Any:
        if owner is None:
            return None  # the field's default
        state = owner.__dict__
        held = state.get(self.held)
        if held is not None:
            return held
        disk = state.get(self.disk)
        if disk is None:
            return held
        text = disk.read()
        return self.unreadable if text is None else text

    def __set__(self, owner: Any, value: Any) -> None:
        owner.__dict__[self.held] = value
        owner.__dict__[self.disk] = None


def release(owner: Any, disk: DiskText | None, field: str = "text") -> bool:
    """Let go of `owner.<field>`, to be read again from `disk` (nothing happens without one)."""
    if disk is None:
        return False
    state = owner.__dict__
    state[f"_{field}_disk"] = disk
    state[f"_{field}_held"] = None
    return True


def held(owner: Any, field: str = "text") -> str | None:
    """The text `owner.<field>` holds in memory (None once it was let go)."""
    return owner.__dict__.get(f"_{field}_held")


def disk_of(owner: Any, field: str = "text") -> DiskText | None:
    """Where a let-go text is read again (None while it is held)."""
    return owner.__dict__.get(f"_{field}_disk")


@contextmanager
def holding(owner: Any, field: str = "text") -> Iterator[None]:
    """Within this block a let-go text is read back once and held (the file being checked)."""
    disk = disk_of(owner, field)
    if disk is None:
        yield
        return
    owner.__dict__[f"_{field}_held"] = disk.read()
    try:
        yield
    finally:
        if owner.__dict__.get(f"_{field}_disk") is disk:
            owner.__dict__[f"_{field}_held"] = None


def text_length(owner: Any, field: str = "text") -> int:
    """The length of `owner.<field>`, without reading a let-go text again."""
    disk = disk_of(owner, field)
    text = held(owner, field)
    return disk.length if disk is not None else len(text) if text is not None else 0
