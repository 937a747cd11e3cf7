"""Which files hold a word (index/words.py, WordIndex.files_with_word) answers what splitting every file into
identifiers answers, from a few bytes per word of the run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradlint.engine import FileChecker
from gradlint.index import ProjectIndex

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

FILES = {
    "train.py": "parser.add_argument('--lr', type=float)\nlr_scheduler = None\n3lr = 1\n",
    "config.py": "LR = 0.1  # not lr\nlearning_rate = lr_value\n",
    "unicode.py": "café_lr = 1\nécole = 'dim'\nx2dim = dimension\n",
    "digits.py": "value = 1e5lr\n_3lr = 2\n",
    "empty.py": "",
}
WORDS = ["lr", "LR", "dim", "dimension", "add_argument", "caf", "_lr", "cole", "value", "e5lr", "_3lr", "x2dim",
         "lr_scheduler", "learning_rate", "absent", "_"]


@pytest.fixture()
def project(tmp_path: Path) -> ProjectIndex:
    checker = FileChecker([])
    sources = []
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        sources.append(checker.load(tmp_path / name, name))
    return ProjectIndex(sources, roots=[tmp_path])


@pytest.mark.parametrize("word", WORDS)
def test_a_word_is_found_where_splitting_into_identifiers_finds_it(project, word):
    expected = {path for path, source in project.sources.items() if word in set(WORD.findall(source.text or ""))}
    assert project.words.files_with_word(word) == expected


def test_a_needle_matches_only_files_where_its_words_are_whole(project):
    found = {path.name for path in project._matching(("--lr",), ())}
    assert found == {"train.py"}
    assert {path.name for path in project._matching((), ("dim", "LR"))} == {"unicode.py", "config.py"}
