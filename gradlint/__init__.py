"""gradlint: find exploding-gradient risks in PyTorch training code, statically."""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own import costs ~10 ms, on every command line before this
if TYPE_CHECKING:
    from typing import Any

    from gradlint.findings import Finding, Report, Severity

__version__ = "0.1.0"

__all__ = ["Finding", "Report", "Severity", "__version__"]


def __getattr__(name: str) -> Any:
    """`gradlint.Finding` and friends, imported on first use: every command line imports this
    package first, and the daemon's client (gradlint/launch.py) needs none of them."""
    if name in ("Finding", "Report", "Severity"):
        from gradlint import findings

        return getattr(findings, name)
    raise AttributeError(f"module 'gradlint' has no attribute {name!r}")
