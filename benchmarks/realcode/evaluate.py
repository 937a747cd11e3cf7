#!/usr/bin/env python3
"""Evaluate gradlint against hand-labelled real training code.

Each manifest under ``benchmarks/realcode/repos/`` names a public repository, a commit, the
files gradlint checks there, and labels: (rule, file, line, fires, reason), ground truth from
reading the code. This script materialises each repository's ``paths`` at ``commit`` into a
temporary folder (from a git mirror, or from files saved under the files root), runs

    python -m gradlint check --format json --no-cache <check files>

from that folder, compares the findings with the labels, and prints per-rule and overall
precision and recall, the default gate (findings at warning or above), every finding that no
label covers, and how long gradlint took on each repository.

Third-party source never enters this repository: the manifests hold only names, commits,
paths, line numbers and one-line reasons. The script fetches nothing itself.

Usage:
    python benchmarks/realcode/evaluate.py [--repo NAME ...] [--json FILE]
        [--mirror-root DIR] [--files-root DIR] [--manifests DIR] [--keep DIR] [-- gradlint args]

Standard library only. Exits 0 unless the script itself fails (bad manifest, gradlint crash
with no JSON output).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parent.parent  # the gradlint checkout this script lives in
DEFAULT_MANIFESTS = HERE / "repos"
DEFAULT_MIRROR_ROOT = "/work/.mirror"
DEFAULT_FILES_ROOT = "/work/.mirror-files"

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
GATE = SEVERITY_RANK["warning"]
NO_MIRROR = "skipped: no mirror (bring it with the search tool's fetch verb)"
HEX40 = re.compile(r"^[0-9a-f]{40}$")
RULE_CODE = re.compile(r"^GL\d{3}$")


class ManifestError(Exception):
    pass


@dataclass(frozen=True)
class Label:
    rule: str
    file: str
    line: int
    fires: bool
    reason: str
    severity: str | None = None
    cell: int | None = None  # notebooks: `line` is then the line within this code cell
    message: str | None = None
    """With fires = true: text the finding's message must hold (what the rule must say there)."""

    @property
    def key(self) -> tuple[str, str, int | None, int]:
        return (self.rule, self.file, self.cell, self.line)


@dataclass
class Manifest:
    source: Path
    repository: str
    commit: str
    paths: list[str] | None
    check: list[str]
    labels: list[Label]
    note: str = ""

    @property
    def slug(self) -> str:
        return self.repository.replace("/", "+")


@dataclass
class RepoResult:
    manifest: Manifest
    status: str = "ok"  # "ok" or a "skipped: ..." / "failed: ..." sentence
    source: str = ""  # where the tree came from
    seconds: float | None = None
    findings: list[dict] = field(default_factory=list)  # on checked files only
    gradlint_errors: list = field(default_factory=list)
    gradlint_skipped: list = field(default_factory=list)
    files_checked: int | None = None


# --------------------------------------------------------------------------- manifests


def _norm(path: str) -> str:
    """A repository-relative path in one canonical form (posix, no ./, no trailing slash)."""
    text = path.replace("\\", "/").strip()
    while text.startswith("./"):
        text = text[2:]
    text = os.path.normpath(text).replace("\\", "/") if text else text
    return "" if text == "." else text


def load_manifest(path: Path) -> Manifest:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from exc

    def need(key: str, kind: type):
        if key not in data:
            raise ManifestError(f"{path}: missing `{key}`")
        if not isinstance(data[key], kind):
            raise ManifestError(f"{path}: `{key}` must be {kind.__name__}")
        return data[key]

    repository = need("repository", str).strip()
    if repository.count("/") != 1:
        raise ManifestError(f"{path}: repository must be owner/name, got {repository!r}")
    commit = need("commit", str).strip().lower()
    if not HEX40.match(commit):
        raise ManifestError(f"{path}: commit must be 40 hex digits, got {commit!r}")
    paths = data.get("paths")
    if paths is not None:
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ManifestError(f"{path}: `paths` must be a list of strings")
        paths = [_norm(p) for p in paths if _norm(p)]
    check = [_norm(c) for c in need("check", list)]
    if not check or not all(check):
        raise ManifestError(f"{path}: `check` must list at least one file")
    note = data.get("note", "")
    labels: list[Label] = []
    seen: dict[tuple[str, str, int], int] = {}
    for index, raw in enumerate(data.get("label", []), start=1):
        where = f"{path}: label {index}"
        if not isinstance(raw, dict):
            raise ManifestError(f"{where}: must be a table")
        for key in ("rule", "file", "line", "fires", "reason"):
            if key not in raw:
                raise ManifestError(f"{where}: missing `{key}`")
        rule = str(raw["rule"]).strip().upper()
        if not RULE_CODE.match(rule):
            raise ManifestError(f"{where}: rule must look like GL101, got {raw['rule']!r}")
        file = _norm(str(raw["file"]))
        if file not in check:
            raise ManifestError(f"{where}: file {file!r} is not in `check`")
        line = raw["line"]
        if not isinstance(line, int) or isinstance(line, bool) or line < 1:
            raise ManifestError(f"{where}: line must be a positive integer")
        fires = raw["fires"]
        if not isinstance(fires, bool):
            raise ManifestError(f"{where}: fires must be true or false")
        reason = str(raw["reason"]).strip()
        if not reason or "\n" in reason:
            raise ManifestError(f"{where}: reason must be one non-empty line")
        severity = raw.get("severity")
        if severity is not None:
            severity = str(severity).lower()
            if severity not in SEVERITY_RANK:
                raise ManifestError(f"{where}: severity must be info, warning or error")
            if not fires:
                raise ManifestError(f"{where}: severity is only allowed with fires = true")
        cell = raw.get("cell")
        if cell is not None and (not isinstance(cell, int) or isinstance(cell, bool) or cell < 1):
            raise ManifestError(f"{where}: cell must be a positive integer")
        message = raw.get("message")
        if message is not None:
            message = str(message)
            if not fires or not message.strip():
                raise ManifestError(f"{where}: message must be non-empty and is only allowed with fires = true")
        label = Label(rule, file, line, fires, reason, severity, cell, message)
        if label.key in seen:
            raise ManifestError(f"{where}: duplicates label {seen[label.key]} ({rule} {file}:{line})")
        seen[label.key] = index
        labels.append(label)
    return Manifest(path, repository, commit, paths, check, labels, note)


def select_manifests(manifests: list[Manifest], wanted: list[str]) -> list[Manifest]:
    if not wanted:
        return manifests
    chosen = []
    for manifest in manifests:
        names = {
            manifest.repository.lower(),
            manifest.repository.split("/")[1].lower(),
            manifest.source.stem.lower(),
            manifest.source.name.lower(),
        }
        if any(w.lower() in names for w in wanted):
            chosen.append(manifest)
    return chosen


# --------------------------------------------------------------------------- sources


def _git(git_dir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, **kwargs)


def _is_git_dir(path: Path) -> bool:
    return path.is_dir() and (path / "HEAD").is_file() and (path / "objects").is_dir()


def find_git_dirs(mirror_root: Path, slug: str) -> list[Path]:
    """Git directories under <mirror_root>/<owner>+<name>: itself, repo/, .git/, or any child."""
    base = mirror_root / slug
    if not base.is_dir():
        return []
    candidates = [base, base / "repo", base / ".git", base / "repo" / ".git"]
    candidates += sorted(p for p in base.iterdir() if p.is_dir())
    found: list[Path] = []
    for candidate in candidates:
        if _is_git_dir(candidate) and candidate not in found:
            found.append(candidate)
    return found


def has_commit(git_dir: Path, commit: str) -> bool:
    return _git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def _safe_extract(archive: bytes, dest: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not str(target).startswith(str(dest.resolve())):
                raise RuntimeError(f"unsafe path in archive: {member.name}")
            if member.issym() or member.islnk():
                continue  # links are not needed to lint, and may point outside
            if hasattr(tarfile, "data_filter"):  # Python 3.12+ (and 3.11.4+): no warning
                tar.extract(member, dest, filter="data")
            else:
                tar.extract(member, dest)


def materialise_from_git(git_dir: Path, manifest: Manifest, dest: Path) -> list[str]:
    """Extract the manifest's paths (and its checked files) at its commit; returns missing paths."""
    wanted = _wanted_paths(manifest)
    missing = []
    present = []
    if wanted is None:
        present = []
    else:
        for item in wanted:
            probe = _git(git_dir, "cat-file", "-e", f"{manifest.commit}:{item}")
            (present if probe.returncode == 0 else missing).append(item)
        if not present:
            return missing
    proc = _git(git_dir, "archive", "--format=tar", manifest.commit, "--", *present)
    if proc.returncode != 0:
        raise RuntimeError(f"git archive failed: {proc.stderr.decode(errors='replace').strip()}")
    _safe_extract(proc.stdout, dest)
    return missing


def materialise_from_files(files_dir: Path, manifest: Manifest, dest: Path) -> list[str]:
    wanted = _wanted_paths(manifest)
    missing = []
    if wanted is None:
        shutil.copytree(files_dir, dest, dirs_exist_ok=True, symlinks=False)
        return missing
    for item in wanted:
        source = files_dir / item
        target = dest / item
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=False)
        elif source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        else:
            missing.append(item)
    return missing


def _wanted_paths(manifest: Manifest) -> list[str] | None:
    if manifest.paths is None:
        return None
    wanted = list(dict.fromkeys(manifest.paths))
    for file in manifest.check:
        covered = any(file == p or file.startswith(p + "/") for p in wanted)
        if not covered:
            wanted.append(file)
    return wanted


def materialise(manifest: Manifest, dest: Path, mirror_root: Path, files_root: Path) -> tuple[str, str]:
    """Returns (status, source). status is 'ok' or a 'skipped: ...' sentence."""
    git_dirs = find_git_dirs(mirror_root, manifest.slug)
    for git_dir in git_dirs:
        if has_commit(git_dir, manifest.commit):
            missing = materialise_from_git(git_dir, manifest, dest)
            return _status_after(manifest, dest, missing), f"git {git_dir}"
    files_dir = files_root / manifest.slug / manifest.commit
    if files_dir.is_dir():
        missing = materialise_from_files(files_dir, manifest, dest)
        return _status_after(manifest, dest, missing), f"files {files_dir}"
    if git_dirs:
        return (
            f"skipped: the mirror {git_dirs[0]} lacks commit {manifest.commit[:12]} and "
            f"{files_dir} does not exist (fetch a newer snapshot, or save the files there)",
            "",
        )
    return NO_MIRROR, ""


def _status_after(manifest: Manifest, dest: Path, missing: list[str]) -> str:
    absent = [c for c in manifest.check if not (dest / c).is_file()]
    if absent:
        return f"skipped: checked file(s) not in the source at {manifest.commit[:12]}: {', '.join(absent)}"
    if missing:
        print(f"  note: {manifest.repository}: paths not found at {manifest.commit[:12]}: {', '.join(missing)}",
              file=sys.stderr)
    return "ok"


# --------------------------------------------------------------------------- running gradlint


def run_gradlint(root: Path, manifest: Manifest, extra: list[str], python: str) -> tuple[dict, float]:
    env = dict(os.environ)
    # Run the gradlint of the checkout this script lives in, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    command = [python, "-m", "gradlint", "check", "--format", "json", "--no-cache", *extra, "--", *manifest.check]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"gradlint exited {proc.returncode} without JSON output:\n{tail}") from exc
    return report, seconds


def evaluate_repo(manifest: Manifest, args, extra: list[str]) -> RepoResult:
    result = RepoResult(manifest)
    with tempfile.TemporaryDirectory(prefix="gradlint-realcode-") as tmp:
        root = Path(tmp) / "src"
        root.mkdir()
        status, source = materialise(manifest, root, Path(args.mirror_root), Path(args.files_root))
        result.status, result.source = status, source
        if status != "ok":
            return result
        if args.keep:
            keep = Path(args.keep) / manifest.source.stem
            if keep.exists():
                shutil.rmtree(keep)
            shutil.copytree(root, keep)
        report, seconds = run_gradlint(root, manifest, extra, args.python)
    result.seconds = seconds
    checked = set(manifest.check)
    for finding in report.get("findings", []):
        finding = dict(finding)
        finding["path"] = _norm(str(finding.get("path", "")))
        if finding["path"] in checked:
            result.findings.append(finding)
    result.gradlint_errors = report.get("errors", [])
    result.gradlint_skipped = report.get("skipped", [])
    result.files_checked = report.get("summary", {}).get("files_checked")
    return result


# --------------------------------------------------------------------------- scoring


@dataclass
class Counts:
    labels: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, other: "Counts") -> None:
        self.labels += other.labels
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.tn += other.tn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _finding_keys(finding: dict) -> list[tuple]:
    """Label keys a finding can match: (rule, file, None, line), and for a notebook cell also
    (rule, file, cell, line-in-cell)."""
    keys = [(finding.get("code"), finding["path"], None, finding.get("line"))]
    if finding.get("cell") is not None and finding.get("cell_line") is not None:
        keys.append((finding.get("code"), finding["path"], finding["cell"], finding["cell_line"]))
    return keys


def _sev(finding: dict) -> str:
    return str(finding.get("severity", "info")).lower()


def score(results: list[RepoResult]) -> dict:
    per_rule: dict[str, Counts] = {}
    outcomes = []  # one per label
    unlabeled = []
    gate = {"findings": 0, "true": 0, "false": 0, "false_on_negative_label": 0,
            "false_on_info_label": 0, "unlabeled": 0, "too_severe": 0}
    gate_false = []
    for result in results:
        if result.status != "ok":
            continue
        manifest = result.manifest
        by_key: dict[tuple, list[dict]] = {}
        for finding in result.findings:
            for key in _finding_keys(finding):
                by_key.setdefault(key, []).append(finding)
        labels_by_key = {label.key: label for label in manifest.labels}
        for label in manifest.labels:
            counts = per_rule.setdefault(label.rule, Counts())
            counts.labels += 1
            hits = by_key.get(label.key, [])
            if label.fires and label.message is not None:  # it must also say what the label expects
                hits = [hit for hit in hits if label.message in hit.get("message", "")]
            if label.fires:
                outcome = "TP" if hits else "FN"
            else:
                outcome = "FP" if hits else "TN"
            setattr(counts, outcome.lower(), getattr(counts, outcome.lower()) + 1)
            outcomes.append({
                "repository": manifest.repository, "manifest": manifest.source.name,
                "rule": label.rule, "file": label.file, "line": label.line, "cell": label.cell, "fires": label.fires,
                "severity": label.severity, "reason": label.reason, "outcome": outcome,
                "found_severity": max((_sev(h) for h in hits), key=SEVERITY_RANK.get, default=None),
            })
        for finding in result.findings:
            label = next((labels_by_key[k] for k in _finding_keys(finding) if k in labels_by_key), None)
            severity = _sev(finding)
            entry = {
                "repository": manifest.repository, "manifest": manifest.source.name,
                "rule": finding.get("code"), "file": finding["path"], "line": finding.get("line"),
                "cell": finding.get("cell"), "cell_line": finding.get("cell_line"),
                "severity": severity, "message": finding.get("message", ""),
            }
            if label is None:
                unlabeled.append(entry)
            if SEVERITY_RANK.get(severity, 0) < GATE:
                continue
            gate["findings"] += 1
            if label is None:
                gate["false"] += 1
                gate["unlabeled"] += 1
                gate_false.append({**entry, "why": "no label"})
            elif not label.fires:
                gate["false"] += 1
                gate["false_on_negative_label"] += 1
                gate_false.append({**entry, "why": "label fires = false"})
            elif label.severity == "info":
                gate["false"] += 1
                gate["false_on_info_label"] += 1
                gate_false.append({**entry, "why": "label severity = info"})
            else:
                gate["true"] += 1
                if label.severity and SEVERITY_RANK[severity] > SEVERITY_RANK[label.severity]:
                    gate["too_severe"] += 1
    total = Counts()
    for counts in per_rule.values():
        total.add(counts)
    return {"per_rule": per_rule, "total": total, "outcomes": outcomes, "unlabeled": unlabeled,
            "gate": gate, "gate_false": gate_false}


# --------------------------------------------------------------------------- report


def _loc(entry: dict) -> str:
    """repository:file:line, or repository:file:cell N:line M for a notebook cell."""
    where = f"{entry['repository']}:{entry['file']}"
    if entry.get("cell") is not None:
        line = entry.get("cell_line", entry["line"]) if "cell_line" in entry else entry["line"]
        return f"{where}:cell {entry['cell']}:line {line}"
    return f"{where}:{entry['line']}"


def print_report(results: list[RepoResult], scored: dict) -> None:
    out = sys.stdout.write
    out("gradlint real-code evaluation\n")
    out("=============================\n\n")
    out("Repositories\n")
    for result in results:
        m = result.manifest
        positives = sum(1 for label in m.labels if label.fires)
        line = (f"  {m.source.name:<48} {m.commit[:12]}  {len(m.check):>3} files  "
                f"{len(m.labels):>3} labels ({positives} positive)  ")
        if result.status == "ok":
            line += f"gradlint {result.seconds:.2f}s, {len(result.findings)} findings"
            if result.gradlint_errors:
                line += f", {len(result.gradlint_errors)} gradlint errors"
        else:
            line += result.status
        out(line + "\n")
        for error in result.gradlint_errors:
            out(f"      gradlint error: {error}\n")
        for skipped in result.gradlint_skipped:
            out(f"      gradlint skipped: {skipped}\n")
    out("\nPer rule (a label matches a finding of its rule on its file and line)\n")
    out(f"  {'rule':<6} {'labels':>6} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} {'precision':>9} {'recall':>7}\n")
    for rule in sorted(scored["per_rule"]):
        c = scored["per_rule"][rule]
        out(f"  {rule:<6} {c.labels:>6} {c.tp:>4} {c.fp:>4} {c.fn:>4} {c.tn:>4} "
            f"{_pct(c.precision):>9} {_pct(c.recall):>7}\n")
    t = scored["total"]
    out(f"  {'all':<6} {t.labels:>6} {t.tp:>4} {t.fp:>4} {t.fn:>4} {t.tn:>4} "
        f"{_pct(t.precision):>9} {_pct(t.recall):>7}\n")
    out(f"\nOverall (micro-averaged over labels): precision {_pct(t.precision)}, recall {_pct(t.recall)}; "
        f"{t.tp + t.fn} positive labels, {t.fp + t.tn} negative labels\n")

    g = scored["gate"]
    out("\nDefault gate (findings at warning or above on the checked files)\n")
    out(f"  {g['findings']} findings: {g['true']} true, {g['false']} false "
        f"({g['false_on_negative_label']} on a fires = false label, {g['false_on_info_label']} on a "
        f"severity = info label, {g['unlabeled']} on no label)\n")
    if g["too_severe"]:
        out(f"  {g['too_severe']} true findings are more severe than their label allows\n")
    for entry in scored["gate_false"]:
        out(f"  false: {entry['rule']} {_loc(entry)} "
            f"[{entry['severity']}] ({entry['why']})\n")

    mismatches = [o for o in scored["outcomes"] if o["outcome"] in ("FP", "FN")]
    out(f"\nLabel mismatches ({len(mismatches)}: FP = gradlint fires on a fires = false label, "
        f"FN = silent on a fires = true label)\n")
    for o in sorted(mismatches, key=lambda o: (o["outcome"], o["rule"], o["repository"], o["file"], o["line"])):
        out(f"  {o['outcome']} {o['rule']} {_loc(o)}  {o['reason']}\n")

    unlabeled = scored["unlabeled"]
    out(f"\nFindings no label covers ({len(unlabeled)})\n")
    for entry in unlabeled:
        message = " ".join(entry["message"].split())
        if len(message) > 160:
            message = message[:157] + "..."
        out(f"  {entry['rule']} {_loc(entry)} [{entry['severity']}] {message}\n")

    out("\nTime per repository (gradlint only)\n")
    for result in results:
        took = f"{result.seconds:.2f}s" if result.seconds is not None else result.status
        out(f"  {result.manifest.source.name:<48} {took}\n")


def to_json(results: list[RepoResult], scored: dict) -> dict:
    def counts(c: Counts) -> dict:
        return {"labels": c.labels, "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
                "precision": c.precision, "recall": c.recall}

    return {
        "repositories": [
            {"manifest": r.manifest.source.name, "repository": r.manifest.repository,
             "commit": r.manifest.commit, "status": r.status, "source": r.source,
             "seconds": r.seconds, "files": len(r.manifest.check), "labels": len(r.manifest.labels),
             "findings": len(r.findings), "gradlint_errors": r.gradlint_errors}
            for r in results
        ],
        "per_rule": {rule: counts(c) for rule, c in sorted(scored["per_rule"].items())},
        "overall": counts(scored["total"]),
        "gate": {**scored["gate"], "false_findings": scored["gate_false"]},
        "labels": scored["outcomes"],
        "unlabeled": scored["unlabeled"],
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", default=[],
                        help="only this repository (owner/name, name or manifest stem); repeatable")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--mirror-root", default=os.environ.get("GRADLINT_MIRROR_ROOT", DEFAULT_MIRROR_ROOT),
                        help="where git mirrors live: <root>/<owner>+<name>/repo (default %(default)s)")
    parser.add_argument("--files-root", default=os.environ.get("GRADLINT_FILES_ROOT", DEFAULT_FILES_ROOT),
                        help="where saved files live: <root>/<owner>+<name>/<commit>/<path> (default %(default)s)")
    parser.add_argument("--manifests", default=str(DEFAULT_MANIFESTS),
                        help="folder of *.toml manifests (default %(default)s)")
    parser.add_argument("--keep", metavar="DIR",
                        help="also copy each materialised tree to DIR/<manifest stem> (for reading)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter that runs gradlint (default: this one)")
    args = parser.parse_args(argv)

    manifest_dir = Path(args.manifests)
    files = sorted(manifest_dir.glob("*.toml"))
    if not files:
        print(f"no manifests in {manifest_dir}", file=sys.stderr)
        return 2
    try:
        manifests = [load_manifest(path) for path in files]
    except ManifestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifests = select_manifests(manifests, args.repo)
    if not manifests:
        print(f"no manifest matches {args.repo}", file=sys.stderr)
        return 2

    results = []
    for manifest in manifests:
        try:
            results.append(evaluate_repo(manifest, args, extra))
        except RuntimeError as exc:  # a gradlint crash on one repository: report it, go on
            print(f"error: {manifest.source.name}: {exc}", file=sys.stderr)
            failed = RepoResult(manifest)
            failed.status = f"failed: {str(exc).splitlines()[0]}"
            results.append(failed)
    scored = score(results)
    print_report(results, scored)
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, scored), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
