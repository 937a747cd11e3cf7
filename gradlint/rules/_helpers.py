"""Small pieces of wording and lookup that several rules share."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.model import Event, FileModel, Kind
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


def latest_assignment(context: Context, name: str, before: int) -> Occurrence | None:
    for occ in reversed(context.occurrences[:before]):
        if occ.kind is Kind.ASSIGN and name in occ.event.targets:
            return occ
    return None
