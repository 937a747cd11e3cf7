"""Human output, rendered with rich: the full `text` format (code frames) and `concise`.

Everything printed is built from `rich.text.Text` objects with markup and emoji disabled, so
finding texts such as `[error]`, `[bold]` or `:fire:` are printed literally.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from gradlint.findings import Finding, Report, Severity

SEVERITY_STYLE: dict[Severity, str] = {
    Severity.ERROR: "red",
    Severity.WARNING: "yellow",
    Severity.INFO: "blue",
}

_TAB_SIZE = 4
_WIDTH = 100
"""Only tables would use it: every line is printed with soft wrapping, never cut or folded."""


def make_console(stream: TextIO, *, color: bool) -> Console:
    """A console that writes to `stream`, with ANSI styling exactly when `color` is true.

    Terminal detection and the environment (TERM, NO_COLOR, FORCE_COLOR, COLUMNS) are not
    consulted: the CLI has already decided, and the same call always renders the same bytes.
    """
    return Console(
        file=stream,
        force_terminal=color,
        force_jupyter=False,
        force_interactive=False,
        color_system="standard" if color else None,
        no_color=not color,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
        width=_WIDTH,
        legacy_windows=False,
        tab_size=_TAB_SIZE,
    )


def clean(text: str, *, single_line: bool = True) -> str:
    """Make untrusted text safe to print: no terminal control characters, one line if asked."""
    out = []
    for char in text:
        if char == "\n" and not single_line:
            out.append(char)
        elif char in "\r\n":
            out.append(" ")
        elif char == "\t":
            out.append(char)
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


# -- pieces shared by text and concise -------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(report: Report) -> str | None:
    """`Found 3 problems (1 error, 2 warnings, 0 info) in 12 files.` or the all-clear; an
    incomplete check (errors) is never "all checked", and with nothing checked at all (every
    path missing) there is no summary: the errors on stderr say it all."""
    files = _plural(report.files_checked, "file")
    suppressed = f" ({report.suppressed} suppressed)" if report.suppressed else ""
    baseline = ""
    if report.baselined is not None:  # only with `gradlint check --baseline`
        stale = report.stale_baseline or 0
        entries = "stale baseline entry" if stale == 1 else "stale baseline entries"
        baseline = f" {_plural(report.baselined, 'finding')} baselined, {stale} {entries}."
    if not report.findings:
        if report.errors and not report.files_checked:
            return None
        if report.errors:
            return (f"No problems found in {files}{suppressed}, but the check is incomplete: "
                    f"{_plural(len(report.errors), 'error')} (on stderr).{baseline}")
        return f"All checked: no problems found in {files}{suppressed}.{baseline}"
    counts = report.counts()
    breakdown = (
        f"{_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}, {counts['info']} info"
    )
    return f"Found {_plural(len(report.findings), 'problem')} ({breakdown}) in {files}{suppressed}.{baseline}"


def fix_line(report: Report) -> str | None:
    """How many findings `--fix` (and `--unsafe-fixes`) would fix, as ruff says it; None if none."""
    safe = sum(1 for f in report.findings if f.fix is not None and f.fix.safety == "safe")
    unsafe = sum(1 for f in report.findings if f.fix is not None and f.fix.safety != "safe")
    if not safe and not unsafe:
        return None
    if not safe:
        return f"{_plural(unsafe, 'finding')} fixable with `gradlint check --fix --unsafe-fixes`."
    more = f" ({unsafe} more with `--unsafe-fixes`)" if unsafe else ""
    return f"{_plural(safe, 'finding')} fixable with `gradlint check --fix`{more}."


def _print_summary(console: Console, report: Report) -> None:
    summary = _summary_text(report)
    if summary is None:
        return
    console.print(summary)
    fixable = fix_line(report)
    if fixable is not None:
        console.print(Text(fixable))


def _summary_text(report: Report) -> Text | None:
    line = summary_line(report)
    if line is None:
        return None
    if not report.findings:
        return Text(line, style="bold yellow" if report.errors else "bold green")
    worst = max(finding.severity for finding in report.findings)
    return Text(line, style=f"bold {SEVERITY_STYLE[worst]}")


def sorted_findings(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda finding: finding.sort_key())


def location(finding: Finding) -> str:
    """`path:line:col`, or `notebook.ipynb:cell 4:line 3` for a finding in a notebook cell."""
    if finding.cell is not None:
        return f"{clean(finding.display_path)}:cell {finding.cell}:line {finding.cell_line}"
    return f"{clean(finding.display_path)}:{finding.line}:{finding.column}"


def headline(finding: Finding) -> Text:
    """`path:line:col: GL103 [error] message` (`notebook.ipynb:cell 4:line 3: ...` in a notebook)."""
    text = Text()
    text.append(f"{location(finding)}:", style="bold")
    text.append(" ")
    text.append(finding.code, style="bold")
    text.append(" ")
    text.append(f"[{finding.severity.label}]", style=SEVERITY_STYLE[finding.severity])
    text.append(" ")
    text.append(clean(finding.message))
    return text


def statistics_rows(report: Report) -> list[tuple[int, str, str]]:
    """(count, code, name) per code, most frequent first, then by code."""
    counts = Counter(finding.code for finding in report.findings)
    names: dict[str, str] = {}
    for finding in report.findings:
        names.setdefault(finding.code, finding.name)
    return sorted(((n, code, names[code]) for code, n in counts.items()), key=lambda row: (-row[0], row[1]))


def _print_statistics(console: Console, report: Report) -> None:
    rows = statistics_rows(report)
    if not rows:
        return
    count_width = max(len(str(count)) for count, _, _ in rows)
    code_width = max(len(code) for _, code, _ in rows)
    for count, code, name in rows:
        line = Text()
        line.append(str(count).rjust(count_width))
        line.append("  ")
        line.append(code.ljust(code_width), style="bold")
        line.append("  ")
        line.append(name)
        console.print(line)


# -- the code frame -------------------------------------------------------------------------


def code_frame(finding: Finding) -> list[Text]:
    """The finding's line with its number in a gutter, and carets under the reported columns.

    Columns are 1-based character offsets; `end_column` is exclusive (one past the last
    character, as in SARIF). A finding that spans several lines is underlined to the end of
    its first line. Tabs are expanded and wide characters measured, so carets line up.
    """
    source = finding.source_line.rstrip("\r\n")
    if not source.strip():
        return []
    source = clean(source).rstrip()
    start = max(finding.column, 1) - 1
    if finding.end_line == finding.line:
        end = finding.end_column - 1
    else:
        end = len(source)
    end = min(end, len(source))

    def width(upto: int) -> int:
        return cell_len(source[:upto].expandtabs(_TAB_SIZE)) + max(0, upto - len(source))

    offset = width(start)
    carets = max(1, width(end) - offset)

    number = str(finding.cell_line if finding.cell_line is not None else finding.line)
    style = SEVERITY_STYLE[finding.severity]
    code_line = Text()
    code_line.append(f" {number} | ", style="blue")
    code_line.append(source.expandtabs(_TAB_SIZE))
    caret_line = Text()
    caret_line.append(f" {' ' * len(number)} | ", style="blue")
    caret_line.append(" " * offset)
    caret_line.append("^" * carets, style=f"bold {style}")
    return [code_line, caret_line]


def _print_full(console: Console, finding: Finding) -> None:
    console.print(headline(finding))
    for line in code_frame(finding):
        console.print(line)
    if finding.hint:
        help_line = Text("  ")
        help_line.append("help:", style="bold cyan")
        help_line.append(" ")
        help_line.append(clean(finding.hint))
        console.print(help_line)
    for related in finding.related:
        note = Text("  ")
        note.append("note:", style="bold")
        note.append(f" {clean(related.place(finding.display_path))}: ")
        note.append(clean(related.message))
        console.print(note)
    if finding.probe is not None:
        for line in probe_lines(finding.probe, unicode=_unicode(console)):
            console.print(line)


# -- the probe's evidence (`check --probe`) --------------------------------------------------

_SPARK = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
_SPARK_ASCII = "_.-=+*#@"
_CHART_WIDTH = 50
_STATUS_STYLE = {"confirmed": "red", "not-confirmed": "green", "not-probed": "dim"}


def _unicode(console: Console) -> bool:
    encoding = (getattr(console.file, "encoding", None) or "").lower().replace("-", "")
    return encoding.startswith("utf")


def _finite(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def sparkline(values: list, *, width: int = _CHART_WIDTH, unicode: bool = True) -> str:
    """One character per bucket of `values` (log10 norms: numbers, or "inf"/"-inf"/"nan"),
    scaled between their finite minimum and maximum; ' ' for an exact zero (-inf), '!' for
    inf/nan."""
    if not values:
        return ""
    marks = _SPARK if unicode else _SPARK_ASCII
    size = max(1, -(-len(values) // width))
    buckets = [values[i : i + size] for i in range(0, len(values), size)]
    finite = [v for v in (_finite(x) for x in values) if v is not None]
    low, high = (min(finite), max(finite)) if finite else (0.0, 0.0)
    out = []
    for bucket in buckets:
        if any(x in ("inf", "nan") for x in bucket):
            out.append("!")
            continue
        numbers = [v for v in (_finite(x) for x in bucket) if v is not None]
        if not numbers:
            out.append(" ")
            continue
        mean = sum(numbers) / len(numbers)
        level = (len(marks) - 1) // 2 if high <= low else round((mean - low) / (high - low) * (len(marks) - 1))
        out.append(marks[level])
    return "".join(out)


def _k(value: object) -> str:
    return f"x{value:.2f}" if _finite(value) is not None else f"x{value}"


def _total(probe: dict) -> str:
    log10 = probe.get("log10_total_growth")
    if _finite(log10) is not None:
        return f"10^{log10:.1f}"
    return {"inf": "inf", "-inf": "0"}.get(log10, "nan") if isinstance(log10, str) else "nan"


def probe_lines(probe: dict, *, unicode: bool = True) -> list[Text]:
    """The probe's evidence under a finding: the verdict line, a sparkline of log10 ||dL/dx_t||
    over the probed steps, the regimes, and the defaults, caps and notes that shaped it."""
    status = str(probe.get("status"))
    style = _STATUS_STYLE.get(status, "")
    head = Text("  ")
    head.append("probe:", style="bold magenta")
    head.append(" ")
    if status == "not-probed":
        head.append("not probed", style=style)
        head.append(f" - {clean(str(probe.get('reason')))}")
        return [head]
    head.append(status.replace("-", " "), style=f"bold {style}")
    steps = probe.get("steps")
    window = probe.get("window")
    over = f"over {steps} steps" if window in (None, steps) else f"over {steps} steps, extrapolated from {window}"
    head.append(
        f" - {probe.get('verdict')}, {_k(probe.get('growth_per_step'))}/step, {_total(probe)} {over} "
        f"({probe.get('regime')})"
    )
    compare = probe.get("compare") or {}
    cells = [f"{name.upper()} {_k(compare[name].get('growth_per_step'))} {compare[name].get('verdict')}"
             for name in ("lstm", "gru") if name in compare]
    if cells:
        head.append("; " + ", ".join(cells))
    lines = [head]
    norms = list(probe.get("norms") or [])
    if norms:
        chart = Text("    ")
        first, last = _finite(norms[0]), _finite(norms[-1])
        chart.append("t=0 ")
        chart.append(sparkline(norms, unicode=unicode), style=style)
        chart.append(f" t={len(norms) - 1}")
        ends = f"{first:.1f} .. {last:.1f}" if first is not None and last is not None else "non-finite values"
        chart.append(f"  log10 |dL/dx_t|: {ends}", style="dim")
        lines.append(chart)
    regimes = probe.get("regimes") or []
    if len(regimes) > 1:
        text = ", ".join(f"{r.get('regime')} {_k(r.get('growth_per_step'))} {r.get('verdict')}" for r in regimes)
        lines.append(Text(f"    regimes: {text}", style="dim"))
    severity = probe.get("static_severity")
    for label, key in (("defaults", "defaults_applied"), ("caps", "caps_applied")):
        items = [clean(str(item)).replace("(default: ", "(") for item in probe.get(key) or ()]
        if items:
            lines.append(Text(f"    {label}: " + "; ".join(items), style="dim"))
    for note in probe.get("notes") or ():
        lines.append(Text(f"    note: {clean(str(note))}", style="dim"))
    if severity:
        lines.append(Text(f"    severity before the probe: {severity}", style="dim"))
    return lines


# -- the two formats ------------------------------------------------------------------------


def write_text(
    report: Report,
    stream: TextIO,
    *,
    color: bool = False,
    statistics: bool = False,
    quiet: bool = False,
) -> None:
    """The default format: each finding with a code frame, help and notes, then a summary.

    `statistics` prints a count per code instead of the findings; `quiet` prints the findings
    in concise form and no summary.
    """
    console = make_console(stream, color=color)
    if statistics:
        _print_statistics(console, report)
        summary = _summary_text(report)
        if not quiet and summary is not None:
            if report.findings:
                console.print()
            console.print(summary)
        return
    if quiet:
        for finding in sorted_findings(report):
            console.print(headline(finding))
        return
    for finding in sorted_findings(report):
        _print_full(console, finding)
        console.print()
    _print_summary(console, report)


def write_concise(
    report: Report,
    stream: TextIO,
    *,
    color: bool = False,
    statistics: bool = False,
    quiet: bool = False,
) -> None:
    """One line per finding (`path:line:col: CODE [severity] message`, or
    `notebook.ipynb:cell 4:line 3: CODE [severity] message` in a notebook), then the summary."""
    console = make_console(stream, color=color)
    if statistics:
        _print_statistics(console, report)
    else:
        for finding in sorted_findings(report):
            console.print(headline(finding))
    if not quiet:
        _print_summary(console, report)
