"""Helpers for the rule specification tests: lint a snippet, find the line of a piece of text."""

from __future__ import annotations

import textwrap

from gradlint.api import lint_sources


CLIP_AFTER_STEP = (
    "import torch\n\n"
    "def train(model, optimizer, loss):\n"
    "    loss.backward()\n"
    "    optimizer.step()\n"
    "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
)
"""A script whose only finding is GL102 (line 6, column 5): the clip runs after the step."""


def dedent(text: str) -> str:
    return textwrap.dedent(text)


def lint(code: str, *codes: str, extra: dict[str, str] | None = None, **kwargs):
    """Lint `code` as train.py (plus `extra` files) with only `codes` enabled."""
    files = {"train.py": code, **(extra or {})}
    return lint_sources(files, select=set(codes), **kwargs)


def lines(findings, code: str, path: str = "train.py") -> list[int]:
    return sorted(f.line for f in findings if f.code == code and f.display_path == path)


def only(findings, code: str):
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, [(f.code, f.line, f.message) for f in findings]
    return found[0]


def at(code: str, needle: str, occurrence: int = 0) -> int:
    """The 1-based line holding `needle`; it must be unique unless `occurrence` picks one."""
    hits = [number for number, text in enumerate(code.splitlines(), 1) if needle in text]
    if occurrence:
        assert len(hits) >= occurrence, f"{needle!r} occurs {len(hits)} times"
        return hits[occurrence - 1]
    assert len(hits) == 1, f"{needle!r} occurs on lines {hits}"
    return hits[0]
