"""One constant arithmetic (gradlint.analysis.values), tested once for every place that evaluates:
a file's own constants (`evaluate_number`, the libcst model's per-file use) and the project's
resolver (`gradlint.index.values`, values followed across files). Each operator gives what Python
gives, everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import libcst as cst
import pytest

from gradlint.analysis.names import ImportMap
from gradlint.analysis.values import evaluate_number
from gradlint.index import ProjectIndex
from gradlint.source import SourceFile

NUMBERS = [
    "3",
    "-1e-3",
    "+2.5",
    "2 ** 10 + 3",
    "7 // 2",
    "7 / 2",
    "7 % 3",
    "10 - 4 * 2",
    "2 ** -1",
    "abs(-4)",
    "round(2.567, 2)",
    "min(3, 1e-2)",
    "max(1, 2, 3)",
    "int(7.9)",
    'float("1e-4")',
    "float(3)",
    "math.sqrt(16)",
    "math.pow(2, 3)",
    "math.exp(0)",
    "math.log(1)",
    "BASE * 2",
    "BASE / (1 + 3)",
    "0 or BASE",
    "BASE and 0.5",
]
UNKNOWN = ["1 / 0", "2 ** 100000", "math.sqrt(-1)", "unknown_name + 1", "len(x)", "float('abc')", "1 << 3"]


def _resolve(expression: str):
    text = f"import math\n\nBASE = 0.25\nvalue = {expression}\n"
    path = Path("/arithmetic/train.py")
    project = ProjectIndex([SourceFile(path, "train.py", text)], [path.parent])
    summary = project.summary(path)
    resolved = project.resolver.resolve(summary.expression(summary.constants["value"]), project.scope(path))
    return None if resolved is None else resolved.value


def _per_file(expression: str):
    module = cst.parse_module(f"import math\n\nBASE = 0.25\nvalue = {expression}\n")
    imports = ImportMap()
    imports.add_import(module.body[0].body[0])
    constants = {"BASE": cst.parse_expression("0.25")}
    return evaluate_number(cst.parse_expression(expression), imports, constants)


@pytest.mark.parametrize("expression", NUMBERS)
def test_every_evaluator_gives_what_python_gives(expression):
    expected = eval(expression, {"math": math, "BASE": 0.25})  # noqa: S307 - constant test expressions
    assert _per_file(expression) == pytest.approx(expected)
    assert _resolve(expression) == pytest.approx(expected)


@pytest.mark.parametrize("expression", UNKNOWN)
def test_what_cannot_be_proven_stays_unknown_everywhere(expression):
    assert _per_file(expression) is None
    assert _resolve(expression) is None


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("BASE == 0.25", True),
        ("1 < BASE < 0.5", False),
        ("BASE < 1 < 2", True),
        ("'lstm' in ('lstm', 'gru')", True),
        ("None is None", True),
        ("BASE is not None", True),
        ("not BASE", False),
        ("'gru' != 'lstm' and BASE > 0", True),
    ],
)
def test_comparisons_and_boolean_operators_resolve_to_python_truth(expression, expected):
    """The resolver decides `if mode == "lstm":` with them (a layer built under a condition)."""
    assert _resolve(expression) is expected


def test_numbers_are_numbers_only_in_the_number_evaluators():
    assert _per_file("BASE == 0.25") is None  # a bool is no number
    assert _per_file("'a' + 'b'") is None
    assert _resolve("'a' + 'b'") == "ab"  # the resolver also follows strings
