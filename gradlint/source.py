"""A file of the run as read from disk: its text, and (once parsed) its model and positions.

Reading is cheap and done for every file up front; parsing happens on demand (the engine for
the files it checks, the project index for the files a cross-file question reaches).
"""

from __future__ import annotations

import tokenize
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import libcst as cst
from libcst.metadata import PositionProvider

from gradlint.analysis.model import FileModel
from gradlint.findings import SkippedFile
from gradlint.notebook import NotebookSource
from gradlint.suppress import Suppressions

if TYPE_CHECKING:
    from gradlint.fix.edits import Resolver


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
    fix_resolver: "Resolver | None" = field(default=None, repr=False, compare=False)
    """Made by the engine for the first finding of this file that has a fix; shared by the rest."""

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
    summary: Any = None
    """What `parse(..., summarize=)` made of CPython's tree (the index's file summary)."""


@dataclass(frozen=True)
class ParseFailure:
    """Why a file could not be parsed: a syntax error (GL000 at CPython's location), or a
    reason to skip a file that is valid Python but beyond what the parsers can take."""

    syntax: tuple[int, int, str] | None = None
    """(line, column, message) of the syntax error."""
    skip: str | None = None


STACK_BYTES = 512 * 2**20
RECURSION_LIMIT = 60_000


class ParsedFiles:
    """Parse results kept from one check to the next, for as long as a file's text stays the same.

    A run parses each file once; the language server checks again on every change, and a
    cross-file question (who calls this `train`?) can reach dozens of files each time. While
    `reusing(parsed_files)` is active, `parse` answers from here. A result depends on nothing but
    the text (the project index keeps its cross-file answers in its own tables), so reusing it is
    the same as parsing again. At most `max_lines` lines are kept, the least recently used
    dropped first (a syntax tree costs about 8 MiB per 1,000 lines)."""

    def __init__(self, max_lines: int) -> None:
        from collections import OrderedDict

        self.max_lines = max_lines
        self._entries: OrderedDict[tuple[Any, str], tuple[Parsed | ParseFailure, int]] = OrderedDict()
        self._lines = 0

    def parse(self, text: str, build: Any, summarize: Any = None) -> Parsed | ParseFailure:
        key = (build, text)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry[0]
        result = _parse(text, build, summarize)
        lines = text.count("\n") + 1
        self._entries[key] = (result, lines)
        self._lines += lines
        while self._lines > self.max_lines and len(self._entries) > 1:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._lines -= dropped
        return result


_REUSED: "ContextVar[ParsedFiles | None]" = ContextVar("gradlint_parsed_files", default=None)


@contextmanager
def reusing(parsed_files: ParsedFiles | None) -> Iterator[None]:
    """Within this block (in this thread), `parse` takes and keeps its results in `parsed_files`."""
    token = _REUSED.set(parsed_files)
    try:
        yield
    finally:
        _REUSED.reset(token)


def parse(text: str, build: Any, summarize: Any = None) -> Parsed | ParseFailure:
    """`text` parsed and modelled with `build` (see `_parse`), or what `reusing` keeps for it
    (a kept result may come without a summary: the index then makes one on its own)."""
    parsed_files = _REUSED.get()
    if parsed_files is not None:
        return parsed_files.parse(text, build, summarize)
    return _parse(text, build, summarize)


def _parse(text: str, build: Any, summarize: Any = None) -> Parsed | ParseFailure:
    """CPython's parser first: it names syntax errors precisely, refuses nesting past its
    limits in milliseconds, and never crashes. Then libcst and `build(module)`, in a thread
    with a large stack, so that deeply nested code cannot overflow the C stack and kill the
    process.

    A file is a syntax error (GL000) when both parsers refuse it, or when CPython refuses it
    for nesting. When only CPython refuses it, the file is written for a newer Python than the
    one running gradlint (`def f[T](...)` on 3.11) and libcst, which knows newer grammars,
    decides. `summarize(tree, text)`, when given, reads CPython's tree before it is dropped."""
    syntax: tuple[int, int, str] | None = None
    statement_lines: list[int] | None = None
    summary = None
    try:
        tree = cpython_parse(text)
        statement_lines = [statement.lineno for statement in tree.body]
        if summarize is not None:
            summary = summarize(tree, text)
        del tree
    except SyntaxError as error:
        syntax = (max(1, error.lineno or 1), max(1, error.offset or 1), error.msg)
        if "too many nested" in error.msg:
            return ParseFailure(syntax=syntax)
    except (RecursionError, MemoryError):
        return ParseFailure(skip="too deeply nested to parse")
    except ValueError as error:  # NUL bytes and the like
        return ParseFailure(syntax=(1, 1, str(error)))

    def parse_and_build() -> Parsed:
        module = cst.parse_module(text)
        return Parsed(build(module), LazyPositions(module, statement_lines), summary)

    try:
        return _with_large_stack(parse_and_build)
    except cst.ParserSyntaxError as error:
        if syntax is not None:
            return ParseFailure(syntax=syntax)
        message = str(error.message).splitlines()[0] if error.message else "parser error"
        return ParseFailure(skip=f"libcst cannot parse this valid Python ({message}); gradlint skipped it")
    except (RecursionError, MemoryError):
        return ParseFailure(skip="too deeply nested to parse")


def cpython_parse(text: str) -> Any:
    """CPython's parser alone (no bytecode); its warnings about the user's code
    (`"is" with a literal`, ...) are not gradlint's to print."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(text, "<gradlint>", "exec", dont_inherit=True, flags=0x400)  # ast.PyCF_ONLY_AST


def _with_large_stack(function: Any) -> Any:
    import sys
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # handed to the calling thread
            outcome["error"] = error

    previous_limit = sys.getrecursionlimit()
    try:
        previous_stack = threading.stack_size(STACK_BYTES)
    except (ValueError, RuntimeError):  # the platform sets no thread stack sizes
        return function()
    sys.setrecursionlimit(max(previous_limit, RECURSION_LIMIT))
    try:
        thread = threading.Thread(target=run, name="gradlint-parse")
        try:
            thread.start()
        except RuntimeError:  # no address space for the stack (a `ulimit -v`): parse here instead
            sys.setrecursionlimit(previous_limit)
            threading.stack_size(previous_stack)
            return function()
        threading.stack_size(previous_stack)
        thread.join()
    finally:
        sys.setrecursionlimit(previous_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class LazyPositions:
    """Positions (libcst's PositionProvider), computed on first use, one top-level statement
    at a time.

    libcst computes positions by generating the code of the whole module, which costs more
    than parsing it; a finding needs the positions of a few nodes. So only the top-level
    statement holding the node is generated, and its lines are shifted to where CPython's
    parser put that statement (`statement_lines`: the line of each top-level statement of
    the module, from the AST). When the two parsers' statements do not pair up, the whole
    module is generated as libcst does.
    """

    def __init__(self, module: cst.Module, statement_lines: list[int] | None = None) -> None:
        self.module = module
        self._statement_lines = statement_lines
        self._positions: dict[cst.CSTNode, Any] = {}
        self._top: dict[int, int] | None = None
        """id(node) -> index of the top-level statement holding it."""
        self._whole = False

    def _get(self, node: cst.CSTNode):
        position = self._positions.get(node)
        if position is None:
            self._compute(node)
            position = self._positions[node]
        return position

    def _compute(self, node: cst.CSTNode) -> None:
        index = self._statement_of(node)
        if index is None or not self._statement(index):
            self._generate_whole()

    def _statement_of(self, node: cst.CSTNode) -> int | None:
        if self._statement_lines is None or self._whole:
            return None
        if self._top is None:
            if not _pairs_up(self.module, self._statement_lines):
                self._statement_lines = None
                return None
            from gradlint.analysis.walk import walk

            self._top = {id(inner): index for index, statement in enumerate(self.module.body) for inner in walk(statement)}
        return self._top.get(id(node))

    def _statement(self, index: int) -> bool:
        """Generate one top-level statement; False when its lines cannot be placed."""
        from libcst._position import CodePosition, CodeRange
        from libcst.metadata.position_provider import PositionProvidingCodegenState

        assert self._statement_lines is not None
        statement = self.module.body[index]
        provider = PositionProvider()
        state = PositionProvidingCodegenState(
            default_indent=self.module.default_indent, default_newline=self.module.default_newline, provider=provider
        )
        statement._codegen(state)
        local = provider._computed.get(statement)
        if local is None:
            return False
        shift = _first_line(self._statement_lines, self.module.body, index) - local.start.line
        for inner, position in provider._computed.items():
            if shift:
                position = CodeRange(
                    CodePosition(position.start.line + shift, position.start.column),
                    CodePosition(position.end.line + shift, position.end.column),
                )
            self._positions[inner] = position
        return True

    def _generate_whole(self) -> None:
        # The provider's own code generation pass, without MetadataWrapper's visitor
        # machinery around it: the same positions in about 60% of the time.
        provider = PositionProvider()
        provider._gen_impl(self.module)
        self._positions = provider._computed
        self._whole = True

    def holds(self, node: cst.CSTNode) -> bool:
        """Whether `node` is a node of this module (not one parsed from a span of it elsewhere)."""
        if node in self._positions:
            return True
        if self._statement_of(node) is not None:
            return True
        if self._whole or self._statement_lines is None:
            from gradlint.analysis.walk import walk

            return any(inner is node for inner in walk(self.module))
        return False

    def start(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self._get(node)
        return position.start.line, position.start.column + 1

    def span(self, node: cst.CSTNode) -> tuple[tuple[int, int], tuple[int, int]]:
        position = self._get(node)
        return (
            (position.start.line, position.start.column + 1),
            (position.end.line, position.end.column + 1),
        )


def _ast_statement_count(statement: cst.CSTNode) -> int:
    """How many statements CPython's AST has for one libcst top-level statement (`a; b` is two)."""
    if isinstance(statement, cst.SimpleStatementLine):
        return len(statement.body)
    return 1


def _pairs_up(module: cst.Module, statement_lines: list[int]) -> bool:
    return sum(_ast_statement_count(statement) for statement in module.body) == len(statement_lines)


def _first_line(statement_lines: list[int], body: Any, index: int) -> int:
    """CPython's line for libcst's top-level statement `index` (the line of its keyword, or of
    its first small statement: where libcst's syntactic position starts too)."""
    consumed = sum(_ast_statement_count(statement) for statement in body[:index])
    return statement_lines[consumed]
