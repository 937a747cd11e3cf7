"""Suppression comments: `# gradlint: ignore[...]`, `# noqa: GLxxx` and `# gradlint: ignore-file`.

Only real comments count (found with `tokenize`, so a `#` inside a string is never a directive).
A bare `# noqa`, or a `# noqa:` that names no GL code, belongs to other tools and is left alone.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field, replace
from typing import Collection, Iterable, Iterator, Literal

SuppressionKind = Literal["gradlint", "noqa"]

_CODE = r"[A-Za-z]+[0-9]+"
_GRADLINT = re.compile(
    r"#\s*gradlint\s*:\s*ignore(?P<file>-file)?(?![\w-])(?:\s*\[(?P<codes>[^\]]*)\])?",
    re.IGNORECASE,
)
_NOQA = re.compile(
    rf"#\s*noqa\s*:\s*(?P<codes>{_CODE}(?:(?:\s*,\s*|\s+){_CODE})*)",
    re.IGNORECASE,
)
_GL_CODE = re.compile(r"^GL[0-9]+$")
_ANY_DIRECTIVE = re.compile(r"#\s*(?:gradlint\s*:\s*ignore|noqa\s*:)", re.IGNORECASE)
"""What every directive `_GRADLINT` or `_NOQA` finds starts with: a text without it is not
tokenized (the word alone, as in `# gradlint expects: ...`, made every such file pay for it)."""


@dataclass(frozen=True)
class Suppression:
    line: int
    """1-based line of the comment."""
    column: int
    """1-based column of the directive's `#`."""
    codes: frozenset[str] | None
    """Upper-cased codes; None suppresses every code on the line."""
    kind: SuppressionKind


@dataclass
class Suppressions:
    file_ignored: bool = False
    by_line: dict[int, Suppression] = field(default_factory=dict)
    _used: dict[int, set[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def is_suppressed(self, code: str, lines: Iterable[int]) -> bool:
        """Whether a finding of `code` on any of `lines` is suppressed; records every suppression used."""
        if self.file_ignored:
            return True
        code = code.upper()
        suppressed = False
        for line in lines:
            suppression = self.by_line.get(line)
            if suppression is None:
                continue
            if suppression.codes is None or code in suppression.codes:
                self._used.setdefault(line, set()).add(code)
                suppressed = True
        return suppressed

    def unused(self, enabled: Collection[str] | None = None) -> list[Suppression]:
        """The suppressions (narrowed to their unused codes) that suppressed nothing, by line.

        A bare `# gradlint: ignore` is unused when nothing was suppressed on its line. A coded one is
        reported with the codes that suppressed nothing. With `enabled`, codes of rules that did not
        run are not reported (they could not have been used).
        """
        result = []
        for line in sorted(self.by_line):
            suppression = self.by_line[line]
            used = self._used.get(line, set())
            if suppression.codes is None:
                if not used:
                    result.append(suppression)
                continue
            unused = {
                code
                for code in suppression.codes
                if code not in used and (enabled is None or code in enabled or not _GL_CODE.match(code))
            }
            if unused:
                result.append(replace(suppression, codes=frozenset(unused)))
        return result


def _split_codes(text: str) -> frozenset[str]:
    return frozenset(code.upper() for code in re.split(r"[\s,]+", text) if code)


def _directives(comment: str, line: int, column: int, own_line: bool) -> Iterator[Suppression | str]:
    """Suppressions in one comment; the string "file" for an own-line `ignore-file`."""
    for match in _GRADLINT.finditer(comment):
        if match.group("file"):
            if own_line and match.group("codes") is None:
                yield "file"
            continue
        codes = match.group("codes")
        yield Suppression(
            line, column + match.start(), None if codes is None else _split_codes(codes), "gradlint"
        )
    for match in _NOQA.finditer(comment):
        codes = frozenset(code for code in _split_codes(match.group("codes")) if _GL_CODE.match(code))
        if codes:
            yield Suppression(line, column + match.start(), codes, "noqa")


def _comments(source: str) -> Iterator[tuple[str, int, int, bool]]:
    """(text, line, 1-based column, whether the comment is alone on its line) of each real comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type == tokenize.COMMENT:
            (line, column) = token.start
            yield token.string, line, column + 1, not token.line[:column].strip()


def _comments_by_regex(source: str) -> Iterator[tuple[str, int, int, bool]]:
    """Fallback when the file does not tokenize: the text from the first directive-looking `#` on."""
    for number, text in enumerate(source.splitlines(), start=1):
        match = re.search(r"#\s*(?:gradlint|noqa)", text, re.IGNORECASE)
        if match:
            column = match.start()
            yield text[column:], number, column + 1, not text[:column].strip()


def parse_suppressions(source: str) -> Suppressions:
    result = Suppressions()
    if not _ANY_DIRECTIVE.search(source):
        return result
    try:
        comments = list(_comments(source))
    except (tokenize.TokenError, SyntaxError):
        comments = list(_comments_by_regex(source))
    for text, line, column, own_line in comments:
        if not _ANY_DIRECTIVE.search(text):
            continue
        for directive in _directives(text, line, column, own_line):
            if directive == "file":
                result.file_ignored = True
                continue
            assert isinstance(directive, Suppression)
            existing = result.by_line.get(line)
            result.by_line[line] = directive if existing is None else _merge(existing, directive)
    return result


def _merge(first: Suppression, second: Suppression) -> Suppression:
    """Two directives in one comment (`# noqa: GL101  # gradlint: ignore[GL103]`): one suppression."""
    codes = None if first.codes is None or second.codes is None else first.codes | second.codes
    kind: SuppressionKind = "gradlint" if "gradlint" in (first.kind, second.kind) else "noqa"
    return Suppression(first.line, min(first.column, second.column), codes, kind)


__all__ = ["Suppression", "Suppressions", "parse_suppressions"]
