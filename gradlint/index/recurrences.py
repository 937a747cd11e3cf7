"""Hand-written recurrent cells of the project: which classes are recurrences written by hand.

A class is a hand-written recurrent cell when its `forward` feeds a state back through a weight
with no bounding activation (gradlint.analysis.handwritten), either

- in a loop of its own `forward` (`for t in ...: h = F.relu(self.W_hh(h) + self.W_xh(x[t]))`), or
- one step at a time: `forward(self, input, hidden)` returns the updated `hidden`, and a loop
  somewhere in the project calls an instance of the class with the state it returned
  (`for i in range(n): output, hidden = rnn(line[i], hidden)`, the char-RNN tutorials). The loop
  is looked for in the class's file and in the files that construct the class; the instance is
  followed through what the called name is bound to (a module constant, a local, `self.cell`),
  and one level through a parameter (`def train(rnn, ...)` called with an instance).

`handwritten_cell` answers for a class of any file from its summary (the `forward` method is
parsed back from its span, not the file) and holds no tree, so `index/facts.py` can count such a
class as recurrent for every rule. Finding the loop that drives a step cell follows the flow of
the constructing files, which are parsed by libcst (only for classes whose `forward` has the
shape of a step, a rare shape).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis.calls import argument_named
from libcst.metadata import MetadataWrapper, PositionProvider

from gradlint.analysis.handwritten import Feedback, Recurrence, feedback_calls, forward_recurrences, step_updates
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary
from gradlint.source import unvalidated

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex, Symbol

_WEIGHT_CONSTRUCTORS = frozenset(
    {"torch.nn.Linear", "torch.nn.LazyLinear", "torch.nn.Bilinear", "torch.nn.Parameter", "torch.nn.parameter.Parameter",
     "torch.nn.modules.linear.Linear"}
)
"""A class builds one of these, or its `forward` cannot feed a state through a weight the detector knows."""


@dataclass(frozen=True)
class HandwrittenCell:
    """What makes a class a hand-written recurrence, without any tree."""

    path: Path
    line: int
    """The update (`hidden = self.i2h(combined)`)."""
    update: str
    """Its text, shortened."""
    state: str
    activation: str | None
    """`relu`, ..., None for no activation at all."""
    weight: str
    elementwise: bool
    loop: tuple[Path, int, str] | None = None
    """For a step cell: where a loop feeds the state back (file, line, the call as written)."""

    @property
    def nonlinearity(self) -> str:
        return self.activation or "none"

    def describe(self) -> str:
        """`a hand-written recurrence with no activation, `hidden = self.i2h(combined)`,`."""
        how = "no activation" if self.activation is None else f"an unbounded {self.activation}"
        return f"a hand-written recurrence with {how}, `{self.update}`,"


def handwritten_cell(project: "ProjectIndex", symbol: "Symbol") -> HandwrittenCell | None:
    """The hand-written recurrence of a project class, None when it has none (memoised per run)."""
    info = symbol.target
    if not isinstance(info, ClassSummary):
        return None
    table = project.lasting_table("recurrences.cells")
    return project.deps.memo(table, (str(symbol.path), info.name, info.line), lambda: _cell(project, symbol, info))


def _cell(project: "ProjectIndex", symbol: "Symbol", info: ClassSummary) -> HandwrittenCell | None:
    summary = symbol.summary
    forward = info.methods.get("forward")
    if forward is None or not _builds_weights(project, summary, info):
        return None
    parsed = _parse_method(summary, forward)
    if parsed is None:
        return None
    node, first_line = parsed
    attribute = lambda name: summary.expression(info.attribute_values.get(name))  # noqa: E731
    lines: dict[int, int] | None = None

    def line_of(update: cst.CSTNode) -> int:
        nonlocal lines
        if lines is None:
            wrapper = MetadataWrapper(cst.Module(body=[node]), unsafe_skip_copy=True)
            positions = wrapper.resolve(PositionProvider)
            lines = {id(n): p.start.line for n, p in positions.items()}
        return first_line + lines.get(id(update), 1) - 1

    found = forward_recurrences(node, summary.qualify_expr, attribute)
    if found:
        return _fact(symbol.path, found[0], line_of(found[0].node))
    steps = step_updates(node, summary.qualify_expr, attribute)
    if not steps:
        return None
    driven = step_feedback(project, symbol, steps)
    if driven is None:
        return None
    recurrence, loop = driven
    return _fact(symbol.path, recurrence, line_of(recurrence.node), loop)


def _fact(path: Path, recurrence: Recurrence, line: int, loop: tuple[Path, int, str] | None = None) -> HandwrittenCell:
    return HandwrittenCell(
        path, line, shorten(recurrence.node), recurrence.state, recurrence.activation,
        shorten(recurrence.weight), recurrence.elementwise, loop,
    )


def _builds_weights(project: "ProjectIndex", summary: FileSummary, info: ClassSummary) -> bool:
    """A method of the class builds an `nn.Linear` or an `nn.Parameter` (the file's calls are read once)."""
    table = project.lasting_table("recurrences.weight_builders")
    builders = table.get(id(summary))
    if builders is None or builders[0] is not summary:
        functions = {
            id(site.function) for site in summary.calls if site.qualified in _WEIGHT_CONSTRUCTORS and site.function is not None
        }
        builders = table[id(summary)] = (summary, functions)
    return any(id(method) in builders[1] for method in info.methods.values())


def _parse_method(summary: FileSummary, function: FunctionSummary) -> tuple[cst.FunctionDef, int] | None:
    """A method parsed back from its span (its decorators left out), and the line its `def` is on."""
    line, _, end_line, _ = function.span
    text = "".join(summary.text.splitlines(keepends=True)[line - 1 : end_line])
    try:
        with unvalidated():
            module = cst.parse_module(textwrap.dedent(text))
    except (cst.ParserSyntaxError, RecursionError, MemoryError, ValueError):
        return None
    node = module.body[0] if module.body else None
    return (node, line) if isinstance(node, cst.FunctionDef) else None


def shorten(node: cst.CSTNode, limit: int = 60) -> str:
    code = cst.Module([]).code_for_node(node) if not isinstance(node, cst.Module) else node.code
    text = " ".join(code.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------- the loop over time


def step_feedback(
    project: "ProjectIndex", symbol: "Symbol", steps: list[Recurrence]
) -> tuple[Recurrence, tuple[Path, int, str]] | None:
    """A loop of the project that feeds the state of one of `steps` (the candidate updates of the
    class's one-step `forward`) back into an instance of the class: the update it drives, and
    where the loop's call is."""
    paths = [symbol.path]
    for path, _ in project.call_sites(symbol):
        if path not in paths:
            paths.append(path)
    for path in paths:
        model = project.model(path)
        if model is None:
            continue
        for function, feedback in file_feedbacks(model):
            matched = next((step for step in steps if feedback.feeds(step)), None)
            if matched is None:
                continue
            if _instance_of(project, path, model, function, feedback.call.func, symbol):
                return matched, (path, project.line_of(path, feedback.call), shorten(feedback.node, 80))
    return None


def file_feedbacks(model: FileModel) -> list[tuple[Function | None, Feedback]]:
    """Every loop of the file that feeds a call's returned state back into it, with its function."""
    found = model.derived.get("handwritten.feedback")
    if found is None:
        found = [(None, feedback) for feedback in feedback_calls(model.module)]
        for function in model.all_functions:
            found.extend((function, feedback) for feedback in feedback_calls(function.node))
        model.derived["handwritten.feedback"] = found
    return found


def _instance_of(
    project: "ProjectIndex", path: Path, model: FileModel, function: Function | None,
    receiver: cst.BaseExpression, symbol: "Symbol",
) -> bool:
    """Whether the called receiver is an instance of the class: through what the name is bound to,
    or, for a parameter of a module-level function, what its callers pass."""
    facts = project.facts.of_expression(receiver, path, model, None, 0, function)
    if facts is not None:
        return facts.info is symbol.target
    name = dotted_name(receiver)
    if function is None or name is None or "." in name or name not in function.params:
        return False
    if function.parent is not None or function.class_name is not None:
        return False
    owner = project.resolve(path, function.name)
    if owner is None or owner.kind != "function" or not isinstance(owner.target, FunctionSummary):
        return False
    positional = owner.target.positional_names()
    for caller_path, site in project.call_sites(owner):
        found = project.model_call(caller_path, site)
        if found is None:
            continue
        caller_model, call = found
        argument = argument_named(call.node, positional, name)
        if argument is None:
            continue
        passed = project.facts.of_expression(argument, caller_path, caller_model, None, 0, call.function)
        if passed is not None and passed.info is symbol.target:
            return True
    return False
