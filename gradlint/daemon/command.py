"""`gradlint daemon start|stop|status`."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

import click

from gradlint.daemon.address import (
    UnsafeDirectory,
    lock_path,
    log_path,
    make_directory,
    socket_directory,
    socket_path,
    supported,
)
from gradlint.daemon.wire import ProtocolError, receive, send

EXIT_ERROR = 2
START_TIMEOUT = 30.0


@click.group("daemon")
def daemon_command() -> None:
    """Keep gradlint imported in the background, so `gradlint check` starts in milliseconds.

    Most of a pre-commit run on a few files is start-up (importing libcst and the rules). A
    running daemon pays that once: each `gradlint check` then runs in a process forked from it,
    with your working directory, environment and terminal, and gives the same output and exit
    status as without it. Set GRADLINT_NO_DAEMON=1 to bypass it. Linux only.
    """


@daemon_command.command("start")
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Minutes without a `gradlint check` after which the daemon stops.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless it fails.")
def start(idle_timeout: float, quiet: bool) -> None:
    """Start the daemon for this installation of gradlint (does nothing when one is running)."""
    if not supported():
        _fail("the daemon needs Linux (it forks a worker per run); `gradlint check` works without it")
    try:
        make_directory(socket_directory())
        lock = os.open(lock_path(), os.O_WRONLY | os.O_CREAT, 0o600)
    except (UnsafeDirectory, OSError) as error:
        _fail(f"cannot use the daemon's folder: {error}")
    import fcntl

    # Two starts at once (two hooks, GRADLINT_DAEMON=auto) must not make two daemons: the
    # second waits here until the first one's daemon answers, then finds it running.
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        running = _ask({"op": "status"})
        if running is not None:
            if not quiet:
                click.echo(f"gradlint daemon already running (pid {running['pid']}, socket {running['socket']})")
            return
        pid = _spawn(idle_timeout * 60, lock)
    finally:
        os.close(lock)
    if not quiet:
        click.echo(
            f"gradlint daemon started (pid {pid}); `gradlint check` uses it until it has been idle "
            f"for {idle_timeout:g} minutes or `gradlint daemon stop`"
        )


def _spawn(idle_timeout: float, lock: int) -> str:
    """Fork the daemon and wait until it listens; its pid."""
    import select

    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        os.close(read_end)
        os.close(lock)  # or the daemon would hold the start lock for as long as it runs
        _become_daemon(write_end, idle_timeout)
    os.close(write_end)
    os.waitpid(intermediate, 0)  # it forks the daemon and exits at once
    answer = b""
    with os.fdopen(read_end, "rb", buffering=0) as ready:
        deadline = time.monotonic() + START_TIMEOUT
        while b"\n" not in answer and time.monotonic() < deadline:
            readable, _, _ = select.select([ready], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            chunk = ready.read(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode(errors="replace").strip()
    if not text.startswith("ready"):
        _fail(f"the daemon did not start: {text or 'it exited or did not answer in time'} (see {log_path()})")
    return text.partition(" ")[2]


@daemon_command.command("stop")
def stop() -> None:
    """Stop this installation's daemon."""
    if _ask({"op": "stop"}) is None:
        click.echo("no gradlint daemon is running")
        return
    deadline = time.monotonic() + START_TIMEOUT
    while os.path.exists(socket_path()) and time.monotonic() < deadline:
        time.sleep(0.02)
    click.echo("gradlint daemon stopped")


@daemon_command.command("status")
def status() -> None:
    """Say whether this installation's daemon runs (exit 0) or not (exit 1)."""
    running = _ask({"op": "status"})
    if running is None:
        click.echo("no gradlint daemon is running")
        raise click.exceptions.Exit(1)
    uptime = time.time() - float(running["started"])
    click.echo(
        f"gradlint daemon running: pid {running['pid']}, up {uptime:.0f} s, "
        f"{running['served']} runs served, stops after {float(running['idle_timeout']) / 60:g} idle minutes\n"
        f"socket: {running['socket']}"
    )


def _ask(request: dict[str, Any]) -> dict[str, Any] | None:
    """The daemon's answer to `request`, or None when none answers."""
    if not supported():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(START_TIMEOUT)
    try:
        connection.connect(socket_path())
        send(connection, request)
        answer, _ = receive(connection)
        return answer
    except (OSError, ProtocolError):
        return None
    finally:
        connection.close()


def _become_daemon(ready: int, idle_timeout: float) -> None:
    """In the forked child: leave the terminal's session, fork again (so the daemon is no one's
    child and never gets a terminal), log to a file, preload and serve. Never returns."""
    status = 0
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        log = os.open(log_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        os.chdir("/")
        from gradlint.daemon.server import Daemon, preload

        daemon = Daemon(idle_timeout)
        preload()

        def tell_ready(path: str) -> None:
            os.write(ready, f"ready {os.getpid()}\n".encode())
            os.close(ready)

        daemon.serve(tell_ready)
    except BaseException as error:  # noqa: BLE001 - told to the starting command, and logged
        import traceback

        traceback.print_exc()
        try:
            os.write(ready, f"{type(error).__name__}: {error}\n".encode())
        except OSError:
            pass
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(EXIT_ERROR)
