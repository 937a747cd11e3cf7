"""What GL101's fix clips: the parameters the optimizer holds, as source text that reads the same at
the step (the optimizer's own argument evaluated again when it has no side effect, else every
parameter of its groups)."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.model import FileModel
from gradlint.analysis.vocabulary import is_optimizer_class
from gradlint.analysis.walk import children
from gradlint.rules._helpers import latest_assignment


PARAM_GROUPS = '[p for group in {optimizer}.param_groups for p in group["params"]]'
"""What any torch optimizer holds: the clip of the fix when its parameters are not an expression
that can be evaluated again."""


def clipped_parameters(model: FileModel, step, optimizer: str) -> str | None:
    """The parameters the fix clips, as source text, or None (no fix):

    - the optimizer's own argument when it is a side-effect-free expression of parameters
      (`model.parameters()`, `list(rnn.parameters()) + list(head.parameters())`, `[*a.parameters(),
      *b.parameters()]`, `itertools.chain(...)`), evaluated again at the step; a name bound to a
      list of parameters (`params = list(...)`) is clipped by that name;
    - otherwise (parameter groups, a name whose value cannot be read again) every parameter the
      optimizer holds, `[p for group in opt.param_groups for p in group["params"]]`, when the
      optimizer is built by a known optimizer class or is a parameter of the enclosing function.
    """
    context, index = step.context, step.step.index
    constructor, local = _constructor(step, optimizer)
    if constructor is None:
        function = context.function
        if function is not None and optimizer in function.params:
            return PARAM_GROUPS.format(optimizer=optimizer)  # passed in: an optimizer by contract
        return None
    argument = _params_argument(constructor)
    if argument is not None and (local or _names_only_self(argument) or _globals_unshadowed(model, context, argument)):
        text = _reevaluated(model, context, index, argument)
        if text is not None:
            return text
    if is_optimizer_class(model.qualify_call(constructor)) or _looks_like_param_groups(argument):
        return PARAM_GROUPS.format(optimizer=optimizer)
    return None


def _constructor(step, optimizer: str) -> tuple[cst.Call | None, bool]:
    """The call that built the optimizer, and whether it is bound in the step's own scope (its
    argument's names are then visible at the step); a `self.opt` set in another method is not."""
    context = step.context
    occurrence = latest_assignment(context, optimizer, step.step.index)
    if occurrence is not None:
        value = occurrence.event.value
        if occurrence.event.targets == (optimizer,) and isinstance(value, cst.Call):
            return value, True
        return None, False
    value = context.binding(optimizer, step.step.index)
    return (value, False) if isinstance(value, cst.Call) else (None, False)


def _params_argument(call: cst.Call) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "params":
            return arg.value
    first = call.args[0] if call.args else None
    if first is not None and first.keyword is None and not first.star:
        return first.value
    return None


def _globals_unshadowed(model: FileModel, context, node: cst.CSTNode) -> bool:
    """The optimizer is a module-level global read in a function, and every name of `node` is a
    module-level name the function does not bind itself: the expression reads the same there."""
    function = context.function
    if function is None or function.parent is not None:
        return False
    local = set(function.params) | {
        target.split(".")[0] for occ in context.occurrences if occ.event.targets for target in occ.event.targets
    }
    names = _root_names(node)
    return bool(names) and not (names & local) and names <= set(model.constants) | {"list", "tuple", "itertools"}


def _root_names(node: cst.CSTNode) -> set[str]:
    names: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name):
            names.add(current.value)
        elif isinstance(current, cst.Attribute):
            stack.append(current.value)
        else:
            stack.extend(children(current))
    return names


def _names_only_self(node: cst.CSTNode) -> bool:
    """Every name in `node` is `self` or a builtin it may call: it reads the same in any method."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Name) and current.value not in ("self", "list", "tuple"):
            return False
        if isinstance(current, cst.Attribute):
            stack.append(current.value)  # the attribute's own name is not a variable
            continue
        stack.extend(children(current))
    return True


def _looks_like_param_groups(node: cst.BaseExpression | None) -> bool:
    return isinstance(node, (cst.List, cst.Tuple)) and any(isinstance(e.value, cst.Dict) for e in node.elements)


def _reevaluated(model: FileModel, context, index: int, node: cst.BaseExpression) -> str | None:
    """`node` as text to evaluate again at the step, or None when that may differ or have effects."""
    if isinstance(node, cst.Name):
        value = context.binding(node.value, index)
        if value is None:
            return None
        if _materialised(value) and _pure(model, value):
            return node.value  # a list of parameters: the same list
        if _pure(model, value):
            return _one_line(model, value)  # a generator, consumed by the optimizer: read it again
        return None
    return _one_line(model, node) if _pure(model, node) else None


def _one_line(model: FileModel, node: cst.BaseExpression) -> str | None:
    code = cst.Module([]).code_for_node(node)
    if "#" in code or "\\" in code:
        return None
    return " ".join(code.split())


def _materialised(node: cst.BaseExpression) -> bool:
    """A list or tuple (read as often as needed), not a one-shot generator."""
    if isinstance(node, (cst.List, cst.Tuple, cst.ListComp)):
        return True
    if isinstance(node, cst.BinaryOperation):
        return _materialised(node.left) and _materialised(node.right)
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in ("list", "tuple")


_ITERATOR_CALLS = {"itertools.chain"}


def _pure(model: FileModel, node: cst.BaseExpression) -> bool:
    """Parameters read with no side effect: `.parameters()` of a name or attribute chain, `list`,
    `tuple`, `itertools.chain`, `+`, list and tuple literals (starred too), and a comprehension
    over those filtered by attributes of its item (`if p.requires_grad`)."""
    if isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "parameters":
            return _reference(func.value) and all(
                arg.keyword is not None and arg.keyword.value == "recurse" and isinstance(arg.value, cst.Name)
                for arg in node.args
            )
        arguments = [arg for arg in node.args if arg.keyword is None]
        if len(arguments) != len(node.args) or not arguments:
            return False
        if isinstance(func, cst.Name) and func.value in ("list", "tuple") and len(arguments) == 1:
            return not arguments[0].star and _pure(model, arguments[0].value)
        if model.qualify_call(node) in _ITERATOR_CALLS:
            return all(_pure(model, arg.value) for arg in arguments)
        return False
    if isinstance(node, cst.BinaryOperation):
        return isinstance(node.operator, cst.Add) and _pure(model, node.left) and _pure(model, node.right)
    if isinstance(node, (cst.List, cst.Tuple)):
        return bool(node.elements) and all(
            isinstance(element, (cst.Element, cst.StarredElement)) and _pure(model, element.value)
            for element in node.elements
        )
    if isinstance(node, (cst.ListComp, cst.GeneratorExp)):
        loop = node.for_in
        if loop.inner_for_in is not None or loop.asynchronous is not None:
            return False
        if not (isinstance(loop.target, cst.Name) and isinstance(node.elt, cst.Name)):
            return False
        item = loop.target.value
        return node.elt.value == item and _pure(model, loop.iter) and all(
            _item_attributes(condition.test, item) for condition in loop.ifs
        )
    return False


def _reference(node: cst.BaseExpression) -> bool:
    """A name or an attribute chain (`model`, `self.encoder`), or one indexed by a constant."""
    while True:
        if isinstance(node, cst.Name):
            return True
        if isinstance(node, cst.Attribute):
            node = node.value
        elif isinstance(node, cst.Subscript) and len(node.slice) == 1 and isinstance(
            getattr(node.slice[0].slice, "value", None), cst.Integer
        ):
            node = node.value
        else:
            return False


def _item_attributes(test: cst.BaseExpression, item: str) -> bool:
    """`p.requires_grad`, `not p.requires_grad`, `p.ndim > 1`: reads of the item's attributes."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        return _item_attributes(test.expression, item)
    if isinstance(test, cst.Attribute):
        return isinstance(test.value, cst.Name) and test.value.value == item
    if isinstance(test, cst.Comparison):
        parts = [test.left, *(target.comparator for target in test.comparisons)]
        return all(_item_attributes(part, item) or isinstance(part, (cst.Integer, cst.Float)) for part in parts)
    return False
