"""The check daemon (`gradlint daemon start`): a run it serves must be the run without it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from snippets import CLIP_AFTER_STEP

from gradlint.daemon import address
from gradlint.daemon.client import run_in_daemon
from gradlint.daemon.server import Daemon, StopServing
from gradlint.daemon.wire import receive, send

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not address.supported(), reason="the daemon is Linux only")


@pytest.fixture
def daemon_dir(monkeypatch):
    """A socket folder of this test's own, short enough for a Unix socket's path (108 bytes)."""
    folder = tempfile.mkdtemp(prefix="gld-", dir="/tmp")
    monkeypatch.setenv("GRADLINT_DAEMON_DIR", folder)
    monkeypatch.delenv("GRADLINT_NO_DAEMON", raising=False)
    yield folder
    subprocess.run([sys.executable, "-m", "gradlint", "daemon", "stop"], capture_output=True, env=_env(folder))
    shutil.rmtree(folder, ignore_errors=True)


def _env(folder: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "GRADLINT_NO_DAEMON"}
    env["GRADLINT_DAEMON_DIR"] = folder
    env.update(extra)
    return env


def _gradlint(folder: str, *arguments: str, cwd: Path = REPO, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradlint", *arguments], capture_output=True, text=True, cwd=cwd, env=_env(folder, **extra)
    )


def _served(folder: str) -> int:
    status = _gradlint(folder, "daemon", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    return int(status.stdout.split(" runs served")[0].rsplit(" ", 1)[1])


def test_a_check_through_the_daemon_prints_and_exits_as_one_without_it(daemon_dir):
    started = _gradlint(daemon_dir, "daemon", "start", "--idle-timeout", "5")
    assert started.returncode == 0, started.stderr
    assert "daemon started" in started.stdout
    for arguments in (
        ("check", "--no-cache", "--format", "json", "fixtures/char_rnn_no_clip", "fixtures/amp_clip_before_unscale"),
        ("check", "--no-cache", "fixtures/amp_correct"),
        ("check", "--no-cache", "--select", "GL999", "fixtures/amp_correct"),
        ("check", "--bogus-option"),  # click's usage line names the program as `python -m gradlint`
    ):
        served = _gradlint(daemon_dir, *arguments)
        alone = _gradlint(daemon_dir, *arguments, GRADLINT_NO_DAEMON="1")
        assert (served.returncode, served.stdout, served.stderr) == (alone.returncode, alone.stdout, alone.stderr)
    assert [served.returncode for served in (_gradlint(daemon_dir, "check", "--no-cache", "fixtures/char_rnn_no_clip"),)] == [1]
    assert _served(daemon_dir) == 5


def test_the_worker_runs_in_the_clients_folder_with_its_environment(daemon_dir, tmp_path):
    assert _gradlint(daemon_dir, "daemon", "start").returncode == 0
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nselect = ["GL102"]\n', encoding="utf-8")
    (tmp_path / "train.py").write_text(CLIP_AFTER_STEP, encoding="utf-8")
    result = _gradlint(daemon_dir, "check", "--no-cache", "--format", "concise", "train.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("train.py:6:5: GL102"), result.stdout
    plain = _gradlint(daemon_dir, "check", "--no-cache", "train.py", cwd=tmp_path)
    colored = _gradlint(daemon_dir, "check", "--no-cache", "train.py", cwd=tmp_path, FORCE_COLOR="1")
    assert "\x1b[" not in plain.stdout and "\x1b[" in colored.stdout, "FORCE_COLOR reached the worker"
    assert _served(daemon_dir) == 3
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nselect = ["GL204"]\n', encoding="utf-8")
    clean = _gradlint(daemon_dir, "check", "--no-cache", "train.py", cwd=tmp_path)
    assert clean.returncode == 0 and "no problems" in clean.stdout, "the configuration is read again for each run"


def test_files_written_through_the_daemon_keep_the_clients_umask(daemon_dir, tmp_path):
    assert _gradlint(daemon_dir, "daemon", "start").returncode == 0
    report = tmp_path / "report.json"
    script = (
        "import os, sys\nos.umask(0o077)\nsys.argv = ['gradlint', 'check', '--no-cache', '--format', 'json', "
        f"'-o', {str(report)!r}, 'fixtures/amp_correct']\nfrom gradlint.launch import run\nrun()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=_env(daemon_dir), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert report.stat().st_mode & 0o777 == 0o600
    assert _served(daemon_dir) == 1


def test_status_and_stop_without_a_daemon(daemon_dir):
    status = _gradlint(daemon_dir, "daemon", "status")
    assert status.returncode == 1 and "no gradlint daemon is running" in status.stdout
    assert "no gradlint daemon is running" in _gradlint(daemon_dir, "daemon", "stop").stdout


def test_start_twice_keeps_one_daemon_and_stop_removes_its_socket(daemon_dir):
    assert _gradlint(daemon_dir, "daemon", "start").returncode == 0
    again = _gradlint(daemon_dir, "daemon", "start")
    assert again.returncode == 0 and "already running" in again.stdout
    assert os.path.exists(address.socket_path())
    stopped = _gradlint(daemon_dir, "daemon", "stop")
    assert "stopped" in stopped.stdout
    assert not os.path.exists(address.socket_path())
    assert _gradlint(daemon_dir, "daemon", "status").returncode == 1


def test_an_idle_daemon_stops_by_itself(daemon_dir):
    assert _gradlint(daemon_dir, "daemon", "start", "--idle-timeout", "0.02").returncode == 0  # 1.2 s
    deadline = time.monotonic() + 30
    while os.path.exists(address.socket_path()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(address.socket_path())
    assert _gradlint(daemon_dir, "daemon", "status").returncode == 1


def test_a_folder_others_may_enter_is_never_used(daemon_dir):
    os.chmod(daemon_dir, 0o777)
    started = _gradlint(daemon_dir, "daemon", "start")
    assert started.returncode == 2 and "mode 700" in started.stderr
    Path(address.socket_path()).touch()  # as if someone else had put a socket there
    assert run_in_daemon(["check", "."]) is None


def test_without_a_daemon_the_client_steps_aside(daemon_dir):
    assert run_in_daemon(["check", "."]) is None
    Path(address.socket_path()).touch()  # a socket file that no daemon listens on
    assert run_in_daemon(["check", "."]) is None


def test_a_daemon_that_declines_leaves_the_run_to_the_client(daemon_dir, capsys):
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address.socket_path())
    listener.listen(1)

    def decline() -> None:
        connection, _ = listener.accept()
        with connection:
            request, fds = receive(connection, max_fds=3)
            for fd in fds:
                os.close(fd)
            assert request["op"] == "run" and request["argv"][1:] == ["check", "."]
            assert request["cwd"] == os.getcwd() and request["package"] == address.PACKAGE_DIRECTORY
            send(connection, {"refused": "gradlint's files changed since the daemon started"})

    server = threading.Thread(target=decline)
    server.start()
    try:
        assert run_in_daemon(["check", "."]) is None
    finally:
        server.join(10)
        listener.close()
    assert "files changed since the daemon started; checking without the daemon" in capsys.readouterr().err


def test_a_daemon_whose_code_changed_declines_and_stops(daemon_dir):
    daemon = Daemon(idle_timeout=60)
    request = {"op": "run", "package": address.PACKAGE_DIRECTORY}
    assert daemon.refusal(request, [0, 1, 2]) is None
    assert "standard streams" in daemon.refusal(request, [])
    assert "not this one" in daemon.refusal({**request, "package": "/elsewhere/gradlint"}, [0, 1, 2])
    assert not daemon.stale()
    assert any(entry[0].endswith("libcst") for entry in daemon.fingerprint), "an upgrade of libcst makes it stale"
    daemon.fingerprint = ()  # as if a file of gradlint had been edited since the start
    assert daemon.stale()

    class Connection:
        sent: list = []

        def sendall(self, data: bytes) -> None:
            self.sent.append(data)

    with pytest.raises(StopServing):
        daemon.run(Connection(), request, [0, 1, 2])
    assert b"changed since the daemon started" in b"".join(Connection.sent)


def test_two_starts_at_once_make_one_daemon(daemon_dir):
    starts = [
        subprocess.Popen([sys.executable, "-m", "gradlint", "daemon", "start"], stdout=subprocess.PIPE, text=True,
                         cwd=REPO, env=_env(daemon_dir))
        for _ in range(2)
    ]
    outputs = sorted(start.communicate(timeout=60)[0] for start in starts)
    assert [start.returncode for start in starts] == [0, 0]
    assert "already running" in outputs[0] and "daemon started" in outputs[1]
    assert outputs[1].split("(pid ")[1].split(")")[0] in outputs[0]


def test_gradlint_daemon_auto_starts_one_for_the_next_checks(daemon_dir):
    first = _gradlint(daemon_dir, "check", "--no-cache", "fixtures/amp_correct", GRADLINT_DAEMON="auto")
    assert first.returncode == 0 and first.stderr == ""
    deadline = time.monotonic() + 30
    while _gradlint(daemon_dir, "daemon", "status").returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    second = _gradlint(daemon_dir, "check", "--no-cache", "fixtures/amp_correct", GRADLINT_DAEMON="auto")
    assert (second.returncode, second.stdout) == (first.returncode, first.stdout)
    assert _served(daemon_dir) == 1


def test_a_request_it_cannot_read_stops_a_daemon_whose_code_changed(daemon_dir):
    import socket

    daemon = Daemon(idle_timeout=60)
    for fingerprint, stops in ((daemon.fingerprint, False), ((), True)):
        daemon.fingerprint = fingerprint
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with ours, theirs:
            theirs.sendall(b"\x00\x00\x00\x02{}")  # a request in a format this daemon does not speak
            if stops:
                with pytest.raises(StopServing):
                    daemon.handle(ours)
            else:
                daemon.handle(ours)


@pytest.mark.parametrize("served", [True, False], ids=["through the daemon", "in its own process"])
def test_ctrl_c_stops_the_run_and_its_workers_with_aborted(daemon_dir, tmp_path, served):
    import signal

    script = (REPO / "fixtures" / "char_rnn_no_clip" / "train.py").read_text(encoding="utf-8")
    for number in range(400):  # a run long enough to be interrupted in the middle, on --jobs 2
        folder = tmp_path / f"run{number:03d}"
        folder.mkdir()
        (folder / "train.py").write_text(script, encoding="utf-8")
    if served:
        assert _gradlint(daemon_dir, "daemon", "start").returncode == 0
    env = _env(daemon_dir) if served else _env(daemon_dir, GRADLINT_NO_DAEMON="1")
    run = subprocess.Popen([sys.executable, "-m", "gradlint", "check", "--no-cache", "--jobs", "2", "."], cwd=tmp_path,
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(3)
    assert run.poll() is None, "the run ended before it could be interrupted"
    os.killpg(run.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    stopped = time.monotonic()
    _, stderr = run.communicate(timeout=60)
    assert time.monotonic() - stopped < 10
    assert run.returncode == 1 and stderr.strip() == "Aborted!", stderr
    if served:
        assert _served(daemon_dir) == 1
