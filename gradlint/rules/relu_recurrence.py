"""GL202 relu-recurrence: A recurrence uses an unbounded activation (relu, none), so the hidden state and its gradient can grow without limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from gradlint.analysis.layers import (
    JSONValue,
    UNBOUNDED_FUNCTIONS,
    is_unbounded_module,
    json_value,
    layer_kind,
    layers,
    torch_nn_name,
)
from gradlint.index.layer_config import resolve_layer
from gradlint.analysis.model import ClassInfo, FileModel, Function, Kind
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import children, walk
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Rule, RuleContext

_MATMUL_FUNCTIONS = {"torch.mm", "torch.matmul", "torch.bmm", "torch.addmm", "torch.einsum", "torch.nn.functional.linear"}
_MATMUL_METHODS = {"mm", "matmul", "bmm"}
_PASS_METHODS = {"contiguous", "view", "reshape", "squeeze", "unsqueeze", "clone", "float", "to", "type_as"}
_PASS_FUNCTIONS = {"torch.nn.functional.dropout", "torch.dropout"}
_LINEAR_MODULES = {"Linear", "LazyLinear", "Bilinear"}
_MODULE_ACTIVATIONS = {
    "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu", "SELU": "selu", "CELU": "celu",
    "Softplus": "softplus", "SiLU": "silu", "Mish": "mish", "PReLU": "prelu", "RReLU": "rrelu",
}
_WEIGHT_NAME = re.compile(r"^([WUV]|w)(_\w+|\d+)?$|weight", re.IGNORECASE)


@dataclass
class Recurrence:
    node: cst.Assign
    state: str
    activation: str | None
    """The unbounded activation around the update (`relu`), None for a plain affine update."""
    weight: cst.BaseExpression
    """What multiplies the state: `self.W_hh` (a Linear), the matrix of `h @ self.W`."""
    function: Function
    info: ClassInfo | None


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
        for recurrence in handwritten_recurrences(model):
            yield self._handwritten(model, ctx, recurrence)

    def _handwritten(self, model: FileModel, ctx: RuleContext, found: Recurrence) -> Diagnostic:
        weight = _text(found.weight)
        activation = found.activation
        if activation is None:
            what = f"has no activation: `{found.state}` is multiplied by `{weight}` at every step (a plain affine update)"
            fix = "Bound the update with `torch.tanh(...)`, or use a gated `nn.GRUCell`/`nn.LSTMCell`"
        else:
            what = f"goes through `{activation}`, which does not bound it"
            fix = f"Replace `{activation}` with `torch.tanh`, or use a gated `nn.GRUCell`/`nn.LSTMCell`"
        return Diagnostic(
            found.node,
            f"Hand-written recurrence in `forward`: the state `{found.state}` is fed back through `{weight}` "
            f"and {what}, so the state and the gradient through time can grow exponentially with the "
            f"number of steps.",
            hint=f"{fix}; add a `LayerNorm` on the state or clip gradients with `clip_grad_norm_`.",
            data=_data(model, ctx, found),
        )


# ------------------------------------------------------------------------ hand-written


def handwritten_recurrences(model: FileModel) -> list[Recurrence]:
    """`h = act(self.W(h) + self.U(x))` in a loop of a `forward`, act unbounded or absent."""
    found: list[Recurrence] = []
    for function in model.all_functions:
        if function.name != "forward" or function.class_name is None:
            continue
        info = model.classes.get(function.class_name)
        if info is not None and info.methods.get("forward") is not function:
            info = None
        aliases = _weight_aliases(function)
        for assign, loop, loop_targets in _assignments_in_loops(function.node):
            target = assign.targets[0].target
            if len(assign.targets) != 1 or not isinstance(target, cst.Name):
                continue
            state = target.value
            if state in loop_targets:
                continue
            finder = _Finder(model, info, state, loop_targets | {state}, aliases)
            hit = finder.first(assign.value)
            if hit is not None and _carried(function, loop, assign, state):
                activation, weight = hit
                found.append(Recurrence(assign, state, activation, weight, function, info))
    return found


def _assignments_in_loops(
    function: cst.FunctionDef,
) -> Iterator[tuple[cst.Assign, cst.For | cst.While, frozenset[str]]]:
    """Assignments inside a for/while loop of the function (not in nested functions or classes),
    with their innermost loop and the names bound by the enclosing `for` targets."""
    stack: list[tuple[cst.CSTNode, cst.For | cst.While | None, frozenset[str]]] = [(function.body, None, frozenset())]
    while stack:
        node, loop, targets = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(node, cst.For):
            names = frozenset(n.value for n in walk(node.target) if isinstance(n, cst.Name))
            stack.append((node.body, node, targets | names))
            if node.orelse is not None:
                stack.append((node.orelse, loop, targets))
            continue
        if isinstance(node, cst.While):
            stack.append((node.body, node, targets))
            if node.orelse is not None:
                stack.append((node.orelse, loop, targets))
            continue
        if isinstance(node, cst.Assign):
            if loop is not None:
                yield node, loop, targets
            continue
        if isinstance(node, cst.BaseExpression):
            continue
        stack.extend((child, loop, targets) for child in reversed(children(node)))


def _assigned_names(node: cst.CSTNode) -> tuple[set[str], cst.BaseExpression | None]:
    """The names an assignment statement binds, and its value."""
    if isinstance(node, cst.Assign):
        targets = [t.target for t in node.targets]
    elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
        targets = [node.target]
    else:
        return set(), None
    names = {n.value for target in targets for n in walk(target) if isinstance(n, cst.Name)}
    return names, node.value


def _carried(function: Function, loop: cst.For | cst.While, update: cst.Assign, state: str) -> bool:
    """Whether the state the update reads is the one the previous iteration left: it exists before
    the loop (a parameter, or assigned earlier in the function), and nothing earlier in the loop
    body gives it a fresh value (`x = self.proj(features); x = self.out(x)` is a pipeline, not a
    recurrence)."""
    defined = state in function.params
    for node in walk(function.node.body):
        if node is loop:
            break
        names, _ = _assigned_names(node)
        defined = defined or state in names
    if not defined:
        return False
    for node in walk(loop.body):
        if node is update:
            return True
        names, value = _assigned_names(node)
        if state in names and not isinstance(node, cst.AugAssign):
            if value is None or not any(isinstance(n, cst.Name) and n.value == state for n in walk(value)):
                return False
    return True


def _weight_aliases(function: Function) -> set[str]:
    """Locals bound to a module attribute: `W = self.weight_hh`."""
    aliases = set()
    for event in function.body.events():
        if event.kind is Kind.ASSIGN and len(event.targets) == 1 and event.value is not None:
            if (_root(event.value) or "").startswith("self."):
                aliases.add(event.targets[0])
    return aliases


def _root(node: cst.BaseExpression) -> str | None:
    """`self.W` for `self.W.t()`, `self.W.T`, `self.W[0]`, `self.cell.weight`..."""
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in (
            "t", "transpose", "permute", "contiguous", "to", "float",
        ):
            node = node.func.value
        elif isinstance(node, cst.Subscript):
            node = node.value
        else:
            break
    return dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None


class _Finder:
    """Looks for the state going through a weight, along a path of arithmetic, unbounded
    activations and dropout only (anything else may bound it: stay quiet)."""

    def __init__(self, model: FileModel, info: ClassInfo | None, state: str, banned: frozenset[str], aliases: set[str]):
        self.model = model
        self.info = info
        self.state = state
        self.banned = banned
        """The state and the loop variables: a weight indexed by the step (`W[t]`) is not tied."""
        self.aliases = aliases

    def first(self, expression: cst.BaseExpression) -> tuple[str | None, cst.BaseExpression] | None:
        return next(self._search(expression, None), None)

    def _search(self, node: cst.BaseExpression, activation: str | None):
        weight = self._weight_use(node)
        if weight is not None:
            yield activation, weight
            return
        if isinstance(node, cst.BinaryOperation):
            if isinstance(node.operator, (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.MatrixMultiply)):
                yield from self._search(node.left, activation)
                yield from self._search(node.right, activation)
            return
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
            yield from self._search(node.expression, activation)
            return
        if isinstance(node, cst.IfExp):
            yield from self._search(node.body, activation)
            yield from self._search(node.orelse, activation)
            return
        if isinstance(node, cst.Call):
            step = self._through(node)
            if step is not None:
                inner, name = step
                yield from self._search(inner, activation or name)

    def _through(self, call: cst.Call) -> tuple[cst.BaseExpression, str | None] | None:
        """The argument an unbounded activation (name) or a pass-through (None) applies to."""
        func = call.func
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        qualified = self.model.qualify_call(call) or ""
        name = qualified.rsplit(".", 1)[-1]
        if qualified.startswith("torch."):
            if qualified in (f"torch.{name}", f"torch.nn.functional.{name}") and name in UNBOUNDED_FUNCTIONS:
                return (positional[0], name.rstrip("_")) if positional else None
            if qualified in _PASS_FUNCTIONS:
                return (positional[0], None) if positional else None
            return None
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == "self":
            bound = self._attribute(func.attr.value)
            if bound is None or not positional:
                return None
            if isinstance(bound, cst.Call):
                module = torch_nn_name(self.model.qualify_call(bound))
                if is_unbounded_module(self.model.qualify_call(bound)):
                    return positional[0], _MODULE_ACTIVATIONS.get(module or "", (module or "").lower())
                if module in ("Dropout", "Identity"):
                    return positional[0], None
                return None
            bound_name = self.model.imports.qualify(dotted_name(bound)) or ""
            short = bound_name.rsplit(".", 1)[-1]
            if bound_name in (f"torch.{short}", f"torch.nn.functional.{short}") and short in UNBOUNDED_FUNCTIONS:
                return positional[0], short.rstrip("_")
            return None
        if isinstance(func, cst.Attribute) and qualified == "":
            if func.attr.value in UNBOUNDED_FUNCTIONS and not call.args:
                return func.value, func.attr.value.rstrip("_")
            if func.attr.value in _PASS_METHODS:
                return func.value, None
        return None

    def _attribute(self, name: str) -> cst.BaseExpression | None:
        return self.info.attribute_values.get(name) if self.info is not None else None

    # -- the state through a weight

    def _has_state(self, node: cst.CSTNode) -> bool:
        return any(isinstance(n, cst.Name) and n.value == self.state for n in walk(node))

    def _weightish(self, node: cst.BaseExpression) -> bool:
        if any(isinstance(n, cst.Name) and n.value in self.banned for n in walk(node)):
            return False
        root = _root(node)
        if root is None:
            return False
        if root.startswith("self."):
            return True
        head = root.split(".", 1)[0]
        return head in self.aliases or bool(_WEIGHT_NAME.search(head))

    def _weight_use(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The weight when `node` multiplies the state by a weight: `self.W(h)` (W a Linear of the
        class), `h @ self.W`, `torch.mm(h, W)`, `F.linear(h, self.W)`, `h.mm(W)`."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.MatrixMultiply):
            for state_side, weight_side in ((node.left, node.right), (node.right, node.left)):
                if self._has_state(state_side) and self._weightish(weight_side):
                    return weight_side
            return None
        if not isinstance(node, cst.Call):
            return None
        func = node.func
        values = [arg.value for arg in node.args if not arg.star]
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == "self":
            bound = self._attribute(func.attr.value)
            if isinstance(bound, cst.Call) and torch_nn_name(self.model.qualify_call(bound)) in _LINEAR_MODULES:
                if any(self._has_state(value) for value in values):
                    return func
            return None
        qualified = self.model.qualify_call(node)
        if qualified in _MATMUL_FUNCTIONS:
            operands = [v for v in values if not isinstance(v, (cst.SimpleString, cst.ConcatenatedString))]
            if any(self._has_state(v) for v in operands):
                weights = [v for v in operands if not self._has_state(v) and self._weightish(v)]
                if weights:
                    return weights[0]
            return None
        if qualified is None and isinstance(func, cst.Attribute) and func.attr.value in _MATMUL_METHODS and values:
            receiver = func.value
            if self._has_state(receiver) and self._weightish(values[0]):
                return values[0]
            if self._has_state(values[0]) and self._weightish(receiver):
                return receiver
        return None


def _text(node: cst.CSTNode) -> str:
    return " ".join(cst.Module([]).code_for_node(node).split())


def _data(model: FileModel, ctx: RuleContext, found: Recurrence) -> dict:
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
    info = found.info
    root = _root(found.weight)
    bound = info.attribute_values.get(root[5:]) if info and root and root.startswith("self.") and root.count(".") == 1 else None
    where = info.attribute_functions.get(root[5:]) if info and bound is not None and root else None
    if isinstance(bound, cst.Call):
        kind = layer_kind(model.qualify_call(bound))
        if kind == "Linear":
            config = resolve_layer(ctx.project, ctx.source.path, model, bound, kind, where)
            data["hidden_size"], data["bias"] = config.get("out_features"), config.get("bias")
        elif torch_nn_name(model.qualify_call(bound)) == "Parameter":
            size = _parameter_size(model, ctx, bound, where)
            data["hidden_size"] = size
    input_linear = _input_linear(model, found)
    if input_linear is not None and info is not None:
        call, name = input_linear
        config = resolve_layer(ctx.project, ctx.source.path, model, call, "Linear", info.attribute_functions.get(name))
        data["input_size"] = config.get("in_features")
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


def _input_linear(model: FileModel, found: Recurrence) -> tuple[cst.Call, str] | None:
    """A Linear of the class applied to something that is not the state (the input projection)."""
    info = found.info
    if info is None:
        return None
    for node in walk(found.node.value):
        if not (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)):
            continue
        if dotted_name(node.func.value) != "self":
            continue
        name = node.func.attr.value
        bound = info.attribute_values.get(name)
        if not isinstance(bound, cst.Call) or layer_kind(model.qualify_call(bound)) != "Linear":
            continue
        if any(isinstance(n, cst.Name) and n.value == found.state for arg in node.args for n in walk(arg)):
            continue
        return bound, name
    return None
