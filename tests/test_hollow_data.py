"""Large data literals are not given to libcst (gradlint.source.hollow_data): memory stays bounded
on generated tables, and every position outside the literal is the one a full parse gives."""

from __future__ import annotations

import libcst as cst
from libcst.metadata import PositionProvider

from gradlint.analysis.builder import build_model
from gradlint.analysis.walk import walk
from gradlint.source import HOLLOW_MIN_CHARS, HOLLOW_MIN_LINES, Parsed, cpython_parse, hollow_data, parse

ROWS = HOLLOW_MIN_LINES + 150


def _table(name: str = "_KERNEL_CONFIGS", row: str = '    ("bsr_dense_addmm", (16, 32, torch.float16)): (64, 2, 4, 8),') -> str:
    rows = "\n".join(row for _ in range(ROWS))
    assert len(rows) > HOLLOW_MIN_CHARS
    return f"{name}: dict[Any, tuple] = {{\n    # generated: do not edit\n{rows}\n}}  # end of the table\n"


SCRIPT = (
    "import torch\nfrom typing import Any\n\n"
    + _table()
    + "\n\ndef train(model, loader, optimizer):\n"
    "    for batch in loader:\n"
    "        loss = model(batch).sum()\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
    "        optimizer.zero_grad()\n"
)


def _positions(module: cst.Module) -> dict:
    provider = PositionProvider()
    provider._gen_impl(module)
    return provider._computed


def test_a_large_table_of_constants_is_emptied_with_its_lines_kept():
    lean = hollow_data(SCRIPT, cpython_parse(SCRIPT))
    assert len(lean.splitlines()) == len(SCRIPT.splitlines())
    assert "bsr_dense_addmm" not in lean
    assert "_KERNEL_CONFIGS: dict[Any, tuple] = {\n" in lean
    assert lean.splitlines()[ROWS + 5].endswith("}  # end of the table")
    assert lean.split("def train", 1)[1] == SCRIPT.split("def train", 1)[1]
    assert isinstance(cst.parse_module(lean).body[2].body[0].value, cst.Dict)


def test_positions_outside_the_table_are_those_of_a_full_parse():
    parsed = parse(SCRIPT, build_model)
    assert isinstance(parsed, Parsed)
    full = cst.parse_module(SCRIPT)
    expected = _positions(full)
    train, full_train = parsed.model.module.body[-1], full.body[-1]
    for node, full_node in zip(walk(train), walk(full_train)):
        assert type(node) is type(full_node)
        assert parsed.positions._get(node) == expected[full_node]
    assert parsed.model.functions["train"].name == "train"


def test_a_table_holding_a_trigger_word_or_a_call_is_parsed_whole():
    with_trigger = _table(row='    ("bsr_dense_addmm", (16, 32, torch.float16)): (64, 2, "forward"),')
    with_call = _table(row='    ("bsr_dense_addmm", (16, 32, torch.float16)): dict(a=1, b=2),')
    for text in (with_trigger, with_call):
        assert hollow_data(text, cpython_parse(text)) == text


def test_a_small_table_or_one_sharing_its_line_is_left_alone():
    small = "SIZES = {\n    'a': 1,\n    'b': 2,\n}\n"
    assert hollow_data(small, cpython_parse(small)) == small
    shared = "x = 1; " + _table()
    assert hollow_data(shared, cpython_parse(shared)) == shared


def test_a_one_line_table_keeps_the_columns_after_it():
    row = ", ".join(str(number) for number in range(3000))
    text = f"TABLE = [{row}]  # generated\nloss.backward()\n"
    lean = hollow_data(text, cpython_parse(text))
    assert lean.index("]  # generated") == text.index("]  # generated")
    assert lean.count("\n") == text.count("\n") and "2999" not in lean


def test_crlf_files_keep_their_line_breaks():
    text = SCRIPT.replace("\n", "\r\n")
    lean = hollow_data(text, cpython_parse(text))
    assert lean.count("\r\n") == text.count("\r\n") and "\n" not in lean.replace("\r\n", "")
