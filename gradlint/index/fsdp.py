"""Where a clipped module was wrapped in FSDP, followed across files (GL112's question).

A clip of `torch.nn.utils.clip_grad_norm_(model.parameters())` sees only the local shard when
`model` is an FSDP1 wrapper, or when a helper wrapped its children in place. The module is
followed through local bindings, attributes set in `__init__` (of the class, or of the class a
parameter is annotated with), the arguments callers pass, all from file summaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.names import dotted_name
from gradlint.index.behaviour import MAX_DEPTH, Behaviour
from gradlint.index.summary import FileSummary, FunctionSummary
from gradlint.index.values import argument_for


@dataclass(frozen=True)
class FsdpWrap:
    """Where a module is wrapped in FSDP: the wrapping call (or the in-place wrapping helper's
    line), and the call sites the module was passed through to get to the clip."""

    path: Path
    line: int
    how: str
    """`FullyShardedDataParallel(...)`, or `prepare_fsdp_module(...)` (wraps its children in place)."""
    through: tuple[tuple[Path, int], ...] = ()
    detail: str = ""
    """For an in-place wrapping helper: where it wraps (`its children are wrapped in ... at x.py:299`)."""


class FsdpTracer:
    """Follows a module from a clip back to where it was wrapped in FSDP, across files: local
    bindings, attributes set in `__init__` (of the class, or of the class a parameter is
    annotated with), the arguments callers pass, and helpers that wrap a module's children in
    place (`setattr(model, name, FullyShardedDataParallel(child))`)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.project = behaviour.project

    def holder_of_parameters(
        self, path: Path, summary: FileSummary, function: FunctionSummary | None, params: cst.BaseExpression | None, depth: int = 0
    ) -> "tuple[Path, FileSummary, FunctionSummary | None, cst.BaseExpression, tuple] | None":
        """The module whose `.parameters()` a clip receives: `model` in `model.parameters()`,
        also through a local name or a parameter the callers fill (`parameters=state.model.parameters()`)."""
        if params is None or depth > MAX_DEPTH:
            return None
        if isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute) and params.func.attr.value == "parameters":
            holder = params.func.value
            if isinstance(holder, (cst.Name, cst.Attribute)) and dotted_name(holder) not in (None, "self"):
                return path, summary, function, holder, ()
            return None
        if not isinstance(params, cst.Name) or function is None:
            return None
        name = params.value
        assigned = function.bindings.get(name)
        if assigned is not None:
            return self.holder_of_parameters(path, summary, function, summary.expression(assigned), depth + 1)
        if function.param(name) is None:
            return None
        for site_path, site_summary, call, caller in self._callers(path, summary, function):
            argument = argument_for(function, name, call)
            found = self.holder_of_parameters(site_path, site_summary, caller, argument, depth + 1)
            if found is not None:
                return found[:4] + (found[4] + ((site_path, site_summary.line_of(call) or 0),),)
        return None

    def wrapped(
        self, path: Path, summary: FileSummary, function: FunctionSummary | None, value: cst.BaseExpression | None, depth: int = 0
    ) -> FsdpWrap | None:
        if value is None or depth > MAX_DEPTH:
            return None
        if isinstance(value, cst.Call):
            qualified = summary.qualify_expr(value.func)
            if qualified in vocab.FSDP_WRAPPERS:
                return FsdpWrap(path, summary.line_of(value) or 0, f"`{dotted_name(value.func) or 'FSDP'}(...)`")
            if isinstance(value.func, cst.Attribute) and value.func.attr.value in vocab.MODULE_MOVES:
                return self.wrapped(path, summary, function, value.func.value, depth + 1)
            return None
        name = dotted_name(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
        if name is None:
            return None
        if "." in name:
            receiver, _, attribute = name.rpartition(".")
            owner = self.behaviour.class_of_name(path, summary, function, receiver, 0)
            found = self.behaviour.attribute_value(owner, attribute) if owner is not None else None
            if found is None:
                return None
            bound, where = found
            return self.wrapped(where.path, where.summary, where.function, bound, depth + 1)
        if function is None:
            return None
        in_place = self._wrapped_in_place(path, summary, function, name)
        if in_place is not None:
            return in_place
        assigned = function.bindings.get(name)
        if assigned is not None:
            inner = summary.expression(assigned)
            if not (isinstance(inner, cst.Name) and inner.value == name):
                return self.wrapped(path, summary, function, inner, depth + 1)
        if function.param(name) is None:
            return None
        for site_path, site_summary, call, caller in self._callers(path, summary, function):
            argument = argument_for(function, name, call)
            found = self.wrapped(site_path, site_summary, caller, argument, depth + 1)
            if found is not None:
                return FsdpWrap(
                    found.path, found.line, found.how, found.through + ((site_path, site_summary.line_of(call) or 0),), found.detail
                )
        return None

    def _wrapped_in_place(self, path: Path, summary: FileSummary, function: FunctionSummary, name: str) -> FsdpWrap | None:
        """`prepare_fsdp_module(model, ...)` in this function, where that helper wraps the
        children of its parameter in FSDP (`setattr(model, child_name, FullyShardedDataParallel(child))`)."""
        for site in summary.calls:
            if site.function is not function:
                continue
            target = self.behaviour.callee(path, summary, function, site.callee, site.qualified)
            if target is None or not target.function.facts.wraps_in_fsdp:
                continue
            call = summary.expression(site.span)
            if not isinstance(call, cst.Call):
                continue
            for param, line in target.function.facts.wraps_in_fsdp:
                argument = argument_for(target.function, param, call)
                if isinstance(argument, cst.Name) and argument.value == name:
                    where = self.project.where(target.path, line)
                    return FsdpWrap(
                        path, site.line, f"`{site.callee}(...)`",
                        detail=f"it wraps the module's children in FullyShardedDataParallel in place at {where}",
                    )
        return None

    def _callers(self, path: Path, summary: FileSummary, function: FunctionSummary):
        symbol = self.project.callable_symbol(path, function)
        if symbol is None:
            return
        for site_path, site in self.project.call_sites(symbol):
            site_summary = self.project.summary(site_path)
            call = site_summary.expression(site.span) if site_summary is not None else None
            if isinstance(call, cst.Call):
                yield site_path, site_summary, call, site.function
