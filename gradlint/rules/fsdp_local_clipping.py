"""GL112 fsdp-local-clipping: torch.nn.utils.clip_grad_norm_ on an FSDP-wrapped model sees only the local shard; use the wrapper's clip_grad_norm_."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import argument_for, parameter
from gradlint.analysis.model import FileModel, Function, Kind, snippet
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, contexts
from gradlint.findings import Severity
from gradlint.index import frameworks
from gradlint.index.fsdp import FsdpTracer
from gradlint.rules.base import Diagnostic, Rule, RuleContext

_NORM_CLIPS = {
    f"{module}.{name}"
    for module in ("torch.nn.utils", "torch.nn.utils.clip_grad")
    for name in ("clip_grad_norm_", "clip_grad_norm")
}
"""Norm clipping sums over the parameters it is given; value clipping (`clip_grad_value_`) is
element-wise and gives the same result on a shard."""

MAX_DEPTH = 4


@dataclass(frozen=True)
class _Wrap:
    path: Path
    node: cst.Call
    spelled: str
    through: tuple[tuple[Path, cst.Call], ...] = ()
    """Call sites that pass the wrapped model into the function that clips (outermost last)."""


class FsdpLocalClipping(Rule):
    code = "GL112"
    name = "fsdp-local-clipping"
    severity = Severity.WARNING
    summary = "torch.nn.utils.clip_grad_norm_ on an FSDP-wrapped model sees only the local shard; use the wrapper's clip_grad_norm_."
    # The reported clip call names `clip_grad_norm` (aliases are imported by that name); the FSDP
    # wrapping may be in another file that passes the model in.
    triggers = ("clip_grad_norm",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        project = ctx.project
        if project is None or not any(
            event.form == "torch" and model.qualify_call(event.node) in _NORM_CLIPS for event in model.clip_events
        ):
            return
        path = ctx.source.path
        for context in contexts(model):
            for occ in context.occurrences:
                event = occ.event
                if occ.kind is not Kind.CLIP or occ.via or event.form != "torch":
                    continue
                if model.qualify_call(event.node) not in _NORM_CLIPS:
                    continue
                holder = _holder(event.params, context, occ.index)
                wrap = _wrapped(holder, project, path, model, context, occ.index, 0) if holder is not None else None
                if wrap is not None:
                    yield self._diagnostic(model, event, holder, wrap, ctx)
                    continue
                traced = self._traced(ctx, context, event)
                if traced is not None:
                    yield traced

    def _traced(self, ctx: RuleContext, context: Context, event) -> Diagnostic | None:
        """Across files, through the project index: the clipped module passed in by a caller
        (`apply_gradient_clipping(parameters=state.model.parameters())`), kept on an object
        (`state.model`, set in `State.__init__`) and wrapped in FSDP where that object was built,
        or wrapped in place by a helper (`prepare_fsdp_module(model)` wraps its children)."""
        project, path = ctx.project, ctx.source.path
        summary = project.summary(path)
        function = project.function_summary(path, context.function)
        if summary is None:
            return None
        tracer = FsdpTracer(project.behaviour)
        found = tracer.holder_of_parameters(path, summary, function, event.params)
        if found is None:
            return None
        holder_path, holder_summary, holder_function, holder, through = found
        wrap = tracer.wrapped(holder_path, holder_summary, holder_function, holder)
        if wrap is None:
            return None
        model = context.model
        name = dotted_name(holder) or "model"
        passed = "".join(f", passed in at {project.where(site_path, line)}" for site_path, line in through[-1:])
        threshold = snippet(model.module, event.threshold) if event.threshold is not None else "max_norm"
        return Diagnostic(
            event.node,
            f"`{snippet(model.module, event.node)}` clips the parameters of `{name}`{passed}, which is wrapped in "
            f"FSDP by {wrap.how} at {project.where(wrap.path, wrap.line)}"
            + (f" ({wrap.detail})" if wrap.detail else "")
            + ": its parameters are this rank's shards, "
            "so the norm is the local shard's, not the model's, and each rank scales its gradients by a "
            "different factor",
            hint=(
                f"Clip through the FSDP root module, which all-reduces the norm over every shard: "
                f"`fsdp_module.clip_grad_norm_({threshold})`; or move to FSDP2 `fully_shard`, whose DTensor "
                "parameters `torch.nn.utils.clip_grad_norm_` handles."
            ),
        )

    def _diagnostic(self, model: FileModel, event, holder: cst.BaseExpression, wrap: _Wrap, ctx: RuleContext) -> Diagnostic:
        project, path = ctx.project, ctx.source.path
        name = dotted_name(holder) or "model"
        here = wrap.path == path
        where = f"line {ctx.line_of(wrap.node)}" if here else project.where(wrap.path, wrap.node)
        passed = ""
        if wrap.through:
            site_path, site = wrap.through[-1]
            site_where = f"line {ctx.line_of(site)}" if site_path == path else project.where(site_path, site)
            passed = f", passed in at {site_where}"
        threshold = snippet(model.module, event.threshold) if event.threshold is not None else "max_norm"
        message = (
            f"`{snippet(model.module, event.node)}` clips `{name}`, which is wrapped in "
            f"`{wrap.spelled}(...)` (FullyShardedDataParallel) at {where}{passed}: its parameters are this rank's "
            "shards, so the norm is the local shard's, not the model's, and each rank scales its gradients "
            "by a different factor"
        )
        related = []
        if here:
            related.append((wrap.node, "wrapped in FSDP here"))
        for site_path, site in wrap.through:
            if site_path == path:
                related.append((site, "the wrapped model is passed here"))
        return Diagnostic(
            event.node,
            message,
            hint=(
                f"Use the wrapper's method, which all-reduces the norm over every shard: "
                f"`{name}.clip_grad_norm_({threshold})`; or move to FSDP2 `fully_shard`, whose DTensor "
                "parameters `torch.nn.utils.clip_grad_norm_` handles."
            ),
            related=tuple(related),
        )


def _holder(params: cst.BaseExpression | None, context: Context, index: int) -> cst.BaseExpression | None:
    """`model` in `clip_grad_norm_(model.parameters(), ...)` (also through `params = model.parameters()`)."""
    if isinstance(params, cst.Name):
        params = context.binding(params.value, index)
    if not (isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute)):
        return None
    if params.func.attr.value != "parameters":
        return None
    holder = params.func.value
    name = dotted_name(holder)
    if name is None or name == "self" or not isinstance(holder, (cst.Name, cst.Attribute)):
        return None
    return holder


def _wrapped(
    holder: cst.BaseExpression, project, path: Path, model: FileModel, context: Context, index: int, depth: int
) -> _Wrap | None:
    """The `FSDP(...)` call a name is bound to: in its function, as `self.x`, or passed in by a caller."""
    if depth > MAX_DEPTH:
        return None
    name = dotted_name(holder)
    if name is None:
        return None
    value = _binding(name, context, index)
    while isinstance(value, cst.Call):
        qualified = model.imports.qualify_expr(value.func)
        if frameworks.is_fsdp_wrapper(qualified):
            return _Wrap(path, value, dotted_name(value.func) or "FSDP")
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in vocab.MODULE_MOVES:
            inner = value.func.value
            if isinstance(inner, cst.Call):
                value = inner
                continue
            if isinstance(inner, (cst.Name, cst.Attribute)) and dotted_name(inner) != name:
                return _wrapped(inner, project, path, model, context, index, depth + 1)
        return None
    if isinstance(value, (cst.Name, cst.Attribute)):
        if dotted_name(value) == name:
            return None
        return _wrapped(value, project, path, model, context, index, depth + 1)
    if value is None and "." not in name:
        return _from_callers(name, project, path, context.function, depth)
    return None


def _binding(name: str, context: Context, index: int) -> cst.BaseExpression | None:
    function = context.function
    if "." not in name and function is not None and name in function.params:
        # A parameter: only an assignment in the function itself rebinds it.
        for occ in reversed(context.occurrences[:index]):
            if occ.kind is Kind.ASSIGN and occ.event.targets == (name,) and occ.event.augmented is None:
                return occ.event.value
        return None
    return context.binding(name, index)


def _from_callers(name: str, project, path: Path, function: Function | None, depth: int) -> _Wrap | None:
    """A parameter bound to an FSDP-wrapped model at a call site of its (module-level) function."""
    if function is None or function.class_name is not None or function.parent is not None:
        return None
    if name not in function.params:
        return None
    symbol = project.resolve(path, function.name)
    if symbol is None or getattr(symbol.target, "key", None) != function.key:
        return None
    param = parameter(function, name)
    for site_path, summary_site in project.call_sites(symbol):
        found = project.model_call(site_path, summary_site)
        if found is None or param is None:
            continue
        site_model, site = found
        argument = argument_for(function, param, site.node)
        if argument is None or not isinstance(argument, (cst.Name, cst.Attribute)):
            continue
        site_context = frameworks.context_of(site_model, site.function)
        if site_context is None:
            continue
        site_index = frameworks.index_of(site_context, site.node)
        wrap = _wrapped(argument, project, site_path, site_model, site_context, site_index, depth + 1)
        if wrap is not None:
            return _Wrap(wrap.path, wrap.node, wrap.spelled, wrap.through + ((site_path, site.node),))
    return None
