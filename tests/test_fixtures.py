"""End to end: every fixture project yields exactly the findings its header comments promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gradlint.api import lint_paths
from gradlint.config import Config
from gradlint.findings import Severity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROJECTS = sorted(path for path in FIXTURES.iterdir() if path.is_dir() and any(path.glob("*.py")))

_EXPECTED_LINE = re.compile(r"^#\s+(GL\d{3}) line (\d+)\s*$")


def expected_findings(path: Path) -> set[tuple[str, int]]:
    """Parse the `# gradlint expects:` header of a fixture file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.startswith("# gradlint expects: nothing"):
            return set()
        if line.startswith("# gradlint expects:"):
            expected = set()
            for following in lines[index + 1 :]:
                match = _EXPECTED_LINE.match(following)
                if not match:
                    break
                expected.add((match.group(1), int(match.group(2))))
            assert expected, f"{path}: `# gradlint expects:` lists no finding"
            return expected
    raise AssertionError(f"{path} has no `# gradlint expects:` header")


def test_there_are_fixture_projects():
    assert len(PROJECTS) >= 10


def test_every_code_a_fixture_expects_is_a_registered_rule():
    from gradlint.rules import RULES_BY_CODE

    expected = {code for path in FIXTURES.rglob("*.py") for code, _ in expected_findings(path)}
    assert expected <= set(RULES_BY_CODE)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda path: path.name)
def test_fixture_project_yields_exactly_its_expected_findings(project: Path):
    report = lint_paths([project], Config(root=project), cwd=project)
    assert not report.errors and not report.skipped
    for source in sorted(project.rglob("*.py")):
        found = {(f.code, f.line) for f in report.findings if f.path == source.resolve()}
        assert found == expected_findings(source), source.name


def test_gl101_is_a_warning_next_to_a_recurrent_model_and_info_without_one():
    rnn = lint_paths([FIXTURES / "char_rnn_no_clip"], Config(root=FIXTURES))
    cnn = lint_paths([FIXTURES / "cnn_classifier"], Config(root=FIXTURES))
    assert [f.severity for f in rnn.findings if f.code == "GL101"] == [Severity.WARNING]
    assert "nn.RNN" in rnn.findings[0].message
    assert [f.severity for f in cnn.findings if f.code == "GL101"] == [Severity.INFO]


def test_whole_fixture_tree_checks_every_file_once():
    report = lint_paths([FIXTURES], Config(root=FIXTURES))
    # Notebooks are walked too; their findings are asserted in tests/test_notebooks.py.
    notebooks = list(FIXTURES.rglob("*.ipynb"))
    assert report.files_checked == len(list(FIXTURES.rglob("*.py"))) + len(notebooks)
    expected = sum(len(expected_findings(path)) for path in FIXTURES.rglob("*.py"))
    assert len([f for f in report.findings if f.path.suffix == ".py"]) == expected
