"""Optimizers across the project: which call built a step's optimizer, and its learning rate.

The optimizer of a step may be bound in the step's function or class, passed in as an argument
(through the call sites of the function, or of the class whose `__init__` stores it, possibly in
another file), or returned by a project function (a factory such as `build_optimizer(cfg,
model)`, whose parameters are then the arguments of that call). Following it yields the call
that built it: a known optimizer constructor (`torch.optim.Adam(...)`), or, when the trail ends
in project code that is not one, the last project call on it (for the clipping that a factory
or an optimizer class of the project may add, gradlint.index.optimizer_clipping).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import FileModel, Function, Kind
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import TrainingStep, optimizer_name
from gradlint.index.project import Symbol
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary
from gradlint.index.values import Scope, argument_for

_MAX_HOPS = 8


@dataclass(frozen=True, eq=False)
class Frame:
    """Where an expression is evaluated: its file and function and, inside a project function
    entered through a call (a factory), that call and the caller's frame, so that the function's
    parameters are that call's arguments."""

    path: Path
    summary: FileSummary
    function: FunctionSummary | None
    entered: "tuple[cst.Call, Frame] | None" = None

    @property
    def scope(self) -> Scope:
        return Scope(self.path, self.summary, self.function)

    def at(self, function: FunctionSummary | None) -> "Frame":
        """The frame of an enclosing function (or of the module, for None)."""
        if function is self.function:
            return self
        return Frame(self.path, self.summary, function)


@dataclass(frozen=True, eq=False)
class Factory:
    """A project function or class the optimizer came out of (`build_optimizer(cfg, model)`)."""

    call: cst.Call
    frame: Frame
    """Where the call is."""
    path: Path
    target: FunctionSummary | ClassSummary
    """The function (or class) called, in the file `path`."""


@dataclass(frozen=True, eq=False)
class OptimizerSite:
    """The call that built a step's optimizer, with where it is evaluated."""

    call: cst.Call
    """A node of the checked file's tree, or one a file summary parsed from a span."""
    frame: Frame
    qualified: str
    """The qualified constructor (`torch.optim.Adam`); "" when the call is no known optimizer."""
    passed: tuple[tuple[FunctionSummary, cst.Call], ...] = ()
    """How the optimizer reached the step's function as an argument, innermost first: (the
    function that receives it, the call that passes it)."""
    factories: tuple[Factory, ...] = ()
    """The project functions (or a project class) the optimizer came out of, outermost first."""

    @property
    def constructor(self) -> bool:
        """A known optimizer class built it (else the trail ended in other project code)."""
        return bool(self.qualified)

    @property
    def path(self) -> Path:
        return self.frame.path

    @property
    def summary(self) -> FileSummary:
        return self.frame.summary

    @property
    def function(self) -> FunctionSummary | None:
        return self.frame.function

    @property
    def family(self) -> str:
        return self.qualified.rsplit(".", 1)[-1]

    @property
    def scope(self) -> Scope:
        return self.frame.scope


def optimizer_site(step: TrainingStep, project, path: Path) -> OptimizerSite | None:
    """The known optimizer constructor of a step (None when the trail ends elsewhere)."""
    origin = optimizer_origin(step, project, path)
    return origin if origin is not None and origin.constructor else None


def optimizer_origin(step: TrainingStep, project, path: Path) -> OptimizerSite | None:
    """Where a step's optimizer was built: bound in the step's function or class, passed in as an
    argument, or returned by a project factory. Memoised per step (every optimizer rule asks)."""
    return project.memo_on("optimizers.origin", step.step.event, lambda: _origin_of_step(step, project, path))


def _origin_of_step(step: TrainingStep, project, path: Path) -> OptimizerSite | None:
    context = step.context
    model = context.model
    summary = project.summary(path)
    if summary is None:
        return None
    name = optimizer_name(step)
    value = context.binding(name, step.step.index)
    trail = _Trail(project)
    if value is not None:
        if name.startswith("self."):
            owner = context.owner_class()
            function = owner.attribute_functions.get(name[5:]) if owner is not None else None
        else:
            function = _value_function(model, value)
        return trail.follow(value, Frame(path, summary, project.function_summary(path, function)))
    if name.startswith("self.") and name.count(".") == 1:
        # `self.optimizer` set in a base class's `__init__` (AMPTrainer(SimpleTrainer)), in any file.
        function = project.function_summary(path, context.function)
        owner = project.behaviour.enclosing(path, summary, function)
        found = project.behaviour.attribute_value(owner, name[5:]) if owner is not None else None
        if found is None:
            return None
        expression, setter = found
        return trail.follow(expression, Frame(setter.path, setter.summary, setter.function))
    if "." in name:
        return None
    return trail.follow(cst.Name(name), Frame(path, summary, project.function_summary(path, context.function)))


class _Trail:
    """Follows an optimizer expression back to the call that built it."""

    def __init__(self, project) -> None:
        self.project = project
        self.hops = 0

    def follow(
        self, value, frame: Frame, passed: tuple = (), factories: tuple = ()
    ) -> OptimizerSite | None:
        self.hops += 1
        if self.hops > _MAX_HOPS or value is None:
            return None
        if isinstance(value, cst.Call):
            return self._call(value, frame, passed, factories)
        name = dotted_name(value) if isinstance(value, (cst.Name, cst.Attribute)) else None
        if name is None:
            return None
        if name.startswith("self.") and name.count(".") == 1:
            owner = _enclosing_class(frame.summary, frame.function)
            if owner is None or name[5:] not in owner.attribute_values:
                return None
            inner = frame.at(owner.attribute_functions.get(name[5:]))
            return self.follow(frame.summary.expression(owner.attribute_values[name[5:]]), inner, passed, factories)
        if "." in name:
            return None
        found = lookup(name, frame)
        if found is None:
            return None
        if isinstance(found, Parameter):
            return self._through_callers(found.function, name, frame, passed, factories)
        expression, where = found
        return self.follow(expression, where, passed, factories)

    def _call(self, call: cst.Call, frame: Frame, passed: tuple, factories: tuple) -> OptimizerSite | None:
        if isinstance(call.func, cst.Call):
            # `maybe_add_gradient_clipping(cfg, torch.optim.SGD)(params, lr=...)`: a factory returns
            # the optimizer class, which this call instantiates.
            inner = self._call(call.func, frame, passed, factories)
            chain = inner.factories if inner is not None else factories
            qualified = self._returned_class(call.func, frame, 0)
            return OptimizerSite(call, frame, qualified or "", passed, chain) if qualified or chain else None
        qualified = frame.summary.qualify_expr(call.func)
        if vocab.is_optimizer_class(qualified):
            assert qualified is not None
            return OptimizerSite(call, frame, qualified, passed, factories)
        callee = dotted_name(call.func)
        symbol = self.project.resolve_callee(frame.path, callee) if callee else None
        if symbol is None and callee is not None and callee.startswith(("self.", "cls.")) and callee.count(".") == 1:
            # `self.build_optimizer(cfg, model)`: a method of the class or of a base, in any file.
            method = self.project.behaviour.callee(frame.path, frame.summary, frame.function, callee, None)
            if method is not None:
                symbol = Symbol(method.path, method.summary, "function", method.function.name, method.function)
        if symbol is None or symbol.kind not in ("function", "class"):
            return None
        factory = Factory(call, frame, symbol.path, symbol.target)
        if symbol.kind == "class":
            return OptimizerSite(call, frame, "", passed, factories + (factory,))
        function: FunctionSummary = symbol.target
        inner = Frame(symbol.path, symbol.summary, function, (call, frame))
        for returned in function.returns:
            expression = symbol.summary.expression(returned.value)
            found = self.follow(expression, inner, passed, factories + (factory,))
            if found is not None:
                return found
        return OptimizerSite(call, frame, "", passed, factories + (factory,))

    def _returned_class(self, call: cst.Call, frame: Frame, depth: int) -> str | None:
        """The optimizer class a project function returns (`return optimizer_type` where the call
        passed `torch.optim.SGD`), None when it returns something else."""
        callee = dotted_name(call.func)
        symbol = self.project.resolve_callee(frame.path, callee) if callee else None
        if symbol is None or symbol.kind != "function" or depth > _MAX_HOPS:
            return None
        inner = Frame(symbol.path, symbol.summary, symbol.target, (call, frame))
        for returned in symbol.target.returns:
            value, where = symbol.summary.expression(returned.value), inner
            for _ in range(_MAX_HOPS):
                if isinstance(value, cst.Name):
                    found = lookup(value.value, where)
                    if not isinstance(found, tuple):
                        break
                    value, where = found
                    continue
                break
            if isinstance(value, (cst.Name, cst.Attribute)):
                qualified = where.summary.qualify_expr(value)
                if vocab.is_optimizer_class(qualified):
                    return qualified
            elif isinstance(value, cst.Call):
                found_class = self._returned_class(value, where, depth + 1)
                if found_class:
                    return found_class
        return None

    def _through_callers(
        self, function: FunctionSummary, name: str, frame: Frame, passed: tuple, factories: tuple
    ) -> OptimizerSite | None:
        """A parameter: what the function's call sites pass for it (the first that resolves)."""
        for argument, caller, call in passed_arguments(self.project, function, name, frame):
            found = self.follow(argument, caller, passed + ((function, call),), factories)
            if found is not None:
                return found
        return None


def passed_arguments(project, function: FunctionSummary, name: str, frame: Frame):
    """What the call sites of `function` pass for its parameter `name`: (argument, the caller's
    frame, the call), for a method called as `self.method(...)` in its own class, a class's
    `__init__` (the class's call sites) and a module-level function, possibly in other files."""
    if function.param(name) is None:
        return
    summary, path = frame.summary, frame.path
    sites: list[tuple[Path, FileSummary, object, FunctionSummary | None]] = []
    if function.class_name is not None and function.name != "__init__":
        # `self.train_epoch(optimizer)`: calls of the method in its own class.
        info = summary.classes.get(function.class_name)
        for site in summary.calls:
            if site.callee == f"self.{function.name}" and _enclosing_class(summary, site.function) is info:
                sites.append((path, summary, site.span, site.function))
    else:
        symbol = project.callable_symbol(path, function)
        if symbol is None:
            return
        for site_path, site in project.call_sites(symbol):
            site_summary = project.summary(site_path)
            if site_summary is not None:
                sites.append((site_path, site_summary, site.span, site.function))
    for site_path, site_summary, span, caller in sites:
        call = site_summary.expression(span)
        argument = argument_for(function, name, call) if isinstance(call, cst.Call) else None
        if argument is not None:
            yield argument, Frame(site_path, site_summary, caller), call


@dataclass(frozen=True)
class Parameter:
    """`lookup`'s answer for a parameter that no entering call binds: its function."""

    function: FunctionSummary


def lookup(name: str, frame: Frame) -> "tuple[cst.BaseExpression, Frame] | Parameter | None":
    """What a bare name is bound to where `frame` evaluates it: the last plain assignment in its
    function or an enclosing one, a parameter (the entering call's argument, or its default),
    or a module constant."""
    function = frame.function
    while function is not None:
        span = function.bindings.get(name)
        if span is not None:
            expression = frame.summary.expression(span)
            return (expression, frame.at(function)) if expression is not None else None
        if name in function.assigned:
            return None  # bound by unpacking or augmented: unknown
        if name in function.param_names:
            if function is frame.function and frame.entered is not None:
                call, caller = frame.entered
                argument = argument_for(function, name, call)
                if argument is not None:
                    return argument, caller
                param = function.param(name)
                default = frame.summary.expression(param.default) if param is not None and param.default else None
                return (default, frame.at(function.parent)) if default is not None else None
            return Parameter(function)
        function = function.parent
    span = frame.summary.constants.get(name)
    expression = frame.summary.expression(span) if span is not None else None
    return (expression, frame.at(None)) if expression is not None else None


def _enclosing_class(summary: FileSummary, function: FunctionSummary | None) -> ClassSummary | None:
    while function is not None and function.class_name is None:
        function = function.parent
    return summary.classes.get(function.class_name) if function is not None and function.class_name else None


def enclosing_class(summary: FileSummary, function: FunctionSummary | None) -> ClassSummary | None:
    """The class a summarised method (or a function nested in one) belongs to."""
    return _enclosing_class(summary, function)


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


# ----------------------------------------------------------------------- learning rates


def lr_limit(family: str, options: Mapping[str, Any] | None = None) -> float | None:
    """The top of a family's usual learning-rate range (`vocab.LR_LIMITS`), moved by GL401's
    options (`sgd-limit`, `adaptive-limit`) when given; None for a family with no known range."""
    option = vocab.LR_LIMIT_OPTIONS.get(family)
    if options and option and option in options:
        return float(options[option])
    return vocab.LR_LIMITS.get(family)


def is_high(value: float, limit: float | None) -> bool:
    """Above the top of the usual range (the limit itself is in range: Adam at 0.01 is usual)."""
    return limit is not None and value > limit


@dataclass(frozen=True)
class LearningRate:
    site: OptimizerSite
    node: cst.BaseExpression
    """The `lr` argument."""
    value: float
    origin: str
    limit: float | None
    """The top of the family's usual range (None: no known range)."""

    @property
    def high(self) -> bool:
        return is_high(self.value, self.limit)


def learning_rate(
    step: TrainingStep, project, path: Path, options: Mapping[str, Any] | None = None
) -> LearningRate | None:
    """The resolved `lr` argument of the step's optimizer constructor (None when absent or
    unresolved); `options` are GL401's, which move the limits."""
    site = optimizer_site(step, project, path)
    if site is None:
        return None
    node = arg_value(site.call, 1, "lr")
    if node is None:
        return None
    resolved = project.resolver.resolve(node, site.scope)
    if resolved is None or isinstance(resolved.value, bool) or not isinstance(resolved.value, (int, float)):
        return None
    return LearningRate(site, node, resolved.value, resolved.origin, lr_limit(site.family, options))
