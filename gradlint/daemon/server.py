"""The daemon: import everything once, then fork a worker for each `gradlint check`.

A worker becomes the client's process in all that a run can see: the client's standard streams
(the descriptors themselves, so a terminal is still a terminal), working directory,
environment, umask and command line; it runs `gradlint.cli.run_main` and sends the exit status
back. The daemon keeps no state of any run: each worker has its own copy of memory and exits.

The daemon stops after `idle_timeout` seconds without a request, on `gradlint daemon stop`,
on SIGTERM, and as soon as gradlint's files on disk no longer match those it imported (it
declines that run: the client checks in its own process with the new code).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import os
import pkgutil
import signal
import socket
import struct
import sys
import time
import traceback
from typing import Any

from gradlint.daemon.address import PACKAGE_DIRECTORY, code_fingerprint, socket_path
from gradlint.daemon.wire import ProtocolError, close_descriptors, receive, send

REQUEST_TIMEOUT = 10.0
"""Seconds a client may take to send its request; the daemon serves one connection at a time
until it has forked, so a client that connects and says nothing must not hold it."""
STALE = "gradlint's files changed since the daemon started, so it stopped (`gradlint daemon start` starts a new one)"
SKIPPED_PACKAGES = ("gradlint.probe", "gradlint.server", "gradlint.daemon")
"""Not imported in advance: the probe imports torch when used, the language server pygls."""

_WARM_UP = '''
import argparse
import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_


class CharRNN(nn.Module):
    def __init__(self, vocab, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = nn.RNN(hidden, hidden, num_layers=layers, nonlinearity="relu")
        self.head = nn.Linear(hidden, vocab)
        nn.init.normal_(self.head.weight, std=1.0)

    def forward(self, x, h):
        out, h = self.rnn(self.embed(x), h)
        return self.head(out), h


def train(args):
    model = CharRNN(128, args.hidden, args.layers)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    scaler = torch.cuda.amp.GradScaler()
    for x, y in []:
        optimizer.zero_grad()
        with torch.autocast("cuda"):
            out, _ = model(x, None)
            loss = nn.functional.cross_entropy(out, y)
        scaler.scale(loss).backward()
        clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()


parser = argparse.ArgumentParser()
parser.add_argument("--hidden", type=int, default=512)
parser.add_argument("--layers", type=int, default=6)
parser.add_argument("--lr", type=float, default=1.0)
train(parser.parse_args())
'''
"""A training script with a finding for most rules: checking it once before the first fork
fills what a first run otherwise fills on its own (lazy rule imports, regular expressions,
libcst's parser). It is checked in memory; nothing on disk is read."""


def preload() -> None:
    """Import what a `gradlint check` may import, then check `_WARM_UP`, then move every
    object made so far out of the collector's sight (workers never walk them)."""
    import libcst  # noqa: F401

    import gradlint

    for module in pkgutil.walk_packages(gradlint.__path__, "gradlint."):
        if not module.name.startswith(SKIPPED_PACKAGES):
            importlib.import_module(module.name)
    import rich.console
    import rich.markup  # noqa: F401

    from gradlint.api import lint_sources

    lint_sources({"train.py": _WARM_UP})
    gc.collect()
    gc.freeze()


class StopServing(Exception):
    pass


class Daemon:
    """Made before `preload`: the fingerprint is that of the files it is about to import."""

    def __init__(self, idle_timeout: float) -> None:
        self.idle_timeout = idle_timeout
        self.path = socket_path()
        self.fingerprint = code_fingerprint()
        self.started = time.time()
        self.served = 0
        self.listener: socket.socket | None = None

    def serve(self, ready: Any = None) -> None:
        """Listen, tell `ready` (a callable, given the socket's path) and serve until stopped."""
        listener = self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        staging = f"{self.path}.{os.getpid()}"
        try:
            listener.bind(staging)
            listener.listen(16)
            os.replace(staging, self.path)  # atomically, over a socket a dead daemon left
        except BaseException:
            listener.close()
            with contextlib.suppress(OSError):
                os.unlink(staging)
            raise
        inode = os.stat(self.path).st_ino
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
        signal.signal(signal.SIGTERM, _stop_on_signal)
        if ready is not None:
            ready(self.path)
        try:
            while True:
                listener.settimeout(self.idle_timeout)
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    return
                with connection:
                    self.handle(connection)
        except StopServing:
            return
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == inode:  # not a newer daemon's socket
                    os.unlink(self.path)

    def handle(self, connection: socket.socket) -> None:
        if not _same_user(connection):
            return
        connection.settimeout(REQUEST_TIMEOUT)
        try:
            request, fds = receive(connection, max_fds=3)
        except (OSError, ProtocolError):
            request, fds = None, []
        if request is None:
            # A newer gradlint may speak another protocol: if that is why, this daemon is stale.
            if self.stale():
                raise StopServing
            return
        try:
            operation = request.get("op")
            if operation == "status":
                send(connection, self.status())
            elif operation == "stop":
                send(connection, {"stopping": True})
                raise StopServing
            elif operation == "run":
                self.run(connection, request, fds)
            else:
                send(connection, {"refused": f"unknown request {operation!r}"})
        except OSError:  # the client went away
            pass
        finally:
            close_descriptors(fds)

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started": self.started,
            "served": self.served,
            "socket": self.path,
            "idle_timeout": self.idle_timeout,
            "package": PACKAGE_DIRECTORY,
        }

    def refusal(self, request: dict[str, Any], fds: list[int]) -> str | None:
        """Why this run must not be served here, or None."""
        if request.get("package") != PACKAGE_DIRECTORY:
            return f"the daemon runs the gradlint in {PACKAGE_DIRECTORY}, not this one"
        if len(fds) != 3:
            return "the request came without its standard streams"
        return None

    def stale(self) -> bool:
        """Whether gradlint's files (or its dependencies') changed since it started, or are gone
        (an uninstalled or moved environment)."""
        try:
            return code_fingerprint() != self.fingerprint
        except OSError:
            return True

    def run(self, connection: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        if self.stale():
            send(connection, {"refused": STALE})
            raise StopServing
        reason = self.refusal(request, fds)
        if reason is not None:
            send(connection, {"refused": reason})
            return
        self.served += 1
        if os.fork() == 0:
            status = 0
            try:
                self.listener.close()
                status = _work(connection, request, fds)
            finally:
                os._exit(status)


def _work(connection: socket.socket, request: dict[str, Any], fds: list[int]) -> int:
    """In the forked worker: become the client's process, run the command line, report."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setpgid(0, 0)  # a group of its own and of its --jobs workers: the client's Ctrl-C reaches them all
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        fds.clear()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.umask(int(request["umask"]))
        _standard_streams(request.get("streams") or [None, None, None])
        sys.argv = list(request["argv"])
        main = sys.modules.get("__main__")
        if main is not None:  # the daemon's; click reads the program's name from it and argv[0]
            main.__package__ = request.get("main_package")
    except (OSError, KeyError, TypeError, ValueError) as error:  # e.g. the client's cwd is gone
        send(connection, {"refused": f"the daemon could not take over this command line ({error})"})
        return 0
    connection.settimeout(None)
    send(connection, {"pid": os.getpid()})
    try:
        from gradlint.cli import run_main

        status = run_main()
    except BaseException:  # noqa: BLE001 - run_main handles its own errors: a bug, shown, exit 2
        traceback.print_exc()
        status = 2
    try:
        send(connection, {"exit": status})
    except OSError:  # the client is gone (killed while it waited)
        pass
    return 0


def _standard_streams(encodings: list[Any]) -> None:
    """Text streams over descriptors 0-2 as the client's interpreter made them."""
    names = ("stdin", "stdout", "stderr")
    for fd, (name, encoding) in enumerate(zip(names, encodings)):
        if encoding is None:
            continue
        text_encoding, errors = encoding
        buffered = open(fd, "rb" if fd == 0 else "wb", closefd=False)
        interactive = os.isatty(fd)
        stream = io.TextIOWrapper(
            buffered, encoding=text_encoding, errors=errors, line_buffering=fd == 2 or interactive
        )
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _same_user(connection: socket.socket) -> bool:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    return uid == os.getuid()


def _stop_on_signal(_signal: int, _frame: Any) -> None:
    raise StopServing
