"""Small pieces of wording and lookup that several rules share."""

from __future__ import annotations

import re

import libcst as cst

from gradlint.analysis.model import (
    Event,
    FileModel,
    Kind,
)
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, Occurrence, TrainingStep, optimizer_name
from gradlint.index.optimizers import learning_rate


def fmt(value: float) -> str:
    """A number for a message: `3`, `1.5`, `0.00123`, `0.015`, `2.35`."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return str(int(value)) if isinstance(value, int) else f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 100 else str(round(value, 2))


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


def origin_text(origin: str) -> str:
    """`argparse default of --lr (train.py:20)` -> `argparse default of --lr, train.py:20` (for a parenthesis)."""
    match = re.match(r"^(.*) \(([^()]*)\)$", origin)
    return f"{match.group(1)}, {match.group(2)}" if match else origin


def lr_options(ctx) -> dict:
    """GL401's options, which set the learning-rate limits for GL101's risk context too."""
    return dict(getattr(ctx, "rule_options", {}).get("GL401", {}))


def high_learning_rate(step: TrainingStep, ctx) -> str | None:
    """`the learning rate is 0.1 for Adam (argparse default of --lr (train.py:12)), above its usual
    range (<= 0.01)` when the step's lr is above its family's range (GL101's risk factor)."""
    lr = learning_rate(step, ctx.project, ctx.source.path, lr_options(ctx))
    if lr is None or not lr.high:
        return None
    origin = f" ({lr.origin})" if lr.origin else ""
    return f"the learning rate is {lr.value:g} for {lr.site.family}{origin}, above its usual range (<= {lr.limit:g})"


def unresolved_reason(found, step: TrainingStep) -> str:
    """Why the model a step trains is unknown, for GL101's informational message."""
    site = found.site
    optimizer = optimizer_name(step)
    if site is None:
        return f"the optimizer `{optimizer}` could not be followed to where it is built"
    if not site.constructor:
        callee = dotted_name(site.call.func) or "a call"
        return f"`{optimizer}` comes from `{callee}(...)`, which gradlint cannot read as an optimizer constructor"
    unnamed = [model.name for model in found.models if model.facts is None and model.name]
    if unnamed:
        return f"`{unnamed[0]}`, whose parameters `{optimizer}` updates, could not be followed to its class"
    return f"the parameters of `{optimizer}` could not be followed to a model"
