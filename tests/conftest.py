from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The suite's `gradlint check` subprocesses run in their own process: a check daemon the developer
# started (`gradlint daemon start`) must not serve them (nor tell them it is stale while gradlint's
# files are being edited). tests/test_daemon.py starts daemons of its own, in folders of its own.
import os  # noqa: E402

os.environ["GRADLINT_NO_DAEMON"] = "1"


@pytest.fixture
def repo() -> Path:
    return REPO


def pytest_configure(config: pytest.Config) -> None:
    """CI (`.ci/run`) sets GRADLINT_REQUIRE_PROBE=1: the probe's tests must run there, so a
    missing torch fails the run instead of skipping them silently."""
    import importlib.util
    import os

    if not os.environ.get("GRADLINT_REQUIRE_PROBE"):
        return
    try:
        found = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise pytest.UsageError(
            "GRADLINT_REQUIRE_PROBE is set but torch is not installed: the probe's tests would be skipped "
            "(install it as the README's test command does: pip install torch==2.13.0 && pip install -e '.[test,probe]')"
        )
