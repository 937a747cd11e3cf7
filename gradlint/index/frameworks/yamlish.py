"""A small YAML reader for training configs (LightningCLI `--config` files, Hydra `conf/` trees).

gradlint does not depend on PyYAML at run time (it is a test dependency only), and it needs only
a few keys of a config (`trainer.gradient_clip_val`, `model.class_path`, Hydra's `defaults` and
`_target_`), so this module reads the subset of YAML such configs are written in:

- block mappings and block sequences, nested by indentation (`- key: value` items too);
- plain, single- and double-quoted scalars: `null`/`~`, booleans (`true`, `false`, and YAML 1.1's
  `yes`/`no`/`on`/`off`, as PyYAML reads them), integers, floats (`1.0`, `1e-3`, `.inf`), strings;
- flow sequences and mappings (`[a, b]`, `{lr: 0.1}`), nested;
- comments, a leading `%YAML`/`---`, and a final `...`;
- block scalars (`|`, `>`) are read as text (their content is never needed).

What it does not read makes the value *unknown* (`UNKNOWN`), never a guess: anchors and aliases
(`&base`, `*base`, `<<:`), tags (`!!python/...`), several documents in one file, and anything it
cannot parse. A file whose structure it cannot follow gives None. The tests compare it with
PyYAML on the configs it claims to read.
"""

from __future__ import annotations

import re
from typing import Any

UNKNOWN = type("Unknown", (), {"__repr__": lambda self: "UNKNOWN"})()
"""A value the reader does not interpret (an alias, a tagged node)."""


class YamlMap(dict):
    """A mapping that remembers the line of each key (1-based)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}


class _Unsupported(Exception):
    pass


_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_HEX = re.compile(r"^0x[0-9a-fA-F_]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")
_BOOLS = {
    "true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False,
    "yes": True, "Yes": True, "YES": True, "no": False, "No": False, "NO": False,
    "on": True, "On": True, "ON": True, "off": False, "Off": False, "OFF": False,
}
_NULLS = {"", "~", "null", "Null", "NULL"}


def load(text: str) -> Any:
    """The document's value, or None when the text is not YAML this reader follows."""
    try:
        lines = _lines(text)
        if not lines:
            return None
        value, index = _block(lines, 0, lines[0][0])
        if index != len(lines):
            return None
        return value
    except (_Unsupported, IndexError, ValueError, RecursionError):
        return None


# ----------------------------------------------------------------------------- lines


def _lines(text: str) -> list[tuple[int, str, int]]:
    """(indent, content without comment, line number) of each meaningful line."""
    found: list[tuple[int, str, int]] = []
    raw_lines = text.splitlines()
    number = 0
    block_indent: int | None = None
    started = False
    while number < len(raw_lines):
        raw = raw_lines[number]
        number += 1
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise _Unsupported("tab indentation")
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip(" "))
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue  # the content of a block scalar
            block_indent = None
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("%"):
            if started:
                raise _Unsupported("directive")
            continue
        if stripped == "---" or stripped.startswith("--- "):
            if started:
                raise _Unsupported("several documents")
            rest = stripped[3:].strip()
            if rest and not rest.startswith("#"):
                raise _Unsupported("content after ---")
            continue
        if stripped == "...":
            break
        content = _strip_comment(raw[indent:])
        started = True
        found.append((indent, content, number))
        if re.search(r"(^|[:\-]\s)[|>][-+0-9]*$", content) or content in ("|", ">"):
            block_indent = indent
    return found


def _strip_comment(text: str) -> str:
    quote: str | None = None
    for position, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
            continue
        if char in "'\"" and (position == 0 or text[position - 1] in " \t[{,:-"):
            quote = char
        elif char == "#" and (position == 0 or text[position - 1] in " \t"):
            return text[:position].rstrip()
    return text.rstrip()


# ---------------------------------------------------------------------------- blocks


def _block(lines: list[tuple[int, str, int]], index: int, indent: int) -> tuple[Any, int]:
    content = lines[index][1]
    if content == "-" or content.startswith("- "):
        return _sequence(lines, index, indent)
    if _split_key(content) is not None:
        return _mapping(lines, index, indent)
    if index + 1 < len(lines) and lines[index + 1][0] >= indent:
        raise _Unsupported("multi-line scalar")
    return _inline(content), index + 1


def _mapping(lines, index: int, indent: int) -> tuple[YamlMap, int]:
    result = YamlMap()
    while index < len(lines) and lines[index][0] == indent:
        line_indent, content, number = lines[index]
        split = _split_key(content)
        if split is None:
            raise _Unsupported(f"not a key: {content!r}")
        key, rest = split
        if key == "<<":
            raise _Unsupported("merge key")
        index += 1
        if rest == "" or (rest.startswith(("&", "!")) and " " not in rest):
            # An anchor names the node without changing it; a tag may change it (unknown).
            value_unknown = rest.startswith("!")
            if index < len(lines) and (
                lines[index][0] > indent or (lines[index][0] == indent and _is_item(lines[index][1]))
            ):
                value, index = _block(lines, index, lines[index][0])
            else:
                value = None
            if value_unknown:
                value = UNKNOWN
        else:
            value = _inline(rest)
        result[key] = value
        result.lines[key] = number
    if index < len(lines) and lines[index][0] > indent:
        raise _Unsupported("bad indentation")
    return result, index


def _sequence(lines, index: int, indent: int) -> tuple[list, int]:
    result: list = []
    while index < len(lines) and lines[index][0] == indent and _is_item(lines[index][1]):
        _, content, number = lines[index]
        rest = content[1:].lstrip(" ")
        if not rest:
            index += 1
            if index < len(lines) and lines[index][0] > indent:
                value, index = _block(lines, index, lines[index][0])
            else:
                value = None
            result.append(value)
            continue
        inner = indent + (len(content) - len(rest))
        # `- key: value` starts a mapping whose later keys are indented like `key`.
        lines[index] = (inner, rest, number)
        value, index = _block(lines, index, inner)
        result.append(value)
    return result, index


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _split_key(content: str) -> tuple[str, str] | None:
    """(key, rest) of `key: rest`, None when the line is no mapping entry."""
    if content.startswith(("[", "{", "- ", "|", ">")) or content == "-":
        return None
    if content[:1] in "'\"":
        quote = content[0]
        end = content.find(quote, 1)
        if end == -1 or content[end + 1 : end + 2] != ":" or content[end + 2 : end + 3] not in ("", " "):
            return None
        return content[1:end], content[end + 2 :].strip()
    match = re.match(r"^([^:#]+?|[^\s:][^:]*?)\s*:(\s+|$)(.*)$", content)
    if match is None:
        return None
    key = match.group(1).strip()
    if key.startswith(("&", "*", "!", "?")):
        raise _Unsupported("anchor, alias or tag on a key")
    return key, match.group(3).strip()


# --------------------------------------------------------------------------- scalars


def _inline(text: str) -> Any:
    if text.startswith(("[", "{")):
        value, position = _flow(text, 0)
        if text[position:].strip():
            raise _Unsupported("text after a flow collection")
        return value
    if text.startswith(("|", ">")):
        return "..."
    return _scalar(text)


def _scalar(text: str) -> Any:
    if text.startswith(("&", "*", "!")):
        return UNKNOWN
    if text[:1] in "'\"":
        quote = text[0]
        if len(text) < 2 or text[-1] != quote:
            raise _Unsupported("unterminated quote")
        body = text[1:-1]
        return body.replace("''", "'") if quote == "'" else _unescape(body)
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _HEX.match(text):
        return int(text.replace("_", ""), 16)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    if _FLOAT.match(text) and any(c.isdigit() for c in text):
        return float(text.replace("_", ""))
    if text.startswith(("@", "`")) or ": " in text or " #" in text:
        raise _Unsupported("reserved or ambiguous plain scalar")
    return text


def _unescape(body: str) -> str:
    simple = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/", "0": "\0", " ": " ", "r": "\r"}
    out, position = [], 0
    while position < len(body):
        char = body[position]
        if char == "\\" and position + 1 < len(body):
            nxt = body[position + 1]
            if nxt in simple:
                out.append(simple[nxt])
                position += 2
                continue
            raise _Unsupported("escape")
        out.append(char)
        position += 1
    return "".join(out)


def _flow(text: str, position: int) -> tuple[Any, int]:
    """A flow collection starting at `text[position]` (`[` or `{`); the position after it."""
    opening = text[position]
    closing = "]" if opening == "[" else "}"
    items: list = []
    mapping = YamlMap()
    position += 1
    while True:
        position = _skip_spaces(text, position)
        if text[position] == closing:
            return (items if opening == "[" else mapping), position + 1
        if text[position] in "[{":
            value, position = _flow(text, position)
            key_text = None
        else:
            start = position
            quote = text[position] if text[position] in "'\"" else None
            if quote:
                end = text.find(quote, position + 1)
                if end == -1:
                    raise _Unsupported("unterminated quote")
                position = end + 1
            while position < len(text) and text[position] not in ",]}" and not (
                opening == "{" and text[position] == ":" and text[position + 1 : position + 2] in (" ", ",", "}")
            ):
                position += 1
            key_text = text[start:position].strip()
            value = _scalar(key_text) if key_text else None
        position = _skip_spaces(text, position)
        if opening == "{":
            if text[position] == ":":
                position = _skip_spaces(text, position + 1)
                if text[position] in "[{":
                    inner, position = _flow(text, position)
                else:
                    start = position
                    while position < len(text) and text[position] not in ",}":
                        position += 1
                    raw = text[start:position].strip()
                    inner = _scalar(raw) if raw else None
                key = value if isinstance(value, str) else key_text
                mapping[str(key)] = inner
            else:
                mapping[str(value)] = None
        else:
            items.append(value)
        position = _skip_spaces(text, position)
        if text[position] == ",":
            position += 1
        elif text[position] != closing:
            raise _Unsupported("flow collection")


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text):
        raise _Unsupported("unterminated flow collection")
    return position
