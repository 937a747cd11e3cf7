"""The `gradlint` console script (also `python -m gradlint`).

`gradlint check` first asks a running check daemon (gradlint/daemon) to do the run, which then
costs no imports here: this module and the daemon's client import only light standard modules.
Without a daemon (the usual case, and always off Linux), or with GRADLINT_NO_DAEMON set, the
command line runs in this process (gradlint.cli); with GRADLINT_DAEMON=auto, a check that
finds no daemon also starts one in the background, for the checks after it.
"""

from __future__ import annotations

import os
import sys


def run() -> None:
    arguments = sys.argv[1:]
    if arguments[:1] == ["check"] and not os.environ.get("GRADLINT_NO_DAEMON"):
        from gradlint.daemon.client import run_in_daemon, start_in_background

        status = run_in_daemon(arguments)
        if status is not None:
            sys.stderr.flush()
            os._exit(status)
        if os.environ.get("GRADLINT_DAEMON") == "auto":
            start_in_background()
    from gradlint.cli import run as run_here

    run_here()
