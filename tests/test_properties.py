"""Property-based tests: gradlint never crashes on any program, and `--fix --unsafe-fixes`
output always re-parses and is a fixed point.

Budget: derandomized (the same examples on every run), 60 grammar programs, 40 node programs and
80 training loops, which together take about 10-15 s on a 2-core CI machine. Raise
`GRADLINT_PROPERTY_EXAMPLES` locally to search harder (e.g. 2000).
"""

from __future__ import annotations

import os
from pathlib import Path

import hypothesmith
import libcst as cst
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gradlint.api import _report
from gradlint.engine import FileChecker
from gradlint.findings import Report
from gradlint.fix import fixed_text
from gradlint.rules import ALL_RULES

SCALE = int(os.environ.get("GRADLINT_PROPERTY_EXAMPLES", "0")) or 1


def budget(examples: int):
    return settings(
        max_examples=examples * SCALE,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def lint(text: str) -> Report:
    """Every rule on one in-memory file; unlike `lint_sources`, the report keeps internal errors."""
    checker = FileChecker(ALL_RULES, report_unused_ignores=True)
    root = Path("/gradlint-properties")
    source = checker.load_text(text, root / "train.py", "train.py")
    return _report(checker, [source], root, roots=[root])


def assert_no_internal_error(report: Report) -> None:
    assert not report.errors, [error.message for error in report.errors]


# ----------------------------------------------------------------------------- any program


@budget(60)
@given(hypothesmith.from_grammar())
def test_gradlint_never_crashes_on_any_program_the_grammar_generates(text: str):
    assert_no_internal_error(lint(text))


@budget(40)
@given(hypothesmith.from_node())
def test_gradlint_never_crashes_on_any_syntax_tree(text: str):
    assert_no_internal_error(lint(text))


# ----------------------------------------------------------------------------- training loops

STEP_LINES = [
    "loss.backward()",
    "scaler.scale(loss).backward()",
    "loss.backward(retain_graph=True)",
    "optimizer.step()",
    "scaler.step(optimizer)",
    "scaler.update()",
    "scaler.unscale_(optimizer)",
    "optimizer.zero_grad()",
    "model.zero_grad(set_to_none=True)",
    "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
    "nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)",
    "clip_grad_norm_(params, max_norm=float('inf'))",
    "hidden = hidden.detach()",
    "out, hidden = model(x, hidden)",
    "loss = criterion(out, y) / accumulation_steps",
    "scheduler.step()",
    "params = model.parameters()",
]
HEADERS = [
    "for x, y in loader:",
    "for step, (x, y) in enumerate(loader):",
    "while True:",
    "if (step + 1) % accumulation_steps == 0:",
    "with torch.autocast('cuda'):",
    "def train_step(x, y):",
]
PRELUDE = """\
import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_

model = nn.RNN(32, 128, num_layers=3, nonlinearity="relu")
optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
scaler = torch.cuda.amp.GradScaler()
criterion = nn.CrossEntropyLoss(reduction="sum")
"""


@st.composite
def training_programs(draw) -> str:
    """Training-step fragments in random orders, nested in loops, branches and functions."""

    def block(depth: int, indent: str) -> list[str]:
        lines: list[str] = []
        for _ in range(draw(st.integers(1, 5))):
            if depth < 3 and draw(st.booleans()):
                lines.append(indent + draw(st.sampled_from(HEADERS)))
                lines.extend(block(depth + 1, indent + "    "))
            else:
                lines.append(indent + draw(st.sampled_from(STEP_LINES)))
        return lines

    return PRELUDE + "\n".join(block(0, "")) + "\n"


LOOP_WITHOUT_CLIP = PRELUDE + """\
for x, y in loader:
    optimizer.zero_grad()
    out, hidden = model(x, hidden)
    loss.backward()
    optimizer.step()
"""


@budget(80)
@given(training_programs())
@example(LOOP_WITHOUT_CLIP)
def test_training_loops_never_crash_and_unsafe_fixes_reparse_and_are_idempotent(text: str):
    report = lint(text)
    assert_no_internal_error(report)
    fixed, _ = fixed_text(text, report.findings, unsafe=True)
    cst.parse_module(fixed)
    compile(fixed, "train.py", "exec", dont_inherit=True)
    again = lint(fixed)
    assert_no_internal_error(again)
    assert fixed_text(fixed, again.findings, unsafe=True)[0] == fixed
