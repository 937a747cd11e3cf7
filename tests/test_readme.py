"""The README is part of the product: its rule table and commands must stay true."""

from __future__ import annotations

import re
from pathlib import Path

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
