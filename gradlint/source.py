"""A file of the run as read from disk: its text, and (once parsed) its model and positions.

Reading is cheap and done for every file up front; parsing happens on demand (the engine for
the files it checks, the project index for the files a cross-file question reaches).
"""

from __future__ import annotations

import tokenize
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Mapping

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from gradlint.analysis.model import FileModel
from gradlint.findings import SkippedFile
from gradlint.notebook import NotebookSource
from gradlint.suppress import Suppressions


@dataclass(frozen=True)
class RiskFactorSite:
    path: Path
    display_path: str
    line: int
    description: str


@dataclass
class SourceFile:
    """One file of the run: read in phase 1; parsed and modelled when it is checked."""

    path: Path
    display_path: str
    text: str | None = None
    ignored_codes: frozenset[str] = frozenset()
    needs_parse: bool = False
    """The text holds a trigger word of an enabled rule (else only its syntax is checked)."""
    model: FileModel | None = None
    positions: "LazyPositions | None" = None
    suppressions: Suppressions | None = None
    skipped: SkippedFile | None = None
    notebook: NotebookSource | None = None
    """For a `.ipynb` file: its joined code cells (`text`) and the map back to cells."""

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines() if self.text is not None else []

    def line_of(self, node: cst.CSTNode) -> int:
        assert self.positions is not None
        return self.positions.start(node)[0]


class SourceError(Exception):
    """The file cannot be read as Python source text."""


def read_source(path: Path) -> str:
    """Decode a file like Python does (PEP 263 cookie, else UTF-8); refuse binaries."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read file: {error.strerror or error}") from None
    if b"\0" in data[:8192]:
        raise SourceError("binary file (contains NUL bytes)")
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
    except SyntaxError as error:
        if "missing encoding" in str(error):
            raise SourceError("not valid UTF-8 text (declare its encoding with a coding comment)") from None
        raise SourceError(f"invalid encoding declaration: {error}") from None
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise SourceError(f"not valid {encoding} text (declare its encoding with a coding comment)") from None
    return text[1:] if text.startswith("\ufeff") else text


@dataclass(frozen=True, eq=False)
class Parsed:
    model: FileModel
    positions: "LazyPositions"


@dataclass(frozen=True)
class ParseFailure:
    """Why a file could not be parsed: libcst's error, or None for too deep nesting."""

    error: cst.ParserSyntaxError | None


class LazyPositions:
    """PositionProvider, computed on first use only."""

    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self._positions: Mapping[cst.CSTNode, Any] | None = None

    def _get(self, node: cst.CSTNode):
        if self._positions is None:
            self._positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        return self._positions[node]

    def start(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self._get(node)
        return position.start.line, position.start.column + 1

    def span(self, node: cst.CSTNode) -> tuple[tuple[int, int], tuple[int, int]]:
        position = self._get(node)
        return (
            (position.start.line, position.start.column + 1),
            (position.end.line, position.end.column + 1),
        )


