"""What a training step updates: the models, or the plain tensors, whose parameters its optimizer holds.

The optimizer is followed to the call that built it (gradlint.index.optimizers: in the step's
function or class, through the call sites that pass it in, out of a project factory), and its
`params` argument is read there:

- `model.parameters()` / `named_parameters()`, `self.parameters()`, parameter groups
  (`[{"params": ...}]`), unions (`list(a.parameters()) + list(b.parameters())`,
  `set(a.parameters()) | set(b.parameters())`, `itertools.chain(...)`), `filter(...)`,
  comprehensions and slices of them: the models they name, each followed to its class
  (gradlint.index.facts), also through a dict of classes (`MODELS[args.model](...)`, with the
  key resolved);
- a list of tensors that are no module's weights (`Adam([latents])` where `latents` is a
  `.detach().clone()` of data, a `torch.randn(..., requires_grad=True)` or an input made
  `.requires_grad_()`, also wrapped in `nn.Parameter`): the step optimizes an input or a latent,
  not a model (inversion, adversarial examples, feature optimization);
- anything else is unknown, and the rules that need the model stay cautious.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import Kind, enclosing_class
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import TrainingStep, optimizer_name
from gradlint.analysis.values import string_value
from gradlint.index.facts import ModelFacts
from gradlint.index.summary import FunctionSummary
from gradlint.index.values import argument_for
from gradlint.index.optimizers import (
    Frame,
    OptimizerSite,
    Parameter,
    enclosing_class as summary_class,
    lookup,
    optimizer_origin,
    passed_arguments,
)

MAX_DEPTH = 10

_COLLECTIONS = {"list", "tuple", "set", "iter", "sorted", "frozenset"}
_CHAINS = {"itertools.chain", "itertools.chain.from_iterable"}
_TENSOR_METHODS = {"detach", "clone", "requires_grad_", "detach_"}
"""Methods whose result is a tensor of its own (a copy of data, or a leaf made trainable)."""
_SAME_TENSOR = {"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "contiguous", "view", "reshape", "type"}
_TENSOR_FACTORIES = {
    f"torch.{name}"
    for name in (
        "randn", "rand", "zeros", "ones", "empty", "full", "tensor", "as_tensor", "randint", "normal",
        "randn_like", "rand_like", "zeros_like", "ones_like", "empty_like", "full_like", "from_numpy",
    )
}
_PARAMETER = {"torch.nn.Parameter", "torch.nn.parameter.Parameter"}
_CONTAINERS = {"torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.modules.container.Sequential"}


@dataclass(frozen=True, eq=False)
class TrainedModel:
    facts: ModelFacts | None
    """None when the model is named but its class cannot be resolved."""
    name: str | None
    """The model as written where the optimizer is built (`model`, `self.encoder`)."""
    frame: Frame


@dataclass(eq=False)
class Trained:
    """What the optimizer of a step updates."""

    site: OptimizerSite | None
    models: list[TrainedModel] = field(default_factory=list)
    tensors: list[cst.BaseExpression] = field(default_factory=list)
    """Plain tensors (inputs, latents) that no module owns."""
    unknown: bool = False
    """Some of the parameters could not be followed."""

    @property
    def tensors_only(self) -> bool:
        """The optimizer updates plain tensors and nothing else: it trains no model."""
        return bool(self.tensors) and not self.models and not self.unknown

    @property
    def resolved(self) -> list[ModelFacts]:
        return [model.facts for model in self.models if model.facts is not None]

    @property
    def fully_resolved(self) -> bool:
        """Every parameter was followed to a model whose class is known (or to a plain tensor)."""
        return not self.unknown and bool(self.models) and all(model.facts is not None for model in self.models)

    @property
    def recurrent(self) -> ModelFacts | None:
        return next((facts for facts in self.resolved if facts.recurrent), None)

    @property
    def primary(self) -> ModelFacts | None:
        """The model to speak of: the recurrent one, else the first resolved one."""
        return self.recurrent or next(iter(self.resolved), None)

    def names_at(self, function: FunctionSummary | None) -> list[str] | None:
        """The trained models as they are named in `function` (the step's), for a fix that clips
        them: mapped back through the calls that passed the optimizer in (`train(encoder,
        decoder, encoder_optimizer, ...)` names the encoder `encoder` inside `train`). None when
        a model has no name there."""
        site = self.site
        if self.unknown or not self.models:
            return None
        names: list[str] = []
        for model in self.models:
            name = model.name
            if name is None:
                return None
            if site is None:  # Lightning's `self.optimizers()`: the module itself
                names.append(name)
                continue
            if site.factories or model.frame.function is not site.frame.function or model.frame.path != site.path:
                return None
            for receiver, call in reversed(site.passed):
                name = _parameter_passed(receiver, call, name)
                if name is None:
                    return None
            if not site.passed and not _visible(name, site.frame.function, function):
                return None
            if name not in names:
                names.append(name)
        return names


def trained(step: TrainingStep, project, path: Path) -> Trained:
    """What the optimizer of `step` updates (memoised per step)."""
    return project.memo_on("trained.by_step", step.step.event, lambda: _trained(step, project, path))


def _trained(step: TrainingStep, project, path: Path) -> Trained:
    lightning = _lightning_module(step, project, path)
    if lightning is not None:
        return lightning
    site = optimizer_origin(step, project, path)
    result = Trained(site)
    if site is None or not site.constructor:
        result.unknown = True
        return result
    params = _params_argument(site)
    if params is None:
        result.unknown = True
        return result
    _Reader(project, result).params(params[0], params[1], 0)
    return result


def _params_argument(site: OptimizerSite) -> tuple[cst.BaseExpression, Frame] | None:
    """The optimizer's `params` (the first argument, `params=`, or `**kwargs` with "params")."""
    found = arg_value(site.call, 0, "params")
    if found is not None:
        return found, site.frame
    for arg in site.call.args:
        if arg.star == "**":
            mapping, frame = arg.value, site.frame
            if isinstance(mapping, cst.Name):
                bound = lookup(mapping.value, frame)
                if not isinstance(bound, tuple):
                    return None
                mapping, frame = bound
            if isinstance(mapping, cst.Dict):
                for element in mapping.elements:
                    if isinstance(element, cst.DictElement) and string_value(element.key) == "params":
                        return element.value, frame
    return None


def _lightning_module(step: TrainingStep, project, path: Path) -> Trained | None:
    """Lightning's manual optimization: `opt = self.optimizers()` trains the module itself."""
    context = step.context
    name = optimizer_name(step)
    for occ in reversed(context.occurrences[: step.step.index]):
        event = occ.event
        if event.kind is Kind.ASSIGN and name in event.targets:
            value = event.value
            if isinstance(value, cst.Subscript):
                value = value.value
            if not (
                isinstance(value, cst.Call)
                and isinstance(value.func, cst.Attribute)
                and value.func.attr.value == "optimizers"
                and dotted_name(value.func.value) == "self"
            ):
                return None
            owner = enclosing_class(context.function, context.model)
            symbol = project.class_symbol(path, owner) if owner is not None else None
            summary = project.summary(path)
            if symbol is None or summary is None:
                return None
            frame = Frame(path, summary, project.function_summary(path, context.function))
            return Trained(None, [TrainedModel(project.facts.of_class(symbol), "self", frame)])
    return None


class _Reader:
    def __init__(self, project, result: Trained) -> None:
        self.project = project
        self.result = result

    # ------------------------------------------------------------ parameters

    def params(self, node: cst.BaseExpression | None, frame: Frame, depth: int) -> None:
        """Read a `params` expression into the result's models and tensors."""
        if node is None or depth > MAX_DEPTH:
            self.result.unknown = True
            return
        recurse = lambda n, f=frame: self.params(n, f, depth + 1)  # noqa: E731
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in vocab.ONE_SHOT_METHODS:
                self.model(func.value, frame, depth)
                return
            callee = dotted_name(func) or ""
            qualified = frame.summary.qualify_expr(func) or callee
            positional = [arg.value for arg in node.args if arg.keyword is None]
            if callee in _COLLECTIONS or qualified in _CHAINS or callee == "chain":
                if not positional:
                    self.result.unknown = True
                for argument in positional:
                    recurse(argument)
                return
            if callee == "filter" and len(positional) == 2:
                recurse(positional[1])
                return
            self._other(node, frame, depth)
            return
        if isinstance(node, cst.Subscript):  # `list(net.parameters())[:2]`: part of the same weights
            recurse(node.value)
            return
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.Add, cst.BitOr)):
            recurse(node.left)
            recurse(node.right)
            return
        if isinstance(node, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            recurse(node.for_in.iter)
            return
        if isinstance(node, (cst.List, cst.Tuple)):
            if not node.elements:
                self.result.unknown = True
            for element in node.elements:
                value = element.value
                if isinstance(element, cst.StarredElement):
                    recurse(value)
                elif isinstance(value, cst.Dict):
                    group = next(
                        (e.value for e in value.elements if isinstance(e, cst.DictElement) and string_value(e.key) == "params"),
                        None,
                    )
                    recurse(group)
                elif isinstance(value, cst.Call) and dotted_name(value.func) == "dict":
                    recurse(kwarg_value(value, "params"))  # `dict(params=model.conv1.parameters(), ...)`
                elif isinstance(value, cst.Call) and (
                    isinstance(value.func, cst.Attribute) and value.func.attr.value in vocab.ONE_SHOT_METHODS
                ):
                    recurse(value)
                else:
                    self.leaf(value, frame, depth + 1)
            return
        if isinstance(node, (cst.Name, cst.Attribute)):
            bound = self._bound(node, frame)
            if bound is None:
                self._other(node, frame, depth)
            else:
                for expression, where in bound:
                    recurse(expression, where)
            return
        self.result.unknown = True

    def _other(self, node: cst.BaseExpression, frame: Frame, depth: int) -> None:
        """An expression that is no parameter collection: a module itself (ColossalAI's
        `GeminiAdamOptimizer(unet)` takes the model), else unknown."""
        facts = self.facts(node, frame, depth)
        if facts is not None:
            self.result.models.append(TrainedModel(facts, dotted_name(node), frame))
        else:
            self.result.unknown = True

    def _bound(self, node: cst.Name | cst.Attribute, frame: Frame) -> "list[tuple[cst.BaseExpression, Frame]] | None":
        """What a name or `self.x` stands for: its binding, or what the callers pass for a parameter."""
        name = dotted_name(node) or ""
        if name.startswith("self.") and name.count(".") == 1:
            owner = summary_class(frame.summary, frame.function)
            if owner is None or name[5:] not in owner.attribute_values:
                return None
            value = frame.summary.expression(owner.attribute_values[name[5:]])
            return [(value, frame.at(owner.attribute_functions.get(name[5:])))] if value is not None else None
        if "." in name or not name:
            return None
        found = lookup(name, frame)
        if isinstance(found, Parameter):
            passed = list(passed_arguments(self.project, found.function, name, frame))
            return [(argument, caller) for argument, caller, _ in passed[:1]] or None
        return [found] if found is not None else None

    # --------------------------------------------------------------- tensors

    def leaf(self, node: cst.BaseExpression, frame: Frame, depth: int) -> None:
        """One element of a params list: a plain tensor, a module's weight, or unknown."""
        kind = self._leaf_kind(node, frame, depth)
        if kind == "tensor":
            self.result.tensors.append(node)
        elif kind == "weight":
            self.result.unknown = True  # a module's weight (`model.embed.weight`): weights, model unknown
        else:
            self.result.unknown = True

    def _leaf_kind(self, node: cst.BaseExpression, frame: Frame, depth: int) -> str | None:
        if depth > MAX_DEPTH:
            return None
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute):
                if func.attr.value in _TENSOR_METHODS:
                    return "tensor"
                if func.attr.value in _SAME_TENSOR:
                    return self._leaf_kind(func.value, frame, depth + 1)
            qualified = frame.summary.qualify_expr(func)
            if qualified in _PARAMETER and node.args:
                inner = self._leaf_kind(node.args[0].value, frame, depth + 1)
                # `nn.Parameter(latent.detach().clone())` is a copy of data; `nn.Parameter(torch.randn(n, n))` a weight.
                return "tensor" if inner == "tensor" and not _fresh(node.args[0].value, frame) else "weight"
            if qualified in _TENSOR_FACTORIES:
                return "tensor"
            return None
        if isinstance(node, cst.Name):
            found = lookup(node.value, frame)
            if isinstance(found, tuple):
                return self._leaf_kind(found[0], found[1], depth + 1)
            return None
        if isinstance(node, cst.Attribute):
            bound = self._bound(node, frame)
            if bound:
                return self._leaf_kind(bound[0][0], bound[0][1], depth + 1)
            return "weight"  # `model.embedding.weight`
        return None

    # ---------------------------------------------------------------- models

    def model(self, holder: cst.BaseExpression, frame: Frame, depth: int) -> None:
        while isinstance(holder, cst.Attribute) and not (dotted_name(holder) or "").startswith("self."):
            holder = holder.value  # `model.encoder.parameters()` trains part of `model`
        if isinstance(holder, cst.Attribute) and (dotted_name(holder) or "").count(".") > 1:
            holder = cst.Attribute(value=cst.Name("self"), attr=cst.Name((dotted_name(holder) or "").split(".")[1]))
        facts = self.facts(holder, frame, depth)
        self.result.models.append(TrainedModel(facts, dotted_name(holder), frame))

    def facts(self, node: cst.BaseExpression | None, frame: Frame, depth: int) -> ModelFacts | None:
        """The model an expression evaluates to, followed through bindings, parameters (what the
        callers pass), `self` attributes, `.to(device)`-style moves and dicts of classes."""
        if node is None or depth > MAX_DEPTH:
            return None
        project = self.project
        if isinstance(node, cst.Name) and node.value == "self":
            owner = summary_class(frame.summary, frame.function)
            symbol = project.class_symbol(frame.path, owner) if owner is not None else None
            return project.facts.of_class(symbol) if symbol is not None else None
        if isinstance(node, (cst.Name, cst.Attribute)):
            bound = self._bound(node, frame)
            return self.facts(bound[0][0], bound[0][1], depth + 1) if bound else None
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute) and func.attr.value in vocab.MODULE_MOVES:
                return self.facts(func.value, frame, depth + 1)
            if isinstance(func, cst.Subscript):
                chosen = self._dispatched(func, frame)
                return self.facts(node.with_changes(func=chosen[0]), chosen[1], depth + 1) if chosen else None
            qualified = frame.summary.qualify_expr(func) or ""
            if func is not None and (dotted_name(func) or "").rsplit(".", 1)[-1] in vocab.MODULE_WRAPPERS and node.args:
                return self.facts(node.args[0].value, frame, depth + 1)  # `DDP(model)`, `torch.compile(model)`
            if qualified in _CONTAINERS:
                return self._container(node, qualified, frame, depth)
            if (
                qualified.startswith("torch.nn.")
                and qualified not in vocab.RECURRENT_LAYERS
                and qualified.rsplit(".", 1)[-1][:1].isupper()
                and not qualified.startswith("torch.nn.utils")
            ):
                return ModelFacts(f"nn.{qualified.rsplit('.', 1)[-1]}", frame.path)  # a torch layer: no recurrence
            if isinstance(func, cst.Name) and isinstance(lookup(func.value, frame), tuple):
                # A local alias of a class (`Model = GRUNet if args.gru else LSTMNet`) is not followed.
                bound = lookup(func.value, frame)
                if isinstance(bound[0], (cst.Name, cst.Attribute)):
                    return self.facts(node.with_changes(func=bound[0]), bound[1], depth + 1)
            return project.facts.of_expression(node, frame.path, frame.summary, None, 0, frame.function)
        return None

    def _container(self, node: cst.Call, qualified: str, frame: Frame, depth: int) -> ModelFacts | None:
        """`nn.Sequential(a, b, ...)`, `nn.ModuleList([...])`: the layers they hold, known only when
        every one is (or one is recurrent)."""
        items: list[cst.BaseExpression] = []
        for arg in node.args:
            if isinstance(arg.value, (cst.List, cst.Tuple)):
                items.extend(element.value for element in arg.value.elements)
            elif not arg.star:
                items.append(arg.value)
            else:
                return None
        name = f"nn.{qualified.rsplit('.', 1)[-1]}"
        facts = ModelFacts(name, frame.path)
        unknown = False
        for item in items:
            inner = self.facts(item, frame, depth + 1)
            if inner is None:
                unknown = True
                continue
            facts.possibly_recurrent.extend(inner.possibly_recurrent)
        if unknown and not facts.recurrent:
            return None
        return facts

    def _dispatched(self, func: cst.Subscript, frame: Frame) -> tuple[cst.BaseExpression, Frame] | None:
        """`MODELS[args.model]`: the dict entry its key resolves to (None when the key does not)."""
        container: cst.BaseExpression = func.value
        where = frame
        if isinstance(container, cst.Name):
            found = lookup(container.value, frame)
            if not isinstance(found, tuple):
                return None
            container, where = found
        if not isinstance(container, cst.Dict) or len(func.slice) != 1 or not isinstance(func.slice[0].slice, cst.Index):
            return None
        key = self.project.resolver.resolve(func.slice[0].slice.value, frame.scope)
        if key is None:
            return None
        for element in container.elements:
            if not isinstance(element, cst.DictElement):
                continue
            candidate = self.project.resolver.resolve(element.key, where.scope)
            if candidate is not None and candidate.value == key.value:
                return element.value, where
        return None


def _parameter_passed(receiver: FunctionSummary, call: cst.Call, name: str) -> str | None:
    """The parameter of `receiver` that `call` fills with the expression `name`."""
    for param in receiver.param_names:
        argument = argument_for(receiver, param, call)
        if argument is not None and dotted_name(argument) == name:
            return param
    if name.startswith("self.") and receiver.class_name is not None:
        return name  # `self.model` is the same object in another method of the class
    return None


def _visible(name: str, where: FunctionSummary | None, function: FunctionSummary | None) -> bool:
    """A name bound where the optimizer is built means the same at the step in `function`."""
    if where is function:
        return True
    if name.startswith("self."):
        return where is not None and function is not None and where.class_name is not None and (
            _class_of(where) == _class_of(function)
        )
    if where is None:  # a module-level model, unless the step's function rebinds the name
        scope = function
        while scope is not None:
            if name.split(".", 1)[0] in scope.assigned or name.split(".", 1)[0] in scope.param_names:
                return False
            scope = scope.parent
        return True
    return False


def _class_of(function: FunctionSummary | None) -> str | None:
    while function is not None and function.class_name is None:
        function = function.parent
    return function.class_name if function is not None else None


def _fresh(node: cst.BaseExpression, frame: Frame) -> bool:
    """A new random or constant tensor (`torch.randn(n, n)`), not a copy of existing data."""
    if isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _SAME_TENSOR | {"requires_grad_"}:
            return _fresh(func.value, frame)
        return frame.summary.qualify_expr(func) in _TENSOR_FACTORIES and kwarg_value(node, "requires_grad") is None
    return False
