"""gradlint: find exploding-gradient risks in PyTorch training code, statically."""

from gradlint.findings import Finding, Report, Severity

__version__ = "0.1.0"

__all__ = ["Finding", "Report", "Severity", "__version__"]
