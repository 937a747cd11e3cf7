"""The check daemon: a process that has already imported gradlint, forking one worker per run.

About half of a pre-commit run of `gradlint check` on one training script is start-up: importing
libcst (0.2 s: its ~250 node classes are dataclasses), gradlint's own modules and rules (0.1 s).
No change inside the run can remove that, so `gradlint daemon start` pays it once. The daemon
imports everything, then waits on a Unix socket; `gradlint check` (gradlint/launch.py) hands
it the command line, the working directory, the environment and its own standard streams (the
file descriptors themselves, over SCM_RIGHTS), and the daemon forks a worker that runs the
command exactly as a fresh process would: its own copy of memory, the client's cwd, environment,
umask and terminal, the same exit status. Nothing of one run survives into the next (each worker
exits), so the daemon cannot serve stale findings; it refuses a run, and stops, once gradlint's
own files change on disk, and the client then checks in its own process.

This package's `__init__` and `address` are imported by every `gradlint` invocation, before the
command line is parsed: they import nothing beyond the standard library's light modules.
Linux only (fork, SCM_RIGHTS, SO_PEERCRED); elsewhere `gradlint check` never looks for a daemon.
"""
