"""GL202 relu-recurrence: A recurrence uses an unbounded activation (relu, none), so the hidden state and its gradient can grow without limit."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from gradlint.analysis.handwritten import Recurrence, forward_recurrences, root, step_updates
from gradlint.analysis.layers import JSONValue, json_value, layer_kind, layers, torch_nn_name
from gradlint.analysis.model import ClassInfo, FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import walk
from gradlint.findings import Severity
from gradlint.index.layer_config import resolve_layer
from gradlint.index.recurrences import step_feedback
from gradlint.rules.base import Diagnostic, Rule, RuleContext


class ReluRecurrence(Rule):
    code = "GL202"
    name = "relu-recurrence"
    severity = Severity.WARNING
    summary = "A recurrence uses an unbounded activation (relu, none), so the hidden state and its gradient can grow without limit."
    triggers = ("relu", "RNN", "forward")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        path = ctx.source.path
        for layer in layers(model):
            if layer.kind not in ("RNN", "RNNCell"):
                continue
            config = resolve_layer(ctx.project, path, model, layer.node, layer.kind, layer.function)
            if config.get("nonlinearity") != "relu":
                continue
            yield Diagnostic(
                layer.node,
                f"`nn.{layer.kind}` uses {config.describe('nonlinearity')}: relu does not bound the hidden "
                f"state, so with a recurrent gain above 1 the state and the gradient through time grow "
                f"exponentially with the sequence length.",
                hint=(
                    "Use `nonlinearity='tanh'` or a gated `nn.LSTM`/`nn.GRU`; if the relu RNN is intended "
                    "(IRNN), initialise `weight_hh` to the identity, keep the learning rate small and clip "
                    "gradients with `clip_grad_norm_`."
                ),
                data=config.data(),
            )
        for function in model.all_functions:
            if function.name != "forward" or function.class_name is None:
                continue
            info = model.classes.get(function.class_name)
            if info is not None and info.methods.get("forward") is not function:
                info = None
            attribute = (lambda name: None) if info is None else info.attribute_values.get
            for recurrence in forward_recurrences(function.node, model.qualify_expr, attribute):
                yield self._handwritten(model, ctx, recurrence, info, None)
            steps = step_updates(function.node, model.qualify_expr, attribute) if info is not None else []
            if steps and ctx.project is not None:
                symbol = ctx.project.class_symbol(path, info)
                driven = step_feedback(ctx.project, symbol, steps) if symbol is not None else None
                if driven is not None:
                    recurrence, loop = driven
                    yield self._handwritten(model, ctx, recurrence, info, loop)

    def _handwritten(
        self, model: FileModel, ctx: RuleContext, found: Recurrence, info: ClassInfo | None, loop
    ) -> Diagnostic:
        weight = _text(found.weight)
        activation = found.activation
        if found.elementwise:
            through = f"multiplied element-wise by the recurrent weight `{weight}` (IndRNN-style)"
        else:
            through = f"fed back through `{weight}`"
        if activation is None:
            what = "has no activation at all (a plain affine update)"
            fix = "Bound the update with `torch.tanh(...)`, or use a gated `nn.GRUCell`/`nn.LSTMCell`"
        else:
            what = f"goes through `{activation}`, which does not bound it"
            fix = f"Replace `{activation}` with `torch.tanh`, or use a gated `nn.GRUCell`/`nn.LSTMCell`"
        owner = f"`{info.name}.forward`" if info is not None else "`forward`"
        if loop is None:
            where = f"Hand-written recurrence in {owner}: the state `{found.state}` is {through}"
        else:
            path, line, call = loop
            at = f"line {line}" if path == ctx.source.path else ctx.project.where(path, line)
            where = (
                f"{owner} is one step of a hand-written recurrence (the loop at {at}, `{call}`, feeds the "
                f"state it returns back in): the state `{found.state}` is {through}"
            )
        if found.elementwise and activation is not None:
            fix += "; or keep |u| <= 1 (IndRNN constrains the recurrent weights)"
        return Diagnostic(
            found.node,
            f"{where} and {what}, so the state and the gradient through time can grow exponentially with "
            f"the number of steps.",
            hint=f"{fix}; add a `LayerNorm` on the state or clip gradients with `clip_grad_norm_`.",
            data=_data(model, ctx, found, info),
        )


def _text(node: cst.CSTNode) -> str:
    return " ".join(cst.Module([]).code_for_node(node).split())


def _data(model: FileModel, ctx: RuleContext, found: Recurrence, info: ClassInfo | None) -> dict:
    """The recurrence's configuration: the state's size from the recurrent Linear (or the
    `nn.Parameter` shape), the input size from a Linear applied to something else."""
    data: dict[str, JSONValue] = {
        "layer": "handwritten",
        "state": found.state,
        "nonlinearity": found.activation or "none",
        "weight": _text(found.weight),
        "input_size": None,
        "hidden_size": None,
        "bias": None,
    }
    unresolved = ["input_size", "hidden_size", "bias"]
    weight = root(found.weight)
    bound = info.attribute_values.get(weight[5:]) if info and weight and weight.startswith("self.") and weight.count(".") == 1 else None
    where = info.attribute_functions.get(weight[5:]) if info and bound is not None and weight else None
    if isinstance(bound, cst.Call):
        kind = layer_kind(model.qualify_call(bound))
        if kind == "Linear":
            config = resolve_layer(ctx.project, ctx.source.path, model, bound, kind, where)
            data["hidden_size"], data["bias"] = config.get("out_features"), config.get("bias")
        elif torch_nn_name(model.qualify_call(bound)) == "Parameter":
            size = _parameter_size(model, ctx, bound, where)
            data["hidden_size"] = size
    input_linear = _input_linear(model, found, info)
    if input_linear is not None and info is not None:
        call, name = input_linear
        config = resolve_layer(ctx.project, ctx.source.path, model, call, "Linear", info.attribute_functions.get(name))
        inputs = config.get("in_features")
        if weight == f"self.{name}":
            # One Linear over `torch.cat((x, h))`: its inputs are the input and the state.
            hidden = data["hidden_size"]
            inputs = inputs - hidden if isinstance(inputs, int) and isinstance(hidden, int) and inputs > hidden else None
        data["input_size"] = inputs
        if data["bias"] is None:
            data["bias"] = config.get("bias")
    data["unresolved"] = [name for name in unresolved if data[name] is None]
    return data


def _parameter_size(model: FileModel, ctx: RuleContext, parameter: cst.Call, where: Function | None) -> JSONValue:
    """The last dimension of `nn.Parameter(torch.randn(n, n))`, when it resolves."""

    for node in walk(parameter):
        if isinstance(node, cst.Call) and (model.qualify_call(node) or "").rsplit(".", 1)[-1] in (
            "randn", "rand", "empty", "zeros", "ones", "eye", "Tensor", "FloatTensor",
        ):
            dims = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
            if dims:
                resolved = ctx.project.resolver.resolve(dims[-1], ctx.project.scope(ctx.source.path, where))
                value = json_value(resolved.value) if resolved is not None else None
                return value if isinstance(value, int) else None
    return None


def _input_linear(model: FileModel, found: Recurrence, info: ClassInfo | None) -> tuple[cst.Call, str] | None:
    """A Linear of the class applied to something that is not the state (the input projection),
    or the recurrent Linear itself when it reads the input and the state concatenated."""
    if info is None:
        return None
    value = found.node.value if isinstance(found.node, cst.Assign) else found.node
    concatenated = None
    for node in walk(value):
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            continue
        if dotted_name(node.func.value) != "self":
            continue
        name = node.func.attr.value
        bound = info.attribute_values.get(name)
        if not isinstance(bound, cst.Call) or layer_kind(model.qualify_call(bound)) != "Linear":
            continue
        if f"self.{name}" == root(found.weight):
            concatenated = concatenated or (bound, name)
            continue
        if any(isinstance(n, cst.Name) and n.value == found.state for arg in node.args for n in walk(arg)):
            continue
        return bound, name
    return concatenated
