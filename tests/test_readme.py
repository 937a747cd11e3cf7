"""The README is part of the product: its rule table and commands must stay true."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
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


def _pip_installs(text: str) -> list[list[str]]:
    """The arguments of every `pip install` in a shell text."""
    installs = []
    for command in re.split(r"&&|\n|;", text):
        words = shlex.split(command, comments=True)
        if words[:2] == ["pip", "install"] or words[1:3] == ["pip", "install"]:
            installs.append(words[words.index("install") + 1 :])
    return installs


def test_the_readme_test_command_installs_the_probe_extra_after_the_pinned_cpu_torch():
    """A newcomer's pytest runs the probe's tests instead of skipping them."""
    installs = _pip_installs(_quick_start_commands()[1])
    assert ["torch==2.13.0"] in installs
    probe = next(i for i, args in enumerate(installs) if any("probe" in arg for arg in args))
    assert installs.index(["torch==2.13.0"]) < probe
    assert "-e" in installs[probe] and ".[test,probe]" in installs[probe]


def test_ci_never_installs_an_unpinned_or_other_torch():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    for args in _pip_installs(ci) + _pip_installs(_quick_start_commands()[1]):
        for arg in args:
            if re.match(r"torch\b", arg):
                assert arg == "torch==2.13.0", args
    assert "GRADLINT_REQUIRE_PROBE=1" in ci.split(_quick_start_commands()[1])[0]


def test_the_probe_extra_states_a_normal_range_and_the_test_extra_brings_no_torch():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert extras["probe"] == ["torch>=2.1"]
    assert not [dep for dep in extras["test"] if dep.startswith("torch")]


def test_ci_fails_instead_of_skipping_the_probe_tests_without_torch(tmp_path):
    """With GRADLINT_REQUIRE_PROBE set and torch unimportable, pytest refuses to run."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Hide())\n",
        encoding="utf-8",
    )
    env = dict(os.environ, GRADLINT_REQUIRE_PROBE="1", PYTHONPATH=str(blocker))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--co", str(REPO / "tests" / "test_readme.py")],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "GRADLINT_REQUIRE_PROBE is set but torch is not installed" in result.stdout + result.stderr


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


def _section_shell_lines() -> list[str]:
    """Every line of the section's bash blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", _SECTION, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_section_commands_work_as_shown_for_a_new_user(tmp_path):
    """Run every line of the section's bash blocks, in order, in a fresh git repository
    holding the fixtures, as a new user would paste them: each `gradlint ...  # exit N` exits
    N, the other lines (making a scratch copy) succeed, and the fixtures are left as they were
    (the test suite needs them)."""
    assert len(_EXIT.findall(_SECTION)) >= 6
    shutil.copytree(REPO / "fixtures", tmp_path / "fixtures")
    (tmp_path / ".gitignore").write_text((REPO / ".gitignore").read_text(encoding="utf-8"), encoding="utf-8")
    git = ["git", "-c", "user.email=dev@example.com", "-c", "user.name=dev"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "fixtures"], cwd=tmp_path, check=True)
    # `gradlint daemon start` starts a real daemon: in a socket folder of this test's own (short
    # enough for a Unix socket's path), stopped at the end whatever happens.
    daemon_dir = tempfile.mkdtemp(prefix="gld-", dir="/tmp")
    env = {**os.environ, "GRADLINT_DAEMON_DIR": daemon_dir}
    try:
        for line in _section_shell_lines():
            match = _EXIT.match(line)
            if match is None:
                assert not line.startswith("gradlint "), f"say the exit code of: {line}"
                subprocess.run(line, shell=True, cwd=tmp_path, check=True, env=env)
                continue
            command, expected = match.groups()
            argv = [sys.executable, "-m", "gradlint", *shlex.split(command)[1:]]
            result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, env=env)
            assert result.returncode == int(expected), f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            assert "Traceback" not in result.stderr
    finally:
        subprocess.run([sys.executable, "-m", "gradlint", "daemon", "stop"], capture_output=True, env=env)
        shutil.rmtree(daemon_dir, ignore_errors=True)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert not [line for line in status.stdout.splitlines() if "fixtures/" in line], status.stdout


def test_no_readme_command_fixes_the_repositorys_own_fixtures():
    for line in README.splitlines():
        if line.startswith("gradlint ") and "--fix" in line.split("#")[0]:
            assert not any(word.startswith("fixtures") for word in shlex.split(line, comments=True)), line


# ---------------------------------------------------------------- the distribution's name

def _project() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _documents() -> dict[str, str]:
    paths = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / ".ci" / "run"]
    return {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8") for path in paths}


def test_the_distribution_is_torch_gradlint_and_the_command_stays_gradlint():
    """PyPI's `gradlint` is an unrelated diffusion-MRI tool (1.1.x)."""
    project = _project()
    assert project["name"] == "torch-gradlint"
    assert project["scripts"] == {"gradlint": "gradlint.launch:run"}


def test_the_readme_says_the_distribution_name_in_its_first_lines():
    top = "\n".join(README.splitlines()[:12])
    assert "`torch-gradlint`" in top and "pip install gradlint" in top  # the warning names the wrong command


def test_no_install_command_in_the_docs_installs_pypis_gradlint():
    wrong = re.compile(r"pip install\s+(?:-U\s+)?['\"]?gradlint(?:\[[\w,]+\])?['\"]?(?:\s|$|@)|['\"]gradlint(?:\[[\w,]+\])? @")
    for name, text in _documents().items():
        for line in text.splitlines():
            if "Never `pip install gradlint`" in line:
                continue
            assert not wrong.search(line), f"{name}: {line.strip()}"


def test_every_direct_reference_names_the_distribution():
    """pip refuses `NAME @ git+URL` when NAME is not the project's name."""
    name = _project()["name"]
    for doc, text in _documents().items():
        for reference in re.findall(r"[\"']([\w.-]+)(?:\[[\w,]+\])? @ git\+", text):
            assert reference == name, f"{doc}: {reference} @ git+..."


def test_install_hints_name_the_distribution():
    from gradlint.probe import INSTALL_HINT
    from gradlint.probe.command import PLOT_HINT

    for hint in (INSTALL_HINT, PLOT_HINT):
        assert "'torch-gradlint[" in hint and "pip install -e '.[" in hint
