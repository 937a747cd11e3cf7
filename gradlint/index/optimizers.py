"""Optimizers across the project: which `torch.optim.X(...)` call built a step's optimizer, and its lr.

The optimizer of a step may be bound in the step's function or class, or passed in as an
argument, through the call sites of the function (or of the class whose `__init__` stores it),
possibly in another file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import FileModel, Function, Kind
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import TrainingStep, optimizer_name
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary
from gradlint.index.values import Scope, argument_for


@dataclass(frozen=True, eq=False)
class OptimizerSite:
    """The `torch.optim.X(...)` call that built a step's optimizer, with where it is evaluated."""

    call: cst.Call
    """A node of the checked file's tree, or one its file summary parsed from a span."""
    path: Path
    summary: FileSummary
    function: FunctionSummary | None
    qualified: str

    @property
    def family(self) -> str:
        return self.qualified.rsplit(".", 1)[-1]

    @property
    def scope(self) -> Scope:
        return Scope(self.path, self.summary, self.function)


_MAX_HOPS = 6


def optimizer_site(step: TrainingStep, project, path: Path) -> OptimizerSite | None:
    """The optimizer constructor of a step: bound in the step's function or class (as
    `optimizer_constructor` finds it), or passed in as an argument, through the call sites of the
    function (or of the class whose `__init__` stores it), possibly in another file."""
    context = step.context
    model = context.model
    summary = project.summary(path)
    if summary is None:
        return None
    name = optimizer_name(step)
    value = context.binding(name, step.step.index)
    if value is not None:
        function = _value_function(model, value) if not name.startswith("self.") else None
        if name.startswith("self."):
            owner = context.owner_class()
            function = owner.attribute_functions.get(name[5:]) if owner is not None else None
        return _site(value, path, summary, project.function_summary(path, function), project, 0)
    if "." in name:
        return None
    return _site(cst.Name(name), path, summary, project.function_summary(path, context.function), project, 0)


def _site(
    value, path: Path, summary: FileSummary, function: FunctionSummary | None, project, hops: int
) -> OptimizerSite | None:
    if hops > _MAX_HOPS or value is None:
        return None
    if isinstance(value, cst.Call):
        qualified = summary.qualify_expr(value.func)
        if vocab.is_optimizer_class(qualified):
            assert qualified is not None
            return OptimizerSite(value, path, summary, function, qualified)
        return None
    name = dotted_name(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
    if name is None:
        return None
    if name.startswith("self.") and name.count(".") == 1:
        owner = _enclosing_class(summary, function)
        if owner is None or name[5:] not in owner.attribute_values:
            return None
        inner_function = owner.attribute_functions.get(name[5:])
        return _site(summary.expression(owner.attribute_values[name[5:]]), path, summary, inner_function, project, hops + 1)
    if "." in name:
        return None
    scope_function = function
    while scope_function is not None:
        assigned = scope_function.bindings.get(name)
        if assigned is not None:
            return _site(summary.expression(assigned), path, summary, scope_function, project, hops + 1)
        if name in scope_function.param_names:
            return _through_callers(scope_function, name, path, summary, project, hops + 1)
        scope_function = scope_function.parent
    constant = summary.constants.get(name)
    return _site(summary.expression(constant), path, summary, None, project, hops + 1) if constant is not None else None


def _through_callers(function: FunctionSummary, name: str, path: Path, summary: FileSummary, project, hops: int):
    """A parameter: what the function's call sites pass for it (the first that resolves)."""
    if function.param(name) is None:
        return None
    sites: list[tuple[Path, FileSummary, object, FunctionSummary | None]] = []
    if function.class_name is not None and function.name != "__init__":
        # `self.train_epoch(optimizer)`: calls of the method in its own class.
        info = summary.classes.get(function.class_name)
        for site in summary.calls:
            if site.callee == f"self.{function.name}" and _enclosing_class(summary, site.function) is info:
                sites.append((path, summary, site.span, site.function))
    else:
        if function.class_name is not None:
            info = summary.classes.get(function.class_name)
            symbol = project.class_symbol(path, info) if info is not None else None
        elif function.parent is None:
            symbol = project.resolve(path, function.name)
            symbol = symbol if symbol is not None and symbol.target is function else None
        else:
            symbol = None
        if symbol is None:
            return None
        for site_path, site in project.call_sites(symbol):
            site_summary = project.summary(site_path)
            if site_summary is not None:
                sites.append((site_path, site_summary, site.span, site.function))
    for site_path, site_summary, span, caller in sites:
        call = site_summary.expression(span)
        argument = argument_for(function, name, call) if isinstance(call, cst.Call) else None
        if argument is None:
            continue
        found = _site(argument, site_path, site_summary, caller, project, hops)
        if found is not None:
            return found
    return None


def _enclosing_class(summary: FileSummary, function: FunctionSummary | None) -> ClassSummary | None:
    while function is not None and function.class_name is None:
        function = function.parent
    return summary.classes.get(function.class_name) if function is not None and function.class_name else None


def _value_function(model: FileModel, value: cst.CSTNode) -> Function | None:
    """The function whose own body assigns `value` (None: the module body)."""
    owners = model.derived.get("helpers.value_functions")
    if owners is None:
        owners = {}
        for function in model.all_functions:
            for event in function.body.events():
                if event.kind is Kind.ASSIGN and event.value is not None:
                    owners[id(event.value)] = function
        model.derived["helpers.value_functions"] = owners
    return owners.get(id(value))


@dataclass(frozen=True)
class LearningRate:
    site: OptimizerSite
    node: cst.BaseExpression
    """The `lr` argument."""
    value: float
    origin: str
    limit: float | None
    """The top of the family's usual range (None: no known range)."""


def learning_rate(step: TrainingStep, project, path: Path) -> LearningRate | None:
    """The resolved `lr` argument of the step's optimizer constructor (None when absent or unresolved)."""
    site = optimizer_site(step, project, path)
    if site is None:
        return None
    node = arg_value(site.call, 1, "lr")
    if node is None:
        return None
    resolved = project.resolver.resolve(node, site.scope)
    if resolved is None or isinstance(resolved.value, bool) or not isinstance(resolved.value, (int, float)):
        return None
    return LearningRate(site, node, resolved.value, resolved.origin, vocab.LR_LIMITS.get(site.family))
