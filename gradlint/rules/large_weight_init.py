"""GL301 large-weight-init: A weight initialization gives a recurrent or square weight an expected gain above 1."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import libcst as cst

from gradlint.analysis.calls import arg_value
from gradlint.analysis.model import FileModel, Function, shorten
from gradlint.analysis.inits import FUNCTION_ARGUMENTS, METHOD_ARGUMENTS, REQUIRED, InitOp, functions_with_init_ops, init_ops
from gradlint.analysis.layers import owner_class
from gradlint.analysis.tensors import PARAMETER_CLASSES, qualified, tensor_shape, unwrap_tensor
from gradlint.analysis.layers import RECURRENT_KINDS, layers
from gradlint.analysis.tensors import assigned_to
from gradlint.index.init_gains import GATES, Chain, weight_hh_chains
from gradlint.index.init_program import init_program
from gradlint.index.layer_config import resolve_layer
from gradlint.index.weights import WeightTarget, layer_weight_target, resolve_number, square_size, weight_target
from gradlint.findings import Severity
from gradlint.index.init_gains import truncated_std
from gradlint.rules._helpers import fmt
from gradlint.rules.base import Diagnostic, Rule, RuleContext

# (keyword, position, default) of the numbers each form reads; method forms drop the tensor.
_FUNCTION_ARGS = {name: spec for name, spec in FUNCTION_ARGUMENTS.items() if not name.startswith("kaiming")}
_METHOD_ARGS = {name: METHOD_ARGUMENTS[name] for name in ("normal_", "uniform_", "fill_")}
_GAIN_FORMS = {
    "assign", "eye_", "orthogonal_", "xavier_normal_", "xavier_uniform_", "ones_", "constant_", "fill_",
    "normal_", "uniform_", "trunc_normal_",
}
"""The forms whose gain can be known (kaiming_*, sparse_, dirac_ and unknown re-inits cannot)."""
_WHY = {
    "recurrent": "the recurrence multiplies the hidden state and its gradient by about that much at every time step, "
    "so gradients explode over long sequences",
    "linear": "every pass through the layer multiplies activations and gradients by about that much",
    "parameter": "every application multiplies activations and gradients by about that much",
}


@dataclass
class Link:
    """One operation on a weight and the expected gain after it (None: unknown)."""

    op: InitOp | None
    gain: float | None
    formula: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    unscaled_random: bool = False
    """An unscaled `torch.randn/rand` creation: GL302 reports it on its own."""
    assumed_prior: bool = False
    path: tuple = ()


class LargeWeightInit(Rule):
    code = "GL301"
    name = "large-weight-init"
    severity = Severity.WARNING
    summary = "A weight initialization gives a recurrent or square weight an expected gain above 1."
    triggers = (
        "init.", "normal_", "uniform_", "orthogonal", "eye_", "constant_", "ones_", "fill_", "mul_", "div_",
        "copy_", "*=", "/=", "eye(", "randn", "rand(",
    )

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        reported: set[int] = set()
        targets: set[tuple] = set()
        functions = functions_with_init_ops(model)
        for function in functions:
            for diagnostic in _Checker(model, function, ctx).run():
                if id(diagnostic.node) not in reported:
                    reported.add(id(diagnostic.node))
                    if isinstance(diagnostic.data, dict):
                        targets.add(_weight_key(diagnostic.data))
                    yield diagnostic
        if functions:
            for diagnostic in program_findings(model, ctx):
                if id(diagnostic.node) not in reported and _weight_key(diagnostic.data) not in targets:
                    reported.add(id(diagnostic.node))
                    yield diagnostic


def _weight_key(data: dict) -> tuple:
    layer = data.get("layer")
    return str(data.get("target")), layer.get("where") if isinstance(layer, dict) else None


def program_findings(model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
    """Large recurrent inits the init program reaches through loops over `named_parameters()`,
    `self.apply(fn)`, init methods and per-gate chunks (gradlint.index.init_program): one finding
    per init call of this file, at the step from which the gain stays above 1."""
    path = ctx.source.path
    project = ctx.project
    for layer in layers(model):
        if layer.kind not in RECURRENT_KINDS:
            continue
        config = resolve_layer(project, path, model, layer.node, layer.kind, layer.function)
        h = config.integer("hidden_size")
        if not h or config.get("proj_size"):
            continue
        program = init_program(project, path, layer.node, layer.kind, config)
        attribute = assigned_to(model, layer.node, layer.function) or "layer"
        attribute = attribute[5:] if attribute.startswith("self.") else attribute
        best: dict[int, tuple[float, Chain, int]] = {}
        for chain in weight_hh_chains(program.steps, layer.kind, h):
            start = chain.start()
            if start is None:
                continue
            link = chain.links[start]
            file, node, _how = program.nodes[link.index]
            if file != path:
                continue
            gain = chain.gain or 0.0
            if id(node) not in best or gain > best[id(node)][0]:
                best[id(node)] = (gain, chain, start)
        for gain, chain, start in best.values():
            yield _program_diagnostic(model, ctx, layer, config, program, chain, start, attribute)


def _program_diagnostic(model, ctx, layer, config, program, chain: Chain, start: int, attribute: str) -> Diagnostic:
    project = ctx.project
    link = chain.links[start]
    final = chain.links[-1]
    step = program.steps[link.index]
    _file, node, how = program.nodes[link.index]
    display = f"{attribute}.{chain.param}"
    target = layer_weight_target(project, ctx.source.path, layer.node, layer.function, display)
    gates = GATES.get(layer.kind, 1)
    n = config.integer("hidden_size")
    shape = f"{n} x {n}" + (" per gate block" if gates > 1 else "")
    origin = target.origin(project) if target is not None else ""
    later = [program.steps[l.index]["code"] for l in chain.links[start + 1 :]]
    after = f" (after the later {', '.join(f'`{c}`' for c in later)})" if later else ""
    text = _snippet(model, node)
    message = (
        f"`{text}` ({how}) gives the recurrent weight `{display}` ({shape}; {origin}) an expected gain of "
        f"{fmt(final.gain)}{after}: {final.formula}; {_WHY['recurrent']}."
    )
    data: dict[str, Any] = {k: v for k, v in step.items() if k not in ("param", "at", "code", "rows", "row_unit", "block")}
    data.update(gain=round(final.gain, 4), target=display, n=n)
    if target is not None and target.layer is not None:
        data["layer"] = target.layer_data(project)
    data["unresolved"] = []
    hint = (
        "Keep the expected gain at or below 1: `nn.init.orthogonal_(w)` (gain 1) per gate block, the identity "
        f"without a scale above 1, or entries with std <= 1/sqrt(n) (for n={n}: std <= {fmt(1 / math.sqrt(n))})."
    )
    return Diagnostic(node, message, hint=hint, data=data)


class _Checker:
    def __init__(self, model: FileModel, function: Function | None, ctx: RuleContext) -> None:
        self.model = model
        self.function = function
        self.ctx = ctx
        self.project = ctx.project
        self.scope = ctx.project.scope(ctx.source.path, function)
        self._targets: dict[tuple, WeightTarget | None] = {}

    # ------------------------------------------------------------------ chains

    def run(self) -> Iterator[Diagnostic]:
        chains: dict[str, list[tuple[InitOp, tuple]]] = {}
        for op in self._expanded(init_ops(self.model, self.function)):
            key = op.key
            if key is None:
                continue
            chains.setdefault(key, []).append((op, _branch_path(op)))
        for key, ops in chains.items():
            yield from self._chain(key, ops)

    def _expanded(self, ops: list[InitOp]) -> Iterator[InitOp]:
        """`self.reset_parameters()` stands for an unknown op on every weight that method sets."""
        info = owner_class(self.model, self.function)
        for op in ops:
            if op.op != "call":
                yield op
                continue
            method = info.methods.get(op.method or "") if info is not None else None
            if method is None or method is self.function:
                continue
            for inner in init_ops(self.model, method):
                if inner.key and inner.key.startswith("self.") and inner.op != "call":
                    yield InitOp(op.node, "unknown", inner.tensor, stack=op.stack)

    def _chain(self, key: str, ops: list[tuple[InitOp, tuple]]) -> Iterator[Diagnostic]:
        scenarios = {path for _, path in ops}
        verdicts: dict[int, list[tuple[bool, list[Link], int]]] = {}
        for scenario in scenarios:
            chain = [op for op, path in ops if scenario[: len(path)] == path]
            links = self._links(chain)
            start = _start(links)
            for index, link in enumerate(links):
                if link.op is None:
                    continue
                ok = start is not None and index == start
                verdicts.setdefault(id(link.op), []).append((ok, links, index))
        for op, _path in ops:
            results = verdicts.get(id(op), [])
            if not results or not all(ok for ok, _, _ in results):
                continue
            _, links, index = results[0]
            link = links[index]
            if link.unscaled_random and index == len(links) - 1:
                continue  # GL302's finding
            yield self._diagnostic(key, links, index)

    def _links(self, chain: list[InitOp]) -> list[Link]:
        links: list[Link] = []
        prior: Link | None = None
        for op in chain:
            link = self._link(op, prior)
            links.append(link)
            prior = link
        return links

    # ------------------------------------------------------------------ gains

    def target(self, op: InitOp) -> WeightTarget | None:
        key = (op.key or "", _branch_path(op))
        if key not in self._targets:
            self._targets[key] = weight_target(op.tensor, self.scope, self.project, op.stack) if op.tensor else None
        return self._targets[key]

    def number(self, node: cst.BaseExpression | None):
        return resolve_number(self.project, node, self.scope)

    def _args(self, op: InitOp, table: dict) -> dict[str, Any] | None:
        """The numbers an init form reads (defaults filled in), None when one does not resolve.

        Where a number comes from (`argparse default of --init-std (train.py:20)`) is kept under
        `origins` for the message."""
        spec = table.get(op.op)
        if spec is None or op.call is None:
            return None
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for name, position, default in spec:
            node = arg_value(op.call, position, name)
            if node is None:
                if default is REQUIRED:
                    return None
                values[name] = default
                continue
            value, origin = self.number(node)
            if value is None:
                return None
            values[name] = value
            if origin:
                origins[name] = origin
        self._origins = origins
        return values

    def _from(self, name: str) -> str:
        origin = getattr(self, "_origins", {}).get(name)
        return f" ({origin})" if origin else ""

    def _link(self, op: InitOp, prior: Link | None) -> Link:
        # Cheap syntactic checks first: sizing a target and resolving numbers costs far more.
        if op.op in ("mul_", "div_"):
            return self._scale(op, prior)
        name = op.op
        if name in ("zeros_", "zero_"):
            return Link(op, 0.0, "zeros (gain 0)", {"init": name})
        if name not in _GAIN_FORMS or (name == "assign" and not self._may_gain(op.value)):
            return Link(op, None)
        target = self.target(op)
        if target is None:
            return Link(op, None)
        n = target.n
        method = op.tensor_method
        if name == "assign":
            return self._assigned(op, target)
        if name == "eye_":
            return Link(op, 1.0, "identity (gain 1)", {"init": "eye_"})
        if name in ("orthogonal_", "xavier_normal_", "xavier_uniform_") and not method:
            if name.startswith("xavier") and target.kind != "recurrent":
                return Link(op, None)
            values = self._args(op, _FUNCTION_ARGS)
            if values is None:
                return Link(op, None)
            gain = abs(values["gain"])
            note = "" if name == "orthogonal_" else " (xavier on an n x n matrix: std = gain / sqrt(n))"
            return Link(
                op, gain, f"gain={fmt(values['gain'])}{self._from('gain')}{note}", {"init": name, "gain_argument": values["gain"]}
            )
        if n is None:
            return Link(op, None)
        if name == "ones_":
            return Link(op, float(n), f"1 * n={n} = {fmt(float(n))}", {"init": name, "value": 1})
        values = self._args(op, _METHOD_ARGS if method else _FUNCTION_ARGS)
        if values is None:
            return Link(op, None)
        if name in ("constant_", "fill_"):
            value = values.get("val", values.get("value"))
            gain = abs(value) * n
            origin = self._from("val") or self._from("value")
            return Link(op, gain, f"|{fmt(value)}|{origin} * n={n} = {fmt(gain)}", {"init": name, "value": value})
        if name == "normal_":
            label = f"std={fmt(values['std'])}{self._from('std')}"
            return self._moments(op, n, values["mean"], abs(values["std"]), label, values)
        if name == "uniform_":
            low, high = (values["a"], values["b"]) if "a" in values else (values["from"], values["to"])
            if high < low:
                return Link(op, None)
            data = {"init": name, "a": low, "b": high}
            if low == -high:
                gain = high * math.sqrt(n / 3)
                origin = self._from("b") or self._from("a") or self._from("to") or self._from("from")
                return Link(op, gain, f"a={fmt(high)}{origin} * sqrt({n}/3) = {fmt(gain)}", {**data, "n": n})
            return self._moments(op, n, (low + high) / 2, (high - low) / math.sqrt(12), "std=(b-a)/sqrt(12)", data)
        if name == "trunc_normal_":
            std = truncated_std(values["mean"], abs(values["std"]), values["a"], values["b"])
            if std is None:
                return Link(op, None)
            label = f"std={fmt(values['std'])}" + ("" if std == abs(values["std"]) else f" (truncated: {fmt(std)})")
            return self._moments(op, n, values["mean"], std, label, values)
        return Link(op, None)  # kaiming_*, sparse_, dirac_, or an unresolved argument

    def _moments(self, op: InitOp, n: int, mean: float, std: float, label: str, values: dict) -> Link:
        """Entries of mean m and std s: bulk radius s*sqrt(n), plus an outlier eigenvalue of about m*n."""
        spread = std * math.sqrt(n)
        shift = abs(mean) * n
        data = {"init": op.op, **{k: v for k, v in values.items() if k not in ("init",)}, "n": n}
        data.setdefault("std", std)
        if shift > spread:
            return Link(op, shift, f"mean={fmt(mean)} * n={n} = {fmt(shift)}", data)
        return Link(op, spread, f"{label} * sqrt({n}) = {fmt(spread)}", data)

    def _scale(self, op: InitOp, prior: Link | None) -> Link:
        if (prior is None or prior.gain is None) and not self._weight_like(op):
            return Link(op, None)
        raw, origin = self.number(op.factor)
        if raw is None or raw == 0:
            return Link(op, None)
        factor = abs(raw) if op.op == "mul_" else 1 / abs(raw)
        shown = fmt(abs(raw)) + (f" ({origin})" if origin else "")
        symbol = "*" if op.op == "mul_" else "/"
        if prior is not None and prior.gain is not None:
            gain = prior.gain * factor
            return Link(op, gain, f"{prior.formula}, then {symbol} {shown} = {fmt(gain)}", {**prior.data, "scale": factor})
        if factor <= 1 or not self._weight_like(op):
            return Link(op, None)
        return Link(
            op, factor, f"{symbol} {shown} on top of an init of unknown gain (taken as 1) = {fmt(factor)}",
            {"init": op.op, "scale": factor}, assumed_prior=True,
        )

    def _weight_like(self, op: InitOp) -> bool:
        """Scaling alone is judged on a recurrent or square weight only (not any `module.weight`:
        a conv kernel or a LayerNorm scale has no such gain)."""
        return self.target(op) is not None

    def _may_gain(self, value: cst.BaseExpression | None, depth: int = 0) -> bool:
        """Whether an assigned value can have a known gain: an eye/randn/rand draw, maybe scaled."""
        if value is None or depth > 4:
            return False
        if isinstance(value, cst.Call) and qualified(self.model, value.func) in PARAMETER_CLASSES:
            return self._may_gain(arg_value(value, 0, "data"), depth + 1)
        value = unwrap_tensor(value)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, (cst.Multiply, cst.Divide)):
            return self._may_gain(value.left, depth + 1) or self._may_gain(value.right, depth + 1)
        if isinstance(value, cst.Call):
            name = qualified(self.model, value.func) or ""
            return name.rsplit(".", 1)[-1] in ("eye", "randn", "rand") and name.startswith("torch.")
        return False

    def _assigned(self, op: InitOp, target: WeightTarget | None) -> Link:
        value = op.value
        if isinstance(value, cst.Call) and qualified(self.model, value.func) in PARAMETER_CLASSES:
            value = arg_value(value, 0, "data")
        if value is None:
            return Link(op, None)
        return self._value_gain(op, value, 0)

    def _value_gain(self, op: InitOp, value: cst.BaseExpression, depth: int) -> Link:
        """The gain of a tensor expression: `torch.eye(n) * k`, `torch.randn(n, n) / math.sqrt(n)`."""
        if depth > 4:
            return Link(op, None)
        value = unwrap_tensor(value)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, (cst.Multiply, cst.Divide)):
            right, _ = self.number(value.right)
            left, _ = self.number(value.left) if isinstance(value.operator, cst.Multiply) else (None, "")
            if right is not None and right != 0:
                inner = self._value_gain(op, value.left, depth + 1)
                factor = abs(right) if isinstance(value.operator, cst.Multiply) else 1 / abs(right)
                symbol = "*" if isinstance(value.operator, cst.Multiply) else "/"
            elif left is not None:
                inner = self._value_gain(op, value.right, depth + 1)
                factor, symbol = abs(left), "*"
                right = left
            else:
                return Link(op, None)
            if inner.gain is None:
                return Link(op, None)
            gain = inner.gain * factor
            return Link(op, gain, f"{inner.formula} {symbol} {fmt(abs(right))} = {fmt(gain)}", {**inner.data, "scale": factor})
        if not isinstance(value, cst.Call):
            return Link(op, None)
        shape = tensor_shape(self.model, value)
        if shape is None:
            return Link(op, None)
        factory, dims = shape
        if factory == "eye":
            return Link(op, 1.0, "torch.eye (gain 1)", {"init": "eye"})
        if factory == "zeros":
            return Link(op, 0.0, "zeros (gain 0)", {"init": "zeros"})
        square, n, _ = square_size(self.project, self.model, dims, self.scope)
        if not square or n is None:
            return Link(op, None)
        if factory == "randn":
            gain = math.sqrt(n)
            return Link(op, gain, f"torch.randn: sqrt({n}) = {fmt(gain)}", {"init": "randn", "n": n}, unscaled_random=True)
        if factory == "rand":
            gain = max(0.5 * n, math.sqrt(n / 12))
            return Link(op, gain, f"torch.rand: mean=0.5 * n={n} = {fmt(gain)}", {"init": "rand", "n": n}, unscaled_random=True)
        return Link(op, None)

    # ------------------------------------------------------------------ report

    def _diagnostic(self, key: str, links: list[Link], index: int) -> Diagnostic:
        link = links[index]
        final = links[-1]
        op = link.op
        assert op is not None and final.gain is not None
        target = self.target(op) or self._target_of_chain(links)
        node = op.node
        gain = final.gain
        text = _snippet(self.model, node)
        if target is not None:
            what = {"recurrent": "the recurrent weight", "linear": "the square weight", "parameter": "the square weight"}[
                target.kind
            ]
            origin = target.origin(self.project)
            size = f"{target.shape}; {origin}" if origin else target.shape
            described = f"{what} `{target.name}` ({size})"
            why = _WHY[target.kind]
        else:
            described = f"`{key.split('@', 1)[0]}`"
            why = _WHY["parameter"]
        later = ""
        if final is not link:
            later = f" (after the later {', '.join(f'`{_snippet(self.model, l.op.node)}`' for l in links[index + 1 :] if l.op is not None)})"
        message = (
            f"`{text}` gives {described} an expected gain of {fmt(gain)}{later}: {final.formula}; "
            f"{why}."
        )
        data: dict[str, Any] = {**final.data, "gain": round(gain, 4)}
        data["target"] = target.name if target is not None else key.split("@", 1)[0]
        data["n"] = target.n if target is not None else data.get("n")
        layer = target.layer_data(self.project) if target is not None else None
        if layer is not None:
            data["layer"] = layer
        unresolved = list(target.unresolved) if target is not None else []
        if link.assumed_prior or final.assumed_prior:
            unresolved.append("prior init")
        data["unresolved"] = unresolved
        limit = ""
        if target is not None and target.n:
            limit = f" (for n={target.n}: std <= {fmt(1 / math.sqrt(target.n))}, uniform bound <= {fmt(math.sqrt(3 / target.n))})"
        hint = (
            "Keep the expected gain at or below 1: `nn.init.orthogonal_(w)` (gain 1), the identity without a scale "
            f"above 1, or entries with std <= 1/sqrt(n){limit}."
        )
        related = tuple(
            (l.op.node, f"the gain is {fmt(l.gain)} after this" if l.gain is not None else "")
            for l in links[index + 1 :]
            if l.op is not None and l.gain is not None
        )
        return Diagnostic(node, message, hint=hint, related=related, data=data)

    def _target_of_chain(self, links: list[Link]) -> WeightTarget | None:
        for link in links:
            if link.op is not None:
                target = self.target(link.op)
                if target is not None:
                    return target
        return None


def _branch_path(op: InitOp) -> tuple:
    return tuple((kind, id(node)) for kind, node in op.stack if kind in ("if", "else"))


def _start(links: list[Link]) -> int | None:
    """The op from which the gain stays known and above 1 to the end of the chain.

    Ops before the last one that sets the values (an init, a new value) do not matter any more.
    """
    start = None
    for index in range(len(links) - 1, -1, -1):
        link = links[index]
        if link.gain is None or link.gain <= 1 + 1e-9:
            break
        start = index
        if link.op is not None and link.op.op not in ("mul_", "div_"):
            break
    return start


def _snippet(model: FileModel, node: cst.CSTNode, limit: int = 70) -> str:
    # Unlike analysis.model.snippet, comments are kept (only whitespace is collapsed).
    return shorten(" ".join(model.module.code_for_node(node).split()), limit)
