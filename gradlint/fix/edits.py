"""The edit machinery of autofix: what a rule asks for (a `FixSpec` on its Diagnostic), the
edits it resolves to (a `Fix` on the Finding), and applying them to source text.

A fix is made of three kinds of edit computed from libcst positions: whole lines inserted
before a line, whole lines deleted (a statement moved elsewhere), and a node's source range
replaced by text. Everything else in the file (comments, formatting, line endings) is
untouched. A fix is only made where the statements involved start their own line (and, for a
move, are a single simple statement); otherwise the finding says "no automatic fix".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from gradlint.source import cpython_parse

if TYPE_CHECKING:
    import libcst as cst

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
class MoveBefore:
    """Move the statement that holds `node` to just before the statement that holds `anchor`,
    re-indented to the anchor's indentation, after `lines_before` (inserted with it).

    Only a single simple statement on its own line(s) moves (its trailing comment goes with it),
    and only within a suite that also holds the anchor, so no block is emptied or left."""

    node: cst.CSTNode
    anchor: cst.CSTNode
    lines_before: tuple[str, ...] = ()
    bare_call_only: bool = False
    """Move only when the statement is `node` itself (`clip(...)`, not `norm = clip(...)`)."""


@dataclass(frozen=True)
class ReplaceNode:
    """Replace the source of `node` by `text` (the rest of its line(s) unchanged)."""

    node: cst.CSTNode
    text: str


@dataclass(frozen=True)
class EnsureImport:
    """`import <module>` at the top (after the docstring and `__future__` imports) if not bound."""

    module: str = "torch"


@dataclass(frozen=True)
class CannotFix:
    """The rule knows the fix cannot be made here (it never resolves), so the finding says
    "no automatic fix" like any fix that does not resolve."""

    reason: str


@dataclass(frozen=True)
class FixSpec:
    safety: str
    description: str
    parts: tuple[InsertBefore | InsertAtBodyStart | MoveBefore | ReplaceNode | EnsureImport | CannotFix, ...]


def no_fix(safety: str, reason: str) -> FixSpec:
    """What a rule with a fix kind attaches where its fix cannot be made safely."""
    return FixSpec(safety, reason, (CannotFix(reason),))


# ----------------------------------------------------------------------------- resolved


@dataclass(frozen=True)
class Edit:
    line: int
    """0-based index of the line to insert before (len(lines): at the end)."""
    text: tuple[str, ...]
    """Whole lines, indentation included, without line endings."""


@dataclass(frozen=True)
class DeleteLines:
    start: int
    """0-based index of the first line deleted."""
    end: int
    """0-based index of the line after the last one deleted."""


@dataclass(frozen=True)
class Replace:
    """Replace the characters from (line, column) to (end_line, end_column), 0-based and end
    exclusive, by `text`."""

    line: int
    column: int
    end_line: int
    end_column: int
    text: str


AnyEdit = Edit | DeleteLines | Replace


@dataclass(frozen=True)
class Fix:
    safety: str
    description: str
    edits: tuple[AnyEdit, ...]


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split as libcst counts lines (\\r\\n, \\r, \\n)."""
    return _LINE.findall(text)


def newline_of(text: str) -> str:
    match = re.search(r"\r\n|\r|\n", text)
    return match.group(0) if match else "\n"


class _StatementMap:
    """id(node) -> the innermost simple statement (line or one-line suite) holding it, and
    id(node) -> its parent node, for the nodes under `root`. Built with gradlint's read-only
    walk: a libcst visitor rebuilds every node it leaves, which cost more than the rest of a fix."""

    def __init__(self, root: cst.CSTNode, root_parent: cst.CSTNode | None = None) -> None:
        import libcst as cst

        from gradlint.analysis.walk import children

        self.holder: dict[int, cst.CSTNode] = {}
        self.parent: dict[int, cst.CSTNode] = {}
        if root_parent is not None:
            self.parent[id(root)] = root_parent
        statement_types = (cst.SimpleStatementLine, cst.SimpleStatementSuite)
        stack: list[tuple[cst.CSTNode, cst.CSTNode | None]] = [(root, None)]
        while stack:
            node, holder = stack.pop()
            if type(node) in statement_types:
                holder = node
            if holder is not None:
                self.holder[id(node)] = holder
            for child in children(node):
                self.parent[id(child)] = node
                stack.append((child, holder))


class Resolver:
    """Resolves FixSpecs of one parsed file into edits."""

    def __init__(
        self,
        module: cst.Module,
        text: str,
        start,
        statement_index: Callable[[cst.CSTNode], int | None] | None = None,
    ) -> None:
        self.module = module
        self.lines = [line.rstrip("\r\n") for line in split_lines(text)]
        self.start = start
        """node -> (1-based line, 1-based column)."""
        self._statement_index = statement_index
        """node -> the index of the top-level statement holding it (LazyPositions.statement_index),
        when known: then only that statement is walked, not the whole module."""
        self._maps: dict[int | None, _StatementMap] = {}

    def _statements(self, node: cst.CSTNode) -> _StatementMap:
        whole = self._maps.get(None)
        if whole is not None:
            return whole
        index = self._statement_index(node) if self._statement_index is not None else None
        found = self._maps.get(index)
        if found is None:
            if index is None:
                found = _StatementMap(self.module)
            else:
                found = _StatementMap(self.module.body[index], self.module)
            self._maps[index] = found
        return found

    def holder(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self._statements(node).holder.get(id(node))

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if node is self.module:
            return None
        return self._statements(node).parent.get(id(node))

    def _statement_line(self, statement: cst.CSTNode) -> tuple[int, str] | None:
        """(0-based line, indentation) when `statement` starts its own line."""
        line, column = self.start(statement)
        if not 0 < line <= len(self.lines):
            return None
        indent = self.lines[line - 1][: column - 1]
        if indent.strip():
            return None
        return line - 1, indent

    def _own_line_statement(self, node: cst.CSTNode) -> cst.SimpleStatementLine | None:
        """The single simple statement holding `node`, when it has its line(s) to itself: not a
        one-line suite (`if x: step()`) nor `a; b`."""
        import libcst as cst

        statement = self.holder(node)
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        return statement if self._statement_line(statement) is not None else None

    def resolve(self, spec: FixSpec) -> Fix | None:
        edits: list[AnyEdit] = []
        for part in spec.parts:
            resolved = self._resolve_part(part)
            if resolved is None:
                return None
            edits.extend(resolved)
        return Fix(spec.safety, spec.description, tuple(edits)) if edits else None

    def _resolve_part(self, part) -> list[AnyEdit] | None:
        import libcst as cst

        if isinstance(part, InsertBefore):
            statement = self._own_line_statement(part.node)
            if statement is None:
                return None
            line, indent = self._statement_line(statement)  # type: ignore[misc]
            return [Edit(line, tuple(indent + text for text in part.lines))]
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
            return [Edit(where[0], tuple(where[1] + line for line in part.lines))]
        if isinstance(part, MoveBefore):
            return self._move(part)
        if isinstance(part, ReplaceNode):
            edit = self._replace(part.node, part.text)
            return None if edit is None else [edit]
        if isinstance(part, EnsureImport):
            edit = self._import(part.module)
            if edit is None:
                return None
            return [edit] if edit.text else []
        return None

    def _move(self, part: MoveBefore) -> list[AnyEdit] | None:
        import libcst as cst

        moved, anchor = self._own_line_statement(part.node), self._own_line_statement(part.anchor)
        if moved is None or anchor is None or moved is anchor:
            return None
        if part.bare_call_only and not (isinstance(moved.body[0], cst.Expr) and moved.body[0].value is part.node):
            return None
        # The moved statement's suite must also hold the anchor: the move then neither leaves a
        # block (an `if args.clip:` body would lose its condition) nor empties one.
        suite = self.parent(moved)
        node: cst.CSTNode | None = anchor
        while node is not None and node is not suite:
            node = self.parent(node)
        if node is None:
            return None
        first, old_indent = self._statement_line(moved)  # type: ignore[misc]
        end = self._end_line(moved)
        target, new_indent = self._statement_line(anchor)  # type: ignore[misc]
        if end is None or first <= target < end:
            return None
        lines = self.lines[first:end]
        if old_indent != new_indent:
            code = self.module.code_for_node(moved)
            if len(lines) > 1 and ('"""' in code or "'''" in code):
                return None  # re-indenting would change a multi-line string
            lines = [new_indent + line[len(old_indent):] if line.startswith(old_indent) else line for line in lines]
        inserted = tuple(new_indent + line for line in part.lines_before) + tuple(lines)
        return [DeleteLines(first, end), Edit(target, inserted)]

    def _replace(self, node: cst.CSTNode, text: str) -> Replace | None:
        line, column = self.start(node)
        code = self.module.code_for_node(node)
        # Positions start inside an expression's own parentheses; the range covers them.
        opening = "".join(self.module.code_for_node(paren) for paren in getattr(node, "lpar", ()))
        if "\n" in opening or "\r" in opening or len(opening) >= column:
            return None
        column -= len(opening)
        code_lines = split_lines(code) or [""]
        end_line = line - 1 + len(code_lines) - 1
        last = code_lines[-1]
        if last.endswith(("\n", "\r")):
            return None  # a node that ends with its line (a statement): not a range inside lines
        end_column = (column - 1 + len(last)) if len(code_lines) == 1 else len(last)
        if end_line >= len(self.lines):
            return None
        # The positions must point at the node's own source; anything else is not edited.
        spanned = self.lines[line - 1 : end_line + 1]
        spanned[-1] = spanned[-1][:end_column]
        spanned[0] = spanned[0][column - 1 :]
        if spanned != [part.rstrip("\r\n") for part in code_lines]:
            return None
        return Replace(line - 1, column - 1, end_line, end_column, text)

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
        import libcst as cst

        if not isinstance(statement, cst.SimpleStatementLine):
            return None
        # The statement's last line: the line of its first token plus the newlines it spans.
        line, _ = self.start(statement)
        code = self.module.code_for_node(statement.with_changes(leading_lines=()))
        return line - 1 + len(split_lines(code))


def _binds(statement: cst.CSTNode, name: str) -> bool:
    import libcst as cst

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
    import libcst as cst

    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_future(statement: cst.CSTNode) -> bool:
    import libcst as cst

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


def _line_offsets(lines: Sequence[str]) -> list[int]:
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return offsets


def _ranges(text: str, edits: Iterable[AnyEdit]) -> list[tuple[int, int, str]]:
    """The edits as (start, end, replacement) character ranges of `text`, sorted; whole-line
    insertions at one line are merged (an identical line once) and keep the text's line ending."""
    newline = newline_of(text)
    lines = split_lines(text)
    offsets = _line_offsets(lines)
    inserted: dict[int, list[str]] = {}
    ranges: set[tuple[int, int, str]] = set()
    for edit in edits:
        if isinstance(edit, Edit):
            lines_here = inserted.setdefault(min(edit.line, len(lines)), [])
            if len(edit.text) == 1:
                lines_here.extend(line for line in edit.text if line not in lines_here)
            elif not _contains(lines_here, edit.text):  # a moved statement: its lines stay together
                lines_here.extend(edit.text)
        elif isinstance(edit, DeleteLines):
            ranges.add((offsets[edit.start], offsets[edit.end], ""))
        elif isinstance(edit, Replace):
            ranges.add((offsets[edit.line] + edit.column, offsets[edit.end_line] + edit.end_column, edit.text))
    for index, added in inserted.items():
        if not added:
            continue
        block = "".join(line + newline for line in added)
        if index == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
            block = newline + block
        ranges.add((offsets[index], offsets[index], block))
    # At one offset an insertion goes before a deletion or replacement that starts there.
    return sorted(ranges, key=lambda item: (item[0], item[1] != item[0], item[1]))


def _contains(lines: Sequence[str], block: Sequence[str]) -> bool:
    return any(tuple(lines[i : i + len(block)]) == tuple(block) for i in range(len(lines) - len(block) + 1))


def _overlaps(ranges: Sequence[tuple[int, int, str]]) -> bool:
    for (start, end, _), (next_start, next_end, _) in zip(ranges, ranges[1:]):
        if next_start < end or (next_start == start and next_end == end and start != end):
            return True
    return False


def apply_edits(text: str, edits: Iterable[AnyEdit]) -> str:
    """Apply the edits (line insertions, line deletions, replacements), keeping line endings.
    Raises ValueError when two edits touch the same characters."""
    ranges = _ranges(text, edits)
    if _overlaps(ranges):
        raise ValueError("overlapping edits")
    pieces: list[str] = []
    position = 0
    for start, end, replacement in ranges:
        pieces.append(text[position:start])
        pieces.append(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def fixed_text(text: str, findings: Sequence["Finding"], unsafe: bool) -> tuple[str, list["Finding"]]:
    """The text with the wanted fixes applied, and the findings fixed; the text is unchanged
    when the result would not parse. A fix whose edits collide with an earlier finding's is
    left for the next run."""
    import libcst as cst

    chosen: list["Finding"] = []
    edits: list[AnyEdit] = []
    for finding in findings:
        if not wanted(finding, unsafe):
            continue
        candidate = edits + [edit for edit in finding.fix.edits if edit not in edits]
        if _overlaps(_ranges(text, candidate)):
            continue
        chosen.append(finding)
        edits = candidate
    if not chosen:
        return text, []
    result = apply_edits(text, edits)
    try:
        cst.parse_module(result)
        cpython_parse(result)
    except (cst.ParserSyntaxError, SyntaxError, ValueError, RecursionError, MemoryError):
        return text, []
    return result, chosen
