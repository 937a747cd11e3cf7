"""In-place changes of gradients that clip them, judged on the libcst model of a checked file.

`p.grad.clamp_(-c, c)` clips; `p.grad.data.mul_(clip_coef)` clips when the factor comes from a
norm or a clip threshold (`clip_coef = max_norm / (total_norm + 1e-6)`), and does not when it
unscales AMP gradients (`p.grad.mul_(1 / loss_scale)`); so do `torch._foreach_mul_(grads, coef)`
and apex's `multi_tensor_applier(amp_C.multi_tensor_scale, buf, [grads, grads], clip_coef)`.
The same judgement reads other files' summaries (gradlint.index.body_facts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import walk


@dataclass(eq=False)
class Frame:
    """What the builder has seen of one function body so far."""

    bindings: dict[str, list[cst.BaseExpression]] = field(default_factory=dict)
    grad_names: set[str] = field(default_factory=set)
    """Local names bound to gradients (`grads = [p.grad for p in params]`, `for g in grads`)."""

    def bind(self, names: list[str], value: cst.BaseExpression | None) -> None:
        if value is None:
            return
        for name in names:
            self.bindings.setdefault(name, []).append(value)
            if mentions_grad(value, self.grad_names):
                self.grad_names.add(name)

    def iterate(self, names: list[str], iterable: cst.BaseExpression) -> None:
        if mentions_grad(iterable, self.grad_names):
            self.grad_names.update(names)


def identifiers(node: cst.CSTNode) -> list[str]:
    found: list[str] = []
    for inner in walk(node):
        if isinstance(inner, cst.Name):
            found.append(inner.value)
    return found


def mentions_grad(node: cst.CSTNode, grad_names: set[str]) -> bool:
    for inner in walk(node):
        if isinstance(inner, cst.Name) and (inner.value in grad_names or vocab.is_grad_text(inner.value)):
            return True
    return False


def depends_on_norm(node: cst.CSTNode, frame: Frame, depth: int = 0) -> bool:
    if depth > 4:
        return False
    names = identifiers(node)
    if any(vocab.NORM_WORDS.search(name) for name in names):
        return True
    for name in names:
        for value in frame.bindings.get(name, ()):
            if value is not node and depends_on_norm(value, frame, depth + 1):
                return True
    return False


def clipping_change(call: cst.Call, qualified: str | None, frame: Frame) -> str | None:
    """The operation's name when this call changes gradients in place in a way that clips them
    (`clamp_`, `mul_` by a clip coefficient, `_foreach_mul_`, `multi_tensor_scale`), else None."""
    func = call.func
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    if qualified in vocab.FOREACH_SCALINGS and positional:
        if mentions_grad(positional[0], frame.grad_names) and (
            "clamp" in qualified or (len(positional) > 1 and depends_on_norm(positional[1], frame))
        ):
            return qualified.rsplit(".", 1)[-1]
        return None
    if any(vocab.MULTI_TENSOR_SCALE.search(dotted_name(part) or "") for part in (func, *positional)):
        tensors = [arg for arg in positional if isinstance(arg, (cst.List, cst.Tuple))]
        if tensors and mentions_grad(tensors[0], frame.grad_names) and len(positional) > 1:
            if depends_on_norm(positional[-1], frame):
                return "multi_tensor_scale"
        return None
    if not isinstance(func, cst.Attribute):
        return None
    attr = func.attr.value
    if attr in vocab.GRAD_CLAMPS and mentions_grad(func.value, frame.grad_names):
        return attr
    if attr in vocab.GRAD_SCALINGS and positional and mentions_grad(func.value, frame.grad_names):
        if depends_on_norm(positional[0], frame):
            return attr
    return None
