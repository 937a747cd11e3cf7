"""Positions are computed one top-level statement at a time; they must be exactly libcst's."""

from __future__ import annotations

from pathlib import Path

import pytest
from libcst.metadata import PositionProvider

from gradlint.analysis.model import build_model
from gradlint.analysis.walk import walk
from gradlint.source import Parsed, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

TRICKY = {
    "crlf, semicolons, one-line suites, form feed, continuation, tabs": (
        "import torch\r\nx = 1; y = 2\r\nif x: y = 3\r\n\x0c\r\ndef f(\\\r\n  a):\r\n\treturn a\r\n"
    ),
    "decorators, comments and blank lines before them": (
        "# header\n\n\n@torch.no_grad()\n# between\n@staticmethod\n\ndef evaluate(model):\n    return model\n"
    ),
    "async, match, nested classes": (
        "async def run(loader):\n    async for x in loader:\n        await x\n\n"
        "match command:\n    case [a, b]:\n        pass\n    case _:\n        pass\n\n"
        "class A:\n    class B:\n        x = (1,\n             2)\n"
    ),
    "a file without a final newline": "model = Net()\nloss.backward()",
}


def _libcst_positions(parsed: Parsed) -> dict:
    provider = PositionProvider()
    provider._gen_impl(parsed.model.module)
    return provider._computed


def _assert_same_positions(text: str) -> int:
    parsed = parse(text, build_model)
    assert isinstance(parsed, Parsed)
    expected = _libcst_positions(parsed)
    compared = 0
    for statement in parsed.model.module.body:
        for node in walk(statement):
            assert parsed.positions._get(node) == expected[node], type(node).__name__
            compared += 1
    assert not parsed.positions._whole, "every statement was placed without generating the whole module"
    return compared


@pytest.mark.parametrize("name", list(TRICKY))
def test_statement_positions_equal_libcst_on_tricky_layouts(name):
    assert _assert_same_positions(TRICKY[name]) > 5


def test_statement_positions_equal_libcst_on_every_fixture():
    compared = sum(_assert_same_positions(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.rglob("*.py")))
    assert compared > 10_000


def test_a_node_outside_the_statements_falls_back_to_the_whole_module():
    parsed = parse("# a comment in the header\nx = 1\n", build_model)
    header_line = parsed.model.module.header[0]
    assert parsed.positions.start(header_line) == (1, 1)
    assert parsed.positions._whole
