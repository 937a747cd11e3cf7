"""Code actions: each finding's fix as a quick fix, every safe fix of a file at once
(`source.fixAll.gradlint`), and "Suppress GLxxx on this line".

Fixes are gradlint's own (`gradlint.fix.fixed_text`, as `gradlint check --fix` applies them: the
result must parse, colliding fixes wait for the next run); the editor receives the changed lines
as text edits, so the rest of the document, and the cursor, stay where they are.
"""

from __future__ import annotations

import difflib
import io
import re
import tokenize
from typing import Sequence

from lsprotocol import types

from gradlint.findings import Finding
from gradlint.fix import SAFE, fixed_text, split_lines
from gradlint.server.convert import units
from gradlint.suppress import parse_suppressions

FIX_ALL = f"{types.CodeActionKind.SourceFixAll.value}.gradlint"
"""The kind of the fix-all action: `source.fixAll.gradlint` (editors run `source.fixAll` on save)."""
KINDS = [types.CodeActionKind.QuickFix, FIX_ALL]

NO_SUPPRESSION = frozenset({"GL000", "GL001"})
"""A syntax error is fixed, not suppressed; an unused suppression is removed, not suppressed."""

_GRADLINT_CODES = re.compile(r"#\s*gradlint\s*:\s*ignore\s*\[(?P<codes>[^\]]*)\]", re.IGNORECASE)


def wanted_kind(kind: str, only: Sequence[str] | None) -> bool:
    """Whether an action of `kind` answers a request for `only` (`source.fixAll` asks for
    `source.fixAll.gradlint`; `source` for every source action)."""
    if not only:
        return True
    return any(kind == asked or kind.startswith(f"{asked}.") for asked in only)


def text_edits(before: str, after: str, encoding: str) -> list[types.TextEdit]:
    """The changed lines of `after` as edits of `before`, whole lines each (line endings kept)."""
    old, new = split_lines(before), split_lines(after)
    edits = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        where = types.Range(start=_start_of(old, i1, encoding), end=_start_of(old, i2, encoding))
        edits.append(types.TextEdit(range=where, new_text="".join(new[j1:j2])))
    return edits


def _start_of(lines: list[str], index: int, encoding: str) -> types.Position:
    """The position of the start of line `index`; past a last line without an ending, its end."""
    if index < len(lines) or not lines or lines[-1].endswith(("\n", "\r")):
        return types.Position(line=index, character=0)
    last = lines[-1]
    return types.Position(line=len(lines) - 1, character=units(last, encoding))


def workspace_edit(
    uri: str, version: int | None, edits: list[types.TextEdit], document_changes: bool
) -> types.WorkspaceEdit:
    """A versioned document edit where the client takes those, else a plain `changes` map."""
    if document_changes:
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=identifier, edits=edits)])
    return types.WorkspaceEdit(changes={uri: edits})


def fix_action(
    finding: Finding,
    diagnostic: types.Diagnostic,
    text: str,
    uri: str,
    version: int | None,
    encoding: str,
    document_changes: bool,
) -> types.CodeAction | None:
    """The finding's fix as a quick fix; unsafe fixes say so and are never preferred."""
    fix = finding.fix
    if fix is None:
        return None
    after, fixed = fixed_text(text, [finding], unsafe=True)
    if not fixed or after == text:
        return None
    safe = fix.safety == SAFE
    title = f"Fix {finding.code}: {fix.description}" + ("" if safe else " (unsafe)")
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=safe,
        edit=workspace_edit(uri, version, text_edits(text, after, encoding), document_changes),
    )


def fix_all_action(
    findings: Sequence[Finding], text: str, uri: str, version: int | None, encoding: str, document_changes: bool
) -> types.CodeAction | None:
    """Every safe fix of the file, as `gradlint check --fix` applies them; None when there is none."""
    after, fixed = fixed_text(text, list(findings), unsafe=False)
    if not fixed or after == text:
        return None
    count = f"{len(fixed)} finding" + ("s" if len(fixed) != 1 else "")
    return types.CodeAction(
        title=f"Fix all safe gradlint findings in this file ({count})",
        kind=FIX_ALL,
        edit=workspace_edit(uri, version, text_edits(text, after, encoding), document_changes),
    )


def suppress_action(
    code: str,
    lines: Sequence[int],
    text: str,
    uri: str,
    version: int | None,
    diagnostic: types.Diagnostic,
    encoding: str,
    document_changes: bool,
) -> types.CodeAction | None:
    """ "Suppress GLxxx on this line": add `# gradlint: ignore[GLxxx]` to the first of `lines`
    (0-based, in this document) where a comment can go, or add the code to the gradlint ignore
    comment already there."""
    if code in NO_SUPPRESSION:
        return None
    for line in dict.fromkeys(lines):
        edit = suppress_edit(text, line, code, encoding)
        if edit is not None:
            return types.CodeAction(
                title=f"Suppress {code} on this line",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                edit=workspace_edit(uri, version, [edit], document_changes),
            )
    return None


def suppress_edit(text: str, line: int, code: str, encoding: str) -> types.TextEdit | None:
    """The edit that suppresses `code` on `line` (0-based); None where no comment can go (the
    line ends inside a string or continues with a backslash) or it would not suppress."""
    all_lines = split_lines(text)
    if not 0 <= line < len(all_lines):
        return None
    content = all_lines[line].rstrip("\r\n")
    if content.rstrip().endswith("\\") or _ends_inside_string(text, line + 1):
        return None
    existing = parse_suppressions(text).by_line.get(line + 1)
    match = _GRADLINT_CODES.search(content, existing.column - 1) if existing is not None else None
    if match is not None:
        codes = match.group("codes")
        addition = f", {code}" if codes.strip() else code
        at = match.end("codes") - (len(codes) - len(codes.rstrip()))
        start = end = types.Position(line=line, character=units(content[:at], encoding))
        new_text = addition
        after = content[:at] + addition + content[at:]
    else:
        kept = content.rstrip()
        start = types.Position(line=line, character=units(kept, encoding))
        end = types.Position(line=line, character=units(content, encoding))
        new_text = f"  # gradlint: ignore[{code}]"
        after = kept + new_text
    edited = "".join(all_lines[:line]) + after + all_lines[line][len(content):] + "".join(all_lines[line + 1 :])
    if not parse_suppressions(edited).is_suppressed(code, {line + 1}):
        return None
    return types.TextEdit(range=types.Range(start=start, end=end), new_text=new_text)


def _ends_inside_string(text: str, line: int) -> bool:
    """Whether the end of 1-based `line` is inside a string token (a triple-quoted string that
    goes on), where a `#` would be text, not a comment. A file that does not tokenize: False."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.start[0] > line:
                break
            if token.type == tokenize.STRING and token.start[0] <= line < token.end[0]:
                return True
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    return False
