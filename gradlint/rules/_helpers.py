"""Small pieces of wording and lookup that several rules share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import (
    ClassInfo,
    Event,
    FileModel,
    Function,
    Kind,
)
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, Occurrence, TrainingStep


def text(model: FileModel, event: Event) -> str:
    return f"`{event.describe(model.module)}`"


def call_name(event: Event) -> str:
    """`clip_grad_norm_` / `optimizer.step` style name of an event's call, without arguments."""
    node = event.call or event.node
    if isinstance(node, cst.Call):
        name = dotted_name(node.func)
        if name:
            return name
    return event.kind.value


def trained_model_name(step: TrainingStep) -> str:
    """The `model` in `torch.optim.Adam(model.parameters())`, when the step's optimizer shows it."""
    event = step.step.event
    optimizer = event.receiver or ""
    if event.via_scaler and isinstance(event.node, cst.Call) and event.node.args:
        optimizer = dotted_name(event.node.args[0].value) or optimizer
    value = step.context.binding(optimizer, step.step.index)
    if isinstance(value, cst.Call) and value.args:
        params = value.args[0].value
        if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute):
            if params.func.attr.value in ("parameters", "named_parameters"):
                return dotted_name(params.func.value) or "model"
    return "model"


def optimizer_constructor(step: TrainingStep) -> cst.Call | None:
    """The `torch.optim.X(...)` call the step's optimizer was built by, when it is in sight."""
    name = optimizer_name(step)
    value = step.context.binding(name, step.step.index)
    if value is None and name.startswith("self."):
        owner = step.context.owner_class()
        value = owner.attribute_values.get(name[5:]) if owner else None
    return value if isinstance(value, cst.Call) else None


def optimizer_name(step: TrainingStep) -> str:
    event = step.step.event
    if event.via_scaler and isinstance(event.node, cst.Call) and event.node.args:
        return dotted_name(event.node.args[0].value) or "optimizer"
    return event.receiver or "optimizer"


def scaler_name(backward: Event) -> str:
    node = backward.node
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        inner = node.func.value
        if isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute):
            return dotted_name(inner.func.value) or "scaler"
    return "scaler"


def resolved_optimizer(step: TrainingStep) -> str | None:
    """The optimizer's name as written at the step, or None when it cannot be read (for fixes)."""
    event = step.step.event
    if event.via_scaler:
        if isinstance(event.node, cst.Call) and event.node.args:
            return dotted_name(event.node.args[0].value)
        return None
    return event.receiver or None


def resolved_scaler(backward: Event) -> str | None:
    """The GradScaler's name in `scaler.scale(loss).backward()`, or None (for fixes)."""
    node = backward.node
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        inner = node.func.value
        if isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute):
            return dotted_name(inner.func.value)
    return None


def resolved_model(step: TrainingStep) -> str | None:
    """The trained model's name when the optimizer's construction shows it, else None (for fixes)."""
    name = trained_model_name(step)
    if name != "model":
        return name
    optimizer = resolved_optimizer(step)
    value = step.context.binding(optimizer, step.step.index) if optimizer else None
    if isinstance(value, cst.Call) and value.args:
        params = value.args[0].value
        if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute):
            if params.func.attr.value in ("parameters", "named_parameters") and dotted_name(params.func.value) == "model":
                return "model"
    return None


def latest_assignment(context: Context, name: str, before: int) -> Occurrence | None:
    for occ in reversed(context.occurrences[:before]):
        if occ.kind is Kind.ASSIGN and name in occ.event.targets:
            return occ
    return None


# ----------------------------------------------------------------------------- optimizers


def unclipped(instances: list[TrainingStep]) -> bool:
    """GL101's condition: no instance of the step clips between backward and step, misplaces a
    clip (GL102's finding), or is a framework engine's step (the engine may clip)."""
    return not any(s.clips or s.misplaced_clips or s.is_engine_step for s in instances)


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
        from gradlint.index.values import Scope

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
        owner = _owner_class(function, model)
        if owner is None or name[5:] not in owner.attribute_values:
            return None
        inner_function = owner.attribute_functions.get(name[5:])
        return _site(owner.attribute_values[name[5:]], path, model, inner_function, project, hops + 1)
    if "." in name:
        return None
    scope_function = function
    while scope_function is not None:
        assigned = _assigned_in(scope_function, name)
        if assigned is not None:
            return _site(assigned, path, model, scope_function, project, hops + 1)
        if name in scope_function.params:
            return _through_callers(scope_function, name, path, model, project, hops + 1)
        scope_function = scope_function.parent
    constant = model.constants.get(name)
    return _site(constant, path, model, None, project, hops + 1) if constant is not None else None


def _through_callers(function: Function, name: str, path: Path, model: FileModel, project, hops: int):
    """A parameter: what the function's call sites pass for it (the first that resolves)."""
    from gradlint.index.values import _bind, _param

    param = _param(function, name)
    if param is None:
        return None
    sites: list[tuple[Path, cst.Call, Function | None]] = []
    if function.class_name is not None and function.name != "__init__":
        # `self.train_epoch(optimizer)`: calls of the method in its own class.
        info = model.classes.get(function.class_name)
        for site in model.calls:
            if site.callee == f"self.{function.name}" and _owner_class(site.function, model) is info:
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
        argument = _bind(function, param, call)
        site_model = project.model(site_path)
        if argument is None or site_model is None:
            continue
        found = _site(argument, site_path, site_model, caller, project, hops)
        if found is not None:
            return found
    return None


def _owner_class(function: Function | None, model: FileModel) -> ClassInfo | None:
    while function is not None and function.class_name is None:
        function = function.parent
    return model.classes.get(function.class_name) if function is not None and function.class_name else None


def _assigned_in(function: Function, name: str) -> cst.BaseExpression | None:
    found = None
    for event in function.body.events():
        if event.kind is Kind.ASSIGN and event.augmented is None and name in event.targets:
            found = event.value if event.targets == (name,) else None
    return found


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


def origin_text(origin: str) -> str:
    """`argparse default of --lr (train.py:20)` -> `argparse default of --lr, train.py:20` (for a parenthesis)."""
    match = re.match(r"^(.*) \(([^()]*)\)$", origin)
    return f"{match.group(1)}, {match.group(2)}" if match else origin


def high_learning_rate(step: TrainingStep, ctx) -> str | None:
    """`the learning rate is 0.1 for Adam (argparse default of --lr (train.py:12)), above its usual
    range (<= 0.01)` when the step's lr is above its family's range (GL101's risk factor)."""
    lr = learning_rate(step, ctx.project, ctx.source.path)
    if lr is None or lr.limit is None or lr.value < lr.limit:
        return None
    origin = f" ({lr.origin})" if lr.origin else ""
    return f"the learning rate is {lr.value:g} for {lr.site.family}{origin}, outside its usual range (< {lr.limit:g})"
