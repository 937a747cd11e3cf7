"""The documented GitHub Actions workflow and the pre-commit hook definition parse and say
what the docs promise."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_DOC = REPO / "docs" / "github-actions.md"
HOOKS = REPO / ".pre-commit-hooks.yaml"
PRECOMMIT_DOC = REPO / "docs" / "pre-commit.md"

_YAML_BLOCK = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _yaml_blocks(path: Path) -> list[str]:
    return _YAML_BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workflow() -> dict:
    blocks = _yaml_blocks(WORKFLOW_DOC)
    assert len(blocks) == 1, "docs/github-actions.md must hold exactly one ```yaml block"
    data = yaml.safe_load(blocks[0])
    assert isinstance(data, dict)
    return data


def _steps(workflow: dict) -> list[dict]:
    jobs = workflow["jobs"]
    assert len(jobs) == 1
    (job,) = jobs.values()
    assert job["runs-on"]
    return job["steps"]


def _run_argv(step: dict) -> list[str]:
    return shlex.split(step["run"], comments=True) if "run" in step else []


def test_workflow_triggers_and_permissions(workflow: dict) -> None:
    # PyYAML (YAML 1.1) reads the bare key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert "pull_request" in triggers
    (job,) = workflow["jobs"].values()
    assert job["permissions"]["security-events"] == "write"
    assert job["permissions"]["contents"] == "read"


def test_workflow_installs_python_and_gradlint(workflow: dict) -> None:
    steps = _steps(workflow)
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    installs = [s for s in steps if "pip" in _run_argv(s) and "install" in _run_argv(s)]
    assert installs and "gradlint" in installs[0]["run"]


def test_workflow_sarif_upload_then_gate(workflow: dict) -> None:
    steps = _steps(workflow)

    def index(predicate) -> int:
        found = [i for i, s in enumerate(steps) if predicate(s)]
        assert len(found) == 1, found
        return found[0]

    def gradlint_check(step: dict) -> list[str] | None:
        argv = _run_argv(step)
        return argv if argv[:2] == ["gradlint", "check"] else None

    sarif = index(lambda s: (a := gradlint_check(s)) is not None and "sarif" in a)
    argv = gradlint_check(steps[sarif])
    assert argv[argv.index("--format") + 1] == "sarif"
    assert argv[argv.index("--output") + 1] == "gradlint.sarif"
    # Findings must not stop the upload: the SARIF step does not fail on them.
    assert "--exit-zero" in argv or steps[sarif].get("continue-on-error") is True

    upload = index(lambda s: s.get("uses", "").startswith("github/codeql-action/upload-sarif@"))
    assert steps[upload]["with"]["sarif_file"] == "gradlint.sarif"
    assert upload > sarif

    gate = index(lambda s: (a := gradlint_check(s)) is not None and "github" in a)
    argv = gradlint_check(steps[gate])
    assert argv[argv.index("--format") + 1] == "github"
    # The gate is what fails the job: it must exit non-zero on findings.
    assert "--exit-zero" not in argv
    assert not steps[gate].get("continue-on-error")
    assert gate > upload


def test_precommit_hook_definition() -> None:
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert isinstance(hooks, list)
    by_id = {h["id"]: h for h in hooks}
    assert set(by_id) == {"gradlint", "gradlint-fix"}
    for hook in hooks:
        assert hook["name"]
        assert shlex.split(hook["entry"])[:2] == ["gradlint", "check"]
        assert hook["language"] == "python"
        assert sorted(hook["types_or"]) == ["jupyter", "python"]
        assert hook.get("pass_filenames", True) is True
        assert hook["require_serial"] is True
    assert "--fix" in shlex.split(by_id["gradlint-fix"]["entry"])
    assert "--fix" not in shlex.split(by_id["gradlint"]["entry"])


def test_precommit_hook_flags_exist() -> None:
    """Every flag in the hook's entry is one `gradlint check` accepts."""
    from click.testing import CliRunner

    from gradlint.cli import main

    help_text = CliRunner().invoke(main, ["check", "--help"]).output
    for hook in yaml.safe_load(HOOKS.read_text(encoding="utf-8")):
        for flag in shlex.split(hook["entry"])[2:]:
            if flag.startswith("-"):
                assert flag in help_text, flag


def test_precommit_doc_snippets_parse() -> None:
    blocks = _yaml_blocks(PRECOMMIT_DOC)
    assert blocks
    config = yaml.safe_load(blocks[0])
    (repo,) = config["repos"]
    assert [h["id"] for h in repo["hooks"]] == ["gradlint"]
    assert repo["rev"]
    for block in blocks[1:]:
        yaml.safe_load(block)
    assert "gradlint-fix" in PRECOMMIT_DOC.read_text(encoding="utf-8")
