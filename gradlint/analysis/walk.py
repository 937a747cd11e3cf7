"""A read-only walk over libcst nodes.

libcst's visitors (and `matchers.findall`, built on them) rebuild every node they leave,
which costs more than parsing the file, and importing `libcst.matchers` alone takes about
180 ms. gradlint only reads the tree, so it walks the dataclass fields directly.
"""

from __future__ import annotations

from typing import Iterator

import libcst as cst

_NO_NODES_INSIDE = frozenset(
    {
        "whitespace", "whitespace_before", "whitespace_after", "whitespace_before_params",
        "whitespace_after_star", "whitespace_after_arg", "whitespace_before_colon",
        "whitespace_after_colon", "whitespace_before_indicator", "whitespace_after_indicator",
        "whitespace_before_as", "whitespace_after_as", "whitespace_before_in", "whitespace_after_in",
        "whitespace_before_if", "whitespace_after_if", "whitespace_before_else", "whitespace_after_else",
        "whitespace_after_await", "whitespace_before_from", "whitespace_after_from",
        "whitespace_after_walrus", "whitespace_before_walrus",
        "lpar", "rpar", "comma", "operator", "dot", "lbracket", "rbracket", "lbrace", "rbrace",
        "equal", "colon", "star", "semicolon", "value_quote", "prefix", "start", "end",
    }
)
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(node_type: type) -> tuple[str, ...]:
    """The fields of a libcst node type that can hold nodes (tokens and whitespace skipped), cached."""
    fields = _CHILD_FIELDS.get(node_type)
    if fields is None:
        fields = tuple(
            name for name in node_type.__dataclass_fields__ if name not in _NO_NODES_INSIDE
        )
        _CHILD_FIELDS[node_type] = fields
    return fields




_IS_NODE_TYPE: dict[type, bool] = {}


def is_node_type(node_type: type) -> bool:
    """`issubclass(node_type, cst.CSTNode)`, cached: libcst's node classes are ABCs, and an
    `isinstance` against an ABC takes Python's slow path (several times a plain one)."""
    known = _IS_NODE_TYPE.get(node_type)
    if known is None:
        known = _IS_NODE_TYPE[node_type] = issubclass(node_type, cst.CSTNode)
    return known


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes of `node` that can hold expressions (whitespace and tokens skipped)."""
    result: list[cst.CSTNode] = []
    for name in child_fields(type(node)):
        value = getattr(node, name)
        value_type = type(value)
        if value_type is tuple or value_type is list:
            result.extend(item for item in value if is_node_type(type(item)))
        elif is_node_type(value_type):
            result.append(value)
    return result


def walk(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """`node` and every node below it, depth first, in source order."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))
