"""GL101 missing-gradient-clipping: a training step with no clipping between backward and step."""

from __future__ import annotations

import math
from typing import Iterator

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import TrainingStep, is_optimizer_step, optimizer_name, step_instances
from gradlint.findings import Severity
from gradlint.fix import EnsureImport, FixSpec, InsertBefore, no_fix
from gradlint.index.optimizer_clipping import optimizer_clipping
from gradlint.index.optimizers import learning_rate
from gradlint.index.probe_data import model_probe_data
from gradlint.index.trained import Trained, trained
from gradlint.rules._helpers import (
    high_learning_rate,
    lr_options,
    resolved_model,
    resolved_optimizer,
    resolved_scaler,
    scaler_name,
    text,
    trained_model_name,
    unclipped,
    unresolved_reason,
)
from gradlint.rules._fix_parameters import PARAM_GROUPS, clipped_parameters
from gradlint.rules._training import weight_training
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class MissingGradientClipping(Rule):
    code = "GL101"
    name = "missing-gradient-clipping"
    severity = Severity.WARNING
    summary = "A training step runs the optimizer with no gradient clipping between backward() and step()."
    options = (
        Option("fix-max-norm", 1.0, "The `max_norm` of the clip that the fix (and the hint) inserts."),
    )
    fix = "unsafe"
    triggers = ("backward",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        max_norm = ctx.options.get("fix-max-norm", 1.0)
        # A threshold that cannot clip (GL104) is never inserted; the hint then shows the default.
        usable = math.isfinite(max_norm) and max_norm > 0
        norm = repr(float(max_norm)) if usable else "1.0"
        path, project = ctx.source.path, ctx.project
        for instances in step_instances(model):
            if not unclipped(instances):
                continue
            found = weight_training(instances, path, project)
            if found is None:
                continue  # a check in a test, or an optimizer over plain tensors
            clipping = optimizer_clipping(found.site, project)
            if clipping is not None and clipping.condition is None:
                continue  # the optimizer's own step() clips
            step = instances[0]
            backward, optimizer_step = step.backward.event, step.step.event
            names = _names_at_step(step, found, project, path)
            params = _params_text(names) if names else f"{trained_model_name(step)}.parameters()"
            owner = (backward.receiver or "") if backward.owner else ""
            if "accelerator" in owner.lower():
                hint = (
                    f"Clip with Accelerate, which unscales first: `{owner}.clip_grad_norm_({params}, max_norm={norm})` "
                    "between backward and step (under `if accelerator.sync_gradients:` when accumulating)."
                )
            elif "fabric" in owner.lower():
                hint = (
                    f"Clip with Fabric, which unscales first: `{owner}.clip_gradients({trained_model_name(step)}, "
                    f"{optimizer_name(step)}, max_norm={norm})` between backward and step."
                )
            elif backward.scaled:
                params = _clipped_text(model, step, project, path) or params
                hint = (
                    f"After {text(model, backward)}, call `{scaler_name(backward)}.unscale_({optimizer_name(step)})` "
                    f"then `torch.nn.utils.clip_grad_norm_({params}, max_norm={norm})` before the step."
                )
            else:
                params = _clipped_text(model, step, project, path) or params
                hint = f"Clip between backward and step: `torch.nn.utils.clip_grad_norm_({params}, max_norm={norm})`."
                together = _clips_of_siblings(step, project, path, norm)
                if together:
                    hint = (
                        "Several optimizers step on the gradients of this backward; clip every model they update "
                        f"before the first step: {together}."
                    )
            message = (
                f"{text(model, optimizer_step)} updates the weights with no gradient clipping since "
                f"{text(model, backward)} at line {ctx.line_of(backward.node)}: one bad batch can blow up the weights"
            )
            risk = None
            dispatched = step.conditional_clips
            if clipping is None and dispatched:
                message = (
                    f"Clipping depends on configuration: between {text(model, backward)} and {text(model, optimizer_step)}, "
                    f"{dispatched[0]}; gradlint cannot tell whether one is configured, and without it one bad batch "
                    "can blow up the weights (informational)"
                )
                hint = "Make sure your configuration registers the clipping object, or clip yourself. " + hint
            elif clipping is not None:
                where = f" (read at {clipping.where})" if clipping.where else ""
                message = (
                    f"Clipping depends on `{clipping.condition}`: {text(model, optimizer_step)} runs an optimizer from "
                    f"{clipping.what} that clips in its step() only when `{clipping.condition}` holds{where}; gradlint "
                    "cannot resolve it, and when it is off one bad batch can blow up the weights (informational)"
                )
                hint = f"Make sure your configuration sets `{clipping.condition}`, or clip yourself. " + hint
            else:
                risk = _risk(found, step, ctx)
                message += f"; {risk}, a known cause of exploding gradients" if risk else _no_risk(found, step, ctx)
            fix = None
            if not owner and usable:
                fix = _fix(model, step, norm, project, path)
            yield Diagnostic(
                optimizer_step.node,
                message,
                hint=hint,
                related=((backward.node, "gradients are computed here"),),
                severity=Severity.WARNING if risk else Severity.INFO,
                data=model_probe_data(project, found.recurrent, clip_max_norm=max_norm if usable else 1.0),
                fix_safety="unsafe",
                fix=fix or no_fix("unsafe", "the clip cannot be inserted here"),
            )


def _risk(found: Trained, step: TrainingStep, ctx: RuleContext) -> str | None:
    """Why exploding gradients are likely in this step: the model it trains has a recurrent
    layer, or its optimizer's learning rate is above the family's usual range."""
    recurrent = found.recurrent
    if recurrent is not None:
        described = recurrent.describe_risk(ctx.project)
        if described:
            return described
    return high_learning_rate(step, ctx)


def _no_risk(found: Trained, step: TrainingStep, ctx: RuleContext) -> str:
    primary = found.primary
    if primary is not None and found.fully_resolved:
        lr = learning_rate(step, ctx.project, ctx.source.path, lr_options(ctx))
        rate = "its learning rate is in its usual range" if lr is not None else "no high learning rate is set"
        return f" (the trained model `{primary.name}` has no recurrent layer and {rate}, so this is informational)"
    return f" ({unresolved_reason(found, step)}, so the model it trains and its risk are unknown: informational)"


def _siblings(step: TrainingStep) -> list[TrainingStep]:
    """The optimizer steps that apply the gradients of the same backward (an encoder's and a
    decoder's optimizer), in order; `step` is one of them."""
    context = step.context
    found = []
    for occ in context.occurrences[step.backward.index + 1 :]:
        if occ.kind is Kind.BACKWARD:
            break
        if occ.kind is Kind.STEP and is_optimizer_step(context, occ):
            found.append(step if occ is step.step else TrainingStep(context, step.backward, occ))
    return found or [step]


def _names_at_step(step: TrainingStep, found: Trained, project, path) -> list[str] | None:
    names = found.names_at(project.function_summary(path, step.context.function))
    if names:
        return names
    model_name = resolved_model(step)
    return [model_name] if model_name else None


def _clips_of_siblings(step: TrainingStep, project, path, max_norm: str) -> str | None:
    """`clip_grad_norm_(encoder...)` and `clip_grad_norm_(decoder...)` when more than one
    optimizer steps on this backward's gradients and every model is named (None otherwise)."""
    siblings = _siblings(step)
    if len(siblings) < 2:
        return None
    clips = []
    for sibling in siblings:
        names = _names_at_step(sibling, trained(sibling, project, path), project, path)
        if not names:
            return None
        clips.append(f"`torch.nn.utils.clip_grad_norm_({_params_text(names)}, max_norm={max_norm})`")
    return " and ".join(clips)


def _params_text(names: list[str]) -> str:
    if len(names) == 1:
        return f"{names[0]}.parameters()"
    return "[" + ", ".join(f"*{name}.parameters()" for name in names) + "]"


def _clipped_text(model: FileModel, step: TrainingStep, project, path) -> str | None:
    """What the fix clips for one step (the hint shows the same): what the optimizer holds
    (gradlint.rules._fix_parameters: its own argument read again, or its parameter groups); for an
    optimizer passed in as an argument, the models the step trains by name first."""
    optimizer = resolved_optimizer(step)
    held = clipped_parameters(model, step, optimizer) if optimizer else None
    function = step.context.function
    passed_in = function is not None and optimizer in function.params
    if held is not None and not (passed_in and held == PARAM_GROUPS.format(optimizer=optimizer)):
        return held
    names = _names_at_step(step, trained(step, project, path), project, path)
    if names:
        return _params_text(names)
    return held


def _fix(model: FileModel, step: TrainingStep, max_norm: str, project, path) -> FixSpec | None:
    """Clip every model the steps of this backward update, before the first of those steps."""
    siblings = _siblings(step)
    first = siblings[0]
    if first is not step and any(s.step is step.step for s in siblings):
        return no_fix("unsafe", f"the fix of the step at line {project.line_of(path, first.step.event.node)} clips this model too")
    backward = step.backward.event
    lines: list[str] = []
    for sibling in siblings:
        event = sibling.step.event
        if sibling.step.via != sibling.backward.via or event.closure:
            return None
        parameters = _clipped_text(model, sibling, project, path)
        if parameters is None or resolved_optimizer(sibling) is None:
            return None
        if backward.scaled:
            scaler = resolved_scaler(backward)
            if scaler is None:
                return None
            if not any(occ.kind is Kind.UNSCALE for occ in sibling.window):
                lines.append(f"{scaler}.unscale_({resolved_optimizer(sibling)})")
        lines.append(f"torch.nn.utils.clip_grad_norm_({parameters}, max_norm={max_norm})")
    clips = [line for line in lines if "clip_grad_norm_" in line]
    what = clips[0] if len(clips) == 1 else f"{len(clips)} clips (one per optimizer)"
    return FixSpec(
        "unsafe",
        f"insert `{what}` before the step" if len(clips) == 1 else f"insert {what} before the first step",
        (InsertBefore(first.step.event.node, tuple(lines)), EnsureImport("torch")),
    )
