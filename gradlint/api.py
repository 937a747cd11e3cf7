"""The pipeline, one stage per line: files -> parse -> project index -> rules -> findings
-> suppressions -> report. The CLI and the tests both come through here."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

from gradlint.cache import Cache
from gradlint.config import Config
from gradlint.discovery import discover
from gradlint.engine import FileChecker, FileResult, SourceFile
from gradlint.findings import Finding, InternalError, Report, SkippedFile
from gradlint.index import ProjectIndex
from gradlint.parallel import check_one, check_parallel, worth_parallel
from gradlint.rules import ALL_RULES, RULES_BY_CODE, expand_selector


def lint_paths(
    paths: Sequence[Path],
    config: Config,
    *,
    report_unused_ignores: bool = False,
    cwd: Path | None = None,
    jobs: int = 1,
    cache_dir: Path | None = None,
    progress: "Progress | None" = None,
) -> Report:
    """Lint files and folders. `jobs`: worker processes; `cache_dir`: the results cache (None:
    no cache); `progress`: told how many files there are and as each is done."""
    cwd = (cwd or Path.cwd()).resolve()
    discovery = discover(paths, config)
    checker = FileChecker(
        [RULES_BY_CODE[code] for code in sorted(config.enabled_codes())],
        {code: dict(options) for code, options in config.rule_options.items()},
        report_unused_ignores=report_unused_ignores,
    )
    sources = [
        checker.load(path, display_path(path, cwd), frozenset(config.ignored_codes_for(path)))
        for path in discovery.files
    ]
    cache = Cache(cache_dir, checker, cwd) if cache_dir is not None else None
    report = _report(
        checker,
        sources,
        repository_root(cwd) or config.root,
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
) -> list[Finding]:
    """Lint in-memory files (name -> source) as one project: the doc examples' harness."""
    codes: set[str] = set()
    for selector in select or ["ALL"]:
        codes |= expand_selector(selector)
    options: dict[str, dict[str, Any]] = {}
    for code, values in (rule_options or {}).items():
        rule = RULES_BY_CODE[code]
        declared = {option.name: option for option in rule.options}
        options[code] = {name: declared[name].coerce(value) for name, value in values.items()}
    checker = FileChecker(
        [rule for rule in ALL_RULES if rule.code in codes], options, report_unused_ignores=report_unused_ignores
    )
    root = Path("/gradlint-sources")
    sources = [checker.load_text(text, root / name, name) for name, text in files.items()]
    return _report(checker, sources, root, roots=[root]).findings


class Progress(Protocol):
    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


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
    project = ProjectIndex(sources, roots=roots)
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
