"""Which files of a run hold a word: an inverted index of the run's identifiers.

The project index asks it which files can answer a cross-file question (the files that define
`--lr`, the files that mention `RNNModel`), so a question costs the files that hold its words,
not the whole run.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from gradlint.source import SourceFile

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class WordIndex:
    def __init__(self, sources: "Mapping[Path, SourceFile]") -> None:
        self._sources = sources
        self._hashes: list[tuple[Path, array]] | None = None
        """Each file's identifiers, hashed (see `files_with_word`), built on first use."""
        self._word_files: dict[str, frozenset[Path]] = {}

    def matching(self, all_of: tuple[str, ...], any_of: tuple[str, ...]) -> list[Path]:
        """Files whose text holds the needles, with each word of a needle a whole identifier there,
        in run order. Candidates come from the inverted index of words, so a question costs the
        files that hold its words, not the whole run."""
        candidates: set[Path] | None = None
        for needle in all_of:
            found = self._holding(needle)
            if found is not None:
                candidates = found if candidates is None else candidates & found
        if any_of:
            union: set[Path] = set()
            for needle in any_of:
                found = self._holding(needle)
                if found is None:
                    union = set(self._sources)
                    break
                union |= found
            candidates = union if candidates is None else candidates & union
        if candidates is None:
            paths: Iterable[Path] = self._sources
        else:
            order = self._run_order
            paths = sorted(candidates, key=order.__getitem__)
        found_paths = []
        for path in paths:
            text = self._sources[path].text
            if (
                text is not None
                and all(needle in text for needle in all_of)
                and (not any_of or any(needle in text for needle in any_of))
            ):
                found_paths.append(path)
        return found_paths

    @cached_property
    def _run_order(self) -> dict[Path, int]:
        return {path: position for position, path in enumerate(self._sources)}

    def _holding(self, needle: str) -> set[Path] | None:
        """The files whose identifiers include every word of `needle`, whole: `--lr` is looked
        for where `lr` is a word, so `--lr_scheduler` does not match it. None when the needle
        has no word to look up (then only the substring test decides)."""
        words = _WORD.findall(needle)
        if not words:
            return None
        found: set[Path] | None = None
        for word in words:
            paths = self.files_with_word(word)
            found = set(paths) if found is None else found & paths
        return found

    def files_with_word(self, word: str) -> frozenset[Path]:
        """The files of the run holding `word` as a whole identifier (as `_WORD` splits text).

        Each file keeps the sorted 32-bit hashes of its identifiers (4 bytes a word: a run of
        2,000 files holds 450,000 of them, where a word -> files table took 22 MiB); a file whose
        hashes hold the word's is confirmed in its text, since two words may share a hash. A
        run asks about a hundred words or so; each answer is kept."""
        known = self._word_files.get(word)
        if known is not None:
            return known
        key = hash(word) & 0xFFFFFFFF
        pattern = None
        hits = []
        for path, hashes in self._word_hashes():
            at = bisect_left(hashes, key)
            if at == len(hashes) or hashes[at] != key:
                continue
            if pattern is None:  # the word whole: not inside a longer identifier (digits may lead it)
                pattern = re.compile(r"(?<![A-Za-z0-9_])[0-9]*" + re.escape(word) + r"(?![A-Za-z0-9_])")
            text = self._sources[path].text
            if text is not None and pattern.search(text):
                hits.append(path)
        known = self._word_files[word] = frozenset(hits)
        return known

    def _word_hashes(self) -> list[tuple[Path, array]]:
        if self._hashes is None:
            table = []
            for path, source in self._sources.items():
                text = source.text  # read from disk again when the run let it go (gradlint.texts)
                if text is None:
                    continue
                words = {hash(word) & 0xFFFFFFFF for word in _WORD.findall(text)}
                table.append((path, array("I", sorted(words))))
            self._hashes = table
        return self._hashes

