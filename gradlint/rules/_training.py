"""Which optimizer steps train a model's weights: GL101, GL401 and GL402 speak of those only.

Two kinds of step update no weights in training:

- **A check in test code.** A step in a test (a `test_*` function, a method of a `Test*` class,
  or any function of a test file: one under a `tests/`, `test/` or `testing/` folder of the
  project, or named `test_*.py`, `*_test.py` or `conftest.py`) that runs once, or in loops over
  `range(...)` only (a number of iterations the test writes down), is a check of behaviour, not a
  training run, also when a helper holds it: a helper is judged where the test's loop calls it.
  A step in test code under any other loop (over a data loader, `while`) is still judged.
- **An optimizer over plain tensors.** `Adam([latents], lr=0.2)` over an input or a latent
  (gradlint.index.trained) optimizes that tensor, not a model.
"""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from gradlint.analysis.model import BlockKind
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import TrainingStep
from gradlint.index.testcode import in_test_function, is_test_file, project_parts
from gradlint.index.trained import Trained, trained

def test_check(instances: list[TrainingStep], path: Path, project) -> bool:
    """The step is a check in test code: in a test, run once or in `range(...)` loops only."""
    for step in instances:
        if not (in_test_function(step.context.function) or is_test_file(project_parts(path, project))):
            return False
        for block in step.step.path:
            if block.kind is BlockKind.LOOP and not _bounded_loop(block.node):
                return False
    return True


def _bounded_loop(node: cst.CSTNode) -> bool:
    """`for ... in range(...)` (or `enumerate(range(...))`, a literal list): a count the test writes."""
    if not isinstance(node, cst.For):
        return False
    iterable = node.iter
    while isinstance(iterable, cst.Call) and dotted_name(iterable.func) in ("enumerate", "zip", "reversed") and iterable.args:
        iterable = iterable.args[0].value
    if isinstance(iterable, (cst.List, cst.Tuple)):
        return True
    return isinstance(iterable, cst.Call) and dotted_name(iterable.func) == "range"


def weight_training(instances: list[TrainingStep], path: Path, project) -> Trained | None:
    """What the step trains when it is a weight-training step; None for a test check or an
    optimizer over plain tensors (the optimizer rules say nothing about those)."""
    if test_check(instances, path, project):
        return None
    found = trained(instances[0], project, path)
    for step in instances[1:]:
        if found.site is not None:
            break
        found = trained(step, project, path)
    return None if found.tensors_only else found
