"""Autofix: what a rule asks for (a `FixSpec` on its Diagnostic), the line edits it resolves
to (a `Fix` on the Finding), applying them to source text, diffs and atomic writes.

Every fix is a set of whole-line insertions computed from libcst positions, so the rest of
the file (comments, formatting, line endings) is untouched. A fix is only made where the
anchoring statement starts its own line; otherwise the finding says "no automatic fix".
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import libcst as cst

if TYPE_CHECKING:
    from gradlint.findings import Finding

SAFE, UNSAFE = "safe", "unsafe"
NO_FIX = "no automatic fix"

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class InsertBefore:
    """Insert `lines` before the statement that holds `node`, at its indentation."""

    node: cst.CSTNode
    lines: tuple[str, ...]


@dataclass(frozen=True)
class InsertAtBodyStart:
    """Insert `lines` as the first statements of the body of `block` (a for/while/with/def)."""

    block: cst.CSTNode
    lines: tuple[str, ...]


@dataclass(frozen=True)
class EnsureImport:
    """`import <module>` at the top (after the docstring and `__future__` imports) if not bound."""

    module: str = "torch"


@dataclass(frozen=True)
class FixSpec:
    safety: str
    description: str
    parts: tuple[InsertBefore | InsertAtBodyStart | EnsureImport, ...]


# ----------------------------------------------------------------------------- resolved


@dataclass(frozen=True)
class Edit:
    line: int
    """0-based index of the line to insert before (len(lines): at the end)."""
    text: tuple[str, ...]
    """Whole lines, indentation included, without line endings."""


@dataclass(frozen=True)
class Fix:
    safety: str
    description: str
    edits: tuple[Edit, ...]


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split as libcst counts lines (\\r\\n, \\r, \\n)."""
    return _LINE.findall(text)


def newline_of(text: str) -> str:
    match = re.search(r"\r\n|\r|\n", text)
    return match.group(0) if match else "\n"


class _StatementMap(cst.CSTVisitor):
    """id(node) -> the innermost simple statement (line or one-line suite) holding it."""

    def __init__(self) -> None:
        self.stack: list[cst.CSTNode] = []
        self.holder: dict[int, cst.CSTNode] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            self.holder[id(node)] = self.stack[-1]
        if isinstance(node, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            self.stack.append(node)
            self.holder[id(node)] = node
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if self.stack and self.stack[-1] is original_node:
            self.stack.pop()


class Resolver:
    """Resolves FixSpecs of one parsed file into line edits."""

    def __init__(self, module: cst.Module, text: str, start) -> None:
        self.module = module
        self.lines = [line.rstrip("\r\n") for line in split_lines(text)]
        self.start = start
        """node -> (1-based line, 1-based column)."""
        self._holders: dict[int, cst.CSTNode] | None = None

    def holder(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if self._holders is None:
            visitor = _StatementMap()
            self.module.visit(visitor)
            self._holders = visitor.holder
        return self._holders.get(id(node))

    def _statement_line(self, statement: cst.CSTNode) -> tuple[int, str] | None:
        """(0-based line, indentation) when `statement` starts its own line."""
        line, column = self.start(statement)
        if not 0 < line <= len(self.lines):
            return None
        indent = self.lines[line - 1][: column - 1]
        if indent.strip():
            return None
        return line - 1, indent

    def resolve(self, spec: FixSpec) -> Fix | None:
        edits: list[Edit] = []
        for part in spec.parts:
            edit = self._resolve_part(part)
            if edit is None:
                return None
            if edit.text:
                edits.append(edit)
        return Fix(spec.safety, spec.description, tuple(edits)) if edits else None

    def _resolve_part(self, part) -> Edit | None:
        if isinstance(part, InsertBefore):
            statement = self.holder(part.node)
            if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
                return None  # a one-line suite (`if x: step()`) or `a; b`: no automatic fix
            where = self._statement_line(statement)
            if where is None:
                return None
            return Edit(where[0], tuple(where[1] + line for line in part.lines))
        if isinstance(part, InsertAtBodyStart):
            body = getattr(part.block, "body", None)
            if not isinstance(body, cst.IndentedBlock) or not body.body:
                return None
            first = body.body[0]
            if getattr(first, "decorators", None):
                first = first.decorators[0]
            where = self._statement_line(first)
            if where is None:
                return None
            return Edit(where[0], tuple(where[1] + line for line in part.lines))
        if isinstance(part, EnsureImport):
            return self._import(part.module)
        return None

    def _import(self, name: str) -> Edit | None:
        body = list(self.module.body)
        for statement in body:
            if _binds(statement, name):
                return Edit(0, ())
        index = 0
        if body and _is_docstring(body[0]):
            index = 1
        while index < len(body) and _is_future(body[index]):
            index += 1
        if index > 0:
            line = self._end_line(body[index - 1])
            if line is None:
                return None
            return Edit(line, (f"import {name}",))
        if not body:
            return Edit(len(self.lines), (f"import {name}",))
        where = self._statement_line(body[0])
        return None if where is None or where[1] else Edit(where[0], (f"import {name}",))

    def _end_line(self, statement: cst.CSTNode) -> int | None:
        """0-based index of the line after the statement."""
        if not isinstance(statement, cst.SimpleStatementLine):
            return None
        # The statement's last line: the line of its first token plus the newlines it spans.
        line, _ = self.start(statement)
        code = self.module.code_for_node(statement.with_changes(leading_lines=()))
        return line - 1 + len(split_lines(code))


def _binds(statement: cst.CSTNode, name: str) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    for small in statement.body:
        if isinstance(small, cst.Import):
            for alias in small.names:
                if alias.asname is not None:
                    if isinstance(alias.asname.name, cst.Name) and alias.asname.name.value == name:
                        return True
                    continue
                dotted = cst.helpers.get_full_name_for_node(alias.name) or ""
                if dotted.split(".")[0] == name:
                    return True
    return False


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_future(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and any(
            isinstance(small, cst.ImportFrom)
            and isinstance(small.module, cst.Name)
            and small.module.value == "__future__"
            for small in statement.body
        )
    )


# ----------------------------------------------------------------------------- applying


def wanted(finding: "Finding", unsafe: bool) -> bool:
    fix = getattr(finding, "fix", None)
    return fix is not None and (fix.safety == SAFE or unsafe)


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Insert the edits' lines (identical insertions at one line once), keeping line endings."""
    newline = newline_of(text)
    lines = split_lines(text)
    by_line: dict[int, list[str]] = {}
    for edit in edits:
        inserted = by_line.setdefault(edit.line, [])
        for line in edit.text:
            if line not in inserted:
                inserted.append(line)
    for index in sorted(by_line, reverse=True):
        if index >= len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        index = min(index, len(lines))
        lines[index:index] = [line + newline for line in by_line[index]]
    return "".join(lines)


def fixed_text(text: str, findings: Sequence["Finding"], unsafe: bool) -> tuple[str, list["Finding"]]:
    """The text with the wanted fixes applied, and the findings fixed; the text is unchanged
    when the result would not parse."""
    chosen = [finding for finding in findings if wanted(finding, unsafe)]
    if not chosen:
        return text, []
    result = apply_edits(text, [edit for finding in chosen for edit in finding.fix.edits])
    try:
        cst.parse_module(result)
        compile(result, "<gradlint-fix>", "exec", dont_inherit=True, flags=0x400)
    except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError):
        return text, []
    return result, chosen


def unified_diff(before: str, after: str, name: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def read_text(path: Path) -> str:
    """The file as text with its line endings as they are (no newline translation)."""
    from gradlint.engine import read_source

    return read_source(path)


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder + os.replace, keeping the mode and
    the encoding (a UTF-8 BOM or a coding cookie) of the original."""
    import tokenize
    from io import BytesIO

    original = path.read_bytes()
    encoding, _ = tokenize.detect_encoding(BytesIO(original).readline)
    data = text.encode("utf-8" if encoding == "utf-8-sig" else encoding)
    if original.startswith(b"\xef\xbb\xbf"):
        data = b"\xef\xbb\xbf" + data
    mode = stat.S_IMODE(path.stat().st_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gradlint-fix", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
