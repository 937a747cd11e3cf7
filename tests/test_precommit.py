"""gradlint as a pre-commit hook, run by the real ``pre-commit`` from PyPI.

The hook repository is a throwaway git repository made from this checkout's working tree
(tracked files plus untracked, non-ignored ones, so uncommitted work is what gets tested).
A user project points at it from ``.pre-commit-config.yaml`` by path and commit sha, the
way users point at the GitHub repository by URL and tag; pre-commit clones it and installs
gradlint into its own virtualenv with ``pip install .``.

The first test builds that virtualenv (it needs gradlint's dependencies from the package
index); if it cannot be built here, the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pre_commit")

REPO = Path(__file__).resolve().parents[1]

MODEL = '''\
import torch.nn as nn


class Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(32, 64, num_layers=2)
        self.head = nn.Linear(64, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out)
'''

RISKY_TRAIN = '''\
import torch

from model import Seq


def main():
    model = Seq()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(100):
        x = torch.randn(10, 4, 32)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


if __name__ == "__main__":
    main()
'''

FIXED_TRAIN = RISKY_TRAIN.replace(
    "        loss.backward()\n",
    "        loss.backward()\n"
    "        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n",
)

# A clip after the step (GL102): `gradlint-fix` moves it between backward and step (a safe fix).
CLIP_AFTER_STEP_TRAIN = FIXED_TRAIN.replace(
    "        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n        optimizer.step()\n",
    "        optimizer.step()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # keep\n",
)

# Failures that mean "this machine cannot fetch packages", not "the hook is broken".
_NO_NETWORK = re.compile(
    r"No matching distribution|Could not find a version|Failed to establish a new connection"
    r"|Temporary failure in name resolution|Network is unreachable|ConnectionError|ReadTimeout"
    r"|Max retries exceeded|ProxyError|SSLError",
    re.IGNORECASE,
)


def _pre_commit() -> list[str]:
    exe = Path(sys.executable).with_name("pre-commit")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-m", "pre_commit"]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        PRE_COMMIT_HOME=str(home),
        PRE_COMMIT_COLOR="never",
        NO_COLOR="1",
        GIT_AUTHOR_NAME="gradlint tests",
        GIT_AUTHOR_EMAIL="tests@example.invalid",
        GIT_COMMITTER_NAME="gradlint tests",
        GIT_COMMITTER_EMAIL="tests@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(home.parent),  # no user git config (hooksPath, signing, templates)
    )
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _git(cwd: Path, env: dict[str, str], *args: str) -> str:
    proc = _run(["git", *args], cwd, env)
    assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout.strip()


def _working_tree_files() -> list[str]:
    proc = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"this checkout is not a git repository: {proc.stderr.strip()}")
    return sorted({f for f in proc.stdout.split("\0") if f and (REPO / f).is_file()})


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    base = tmp_path_factory.mktemp("precommit")
    home = base / "pre-commit-home"
    home.mkdir()
    env = _env(home)

    # The hook repository: this working tree, committed.
    hook_repo = base / "gradlint-hook-repo"
    for rel in _working_tree_files():
        dest = hook_repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    assert (hook_repo / ".pre-commit-hooks.yaml").is_file()
    _git(hook_repo, env, "init", "-q")
    _git(hook_repo, env, "add", "-A")
    _git(hook_repo, env, "commit", "-q", "--no-verify", "-m", "gradlint working tree")
    sha = _git(hook_repo, env, "rev-parse", "HEAD")

    # The user's project.
    project = base / "project"
    project.mkdir()
    _git(project, env, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {hook_repo.as_posix()}\n"
        f"    rev: {sha}\n"
        "    hooks:\n"
        "      - id: gradlint\n",
        encoding="utf-8",
    )
    _git(project, env, "add", ".pre-commit-config.yaml")
    _git(project, env, "commit", "-q", "--no-verify", "-m", "pre-commit config")

    proc = _run([*_pre_commit(), "install-hooks"], project, env, timeout=600)
    if proc.returncode != 0:
        output = proc.stdout + proc.stderr
        log = home / "pre-commit.log"
        if log.exists():
            output += log.read_text(encoding="utf-8", errors="replace")
        if _NO_NETWORK.search(output):
            pytest.skip(
                "pre-commit could not build gradlint's hook environment (no package index?): "
                + output.strip().splitlines()[-1]
            )
        pytest.fail(f"pre-commit install-hooks failed:\n{output}")
    proc = _run([*_pre_commit(), "install"], project, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"project": project, "env": env, "hook_repo": hook_repo, "sha": sha}


def test_commit_blocked_then_fixed_commit_passes(sandbox: dict) -> None:
    project: Path = sandbox["project"]
    env: dict[str, str] = sandbox["env"]

    # The model alone is fine: the hook runs on it and lets it through.
    (project / "model.py").write_text(MODEL, encoding="utf-8")
    _git(project, env, "add", "model.py")
    proc = _run(["git", "commit", "-m", "add model"], project, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"gradlint\.+Passed", proc.stdout + proc.stderr)
    head = _git(project, env, "rev-parse", "HEAD")

    # A training loop over an LSTM with no clipping: the commit is refused.
    (project / "train.py").write_text(RISKY_TRAIN, encoding="utf-8")
    _git(project, env, "add", "train.py")
    proc = _run(["git", "commit", "-m", "add training loop"], project, env)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert re.search(r"gradlint\.+Failed", output), output
    assert "train.py:14:9: GL101 [warning]" in output, output
    assert "no gradient clipping" in output
    assert _git(project, env, "rev-parse", "HEAD") == head  # nothing was committed

    # Clipped between backward and step: the same commit goes through.
    (project / "train.py").write_text(FIXED_TRAIN, encoding="utf-8")
    _git(project, env, "add", "train.py")
    proc = _run(["git", "commit", "-m", "add training loop"], project, env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"gradlint\.+Passed", output), output
    assert "GL101" not in output
    assert _git(project, env, "rev-parse", "HEAD") != head
    assert _git(project, env, "log", "-1", "--format=%s") == "add training loop"


def test_only_passed_file_checked_but_model_facts_come_from_project(sandbox: dict) -> None:
    """pre-commit passes train.py alone; the LSTM it trains is found in model.py beside it."""
    project: Path = sandbox["project"]
    env: dict[str, str] = sandbox["env"]
    work = project / "crossfile"
    work.mkdir()
    (work / "model.py").write_text(MODEL, encoding="utf-8")
    (work / "train.py").write_text(RISKY_TRAIN, encoding="utf-8")
    # A file pre-commit is not asked about: it must not be reported.
    (work / "other.py").write_text(RISKY_TRAIN.replace("from model import Seq", "Seq = None"), encoding="utf-8")
    _git(project, env, "add", "crossfile")

    proc = _run(
        [*_pre_commit(), "run", "gradlint", "--color", "never", "--files", "crossfile/train.py"],
        project,
        env,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "crossfile/train.py:14:9: GL101 [warning]" in output, output
    # The warning names the recurrent layer that lives in the file pre-commit did not pass.
    # (gradlint names it relative to train.py's folder today; the cwd-relative path is accepted too.)
    assert re.search(r"nn\.LSTM at (crossfile/)?model\.py:7\b", output), output
    assert "other.py" not in output
    assert "in 1 file" in output


def test_fix_hook_rewrites_the_file_fails_the_commit_then_the_fixed_commit_passes(sandbox: dict) -> None:
    """`gradlint-fix` applies the safe fix in place; pre-commit fails a commit whose files a hook
    modified, and committing the fixed file (after `git add`) goes through."""
    env: dict[str, str] = sandbox["env"]
    project = sandbox["project"].parent / "fix-project"
    project.mkdir()
    _git(project, env, "init", "-q")
    (project / ".pre-commit-config.yaml").write_text(
        "repos:\n"
        f"  - repo: {sandbox['hook_repo'].as_posix()}\n"
        f"    rev: {sandbox['sha']}\n"
        "    hooks:\n"
        "      - id: gradlint-fix\n",
        encoding="utf-8",
    )
    (project / "model.py").write_text(MODEL, encoding="utf-8")
    (project / "train.py").write_text(CLIP_AFTER_STEP_TRAIN, encoding="utf-8")
    proc = _run([*_pre_commit(), "install"], project, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _git(project, env, "add", "-A")

    # The same hook environment as the `gradlint` hook (same repository and rev): no new install.
    proc = _run(["git", "commit", "-m", "add training loop"], project, env, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert re.search(r"gradlint \(fix\)\.+Failed", output), output
    assert "files were modified by this hook" in output, output
    assert (project / "train.py").read_text(encoding="utf-8") == CLIP_AFTER_STEP_TRAIN.replace(
        "        optimizer.step()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # keep\n",
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)  # keep\n        optimizer.step()\n",
    )
    assert _run(["git", "rev-parse", "HEAD"], project, env).returncode != 0  # nothing was committed

    _git(project, env, "add", "train.py")
    proc = _run(["git", "commit", "-m", "add training loop"], project, env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"gradlint \(fix\)\.+Passed", output), output
    assert _git(project, env, "log", "-1", "--format=%s") == "add training loop"
