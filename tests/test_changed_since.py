"""`gradlint check --changed-since REV`: only findings on changed lines (docs/baseline.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.changes import parse_diff
from gradlint.cli import main

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

HEADER = """\
import torch

model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""

LOOP = """

def {name}(data):
    for x, y in data:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def commit(cwd: Path, message: str) -> None:
    git(cwd, "add", "-A")
    git(cwd, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", message)


def findings(*args: str) -> tuple[int, list[tuple[str, int]], str]:
    result = CliRunner().invoke(main, ["check", "--format", "json", "--select", "GL101", *args])
    if result.exit_code == 2:
        return 2, [], result.stderr
    data = json.loads(result.stdout)
    return result.exit_code, [(f["path"], f["line"]) for f in data["findings"]], result.stderr


@pytest.fixture
def repo(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text(HEADER + LOOP.format(name="train"), encoding="utf-8")
    commit(tmp_path, "init")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _second_loop(repo: Path) -> int:
    """Append a second risky loop; the line of its `opt.step()`."""
    text = (repo / "train.py").read_text(encoding="utf-8") + LOOP.format(name="train2")
    (repo / "train.py").write_text(text, encoding="utf-8")
    return len(text.splitlines())


def test_nothing_changed_nothing_reported(repo):
    assert findings()[1] == [("train.py", 12)]
    assert findings("--changed-since", "HEAD")[1] == []


def test_an_unstaged_change_is_reported_alone(repo):
    line = _second_loop(repo)
    assert findings("--changed-since", "HEAD")[1] == [("train.py", line)]


def test_a_staged_change_is_reported(repo):
    line = _second_loop(repo)
    git(repo, "add", "train.py")
    assert findings("--changed-since", "HEAD")[1] == [("train.py", line)]


def test_a_committed_change_is_reported(repo):
    line = _second_loop(repo)
    commit(repo, "second loop")
    assert findings("--changed-since", "HEAD~1")[1] == [("train.py", line)]
    assert findings("--changed-since", "HEAD")[1] == []


def test_an_untracked_file_is_reported_whole(repo):
    (repo / "new.py").write_text(HEADER + LOOP.format(name="fresh"), encoding="utf-8")
    assert findings("--changed-since", "HEAD")[1] == [("new.py", 12)]


def test_an_ignored_file_is_not_a_change(repo):
    (repo / ".gitignore").write_text("ignored_dir/\n", encoding="utf-8")
    (repo / "ignored_dir").mkdir()
    (repo / "ignored_dir" / "x.py").write_text(HEADER + LOOP.format(name="x"), encoding="utf-8")
    assert findings("--changed-since", "HEAD", "ignored_dir/x.py")[1] == []


def test_from_a_subdirectory(repo, monkeypatch):
    (repo / "pkg").mkdir()
    (repo / "pkg" / "a.py").write_text(HEADER + LOOP.format(name="a"), encoding="utf-8")
    commit(repo, "pkg")
    (repo / "pkg" / "a.py").write_text(HEADER + LOOP.format(name="a") + LOOP.format(name="b"), encoding="utf-8")
    monkeypatch.chdir(repo / "pkg")
    assert findings("--changed-since", "HEAD")[1] == [("a.py", 20)]


def test_an_unknown_revision_is_an_error(repo):
    code, _, err = findings("--changed-since", "no-such-rev")
    assert code == 2 and "unknown git revision" in err


def test_outside_a_git_repository_is_an_error(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    (outside / "train.py").write_text(HEADER + LOOP.format(name="train"), encoding="utf-8")
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    code, _, err = findings("--changed-since", "HEAD")
    assert code == 2 and "not inside a git repository" in err


def test_with_a_baseline_stale_entries_are_judged_on_the_whole_run(repo):
    result = CliRunner().invoke(main, ["baseline", "create", "b.json", "--select", "GL101"])
    assert result.exit_code == 0
    line = _second_loop(repo)
    result = CliRunner().invoke(
        main, ["check", "--format", "json", "--select", "GL101", "--baseline", "b.json", "--changed-since", "HEAD"]
    )
    data = json.loads(result.stdout)
    assert [f["line"] for f in data["findings"]] == [line]
    assert data["summary"]["baselined"] == 1 and data["summary"]["stale_baseline"] == 0


def test_parse_diff_hunks():
    diff = (
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n"
        "@@ -3 +3 @@\n-a\n+b\n@@ -10,0 +11,2 @@\n+c\n+d\n@@ -20,2 +22,0 @@\n-e\n-f\n"
        "diff --git a/gone.py b/gone.py\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n"
        'diff --git "a/t\\tab.py" "b/t\\tab.py"\n--- "a/t\\tab.py"\n+++ "b/t\\tab.py"\n@@ -0,0 +1 @@\n+y\n'
    )
    assert parse_diff(diff) == {"x.py": {3, 11, 12}, "t\tab.py": {1}}
