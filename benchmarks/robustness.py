"""Run gradlint over every .py file of large real code bases and prove it never crashes (not a test).

    python benchmarks/robustness.py [FOLDER ...] [--batch-size N] [--examples K] [--verbose]

Without folders it checks the installed `torch` package, `transformers` when it is installed, and
the standard library (`sysconfig.get_paths()["stdlib"]`). Every `*.py` file under a folder is
named explicitly (so the default excludes such as `build/` or `site-packages/` do not hide any) and
checked with every rule through `gradlint.api.lint_paths`, in one process, in batches of
`--batch-size` files (one project index per batch, which bounds the memory the index holds).

It prints, per folder and in total: the file count, the files skipped (grouped by reason), the
GL000 count, every internal error (file and message), the findings per rule with the share of files
each rule fires in and a few example locations, and the time. It exits 1 on any internal error.

A rule that fires in a large share of library model code is a precision problem: library code
(torch, transformers) is mostly models and utilities, not training loops, so the step rules
(GL1xx) should be close to silent there. `faulthandler` is on, so a hard crash of the parser
(a segfault in libcst's native code) prints the stack and the batch being checked
(`--verbose` prints every batch; `--batch-size 1` pins the file down).
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib.util
import os
import re
import sys
import sysconfig
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradlint.api import lint_paths  # noqa: E402
from gradlint.config import Config  # noqa: E402


def default_folders() -> list[Path]:
    folders = []
    for package in ("torch", "transformers"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folders.append(Path(list(spec.submodule_search_locations)[0]))
    folders.append(Path(sysconfig.get_paths()["stdlib"]))
    return folders


def python_files(folder: Path) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(folder):
        # The standard library folder holds the interpreter's site-packages: third-party code, not stdlib.
        subdirectories[:] = sorted(d for d in subdirectories if d not in ("__pycache__", "site-packages"))
        files.extend(Path(directory, name) for name in sorted(names) if name.endswith(".py"))
    return files


def reason_group(reason: str) -> str:
    """'cannot read file: Permission denied' and the like, without the file-specific detail."""
    return re.sub(r"\d+", "N", reason.split(" (")[0])


@dataclass
class Tally:
    files: int = 0
    checked: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)
    skipped_examples: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    per_rule: Counter = field(default_factory=Counter)
    files_per_rule: dict = field(default_factory=lambda: defaultdict(set))
    examples: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, other: "Tally") -> None:
        self.files += other.files
        self.checked += other.checked
        self.seconds += other.seconds
        self.skipped.update(other.skipped)
        for reason, example in other.skipped_examples.items():
            self.skipped_examples.setdefault(reason, example)
        self.errors.extend(other.errors)
        self.per_rule.update(other.per_rule)
        for code, files in other.files_per_rule.items():
            self.files_per_rule[code] |= files
        for code, examples in other.examples.items():
            self.examples[code].extend(examples)


def check_folder(folder: Path, batch_size: int, examples: int, verbose: bool) -> Tally:
    tally = Tally()
    files = python_files(folder)
    tally.files = len(files)
    config = Config(root=folder, respect_gitignore=False)
    started = time.perf_counter()
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        if verbose:
            print(f"  batch {start}-{start + len(batch) - 1}: {batch[0]} ...", file=sys.stderr, flush=True)
        report = lint_paths(batch, config, cwd=folder)
        tally.checked += report.files_checked
        for skipped in report.skipped:
            group = reason_group(skipped.reason)
            tally.skipped[group] += 1
            tally.skipped_examples.setdefault(group, skipped.path)
        for error in report.errors:
            tally.errors.append((error.path, error.message))
        for finding in report.findings:
            tally.per_rule[finding.code] += 1
            tally.files_per_rule[finding.code].add(finding.display_path)
            if len(tally.examples[finding.code]) < examples:
                where = f"{folder.name}/{finding.display_path}:{finding.line}"
                tally.examples[finding.code].append(f"{where}: {finding.message[:110]}")
    tally.seconds = time.perf_counter() - started
    return tally


def print_tally(title: str, tally: Tally, examples: int) -> None:
    rate = tally.files / tally.seconds if tally.seconds else 0.0
    print(f"\n== {title}")
    print(f"files: {tally.files}  checked: {tally.checked}  skipped: {sum(tally.skipped.values())}  "
          f"GL000: {tally.per_rule.get('GL000', 0)}  internal errors: {len(tally.errors)}  "
          f"time: {tally.seconds:.1f} s ({rate:.0f} files/s)")
    for reason, count in tally.skipped.most_common():
        print(f"  skipped {count:5d}  {reason}  (e.g. {tally.skipped_examples[reason]})")
    for path, message in tally.errors:
        print(f"  INTERNAL ERROR {path}: {message}")
    if tally.per_rule:
        print(f"  {'rule':6} {'findings':>8} {'files':>6} {'share':>7}")
        for code in sorted(tally.per_rule):
            fired = len(tally.files_per_rule[code])
            share = fired / tally.checked if tally.checked else 0.0
            print(f"  {code:6} {tally.per_rule[code]:8d} {fired:6d} {share:7.2%}")
            for example in tally.examples[code][:examples]:
                print(f"           {example}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, help="default: torch, transformers (if installed), stdlib")
    parser.add_argument("--batch-size", type=int, default=500, help="files per project index (default 500)")
    parser.add_argument("--examples", type=int, default=3, help="example locations printed per rule (default 3)")
    parser.add_argument("--verbose", action="store_true", help="print each batch before checking it")
    args = parser.parse_args(argv)
    faulthandler.enable()
    folders = [folder.resolve() for folder in args.folders] or default_folders()
    total = Tally()
    for folder in folders:
        if not folder.is_dir():
            print(f"error: {folder} is not a directory", file=sys.stderr)
            return 2
        tally = check_folder(folder, max(1, args.batch_size), args.examples, args.verbose)
        print_tally(str(folder), tally, args.examples)
        total.add(tally)
    if len(folders) > 1:
        print_tally("total", total, args.examples)
    return 1 if total.errors else 0


if __name__ == "__main__":
    sys.exit(main())
