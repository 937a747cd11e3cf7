"""The registry knows each rule without importing it: its entries must say what the classes say,
and a run imports a rule only for a file that holds one of the rule's trigger words."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from gradlint.engine import FileChecker
from gradlint.rules import ALL_RULES, ENTRIES_BY_CODE, REGISTRY, RULES_BY_CODE, get_rule, load_rule
from gradlint.rules.base import Rule

RULES_DIR = Path(__file__).resolve().parents[1] / "gradlint" / "rules"


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda entry: entry.code)
def test_each_entry_says_what_its_rule_class_declares(entry):
    rule = load_rule(entry.code)
    assert issubclass(rule, Rule)
    assert (rule.code, rule.name, tuple(rule.triggers)) == (entry.code, entry.name, entry.triggers), (
        f"update {entry.code}'s entry in gradlint/rules/__init__.py (REGISTRY) to match the class"
    )
    assert rule.__module__ == f"gradlint.rules.{entry.module}"


def test_every_rule_class_in_the_package_is_registered():
    declared = set()
    for path in sorted(RULES_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(getattr(base, "id", "") == "Rule" for base in node.bases):
                declared.add((path.stem, node.name))
    assert declared == {(entry.module, entry.attribute) for entry in REGISTRY}


def test_the_lazy_views_give_the_classes_in_registry_order():
    assert [rule.code for rule in ALL_RULES] == [entry.code for entry in REGISTRY] == list(RULES_BY_CODE)
    assert len(ALL_RULES) == len(RULES_BY_CODE) == len(REGISTRY)
    assert ALL_RULES[2] is RULES_BY_CODE[REGISTRY[2].code]
    assert [rule.code for rule in ALL_RULES[:2]] == ["GL000", "GL001"]
    assert "GL101" in RULES_BY_CODE and "GL999" not in RULES_BY_CODE
    assert get_rule("missing-gradient-clipping") is get_rule("gl101") is RULES_BY_CODE["GL101"]
    assert get_rule("no-such-rule") is None


def test_a_checker_given_codes_matches_one_given_classes():
    by_code = FileChecker(sorted(ENTRIES_BY_CODE), {"GL204": {"min-depth": 9}})
    by_class = FileChecker(list(ALL_RULES), {"GL204": {"min-depth": 9}})
    assert by_code.triggers == by_class.triggers
    assert by_code.options == by_class.options
    assert by_code.options["GL204"]["min-depth"] == 9
    assert [rule.code for rule in by_code.rules] == [rule.code for rule in by_class.rules]


def _modules_imported_by_a_run(tmp_path: Path, text: str, *options: str) -> list[str]:
    (tmp_path / "script.py").write_text(text, encoding="utf-8")
    program = (
        "import sys\n"
        "from gradlint.cli import main\n"
        "try:\n"
        f"    main(['check', '-q', '--exit-zero', *{list(options)!r}, 'script.py'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, check=True)
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def _rules_imported_by_a_run(tmp_path: Path, text: str) -> list[str]:
    return sorted(
        name.rsplit(".", 1)[-1]
        for name in _modules_imported_by_a_run(tmp_path, text, "--no-cache")
        if name.startswith("gradlint.rules.") and name.rsplit(".", 1)[-1] not in ("base", "_helpers")
    )


@pytest.mark.parametrize("cache", [["--no-cache"], []], ids=["no-cache", "cache"])
def test_a_file_without_trigger_words_never_imports_libcst(tmp_path, cache):
    imported = _modules_imported_by_a_run(tmp_path, "import os\n\nprint(os.getcwd())\n", *cache)
    assert "gradlint.engine" in imported  # the run did check the file
    assert not [name for name in imported if name == "libcst" or name.startswith("libcst.")]


def test_a_training_script_does_import_libcst(tmp_path):
    imported = _modules_imported_by_a_run(tmp_path, "import torch\n\nloss.backward()\noptimizer.step()\n", "--no-cache")
    assert "libcst" in imported


def test_a_file_without_trigger_words_imports_no_rule(tmp_path):
    assert _rules_imported_by_a_run(tmp_path, "import os\n\nprint(os.getcwd())\n") == []


def test_a_file_imports_only_the_rules_its_words_trigger(tmp_path):
    imported = _rules_imported_by_a_run(tmp_path, "import torch\n\nlayer = torch.nn.RNN(8, 8)\n")
    assert imported == sorted(entry.module for entry in REGISTRY if any(t in "torch.nn.RNN" for t in entry.triggers))
    assert "deep_vanilla_rnn" in imported and "missing_gradient_clipping" not in imported


def test_a_warm_run_reuses_findings_without_importing_libcst(tmp_path):
    # A clip after step: GL102 comes with a fix, so the cached finding holds edits to unpickle.
    script = (
        "import torch\n\n"
        "def train(model, optimizer, loss):\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
    )
    cold = _modules_imported_by_a_run(tmp_path, script)
    warm = _modules_imported_by_a_run(tmp_path, script)
    assert "libcst" in cold
    assert "gradlint.fix.edits" in warm  # the cached finding's fix was read back
    assert not [name for name in warm if name == "libcst" or name.startswith("libcst.")]
