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
from gradlint.analysis.calls import arg_value, argument_for, parameter
from gradlint.analysis.model import FileModel, Function, Kind, enclosing_class, last_assignment
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import TrainingStep, optimizer_name
from gradlint.index.values import Scope


@dataclass(frozen=True, eq=False)
class OptimizerSite:
    """The `torch.optim.X(...)` call that built a step's optimizer, with where it is evaluated."""

    call: cst.Call
    path: Path
    model: FileModel
    function: Function | None
    qualified: str

    @property
    def family(self) -> str:
        return self.qualified.rsplit(".", 1)[-1]

    @property
    def scope(self):
        return Scope(self.path, self.model, self.function)


_MAX_HOPS = 6


def optimizer_site(step: TrainingStep, project, path: Path) -> OptimizerSite | None:
    """The optimizer constructor of a step: bound in the step's function or class (as
    `optimizer_constructor` finds it), or passed in as an argument, through the call sites of the
    function (or of the class whose `__init__` stores it), possibly in another file."""
    context = step.context
    model = context.model
    name = optimizer_name(step)
    value = context.binding(name, step.step.index)
    if value is not None:
        function = _value_function(model, value) if not name.startswith("self.") else None
        if name.startswith("self."):
            owner = context.owner_class()
            function = owner.attribute_functions.get(name[5:]) if owner is not None else None
        return _site(value, path, model, function, project, 0)
    if "." in name:
        return None
    return _site(cst.Name(name), path, model, context.function, project, 0)


def _site(value, path: Path, model: FileModel, function: Function | None, project, hops: int) -> OptimizerSite | None:
    if hops > _MAX_HOPS or value is None:
        return None
    if isinstance(value, cst.Call):
        qualified = model.qualify_call(value)
        if vocab.is_optimizer_class(qualified):
            assert qualified is not None
            return OptimizerSite(value, path, model, function, qualified)
        return None
    name = dotted_name(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
    if name is None:
        return None
    if name.startswith("self.") and name.count(".") == 1:
        owner = enclosing_class(function, model)
        if owner is None or name[5:] not in owner.attribute_values:
            return None
        inner_function = owner.attribute_functions.get(name[5:])
        return _site(owner.attribute_values[name[5:]], path, model, inner_function, project, hops + 1)
    if "." in name:
        return None
    scope_function = function
    while scope_function is not None:
        assigned = last_assignment(scope_function, name)
        if assigned is not None:
            return _site(assigned, path, model, scope_function, project, hops + 1)
        if name in scope_function.params:
            return _through_callers(scope_function, name, path, model, project, hops + 1)
        scope_function = scope_function.parent
    constant = model.constants.get(name)
    return _site(constant, path, model, None, project, hops + 1) if constant is not None else None


def _through_callers(function: Function, name: str, path: Path, model: FileModel, project, hops: int):
    """A parameter: what the function's call sites pass for it (the first that resolves)."""
    param = parameter(function, name)
    if param is None:
        return None
    sites: list[tuple[Path, cst.Call, Function | None]] = []
    if function.class_name is not None and function.name != "__init__":
        # `self.train_epoch(optimizer)`: calls of the method in its own class.
        info = model.classes.get(function.class_name)
        for site in model.calls:
            if site.callee == f"self.{function.name}" and enclosing_class(site.function, model) is info:
                sites.append((path, site.node, site.function))
    else:
        if function.class_name is not None:
            info = model.classes.get(function.class_name)
            symbol = project.class_symbol(path, info) if info is not None else None
        elif function.parent is None:
            symbol = project.resolve(path, function.name)
            symbol = symbol if symbol is not None and symbol.target is function else None
        else:
            symbol = None
        if symbol is None:
            return None
        sites = [(site_path, site.node, site.function) for site_path, site in project.call_sites(symbol)]
    for site_path, call, caller in sites:
        argument = argument_for(function, param, call)
        site_model = project.model(site_path)
        if argument is None or site_model is None:
            continue
        found = _site(argument, site_path, site_model, caller, project, hops)
        if found is not None:
            return found
    return None


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
