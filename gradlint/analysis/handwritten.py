"""Hand-written recurrences in one class: a state fed back through a weight with nothing bounding it.

Two shapes, both read from the libcst tree of a `forward` method:

- a loop inside `forward`: `for t in ...: h = act(self.W_hh(h) + self.W_xh(x[t]))`;
- a *step cell*: `forward(self, input, hidden)` computes one step (`combined = torch.cat((input,
  hidden), 1); hidden = self.i2h(combined)`) and returns the new state, and the loop over time
  is in the code that calls it (`for i in range(n): output, hidden = rnn(line[i], hidden)`, the
  PyTorch char-RNN tutorials). `step_update` finds the update; `feedback_calls` finds loops that
  feed a call's returned state back into it. Which class a call's receiver is, and so whether a
  step cell is really iterated, is a project question (gradlint.index.recurrences).

"Through a weight" means `self.W(h)` (W an `nn.Linear` of the class), `h @ W`, `torch.mm(h, W)`,
`F.linear(h, W)`, `h.mm(W)`, or an element-wise recurrent weight `self.u * h` (u an
`nn.Parameter`, the IndRNN form). Between the weight and the new state only arithmetic, dropout and
unbounded activations (relu and friends) may appear; between the old state and the weight only
concatenation, reshaping, indexing, arithmetic and unbounded activations. Anything else (tanh,
sigmoid, a normalization, a call that cannot be read) may bound the state: the detector stays quiet.

The detector reads a file through `qualify` (the qualified name of a dotted expression, from the
file's imports) and `attribute` (the value assigned to `self.<name>` in the class), so it runs on
the checked file's libcst model and on a method parsed back from another file's summary alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import libcst as cst

from gradlint.analysis.layers import UNBOUNDED_FUNCTIONS, is_unbounded_module, torch_nn_name
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import children, walk

Qualify = Callable[[cst.BaseExpression], "str | None"]
Attribute = Callable[[str], "cst.BaseExpression | None"]

_MATMUL_FUNCTIONS = {"torch.mm", "torch.matmul", "torch.bmm", "torch.addmm", "torch.einsum", "torch.nn.functional.linear"}
_MATMUL_METHODS = {"mm", "matmul", "bmm"}
_ELEMENTWISE_FUNCTIONS = {"torch.mul", "torch.multiply"}
_PASS_METHODS = {
    "contiguous", "view", "reshape", "squeeze", "unsqueeze", "clone", "float", "to", "type_as", "flatten",
    "expand", "expand_as", "permute", "transpose", "t",
}
_PASS_FUNCTIONS = {"torch.nn.functional.dropout", "torch.dropout", "torch.squeeze", "torch.unsqueeze", "torch.flatten"}
_JOIN_FUNCTIONS = {"torch.cat", "torch.concat", "torch.concatenate", "torch.stack", "torch.hstack", "torch.vstack"}
_LINEAR_MODULES = {"Linear", "LazyLinear", "Bilinear"}
_MODULE_ACTIVATIONS = {
    "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu", "SELU": "selu", "CELU": "celu",
    "Softplus": "softplus", "SiLU": "silu", "Mish": "mish", "PReLU": "prelu", "RReLU": "rrelu",
}
_WEIGHT_NAME = re.compile(r"^([WUV]|w)(_\w+|\d+)?$|weight", re.IGNORECASE)
_ROOT_METHODS = ("t", "transpose", "permute", "contiguous", "to", "float", "unsqueeze", "expand_as", "view")


@dataclass(eq=False)
class Recurrence:
    node: cst.CSTNode
    """The update: the assignment `h = ...` (or the returned expression of a step cell)."""
    state: str
    """The state the update reads (`h`, the `hidden` parameter of a step cell)."""
    activation: str | None
    """The unbounded activation around the update (`relu`), None for a plain affine update."""
    weight: cst.BaseExpression
    """What multiplies the state: `self.W_hh` (a Linear), the matrix of `h @ self.W`, the `self.u`
    of `self.u * h`."""
    elementwise: bool
    """The weight multiplies the state element by element (IndRNN: `self.u * h`)."""
    forward: cst.FunctionDef
    loop: cst.For | cst.While | None
    """The loop inside `forward`; None for a step cell (the loop is in the caller)."""
    position: int | str | None = None
    """Step cell: the state's positional index among forward's arguments (self left out)."""
    keyword: str | None = None
    """Step cell: the state parameter's name (a caller may pass it by keyword)."""
    returned: int | None = None
    """Step cell: the new state's index in the returned tuple, None when it is returned alone."""

    @property
    def step(self) -> bool:
        return self.loop is None


@dataclass(eq=False)
class Feedback:
    """A call in a loop whose returned state is passed back to it: `output, hidden = rnn(x[i], hidden)`."""

    node: cst.CSTNode
    """The assignment."""
    call: cst.Call
    loop: cst.For | cst.While
    state: str
    argument: int | str
    """The positional index of the state among the call's arguments, or its keyword."""
    returned: int | None
    """The state's index in the assigned tuple, None when the call's result is the state."""

    def feeds(self, recurrence: Recurrence) -> bool:
        """Whether this loop feeds the state of `recurrence` (a step cell) back into it."""
        if not recurrence.step or self.returned != recurrence.returned:
            return False
        return self.argument == recurrence.position or self.argument == recurrence.keyword


# ------------------------------------------------------------------------ loops in forward


def forward_recurrences(forward: cst.FunctionDef, qualify: Qualify, attribute: Attribute) -> list[Recurrence]:
    """`h = act(self.W(h) + self.U(x))` in a loop of `forward`, act unbounded or absent."""
    found: list[Recurrence] = []
    aliases = _Aliases(forward)
    params = _param_names(forward)
    for assign, loop, loop_targets in _assignments_in_loops(forward.body):
        target = assign.targets[0].target
        if len(assign.targets) != 1 or not isinstance(target, cst.Name):
            continue
        state = target.value
        if state in loop_targets:
            continue
        finder = _Finder(qualify, attribute, {state}, loop_targets | {state}, aliases)
        hit = finder.first(assign.value)
        if hit is not None and _carried(forward, params, loop, assign, state) and _kept(finder, loop, assign, state):
            activation, weight, elementwise = hit
            found.append(Recurrence(assign, state, activation, weight, elementwise, forward, loop))
    return found


def _assignments_in_loops(
    body: cst.CSTNode,
) -> Iterator[tuple[cst.Assign, cst.For | cst.While, frozenset[str]]]:
    """Assignments inside a for/while loop of a body (a function's, or a module: not in nested
    functions or classes), with their innermost loop and the names bound by the enclosing `for` targets."""
    stack: list[tuple[cst.CSTNode, cst.For | cst.While | None, frozenset[str]]] = [(body, None, frozenset())]
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


def _uses(node: cst.CSTNode | None, name: str) -> bool:
    return node is not None and any(isinstance(n, cst.Name) and n.value == name for n in walk(node))


def _carried(
    function: cst.CSTNode, params: set[str], loop: cst.For | cst.While, update: cst.CSTNode, state: str
) -> bool:
    """Whether the state the update reads is the one the previous iteration left: it exists before
    the loop (a parameter, or assigned earlier), and nothing earlier in the loop body gives it a
    fresh value (`x = self.proj(features); x = self.out(x)` is a pipeline, not a recurrence)."""
    defined = state in params
    for node in walk(function):
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
        if state in names and not isinstance(node, cst.AugAssign) and not _uses(value, state):
            return False
    return True


def _kept(finder: "_Finder", loop: cst.For | cst.While, update: cst.CSTNode, state: str) -> bool:
    """Whether the state reaches the next iteration as the update left it, up to arithmetic and
    unbounded activations: a later `h = self.norm(h)` or `out = self.propagate(edge_index, x=out)`
    in the loop body may bound it (stay quiet)."""
    after = False
    for node in walk(loop.body):
        if node is update:
            after = True
            continue
        if not after or isinstance(node, cst.AugAssign):
            continue
        names, value = _assigned_names(node)
        if state not in names:
            continue
        if not isinstance(node, cst.Assign) or len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Name):
            return False
        if value is None or not (finder.carries(value) or finder.first(value) is not None):
            return False
    return True


def _param_names(function: cst.FunctionDef) -> set[str]:
    params = function.params
    every = [*params.posonly_params, *params.params, *params.kwonly_params]
    return {param.name.value for param in every}


class _Aliases:
    """Locals bound to a module attribute (`W = self.weight_hh`), read from the function the first
    time a name is asked about (most functions never need them)."""

    def __init__(self, function: cst.FunctionDef) -> None:
        self.function = function
        self._names: set[str] | None = None

    def __contains__(self, name: str) -> bool:
        if self._names is None:
            self._names = set()
            for node in _statements(self.function.body):
                if isinstance(node, cst.Assign) and len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                    if (_root(node.value) or "").startswith("self."):
                        self._names.add(node.targets[0].target.value)
        return name in self._names


def _statements(body: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The small statements of a body, in compound statements too (not in nested functions or classes)."""
    stack: list[cst.CSTNode] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            continue
        if isinstance(node, cst.SimpleStatementLine):
            yield from node.body
            continue
        if isinstance(node, cst.BaseExpression):
            continue
        stack.extend(reversed(children(node)))


def _root(node: cst.BaseExpression) -> str | None:
    """`self.W` for `self.W.t()`, `self.W.T`, `self.W[0]`, `self.u.unsqueeze(0)`, `self.cell.weight`..."""
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in _ROOT_METHODS:
            node = node.func.value
        elif isinstance(node, cst.Subscript):
            node = node.value
        else:
            break
    return dotted_name(node) if isinstance(node, (cst.Name, cst.Attribute)) else None


def root(node: cst.BaseExpression) -> str | None:
    """The attribute or name a weight expression reads (`self.W` for `self.W.t()`)."""
    return _root(node)


# ------------------------------------------------------------------------------ step cells


def step_updates(forward: cst.FunctionDef, qualify: Qualify, attribute: Attribute) -> list[Recurrence]:
    """The updates of a one-step cell: `forward(self, input, hidden)` feeds its `hidden` parameter
    through a weight (with no bounding activation) into a value it returns. One per returned
    value that is such an update (a caller's loop tells which one is the state it feeds back).

    Only the straight-line part of `forward` is read (loops are `forward_recurrences`' business).
    """
    params = forward.params
    positional = [param.name.value for param in [*params.posonly_params, *params.params]]
    if positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    candidates = positional + [param.name.value for param in params.kwonly_params]
    if len(candidates) < 2:
        return []  # one step of a recurrence reads an input and a state
    statements = list(_straight_line(forward.body))
    returns = [node for node in statements if isinstance(node, cst.Return) and node.value is not None]
    if len(returns) != 1:
        return []
    returned = returns[0].value
    elements = [e.value for e in returned.elements] if isinstance(returned, cst.Tuple) else [returned]
    aliases = _Aliases(forward)
    found: list[Recurrence] = []
    for state in candidates:
        carriers = {state}
        updates: dict[str, tuple[cst.Assign, tuple]] = {}
        for node in statements:
            if node is returns[0]:
                break
            if not isinstance(node, cst.Assign) or len(node.targets) != 1:
                continue
            target = node.targets[0].target
            if not isinstance(target, cst.Name):
                continue
            name = target.value
            finder = _Finder(qualify, attribute, set(carriers), frozenset(carriers), aliases)
            hit = finder.first(node.value)
            carries = hit is None and finder.carries(node.value)
            updates.pop(name, None)
            carriers.discard(name)
            if hit is not None:
                updates[name] = (node, hit)
            elif carries:
                carriers.add(name)
        for index, element in enumerate(elements):
            if isinstance(element, cst.Name) and element.value in updates:
                update, hit = updates[element.value]
            else:
                finder = _Finder(qualify, attribute, set(carriers), frozenset(carriers), aliases)
                update, hit = element, finder.first(element)
                if hit is None:
                    continue
            activation, weight, elementwise = hit
            found.append(
                Recurrence(
                    update, state, activation, weight, elementwise, forward, None,
                    position=positional.index(state) if state in positional else None,
                    keyword=state,
                    returned=index if isinstance(returned, cst.Tuple) else None,
                )
            )
    return found


def _straight_line(body: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """The small statements of a body in order, not inside loops, branches, nested functions or classes."""
    for statement in getattr(body, "body", ()):
        if isinstance(statement, cst.SimpleStatementLine):
            yield from statement.body
        elif isinstance(statement, cst.With):
            yield from _straight_line(statement.body)


# ------------------------------------------------------------------------- feedback loops


def feedback_calls(function: cst.CSTNode) -> list[Feedback]:
    """Calls in a loop of `function` (a FunctionDef, or a Module for module-level code) whose
    returned state is passed back to them: `output, hidden = rnn(line[i], hidden)`, `h = self.cell(x[t], h)`.
    Nested functions and classes are left out (they are read on their own)."""
    found: list[Feedback] = []
    body = function.body if isinstance(function, cst.FunctionDef) else function
    params = _param_names(function) if isinstance(function, cst.FunctionDef) else set()
    for assign, loop, loop_targets in _assignments_in_loops(body):
        value = assign.value
        if not isinstance(value, cst.Call) or len(assign.targets) != 1:
            continue
        target = assign.targets[0].target
        if isinstance(target, cst.Name):
            targets: list[tuple[str, int | None]] = [(target.value, None)]
        elif isinstance(target, (cst.Tuple, cst.List)):
            targets = [
                (element.value.value, index)
                for index, element in enumerate(target.elements)
                if isinstance(element, cst.Element) and isinstance(element.value, cst.Name)
            ]
        else:
            continue
        arguments: dict[str, int | str] = {}
        position = 0
        for arg in value.args:
            if arg.star:
                break
            if arg.keyword is None:
                if isinstance(arg.value, cst.Name):
                    arguments.setdefault(arg.value.value, position)
                position += 1
            elif isinstance(arg.value, cst.Name):
                arguments.setdefault(arg.value.value, arg.keyword.value)
        for name, returned in targets:
            if name in loop_targets or name not in arguments:
                continue
            if not _carried(function, params, loop, assign, name):
                continue
            found.append(Feedback(assign, value, loop, name, arguments[name], returned))
    return found


# ----------------------------------------------------------------------------- the search


class _Finder:
    """Looks for a carrier of the state going through a weight, along a path of arithmetic,
    unbounded activations and dropout only (anything else may bound it: stay quiet)."""

    def __init__(self, qualify: Qualify, attribute: Attribute, carriers: set[str], banned: frozenset[str], aliases: "_Aliases"):
        self.qualify = qualify
        self.attribute = attribute
        self.carriers = carriers
        """The state, and the locals that hold it unbounded (`combined = torch.cat((x, h), 1)`)."""
        self.banned = banned
        """The state and the loop variables: a weight indexed by the step (`W[t]`) is not tied."""
        self.aliases = aliases

    def first(self, expression: cst.BaseExpression) -> tuple[str | None, cst.BaseExpression, bool] | None:
        return next(self._search(expression, None), None)

    def _search(self, node: cst.BaseExpression, activation: str | None):
        found = self._weight_use(node)
        if found is not None:
            yield (activation, *found)
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
        qualified = self.qualify(func) or ""
        name = qualified.rsplit(".", 1)[-1]
        if qualified.startswith("torch."):
            if qualified in (f"torch.{name}", f"torch.nn.functional.{name}") and name in UNBOUNDED_FUNCTIONS:
                return (positional[0], name.rstrip("_")) if positional else None
            if qualified in _PASS_FUNCTIONS:
                return (positional[0], None) if positional else None
            return None
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == "self":
            bound = self.attribute(func.attr.value)
            if bound is None or not positional:
                return None
            if isinstance(bound, cst.Call):
                module = torch_nn_name(self.qualify(bound.func))
                if is_unbounded_module(self.qualify(bound.func)):
                    return positional[0], _MODULE_ACTIVATIONS.get(module or "", (module or "").lower())
                if module in ("Dropout", "Identity"):
                    return positional[0], None
                return None
            bound_name = (self.qualify(bound) or "") if isinstance(bound, (cst.Name, cst.Attribute)) else ""
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

    # -- the state through a weight

    def carries(self, node: cst.BaseExpression) -> bool:
        """Whether `node` holds the state unbounded: the state itself, or it joined, reshaped,
        indexed, scaled or passed through an unbounded activation."""
        if isinstance(node, cst.Name):
            return node.value in self.carriers
        if isinstance(node, cst.BinaryOperation):
            return self.carries(node.left) or self.carries(node.right)
        if isinstance(node, cst.UnaryOperation):
            return self.carries(node.expression)
        if isinstance(node, cst.Subscript):
            return self.carries(node.value)
        if isinstance(node, (cst.Tuple, cst.List)):
            return any(self.carries(e.value) for e in node.elements if isinstance(e, cst.BaseElement))
        if isinstance(node, cst.IfExp):
            return self.carries(node.body) or self.carries(node.orelse)
        if isinstance(node, cst.Call):
            qualified = self.qualify(node.func) or ""
            if qualified in _JOIN_FUNCTIONS:
                return any(self.carries(arg.value) for arg in node.args if arg.keyword is None)
            through = self._through(node)
            return through is not None and self.carries(through[0])
        return False

    def _weightish(self, node: cst.BaseExpression) -> bool:
        if any(isinstance(n, cst.Name) and n.value in self.banned for n in walk(node)):
            return False
        found = _root(node)
        if found is None:
            return False
        if found.startswith("self."):
            return True
        head = found.split(".", 1)[0]
        return head in self.aliases or bool(_WEIGHT_NAME.search(head))

    def _parameter(self, node: cst.BaseExpression) -> bool:
        """`self.u` (or `self.u.unsqueeze(0)`) with `self.u = nn.Parameter(...)` in the class."""
        if any(isinstance(n, cst.Name) and n.value in self.banned for n in walk(node)):
            return False
        found = _root(node)
        if found is None or not found.startswith("self.") or found.count(".") != 1:
            return False
        bound = self.attribute(found[5:])
        return isinstance(bound, cst.Call) and torch_nn_name(self.qualify(bound.func)) == "Parameter"

    def _weight_use(self, node: cst.BaseExpression) -> tuple[cst.BaseExpression, bool] | None:
        """(the weight, element-wise) when `node` multiplies the state by a weight: `self.W(h)`
        (W a Linear of the class), `h @ self.W`, `torch.mm(h, W)`, `F.linear(h, self.W)`,
        `h.mm(W)`, `self.u * h` (u an `nn.Parameter`)."""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.MatrixMultiply, cst.Multiply)):
            elementwise = isinstance(node.operator, cst.Multiply)
            for state_side, weight_side in ((node.left, node.right), (node.right, node.left)):
                if not self.carries(state_side):
                    continue
                if elementwise and self._parameter(weight_side):
                    return weight_side, True
                if not elementwise and self._weightish(weight_side):
                    return weight_side, False
            return None
        if not isinstance(node, cst.Call):
            return None
        func = node.func
        values = [arg.value for arg in node.args if not arg.star]
        if isinstance(func, cst.Attribute) and dotted_name(func.value) == "self":
            bound = self.attribute(func.attr.value)
            if isinstance(bound, cst.Call) and torch_nn_name(self.qualify(bound.func)) in _LINEAR_MODULES:
                if any(self.carries(value) for value in values):
                    return func, False
            return None
        qualified = self.qualify(func)
        if qualified in _MATMUL_FUNCTIONS:
            operands = [v for v in values if not isinstance(v, (cst.SimpleString, cst.ConcatenatedString))]
            if any(self.carries(v) for v in operands):
                weights = [v for v in operands if not self.carries(v) and self._weightish(v)]
                if weights:
                    return weights[0], False
            return None
        if qualified in _ELEMENTWISE_FUNCTIONS and len(values) >= 2:
            for state_side, weight_side in ((values[0], values[1]), (values[1], values[0])):
                if self.carries(state_side) and self._parameter(weight_side):
                    return weight_side, True
            return None
        if qualified is None and isinstance(func, cst.Attribute) and func.attr.value in _MATMUL_METHODS and values:
            receiver = func.value
            if self.carries(receiver) and self._weightish(values[0]):
                return values[0], False
            if self.carries(values[0]) and self._weightish(receiver):
                return receiver, False
        return None
