"""How a square weight is used in one file: as a matrix on a state, in a loop, once, or not at all.

GL302 reports an unscaled `torch.randn(n, n)` weight only when the code multiplies something by
it (`h @ self.W`, `torch.matmul(x, W)`, `F.linear(x, W)`, `self.fc(x)` for a layer), and the
dynamic probe rebuilds what the code does with it: a recurrence (the product feeds the state the
loop carries: `h = torch.tanh(h @ self.W_hh + x[t])`), a chain applied N times
(`for _ in range(depth): x = torch.relu(self.fc(x))`), a cell (a method that maps a state it is
given through the weight and returns it), or a single application.

`matrix_uses(model, target, function)` lists the uses of `target` (`self.W` in any method of its
class, a local or module-level name in the function that assigns it).
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from gradlint.analysis.layers import owner_class, parents
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import walk

MATMUL_FUNCTIONS = frozenset({
    "torch.matmul", "torch.mm", "torch.bmm", "torch.mv", "torch.einsum", "torch.addmm", "torch.baddbmm",
    "torch.chain_matmul", "torch.linalg.multi_dot", "torch.nn.functional.linear", "torch.tensordot",
    "torch.inner",
})
MATMUL_METHODS = frozenset({"matmul", "mm", "bmm", "mv", "addmm", "addmm_"})
_VIEWS = frozenset({"t", "transpose", "T", "mT", "data", "to", "float", "half", "double", "contiguous", "view",
                    "reshape", "permute", "expand", "clone", "detach"})
ACTIVATIONS = {
    "tanh": "tanh", "relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "gelu": "gelu", "elu": "elu",
    "leaky_relu": "leaky_relu", "selu": "selu", "silu": "silu", "softplus": "softplus", "hardtanh": "tanh",
    "Tanh": "tanh", "ReLU": "relu", "Sigmoid": "sigmoid", "GELU": "gelu", "ELU": "elu", "LeakyReLU": "leaky_relu",
    "SELU": "selu", "SiLU": "silu",
}


@dataclass(eq=False)
class MatrixUse:
    """One place where the weight multiplies something."""

    node: cst.CSTNode
    """The product (`h @ self.W`, `torch.matmul(...)`, `self.fc(h)`)."""
    function: Function | None
    loop: cst.For | cst.While | None
    """The innermost loop around it inside its function."""
    carried: bool
    """The product feeds a name the statement also reads (`h = f(h @ W)`): a carried state."""
    indexed_input: bool
    """The loop feeds an element of a sequence indexed by its variable (`x[t]`, `x[:, t]`)."""
    activation: str | None
    """The activation applied to the result (`tanh`, `relu`), when the statement shows one."""
    state_map: bool
    """In a method: the multiplied operand is one of the method's parameters and the product
    reaches a `return` (a cell: state in, state out)."""
    in_method: bool
    """In a method of a class, other than `__init__`."""
    assigned: str | None = None


def matrix_uses(model: FileModel, target: str, function: Function | None, call_form: bool = False) -> list[MatrixUse]:
    """Where `target` multiplies something. `call_form`: the target is a layer (`self.fc(x)`),
    otherwise a tensor (`x @ self.W`)."""
    functions: list[Function | None]
    info = owner_class(model, function)
    if target.startswith("self.") and info is not None:
        functions = [f for f in model.all_functions if owner_class(model, f) is info]
    else:
        functions = [function]
    uses: list[MatrixUse] = []
    for owner in functions:
        root: cst.CSTNode = owner.node.body if owner is not None else model.module
        table = parents(model, owner)
        for node in walk(root):
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node is not root and owner is None:
                continue
            if not _names(node, target):
                continue
            product = _product(node, table, call_form)
            if product is None:
                continue
            uses.append(_describe(model, owner, product, table, info))
    return uses


def _names(node: cst.CSTNode, target: str) -> bool:
    if isinstance(node, (cst.Name, cst.Attribute)):
        return dotted_name(node) == target
    return False


def _product(node: cst.CSTNode, table: dict[int, cst.CSTNode], call_form: bool) -> cst.CSTNode | None:
    """The multiplication `node` (the weight) takes part in, through views like `.t()` / `.T`."""
    current = node
    for _ in range(8):
        parent = table.get(id(current))
        if parent is None:
            return None
        if call_form:
            if isinstance(parent, cst.Call) and parent.func is current:
                return parent
            return None
        if isinstance(parent, cst.Attribute) and parent.value is current and parent.attr.value in _VIEWS:
            current = parent
            continue
        if isinstance(parent, cst.Call) and isinstance(parent.func, cst.Attribute) and parent.func is current:
            if parent.func.attr.value in _VIEWS:
                current = parent
                continue
            if parent.func.attr.value in MATMUL_METHODS:
                return parent
            return None
        if isinstance(parent, cst.BinaryOperation) and isinstance(parent.operator, cst.MatrixMultiply):
            return parent
        if isinstance(parent, cst.Arg):
            call = table.get(id(parent))
            if isinstance(call, cst.Call):
                if isinstance(call.func, cst.Attribute) and call.func.attr.value in MATMUL_METHODS:
                    return call
                name = _qualified_call(call)
                if name in {n.rsplit(".", 1)[-1] for n in MATMUL_FUNCTIONS} | {"linear"}:
                    return call
            return None
        return None
    return None


def _qualified_call(call: cst.Call) -> str | None:
    name = dotted_name(call.func)
    return name.rsplit(".", 1)[-1] if name else None


def _describe(model: FileModel, owner: Function | None, product: cst.CSTNode, table: dict[int, cst.CSTNode],
              info) -> MatrixUse:
    loop = None
    statement: cst.CSTNode | None = None
    activation = None
    current = product
    returned = False
    while True:
        parent = table.get(id(current))
        if parent is None:
            break
        if isinstance(parent, cst.Call) and activation is None:
            name = _qualified_call(parent)
            qualified = model.qualify_call(parent) or ""
            if name in ACTIVATIONS and (qualified.startswith("torch") or "." not in (dotted_name(parent.func) or ".")):
                activation = ACTIVATIONS[name]
        if isinstance(parent, cst.Return):
            returned = True
        if statement is None and isinstance(parent, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Return, cst.Expr)):
            statement = parent
        if isinstance(parent, (cst.For, cst.While)) and loop is None and _in_body(parent, current):
            loop = parent
        if isinstance(parent, (cst.FunctionDef, cst.Lambda)):
            break
        current = parent
    assigned: set[str] = set()
    reads: set[str] = set()
    if isinstance(statement, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
        targets = [t.target for t in statement.targets] if isinstance(statement, cst.Assign) else [statement.target]
        for target in targets:
            assigned |= {n.value for n in walk(target) if isinstance(n, cst.Name)}
        value = statement.value
        if value is not None:
            reads = {n.value for n in walk(value) if isinstance(n, cst.Name)}
        if isinstance(statement, cst.AugAssign):
            reads |= assigned
    carried = bool(assigned & reads)
    if loop is not None and activation is None and assigned:
        activation = _later_activation(model, loop, statement, assigned)
    indexed = False
    if loop is not None and isinstance(loop, cst.For):
        variables = {n.value for n in walk(loop.target) if isinstance(n, cst.Name)}
        for node in walk(loop.body):
            if isinstance(node, cst.Subscript) and any(
                isinstance(n, cst.Name) and n.value in variables for element in node.slice for n in walk(element)
            ):
                indexed = True
                break
    in_method = owner is not None and info is not None and owner.name != "__init__" and owner.class_name == info.name
    state_map = False
    if in_method and owner is not None:
        # A cell: the method takes a state and an input, maps the state through the weight, adds
        # the input and returns the result (`forward(self, x, h): return tanh(h @ W + U(x))`).
        params = {p for p in owner.params if p not in ("self", "cls")}
        operands = {n.value for n in walk(product) if isinstance(n, cst.Name)}
        flows = returned or bool(assigned and _returns_any(owner, assigned))
        whole = statement.value if isinstance(statement, (cst.Assign, cst.AnnAssign, cst.Return)) else None
        together = {n.value for n in walk(whole) if isinstance(n, cst.Name)} if whole is not None else set()
        state = params & operands
        state_map = bool(state) and flows and len(params) >= 2 and bool((params - state) & together)
    name = next(iter(sorted(assigned)), None) if assigned else None
    return MatrixUse(product, owner, loop, carried, indexed, activation, state_map, in_method, name)


def _in_body(loop: cst.For | cst.While, child: cst.CSTNode) -> bool:
    return child is loop.body


def _later_activation(model: FileModel, loop: cst.CSTNode, statement, names: set[str]) -> str | None:
    """`h = h @ W + b` then `h = torch.tanh(h)` in the same loop body."""
    seen = False
    for node in walk(loop.body):
        if node is statement:
            seen = True
            continue
        if not seen or not isinstance(node, cst.Assign):
            continue
        targets = {n.value for t in node.targets for n in walk(t.target) if isinstance(n, cst.Name)}
        if not targets & names:
            continue
        value = node.value
        if isinstance(value, cst.Call) and _qualified_call(value) in ACTIVATIONS:
            return ACTIVATIONS[_qualified_call(value)]  # type: ignore[index]
    return None


def _returns_any(function: Function, names: set[str]) -> bool:
    for node in walk(function.node.body):
        if isinstance(node, cst.Return) and node.value is not None:
            if any(isinstance(n, cst.Name) and n.value in names for n in walk(node.value)):
                return True
    return False


__all__ = ["ACTIVATIONS", "MatrixUse", "matrix_uses"]
