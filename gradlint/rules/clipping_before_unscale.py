"""GL103 clipping-before-unscale: AMP gradients clipped while still multiplied by the loss scale."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import kwarg_value
from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.names import dotted_name, last_segment
from gradlint.analysis.walk import walk
from gradlint.analysis.steps import Occurrence, TrainingStep, optimizer_name, training_steps
from gradlint.findings import Severity
from gradlint.fix import FixSpec, InsertBefore
from gradlint.rules._helpers import resolved_optimizer, resolved_scaler, scaler_name, text
from gradlint.rules.base import Diagnostic, Rule, RuleContext

# Accelerate, Fabric and Lightning unscale inside their own clipping methods; torch's function,
# FSDP's method and a hand-written clamp of `.grad` do not.
_NEEDS_UNSCALE = ("torch", "fsdp", "grad")

_ACCELERATE = {"accelerate.Accelerator", "accelerate.accelerator.Accelerator"}
_FABRIC = vocab.BACKWARD_OWNERS - _ACCELERATE
_FP16 = {"fp16", "16", "16-mixed", 16}
_NOT_FP16 = {"no", "bf16", "fp8", "bf16-mixed", "bf16-true", "32", "32-true", "64", "64-true", "16-true", "transformer-engine", 32, 64}


class ClippingBeforeUnscale(Rule):
    code = "GL103"
    name = "clipping-before-unscale"
    severity = Severity.ERROR
    summary = "With a GradScaler, gradients are clipped before scaler.unscale_(), so the threshold applies to scaled gradients."
    fix = "safe"
    # A GradScaler (`scale(`), an Accelerate/Fabric backward that scales under fp16, or a gradient
    # hook that clamps (it runs inside the scaled backward).
    triggers = ("scale(", ".backward(", "register_hook")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        yield from self._clamping_hooks(model, ctx)
        for step in training_steps(model):
            backward = step.backward.event
            if backward.scaled:
                yield from self._scaler(model, ctx, step)
            elif backward.owner:
                yield from self._framework(model, ctx, step)

    def _unclipped_before_unscale(self, step: TrainingStep) -> Iterator[Occurrence]:
        for clip in step.clips:
            if clip.event.form not in _NEEDS_UNSCALE:
                continue
            before_clip = step.context.between(step.backward.index, clip.index)
            if any(occ.kind is Kind.UNSCALE for occ in before_clip):
                continue
            yield clip

    def _scaler(self, model: FileModel, ctx: RuleContext, step: TrainingStep) -> Iterator[Diagnostic]:
        backward = step.backward.event
        for clip in self._unclipped_before_unscale(step):
            unscale = f"{scaler_name(backward)}.unscale_({optimizer_name(step)})"
            yield Diagnostic(
                clip.event.node,
                f"{text(model, clip.event)} clips gradients that {text(model, backward)} at line "
                f"{ctx.line_of(backward.node)} multiplied by the loss scale, and `{unscale}` is missing: "
                "the threshold is effectively divided by the scale (often 65536)",
                hint=f"Call `{unscale}` right before clipping.",
                related=((backward.node, "scaled gradients are computed here"),),
                fix_safety="safe",
                fix=self._fix(step, clip),
            )

    def _framework(self, model: FileModel, ctx: RuleContext, step: TrainingStep) -> Iterator[Diagnostic]:
        """`accelerator.backward(loss)` / `fabric.backward(loss)` scale the loss under fp16 mixed
        precision; torch's clip then sees scaled gradients unless `accelerator.unscale_gradients()`
        ran first. The precision is read from the `Accelerator(...)`/`Fabric(...)` call."""
        backward = step.backward.event
        owner = backward.receiver or ""
        clips = list(self._unclipped_before_unscale(step))
        if not clips:
            return
        framework, precision, setting = _precision(model, ctx, step, owner)
        if framework is None or precision == "off":
            return
        for clip in clips:
            if precision == "fp16":
                when = f"which scales the loss under fp16 mixed precision ({setting})"
                severity = Severity.ERROR
            else:
                when = f"which scales the loss when {framework} runs fp16 mixed precision ({setting})"
                severity = Severity.WARNING
            if framework == "Accelerate":
                fix_hint = (
                    f"Clip with `{owner}.clip_grad_norm_(...)`, which unscales first, or call "
                    f"`{owner}.unscale_gradients()` right before this clip."
                )
            else:
                fix_hint = f"Clip with `{owner}.clip_gradients(model, optimizer, max_norm=...)`, which unscales first."
            yield Diagnostic(
                clip.event.node,
                f"{text(model, clip.event)} clips the gradients of {text(model, backward)} at line "
                f"{ctx.line_of(backward.node)}, {when}, and nothing unscales them first: the threshold is "
                "effectively divided by the loss scale (often 65536)",
                hint=fix_hint,
                related=((backward.node, "the backward that scales the loss"),),
                severity=severity,
                fix_safety="safe",
            )

    def _clamping_hooks(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        """`param.register_hook(lambda grad: grad.clamp(-c, c))`: the hook clamps each gradient
        while the backward runs, so under a GradScaler it clamps scaled gradients, before any
        `unscale_` can run (allennlp's `enable_gradient_clipping` before PR #5426). Reported when
        the function that registers it is used where a GradScaler is built."""
        project = ctx.project
        if project is None or "register_hook" not in ctx.source.text:
            return
        for site in model.calls:
            if not site.callee.endswith(".register_hook") or not site.node.args:
                continue
            hook = site.node.args[0].value
            if not (isinstance(hook, cst.Lambda) and _clamps_its_argument(hook)):
                continue
            scaler = _scaler_where_used(project, ctx.source.path, model, site.function)
            if scaler is None:
                continue
            scaler_path, scaler_line = scaler
            yield Diagnostic(
                hook,
                f"this gradient hook clamps every gradient while `backward()` runs, and "
                f"{project.where(scaler_path, scaler_line)} builds a GradScaler for the same training: "
                "under mixed precision the hook clamps the scaled gradients, so the threshold is "
                "effectively divided by the loss scale (often 65536), and no `unscale_` can run before it",
                hint="Clip after the backward instead: `scaler.unscale_(optimizer)` then "
                "`torch.nn.utils.clip_grad_value_(model.parameters(), clip_value)`.",
                severity=Severity.WARNING,
            )

    @staticmethod
    def _fix(step, clip) -> FixSpec | None:
        scaler, optimizer = resolved_scaler(step.backward.event), resolved_optimizer(step)
        if scaler is None or optimizer is None or not (clip.via == step.step.via == step.backward.via):
            return None
        unscale = f"{scaler}.unscale_({optimizer})"
        return FixSpec("safe", f"insert `{unscale}` before the clip", (InsertBefore(clip.event.node, (unscale,)),))


def _precision(model: FileModel, ctx: RuleContext, step: TrainingStep, owner: str) -> tuple[str | None, str, str]:
    """(framework, 'fp16' / 'off' / 'unknown', how it was decided) for the object that ran the
    backward; (None, ...) when it is no Accelerator or Fabric."""
    context = step.context
    value = context.binding(owner, step.backward.index)
    if not isinstance(value, cst.Call):
        segment = last_segment(owner).lower()
        if "accelerator" in segment:
            return "Accelerate", "unknown", "its `Accelerator(...)` is not in sight, so the configuration decides"
        return None, "off", ""
    qualified = model.qualify_call(value)
    if qualified in _ACCELERATE:
        framework, keyword = "Accelerate", "mixed_precision"
    elif qualified in _FABRIC:
        framework, keyword = "Fabric", "precision"
    else:
        return None, "off", ""
    node = kwarg_value(value, keyword)
    if node is None:
        spread = any(arg.star == "**" for arg in value.args)
        if framework == "Fabric" and not spread:
            return framework, "off", ""  # Fabric's default precision is 32-bit
        if spread:
            return framework, "unknown", f"`{keyword}` is not set here and may come from the `**` keyword arguments"
        return framework, "unknown", f"`{keyword}` is not set here, so `accelerate launch` / `accelerate config` decides"
    project = ctx.project
    resolved = None
    if project is not None:
        if owner.startswith("self."):  # `self.accelerator = Accelerator(...)` in `__init__`
            info = context.owner_class()
            where = info.attribute_functions.get(owner[5:]) if info is not None else None
        else:
            where = context.owner_function(step.backward)
        resolved = project.resolver.resolve(node, project.scope(ctx.source.path, where))
    if resolved is None:
        return framework, "unknown", f"`{keyword}` cannot be resolved statically"
    if resolved.value in _FP16:
        return framework, "fp16", f"`{keyword}={resolved.value!r}`"
    if resolved.value in _NOT_FP16 or resolved.value is None:
        return framework, "off", ""
    return framework, "unknown", f"`{keyword}={resolved.value!r}`"


def _clamps_its_argument(hook: cst.Lambda) -> bool:
    """`lambda grad: grad.clamp(-c, c)`, `lambda g: torch.clamp(g, ...)`, `lambda g: clamp_tensor(g, ...)`."""
    params = {param.name.value for param in hook.params.params}
    for node in walk(hook.body):
        if not isinstance(node, cst.Call):
            continue
        name = last_segment(dotted_name(node.func) or "").lower()
        if "clamp" not in name and "clip" not in name:
            continue
        receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
        arguments = [arg.value for arg in node.args]
        if any(isinstance(item, cst.Name) and item.value in params for item in [receiver, *arguments]):
            return True
    return False


def _scaler_where_used(project, path, model: FileModel, function) -> tuple | None:
    """(file, line) of a GradScaler built in this file, or in a file that calls the function
    registering the hook."""
    summary = project.summary(path)
    files = [(path, summary)]
    while function is not None and function.parent is not None:
        function = function.parent
    if function is not None and function.class_name is None:
        symbol = project.resolve(path, function.name)
        if symbol is not None:
            for site_path, _site in project.call_sites(symbol):
                files.append((site_path, project.summary(site_path)))
    for file, file_summary in files:
        for call in file_summary.calls if file_summary is not None else ():
            if call.qualified in vocab.GRAD_SCALERS:
                return file, call.line
    return None
