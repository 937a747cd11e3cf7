"""GL201 deep-vanilla-rnn: A vanilla RNN is stacked three or more layers deep, which compounds the recurrent gain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from gradlint.analysis.layers import Layer, ancestors, in_loop_body, is_container, layers, owner_class
from gradlint.index.counts import Count, ONCE, describe_count, element_repeats, loop_count, repeat_factor
from gradlint.index.layer_config import resolve_layer
from gradlint.index.sequence import trained_in
from gradlint.index.test_code import is_test_file
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext

HINT = (
    "Use a gated cell (`nn.LSTM`/`nn.GRU`, same arguments) for deep stacks, or keep the vanilla RNN "
    "to 1-2 layers; clip gradients with `torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`."
)


@dataclass
class CellStack:
    first: Layer
    count: Count
    how: str
    """`a ModuleList comprehension over range(4)`, `3 attributes`, ..."""


class DeepVanillaRnn(Rule):
    code = "GL201"
    name = "deep-vanilla-rnn"
    severity = Severity.WARNING
    summary = "A vanilla RNN is stacked three or more layers deep, which compounds the recurrent gain."
    options = (
        Option("max-layers", 3, "Report vanilla RNN stacks with at least this many layers."),
    )
    triggers = ("RNN",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        limit = ctx.options["max-layers"]
        path = ctx.source.path
        for layer in layers(model):
            if layer.kind != "RNN":
                continue
            config = resolve_layer(ctx.project, path, model, layer.node, layer.kind, layer.function)
            depth = config.integer("num_layers")
            if depth is None or depth < limit:
                continue
            nonlinearity = config.get("nonlinearity")
            activation = f"{nonlinearity} " if isinstance(nonlinearity, str) else ""
            yield Diagnostic(
                layer.node,
                f"`nn.RNN` stacks {depth} vanilla {activation}layers, {config.describe('num_layers')}: "
                f"the gradient is multiplied by every layer's recurrent Jacobian at every time step, "
                f"so it explodes or vanishes far faster than in a 1-2 layer RNN.",
                hint=HINT,
                data=config.data(),
                severity=_untrained_test(ctx, model, layer.node, layer.function),
            )
        for stack in cell_stacks(model, ctx):
            if stack.count.value is None or stack.count.value < limit:
                continue
            config = resolve_layer(ctx.project, path, model, stack.first.node, "RNNCell", stack.first.function)
            nonlinearity = config.get("nonlinearity")
            activation = f"{nonlinearity} " if isinstance(nonlinearity, str) else ""
            data = config.data(num_layers=stack.count.value)
            yield Diagnostic(
                stack.first.node,
                f"{stack.count.value} vanilla {activation}`nn.RNNCell`s are stacked ({stack.how}"
                f"{describe_count(stack.count)}): the gradient is multiplied by every cell's recurrent "
                f"Jacobian at every time step, so it explodes or vanishes far faster than with 1-2 cells.",
                hint=HINT.replace("`nn.LSTM`/`nn.GRU`", "`nn.LSTMCell`/`nn.GRUCell`"),
                data=data,
                severity=_untrained_test(ctx, model, stack.first.node, stack.first.function),
            )


def _untrained_test(ctx: RuleContext, model: FileModel, node: cst.Call, function: Function | None) -> Severity | None:
    """Info for a layer a test file builds and no training step of the run trains (a unit test's
    fixture); None (the rule's severity) otherwise."""
    path = ctx.source.path
    if not is_test_file(path):
        return None
    if trained_in(ctx.project, path, model, node, function, ctx.source.line_of(node)):
        return None
    return Severity.INFO


def cell_stacks(model: FileModel, ctx: RuleContext) -> list[CellStack]:
    """Stacks of `nn.RNNCell`s: built in a comprehension or loop, listed in a ModuleList, or
    assigned to several attributes of one class."""

    path = ctx.source.path
    resolver = ctx.project.resolver
    stacks: list[CellStack] = []
    attributes: dict[str, dict[str, Layer]] = {}
    listed: dict[int, list[Layer]] = {}
    for layer in layers(model):
        if layer.kind != "RNNCell":
            continue
        scope = ctx.project.scope(path, layer.function)
        count, how = ONCE, ""
        container: cst.List | cst.Tuple | None = None
        visited = {id(layer.node)}
        for parent, child in ancestors(model, layer.node, layer.function):
            visited.add(id(child))
            repeated = (
                element_repeats(parent, child, visited, resolver, scope)
                if isinstance(parent, (cst.ListComp, cst.GeneratorExp))
                else None
            )
            if repeated is not None:
                count = count.times(repeated)
                how = how or f"built in a comprehension over `{_iterable(parent)}`"
            elif isinstance(parent, (cst.For, cst.While)) and in_loop_body(parent, child):
                count = count.times(loop_count(parent, resolver, scope))
                how = how or f"built in a loop over `{_iterable(parent)}`"
            elif isinstance(parent, cst.BinaryOperation):
                factor = repeat_factor(parent, child, resolver, scope)
                if factor is not None:
                    count = count.times(factor)
                    how = how or "a repeated list"
            elif isinstance(parent, (cst.List, cst.Tuple)) and container is None:
                container = parent
            elif isinstance(parent, cst.Assign) and parent.value is layer.node:
                info = owner_class(model, layer.function)
                for target in parent.targets:
                    name = dotted_name(target.target) if isinstance(target.target, cst.Attribute) else None
                    if info is not None and name and name.startswith("self.") and name.count(".") == 1:
                        # One cell per attribute: `if ...: self.cell = ... else: self.cell = ...` is one.
                        attributes.setdefault(info.name, {}).setdefault(name, layer)
        if how:
            stacks.append(CellStack(layer, count, how))
        elif container is not None and _in_module_list(model, container, layer.function):
            listed.setdefault(id(container), []).append(layer)
    for cells in listed.values():
        stacks.append(CellStack(cells[0], Count(len(cells)), "listed in one `nn.ModuleList`"))
    for owner, by_name in attributes.items():
        cells = list(by_name.values())
        stacks.append(CellStack(cells[0], Count(len(cells)), f"{len(cells)} attributes of `{owner}`"))
    return stacks


def _in_module_list(model: FileModel, node: cst.CSTNode, function: Function | None) -> bool:
    for parent, _ in ancestors(model, node, function):
        if isinstance(parent, cst.Call):
            return is_container(model.qualify_call(parent))
        if not isinstance(parent, (cst.Arg, cst.Element, cst.StarredElement, cst.List, cst.Tuple)):
            return False
    return False


def _iterable(node: cst.CSTNode) -> str:
    if isinstance(node, cst.For):
        iterable = node.iter
    elif isinstance(node, cst.While):
        iterable = node.test
    else:
        iterable = node.for_in.iter  # type: ignore[union-attr]
    return cst.Module([]).code_for_node(iterable)

