"""The README is part of the product: its rule table and commands must stay true."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradlint.rules import ALL_RULES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.DOTALL)


def test_quick_start_has_exactly_two_commands_one_runs_fixtures_one_runs_tests():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert "gradlint check fixtures/" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_after_pinning_torch():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    test_command = _quick_start_commands()[1]
    assert test_command in ci
    assert ci.index("torch==2.13.0") < ci.index(test_command)


def test_rule_table_matches_the_registry():
    rows = re.findall(r"^\| (GL\d{3}) \| ([a-z0-9-]+) \| (\w+) \| (.+?) \|$", README, flags=re.MULTILINE)
    assert [(code, name, severity, summary) for code, name, severity, summary in rows] == [
        (rule.code, rule.name, rule.severity.label, rule.summary) for rule in ALL_RULES
    ]


# ---------------------------------------------------------------- the workflow section

_SECTION = README.split("## In pre-commit and CI", 1)[1].split("\n## ", 1)[0]
_EXIT = re.compile(r"^(gradlint [^#]+?)\s+# exit (\d)\b", re.MULTILINE)


def test_workflow_section_shows_precommit_ci_baseline_and_fix():
    for needle in ("id: gradlint", "id: gradlint-fix", "upload-sarif", "--format github",
                   "baseline create", "--baseline", "--changed-since", "--diff", "--fix", "--unsafe-fixes"):
        assert needle in _SECTION, needle


def test_readme_workflow_runs_the_same_commands_as_the_documented_one():
    yaml = pytest.importorskip("yaml")
    blocks = re.findall(r"```yaml\n(.*?)```", _SECTION, flags=re.DOTALL)
    workflows = [yaml.safe_load(block) for block in blocks if "jobs:" in block]
    documented = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "github-actions.md").read_text(), flags=re.DOTALL)

    def runs(workflow):
        (job,) = workflow["jobs"].values()
        return [step.get("run") or step.get("uses") for step in job["steps"]]

    assert len(workflows) == 1
    assert runs(workflows[0]) == runs(yaml.safe_load(documented[0]))


def test_the_section_commands_work_as_shown_for_a_new_user(tmp_path):
    """Run every `gradlint ...  # exit N` line of the section, in order, in a fresh git
    repository holding the fixtures, as a new user would paste them."""
    commands = _EXIT.findall(_SECTION)
    assert len(commands) >= 6
    shutil.copytree(REPO / "fixtures", tmp_path / "fixtures")
    git = ["git", "-c", "user.email=dev@example.com", "-c", "user.name=dev"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "fixtures"], cwd=tmp_path, check=True)
    for command, expected in commands:
        argv = [sys.executable, "-m", "gradlint", *shlex.split(command)[1:]]
        result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == int(expected), f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr
