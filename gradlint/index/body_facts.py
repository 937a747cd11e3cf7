"""What one function's own body does to gradients, read from CPython's tree for its summary.

These are the facts other files ask about a function they call (gradlint.index.behaviour
follows them through calls, across files): does it clip gradients (a known clip API, or an
in-place change of `.grad` that clips), clear them, detach a tensor, run a backward or an
optimizer step, unscale AMP gradients; what does it return. The judgement of an in-place
gradient change is the one `gradlint.analysis.gradients` makes on the libcst model of a
checked file (tests/test_summary.py holds the two to the same answers).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Callable, Iterator

from gradlint.analysis import vocabulary as vocab
from gradlint.index.syntax import Span, dotted, span_of

_NESTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


@dataclass(eq=False, slots=True)
class BodyFacts:
    clips: list[tuple[int, str]] = field(default_factory=list)
    """(line, what) of each call that clips gradients: a known clip API (`clip_grad_norm_`) or an
    in-place change of gradients that clips (`p.grad.clamp_`, `p.grad.mul_(clip_coef)`)."""
    zeroes: bool = False
    """Clears gradients: `zero_grad()`, `p.grad = None`, `p.grad.zero_()`, `_foreach_zero_`."""
    detaches: bool = False
    """Calls `.detach()` / `.detach_()` or reads `.data`."""
    backward: bool = False
    """Runs a backward on a tensor (`loss.backward()`, `torch.autograd.backward`)."""
    steps: tuple[str, ...] = ()
    """Receivers of `.step()` calls (`self.optimizer`, `opt`)."""
    unscales: bool = False
    uses_grad: bool = False
    """Reads or writes `.grad` or `param_groups` (a hand-written optimizer's `step()` does)."""
    returns: list[Span] = field(default_factory=list)
    """The values of the function's own `return` statements."""
    yields: bool = False
    """A generator function: calling it returns a one-shot iterator."""
    wraps_in_fsdp: list[tuple[str, int]] = field(default_factory=list)
    """(parameter, line): the function wraps a parameter, or its children, in FSDP in place
    (`setattr(model, name, FSDP(child))`, `model.encoder = FSDP(model.encoder)`)."""


def own_nodes(statements: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of a body except those inside nested functions, classes and lambdas."""
    stack: list[ast.AST] = list(reversed(statements))
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, _NESTED):
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))


def identifiers(node: ast.AST) -> list[str]:
    """The names and attribute names an expression mentions (`self.max_norm` -> self, max_norm)."""
    found: list[str] = []
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name):
            found.append(inner.id)
        elif isinstance(inner, ast.Attribute):
            found.append(inner.attr)
    return found


def body_facts(function: ast.FunctionDef | ast.AsyncFunctionDef, qualify: Callable[[str | None], str | None]) -> BodyFacts:
    facts = BodyFacts()
    nodes = list(own_nodes(function.body))
    bindings: dict[str, list[ast.expr]] = {}
    grad_names: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in _names(target):
                    bindings.setdefault(name, []).append(node.value)
                    if _mentions_grad(node.value, grad_names):
                        grad_names.add(name)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            if _mentions_grad(node.iter, grad_names):
                grad_names.update(_names(node.target))
    params = {arg.arg for arg in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)}
    steps: list[str] = []
    for node in nodes:
        if isinstance(node, ast.Call):
            _call(node, facts, qualify, bindings, grad_names, steps, params)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "grad"
                    and isinstance(node.value, ast.Constant)
                    and node.value.value is None
                ):
                    facts.zeroes = True
                _fsdp_attribute(target, node.value, qualify, params, facts)
        elif isinstance(node, ast.Attribute) and node.attr == "data" and isinstance(node.ctx, ast.Load):
            facts.detaches = True
        if isinstance(node, ast.Attribute) and node.attr in ("grad", "param_groups"):
            facts.uses_grad = True
        elif isinstance(node, ast.Return) and node.value is not None:
            facts.returns.append(span_of(node.value))
        elif isinstance(node, (ast.Yield, ast.YieldFrom)):
            facts.yields = True
    facts.steps = tuple(steps)
    return facts


def _names(target: ast.AST) -> list[str]:
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _names(element)]
    if isinstance(target, ast.Starred):
        return _names(target.value)
    name = dotted(target) if isinstance(target, (ast.Name, ast.Attribute)) else None
    return [name] if name else []


def _mentions_grad(node: ast.AST, grad_names: set[str]) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Attribute) and vocab.is_grad_text(inner.attr):
            return True
        if isinstance(inner, ast.Name) and (inner.id in grad_names or vocab.is_grad_text(inner.id)):
            return True
    return False


def _depends_on_norm(node: ast.AST, bindings: dict[str, list[ast.expr]], depth: int = 0) -> bool:
    """A factor computed from a norm or a clip threshold (`max_norm / (total_norm + 1e-6)`),
    following the function's own assignments a few steps."""
    if depth > 4:
        return False
    for name in identifiers(node):
        if vocab.NORM_WORDS.search(name):
            return True
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and inner.id in bindings:
            if any(_depends_on_norm(value, bindings, depth + 1) for value in bindings[inner.id] if value is not node):
                return True
    return False


def _call(
    call: ast.Call,
    facts: BodyFacts,
    qualify: Callable[[str | None], str | None],
    bindings: dict[str, list[ast.expr]],
    grad_names: set[str],
    steps: list[str],
    params: set[str],
) -> None:
    func = call.func
    spelled = dotted(func)
    qualified = qualify(spelled)
    line = call.lineno
    if qualified in vocab.CLIP_FUNCTIONS:
        facts.clips.append((line, qualified.rsplit(".", 1)[-1]))
        return
    if qualified == "torch.autograd.backward":
        facts.backward = True
        return
    if qualified == "torch._foreach_zero_":
        facts.zeroes = True
        return
    if qualified in vocab.FOREACH_SCALINGS and call.args:
        if _mentions_grad(call.args[0], grad_names) and (
            "clamp" in qualified or (len(call.args) > 1 and _depends_on_norm(call.args[1], bindings))
        ):
            facts.clips.append((line, qualified.rsplit(".", 1)[-1]))
        return
    if _multi_tensor_scale(call, bindings, grad_names):
        facts.clips.append((line, "multi_tensor_scale"))
        return
    if isinstance(func, ast.Name) and func.id == "setattr" and len(call.args) == 3:
        holder = call.args[0]
        if isinstance(holder, ast.Name) and holder.id in params and _is_fsdp_value(call.args[2], qualify, bindings):
            facts.wraps_in_fsdp.append((holder.id, line))
        return
    if not isinstance(func, ast.Attribute):
        return
    attr = func.attr
    receiver = dotted(func.value)
    if attr == "backward":
        facts.backward = True
    elif attr == "step" and receiver:
        if receiver not in steps:
            steps.append(receiver)
    elif attr in vocab.CLIP_METHODS:
        facts.clips.append((line, attr))
    elif attr in ("unscale_", "unscale_gradients"):
        facts.unscales = True
    elif attr == "zero_grad" or (attr == "zero_" and receiver and receiver.endswith((".grad", ".grad.data"))):
        facts.zeroes = True
    elif attr in ("detach", "detach_"):
        facts.detaches = True
    elif attr in vocab.GRAD_CLAMPS and _mentions_grad(func.value, grad_names):
        facts.clips.append((line, attr))
    elif attr in vocab.GRAD_SCALINGS and _mentions_grad(func.value, grad_names) and call.args:
        if _depends_on_norm(call.args[0], bindings):
            facts.clips.append((line, attr))


def _multi_tensor_scale(call: ast.Call, bindings: dict[str, list[ast.expr]], grad_names: set[str]) -> bool:
    """`multi_tensor_applier(amp_C.multi_tensor_scale, buf, [grads, grads], clip_coef)`."""
    parts = [call.func, *call.args]
    if not any(vocab.MULTI_TENSOR_SCALE.search(dotted(part) or "") for part in parts):
        return False
    tensors = [arg for arg in call.args if isinstance(arg, (ast.List, ast.Tuple))]
    if not tensors or not _mentions_grad(tensors[0], grad_names):
        return False
    return len(call.args) > 1 and _depends_on_norm(call.args[-1], bindings)


def _is_fsdp_value(node: ast.expr, qualify, bindings: dict[str, list[ast.expr]], depth: int = 0) -> bool:
    if depth > 3:
        return False
    if isinstance(node, ast.Call):
        qualified = qualify(dotted(node.func))
        return qualified in vocab.FSDP_WRAPPERS
    if isinstance(node, ast.Name):
        return any(_is_fsdp_value(value, qualify, bindings, depth + 1) for value in bindings.get(node.id, ()))
    return False


def _fsdp_attribute(target: ast.AST, value: ast.expr, qualify, params: set[str], facts: BodyFacts) -> None:
    """`model.encoder = FSDP(model.encoder)` where `model` is a parameter."""
    if not isinstance(target, ast.Attribute):
        return
    head = target.value
    while isinstance(head, ast.Attribute):
        head = head.value
    if isinstance(head, ast.Name) and head.id in params and head.id not in ("self", "cls"):
        if _is_fsdp_value(value, qualify, {}):
            facts.wraps_in_fsdp.append((head.id, target.lineno))
