"""GL302 unscaled-random-parameter: A square weight is drawn from randn/rand without scaling, so its spectral radius is about sqrt(n)."""

from __future__ import annotations

import math
from typing import Iterator

import libcst as cst

from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import FileModel, Function, Kind, shorten
from gradlint.analysis.names import dotted_name
from gradlint.analysis.inits import init_ops
from gradlint.analysis.layers import owner_class
from gradlint.analysis.tensors import (
    PARAMETER_CLASSES,
    TENSOR_FACTORIES,
    qualified,
    tensor_shape,
    unwrap_tensor,
)
from gradlint.index.test_code import is_test_file
from gradlint.index.weight_use import describe_uses, matrix_evidence
from gradlint.index.weights import square_size
from gradlint.findings import Severity
from gradlint.rules.base import Diagnostic, Rule, RuleContext
from gradlint.rules._helpers import fmt

_RANDOM = {"randn", "rand"}
_UNINITIALIZED = {"empty", "Tensor", "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "zeros", "ones"}


class UnscaledRandomParameter(Rule):
    code = "GL302"
    name = "unscaled-random-parameter"
    severity = Severity.WARNING
    summary = "A square weight is drawn from randn/rand without scaling, so its spectral radius is about sqrt(n)."
    triggers = ("randn", "rand(", "normal_()", "uniform_()")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        assignments = _assignments(model)
        for site in model.calls:
            call = site.node
            if qualified(model, call.func) in PARAMETER_CLASSES:
                data = arg_value(call, 0, "data")
                if data is None:
                    continue
                drawn = _unscaled_draw(model, data)
                report_at = call
            elif kwarg_value(call, "requires_grad") is not None or (
                isinstance(call.func, cst.Attribute) and call.func.attr.value == "requires_grad_"
            ):
                drawn = _unscaled_draw(model, call) if _trained_tensor(call) else None
                report_at = call
                if drawn is not None and not _is_weight_variable(model, assignments.get(id(call)), site.function):
                    continue
            else:
                continue
            if drawn is None:
                continue
            factory, form, dims = drawn
            scope = ctx.project.scope(ctx.source.path, site.function)
            square, n, origin = square_size(ctx.project, model, dims, scope)
            if not square or (n is not None and (math.sqrt(n) if factory == "randn" else 0.5 * n) <= 1):
                continue  # gain 1 or less: nothing to report
            target = assignments.get(id(call))
            if _rescaled_later(model, site.function, target, call):
                continue
            uses = matrix_evidence(model, call, site.function)
            if not uses:
                continue  # never multiplies a state: indexed, added, or only handed to an optimizer
            repeated = any(use.loop is not None or use.in_method for use in uses)
            severity = Severity.WARNING if repeated and not is_test_file(ctx.source.path) else Severity.INFO
            layer = describe_uses(ctx.project, ctx.source.path, uses, n, target, False)
            yield self._diagnostic(model, report_at, factory, form, n, origin, target, severity, layer, uses)

    def _diagnostic(self, model, node, factory, form, n, origin, target, severity, layer, uses) -> Diagnostic:
        text = shorten(" ".join(model.module.code_for_node(node).split()), 70)
        name = target[5:] if target and target.startswith("self.") else target
        what = f"the square weight `{name}`" if name else "a square weight"
        source = f" ({origin})" if origin else ""
        if factory == "randn":
            gain = math.sqrt(n) if n is not None else None
            radius = (
                f"its spectral radius is about sqrt(n) = sqrt({n}) = {fmt(gain)}{source}" if n is not None
                else "its spectral radius is about sqrt(n) for an n x n matrix"
            )
            distribution = "N(0, 1)"
        else:
            gain = 0.5 * n if n is not None else None
            radius = (
                f"its entries have mean 0.5, so its largest eigenvalue is about n/2 = {fmt(gain)}{source} "
                f"(and at least sqrt(n))" if n is not None
                else "its entries have mean 0.5, so its largest eigenvalue is about n/2 (and at least sqrt(n))"
            )
            distribution = "U(0, 1)"
        use = uses[0]
        line = model.module.code_for_node(use.node)
        applied = f"`{shorten(' '.join(line.split()), 40)}`"
        if use.loop is not None and use.carried:
            how = f"{applied} applies it to a state the loop carries, so the factor compounds at every step"
        elif use.state_map:
            how = f"{applied} maps a state through it, and a recurrence compounds that factor per time step"
        elif use.loop is not None or use.in_method:
            how = f"{applied} multiplies activations and gradients by about that much on every pass"
        else:
            how = f"{applied} multiplies by it once; repeated in a recurrence or a deep chain the factor compounds"
        message = (
            f"`{text}` draws {what} from {distribution}{f' ({form})' if form else ''} with no scaling: {radius}; {how}."
        )
        hint = (
            "Scale the draw to gain 1, e.g. `torch.randn(n, n) / math.sqrt(n)`, or create it with `torch.empty(n, n)` "
            "and initialize it with `nn.init.orthogonal_` (or `nn.init.xavier_uniform_`)."
        )
        data = {"init": factory, "n": n, "gain": round(gain, 4) if gain is not None else None, "target": name}
        data["layer"] = layer
        data["unresolved"] = ["n"] if n is None else []
        return Diagnostic(node, message, hint=hint, data=data, severity=severity)


def _unscaled_draw(model: FileModel, value: cst.BaseExpression):
    """(`randn`, form, dims) when `value` is an unscaled randn/rand draw (moves like `.to(device)` allowed)."""
    tensor = unwrap_tensor(value)
    if not isinstance(tensor, cst.Call):
        return None
    shape = tensor_shape(model, tensor)
    if shape is not None and shape[0] in _RANDOM:
        return shape[0], "", shape[1]
    # `torch.empty(n, n).normal_()` / `.uniform_()` with the default N(0, 1) / U(0, 1).
    func = tensor.func
    if isinstance(func, cst.Attribute) and func.attr.value in ("normal_", "uniform_") and not tensor.args:
        inner = unwrap_tensor(func.value)
        shape = tensor_shape(model, inner) if isinstance(inner, cst.Call) else None
        if shape is not None and shape[0] in _UNINITIALIZED and shape[0] in TENSOR_FACTORIES:
            factory = "randn" if func.attr.value == "normal_" else "rand"
            return factory, f"`.{func.attr.value}()` with its default {'std=1' if factory == 'randn' else 'range [0, 1)'}", shape[1]
    return None


def _trained_tensor(call: cst.Call) -> bool:
    flag = kwarg_value(call, "requires_grad")
    if isinstance(flag, cst.Name) and flag.value == "True":
        return True
    return isinstance(call.func, cst.Attribute) and call.func.attr.value == "requires_grad_"


def _assignments(model: FileModel) -> dict[int, str]:
    """id(value) -> the single name it is assigned to (`self.W`, `W`)."""
    found: dict[int, str] = {}
    for block in [model.body, *(function.body for function in model.all_functions)]:
        for event in block.events():
            if event.kind is Kind.ASSIGN and event.augmented is None and len(event.targets) == 1 and event.value is not None:
                found[id(event.value)] = event.targets[0]
    return found


def _is_weight_variable(model: FileModel, target: str | None, function: Function | None) -> bool:
    """A `requires_grad=True` tensor is a weight when it is a module attribute, or an optimizer trains it."""
    if target is None:
        return False
    if target.startswith("self.") and target.count(".") == 1:
        return True
    if "." in target:
        return False
    for site in model.calls:
        if site.function is not function or not (qualified(model, site.node.func) or "").startswith("torch.optim."):
            continue
        params = arg_value(site.node, 0, "params")
        if isinstance(params, (cst.List, cst.Tuple)) and any(
            isinstance(element.value, cst.Name) and element.value.value == target for element in params.elements
        ):
            return True
    return False


def _rescaled_later(model: FileModel, function: Function | None, target: str | None, created: cst.Call) -> bool:
    """A later in-place init or scaling of the same tensor (`.mul_`, `nn.init.*`, `*=`, a new value) counts as scaling.

    For an attribute, any method of the class counts (a `reset_parameters()` is the usual place), and so does
    a loop over the module's own `parameters()` that initializes each one.
    """
    info = owner_class(model, function)
    functions: list[Function | None]
    if target is not None and target.startswith("self.") and info is not None:
        functions = list(info.methods.values())
    else:
        functions = [function]
    for owner in functions:
        for op in init_ops(model, owner):
            if op.op == "call":
                continue
            if op.value is not None and _contains(op.value, created):
                continue  # the creation itself
            key = op.key or ""
            if target is not None and key == target:
                return True
            if info is not None and target is not None and target.startswith("self.") and _loops_over_own_parameters(op):
                return True
    return False


def _loops_over_own_parameters(op) -> bool:
    """`for p in self.parameters(): nn.init.xxx(p)` re-initializes every parameter of the module."""
    name = dotted_name(op.tensor) if op.tensor is not None else None
    for kind, node in reversed(op.stack):
        if kind != "for" or name is None:
            continue
        iterator = node.iter
        if (
            isinstance(iterator, cst.Call)
            and isinstance(iterator.func, cst.Attribute)
            and iterator.func.attr.value in ("parameters", "named_parameters")
            and dotted_name(iterator.func.value) == "self"
        ):
            target = node.target
            names = {target.value} if isinstance(target, cst.Name) else {
                e.value.value for e in getattr(target, "elements", []) if isinstance(e.value, cst.Name)
            }
            return name in names
    return False


def _contains(value: cst.CSTNode, node: cst.CSTNode) -> bool:
    from gradlint.analysis.walk import walk

    return any(child is node for child in walk(value))
