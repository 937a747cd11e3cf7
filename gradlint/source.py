"""A file of the run as read from disk: its text, and (once parsed) its model and positions.

Reading is cheap and done for every file up front; parsing happens on demand (the engine for
the files it checks, the project index for the files a cross-file question reaches).
"""

from __future__ import annotations

import re
import threading
import tokenize
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from gradlint.findings import SkippedFile
from gradlint.notebook import NotebookSource
from gradlint.positions import LazyPositions
from gradlint.suppress import Suppressions
from gradlint.texts import DiskText, ReleasableText, disk_of, held, release  # noqa: F401 (the index reads them here)

if TYPE_CHECKING:
    import libcst as cst

    from gradlint.analysis.model import FileModel
    from gradlint.fix.edits import Resolver


@dataclass
class SourceFile:
    """One file of the run: read in phase 1; parsed and modelled when it is checked."""

    path: Path
    display_path: str
    text: str | None = ReleasableText()  # type: ignore[assignment]
    """Held in memory, or, for a file read from disk, let go once the run no longer needs it and
    read again on use (gradlint.texts): None when the file does not hold it any more."""
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
    from_disk: bool = False
    """`text` is the file as `read_source` reads it (not a buffer, nor a notebook's cells)."""
    _disk: DiskText | None = field(default=None, init=False, repr=False, compare=False)

    def disk_text(self) -> DiskText | None:
        """Where a text read from disk is read again once let go (gradlint.texts `release`)."""
        if self._disk is None and self.from_disk and self.notebook is None and held(self) is not None:
            self._disk = DiskText(self.path, held(self))
        return self._disk

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

    def parse(
        self, text: str, build: Any, summarize: Any = None, statement_lines: list[int] | None = None
    ) -> Parsed | ParseFailure:
        key = (build, text)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry[0]
        result = _parse(text, build, summarize, statement_lines)
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


def parse(
    text: str, build: Any, summarize: Any = None, statement_lines: list[int] | None = None
) -> Parsed | ParseFailure:
    """`text` parsed and modelled with `build` (see `_parse`), or what `reusing` keeps for it
    (a kept result may come without a summary: the index then makes one on its own)."""
    parsed_files = _REUSED.get()
    if parsed_files is not None:
        return parsed_files.parse(text, build, summarize, statement_lines)
    return _parse(text, build, summarize, statement_lines)


def _parse(
    text: str, build: Any, summarize: Any = None, statement_lines: list[int] | None = None
) -> Parsed | ParseFailure:
    """CPython's parser first: it names syntax errors precisely, refuses nesting past its
    limits in milliseconds, and never crashes. Then libcst and `build(module)`, in a thread
    with a large stack, so that deeply nested code cannot overflow the C stack and kill the
    process.

    A file is a syntax error (GL000) when both parsers refuse it, or when CPython refuses it
    for nesting. When only CPython refuses it, the file is written for a newer Python than the
    one running gradlint (`def f[T](...)` on 3.11) and libcst, which knows newer grammars,
    decides. `summarize(tree, text)`, when given, reads CPython's tree before it is dropped.

    `statement_lines`, when given, are those of a summary CPython already made of this text:
    then the text is known to be valid, and CPython is not asked again unless the text may
    hold a table to hollow (`hollow_data`)."""
    syntax: tuple[int, int, str] | None = None
    summary = None
    lean = text
    if statement_lines is not None and summarize is None and not _may_hold_table(text):
        return _parse_libcst(text, build, statement_lines, None, None)
    statement_lines = None
    try:
        tree = cpython_parse(text)
        statement_lines = [statement.lineno for statement in tree.body]
        if summarize is not None:
            summary = summarize(tree, text)
        lean = hollow_data(text, tree)
        del tree
    except SyntaxError as error:
        syntax = (max(1, error.lineno or 1), max(1, error.offset or 1), error.msg)
        if "too many nested" in error.msg:
            return ParseFailure(syntax=syntax)
    except (RecursionError, MemoryError):
        return ParseFailure(skip="too deeply nested to parse")
    except ValueError as error:  # NUL bytes and the like
        return ParseFailure(syntax=(1, 1, str(error)))

    return _parse_libcst(lean, build, statement_lines, summary, syntax)


_VALIDATION_LOCK = threading.Lock()
_unvalidated_depth = 0


@contextmanager
def unvalidated() -> Iterator[None]:
    """Within this block, libcst does not validate the nodes it builds.

    libcst checks every node it constructs (`CSTNode.__post_init__` calls `_validate`), also each
    node its own parser builds from code it has just accepted; its comment there says it would
    rather not validate parsed trees. It was a fifth of parse_module's time, 2.4% of the
    instructions of checking ten training scripts. Only parser
    calls run inside this block: nodes gradlint builds itself (fixes) are validated as ever.
    Counted, so that threads parsing at the same time restore the check only when the last ends."""
    global _unvalidated_depth, _validating
    from libcst._nodes.base import CSTNode

    with _VALIDATION_LOCK:
        if _unvalidated_depth == 0:
            _validating = CSTNode.__dict__["__post_init__"]
            CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
        _unvalidated_depth += 1
    try:
        yield
    finally:
        with _VALIDATION_LOCK:
            _unvalidated_depth -= 1
            if _unvalidated_depth == 0:
                CSTNode.__post_init__ = _validating  # type: ignore[method-assign]


_validating: Any = None
"""libcst's own `CSTNode.__post_init__`, while `unvalidated` has replaced it."""


def _no_validation(node: Any) -> None:
    pass


def _parse_libcst(
    lean: str,
    build: Any,
    statement_lines: list[int] | None,
    summary: Any,
    syntax: tuple[int, int, str] | None,
) -> Parsed | ParseFailure:
    import libcst as cst  # here, not at the top: a run whose files no rule wants never imports it

    def parse_and_build() -> Parsed:
        with unvalidated():
            module = cst.parse_module(lean)
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


HOLLOW_MIN_CHARS = 10_000
"""A top-level literal at least this long, holding no trigger word, is not given to libcst."""
HOLLOW_MIN_LINES = 100
"""... and spread over at least this many lines (or all on one line)."""
_OPENERS = {"Dict": ("{", "}"), "List": ("[", "]"), "Tuple": ("(", ")")}
_NEWLINE = re.compile(r"\r\n|\r|\n")


_TABLE_START = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*[ \t]*(?::[^\n=]*)?=[ \t]*[\[{(]", re.MULTILINE)


def _may_hold_table(text: str) -> bool:
    """Whether `hollow_data` could find something: a top-level assignment opening a bracket."""
    return len(text) >= HOLLOW_MIN_CHARS and _TABLE_START.search(text) is not None


def hollow_data(text: str, tree: Any) -> str:
    """`text` with the inside of every large data literal assigned at the top level emptied,
    every line and every other column left where it was.

    A table of numbers assigned to a module constant (torch's `_triton_ops_meta.py` holds a
    466 KB one) costs libcst about 1.4 KB of memory per character: 665 MiB for that file alone,
    which set the peak of a whole run. No rule reads inside such a literal: it holds no call,
    no operation and no trigger word of any rule, only constants and dotted names. So its brackets stay, its inside becomes line
    breaks (columns after the closing bracket are kept with spaces), libcst parses the rest as
    usual, and every position outside the literal is what a full parse gives. The literal is
    only emptied when the statement has its lines to itself and its value is a dict, list or
    parenthesised tuple of such data; the model still sees a dict, list or tuple there."""
    candidates = []
    for index, statement in enumerate(tree.body):
        value = getattr(statement, "value", None)
        if type(statement).__name__ not in ("Assign", "AnnAssign") or value is None:
            continue
        if type(value).__name__ not in _OPENERS or value.end_lineno is None:
            continue
        lines_spanned = value.end_lineno - value.lineno
        if lines_spanned < HOLLOW_MIN_LINES and not (
            lines_spanned == 0 and value.end_col_offset - value.col_offset >= HOLLOW_MIN_CHARS
        ):
            continue  # a small literal (most multi-line constants): not worth measuring
        previous = tree.body[index - 1] if index else None
        following = tree.body[index + 1] if index + 1 < len(tree.body) else None
        if (previous is not None and previous.end_lineno >= statement.lineno) or (
            following is not None and following.lineno <= statement.end_lineno
        ):
            continue  # `a = 1; TABLE = {...}`: shares a line with another statement
        candidates.append((statement, value))
    if not candidates:
        return text
    lines = _NEWLINE.split(text)
    breaks = _NEWLINE.findall(text)
    triggers: tuple[str, ...] | None = None
    for statement, value in candidates:
        first, last = value.lineno - 1, value.end_lineno - 1
        start = len(lines[first].encode("utf-8")[: value.col_offset].decode("utf-8", "replace"))
        end = len(lines[last].encode("utf-8")[: value.end_col_offset].decode("utf-8", "replace"))
        if first == last:
            segment = lines[first][start:end]
        else:
            segment = "\n".join([lines[first][start:], *lines[first + 1 : last], lines[last][:end]])
        opener, closer = _OPENERS[type(value).__name__]
        if len(segment) < HOLLOW_MIN_CHARS or segment[0] != opener or segment[-1] != closer:
            continue
        if triggers is None:
            from gradlint.rules import REGISTRY  # the registry is a table of words: no rule is imported

            triggers = tuple({trigger for entry in REGISTRY for trigger in entry.triggers})
        if any(trigger in segment for trigger in triggers) or not _only_constants(value):
            continue
        if first == last:
            lines[first] = lines[first][:start] + opener + " " * (end - start - 2) + closer + lines[first][end:]
            continue
        lines[first] = lines[first][:start] + opener
        for inside in range(first + 1, last):
            lines[inside] = ""
        lines[last] = " " * (end - 1) + closer + lines[last][end:]
    hollowed = [line + brk for line, brk in zip(lines, breaks)]
    if len(lines) > len(breaks):
        hollowed.append(lines[-1])
    return "".join(hollowed)


def _only_constants(node: Any) -> bool:
    """Whether an expression is data: constants (numbers, strings, None, True, False) and dotted
    names (`torch.float16`), in dicts, lists, tuples and sets, with signs; no call, no operation."""
    stack = [node]
    while stack:
        current = stack.pop()
        kind = type(current).__name__
        if kind in ("Constant", "Name"):
            continue
        if kind == "Attribute":  # a dotted name (`torch.float16`), no call inside
            stack.append(current.value)
            continue
        if kind == "Dict":
            if any(key is None for key in current.keys):  # `{**other}`
                return False
            stack.extend(current.keys)
            stack.extend(current.values)
        elif kind in ("List", "Tuple", "Set"):
            stack.extend(current.elts)
        elif kind == "UnaryOp" and type(current.op).__name__ in ("USub", "UAdd"):
            stack.append(current.operand)
        else:
            return False
    return True


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
