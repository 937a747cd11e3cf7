"""`gradlint check` asking a running daemon to do the run (see the package's docstring).

`run_in_daemon` returns the run's exit status, or None when there is no daemon to ask (none
running, another platform, a folder that is not safe) or the daemon declined before the run
began; the caller then checks in its own process. Once the daemon's worker has started, the
run is the worker's: it may have written output or fixed files, so it is never run twice.
"""

from __future__ import annotations

import os
import sys
from _socket import AF_UNIX, SOCK_STREAM, socket  # not `socket`: see wire.py

from gradlint.daemon.address import (
    PACKAGE_DIRECTORY,
    UnsafeDirectory,
    check_directory,
    socket_path,
    supported,
)
from gradlint.daemon.wire import ProtocolError, receive, send

EXIT_ERROR = 2
ANSWER_TIMEOUT = 10.0
"""Seconds to wait for the daemon's first answer."""


def run_in_daemon(argv: list[str]) -> int | None:
    if not supported():
        return None
    path = socket_path()
    try:
        if not os.path.exists(path) or not check_directory(os.path.dirname(path)):
            return None
    except UnsafeDirectory:
        return None
    connection = socket(AF_UNIX, SOCK_STREAM)
    try:
        try:
            # A daemon answers at once (it forks, the worker says its pid); one that does not is
            # stuck, and the run goes on here rather than wait on it.
            connection.settimeout(ANSWER_TIMEOUT)
            connection.connect(path)
            send(connection, _request(argv), fds=(0, 1, 2))
            reply, _ = receive(connection)
            connection.settimeout(None)
        except (OSError, ProtocolError):  # a socket left by a daemon that is gone; a closed stream
            return None
        if reply is None or "pid" not in reply:
            if reply is not None and reply.get("refused"):
                sys.stderr.write(f"gradlint: {reply['refused']}; checking without the daemon\n")
            return None
        return _wait_for_exit(connection, int(reply["pid"]))
    finally:
        connection.close()


def start_in_background() -> None:
    """`gradlint daemon start --quiet`, detached (GRADLINT_DAEMON=auto: the run that finds no
    daemon starts one for the runs after it, and goes on in its own process meanwhile)."""
    if not supported():
        return
    environment = {key: value for key, value in os.environ.items() if key != "GRADLINT_DAEMON"}
    quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "gradlint", "daemon", "start", "--quiet"],
            environment,
            file_actions=quiet,
            setsid=True,
        )
    except OSError:  # the run goes on without a daemon, as it would have anyway
        pass


def _request(argv: list[str]) -> dict:
    umask = os.umask(0o022)
    os.umask(umask)
    streams = [(stream.encoding, stream.errors) if stream is not None else None for stream in (sys.stdin, sys.stdout, sys.stderr)]
    return {
        "op": "run",
        "argv": [sys.argv[0], *argv],
        # How it was started (`python -m gradlint` or the script): click names the program from it.
        "main_package": getattr(sys.modules.get("__main__"), "__package__", None),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "streams": streams,
        "package": PACKAGE_DIRECTORY,
    }


def _wait_for_exit(connection: socket, worker: int) -> int:
    """The worker's exit status. Ctrl-C here is passed on to the worker's process group (it and
    its --jobs workers, as a terminal sends it to a run's), which stops as a process of its own
    would (click's "Aborted!"); a second one stops them outright."""
    interrupts = 0
    while True:
        try:
            reply, _ = receive(connection)
        except KeyboardInterrupt:
            import signal

            interrupts += 1
            _signal(worker, signal.SIGINT if interrupts == 1 else signal.SIGKILL)
            continue
        except (OSError, ProtocolError):
            reply = None
        if reply is None or "exit" not in reply:
            if interrupts:
                return 130
            sys.stderr.write("gradlint: the daemon's worker ended without an exit status\n")
            return EXIT_ERROR
        return int(reply["exit"])


def _signal(worker: int, number: int) -> None:
    try:
        os.killpg(worker, number)
    except OSError:  # it has just finished
        pass
