"""The pipeline, top to bottom: files -> parse -> project index -> rules -> findings ->
suppressions -> baseline / changed lines -> (fixes, then the check again) -> probe -> report.

`check()` is the whole of `gradlint check`, usable as a library: it returns the `Report`,
with what the later stages did (stale baseline entries, fixes, the probe's summary) on it as
data; the CLI only prints. `lint_paths` and `lint_sources` are the checking stages alone
(files to findings), for the tests, the rule documents' harness and the benchmarks.
`check_documents` is the checking stages for an editor (`gradlint server`): open buffers,
unsaved edits included, checked over the project on disk.
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Iterable, Mapping, Protocol, Sequence

from gradlint.baseline import Baseline, Entry, apply, load, scope
from gradlint.cache import Cache
from gradlint.changes import ChangedLines, changed_lines
from gradlint.config import Config
from gradlint.discovery import Discovery, discover
from gradlint.engine import FileChecker, FileResult, SourceFile
from gradlint.findings import Finding, InternalError, Report, SkippedFile
from gradlint.index import ProjectIndex
from gradlint.index.deps import Dependency
from gradlint.notebook import NotebookError, parse_notebook
from gradlint.parallel import check_one, check_parallel, worth_parallel
from gradlint.rules import ALL_RULES, RULES_BY_CODE, expand_selector
from gradlint.source import ParsedFiles, reusing

if TYPE_CHECKING:  # the static path never imports the probe (see _probe)
    from gradlint.probe import ProbeOptions


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


Stages = Callable[[str], ContextManager["Progress | None"]]
"""A progress display per stage: called with "checking" or "probing" (gradlint.progress.Bars)."""


def check(
    paths: Sequence[Path],
    config: Config,
    *,
    baseline: Baseline | Path | None = None,
    changed_since: str | None = None,
    probe: "ProbeOptions | None" = None,
    fix: bool = False,
    unsafe_fixes: bool = False,
    report_unused_ignores: bool = False,
    cwd: Path | None = None,
    jobs: int = 1,
    cache_dir: Path | None = None,
    progress: Stages | None = None,
) -> Report:
    """Check `paths` and report as `gradlint check` does.

    `baseline` (a Baseline, or the path of one): drop the findings it records; entries that
    match nothing are `report.stale_entries`. `changed_since` (a git revision): report only
    findings on lines changed since then. `fix`: apply the safe fixes (`unsafe_fixes`: all of
    them) in place, then check again; `report.fixes` says what changed. `probe`: measure the
    findings' gradient growth with torch; `report.probe_summary`, or `report.probe_error`.

    Raises BaselineError (gradlint.baseline) or ChangesError (gradlint.changes), before
    anything is checked, for a baseline or a revision that cannot be read.
    """
    if baseline is not None and not isinstance(baseline, Baseline):
        baseline = load(Path(baseline))
    changed = changed_lines(paths, changed_since) if changed_since is not None else None
    lint = functools.partial(
        _lint, config=config, report_unused_ignores=report_unused_ignores, cwd=cwd, jobs=jobs, cache_dir=cache_dir
    )
    report = _checked(paths, config, lint, baseline, changed, progress)
    if fix:
        from gradlint.fix.files import fix_files  # libcst's edits: only a run that fixes needs them

        fixes = fix_files(report, unsafe_fixes)
        report = _checked(paths, config, lint, baseline, changed, progress)  # what the fixes left
        report.fixes = fixes
    if probe is not None:
        _probe(report, probe, progress)
    return report


def _checked(
    paths: Sequence[Path],
    config: Config,
    lint: Callable[..., Report],
    baseline: Baseline | None,
    changed: ChangedLines | None,
    progress: Stages | None,
) -> Report:
    """One check of `paths` (`lint`: `_lint` with the run's settings), with only the findings
    the user asked to see."""
    discovery = discover(paths, config)
    with _stage(progress, "checking") as bar:
        report = lint(discovery, progress=bar)
    if baseline is not None:  # before the changed lines: every finding may match an entry
        checked = scope(report.root, discovery.files, paths, config.enabled_codes())
        _apply_baseline(report, baseline, checked)
    if changed is not None:  # only reporting is filtered: the check saw the whole project
        report.findings = changed.filter(report.findings)
    return report


def lint_paths(
    paths: Sequence[Path],
    config: Config,
    *,
    report_unused_ignores: bool = False,
    cwd: Path | None = None,
    jobs: int = 1,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Report:
    """Lint files and folders. `jobs`: worker processes; `cache_dir`: the results cache (None:
    no cache); `progress`: told how many files there are and as each is done."""
    return _lint(
        discover(paths, config),
        config,
        report_unused_ignores=report_unused_ignores,
        cwd=cwd,
        jobs=jobs,
        cache_dir=cache_dir,
        progress=progress,
    )


def _lint(
    discovery: Discovery,
    config: Config,
    *,
    report_unused_ignores: bool = False,
    cwd: Path | None = None,
    jobs: int = 1,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Report:
    """Phase 1: read every discovered file; then phase 2 (`_report`); then the configured
    severities."""
    cwd = (cwd or Path.cwd()).resolve()
    checker = FileChecker(
        sorted(config.enabled_codes()),  # by code: a rule is imported when a file wants it
        {code: dict(options) for code, options in config.rule_options.items()},
        report_unused_ignores=report_unused_ignores,
        declared=config.declared_functions,
    )
    sources = [
        checker.load(path, display_path(path, cwd), frozenset(config.ignored_codes_for(path)))
        for path in discovery.files
    ]
    cache = Cache(cache_dir, checker, cwd) if cache_dir is not None else None
    report = _report(
        checker,
        sources,
        report_root(discovery.files, cwd, config.root),
        roots=[config.root, cwd],
        jobs=jobs,
        cache=cache,
        progress=progress,
    )
    report.skipped.extend(SkippedFile(path, reason) for path, reason in discovery.warnings)
    report.errors.extend(InternalError(path, "no such file or directory") for path in discovery.missing)
    for finding in report.findings:
        finding.severity = config.severity_for(finding.code, finding.severity)
    return report


def lint_sources(
    files: Mapping[str, str],
    *,
    select: Iterable[str] | None = None,
    rule_options: Mapping[str, Mapping[str, Any]] | None = None,
    report_unused_ignores: bool = False,
    clip_functions: Iterable[str] = (),
    detach_functions: Iterable[str] = (),
) -> list[Finding]:
    """Lint in-memory files (name -> source) as one project: the doc examples' harness.
    `clip_functions` / `detach_functions`: as the configuration's `clip-functions` /
    `detach-functions`."""
    codes: set[str] = set()
    for selector in select or ["ALL"]:
        codes |= expand_selector(selector)
    options: dict[str, dict[str, Any]] = {}
    for code, values in (rule_options or {}).items():
        rule = RULES_BY_CODE[code]
        declared = {option.name: option for option in rule.options}
        options[code] = {name: declared[name].coerce(value) for name, value in values.items()}
    functions = {name: "detach" for name in detach_functions} | {name: "clip" for name in clip_functions}
    checker = FileChecker(
        [rule for rule in ALL_RULES if rule.code in codes],
        options,
        report_unused_ignores=report_unused_ignores,
        declared=functions,
    )
    root = Path("/gradlint-sources")
    sources = [checker.load_text(text, root / name, name) for name, text in files.items()]
    return _report(checker, sources, root, roots=[root]).findings


@dataclass
class CheckedDocument:
    """One document checked by `check_documents`."""

    result: FileResult
    """Its findings (configured severities applied), internal errors and suppressed count."""
    facts: dict[Dependency, str] = field(default_factory=dict)
    """Every cross-file fact the result rests on (FileResult.dependencies), with the value it read:
    hand it back as `known` and the document is checked again only when one reads differently."""
    excluded: bool = False
    """The configuration (exclude, .gitignore, the default excludes) leaves this file out of the
    project, so it was not checked, as `gradlint check ROOT` would not check it."""


def check_documents(
    documents: Mapping[Path, str],
    config: Config,
    *,
    root: Path | None,
    check: Iterable[Path] | None = None,
    known: Mapping[Path, Mapping[Dependency, str]] | None = None,
    report_unused_ignores: bool = False,
    parsed_files: ParsedFiles | None = None,
) -> dict[Path, CheckedDocument]:
    """Check editor buffers as `gradlint check ROOT` would check them, unsaved edits included.

    `documents`: absolute path -> the buffer's text (for a `.ipynb`, the notebook's JSON). The
    project is every file discovery finds under `root` (read from disk, excludes and .gitignore
    honoured), with the buffers in place of the files on disk, so a cross-file fact (the
    `nn.RNN` of an unsaved `model.py`) is read from the buffer. `root` None: the project is the
    buffers alone (files they import are still read from disk, as for any run).

    Checked and returned: the documents in `check` (every document when None), and each document
    of `known` (path -> the `facts` of its previous result) some fact of which now reads
    differently, e.g. the `train.py` whose model class lives in the `model.py` just edited. A
    document under `root` that discovery leaves out (but that exists on disk) is returned with
    `excluded` set and no findings.

    `parsed_files`: parse results to reuse and add to, kept by the caller from one call to the
    next (the files a cross-file question reaches are then parsed once, not on every change).
    """
    checker = FileChecker(
        [RULES_BY_CODE[code] for code in sorted(config.enabled_codes())],
        {code: dict(options) for code, options in config.rule_options.items()},
        report_unused_ignores=report_unused_ignores,
    )
    on_disk = discover([root], config).files if root is not None else []
    included = set(on_disk)
    sources: dict[Path, SourceFile] = {}
    for path in on_disk:
        if path not in documents:
            sources[path] = checker.load(path, display_path(path, root), config.ignored_codes_for(path))
    excluded: set[Path] = set()
    for path, text in documents.items():
        if root is not None and path not in included and _inside(path, root) and path.exists():
            excluded.add(path)
            continue
        name = display_path(path, root if root is not None else path.parent)
        sources[path] = _document_source(checker, text, path, name, config.ignored_codes_for(path))
    project = ProjectIndex(list(sources.values()), roots=[config.root, *([root] if root is not None else [])])
    wanted = set(documents if check is None else check) & set(documents)
    for path, facts in (known or {}).items():
        if path in documents and path not in wanted and path not in excluded:
            if any(project.dependency_value(fact) != value for fact, value in facts.items()):
                wanted.add(path)
    checked: dict[Path, CheckedDocument] = {}
    for path in sorted(wanted):
        if path in excluded:
            checked[path] = CheckedDocument(FileResult(path, display_path(path, root or path.parent)), excluded=True)
            continue
        with reusing(parsed_files):
            result = check_one(checker, sources[path], project)
        for finding in result.findings:
            finding.severity = config.severity_for(finding.code, finding.severity)
        result.findings.sort(key=Finding.sort_key)
        facts = {fact: project.dependency_value(fact) for fact in result.dependencies}
        checked[path] = CheckedDocument(result, facts)
    return checked


def _document_source(
    checker: FileChecker, text: str, path: Path, name: str, ignored: frozenset[str]
) -> SourceFile:
    """A buffer as a file of the run: a notebook's JSON is read as FileChecker.load reads a file."""
    if path.suffix.lower() != ".ipynb":
        return checker.load_text(text, path, name, ignored)
    try:
        notebook = parse_notebook(text)
    except NotebookError as error:
        return SourceFile(path, name, skipped=SkippedFile(name, f"not a valid notebook: {error}"))
    source = checker.load_text(notebook.text, path, name, ignored)
    source.notebook = notebook
    return source


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
    except ValueError:
        return False
    return True


def _report(
    checker: FileChecker,
    sources: list[SourceFile],
    root: Path,
    roots: Sequence[Path],
    *,
    jobs: int = 1,
    cache: Cache | None = None,
    progress: Progress | None = None,
) -> Report:
    """Phase 2: with every file read, index the project, reuse what the cache still holds,
    then run the rules on the rest, file by file or over worker processes."""
    project = ProjectIndex(sources, roots=roots, declared=checker.declared)
    results: list[FileResult] = []
    pending: list[SourceFile] = []
    for source in sources:
        cached = cache.lookup(source, project) if cache is not None else None
        if cached is not None:
            results.append(cached)
        else:
            pending.append(source)
    if progress is not None:
        progress.start(len(pending))
    if worth_parallel(pending, jobs):
        advance = progress.advance if progress is not None else None
        results.extend(check_parallel(checker, sources, pending, list(roots), jobs, cache, advance))
    else:
        for source in pending:
            result = check_one(checker, source, project)
            if cache is not None:
                cache.store(source, result, project)
            results.append(result)
            if progress is not None:
                progress.advance(1)
    order = {source.path: position for position, source in enumerate(sources)}
    results.sort(key=lambda result: order.get(result.path, len(order)))
    report = Report(root=root)
    report.from_cache = len(sources) - len(pending)
    for result in results:
        if result.skipped is not None:
            report.skipped.append(result.skipped)
            continue
        report.files_checked += 1
        report.suppressed += result.suppressed
        report.errors.extend(result.errors)
        report.findings.extend(result.findings)
    report.findings.sort(key=Finding.sort_key)
    return report


def _apply_baseline(report: Report, baseline: Baseline, in_scope: Callable[[Entry], bool]) -> None:
    """Drop the findings the baseline covers; keep the entries in scope that matched nothing."""
    result = apply(baseline, report, in_scope=in_scope)
    report.findings = result.findings
    report.baselined = result.baselined
    report.stale_baseline = result.stale_count
    report.stale_entries = result.stale


def _probe(report: Report, options: "ProbeOptions", progress: Stages | None) -> None:
    """Probe the report's findings in place (`report.probe_summary`). When torch is missing the
    findings are left as they were; that, or a crash of the probe, is `report.probe_error`.

    Imported here so that the static path never imports the probe's measurement (nor torch).
    """
    from gradlint.probe import INSTALL_HINT, ProbeUnavailable
    from gradlint.probe.confirm import confirm_report

    try:
        with _stage(progress, "probing") as bar:
            report.probe_summary = confirm_report(report, options, progress=bar)
    except ProbeUnavailable:
        report.probe_error = f"--probe needs torch: {INSTALL_HINT}"
    except Exception as error:  # never a bare traceback
        report.probe_error = f"internal error in the probe: {type(error).__name__}: {error} (please report this)"


def _stage(progress: Stages | None, stage: str) -> ContextManager["Progress | None"]:
    return progress(stage) if progress is not None else contextlib.nullcontext()


def report_root(files: Sequence[Path], cwd: Path, fallback: Path) -> Path:
    """The root that report paths, SARIF locations and fingerprints are relative to: the git work
    tree holding the checked files (then the one holding the working directory, then the
    configuration root), so the same finding reads the same from any working directory."""
    if files:
        try:
            common = Path(os.path.commonpath([os.path.abspath(path.parent) for path in files]))
        except ValueError:  # files on different drives
            common = None
        found = repository_root(common) if common is not None else None
        if found is not None:
            return found
    return repository_root(cwd) or fallback


def repository_root(start: Path) -> Path | None:
    """The enclosing git work tree: SARIF locations must be relative to it for code scanning."""
    for directory in (start, *start.parents):
        if (directory / ".git").exists():
            return directory
    return None


def display_path(path: Path, cwd: Path) -> str:
    """Relative to the working directory when inside it, else absolute (as ruff prints paths)."""
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return path.as_posix()
