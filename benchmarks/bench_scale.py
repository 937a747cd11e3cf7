"""Does the cost of a project grow with the project? Real trees alone and together, and sibling scripts.

    python benchmarks/bench_scale.py [--cases trees,combined,series] [--jobs default,1]
        [--copies 10,20,25,40,50,100] [--repeat 1] [--reference /tmp/gl-base/bin/gradlint]
        [--fixit /tmp/bench-fixit/bin/fixit] [--json results.json] [--keep]

Run by hand, not in CI (the full run takes the better part of an hour). It builds, in a temporary
directory, the inputs of issues 14 and 15, each from a pinned commit of a public repository
(only the `*.py` files; nothing of theirs is kept in this repository):

- the trees alone: pytorch-image-models, pytorch-lightning, fairseq, and pytorch/examples (the
  93-file folder of example training scripts);
- the trees together: the first three in one folder (1,981 files), and all four (2,074 files);
- the sibling series: N copies of one ~540-line argparse training script (three fixture scripts
  joined, as bench_check.py's single script) in sibling folders `expNNN/train.py`.

The repositories are read from git mirrors (`--mirrors`, default /work/.mirror/OWNER+NAME/repo,
where this project's tools fetch them); a missing one is reported and its cases are skipped. Any
clone works: `git clone --bare https://github.com/OWNER/NAME /work/.mirror/OWNER+NAME/repo`.

Every measured run is its own process (`gradlint check --no-cache --exit-zero --format json`),
timed with os.wait4 as bench_check.py does: wall time, CPU time of the process and its workers,
peak RSS of the largest single process. With `--reference GRADLINT` the same cases also run with
another gradlint (the code before a change) and the JSON reports are compared: the findings must be
identical, and the script says where they differ. Then the targets of issue 15: together <= 1.1x the
sum alone, 40 copies <= 4.6x 10 copies (issue 14: 100 <= 4.6x 25 too), and with `--fixit` the
2,074-file tree >= 3x faster than Fixit at the default jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check import (  # noqa: E402  (the one way this project measures a process)
    DEFAULT_FIXIT,
    DEFAULT_TORCHFIX,
    compose_single_script,
    executable,
    line_count,
    run_once,
    usable_cores,
)

MIRRORS = Path("/work/.mirror")
TREES = {
    # name: (repository, commit, folder inside it)
    "timm": ("huggingface/pytorch-image-models", "aa4b585", ""),
    "lightning": ("Lightning-AI/pytorch-lightning", "7f0c343", ""),
    "fairseq": ("facebookresearch/fairseq", "3d262bb", ""),
    "examples": ("pytorch/examples", "77f55b9", ""),
}
COMBINED = {
    "three": ("timm", "lightning", "fairseq"),
    "four": ("timm", "lightning", "fairseq", "examples"),
}
DEFAULT_COPIES = (10, 20, 25, 40, 50, 100)


# --------------------------------------------------------------------------------------------
# Inputs


def mirror(repository: str, mirrors: Path) -> Path | None:
    for candidate in (mirrors / repository.replace("/", "+") / "repo", mirrors / repository.replace("/", "+")):
        if (candidate / "HEAD").exists() or (candidate / ".git").exists():
            return candidate
    return None


def export_tree(repository: str, commit: str, folder: str, mirrors: Path, destination: Path) -> int | str:
    """Write the `*.py` files of `repository` at `commit` under destination; the file count, or why not.

    Blob by blob (`git cat-file --batch`), not `git archive`: a mirror may lack its large binary
    files, which an archive of the whole commit would need."""
    git_dir = mirror(repository, mirrors)
    if git_dir is None:
        return f"no mirror of {repository} under {mirrors}"
    git = ["git", f"--git-dir={git_dir}"]
    try:
        listing = subprocess.run([*git, "ls-tree", "-r", "-z", commit, *([folder] if folder else [])],
                                 capture_output=True, check=True).stdout.decode("utf-8", "surrogateescape")
    except subprocess.CalledProcessError as error:
        return f"git ls-tree {repository}@{commit} failed: {error.stderr.decode(errors='replace').strip()[-200:]}"
    wanted: list[tuple[str, str]] = []
    for entry in filter(None, listing.split("\0")):
        meta, _, name = entry.partition("\t")
        mode, kind, sha = meta.split()
        if kind == "blob" and mode in ("100644", "100755") and name.endswith(".py"):
            wanted.append((sha, name))
    batch = subprocess.run([*git, "cat-file", "--batch"], input="".join(f"{sha}\n" for sha, _ in wanted).encode(),
                           capture_output=True, check=False).stdout
    count, offset = 0, 0
    for sha, name in wanted:
        end = batch.index(b"\n", offset)
        header = batch[offset:end].split()
        offset = end + 1
        if len(header) < 3 or header[1] != b"blob":  # "<sha> missing"
            continue
        size = int(header[2])
        data, offset = batch[offset:offset + size], offset + size + 1
        relative = Path(name[len(folder):].lstrip("/") if folder else name)
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        count += 1
    return count


def build_inputs(work: Path, cases: set[str], copies: list[int], mirrors: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """name -> folder to check; name -> why a case is missing."""
    folders: dict[str, Path] = {}
    missing: dict[str, str] = {}
    if cases & {"trees", "combined"}:
        for name, (repository, commit, folder) in TREES.items():
            destination = work / "alone" / name / name
            result = export_tree(repository, commit, folder, mirrors, destination)
            if isinstance(result, str):
                missing[name] = result
                continue
            folders[name] = destination
        for combined, members in COMBINED.items():
            if any(member not in folders for member in members):
                missing[combined] = "a member tree is missing"
                continue
            root = work / "together" / combined
            for member in members:
                shutil.copytree(folders[member], root / member)
            folders[combined] = root
    if "series" in cases:
        template, _ = compose_single_script(_scratch(work / "template"))
        text = template.read_text(encoding="utf-8")
        for count in copies:
            root = work / "series" / f"copies-{count}"
            for index in range(count):
                (root / f"exp{index:03d}").mkdir(parents=True)
                (root / f"exp{index:03d}" / "train.py").write_text(text, encoding="utf-8")
            folders[f"copies-{count}"] = root
    return folders, missing


def _scratch(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def tree_size(folder: Path) -> tuple[int, int]:
    files = [path for path in folder.rglob("*.py")]
    return len(files), sum(line_count(path) for path in files)


# --------------------------------------------------------------------------------------------
# Runs


@dataclass
class Run:
    case: str
    jobs: str
    gradlint: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    exit_code: int | None = None
    findings: int | None = None
    report: dict | None = None
    problem: str = ""

    @property
    def wall(self) -> float | None:
        return statistics.median(self.walls) if self.walls else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(self.cpus) if self.cpus else None

    @property
    def peak(self) -> float | None:
        return max(self.rss) if self.rss else None


def run_gradlint(gradlint: str, folder: Path, jobs: str, repeat: int, timeout: float, label: str) -> Run:
    run = Run(folder.name, jobs, label)
    cwd = folder.parent
    for attempt in range(repeat):
        report_path = Path(tempfile.mkstemp(prefix="gradlint-report-", suffix=".json")[1])
        command = [gradlint, "check", "--no-cache", "--exit-zero", "--format", "json", "-o", str(report_path)]
        if jobs != "default":
            command += ["--jobs", jobs]
        command.append(folder.name)
        wall, cpu, peak, code, _, stderr = run_once(command, cwd, timeout)
        run.walls.append(wall)
        run.cpus.append(cpu)
        run.rss.append(peak)
        run.exit_code = code
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            report = None
        report_path.unlink(missing_ok=True)
        if code != 0 or report is None:
            run.problem = f"exit {code}: {stderr.strip()[-300:]}"
            break
        if attempt == 0:
            run.report = comparable(report)
            run.findings = len(report.get("findings", []))
    return run


def run_tool(command: list[str], cwd: Path, repeat: int, timeout: float, label: str, case: str) -> Run:
    run = Run(case, "default", label)
    for _ in range(repeat):
        wall, cpu, peak, code, stdout, stderr = run_once(command, cwd, timeout)
        run.walls.append(wall)
        run.cpus.append(cpu)
        run.rss.append(peak)
        run.exit_code = code
        if code < 0 or "Traceback" in stderr:
            run.problem = f"exit {code}: {stderr.strip()[-300:]}"
            break
        run.problem = (stderr.strip().splitlines() or [""])[-1][:120]
    return run


def comparable(report: dict) -> dict:
    """What must not change between two gradlints: findings, skipped files, errors, counts."""
    findings = sorted(report.get("findings", []), key=lambda f: (f["path"], f["line"], f["column"], f["code"], f["message"]))
    return {
        "findings": findings,
        "skipped": sorted(report.get("skipped", []), key=repr),
        "errors": sorted(report.get("errors", []), key=repr),
        "summary": report.get("summary"),
    }


def differences(a: dict, b: dict, limit: int = 5) -> list[str]:
    if a == b:
        return []
    out = []
    for key in ("summary", "skipped", "errors"):
        if a.get(key) != b.get(key):
            out.append(f"{key}: {json.dumps(a.get(key))[:200]} != {json.dumps(b.get(key))[:200]}")
    left = {json.dumps(f, sort_keys=True) for f in a["findings"]}
    right = {json.dumps(f, sort_keys=True) for f in b["findings"]}
    for only, side in ((left - right, "only in this gradlint"), (right - left, "only in the reference")):
        for item in sorted(only)[:limit]:
            finding = json.loads(item)
            out.append(f"{side}: {finding['path']}:{finding['line']}:{finding['column']} {finding['code']} "
                       f"{finding['message'][:100]}")
        if len(only) > limit:
            out.append(f"{side}: ... {len(only) - limit} more")
    return out


# --------------------------------------------------------------------------------------------
# Report


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def print_run(run: Run, sizes: dict[str, tuple[int, int]]) -> None:
    files, lines = sizes.get(run.case, (0, 0))
    spread = f"{min(run.walls):.2f}-{max(run.walls):.2f}" if len(run.walls) > 1 else ""
    print(f"{run.gradlint:10s} {run.case:12s} {files:6d} {lines:>9,} {run.jobs:>7s} {fmt(run.wall):>8s} {spread:>13s} "
          f"{fmt(run.cpu):>8s} {fmt(run.peak, 1):>8s} {run.findings if run.findings is not None else '':>6}  "
          f"{run.problem}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="trees,combined,series",
                        help="comma-separated: trees (each alone), combined (together), series (sibling copies)")
    parser.add_argument("--jobs", default="default,1", help="comma-separated --jobs values; 'default' passes none")
    parser.add_argument("--copies", default=",".join(map(str, DEFAULT_COPIES)), help="sibling series sizes")
    parser.add_argument("--only", default="", help="comma-separated case names to run (e.g. four,copies-40)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; the median is reported")
    parser.add_argument("--gradlint", default=None, help="gradlint executable (default: next to this Python)")
    parser.add_argument("--reference", default=None, help="another gradlint to compare findings and times with")
    parser.add_argument("--reference-jobs", default=None, help="--jobs values for the reference (default: as --jobs)")
    parser.add_argument("--fixit", default=None, help=f"run Fixit on examples and the four trees (e.g. {DEFAULT_FIXIT})")
    parser.add_argument("--torchfix", default=None, help=f"run TorchFix there too (e.g. {DEFAULT_TORCHFIX})")
    parser.add_argument("--mirrors", type=Path, default=MIRRORS, help=f"git mirrors (default: {MIRRORS})")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before one run is killed")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    args = parser.parse_args()
    # A user's Python keeps compiled bytecode; with PYTHONDONTWRITEBYTECODE set every measured run
    # would compile gradlint's modules again (0.3 s of a single script's 1.0 s on this machine).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    gradlint = executable(args.gradlint) or executable(str(Path(sys.executable).parent / "gradlint")) \
        or shutil.which("gradlint")
    if gradlint is None:
        parser.error("gradlint not found: pass --gradlint PATH")
    reference = executable(args.reference) if args.reference else None
    if args.reference and reference is None:
        parser.error(f"reference gradlint not found: {args.reference}")
    fixit = executable(args.fixit) if args.fixit else None
    torchfix = executable(args.torchfix) if args.torchfix else None
    cases = {case.strip() for case in args.cases.split(",") if case.strip()}
    copies = [int(count) for count in args.copies.split(",") if count.strip()]
    jobs_values = [value.strip() for value in args.jobs.split(",") if value.strip()]
    only = {name.strip() for name in args.only.split(",") if name.strip()}

    work = Path(tempfile.mkdtemp(prefix="gradlint-scale-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run_benchmark(args, gradlint, reference, {"Fixit": fixit, "TorchFix": torchfix}, cases, copies,
                             jobs_values, only, work)
    finally:
        if args.keep:
            print(f"temporary files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_benchmark(args, gradlint, reference, tools, cases, copies, jobs_values, only, work) -> int:
    folders, missing = build_inputs(work, cases, copies, args.mirrors)
    wanted = [name for name in folders if (name in TREES and "trees" in cases) or (name in COMBINED and "combined" in cases)
              or (name.startswith("copies-") and "series" in cases)]
    if only:
        wanted = [name for name in wanted if name in only]
    sizes = {name: tree_size(folders[name]) for name in folders}
    reference_jobs = [v.strip() for v in (args.reference_jobs or ",".join(jobs_values)).split(",") if v.strip()]
    print(f"gradlint {gradlint}; reference {reference or 'none'} (--jobs {','.join(reference_jobs)}); "
          + "; ".join(f"{name} {path or 'not run'}" for name, path in tools.items()))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs ({usable_cores()} usable), load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; temporary directory {work}")
    for name, why in missing.items():
        print(f"missing {name}: {why}")
    for name, (repository, commit, _) in TREES.items():
        if name in sizes:
            print(f"  {name:10s} {repository}@{commit}: {sizes[name][0]} files, {sizes[name][1]:,} lines")
    print(f"\n{'gradlint':10s} {'case':12s} {'files':>6s} {'lines':>9s} {'jobs':>7s} {'wall s':>8s} {'min-max':>13s} "
          f"{'cpu s':>8s} {'RSS MiB':>8s} {'found':>6s}  notes")
    print("-" * 110, flush=True)

    runs: dict[tuple[str, str, str], Run] = {}
    mismatches: list[str] = []
    for name in wanted:
        for jobs in jobs_values:
            runs[("this", name, jobs)] = run = run_gradlint(gradlint, folders[name], jobs, args.repeat, args.timeout, "this")
            print_run(run, sizes)
        if reference is not None:
            for jobs in reference_jobs:
                runs[("reference", name, jobs)] = run = run_gradlint(reference, folders[name], jobs, args.repeat,
                                                                     args.timeout, "reference")
                print_run(run, sizes)
            references = [runs[("reference", name, jobs)] for jobs in reference_jobs]
            for jobs in jobs_values:
                this = runs[("this", name, jobs)]
                other = next((r for r in references if r.jobs == jobs), references[0] if references else None)
                if this.report is None or other is None or other.report is None:
                    continue
                diff = differences(this.report, other.report)
                if diff:
                    mismatches.append(f"{name} --jobs {jobs}: " + "; ".join(diff))
                    print(f"  FINDINGS DIFFER on {name} --jobs {jobs} (reference --jobs {other.jobs}):\n    "
                          + "\n    ".join(diff), flush=True)
                else:
                    print(f"  --jobs {jobs}: findings identical to the reference's (--jobs {other.jobs}; "
                          f"{this.findings} findings)", flush=True)
        for tool, path in tools.items():
            if path is not None and name in ("four", "examples"):
                command = [path, "lint", name] if tool == "Fixit" else [path, name]
                runs[(tool, name, "default")] = run = run_tool(command, folders[name].parent, 1, args.timeout, tool, name)
                print_run(run, sizes)

    # -- targets --------------------------------------------------------------------------------
    print("\ntargets (same run)")
    results = []

    def wall(label: str, name: str, jobs: str) -> float | None:
        run = runs.get((label, name, jobs))
        return run.wall if run is not None and not run.problem.startswith("exit") else None

    def target(text: str, value: float | None, limit: float, higher: bool) -> None:
        verdict = "n/a" if value is None else ("PASS" if (value >= limit if higher else value <= limit) else "FAIL")
        bound = (">= " if higher else "<= ") + f"{limit:g}"
        print(f"{text:60s} {fmt(value, 3):>8s} {bound:>8s}  {verdict}")
        results.append({"target": text, "value": value, "limit": limit, "higher_is_better": higher, "verdict": verdict})

    for label in ("this", "reference"):
        for jobs in jobs_values:
            for combined, members in COMBINED.items():
                together = wall(label, combined, jobs)
                alone = [wall(label, member, jobs) for member in members]
                if together is not None and all(value is not None for value in alone):
                    total = sum(alone)  # type: ignore[arg-type]
                    target(f"[{label}] {combined} together / sum alone, --jobs {jobs}", together / total, 1.1, False)
            for small, large in ((10, 40), (25, 100)):
                a, b = wall(label, f"copies-{small}", jobs), wall(label, f"copies-{large}", jobs)
                if a is not None and b is not None:
                    target(f"[{label}] {large} copies / {small} copies, --jobs {jobs}", b / a, 4.6, False)
        for tool, path in tools.items():
            if path is None:
                continue
            for name in ("four", "examples"):
                ours, theirs = wall(label, name, "default"), wall(tool, name, "default")
                if ours is not None and theirs is not None:
                    target(f"[{label}] {tool} / gradlint on {name}, default jobs (speed-up)", theirs / ours, 3.0, True)
    if reference is not None:
        print(f"\nfindings: {'IDENTICAL on every case' if not mismatches else f'{len(mismatches)} case(s) DIFFER'}")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")

    if args.json:
        document = {
            "sizes": sizes,
            "missing": missing,
            "runs": [{"gradlint": run.gradlint, "case": run.case, "jobs": run.jobs, "walls": run.walls, "cpus": run.cpus,
                      "rss_mib": run.rss, "findings": run.findings, "problem": run.problem} for run in runs.values()],
            "targets": results,
            "mismatches": mismatches,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
