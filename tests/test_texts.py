"""Texts read from disk are let go and read again on demand (gradlint.texts), and summaries are
compacted once built (gradlint.index.compact): neither changes what a run sees."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gradlint.engine import FileChecker
from gradlint.index import ProjectIndex
from gradlint.index.compact import EMPTY_MAPPING
from gradlint.source import SourceFile, cpython_parse
from gradlint.texts import held, holding

MODEL = "import torch.nn as nn\n\nclass Net(nn.Module):\n    def __init__(self, hidden=512):\n        self.rnn = nn.LSTM(hidden, hidden)\n"


def load(path: Path) -> SourceFile:
    return FileChecker(["GL101"], {}).load(path, path.name)


def test_a_text_read_from_disk_is_let_go_and_read_again(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    source = load(path)
    assert held(source) is None
    assert source.text == MODEL
    assert held(source) is None  # read again, not kept
    with holding(source):
        assert held(source) == MODEL
    assert held(source) is None


def test_its_digest_is_the_text_dependency_value(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    project = ProjectIndex([load(path)], [tmp_path])
    expected = hashlib.blake2b(MODEL.encode(), digest_size=16).hexdigest()
    assert project.dependency_value(("text", str(path))) == expected
    assert project.dependency_value(("file", str(path))) == expected


def test_a_file_changed_during_the_run_reads_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(MODEL)
    source = load(path)
    project = ProjectIndex([source], [tmp_path])
    summary = project.summary(path)
    assert summary is not None and summary.text == MODEL
    default = summary.function("Net.__init__").params[1].default
    path.write_text(MODEL.replace("512", "999"))
    from gradlint.texts import _recent

    _recent.clear()
    assert source.text is None
    assert summary.text == ""
    assert summary.expression(default) is None  # never the new text's `999`
    # The run's own reading of it stays what it was.
    assert project.dependency_value(("text", str(path))) == hashlib.blake2b(MODEL.encode(), digest_size=16).hexdigest()


def test_texts_that_did_not_come_from_disk_stay(tmp_path: Path) -> None:
    buffer = FileChecker(["GL101"], {}).load_text(MODEL, tmp_path / "model.py", "model.py")
    assert held(buffer) == MODEL
    project = ProjectIndex([buffer], [tmp_path])
    summary = project.summary(tmp_path / "model.py")
    assert summary is not None and summary.text == MODEL and held(summary) == MODEL
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text('{"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1\\n"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    source = load(notebook)
    assert held(source) == "x = 1\n"


def test_a_compacted_summary_holds_the_same_values() -> None:
    from gradlint.index import summary as module

    text = (
        "import torch\nfrom torch import nn\n\n"
        "def f(a, b=1000, *args, c: int = 300, **kw):\n"
        "    for i in range(a):\n        x = torch.cat([a, b])\n    if a:\n        y, z = g(a)\n"
        "    else:\n        return torch.zeros(1000)\n    return x\n\n"
        "class C(nn.Module):\n    n = 500\n    def __init__(self):\n        self.fc = nn.Linear(300, 300)\n"
    )
    compacted = module.summarize(cpython_parse(text), text)
    original = module.compact
    module.compact = lambda summary: None
    try:
        plain = module.summarize(cpython_parse(text), text)
    finally:
        module.compact = original
    assert [(c.span, c.callee, c.qualified, c.guards) for c in compacted.calls] == [
        (c.span, c.callee, c.qualified, c.guards) for c in plain.calls
    ]
    for mine, theirs in zip(compacted.all_functions, plain.all_functions):
        assert (mine.qualname, mine.key, mine.span, mine.line) == (theirs.qualname, theirs.key, theirs.span, theirs.line)
        assert [(p.name, p.default, p.kind, p.line, p.annotation) for p in mine.params] == [
            (p.name, p.default, p.kind, p.line, p.annotation) for p in theirs.params
        ]
        assert dict(mine.bindings) == theirs.bindings and dict(mine.unpacked) == theirs.unpacked
        assert set(mine.assigned) == theirs.assigned and set(mine.loop_names) == theirs.loop_names
        assert list(mine.single_targets) == theirs.single_targets
        assert list(mine.returns) == theirs.returns
        assert list(mine.facts.returns) == theirs.facts.returns and list(mine.facts.clips) == theirs.facts.clips
    assert compacted.classes["C"].class_values == plain.classes["C"].class_values
    assert compacted.classes["C"].attribute_values == plain.classes["C"].attribute_values
    assert compacted.constants == plain.constants and compacted.imports == plain.imports
    assert compacted.function("f").local_functions is EMPTY_MAPPING
    # Large ints are one object each, whichever span holds them.
    from gradlint.index.compact import number

    assert number(int("70000")) is number(int("70000")) and number(int("70000")) == 70000
