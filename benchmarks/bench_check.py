"""Whole-process speed benchmark of `gradlint check` against the libcst floors, Fixit and TorchFix.

    python benchmarks/bench_check.py [CORPUS_DIR ...] [--limit 2000] [--repeat 3]
        [--torchfix /tmp/bench-torchfix/bin/torchfix] [--fixit /tmp/bench-fixit/bin/fixit]
        [--skip-tools] [--json results.json]

Run by hand, not in CI (it takes minutes). Without CORPUS_DIR the corpus is the installed `torch`
package plus `lightning`, `timm` and `transformers` (installed, or unzipped under
/tmp/realcode/src). `--limit N` keeps N files spread evenly over the sorted paths (every k-th file),
so the same N files are chosen on every run; 2,000 is the size of the issue's corpus.

The chosen files are copied into a temporary directory and every measured command gets the same
explicit file list there: nothing is written into the corpus, no configuration file of the corpus's
own repository applies, and every tool sees exactly the same files. The gradlint cache lives in
fresh temporary directories.

Every measured thing is a separate process: wall time, CPU time (user + system) and peak RSS come
from `os.wait4` on that child. Unlike deltas of `getrusage(RUSAGE_CHILDREN)` (whose `ru_maxrss` is a
maximum over all children ever, so it has no delta), this is exact for the one process; it also
counts the CPU time of the worker processes it reaped (`--jobs 2`), and its `ru_maxrss` is the
largest single process among the child and those workers, which is what the "peak RSS per
process" target means. It needs no wrapper process (`/usr/bin/time`) and no sampling (psutil
polls and misses short peaks).

Rows marked "n/a" could not run: the installed gradlint lacks the flag (checked with
`gradlint check --help`), or the tool's executable was not found.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
FIXTURES = REPOSITORY / "fixtures"
DEFAULT_CORPUS_PACKAGES = ("torch", "lightning", "timm", "transformers")
UNZIPPED_PACKAGES = Path("/tmp/realcode/src")
DEFAULT_TORCHFIX = "/tmp/bench-torchfix/bin/torchfix"
DEFAULT_FIXIT = "/tmp/bench-fixit/bin/fixit"
SINGLE_SCRIPT_SOURCES = ("char_rnn_no_clip", "clip_after_step", "amp_clip_before_unscale")
"""Plain PyTorch training scripts from fixtures/ joined into one ~500-line script."""
PRECOMMIT_FILE_COUNT = 10
SMALL_FLOOR_PROGRAM = (
    "import sys, libcst\n"
    "for path in sys.argv[1:]:\n"
    "    with open(path, encoding='utf-8') as stream:\n"
    "        libcst.parse_module(stream.read())\n"
)
FINDING_LINE = re.compile(r"^\S+?(?::\d+:\d+:|@\d+:\d+ )")
"""`path:line:col: ...` (gradlint -q, TorchFix) or `path@line:col Rule: ...` (Fixit)."""

# Runs in its own interpreter (the one gradlint is installed in): argv[1] is "parse" or "naive",
# argv[2] a file holding one path per line. "naive" is what a linter built on libcst's metadata
# does for every file; the copy MetadataWrapper makes by default is skipped, which only lowers
# the floor.
FLOOR_PROGRAM = r"""
import sys
import libcst
from libcst.metadata import MetadataWrapper, PositionProvider, QualifiedNameProvider, ScopeProvider

mode, listing = sys.argv[1], sys.argv[2]
with open(listing, encoding="utf-8") as handle:
    paths = handle.read().splitlines()
failed = 0
for path in paths:
    with open(path, "rb") as handle:
        source = handle.read()
    try:
        module = libcst.parse_module(source)
        if mode == "naive":
            MetadataWrapper(module, unsafe_skip_copy=True).resolve_many(
                [PositionProvider, ScopeProvider, QualifiedNameProvider]
            )
    except Exception:
        failed += 1
print(f"{len(paths) - failed} files processed, {failed} failed")
"""


# --------------------------------------------------------------------------------------------
# Measuring one process


@dataclass
class Measurement:
    name: str
    group: str
    """"corpus", "single script" or "10 files": which inputs it ran on."""
    command: list[str] = field(default_factory=list)
    available: bool = True
    reason: str = ""
    """Why it is n/a, or a remark on the result."""
    wall_s: float | None = None
    """Median over the repeats."""
    wall_min_s: float | None = None
    cpu_s: float | None = None
    peak_rss_mib: float | None = None
    """The largest over the repeats."""
    exit_code: int | None = None
    findings: int | None = None
    """Lines on stdout that report a finding (path:line:col), proof that a linter really linted."""
    output_sample: str = ""
    """The floors' summary line, or the tool's own summary (last line on stderr)."""
    failed: bool = False
    """Killed, crashed or an internal error: its time is not a result and no ratio uses it."""
    repeats: int = 0
    walls_s: list[float] = field(default_factory=list)


def unavailable(name: str, group: str, reason: str) -> Measurement:
    return Measurement(name=name, group=group, available=False, reason=reason)


def run_once(
    command: list[str], cwd: Path, timeout_s: float, env: dict[str, str] | None = None
) -> tuple[float, float, float, int, str, str]:
    """(wall s, cpu s, peak RSS MiB, exit code, stdout, stderr tail) of one run of `command`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, start_new_session=True, env=env)
        timed_out = threading.Event()

        def kill_group() -> None:
            timed_out.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)  # its worker processes too
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, kill_group)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: leave no gradlint workers behind
            kill_group()
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if timed_out.is_set():
        stderr += f"\n(killed after the {timeout_s:.0f} s timeout)"
    # Linux reports ru_maxrss in KiB.
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode, stdout, stderr[-2000:]


def measure(
    name: str, group: str, command: list[str], cwd: Path, repeat: int, timeout_s: float,
    env: dict[str, str] | None = None,
) -> Measurement:
    walls, cpus, rss = [], [], []
    result = Measurement(name=name, group=group, command=command)
    for _ in range(max(1, repeat)):
        wall, cpu, peak, code, stdout, stderr = run_once(command, cwd, timeout_s, env)
        walls.append(wall)
        cpus.append(cpu)
        rss.append(peak)
        result.exit_code = code
        lines = stdout.splitlines()
        result.findings = sum(1 for line in lines if FINDING_LINE.match(line))
        stderr_lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        result.output_sample = (lines[-1].strip() if lines and not result.findings else
                                stderr_lines[-1] if stderr_lines else "")
        if code not in (0, 1):  # gradlint --exit-zero: 2 is an error (also a GL000); negative: a signal
            result.reason = f"exit {code}: {stderr.strip()[-300:]}"
            result.failed = code < 0 or "internal error" in stderr or "Traceback" in stderr or not lines
            if result.failed:
                break
    result.repeats = len(walls)
    result.walls_s = [round(w, 4) for w in walls]
    result.wall_s = statistics.median(walls)
    result.wall_min_s = min(walls)
    result.cpu_s = statistics.median(cpus)
    result.peak_rss_mib = max(rss)
    return result


# --------------------------------------------------------------------------------------------
# Inputs


def default_corpus_dirs() -> list[Path]:
    """The installed packages' source folders (found without importing them), else unzipped ones."""
    found = []
    for package in DEFAULT_CORPUS_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found.append(Path(list(spec.submodule_search_locations)[0]))
        elif (UNZIPPED_PACKAGES / package).is_dir():
            found.append(UNZIPPED_PACKAGES / package)
    return found


def python_files(root: Path) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
        files.extend(Path(directory) / name for name in sorted(names) if name.endswith(".py"))
    return files


def select_evenly(items: list, limit: int) -> list:
    """`limit` items spread evenly over `items` (every k-th, k = len/limit), always the same ones."""
    if limit <= 0 or limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def line_count(path: Path) -> int:
    data = path.read_bytes()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def copy_corpus(corpus_dirs: list[Path], limit: int, destination: Path) -> tuple[list[Path], dict]:
    """Copy the chosen files under destination/<corpus name>/...; return the copies and a summary."""
    names: dict[Path, str] = {}
    for root in corpus_dirs:
        name = root.name
        while name in names.values():
            name += "_"
        names[root] = name
    candidates = [(names[root], path.relative_to(root), path) for root in corpus_dirs for path in python_files(root)]
    candidates.sort(key=lambda item: (item[0], item[1].as_posix()))
    chosen = select_evenly(candidates, limit)
    copies, per_corpus = [], {}
    for name, relative, source in chosen:
        target = destination / name / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copies.append(target)
        entry = per_corpus.setdefault(name, {"files": 0, "lines": 0, "available_files": 0})
        entry["files"] += 1
        entry["lines"] += line_count(target)
    for name, _, _ in candidates:
        per_corpus.setdefault(name, {"files": 0, "lines": 0, "available_files": 0})["available_files"] += 1
    summary = {
        "dirs": {names[root]: str(root) for root in corpus_dirs},
        "per_corpus": per_corpus,
        "files": len(copies),
        "lines": sum(entry["lines"] for entry in per_corpus.values()),
        "available_files": len(candidates),
        "limit": limit,
    }
    return copies, summary


def compose_single_script(destination: Path) -> tuple[Path, int]:
    """One ~500-line training script made of whole fixture scripts (`__future__` imports hoisted)."""
    future, body = [], []
    for fixture in SINGLE_SCRIPT_SOURCES:
        text = (FIXTURES / fixture / "train.py").read_text(encoding="utf-8")
        body.append(f"# ---- from fixtures/{fixture}/train.py ----\n")
        for line in text.splitlines(keepends=True):
            (future if line.startswith("from __future__ import") else body).append(line)
        if not body[-1].endswith("\n"):
            body.append("\n")
    script = destination / "train.py"
    script.write_text("".join(dict.fromkeys(future)) + "".join(body), encoding="utf-8")
    return script, line_count(script)


def copy_precommit_files(destination: Path) -> list[Path]:
    """The first PRECOMMIT_FILE_COUNT fixture files (sorted), as a commit touching ten files passes them."""
    sources = sorted(FIXTURES.glob("*/*.py"))[:PRECOMMIT_FILE_COUNT]
    copies = []
    for source in sources:
        target = destination / source.relative_to(FIXTURES)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copies.append(target)
    return copies


# --------------------------------------------------------------------------------------------
# Tools


def start_daemon(gradlint: str, work: Path) -> dict[str, str] | None:
    """Start a check daemon in a folder of this run's own; the environment that uses it, or
    None where gradlint has no daemon (older versions, not Linux)."""
    folder = work / "daemon"
    env = {key: value for key, value in os.environ.items() if key != "GRADLINT_NO_DAEMON"}
    env["GRADLINT_DAEMON_DIR"] = str(folder)
    started = subprocess.run([gradlint, "daemon", "start", "--idle-timeout", "60"], capture_output=True, text=True,
                             env=env, check=False)
    return env if started.returncode == 0 else None


def stop_daemon(gradlint: str, env: dict[str, str]) -> float | None:
    """Stop it; its peak RSS in MiB (read before it stops)."""
    status = subprocess.run([gradlint, "daemon", "status"], capture_output=True, text=True, env=env, check=False)
    peak = None
    match = re.search(r"pid (\d+)", status.stdout)
    if match:
        try:
            for line in Path(f"/proc/{match.group(1)}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = round(int(line.split()[1]) / 1024, 1)
        except OSError:
            pass
    subprocess.run([gradlint, "daemon", "stop"], capture_output=True, env=env, check=False)
    return peak


def gradlint_flags(gradlint: str) -> set[str]:
    """Which of the speed flags this gradlint's `check` accepts."""
    try:
        help_text = subprocess.run([gradlint, "check", "--help"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {flag for flag in ("--jobs", "--no-cache", "--cache-dir") if flag in help_text}


def version_of(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (result.stdout or result.stderr).strip().splitlines()[-1] if (result.stdout or result.stderr).strip() else "?"


def executable(path: str | None) -> str | None:
    if not path:
        return None
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return shutil.which(path)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def import_breakdown(python: str, arguments: list[str], cwd: Path) -> tuple[float, list[tuple[str, float]]]:
    """`python -X importtime -m gradlint ARGUMENTS`: (total import time s, [(group, s)] by the
    import's own time, largest first). Groups: a third-party package, or gradlint's subpackage."""
    result = subprocess.run([python, "-X", "importtime", "-m", "gradlint", *arguments], cwd=cwd,
                            capture_output=True, text=True, timeout=600)
    groups: dict[str, float] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match is None:
            continue
        parts = match.group(2).split(".")
        group = ".".join(parts[:2]) if parts[0] == "gradlint" and len(parts) > 1 else parts[0]
        groups[group] = groups.get(group, 0.0) + int(match.group(1)) / 1e6
    return sum(groups.values()), sorted(groups.items(), key=lambda item: -item[1])


# --------------------------------------------------------------------------------------------
# Report


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_row(m: Measurement) -> None:
    if not m.available:
        print(f"{m.group:13s} {m.name:34s} {'n/a':>8s} {'n/a':>8s} {'n/a':>8s} {'n/a':>7s} {'n/a':>5s}  {m.reason}",
              flush=True)
        return
    spread = f"min {m.wall_min_s:.3f} of {m.repeats}" if m.repeats > 1 else ""
    note = "; ".join(part for part in (spread, m.reason) if part)
    print(f"{m.group:13s} {m.name:34s} {m.wall_s:8.3f} {m.cpu_s:8.3f} {m.peak_rss_mib:8.1f} "
          f"{m.findings:7d} {m.exit_code:5d}  {note}", flush=True)


def print_header() -> None:
    print(f"{'inputs':13s} {'measured':34s} {'wall s':>8s} {'cpu s':>8s} {'RSS MiB':>8s} {'found':>7s} "
          f"{'exit':>5s}  notes")
    print("-" * 110, flush=True)


@dataclass
class Target:
    name: str
    value: float | None
    limit: float
    higher_is_better: bool
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "n/a"
        ok = self.value >= self.limit if self.higher_is_better else self.value <= self.limit
        return "PASS" if ok else "FAIL"


def targets(results: dict[str, Measurement], cores: int) -> list[Target]:
    def wall(key: str) -> float | None:
        m = results.get(key)
        return m.wall_s if m is not None and m.available and not m.failed else None

    def cpu(key: str) -> float | None:
        m = results.get(key)
        return m.cpu_s if m is not None and m.available and not m.failed else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    jobs1 = wall("cold-jobs1")
    default_key = "cold-default" if "cold-default" in results else "cold-jobs2"
    default = wall(default_key)
    found = []
    found.append(Target("cold --jobs 1 / naive floor (wall)", ratio(jobs1, wall("naive")), 0.5, False))
    for tool in ("fixit", "torchfix"):
        label = "Fixit" if tool == "fixit" else "TorchFix"
        cpu_ratio = ratio(cpu(tool), cpu(default_key))
        found.append(Target(
            f"{label} / cold, default jobs (wall, speed-up)", ratio(wall(tool), default), 3.0, True,
            f"both on every core; CPU-time ratio {fmt(cpu_ratio)}" if cpu_ratio else "",
        ))
    note = ""
    if cores < 2:
        note = f"this machine gives the process {cores} core(s): no speed-up is possible"
    else:
        load = os.getloadavg()[0]
        note = f"{cores} usable cores, load average {load:.1f} at the end"
        if load > 0.5:
            note += " (other processes compete for the second core)"
    found.append(Target("cold --jobs 1 / cold --jobs 2 (speed-up)", ratio(jobs1, wall("cold-jobs2")), 1.6, True, note))
    found.append(Target("warm / cold --jobs 1 (wall)", ratio(wall("warm-jobs1"), jobs1), 0.05, False))
    warm, startup = wall("warm-jobs1"), wall("startup")
    found.append(Target("(warm - start-up) / cold --jobs 1 (wall)",
                        ratio(warm - startup, jobs1) if warm is not None and startup is not None else None, 0.05, False,
                        f"start-up {fmt(startup, 3)} s" if startup is not None else ""))
    for key, name, limit in (("single", "single ~500-line script, gradlint wall s", 0.4),
                             ("precommit", "10-file pre-commit case, gradlint wall s", 0.6)):
        floor = wall(f"{key}-floor")
        found.append(Target(name + " (own process)", wall(f"{key}-gradlint"), limit, False,
                            f"floor (python + import libcst + parse) {fmt(floor, 3)} s" if floor is not None else ""))
        found.append(Target(name + " (daemon running)", wall(f"{key}-daemon"), limit, False,
                            "`gradlint daemon start` first: the imports are paid once"))
    rss = [m.peak_rss_mib for key, m in results.items() if key.endswith("gradlint") or key.startswith(("cold", "warm"))
           if m.available and not m.failed and m.peak_rss_mib is not None]
    found.append(Target("peak RSS of any gradlint process, MiB", max(rss) if rss else None, 250.0, False))
    return found


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="*", type=Path, help="corpus folders (default: torch, lightning, timm, "
                        "transformers as installed or under /tmp/realcode/src)")
    parser.add_argument("--limit", type=int, default=2000, help="files to use, spread evenly over the sorted "
                        "paths; 0 for all (default: 2000, the issue's corpus size)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each small case and of the warm run; the "
                        "median is reported (default: 3)")
    parser.add_argument("--gradlint", default=None, help="gradlint executable (default: next to this Python)")
    parser.add_argument("--python", default=sys.executable, help="Python with libcst for the floors "
                        "(default: this one)")
    parser.add_argument("--torchfix", default=DEFAULT_TORCHFIX, help=f"TorchFix executable (default: {DEFAULT_TORCHFIX})")
    parser.add_argument("--fixit", default=DEFAULT_FIXIT, help=f"Fixit executable (default: {DEFAULT_FIXIT})")
    parser.add_argument("--skip-tools", action="store_true", help="do not run Fixit and TorchFix")
    parser.add_argument("--skip-floors", action="store_true", help="do not run the libcst floors")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one measured run is killed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    args = parser.parse_args()
    # A user's Python keeps compiled bytecode; with PYTHONDONTWRITEBYTECODE set every measured run
    # would compile gradlint's modules again (0.3 s of a single script's 1.0 s on this machine).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    # Every gradlint run measured here runs in its own process unless a row says "daemon": a
    # check daemon the user left running must not serve the cold rows.
    os.environ["GRADLINT_NO_DAEMON"] = "1"

    gradlint = executable(args.gradlint) or executable(str(Path(sys.executable).parent / "gradlint")) \
        or shutil.which("gradlint")
    if gradlint is None:
        parser.error("gradlint not found: pass --gradlint PATH")
    corpus_dirs = [path.resolve() for path in args.corpus] or default_corpus_dirs()
    missing = [str(path) for path in corpus_dirs if not path.is_dir()]
    if missing or not corpus_dirs:
        parser.error(f"no corpus folder{': ' + ', '.join(missing) if missing else ''}")

    work = Path(tempfile.mkdtemp(prefix="gradlint-bench-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still kill the child and clean up
    try:
        return run_benchmark(args, gradlint, corpus_dirs, work)
    finally:
        if args.keep:
            print(f"temporary files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_benchmark(args: argparse.Namespace, gradlint: str, corpus_dirs: list[Path], work: Path) -> int:
    corpus_files, corpus = copy_corpus(corpus_dirs, args.limit, work / "corpus")
    listing = work / "corpus-files.txt"
    listing.write_text("".join(f"{path}\n" for path in corpus_files), encoding="utf-8")
    (work / "single").mkdir()
    single_script, single_lines = compose_single_script(work / "single")
    precommit_files = copy_precommit_files(work / "precommit")

    flags = gradlint_flags(gradlint)
    cores = usable_cores()
    torchfix = None if args.skip_tools else executable(args.torchfix)
    fixit = None if args.skip_tools else executable(args.fixit)
    environment = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "usable_cores": cores,
        "load_average_start": os.getloadavg(),
        "gradlint": gradlint,
        "gradlint_version": version_of([gradlint, "--version"]),
        "gradlint_speed_flags": sorted(flags),
        "torchfix": torchfix and version_of([torchfix, "--version"]),
        "fixit": fixit and version_of([fixit, "--version"]),
    }

    print(f"corpus: {corpus['files']} files, {corpus['lines']:,} lines "
          f"(of {corpus['available_files']} files; {'all' if args.limit <= 0 else f'limit {args.limit}'}, "
          f"every k-th of the sorted paths)")
    for name, entry in corpus["per_corpus"].items():
        print(f"  {name:14s} {entry['files']:5d} of {entry['available_files']:5d} files, {entry['lines']:>9,} lines"
              f"  {corpus['dirs'][name]}")
    print(f"single script: {single_lines} lines from {', '.join(SINGLE_SCRIPT_SOURCES)}; "
          f"pre-commit case: {len(precommit_files)} fixture files, "
          f"{sum(line_count(p) for p in precommit_files):,} lines")
    print(f"gradlint {environment['gradlint_version']} ({gradlint}); speed flags: "
          f"{', '.join(sorted(flags)) or 'none'}; TorchFix: {environment['torchfix'] or 'n/a'}; "
          f"Fixit: {environment['fixit'] or 'n/a'}")
    print(f"Python {environment['python']}, {environment['cpus']} CPUs ({cores} usable), load average "
          f"{', '.join(f'{x:.1f}' for x in environment['load_average_start'])}; temporary directory {work}")
    print(f"wall and cpu: median of {args.repeat} for the small cases and the warm run, one run otherwise; "
          "cpu = user + system of the process and its workers; RSS = largest single process\n", flush=True)
    print_header()

    results: dict[str, Measurement] = {}

    def record(key: str, m: Measurement) -> None:
        results[key] = m
        print_row(m)

    corpus_args = [str(path) for path in corpus_files]
    # -- floors --------------------------------------------------------------------------------
    for key, mode, label in (("naive", "naive", "naive floor (parse+pos/scope/qname)"),
                             ("parse", "parse", "parse-only floor (parse_module)")):
        if args.skip_floors:
            record(key, unavailable(label, "corpus", "--skip-floors"))
            continue
        m = measure(label, "corpus", [args.python, "-c", FLOOR_PROGRAM, mode, str(listing)], work, 1, args.timeout)
        m.reason = m.reason or m.output_sample
        record(key, m)

    # -- gradlint on the corpus ----------------------------------------------------------------
    base = [gradlint, "check", "--exit-zero", "-q"]

    def cache_flags(directory: str) -> list[str]:
        if "--cache-dir" in flags:
            return ["--cache-dir", str(work / directory)]
        return ["--no-cache"] if "--no-cache" in flags else []

    jobs1 = ["--jobs", "1"] if "--jobs" in flags else []
    cold_note = "" if "--jobs" in flags else "no --jobs flag: gradlint's own default"
    m = measure("gradlint cold --jobs 1", "corpus", base + jobs1 + cache_flags("cache-jobs1") + corpus_args,
                work, 1, args.timeout)
    m.reason = m.reason or cold_note
    record("cold-jobs1", m)
    if "--jobs" in flags:
        record("cold-jobs2", measure("gradlint cold --jobs 2", "corpus",
                                     base + ["--jobs", "2"] + cache_flags("cache-jobs2") + corpus_args,
                                     work, 1, args.timeout))
    else:
        record("cold-jobs2", unavailable("gradlint cold --jobs 2", "corpus", "gradlint has no --jobs yet"))
    if cores != 2 or "--jobs" not in flags:  # with 2 cores the default is the --jobs 2 row
        record("cold-default", measure("gradlint cold (default jobs)", "corpus", base + cache_flags("cache-default")
                                       + corpus_args, work, 1, args.timeout))
    if "--cache-dir" in flags:
        record("warm-jobs1", measure("gradlint warm --jobs 1 (same cache)", "corpus",
                                     base + jobs1 + cache_flags("cache-jobs1") + corpus_args,
                                     work, args.repeat, args.timeout))
    else:
        record("warm-jobs1", unavailable("gradlint warm (same cache)", "corpus", "gradlint has no --cache-dir yet"))

    # -- start-up: the interpreter and gradlint's imports, no file --------------------------------
    record("startup", measure("gradlint --version (start-up)", "start-up", [gradlint, "--version"], work,
                              args.repeat, args.timeout))

    # -- whole-process small cases -------------------------------------------------------------
    small_cache = ["--no-cache"] if "--no-cache" in flags else []  # cold: the slow case a hook meets
    small_cases = (("single", "single script", [str(single_script)], work / "single"),
                   ("precommit", "10 files", [str(p) for p in precommit_files], work / "precommit"))
    daemon = start_daemon(gradlint, work)
    environment["daemon"] = "started" if daemon is not None else "not available"
    for key, group, paths, cwd in small_cases:
        record(f"{key}-gradlint", measure("gradlint check (cold)", group, base + small_cache + paths, cwd,
                                          args.repeat, args.timeout))
        if daemon is None:
            record(f"{key}-daemon", unavailable("gradlint check (daemon)", group, "no check daemon here"))
        else:
            # cpu is the client's alone: the daemon's worker, not a child of it, does the work.
            record(f"{key}-daemon", measure("gradlint check (daemon)", group, base + small_cache + paths, cwd,
                                            args.repeat, args.timeout, env=daemon))
        # What any libcst-based checker pays before its first rule: the interpreter, libcst's
        # import and libcst's parse of these files (the floor the small targets are read against).
        record(f"{key}-floor", measure("floor: python + import libcst + parse", group,
                                       [args.python, "-c", SMALL_FLOOR_PROGRAM, *paths], cwd, args.repeat,
                                       args.timeout))

    if daemon is not None:
        environment["daemon_peak_rss_mib"] = stop_daemon(gradlint, daemon)
        print(f"  (the daemon's own peak RSS: {environment['daemon_peak_rss_mib']} MiB; each run's worker is forked "
              "from it and shares its pages)")

    # -- other linters -------------------------------------------------------------------------
    tools = (("fixit", "Fixit 'fixit lint'", fixit, ["lint"]), ("torchfix", "TorchFix", torchfix, []))
    for key, label, path, subcommand in tools:
        for case_key, group, paths, cwd, repeat in (("", "corpus", corpus_args, work, 1),
                                                    ("single-", "single script", small_cases[0][2], small_cases[0][3],
                                                     args.repeat),
                                                    ("precommit-", "10 files", small_cases[1][2], small_cases[1][3],
                                                     args.repeat)):
            if path is None:
                reason = "--skip-tools" if args.skip_tools else "executable not found"
                record(case_key + key, unavailable(label, group, reason))
                continue
            m = measure(label, group, [path, *subcommand, *paths], cwd, repeat, args.timeout)
            m.reason = m.reason or m.output_sample  # the tool's own count of checked files
            record(case_key + key, m)

    # -- where start-up goes -------------------------------------------------------------------
    total, groups = import_breakdown(args.python, ["check", "--no-cache", "--exit-zero", "-q", str(single_script)],
                                     work / "single")
    environment["imports_single_script"] = {"total_s": round(total, 4), **{k: round(v, 4) for k, v in groups}}
    print(f"\nimports of `gradlint check` on the single script (python -X importtime, one run): {total:.3f} s")
    print("  " + ", ".join(f"{group} {seconds * 1000:.0f} ms" for group, seconds in groups[:12]))

    # -- targets -------------------------------------------------------------------------------
    found = targets(results, cores)
    print("\ntargets (same run)")
    print(f"{'ratio':58s} {'value':>8s} {'target':>10s}  verdict  note")
    print("-" * 124)
    for target in found:
        bound = (">= " if target.higher_is_better else "<= ") + f"{target.limit:g}"
        print(f"{target.name:58s} {fmt(target.value, 3):>8s} {bound:>10s}  {target.verdict:7s}  {target.note}")
    environment["load_average_end"] = os.getloadavg()

    if args.json:
        document = {
            "environment": environment,
            "corpus": corpus,
            "single_script_lines": single_lines,
            "precommit_files": [str(p.relative_to(work / "precommit")) for p in precommit_files],
            "results": {key: {k: v for k, v in asdict(m).items() if k != "command"} | {"command": m.command[:6]}
                        for key, m in results.items()},
            "targets": [asdict(t) | {"verdict": t.verdict} for t in found],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
