"""Clipping inside the optimizer: an optimizer whose own step() clips the gradients.

Two forms are read:

- a constructor keyword known to clip (`vocab.CLIPPING_OPTIMIZERS`: ColossalAI's
  `GeminiAdamOptimizer(..., clipping_norm=1.0)`, apex's `FusedLAMB(max_grad_norm=1.0)`, ...);
- a project factory the optimizer came out of (`build_optimizer(cfg, model)`) that reaches a
  known clipping function (directly, in a function it defines, or in a project function it
  calls, across files), or a project optimizer class whose `step()` does; when the factory
  returns the optimizer unchanged under a condition before it reaches the clip (`if not
  cfg.SOLVER.CLIP_GRADIENTS.ENABLED: return optimizer`), clipping depends on that condition.

What a clipping function is comes from `vocab.CLIP_FUNCTIONS` (the torch, timm, ... APIs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import kwarg_value
from gradlint.analysis.model import snippet
from gradlint.index.optimizers import Factory, OptimizerSite
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary

MAX_DEPTH = 4


@dataclass(frozen=True)
class OptimizerClipping:
    """The optimizer's own step() clips: always (`condition` None), or when `condition` holds."""

    what: str
    """What clips, for messages: "`GeminiAdamOptimizer(clipping_norm=...)`", "`build_optimizer(...)` (detectron2/solver/build.py:115)"."""
    condition: str | None = None
    """The configuration the clipping depends on (`cfg.SOLVER.CLIP_GRADIENTS.ENABLED`), when it
    could not be resolved."""
    where: str = ""
    """Where the condition is read (`detectron2/solver/build.py:97`)."""


_NEVER = OptimizerClipping("")
"""A factory whose condition resolves against clipping."""


def optimizer_clipping(site: OptimizerSite | None, project) -> OptimizerClipping | None:
    """How the step's optimizer clips inside its own step(); None when it does not (or when
    nothing says so)."""
    if site is None:
        return None
    if site.constructor and site.qualified in vocab.CLIPPING_OPTIMIZERS:
        found = _keyword_clipping(site, project)
        if found is not None:
            return found
    # Outermost first; a factory that clips only by calling the next one (`build_optimizer` calls
    # `maybe_add_gradient_clipping`) leaves the decision to it, whose own body says under which
    # condition it clips.
    factories = site.factories
    for index, factory in enumerate(factories):
        following = factories[index + 1] if index + 1 < len(factories) else None
        found = _factory_clipping(factory, project, following)
        if found is _NEVER:
            return None  # its condition resolves against clipping: no factory further in clips
        if found is not None:
            return found
    return None


def _keyword_clipping(site: OptimizerSite, project) -> OptimizerClipping | None:
    for keyword, default, off in vocab.CLIPPING_OPTIMIZERS[site.qualified]:
        node = kwarg_value(site.call, keyword)
        what = f"`{site.family}({keyword}=...)`"
        if node is None:
            if default != off:
                return OptimizerClipping(f"`{site.family}` (its `{keyword}` defaults to {default:g})")
            continue
        resolved = project.resolver.resolve(node, site.scope)
        if resolved is None or isinstance(resolved.value, bool) or not isinstance(resolved.value, (int, float)):
            text = snippet(cst.Module(body=[]), node)
            return OptimizerClipping(what, text, project.where(site.path, node))
        if resolved.value != off:
            return OptimizerClipping(f"`{site.family}({keyword}={resolved.value:g})`")
    return None


def _factory_clipping(factory: Factory, project, following: Factory | None = None) -> OptimizerClipping | None:
    call_text = snippet(cst.Module(body=[]), factory.call.func)
    what = f"`{call_text}(...)` ({project.where(factory.frame.path, factory.call)})"
    target = factory.target
    if isinstance(target, ClassSummary):
        return OptimizerClipping(what) if _class_step_clips(project, factory.path, target) else None
    summary = project.summary(factory.path)
    if summary is None:
        return None
    first_clip = _first_clipping_line(project, factory.path, summary, target, 0, set())
    if first_clip is None:
        return None
    params = set(target.param_names)
    for returned in target.returns:
        if returned.line >= first_clip or not returned.guards:
            continue
        value = summary.expression(returned.value)
        if not (isinstance(value, cst.Name) and value.value in params):
            continue
        # `if not <condition>: return optimizer` before any clip: the clip needs the condition.
        span, branch = returned.guards[-1]
        test = summary.expression(span)
        if test is None:
            return OptimizerClipping(what, "a condition gradlint cannot read")
        negated = isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
        condition = test.expression if negated else test
        on_when = (not branch) if not negated else branch
        # `on_when`: the value of `condition` under which the factory goes on to clip.
        from gradlint.index.optimizers import Frame

        frame = Frame(factory.path, summary, target, (factory.call, factory.frame))
        resolved = project.resolver.resolve(condition, frame.scope)
        if resolved is not None and isinstance(resolved.value, bool):
            return OptimizerClipping(what) if resolved.value == on_when else _NEVER
        text = snippet(cst.Module(body=[]), condition, 80)
        return OptimizerClipping(what, text if on_when else f"not {text}", project.where(factory.path, span))
    if following is not None and following.frame.path == factory.path:
        if project.line_of(following.frame.path, following.call) == first_clip:
            return None  # it clips through the next factory, which decides
    return OptimizerClipping(what)


def _first_clipping_line(
    project, path: Path, summary: FileSummary, function: FunctionSummary, depth: int, seen: set
) -> int | None:
    """The line of the first call in `function` (or in a function defined in it) that reaches a
    known clipping function, directly or through project functions; None when none does."""
    if depth > MAX_DEPTH or (path, id(function)) in seen:
        return None
    seen.add((path, id(function)))
    for site in summary.calls:
        if not _inside(site.function, function):
            continue
        if site.qualified in vocab.CLIP_FUNCTIONS:
            return site.line
        if site.qualified and site.qualified.startswith(("torch.", "numpy.", "math.")):
            continue
        inner = _callee(project, path, summary, site)
        if inner is not None and _first_clipping_line(project, *inner, depth + 1, seen) is not None:
            return site.line
        # What the call runs, as the index's reading of project code has it (an object's method,
        # a function that clamps `.grad` in place, a declared clip function: Megatron's
        # `clip_grad_norm_fp32` inside its optimizer's step()).
        behaviour = project.behaviour
        target = behaviour.callee(path, summary, site.function, site.callee, site.qualified)
        if target is not None and behaviour.effects(target.path, target.summary, target.function).clips is not None:
            return site.line
    return None


def _callee(project, path: Path, summary: FileSummary, site) -> "tuple[Path, FileSummary, FunctionSummary] | None":
    """The project function a call runs: a function defined in an enclosing function, a method
    of the caller's class (`self.clip_grad_norm(...)`), or a function the index resolves."""
    callee = site.callee
    if "." not in callee and site.function is not None:
        local = _local_functions(site.function).get(callee)
        if local is not None:
            return path, summary, local
    if callee.startswith("self.") and callee.count(".") == 1:
        owner = site.function
        while owner is not None and owner.class_name is None:
            owner = owner.parent
        info = summary.classes.get(owner.class_name) if owner is not None and owner.class_name else None
        return _method(project, path, info, callee[5:], 0) if info is not None else None
    symbol = project.resolve_callee(path, callee)
    if symbol is not None and symbol.kind == "function" and symbol.summary is not None:
        return symbol.path, symbol.summary, symbol.target
    return None


def _method(project, path: Path, info: ClassSummary, name: str, depth: int):
    """A method of a project class or of its bases (across files)."""
    if depth > MAX_DEPTH:
        return None
    summary = project.summary(path)
    if summary is None:
        return None
    if name in info.methods:
        return path, summary, info.methods[name]
    for base in info.bases:
        symbol = project.resolve_callee(path, base) if base else None
        if symbol is None and base:
            symbol = project.resolve_qualified(path, base)
        if symbol is not None and symbol.kind == "class":
            found = _method(project, symbol.path, symbol.target, name, depth + 1)
            if found is not None:
                return found
    return None


def _local_functions(function: FunctionSummary) -> dict[str, FunctionSummary]:
    found: dict[str, FunctionSummary] = {}
    scope: FunctionSummary | None = function
    while scope is not None:
        for name, local in scope.local_functions.items():
            found.setdefault(name, local)
        scope = scope.parent
    return found


def _inside(function: FunctionSummary | None, outer: FunctionSummary) -> bool:
    while function is not None:
        if function is outer:
            return True
        function = function.parent
    return False


def _class_step_clips(project, path: Path, info: ClassSummary) -> bool:
    """A project optimizer class whose `step()` (its own or a base class's) reaches a clip."""
    found = _method(project, path, info, "step", 0)
    return found is not None and _first_clipping_line(project, *found, 0, set()) is not None
