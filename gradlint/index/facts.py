"""Facts about models: which classes hold recurrent layers, and which model a step trains.

A class holds a recurrent layer when one of its methods builds `nn.RNN/LSTM/GRU/*Cell`,
directly or through a submodule class of the project that does (`self.encoder =
Encoder(...)`), or through a base class. The model a training step trains is the one
whose `.parameters()` reach its optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import FileModel, Function, Kind, enclosing_class, last_assignment
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, TrainingStep
from gradlint.analysis.values import string_value as cst_string_value
from gradlint.index.recurrences import handwritten_cell
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary
from gradlint.index.syntax import Span

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex, Symbol

MAX_DEPTH = 6


@dataclass(frozen=True, eq=False)
class LayerSite:
    path: Path
    node: "cst.Call | Span"
    """The construction: a libcst call of the checked file, or the span of the call in another
    file's summary (`ProjectIndex.where` names either)."""
    layer: str
    """`LSTM`, `RNN`, `GRUCell`, ..., or `handwritten` (gradlint.index.recurrences)."""
    nonlinearity: str | None = None
    condition: str | None = None
    """The `if` test the construction depends on when it could not be resolved (`mode == 'lstm'`
    in PyG's JumpingKnowledge); None when the layer is always built."""
    detail: str | None = None
    """How a hand-written recurrence reads: `a hand-written recurrence with no activation, `h = self.W(h)`,`."""

    @property
    def label(self) -> str:
        """`nn.LSTM`, `nn.RNN with nonlinearity='relu'`, or the hand-written recurrence's detail."""
        if self.detail is not None:
            return self.detail
        return f"nn.{self.layer}" + (" with nonlinearity='relu'" if self.nonlinearity == "relu" else "")


@dataclass(eq=False)
class ModelFacts:
    name: str
    path: Path | None
    info: ClassSummary | None = None
    possibly_recurrent: list[LayerSite] = field(default_factory=list)
    """Every recurrent layer the class may build, also under a condition gradlint cannot resolve."""
    lightning: bool = False
    configures_clipping: bool = False
    """Overrides Lightning's `configure_gradient_clipping`."""
    manual_optimization: bool = False
    """`self.automatic_optimization = False`."""
    clips_manually: bool = False
    """Calls `self.clip_gradients(...)` (Lightning manual optimization)."""

    @property
    def recurrent(self) -> list[LayerSite]:
        """The recurrent layers the class builds for certain (always, or under a condition that
        resolves true); a layer only built under an unresolved condition is no evidence."""
        return [site for site in self.possibly_recurrent if site.condition is None]

    @property
    def vanilla(self) -> list[LayerSite]:
        return [site for site in self.recurrent if site.layer in ("RNN", "RNNCell")]

    def describe_risk(self, project: "ProjectIndex") -> str | None:
        """`CharModel` has a recurrent layer (nn.LSTM at train.py:9)`."""
        if not self.recurrent:
            return None
        site = self.recurrent[0]
        return f"`{self.name}` has a recurrent layer ({site.label} at {project.where(site.path, site.node)})"


class Facts:
    """Model facts, computed once per class per run from file summaries (they hold no tree, so
    they outlive the release of libcst trees)."""

    def __init__(self, project: "ProjectIndex") -> None:
        self.project = project
        self._classes: dict[int, tuple[ModelFacts, set]] = {}

    # ----------------------------------------------------------------- classes

    def of_class(self, symbol: "Symbol", depth: int = 0) -> ModelFacts:
        info = symbol.target
        assert isinstance(info, ClassSummary)
        entry = self._classes.get(id(info))
        if entry is not None:
            facts, dependencies = entry
            self.project.deps.note_all(dependencies)
            return facts
        facts = ModelFacts(info.name, symbol.path, info)
        with self.project.deps.recording() as dependencies:
            self._classes[id(info)] = (facts, dependencies)  # guards against cycles
            self._fill(facts, symbol, info, depth)
        return facts

    def _fill(self, facts: ModelFacts, symbol: "Symbol", info: ClassSummary, depth: int) -> None:
        summary = symbol.summary
        found: list[tuple[LayerSite, tuple]] = []
        for site in summary.calls:
            if not in_class(site.function, info):
                continue
            if site.qualified in vocab.RECURRENT_LAYERS:
                condition = self._condition(symbol, site)
                if condition is False:
                    continue  # never built
                call = summary.expression(site.span)
                nonlinearity = cst_string_value(kwarg_value(call, "nonlinearity")) if isinstance(call, cst.Call) else None
                layer = LayerSite(symbol.path, site.span, site.qualified.rsplit(".", 1)[-1], nonlinearity)
                found.append((layer if condition is True else replace(layer, condition=condition), site.guards))
            elif depth < MAX_DEPTH and not (site.qualified or "").startswith(("torch.", "numpy.", "math.")):
                inner = self.project.resolve_callee(symbol.path, site.callee)
                if inner is not None and inner.kind == "class" and inner.target is not info:
                    condition = self._condition(symbol, site)
                    if condition is False:
                        continue
                    for layer in self.of_class(inner, depth + 1).possibly_recurrent:
                        if condition is not True and layer.condition is None:
                            layer = replace(layer, condition=condition)
                        found.append((layer, site.guards if condition is not True else ()))
        facts.possibly_recurrent.extend(_either_branch(found))
        cell = handwritten_cell(self.project, symbol)
        if cell is not None:
            span = (cell.line, 0, cell.line, 0)
            site = LayerSite(cell.path, span, "handwritten", cell.nonlinearity, detail=cell.describe())
            facts.possibly_recurrent.append(site)
        for base in info.bases:
            if base.endswith("LightningModule"):
                facts.lightning = True
                continue
            inner = self.project.resolve_callee(symbol.path, base) if base else None
            if inner is None and base.startswith("."):
                inner = self.project.resolve_qualified(symbol.path, base)
            if inner is not None and inner.kind == "class" and depth < MAX_DEPTH:
                parent = self.of_class(inner, depth + 1)
                facts.possibly_recurrent.extend(parent.possibly_recurrent)
                facts.lightning |= parent.lightning
                facts.configures_clipping |= parent.configures_clipping
                facts.manual_optimization |= parent.manual_optimization
                facts.clips_manually |= parent.clips_manually
        facts.configures_clipping |= "configure_gradient_clipping" in info.methods
        flag_span = info.attribute_values.get("automatic_optimization", info.class_values.get("automatic_optimization"))
        flag = summary.expression(flag_span) if flag_span is not None else None
        facts.manual_optimization |= isinstance(flag, cst.Name) and flag.value == "False"
        methods = set(map(id, info.methods.values()))
        facts.clips_manually |= "clip_gradients" not in info.methods and any(
            site.callee == "self.clip_gradients" and id(site.function) in methods for site in summary.calls
        )

    def _condition(self, symbol: "Symbol", site) -> "bool | str":
        """Whether a call of the class body runs: True (always, or every `if` around it resolves
        to its branch), False (an `if` resolves against it), else the first unresolved test."""
        summary = symbol.summary
        unresolved: str | None = None
        for span, branch in site.guards:
            test = summary.expression(span)
            resolved = self.project.resolver.resolve(test, self.project.scope(symbol.path, site.function)) if test is not None else None
            if resolved is None:
                if unresolved is None:
                    unresolved = summary.source_segment(span)
                continue
            try:
                truth = bool(resolved.value)
            except Exception:  # a value with no truth (an Unresolved entry)
                unresolved = unresolved or summary.source_segment(span)
                continue
            if truth != branch:
                return False
        return True if unresolved is None else unresolved

    # ----------------------------------------------------------- expressions

    def of_expression(
        self, expression: cst.BaseExpression | None, path: Path, model: "FileModel | FileSummary",
        context: Context | None, before: int, function: "Function | FunctionSummary | None", depth: int = 0,
    ) -> ModelFacts | None:
        """The model an expression evaluates to (`model`, `self.net`, `RNNModel(...).to(device)`),
        read in the checked file's libcst model or in a file summary."""
        if expression is None or depth > MAX_DEPTH:
            return None
        recurse = lambda e, fn=function: self.of_expression(e, path, model, context, before, fn, depth + 1)  # noqa: E731
        if isinstance(expression, cst.Call):
            func = expression.func
            if isinstance(func, cst.Attribute) and func.attr.value in vocab.MODULE_MOVES:
                return recurse(func.value)
            callee = dotted_name(func) or ""
            qualified = model.qualify_expr(func)
            if qualified in vocab.RECURRENT_LAYERS:
                layer = qualified.rsplit(".", 1)[-1]
                nonlinearity = cst_string_value(kwarg_value(expression, "nonlinearity"))
                return ModelFacts(f"nn.{layer}", path, possibly_recurrent=[LayerSite(path, expression, layer, nonlinearity)])
            if callee.rsplit(".", 1)[-1] in vocab.MODULE_WRAPPERS and expression.args:
                return recurse(expression.args[0].value)
            symbol = self.project.resolve_callee(path, callee) if callee else None
            if symbol is not None and symbol.kind == "class" and isinstance(symbol.target, ClassSummary):
                return self.of_class(symbol)
            return None
        name = dotted_name(expression)
        if name is None:
            return None
        if name.startswith("self.") and name.count(".") == 1:
            found = _self_attribute(model, function, name[5:])
            return recurse(*found) if found is not None else None
        if "." in name:
            return None
        value = context.binding(name, before) if context is not None else None
        if value is None and function is not None:
            value = _local(model, function, name)
        if value is None:
            value = _constant(model, name)
        return recurse(value) if value is not None else None

    def trained_by(self, step: TrainingStep, path: Path) -> ModelFacts | None:
        """The model whose parameters the step's optimizer updates."""
        event = step.step.event
        optimizer = event.receiver or ""
        if event.via_scaler and isinstance(event.node, cst.Call) and event.node.args:
            optimizer = dotted_name(event.node.args[0].value) or optimizer
        context, model = step.context, step.context.model
        if _from_lightning_optimizers(context, optimizer, step.step.index):
            # Lightning manual optimization: `opt = self.optimizers()` trains the module itself.
            owner = enclosing_class(context.function, model)
            symbol = self.project.class_symbol(path, owner) if owner is not None else None
            return self.of_class(symbol) if symbol is not None else None
        constructor = context.binding(optimizer, step.step.index)
        if constructor is None and optimizer.startswith("self."):
            owner = enclosing_class(context.function, model)
            constructor = owner.attribute_values.get(optimizer[5:]) if owner else None
        if not isinstance(constructor, cst.Call):
            return None
        params = arg_value(constructor, 0, "params")
        if isinstance(params, cst.Name):
            params = context.binding(params.value, step.step.index) or model.constants.get(params.value)
        if isinstance(params, (cst.List, cst.Tuple)) and params.elements:
            first = params.elements[0].value
            if isinstance(first, cst.Dict):
                params = next(
                    (e.value for e in first.elements if isinstance(e, cst.DictElement) and cst_string_value(e.key) == "params"),
                    None,
                )
        if not (isinstance(params, cst.Call) and isinstance(params.func, cst.Attribute)):
            return None
        if params.func.attr.value not in ("parameters", "named_parameters"):
            return None
        holder = params.func.value
        while isinstance(holder, cst.Attribute) and dotted_name(holder) and not dotted_name(holder).startswith("self."):
            holder = holder.value  # `model.encoder.parameters()` trains part of `model`
        return self.of_expression(holder, path, model, context, step.step.index, context.function)


def _either_branch(found: list[tuple[LayerSite, tuple]]) -> list[LayerSite]:
    """Layers built under a condition count as certain when another is built in the other branch
    of the same `if` (`if bidirectional: nn.LSTM(...) else: nn.GRU(...)`)."""
    branches: dict[tuple, set[bool]] = {}
    for layer, guards in found:
        if layer.condition is not None and guards:
            branches.setdefault((guards[:-1], guards[-1][0]), set()).add(guards[-1][1])
    result = []
    for layer, guards in found:
        if layer.condition is not None and guards and branches.get((guards[:-1], guards[-1][0])) == {True, False}:
            layer = replace(layer, condition=None)
        result.append(layer)
    return result


def _from_lightning_optimizers(context: Context, name: str, before: int) -> bool:
    """`opt = self.optimizers()`, `g_opt, d_opt = self.optimizers()` or `self.optimizers()[0]`."""
    for occ in reversed(context.occurrences[:before]):
        event = occ.event
        if event.kind is Kind.ASSIGN and name in event.targets:
            value = event.value
            if isinstance(value, cst.Subscript):
                value = value.value
            return (
                isinstance(value, cst.Call)
                and isinstance(value.func, cst.Attribute)
                and value.func.attr.value == "optimizers"
                and dotted_name(value.func.value) == "self"
            )
    return False


def in_class(function: FunctionSummary | None, info: ClassSummary) -> bool:
    """Whether a summarised function is a method of `info` or nested in one."""
    while function is not None:
        if function.class_name == info.name and info.methods.get(function.name) is function:
            return True
        function = function.parent
    return False


def _self_attribute(model: "FileModel | FileSummary", function, attribute: str):
    """(value, the method that assigns it) of `self.<attribute>` in the class `function` is in."""
    if isinstance(model, FileSummary):
        while function is not None and function.class_name is None:
            function = function.parent
        info = model.classes.get(function.class_name) if function is not None and function.class_name else None
        if info is None or attribute not in info.attribute_values:
            return None
        value = model.expression(info.attribute_values[attribute])
        return (value, info.attribute_functions.get(attribute)) if value is not None else None
    owner = enclosing_class(function, model)
    if owner is None or attribute not in owner.attribute_values:
        return None
    return owner.attribute_values[attribute], owner.attribute_functions.get(attribute)


def _local(model: "FileModel | FileSummary", function, name: str) -> cst.BaseExpression | None:
    if isinstance(model, FileSummary):
        return model.expression(function.bindings.get(name))
    return last_assignment(function, name)


def _constant(model: "FileModel | FileSummary", name: str) -> cst.BaseExpression | None:
    if isinstance(model, FileSummary):
        return model.expression(model.constants.get(name))
    return model.constants.get(name)
