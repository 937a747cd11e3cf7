"""The command line: parse flags, build the Config, run the pipeline, pick a reporter, exit.

Exit codes: 0 no finding at or above --fail-on; 1 findings; 2 usage, configuration or
internal error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, TextIO

import click

from gradlint import __version__
from gradlint.cache import DEFAULT_DIRECTORY
from gradlint.config import ConfigError, apply_overrides, load_config
from gradlint.findings import Report, Severity
from gradlint.report import FORMATS, write_report
from gradlint.rules import ALL_RULES, get_rule

if TYPE_CHECKING:
    from rich.console import Console

    from gradlint.fix.files import FixResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _split(values: Sequence[str]) -> list[str] | None:
    """`--select GL101,GL103 --select GL2` -> ['GL101', 'GL103', 'GL2']; None when not given."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _stderr() -> "Console":
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """rich's markup escaping, imported only when something is printed (rich costs ~20 ms)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class _LazyGroup(click.Group):
    """Subcommands whose module is imported only when they run (`gradlint probe` pulls in the
    probe's command-line code, `gradlint server` the language server's, which a `gradlint check`
    never needs)."""

    lazy = {
        "probe": ("gradlint.probe.command", "probe_command"),
        "server": ("gradlint.server.command", "server_command"),
        "daemon": ("gradlint.daemon.command", "daemon_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            import importlib

            module, attribute = self.lazy[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


def _fail(message: str) -> "click.exceptions.Exit":
    _stderr().print(f"[bold red]error:[/] {escape(message)}", emoji=False)
    return click.exceptions.Exit(EXIT_ERROR)


def _use_color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def run() -> None:
    """`gradlint`'s command line in this process (see gradlint/launch.py): `run_main`, then an
    exit that skips the interpreter's teardown. Freeing every object of the run (libcst's node
    classes, the trees, the index) took about 0.1 s of a single script's 0.7 s, after the report
    was written. Every file gradlint writes is closed by then (the report, cache entries, fixed
    files). `main` itself exits normally, for callers in Python."""
    os._exit(run_main())


def run_main() -> int:
    """Run `main` on sys.argv and flush the standard streams; the exit status."""
    try:
        main()
    except SystemExit as exit:
        status = exit.code
    else:
        status = 0
    if isinstance(status, str):  # what SystemExit prints
        sys.stderr.write(f"{status}\n")
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`gradlint check | head`) or stream
            pass
    return status if isinstance(status, int) else 0


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="gradlint")
def main() -> None:
    """gradlint finds exploding-gradient risks in PyTorch training code.

    Run `gradlint check` in a repository, `gradlint rules` for the rule list and
    `gradlint explain GL101` for one rule's documentation.
    """


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "--output-format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to FILE.")
@click.option("--select", multiple=True, help="Rules to enable: codes, prefixes (GL1) or ALL. Replaces the config.")
@click.option("--extend-select", multiple=True, help="Rules to enable on top of the configured selection.")
@click.option("--ignore", multiple=True, help="Rules to disable.")
@click.option("--exclude", multiple=True, help="Gitignore-style patterns to exclude (replaces the config).")
@click.option("--extend-exclude", multiple=True, help="Patterns to exclude on top of the config.")
@click.option(
    "--fail-on",
    type=click.Choice(["info", "warning", "error", "never"]),
    help="Lowest severity that makes the exit code 1 (default: warning).",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (errors still exit 2).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="Use this config file.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, one line each, with no summary.")
@click.option("--statistics", is_flag=True, help="Print the number of findings per rule instead of the findings.")
@click.option("--report-unused-ignores", is_flag=True, help="Report suppression comments that suppress nothing (GL001).")
@click.option(
    "--probe",
    is_flag=True,
    help="Confirm model/init findings by measuring gradient growth with torch (needs gradlint[probe]).",
)
@click.option(
    "--probe-import",
    is_flag=True,
    help="With --probe: build the flagged layers' own classes from your code and measure them. This imports "
    "and runs project code (in a sandboxed subprocess); never use it on untrusted pull requests.",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report only findings not recorded in this baseline (see `gradlint baseline create`).",
)
@click.option(
    "--changed-since",
    metavar="REV",
    help="Report only findings on lines changed since the git revision REV (committed, staged, "
    "unstaged or untracked).",
)
@click.option(
    "--probe-threshold",
    type=click.FloatRange(min=1.0, min_open=True),
    default=10.0,
    show_default=True,
    help="Total gradient growth G over the sequence at which the probe calls a finding confirmed.",
)
@click.option("--fix", is_flag=True, help="Apply safe fixes in place, then report what remains.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix or --diff: also apply fixes that change training behaviour.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the fixes as a unified diff and write nothing (exit 1 if any).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes [default: the number of CPUs]. Results are the same for any number.",
)
@click.option("--no-cache", is_flag=True, help="Check every file again: do not read or write the cache.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Where the results cache lives [default: {DEFAULT_DIRECTORY} in the project root].",
)
def check(
    paths: tuple[Path, ...],
    output_format: str,
    output: Path | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    fail_on: str | None,
    exit_zero: bool,
    config_file: Path | None,
    quiet: bool,
    statistics: bool,
    report_unused_ignores: bool,
    probe: bool,
    probe_import: bool,
    baseline_file: Path | None,
    changed_since: str | None,
    probe_threshold: float,
    fix: bool = False,
    unsafe_fixes: bool = False,
    show_diff: bool = False,
    jobs: int | None = None,
    no_cache: bool = False,
    cache_dir: Path | None = None,
) -> None:
    """Check PATHS (files or directories, default: the current directory)."""
    from gradlint import api
    from gradlint.baseline import BaselineError
    from gradlint.changes import ChangesError
    from gradlint.parallel import default_jobs
    from gradlint.progress import Bars

    targets = list(paths) or [Path(".")]
    config = _load_config(targets, config_file, select, extend_select, ignore, exclude, extend_exclude, fail_on)
    if no_cache:
        cache_dir = None
    elif cache_dir is None:
        cache_dir = config.root / DEFAULT_DIRECTORY
    human = output_format in ("text", "concise") and output is None and not quiet
    probe_options = None
    if probe_import and not probe:
        raise click.UsageError("--probe-import needs --probe")
    if probe and not show_diff:
        from gradlint.probe import ProbeOptions

        probe_options = ProbeOptions(explode_threshold=probe_threshold, import_project=probe_import)

    try:
        report = api.check(
            targets,
            config,
            baseline=baseline_file,
            changed_since=changed_since,
            probe=probe_options,
            fix=fix and not show_diff,
            unsafe_fixes=unsafe_fixes,
            report_unused_ignores=report_unused_ignores,
            jobs=jobs or default_jobs(),
            cache_dir=cache_dir,
            progress=Bars(enabled=human),
        )
    except (BaselineError, ChangesError) as error:
        raise _fail(str(error)) from None
    except Exception as error:  # the last line of defence: never a bare traceback
        raise _fail(f"internal error: {type(error).__name__}: {error} (please report this)") from None

    if show_diff:
        if not fix:  # `--diff --fix` has always shown the diff without the stale entries
            _print_stale_baseline(report, baseline_file, quiet=quiet)
        _print_problems(report)
        from gradlint.fix.files import diff_files

        raise click.exceptions.Exit(_print_diff(diff_files(report, unsafe_fixes)))
    if report.fixes is not None:
        _print_fixes(report.fixes, quiet=quiet)
    _print_stale_baseline(report, baseline_file, quiet=quiet)
    _print_probe(report, quiet=quiet)
    _print_problems(report)
    try:
        if output is not None:
            with output.open("w", encoding="utf-8") as stream:
                write_report(report, output_format, stream, statistics=statistics, quiet=quiet)
        else:
            stdout = sys.stdout
            write_report(
                report, output_format, stdout, color=_use_color(stdout), statistics=statistics, quiet=quiet
            )
    except OSError as error:
        raise _fail(f"cannot write the report to {output}: {error.strerror or error}") from None

    if report.probe_error is not None:
        raise _fail(report.probe_error)
    raise click.exceptions.Exit(exit_code(report, config.fail_on, exit_zero))


def _print_diff(result: "FixResult") -> int:
    """`--diff`: the diffs on stdout, the notes on stderr; the exit code (1 when a file would change)."""
    for file in result.files:
        if file.error is not None:
            _stderr().print(f"[yellow]warning:[/] cannot read {escape(file.name)}: {escape(file.error)}", emoji=False)
        elif file.diff:
            sys.stdout.write(file.diff)
    changed, count = result.changed, result.fixed
    _fix_notes(result, f"Would fix {count} {'finding' if count == 1 else 'findings'} in {changed} "
               f"{'file' if changed == 1 else 'files'}." if changed else "No fixes available.")
    return EXIT_FINDINGS if changed else EXIT_CLEAN


def _print_fixes(result: "FixResult", *, quiet: bool) -> None:
    """What `--fix` did, before the report of what it left."""
    for file in result.files:
        if file.error is not None:
            _stderr().print(f"[yellow]warning:[/] cannot fix {escape(file.name)}: {escape(file.error)}", emoji=False)
    if not quiet:
        changed, count = result.changed, result.fixed
        _fix_notes(result, f"Fixed {count} {'finding' if count == 1 else 'findings'} in {changed} "
                   f"{'file' if changed == 1 else 'files'}.")


def _fix_notes(result: "FixResult", headline: str) -> None:
    console = _stderr()
    console.print(escape(headline), emoji=False, highlight=False)
    hidden, notebooks = result.unsafe_left, result.in_notebooks
    if hidden:
        console.print(f"{hidden} more {'fix is' if hidden == 1 else 'fixes are'} available with `--unsafe-fixes`.",
                      emoji=False, highlight=False)
    if notebooks:
        console.print(f"{notebooks} {'finding' if notebooks == 1 else 'findings'} in notebooks not fixed "
                      "(notebooks are never fixed automatically).", emoji=False, highlight=False)


def _load_config(
    targets: list[Path],
    config_file: Path | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    fail_on: str | None = None,
):
    try:
        config = load_config(targets, config_file)
        return apply_overrides(
            config,
            select=_split(select),
            extend_select=_split(extend_select),
            ignore=_split(ignore),
            exclude=_split(exclude),
            extend_exclude=_split(extend_exclude),
            fail_on=fail_on,
        )
    except ConfigError as error:
        raise _fail(str(error)) from None


def _print_stale_baseline(report: Report, baseline_file: Path | None, *, quiet: bool) -> None:
    """Warn about baseline entries that matched no finding (fixed or changed code)."""
    stale = report.stale_baseline
    if not stale:
        return
    console = _stderr()
    entries = "entry" if stale == 1 else "entries"
    console.print(
        f"[yellow]warning:[/] {stale} stale baseline {entries} in {escape(str(baseline_file))} "
        f"matched no finding (fixed or changed code); refresh it with `gradlint baseline create`",
        emoji=False,
        highlight=False,
    )
    if not quiet:
        for entry in report.stale_entries:
            times = f" (x{entry.count})" if entry.count > 1 else ""
            console.print(
                f"  stale: {escape(entry.path)}: {entry.code}{times} {escape(entry.message)}",
                emoji=False,
                highlight=False,
            )


def _print_probe(report: Report, *, quiet: bool) -> None:
    """The probe's problems and, unless quiet, its summary (a probe that could not run is an
    error after the report)."""
    summary = report.probe_summary
    if summary is None:
        return
    console = _stderr()
    for problem in summary.errors:
        console.print(f"[yellow]warning:[/] probe: {escape(problem)}", emoji=False, highlight=False)
    if not quiet:
        console.print(
            f"probe: {summary.probed} findings probed ({summary.confirmed} confirmed, {summary.not_confirmed} not "
            f"confirmed, {summary.not_probed} not probed; {summary.measurements} measurements) in "
            f"{summary.probe_seconds:.2f} s (torch import {summary.import_seconds:.2f} s)",
            emoji=False,
            highlight=False,
        )


def exit_code(report: Report, fail_on: Severity | None, exit_zero: bool = False) -> int:
    if report.errors:
        return EXIT_ERROR
    if exit_zero or fail_on is None:
        return EXIT_CLEAN
    return EXIT_FINDINGS if any(f.severity >= fail_on for f in report.findings) else EXIT_CLEAN


def _print_problems(report: Report) -> None:
    """Skipped files are warnings and internal errors are errors, both on stderr."""
    console = _stderr()
    for skipped in report.skipped:
        console.print(f"[yellow]warning:[/] skipped {escape(skipped.path)}: {escape(skipped.reason)}", emoji=False, highlight=False)
    for error in report.errors:
        where = f"{error.path}: " if error.path else ""
        console.print(f"[bold red]error:[/] {escape(where)}{escape(error.message)}", emoji=False, highlight=False)


@main.command("rules")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def list_rules(output_format: str) -> None:
    """List every rule: code, name, severity, summary (piped: one line per rule)."""
    if output_format == "json":
        import json

        rows = [
            {"code": r.code, "name": r.name, "severity": r.severity.label, "summary": r.summary}
            for r in ALL_RULES
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        # Piped (`gradlint rules | grep GL1`): one line per rule, however long, never wrapped.
        widths = [max(len(row[i]) for row in _rule_rows()) for i in range(3)]
        for row in _rule_rows():
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("code", "name", "severity", "summary"):
        table.add_column(column, overflow="fold")
    for rule in ALL_RULES:
        table.add_row(rule.code, rule.name, rule.severity.label, rule.summary)
    console.print(table)


def _rule_rows() -> list[tuple[str, str, str, str]]:
    return [(r.code, r.name, r.severity.label, r.summary) for r in ALL_RULES]


def _explain(code: str) -> None:
    from rich.markdown import Markdown  # only here: it costs 30 ms at start-up

    from gradlint.docs import rule_markdown

    rule = get_rule(code)
    if rule is None:
        raise _fail(f"unknown rule {code!r}; `gradlint rules` lists them")
    text = rule_markdown(rule.code)
    if text is None:
        raise _fail(f"the documentation of {rule.code} is missing from this installation")
    from rich.console import Console

    console = Console(highlight=False)
    if console.is_terminal:
        console.print(Markdown(text))
    else:
        click.echo(text)


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Show the documentation of one rule (code or name)."""
    _explain(code)


@main.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Alias of `explain` (as ruff spells it)."""
    _explain(code)


@main.group("baseline")
def baseline_group() -> None:
    """Record today's findings so that only new ones are reported (`check --baseline FILE`)."""


@baseline_group.command("create")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", multiple=True, help="Rules to enable: codes, prefixes (GL1) or ALL. Replaces the config.")
@click.option("--extend-select", multiple=True, help="Rules to enable on top of the configured selection.")
@click.option("--ignore", multiple=True, help="Rules to disable.")
@click.option("--exclude", multiple=True, help="Gitignore-style patterns to exclude (replaces the config).")
@click.option("--extend-exclude", multiple=True, help="Patterns to exclude on top of the config.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="Use this config file.")
def baseline_create(
    file: Path,
    paths: tuple[Path, ...],
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exclude: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    config_file: Path | None,
) -> None:
    """Check PATHS (default: the current directory) and write every finding to FILE.

    Commit FILE; `gradlint check --baseline FILE` then reports only findings it does not hold.
    """
    from gradlint.api import lint_paths
    from gradlint.baseline import build, write

    targets = list(paths) or [Path(".")]
    config = _load_config(targets, config_file, select, extend_select, ignore, exclude, extend_exclude)
    try:
        report = lint_paths(targets, config)
    except Exception as error:  # never a bare traceback
        raise _fail(f"internal error: {type(error).__name__}: {error} (please report this)") from None
    _print_problems(report)
    if report.errors:
        raise _fail(f"the check was incomplete; {file} was not written")
    baseline = build(report)
    try:
        write(baseline, file)
    except OSError as error:
        raise _fail(f"cannot write the baseline to {file}: {error.strerror or error}") from None
    entries, findings, files = len(baseline.entries), len(report.findings), report.files_checked
    _stderr().print(
        f"Wrote {entries} baseline {'entry' if entries == 1 else 'entries'} ({findings} "
        f"{'finding' if findings == 1 else 'findings'} in {files} {'file' if files == 1 else 'files'}) "
        f"to {escape(str(file))}.",
        emoji=False,
        highlight=False,
    )
    raise click.exceptions.Exit(EXIT_CLEAN)



if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
