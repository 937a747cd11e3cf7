"""Checks one file: read -> pre-filter -> parse -> model (one walk) -> rules -> findings.

Positions are the one expensive libcst metadata gradlint needs; they are resolved only
for files that have something to report.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping

from gradlint.findings import Finding, InternalError, Related, SkippedFile
from gradlint.notebook import NotebookError, NotebookSource, read_notebook
from gradlint.rules import ENTRIES_BY_CODE, META_CODES, load_rule
from gradlint.source import (  # noqa: F401  (re-exported: the engine's public names)
    LazyPositions,
    Parsed,
    ParseFailure,
    SourceError,
    SourceFile,
    cpython_parse,
    read_source,
)
from gradlint.suppress import parse_suppressions
from gradlint.texts import release

if TYPE_CHECKING:
    from gradlint.rules.base import Diagnostic, Rule
    from gradlint.index.deps import Dependency

PARSE_ERROR, UNUSED_SUPPRESSION = "GL000", "GL001"

@dataclass
class FileResult:
    path: Path
    display_path: str = ""
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    skipped: SkippedFile | None = None
    suppressed: int = 0
    dependencies: Collection[Dependency] = field(default_factory=set)
    """The cross-file facts the findings rest on (see gradlint/index/deps.py)."""


class FileChecker:
    """Runs the enabled rules on files; one instance per run.

    Rules are given as classes or as codes. A rule given by its code is imported (and its
    options read) only when a file holds one of its trigger words: a run over files that hold
    none imports no rule at all."""

    def __init__(
        self,
        rules: Iterable[type[Rule] | str],
        options: Mapping[str, Mapping[str, Any]] | None = None,
        report_unused_ignores: bool = False,
        declared: Mapping[str, str] | None = None,
    ) -> None:
        given: dict[str, type[Rule] | None] = {}
        for rule in rules:
            code = rule if isinstance(rule, str) else rule.code
            if code in ENTRIES_BY_CODE:
                given[code] = None if isinstance(rule, str) else rule
        self.enabled_codes = set(given)
        self.configured_options = {
            code: dict(values) for code, values in (options or {}).items() if values and code in ENTRIES_BY_CODE
        }
        """The options the configuration sets, for every registered rule, enabled or not: a rule may
        read another's settings (GL101 judges learning rates by GL401's limits). Defaults come with
        each rule's class."""
        self._rules: list[tuple[str, tuple[str, ...], type[Rule] | None]] = [
            (code, rule.triggers if rule is not None else ENTRIES_BY_CODE[code].triggers, rule)
            for code, rule in given.items()
            if code not in META_CODES
        ]
        self._instances: dict[str, Rule] = {}
        self._options: dict[str, dict[str, Any]] = {}
        self.report_unused_ignores = report_unused_ignores
        self.declared: dict[str, str] = dict(declared or {})
        """The configuration's `clip-functions` / `detach-functions` (qualified name -> 'clip' /
        'detach'), for the project index."""
        self.rule_options = _AllOptions(self)
        """Any registered rule's options, read on demand (a rule is imported when asked for)."""
        self.triggers = tuple(sorted({trigger for _, triggers, _ in self._rules for trigger in triggers}))

    @property
    def rules(self) -> list[Rule]:
        """Every enabled rule, instantiated (imports all of them)."""
        return [self._instance(code, given) for code, _, given in self._rules]

    @property
    def options(self) -> dict[str, dict[str, Any]]:
        """Each enabled rule's options, defaults overlaid with the configured ones (imports every rule)."""
        return {code: self._options_of(code, given) for code, _, given in self._rules}

    def _instance(self, code: str, given: type[Rule] | None) -> Rule:
        rule = self._instances.get(code)
        if rule is None:
            rule = self._instances[code] = (given or load_rule(code))()
        return rule

    def _options_of(self, code: str, given: type[Rule] | None = None) -> dict[str, Any]:
        options = self._options.get(code)
        if options is None:
            rule = given or load_rule(code)
            options = self._options[code] = {**rule.default_options(), **self.configured_options.get(code, {})}
        return options

    # ------------------------------------------------------------------ phase 1

    def load(self, path: Path, display_path: str, ignored_codes: frozenset[str] = frozenset()) -> SourceFile:
        if path.suffix.lower() == ".ipynb":
            try:
                notebook = read_notebook(path)
            except NotebookError as error:
                return SourceFile(path, display_path, skipped=SkippedFile(display_path, f"not a valid notebook: {error}"))
            source = self.load_text(notebook.text, path, display_path, ignored_codes)
            source.notebook = notebook
            return source
        try:
            text = read_source(path)
        except SourceError as error:
            return SourceFile(path, display_path, skipped=SkippedFile(display_path, str(error)))
        source = self.load_text(text, path, display_path, ignored_codes)
        # Read again when needed (gradlint.texts): a run holding every text to its end held 74 MiB
        # on the 2,000-file corpus, and texts freed later leave holes small objects cannot use.
        source.from_disk = True
        release(source, source.disk_text())
        return source

    def load_text(
        self, text: str, path: Path, display_path: str, ignored_codes: frozenset[str] = frozenset()
    ) -> SourceFile:
        source = SourceFile(path, display_path, text, ignored_codes)
        source.needs_parse = any(trigger in text for trigger in self.triggers)
        return source

    # ------------------------------------------------------------------ phase 2

    def check(self, source: SourceFile, project: Any) -> FileResult:
        """Parse (through the project index, which may have parsed it already), run the rules,
        apply suppressions. Every cross-file question is noted in `result.dependencies`."""
        result = FileResult(source.path, source.display_path, skipped=source.skipped)
        if source.text is None or source.skipped is not None:
            return result
        with project.deps.recording() as dependencies:
            source.suppressions = parse_suppressions(source.text)
            if not source.suppressions.file_ignored:
                self._analyse(source, project, result)
            result.suppressed = self.apply_suppressions(result, source)
        # Kept with the result to the end of the run (21 MiB of sets on the 2,000-file corpus): a
        # tuple of the dependency tuples the index shares (DependencyLog.kept).
        result.dependencies = project.deps.kept(dependencies)
        if source.notebook is not None:
            _locate_in_cells(result.findings, source.notebook)
        return result

    def _analyse(self, source: SourceFile, project: Any, result: FileResult) -> None:
        assert source.text is not None
        report_parse_errors = PARSE_ERROR in self.enabled_codes and PARSE_ERROR not in source.ignored_codes
        if not source.needs_parse:
            # Nothing a rule could report, but a syntax error is still worth knowing about:
            # CPython's C parser checks that at a fraction of libcst's cost. Only when it
            # refuses the file does libcst decide too (the file may be for a newer Python).
            if not report_parse_errors or _cpython_syntax_error(source.text) is None:
                return
        parsed = project.parsed(source.path)
        if isinstance(parsed, ParseFailure):
            if parsed.skip is not None:
                result.skipped = SkippedFile(source.display_path, parsed.skip)
            elif report_parse_errors and parsed.syntax is not None:
                result.findings.append(
                    self._parse_error(source.path, source.display_path, source.lines, *parsed.syntax)
                )
            return
        if isinstance(parsed, Parsed) and source.needs_parse:
            source.model, source.positions = parsed.model, parsed.positions
            self._run_rules(source, project, result)

    def _run_rules(self, source: SourceFile, project: Any, result: FileResult) -> None:
        assert source.model is not None and source.positions is not None and source.text is not None
        positions, lines = source.positions, source.lines
        line_of = source.line_of
        if source.notebook is not None:  # messages name a notebook's lines by cell
            notebook = source.notebook
            line_of = lambda node: notebook.cell_line(source.line_of(node))  # noqa: E731
        from gradlint.rules.base import RuleContext

        text = source.text
        for code, triggers, given in self._rules:
            if code in source.ignored_codes or not any(t in text for t in triggers):
                continue
            rule = self._instance(code, given)
            context = RuleContext(
                options=self._options_of(code, given), line_of=line_of, project=project, source=source,
                rule_options=self.rule_options,
            )
            try:
                diagnostics = list(rule.check(source.model, context))
            except Exception as error:  # a crashing rule must not take the run down
                frame = traceback.extract_tb(error.__traceback__)[-1]
                result.errors.append(
                    InternalError(
                        source.display_path,
                        f"{rule.code} crashed: {type(error).__name__}: {error} "
                        f"({Path(frame.filename).name}:{frame.lineno})",
                        rule.code,
                    )
                )
                continue
            for diagnostic in _unique(diagnostics):
                finding = self._finding(rule, diagnostic, source.path, source.display_path, lines, _Locator(positions, project, source.path))
                if rule.fix is not None:
                    self._attach_fix(finding, diagnostic, source)
                else:
                    finding.fix_safety = None  # the rule has no fix to be safe or unsafe
                result.findings.append(finding)

    @staticmethod
    def _attach_fix(finding: Finding, diagnostic: Diagnostic, source: SourceFile) -> None:
        """Resolve the rule's fix into line edits; say "no automatic fix" when it cannot be made."""
        from gradlint.fix.edits import NO_FIX, Resolver

        fix = None
        reason = "no automatic fix here"
        if source.notebook is not None:
            reason = "no automatic fix in notebooks"
        else:
            assert source.positions is not None and source.text is not None
            resolver = source.fix_resolver
            if resolver is None:
                resolver = source.fix_resolver = Resolver(
                    source.positions.module, source.text, source.positions.start, source.positions.statement_index
                )
            try:
                fix = resolver.resolve(diagnostic.fix) if diagnostic.fix is not None else None
            except Exception:  # a fix that cannot be computed is not made
                fix = None
        finding.fix = fix
        if fix is None:
            assert NO_FIX in reason
            finding.hint = f"{finding.hint} ({reason})" if finding.hint else f"{reason[0].upper()}{reason[1:]}."

    def apply_suppressions(self, result: FileResult, source: SourceFile) -> int:
        """Drop suppressed findings; report unused suppressions as GL001. Returns the count dropped."""
        suppressions, lines = source.suppressions, source.lines
        if suppressions is None or not suppressions.by_line:
            return 0
        kept = [
            finding
            for finding in result.findings
            if not suppressions.is_suppressed(finding.code, {finding.line, finding.end_line})
        ]
        dropped = len(result.findings) - len(kept)
        result.findings = kept
        if self.report_unused_ignores and UNUSED_SUPPRESSION in self.enabled_codes:
            entry = ENTRIES_BY_CODE[UNUSED_SUPPRESSION]
            severity = load_rule(UNUSED_SUPPRESSION).severity
            for unused in suppressions.unused(enabled=self.enabled_codes):
                codes = ", ".join(sorted(unused.codes)) if unused.codes else "all rules"
                line_text = lines[unused.line - 1] if 0 < unused.line <= len(lines) else ""
                result.findings.append(
                    Finding(
                        code=entry.code,
                        name=entry.name,
                        severity=severity,
                        message=f"this suppression of {codes} matches no finding on its line",
                        path=result.path,
                        display_path=result.display_path,
                        line=unused.line,
                        column=unused.column,
                        end_line=unused.line,
                        end_column=max(unused.column, len(line_text) + 1),
                        hint="Remove the comment, or move it to the line the finding is reported on.",
                        source_line=line_text,
                    )
                )
        return dropped

    @staticmethod
    def _parse_error(path: Path, display_path: str, lines: list[str], line: int, column: int, message: str) -> Finding:
        return Finding(
            code=PARSE_ERROR,
            name=ENTRIES_BY_CODE[PARSE_ERROR].name,
            severity=load_rule(PARSE_ERROR).severity,
            message=f"cannot parse this file: {message}",
            path=path,
            display_path=display_path,
            line=line,
            column=column,
            end_line=line,
            end_column=column,
            hint="Fix the syntax error; gradlint checks nothing else in a file it cannot parse.",
            source_line=lines[line - 1] if 0 < line <= len(lines) else "",
        )

    @staticmethod
    def _finding(
        rule: Rule,
        diagnostic: Diagnostic,
        path: Path,
        display_path: str,
        lines: list[str],
        positions: "_Locator",
    ) -> Finding:
        (line, column), (end_line, end_column) = positions.span(diagnostic.node)
        related = tuple(
            Related(*positions.start(node), message) for node, message in diagnostic.related
        )
        return Finding(
            code=rule.code,
            name=rule.name,
            severity=diagnostic.severity or rule.severity,
            message=diagnostic.message,
            path=path,
            display_path=display_path,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            hint=diagnostic.hint,
            related=related,
            source_line=lines[line - 1] if 0 < line <= len(lines) else "",
            fix_safety=diagnostic.fix_safety,
            data=diagnostic.data,
        )


def _locate_in_cells(findings: list[Finding], notebook: NotebookSource) -> None:
    """Give notebook findings their cell and line in the cell (lines stay those of the joined code)."""
    for finding in findings:
        location = notebook.locate(finding.line)
        if location is not None:
            finding.cell, finding.cell_line = location
            original = notebook.original_line(finding.line)
            if original is not None:
                finding.source_line = original
        related = []
        for item in finding.related:
            where = notebook.locate(item.line)
            related.append(Related(item.line, item.column, item.message, *where) if where else item)
        finding.related = tuple(related)


def _cpython_syntax_error(text: str) -> tuple[int, int, str] | None:
    """CPython's own report, which locates errors more precisely than libcst's."""
    try:
        cpython_parse(text)
    except SyntaxError as syntax:
        return max(1, syntax.lineno or 1), max(1, syntax.offset or 1), syntax.msg
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    seen: dict[int, Diagnostic] = {}
    unique = []
    for diagnostic in diagnostics:
        kept = seen.get(id(diagnostic.node))
        if kept is None:
            seen[id(diagnostic.node)] = diagnostic
            unique.append(diagnostic)
        elif kept.fix is None and diagnostic.fix is not None:
            kept.fix = diagnostic.fix  # the same finding seen from a context where it can be fixed
    return unique


class _Locator:
    """Positions of a finding's nodes: the checked file's own tree, or a node the project index
    found in the file's summary (an optimizer built in this file, reached through the index)."""

    def __init__(self, positions: "LazyPositions", project: Any, path: Path) -> None:
        self.positions, self.project, self.path = positions, project, path

    def span(self, node: Any) -> tuple[tuple[int, int], tuple[int, int]]:
        if not self.positions.holds(node) and self.project is not None:
            found = self.project.span_of(self.path, node)
            if found is not None:
                return found
        return self.positions.span(node)

    def start(self, node: Any) -> tuple[int, int]:
        return self.span(node)[0]


class _AllOptions(Mapping[str, Mapping[str, Any]]):
    """`checker.rule_options[code]`: a registered rule's options, built when first read."""

    def __init__(self, checker: FileChecker) -> None:
        self._checker = checker

    def __getitem__(self, code: str) -> Mapping[str, Any]:
        if code not in ENTRIES_BY_CODE:
            raise KeyError(code)
        return self._checker._options_of(code)

    def __iter__(self):
        return iter(ENTRIES_BY_CODE)

    def __len__(self) -> int:
        return len(ENTRIES_BY_CODE)
