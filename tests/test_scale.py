"""Speed at scale without changing a result: worker processes, the results cache, lazy imports."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import gradlint.api as api
from gradlint.cache import entries
from gradlint.config import load_config
from gradlint.parallel import can_fork

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

MODEL = textwrap.dedent(
    """\
    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self, hidden=128):
            super().__init__()
            self.rnn = nn.RNN(32, hidden, num_layers=2)
            self.head = nn.Linear(hidden, 10)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[-1])
    """
)

TRAIN = textwrap.dedent(
    """\
    import torch
    from model import Net

    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


    def train(loader):
        for x, y in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
    """
)

UNRELATED = textwrap.dedent(
    """\
    import torch


    def evaluate(model, loader):
        with torch.no_grad():
            return sum(model(x).argmax(-1).eq(y).sum().item() for x, y in loader)
    """
)


def lint(paths, *, jobs: int = 1, cache_dir: Path | None = None, cwd: Path | None = None):
    config = load_config([Path(p) for p in paths], cwd=cwd)
    return api.lint_paths([Path(p) for p in paths], config, jobs=jobs, cache_dir=cache_dir, cwd=cwd)


def as_json(report) -> list[tuple]:
    return [
        (f.display_path, f.line, f.column, f.code, f.severity.label, f.message, f.hint, f.related, f.data)
        for f in report.findings
    ]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "evaluate.py").write_text(UNRELATED)
    return tmp_path


# ----------------------------------------------------------------------------- jobs


@pytest.mark.skipif(not can_fork(), reason="worker processes need fork (Linux)")
def test_jobs_give_the_same_findings_as_one_process(monkeypatch):
    calls = []
    original = api.check_parallel

    def spy(*args, **kwargs):
        calls.append(len(args[2]))
        return original(*args, **kwargs)

    monkeypatch.setattr(api, "check_parallel", spy)
    serial = lint([FIXTURES], jobs=1, cwd=FIXTURES.parent)
    assert not calls
    parallel = lint([FIXTURES], jobs=2, cwd=FIXTURES.parent)
    assert calls, "the fixtures are enough files for the worker processes to run"
    assert as_json(parallel) == as_json(serial)
    assert parallel.files_checked == serial.files_checked
    assert [s.path for s in parallel.skipped] == [s.path for s in serial.skipped]
    assert not parallel.errors and not serial.errors
    assert len(serial.findings) > 20


def test_jobs_flag_output_is_identical(tmp_path):
    outputs = []
    for jobs in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-m", "gradlint", "check", str(FIXTURES), "--format", "json", "--no-cache", "--jobs", jobs],
            capture_output=True,
            text=True,
            cwd=FIXTURES.parent,
        )
        assert result.returncode == 1, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]


# ---------------------------------------------------------------------------- cache


def test_warm_run_reuses_every_file_and_reports_the_same(project, tmp_path):
    cache = tmp_path / "cache"
    cold = lint([project], cache_dir=cache, cwd=project)
    assert cold.from_cache == 0
    warm = lint([project], cache_dir=cache, cwd=project)
    assert warm.from_cache == 3
    assert as_json(warm) == as_json(cold)
    assert "GL101" in [f.code for f in warm.findings]


def test_editing_an_imported_model_rechecks_the_script_that_trains_it(project, tmp_path):
    cache = tmp_path / "cache"
    before = lint([project], cache_dir=cache, cwd=project)
    gl101 = [f for f in before.findings if f.code == "GL101"]
    assert gl101 and "nn.RNN" in gl101[0].message
    (project / "model.py").write_text(MODEL.replace("nn.RNN(32, hidden, num_layers=2)", "nn.Linear(32, hidden)"))
    after = lint([project], cache_dir=cache, cwd=project)
    assert after.from_cache == 1  # evaluate.py only: train.py read model.py
    fresh = lint([project], cwd=project)
    assert as_json(after) == as_json(fresh)
    assert all("nn.RNN" not in f.message for f in after.findings)


def test_adding_the_module_an_import_names_rechecks_the_importer(tmp_path):
    (tmp_path / "train.py").write_text(TRAIN)
    cache = tmp_path / "cache"
    before = lint([tmp_path / "train.py"], cache_dir=cache, cwd=tmp_path)
    assert [f.severity.label for f in before.findings if f.code == "GL101"] == ["info"]
    (tmp_path / "model.py").write_text(MODEL)  # outside the run: read from disk by the index
    after = lint([tmp_path / "train.py"], cache_dir=cache, cwd=tmp_path)
    assert after.from_cache == 0
    assert [f.severity.label for f in after.findings if f.code == "GL101"] == ["warning"]
    assert any("nn.RNN" in f.message for f in after.findings if f.code == "GL101")


def test_a_corrupt_cache_entry_is_ignored_and_rewritten(project, tmp_path):
    cache = tmp_path / "cache"
    cold = lint([project], cache_dir=cache, cwd=project)
    stored = list(entries(cache))
    assert len(stored) == 3
    for number, entry in enumerate(stored):
        entry.write_bytes([b"", b"\x80\x04garbage", pickle.dumps("not an entry")][number % 3])
    again = lint([project], cache_dir=cache, cwd=project)
    assert again.from_cache == 0
    assert as_json(again) == as_json(cold)
    for entry in entries(cache):
        key, dependencies, result = pickle.loads(entry.read_bytes())
        assert key == entry.name
    assert lint([project], cache_dir=cache, cwd=project).from_cache == 3


def test_changing_the_rule_selection_does_not_reuse_results(project, tmp_path):
    cache = tmp_path / "cache"
    lint([project], cache_dir=cache, cwd=project)
    (project / "pyproject.toml").write_text('[tool.gradlint]\nignore = ["GL101"]\n')
    report = lint([project], cache_dir=cache, cwd=project)
    assert report.from_cache == 0
    assert "GL101" not in {f.code for f in report.findings}


def test_an_unwritable_cache_costs_nothing_but_speed(project, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go\n")
    cold = lint([project], cache_dir=blocked, cwd=project)
    assert not cold.errors and cold.findings
    assert lint([project], cache_dir=blocked, cwd=project).from_cache == 0


def test_cache_folder_ignores_itself_for_git(project, tmp_path):
    cache = tmp_path / "cache"
    lint([project], cache_dir=cache, cwd=project)
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")


def test_two_runs_sharing_a_cache_agree(tmp_path):
    corpus = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, corpus)
    cache = tmp_path / "shared-cache"
    command = [sys.executable, "-m", "gradlint", "check", str(corpus), "--format", "json", "--cache-dir", str(cache),
               "--jobs", "1"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
            for _ in range(2)]
    outputs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [1, 1], [err for _, err in outputs]
    first, second = (json.loads(out) for out, _ in outputs)
    assert first == second
    warm = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert json.loads(warm.stdout) == first
    assert not list(cache.rglob(".entry.*")), "no temporary file is left behind"


def test_no_cache_writes_nothing(project):
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", ".", "--no-cache", "-q"], capture_output=True, text=True, cwd=project
    )
    assert result.returncode == 1, result.stderr
    assert not (project / ".gradlint_cache").exists()
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", ".", "-q"], capture_output=True, text=True, cwd=project
    )
    assert (project / ".gradlint_cache" / "v1").is_dir()


# ------------------------------------------------------------------- lazy imports


def test_a_full_check_leaves_torch_out_of_sys_modules():
    script = textwrap.dedent(
        f"""\
        import sys
        from gradlint.cli import main
        try:
            main(["check", {str(FIXTURES)!r}, "--format", "json", "--no-cache", "-o", "/dev/null"])
        except SystemExit as done:
            assert done.code == 1, done.code
        assert "torch" not in sys.modules, "the static path imported torch"
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=FIXTURES.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_progress_bar_never_reaches_a_pipe(project):
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", str(FIXTURES), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "CI": ""},
    )
    assert "checking" not in result.stderr and "\x1b[" not in result.stderr


def _run_with_terminal_stderr(args: list[str], cwd: Path, env: dict | None = None) -> tuple[int, str, str]:
    """Run gradlint with stderr on a pseudo-terminal (as in an interactive shell), stdout piped."""
    import pty

    primary, secondary = pty.openpty()
    stdout_file = tempfile.TemporaryFile()  # a pipe nobody reads would fill up and block the child
    process = subprocess.Popen(
        [sys.executable, "-m", "gradlint", *args],
        cwd=cwd,
        stdout=stdout_file,
        stderr=secondary,
        env={**os.environ, "CI": "", "GRADLINT_NO_PROGRESS": "", "TERM": "xterm", "COLUMNS": "100", **(env or {})},
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(primary)
    stdout_file.seek(0)
    stdout = stdout_file.read().decode()
    stdout_file.close()
    return process.returncode, stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_shows_on_a_terminal_whatever_the_number_of_files_only_in_text_output(tmp_path):
    """Once the delay has passed (0 here, about a second by default) a run of 12 files shows the
    bar: the number of files does not matter."""
    (tmp_path / "model.py").write_text(MODEL)
    for number in range(11):
        (tmp_path / f"step_{number:03d}.py").write_text(TRAIN.replace("lr=0.1", f"lr=0.{number % 9 + 1}"))
    env = {"GRADLINT_PROGRESS_DELAY": "0"}
    code, stdout, stderr = _run_with_terminal_stderr(["check", ".", "--no-cache", "--jobs", "1"], tmp_path, env)
    assert code == 1
    assert "checking" in stderr and "/12" in stderr
    assert "checking" not in stdout and "\x1b[" not in stdout
    code, stdout, stderr = _run_with_terminal_stderr(
        ["check", ".", "--no-cache", "--jobs", "1", "--format", "json"], tmp_path, env
    )
    assert code == 1 and json.loads(stdout)["findings"]
    assert "checking" not in stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_progress_bar_stays_away_from_a_run_shorter_than_the_delay(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "train.py").write_text(TRAIN)
    code, _, stderr = _run_with_terminal_stderr(["check", ".", "--no-cache", "--jobs", "1"], tmp_path,
                                                {"GRADLINT_PROGRESS_DELAY": "30"})
    assert code == 1 and "checking" not in stderr


def _terminal_bar(delay: float):
    import io

    from rich.console import Console

    from gradlint.progress import Bar

    stream = io.StringIO()
    return Bar("checking", delay=delay, console=Console(file=stream, force_terminal=True, width=80)), stream


def test_a_bar_appears_after_its_delay_even_before_the_first_file_is_done():
    import time

    bar, stream = _terminal_bar(0.2)
    with bar:
        bar.start(3)  # three files, the first one slow: no advance yet
        assert not bar.shown
        deadline = time.monotonic() + 10
        while not bar.shown and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bar.shown
        bar.advance(3)
    assert "checking" in stream.getvalue()


def test_a_stage_done_before_the_delay_shows_no_bar():
    import time

    bar, stream = _terminal_bar(0.3)
    with bar:
        bar.start(500)
        bar.advance(500)
    time.sleep(0.5)
    assert not bar.shown and stream.getvalue() == ""


def test_the_default_delay_is_about_a_second(monkeypatch):
    from gradlint.progress import DELAY, delay_from_environment

    monkeypatch.delenv("GRADLINT_PROGRESS_DELAY", raising=False)
    assert 0.5 <= DELAY <= 2 and delay_from_environment() == DELAY
    monkeypatch.setenv("GRADLINT_PROGRESS_DELAY", "0")
    assert delay_from_environment() == 0
