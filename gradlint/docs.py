"""Rule documents: `rules/GLxxx-<name>.md`, one per rule, read by `gradlint rule`, SARIF and the tests.

A document has ruff's sections (`## What it does`, `## Why is this bad?`, `## Example`,
`## Use instead`, `## Options`, `## Known limitations`, `## References`) and Fixit-style
executable examples: fenced blocks tagged ```` ```python bad ```` or ```` ```python good ````,
optionally followed by option settings for the rule as `key=value` tokens whose values are TOML
values (```` ```python bad max-norm-limit=100 ````).

Inside an example block:

- a line that must be reported ends with a comment naming the code (`optimizer.step()  # GL101`,
  several codes: `# GL108 GL111`); only the marks for the document's own code are expectations;
- lines `# file: model.py` split the block into files (text before the first such line is
  `example.py`); marked line numbers are 1-based within their file.

The `## Autofix` section shows each form of a rule's fix as a pair of blocks, ```` ```python before ````
then ```` ```python after ```` (one file each, options on the `before` fence as above): the
fix of the `before` code (with `--unsafe-fixes`) is exactly the `after` code (`fix_examples`).

The Markdown is parsed by hand, a line scanner with a few small regexes for fences, headings and
marks, so that gradlint needs no Markdown library (no new dependency). Only what the documents
use is understood: backtick or tilde fences and `## ` headings outside them.
"""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_FILE",
    "DocError",
    "DocExample",
    "FixExample",
    "doc_path",
    "examples",
    "fix_examples",
    "parse_examples",
    "parse_sections",
    "rule_markdown",
    "rules_dir",
    "section",
    "sections",
]

DEFAULT_FILE = "example.py"
"""The name of an example's first file when the block does not start with `# file: NAME`."""

KINDS = ("bad", "good")
FIX_KINDS = ("before", "after")

_CODE = re.compile(r"^GL\d{3}$")
_FENCE_OPEN = re.compile(r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_HEADING = re.compile(r"^##[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$")
_FILE_LINE = re.compile(r"^#[ \t]*file:[ \t]*(?P<name>\S+)[ \t]*$")
_MARK = re.compile(r"#[ \t]*(?P<codes>GL\d{3}(?:[ \t,]+GL\d{3})*)[ \t]*$")
_OPTION = re.compile(r"^(?P<key>[A-Za-z0-9_-]+)=(?P<value>.+)$")


class DocError(ValueError):
    """A rule document that cannot be read as a specification (bad tag, option, file split)."""


@dataclass(frozen=True)
class DocExample:
    """One executable example: a `python bad` or `python good` block of a rule document."""

    code: str
    kind: str
    """"bad" (the marked lines must be reported) or "good" (nothing of `code` may be reported)."""
    index: int
    """1-based among the document's blocks of the same kind."""
    files: dict[str, str]
    """File name -> source, in the order of the block."""
    expected: dict[str, set[int]]
    """File name -> the lines marked with `code` (every file has an entry, maybe empty)."""
    options: dict[str, object] = field(default_factory=dict)
    """This rule's options for the example (`key=value` tokens of the fence line)."""
    line: int = 0
    """Line of the opening fence in the document (for error messages; 0 when unknown)."""

    @property
    def test_id(self) -> str:
        return f"{self.code}-{self.kind}-{self.index}"

    @property
    def expected_findings(self) -> set[tuple[str, int]]:
        """Every marked (file name, line) pair."""
        return {(name, line) for name, lines in self.expected.items() for line in lines}

    @property
    def other_marks(self) -> set[tuple[str, int, str]]:
        """(file name, line, code) for the marks naming *other* codes (informative, e.g. `# GL108`)."""
        return {
            (name, number, mark)
            for name, source in self.files.items()
            for number, line in enumerate(source.splitlines(), start=1)
            for mark in _marks(line)
            if mark != self.code
        }


@dataclass(frozen=True)
class FixExample:
    """A `python before` / `python after` pair of the Autofix section of a rule document."""

    code: str
    index: int
    """1-based among the document's pairs."""
    before: str
    after: str
    options: dict[str, object] = field(default_factory=dict)
    line: int = 0
    """Line of the `before` fence in the document."""

    @property
    def test_id(self) -> str:
        return f"{self.code}-fix-{self.index}"


@dataclass(frozen=True)
class _Block:
    info: str
    lines: tuple[str, ...]
    start: int
    """1-based line of the opening fence."""


# -- locating documents ------------------------------------------------------------------------


def rules_dir() -> Path:
    """The folder of the rule documents.

    Wheels ship them inside the package (`gradlint/_ruledocs`, see pyproject's force-include);
    a source checkout keeps them at `<repo>/rules`.
    """
    packaged = importlib.resources.files("gradlint") / "_ruledocs"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[1] / "rules"


def doc_path(code: str) -> Path | None:
    """The document of `code` (`rules/GL101-missing-gradient-clipping.md`), or None."""
    key = code.strip().upper()
    if not _CODE.match(key):
        return None
    directory = rules_dir()
    if not directory.is_dir():
        return None
    matches = sorted(directory.glob(f"{key}-*.md"))
    return matches[0] if matches else None


def rule_markdown(code: str) -> str | None:
    """The whole text of the document of `code`, or None when it has none."""
    path = doc_path(code)
    return path.read_text(encoding="utf-8") if path is not None else None


# -- sections ----------------------------------------------------------------------------------


def _scan(text: str) -> tuple[list[tuple[int, str]], list[_Block]]:
    """(`## ` headings with their line index, fenced blocks) of a Markdown text."""
    headings: list[tuple[int, str]] = []
    blocks: list[_Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening:
            fence = opening.group("fence")
            closing = re.compile(rf"^{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
            body: list[str] = []
            j = i + 1
            while j < len(lines) and not closing.match(lines[j]):
                body.append(lines[j])
                j += 1
            if j == len(lines):
                raise DocError(f"line {i + 1}: code block is never closed")
            blocks.append(_Block(opening.group("info"), tuple(body), i + 1))
            i = j + 1
            continue
        heading = _HEADING.match(lines[i])
        if heading:
            headings.append((i, heading.group("title")))
        i += 1
    return headings, blocks


def parse_sections(text: str) -> list[str]:
    """The `## ` headings of a Markdown text, in order (headings inside code blocks excluded)."""
    return [title for _, title in _scan(text)[0]]


def sections(code: str) -> list[str]:
    """The `## ` headings of the document of `code`, in order ([] when it has no document)."""
    text = rule_markdown(code)
    return parse_sections(text) if text is not None else []


def section(code: str, title: str) -> str | None:
    """The text under the heading `## title` (up to the next `## ` heading), stripped."""
    text = rule_markdown(code)
    if text is None:
        return None
    lines = text.splitlines()
    headings = _scan(text)[0]
    for n, (index, heading) in enumerate(headings):
        if heading == title:
            end = headings[n + 1][0] if n + 1 < len(headings) else len(lines)
            return "\n".join(lines[index + 1 : end]).strip()
    return None


# -- examples ----------------------------------------------------------------------------------


def _parse_info(info: str, where: str) -> tuple[str, dict[str, object]] | None:
    """`python bad key=value ...` -> ("bad", options); None for a block that is not an example."""
    words = info.split()
    if not words or words[0] != "python" or len(words) == 1:
        return None
    kind, tokens = words[1], words[2:]
    if kind not in KINDS + FIX_KINDS:
        raise DocError(f"{where}: unknown example kind {kind!r} (expected 'bad', 'good', 'before' or 'after')")
    options: dict[str, object] = {}
    for token in tokens:
        match = _OPTION.match(token)
        if not match:
            raise DocError(f"{where}: option {token!r} is not written key=value")
        try:
            value = tomllib.loads(f"value = {match.group('value')}")["value"]
        except tomllib.TOMLDecodeError as exc:
            raise DocError(f"{where}: option {token!r} is not a TOML value: {exc}") from None
        if match.group("key") in options:
            raise DocError(f"{where}: option {match.group('key')!r} is given twice")
        options[match.group("key")] = value
    return kind, options


def _split_files(lines: tuple[str, ...], where: str) -> list[tuple[str, list[str]]]:
    """Cut a block at its `# file: NAME` lines into (name, lines) pairs."""
    files: list[tuple[str, list[str]]] = [(DEFAULT_FILE, [])]
    for line in lines:
        named = _FILE_LINE.match(line)
        if named:
            files.append((named.group("name"), []))
        else:
            files[-1][1].append(line)
    if not any(line.strip() for line in files[0][1]) and len(files) > 1:
        files.pop(0)  # the block starts with `# file: NAME`
    names = [name for name, _ in files]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DocError(f"{where}: file {duplicates[0]!r} appears twice")
    for _, body in files:
        while body and not body[-1].strip():
            body.pop()
    return files


def _marks(line: str) -> set[str]:
    match = _MARK.search(line)
    return set(re.findall(r"GL\d{3}", match.group("codes"))) if match else set()


def parse_examples(code: str, text: str, source: str = "<doc>") -> list[DocExample]:
    """The examples of a document text; `source` names it in `DocError` messages."""
    code = code.strip().upper()
    found: list[DocExample] = []
    counts = dict.fromkeys(KINDS, 0)
    for block in _scan(text)[1]:
        where = f"{source}:{block.start}"
        parsed = _parse_info(block.info, where)
        if parsed is None:
            continue
        kind, options = parsed
        if kind in FIX_KINDS:
            continue  # read by parse_fix_examples
        counts[kind] += 1
        files: dict[str, str] = {}
        expected: dict[str, set[int]] = {}
        for name, body in _split_files(block.lines, where):
            files[name] = "\n".join(body) + "\n"
            expected[name] = {n for n, line in enumerate(body, start=1) if code in _marks(line)}
        if kind == "good" and any(expected.values()):
            raise DocError(f"{where}: a good example marks a line with {code}")
        if kind == "bad" and not any(expected.values()):
            raise DocError(f"{where}: a bad example marks no line with # {code}")
        found.append(DocExample(code, kind, counts[kind], files, expected, options, block.start))
    return found


def examples(code: str) -> list[DocExample]:
    """Every `python bad` / `python good` example of the document of `code` ([] without one).

    Raises `DocError` when a block cannot be read as an example.
    """
    path = doc_path(code)
    if path is None:
        return []
    return parse_examples(code, path.read_text(encoding="utf-8"), source=path.name)


def parse_fix_examples(code: str, text: str, source: str = "<doc>") -> list[FixExample]:
    """The `python before` / `python after` pairs of a document text, in order."""
    code = code.strip().upper()
    found: list[FixExample] = []
    pending: tuple[_Block, dict[str, object]] | None = None
    for block in _scan(text)[1]:
        where = f"{source}:{block.start}"
        parsed = _parse_info(block.info, where)
        if parsed is None or parsed[0] not in FIX_KINDS:
            continue
        kind, options = parsed
        if kind == "before":
            if pending is not None:
                raise DocError(f"{where}: a `python before` block follows another with no `python after`")
            pending = (block, options)
            continue
        if pending is None:
            raise DocError(f"{where}: a `python after` block with no `python before` block before it")
        if options:
            raise DocError(f"{where}: options go on the `python before` block")
        before, before_options = pending
        found.append(FixExample(
            code, len(found) + 1, "\n".join(before.lines) + "\n", "\n".join(block.lines) + "\n",
            before_options, before.start,
        ))
        pending = None
    if pending is not None:
        raise DocError(f"{source}:{pending[0].start}: a `python before` block has no `python after` block")
    return found


def fix_examples(code: str) -> list[FixExample]:
    """Every before/after pair of the document of `code` ([] without one)."""
    path = doc_path(code)
    if path is None:
        return []
    return parse_fix_examples(code, path.read_text(encoding="utf-8"), source=path.name)
