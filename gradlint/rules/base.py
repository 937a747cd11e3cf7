"""The rule unit: one code, one kebab-case name, one severity, one summary, one check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Mapping

from gradlint.findings import Severity

if TYPE_CHECKING:
    import libcst as cst

    from gradlint.analysis.model import FileModel


@dataclass(frozen=True)
class Option:
    """A per-rule setting, read from `[tool.gradlint.GLxxx]` (kebab-case key)."""

    name: str
    default: Any
    help: str

    def coerce(self, value: Any) -> Any:
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ValueError(
                f"option {self.name!r} expects {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        return value


@dataclass
class Diagnostic:
    """What a rule reports: a node, the message, the fix, and the sites that explain it."""

    node: cst.CSTNode
    message: str
    hint: str | None = None
    related: tuple[tuple[cst.CSTNode, str], ...] = ()
    severity: Severity | None = None
    """Overrides the rule's default severity (e.g. GL101 without a risk factor is info)."""
    fix_safety: str | None = None
    data: dict | None = None
    """The resolved configuration behind the finding (JSON `data`, SARIF `properties.gradlint`)."""
    fix: Any = None
    """A `gradlint.fix.FixSpec` (what `--fix` inserts), or None when the rule has no fix here."""


@dataclass
class RuleContext:
    """What a rule may read besides the file: its options, and where nodes are."""

    options: dict[str, Any] = field(default_factory=dict)
    line_of: Callable[[cst.CSTNode], int] = lambda node: 0
    """The 1-based line of a node (positions are resolved on first use)."""
    project: Any = None
    """The project index (`gradlint.index.ProjectIndex`): cross-file facts and value resolution."""
    source: Any = None
    """The `gradlint.engine.SourceFile` being checked."""
    rule_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Every rule's options by code, for a rule that shares another's settings (GL101 uses
    GL401's learning-rate limits)."""


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity]
    summary: ClassVar[str]
    options: ClassVar[tuple[Option, ...]] = ()
    fix: ClassVar[str | None] = None
    """"safe" or "unsafe" when the rule can fix what it finds (`--fix`), else None."""
    triggers: ClassVar[tuple[str, ...]] = ("backward",)
    """Substrings a file must contain for this rule to be able to fire (cheap pre-filter)."""

    def check(self, model: "FileModel", ctx: RuleContext) -> Iterator[Diagnostic]:
        raise NotImplementedError

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {option.name: option.default for option in cls.options}
