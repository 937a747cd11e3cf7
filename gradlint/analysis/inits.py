"""Initialization operations: what sets or rescales a tensor in place, in program order.

`init_ops` lists, per function, the operations that set or rescale a tensor in place
(`nn.init.normal_(w, std=s)`, `w.data.mul_(k)`, `w *= k`, `self.W = nn.Parameter(...)`) in
program order, with the loops and branches around them. It walks only the functions whose calls
(from the FileModel) or augmented assignments show such an operation.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from gradlint.analysis.builder import iter_calls
from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import FileModel, Function, Kind
from gradlint.analysis.names import dotted_name
from gradlint.analysis.tensors import PARAMETER_CLASSES, qualified, requires_grad, strip_data

# Names of the init functions (`torch.nn.init.<name>`) and tensor methods that set a tensor.
INIT_FUNCTIONS = {
    "normal_", "normal", "uniform_", "uniform", "trunc_normal_", "orthogonal_", "orthogonal", "eye_", "eye",
    "constant_", "constant", "ones_", "zeros_", "xavier_normal_", "xavier_uniform_", "xavier_normal",
    "xavier_uniform", "kaiming_normal_", "kaiming_uniform_", "kaiming_normal", "kaiming_uniform",
    "sparse_", "sparse", "dirac_", "dirac",
}
TENSOR_METHODS = {"normal_", "uniform_", "fill_", "mul_", "div_", "zero_", "copy_"}
_CANDIDATE_NAMES = INIT_FUNCTIONS | TENSOR_METHODS | {"Parameter"}

REQUIRED = object()
"""An argument without a default (`constant_`'s `val`): missing means the call cannot be read."""
FUNCTION_ARGUMENTS: dict[str, tuple[tuple[str, int, object], ...]] = {
    "normal_": (("mean", 1, 0.0), ("std", 2, 1.0)),
    "uniform_": (("a", 1, 0.0), ("b", 2, 1.0)),
    "trunc_normal_": (("mean", 1, 0.0), ("std", 2, 1.0), ("a", 3, -2.0), ("b", 4, 2.0)),
    "orthogonal_": (("gain", 1, 1.0),),
    "constant_": (("val", 1, REQUIRED),),
    "xavier_normal_": (("gain", 1, 1.0),),
    "xavier_uniform_": (("gain", 1, 1.0),),
    "kaiming_normal_": (("a", 1, 0.0), ("mode", 2, "fan_in"), ("nonlinearity", 3, "leaky_relu")),
    "kaiming_uniform_": (("a", 1, 0.0), ("mode", 2, "fan_in"), ("nonlinearity", 3, "leaky_relu")),
    "eye_": (),
    "zeros_": (),
    "ones_": (),
}
"""(keyword, position, default) of the arguments each `torch.nn.init` function reads (the tensor
is argument 0)."""
METHOD_ARGUMENTS: dict[str, tuple[tuple[str, int, object], ...]] = {
    "normal_": (("mean", 0, 0.0), ("std", 1, 1.0)),
    "uniform_": (("from", 0, 0.0), ("to", 1, 1.0)),
    "fill_": (("value", 0, REQUIRED),),
    "zero_": (),
    "mul_": (("other", 0, REQUIRED),),
    "div_": (("other", 0, REQUIRED),),
}
"""The same for the in-place Tensor methods (no tensor argument)."""
_AUGMENTED = {"MultiplyAssign": "*", "DivideAssign": "/"}


@dataclass(eq=False)
class InitOp:
    """One statement-level operation that sets or rescales a tensor, in program order."""

    node: cst.CSTNode
    """The call (`nn.init.normal_(...)`, `w.mul_(k)`), the augmented assignment, or the assigned value."""
    op: str
    """`normal_`, `uniform_`, ..., `mul_` / `div_` (scaling), `assign` (a new value), `call` (a self method)."""
    tensor: cst.BaseExpression | None
    """The tensor operated on, `.data` stripped (None for `call`)."""
    call: cst.Call | None = None
    factor: cst.BaseExpression | None = None
    """For scaling: the factor (`k` in `w *= k`)."""
    value: cst.BaseExpression | None = None
    """For `assign`/`copy_`: the new value."""
    method: str | None = None
    """For `call`: the method of the class that runs here (`self.reset_parameters()`)."""
    tensor_method: bool = False
    """`w.normal_(0, s)` (a Tensor method: no tensor argument) rather than `nn.init.normal_(w, 0, s)`."""
    stack: tuple = ()
    """Enclosing `("for", For)` and `("if", test)` entries inside the function, outermost first."""

    @property
    def key(self) -> str | None:
        """The dotted tensor name the op acts on (loop variables qualified by their loop)."""
        if self.tensor is None:
            return None
        name = dotted_name(self.tensor)
        if name is None:
            return None
        if "." not in name:
            for entry in reversed(self.stack):
                if entry[0] == "for" and name in _loop_names(entry[1].target):
                    return f"{name}@{id(entry[1])}"
        return name


def _loop_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        names: set[str] = set()
        for element in target.elements:
            names |= _loop_names(element.value)
        return names
    return set()


def init_ops(model: FileModel, function: Function | None) -> list[InitOp]:
    """The init operations of a function (None: the module body), computed once per function."""
    cache = model.derived.setdefault("weights.init_ops", {})
    key = id(function)
    if key not in cache:
        cache[key] = _collect(model, function) if _may_init(model, function) else []
    return cache[key]


def functions_with_init_ops(model: FileModel) -> list[Function | None]:
    return [function for function in [None, *model.all_functions] if init_ops(model, function)]


def _may_init(model: FileModel, function: Function | None) -> bool:
    candidates = model.derived.get("weights.candidates")
    if candidates is None:
        candidates = set()
        for site in model.calls:
            if site.callee.rsplit(".", 1)[-1] in _CANDIDATE_NAMES or kwarg_value(site.node, "requires_grad") is not None:
                candidates.add(id(site.function))
        for owner in model.all_functions:
            if any(
                event.kind is Kind.ASSIGN and event.augmented in _AUGMENTED for event in owner.body.events()
            ) or any(_assigns_parameter(event) for event in owner.body.events()):
                candidates.add(id(owner))
        if any(event.kind is Kind.ASSIGN and event.augmented in _AUGMENTED for event in model.body.events()):
            candidates.add(id(None))
        model.derived["weights.candidates"] = candidates
    return id(function) in candidates


def _assigns_parameter(event) -> bool:
    return event.kind is Kind.ASSIGN and any(target.endswith(".data") for target in event.targets)


def _collect(model: FileModel, function: Function | None) -> list[InitOp]:
    ops: list[InitOp] = []
    if function is None:
        _statements(model, model.module.body, (), ops, top=True)
    else:
        body = function.node.body
        statements = body.body if isinstance(body, cst.IndentedBlock) else ()
        if isinstance(body, cst.SimpleStatementSuite):
            for small in body.body:
                _small(model, small, (), ops)
        _statements(model, statements, (), ops, top=False)
    return ops


def _statements(model: FileModel, statements, stack: tuple, ops: list[InitOp], top: bool) -> None:
    for statement in statements:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                _small(model, small, stack, ops)
        elif isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            continue
        elif isinstance(statement, cst.For):
            _expression(model, statement.iter, stack, ops)
            _suite(model, statement.body, stack + (("for", statement),), ops)
            if statement.orelse is not None:
                _suite(model, statement.orelse.body, stack, ops)
        elif isinstance(statement, cst.While):
            _suite(model, statement.body, stack + (("while", statement),), ops)
        elif isinstance(statement, cst.If):
            _if(model, statement, stack, ops)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                _expression(model, item.item, stack, ops)
            _suite(model, statement.body, stack, ops)
        elif isinstance(statement, cst.Try) or type(statement).__name__ == "TryStar":
            _suite(model, statement.body, stack, ops)
            for handler in statement.handlers:
                _suite(model, handler.body, stack + (("else", handler),), ops)
            if statement.orelse is not None:
                _suite(model, statement.orelse.body, stack, ops)
            if statement.finalbody is not None:
                _suite(model, statement.finalbody.body, stack, ops)


def _suite(model: FileModel, suite: cst.BaseSuite, stack: tuple, ops: list[InitOp]) -> None:
    if isinstance(suite, cst.IndentedBlock):
        _statements(model, suite.body, stack, ops, top=False)
    elif isinstance(suite, cst.SimpleStatementSuite):
        for small in suite.body:
            _small(model, small, stack, ops)


def _if(model: FileModel, statement: cst.If, stack: tuple, ops: list[InitOp]) -> None:
    _expression(model, statement.test, stack, ops)
    _suite(model, statement.body, stack + (("if", statement.test),), ops)
    orelse = statement.orelse
    if isinstance(orelse, cst.If):
        _if(model, orelse, stack + (("else", statement.test),), ops)
    elif isinstance(orelse, cst.Else):
        _suite(model, orelse.body, stack + (("else", statement.test),), ops)


def _small(model: FileModel, small: cst.BaseSmallStatement, stack: tuple, ops: list[InitOp]) -> None:
    if isinstance(small, cst.AugAssign):
        _expression(model, small.value, stack, ops)
        operator = _AUGMENTED.get(type(small.operator).__name__)
        if operator is not None:
            ops.append(
                InitOp(small, "mul_" if operator == "*" else "div_", strip_data(small.target), factor=small.value, stack=stack)
            )
        return
    if isinstance(small, (cst.Assign, cst.AnnAssign)):
        if small.value is None:
            return
        _expression(model, small.value, stack, ops)
        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
        for target in targets:
            name = dotted_name(target) if not isinstance(target, (cst.Tuple, cst.List, cst.Subscript)) else None
            if name is None:
                continue
            if name.endswith(".data") or _builds_tensor(model, small.value, name):
                ops.append(InitOp(small.value, "assign", strip_data(target), value=small.value, stack=stack))
        return
    if isinstance(small, cst.Expr):
        _expression(model, small.value, stack, ops)


def _builds_tensor(model: FileModel, value: cst.BaseExpression, target: str) -> bool:
    """An assigned value that sets a weight: `nn.Parameter(...)`, or a requires_grad tensor kept as a
    module attribute (a local requires_grad tensor is usually a test input, not a weight)."""
    if not isinstance(value, cst.Call):
        return False
    if qualified(model, value.func) in PARAMETER_CLASSES:
        return True
    return target.startswith("self.") and target.count(".") == 1 and requires_grad(value)


def _expression(model: FileModel, expression: cst.BaseExpression, stack: tuple, ops: list[InitOp]) -> None:
    for call in iter_calls(expression):
        if isinstance(call, cst.Call):
            op = _call_op(model, call, stack)
            if op is not None:
                ops.append(op)


def call_op(model: FileModel, call: cst.Call, stack: tuple = ()) -> InitOp | None:
    """The init operation a call is (`nn.init.normal_(w, ...)`, `w.mul_(k)`, `w.copy_(v)`,
    `self.reset_parameters()`), or None."""
    return _call_op(model, call, stack)


def _call_op(model: FileModel, call: cst.Call, stack: tuple) -> InitOp | None:
    func = call.func
    name = qualified(model, func)
    if name is not None and (name.startswith("torch.nn.init.") or name.endswith(".trunc_normal_")):
        op = name.rsplit(".", 1)[-1]
        if op not in INIT_FUNCTIONS:
            return None
        tensor = arg_value(call, 0, "tensor")
        if tensor is None:
            return None
        return InitOp(call, op.rstrip("_") + "_", strip_data(tensor), call=call, stack=stack)
    if not isinstance(func, cst.Attribute):
        return None
    attr = func.attr.value
    receiver = func.value
    if attr in TENSOR_METHODS and name is None:  # `w.normal_(...)`, not `some_module.normal_(w, ...)`
        if isinstance(receiver, cst.Call):
            inner = qualified(model, receiver.func) or ""
            if inner.startswith("torch.nn.init."):
                tensor = arg_value(receiver, 0, "tensor")  # `nn.init.eye_(w).mul_(k)`
                if tensor is None:
                    return None
                receiver = tensor
            else:
                return None
        if dotted_name(receiver) is None:
            return None
        tensor = strip_data(receiver)
        if attr in ("mul_", "div_"):
            factor = arg_value(call, 0, "other")
            return InitOp(call, attr, tensor, call=call, factor=factor, stack=stack) if factor is not None else None
        if attr == "copy_":
            return InitOp(call, "assign", tensor, call=call, value=arg_value(call, 0, "src"), stack=stack)
        return InitOp(call, attr, tensor, call=call, stack=stack, tensor_method=True)
    if isinstance(receiver, cst.Name) and receiver.value == "self":
        return InitOp(call, "call", None, call=call, method=attr, stack=stack)
    return None
