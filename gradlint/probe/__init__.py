"""The dynamic probe: rebuild the module a finding describes and measure its gradient growth.

Importing this package does not import torch (the static path never does): the torch-free
pieces (`ProbeConfig`, `ProbeOptions`, `ProbeResult`, the JSON helpers) live in
`gradlint.probe.config`, `.options`, `.result` and `.jsonsafe`; `probe` / `probe_finding`
import `gradlint.probe.measure` (and with it torch) on first use. Check `torch_available()`
first and print `INSTALL_HINT` when it is False.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from gradlint.probe.config import ProbeConfig, UnsupportedModule
from gradlint.probe.defaults import CAPS, DEFAULTS
from gradlint.probe.jsonsafe import from_json_number, json_number
from gradlint.probe.options import ProbeOptions
from gradlint.probe.result import ProbeResult, RegimeResult

INSTALL_HINT = "pip install 'torch-gradlint[probe]' (from a checkout: pip install -e '.[probe]')"
"""What to tell the user when torch is missing."""

__all__ = [
    "CAPS", "DEFAULTS", "INSTALL_HINT", "ProbeConfig", "ProbeOptions", "ProbeResult",
    "ProbeUnavailable", "RegimeResult", "UnsupportedModule", "from_json_number", "json_number", "load_measure", "probe",
    "probe_finding",
    "torch_available",
]


class ProbeUnavailable(RuntimeError):
    """torch is not installed; the message says how to install the probe extra."""

    def __init__(self) -> None:
        super().__init__(f"the probe needs torch: {INSTALL_HINT}")


def torch_available() -> bool:
    """True when torch can be found (looked up, not imported: cheap, and the static path stays
    torch-free). A module that is found can still fail to import (a broken install, a stub that
    raises ImportError): `load_measure()` tries the import and turns that into
    `ProbeUnavailable`, so callers that are about to probe should use it, not this."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def load_measure():
    """Import `gradlint.probe.measure` (and torch, once per process); `ProbeUnavailable` when
    torch is missing or cannot be imported."""
    if not torch_available():
        raise ProbeUnavailable()
    import warnings

    try:
        with warnings.catch_warnings():
            # torch warns at import when numpy is absent; the probe does not use numpy.
            warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
            from gradlint.probe import measure
    except ImportError as error:
        raise ProbeUnavailable() from error
    return measure


def probe(config: ProbeConfig | dict, options: ProbeOptions | None = None) -> ProbeResult:
    """See `gradlint.probe.measure.probe` (imports torch on first call)."""
    return load_measure().probe(config, options)


def probe_finding(data: dict | None, options: ProbeOptions | None = None, **overrides: Any) -> ProbeResult:
    """See `gradlint.probe.measure.probe_finding` (imports torch on first call)."""
    return load_measure().probe_finding(data, options, **overrides)
