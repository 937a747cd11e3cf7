"""Where a backpropagated loss was summed: `reduction="sum"` followed through the project.

A tensor handed to `backward()` is traced back through the assignments of its function (a
division or a `.mean()` on the way normalises it and ends the trace) to a loss built with
`reduction="sum"` (or `size_average=False`):

- called directly (`F.mse_loss(pred, y, reduction="sum")`) or through a criterion bound to a name,
  a module constant, or an attribute of the class (`self.criterion = nn.CrossEntropyLoss(
  reduction="sum")`), also one a base class in another file sets;
- returned by a project function or method (`loss = loss_function(recon, x, mu, logvar)`,
  `loss, logs = self.compute_loss(batch)`), in this file or another: every `return` of it must
  carry the sum;
- passed in as a parameter (`def backward_step(loss): loss.backward()`): the callers' arguments,
  one level up (module functions through the index's call sites, methods through `self.<name>(...)`
  calls of the same class).

Other files are read through the index: their summaries say where a function or class is, and a
file is parsed by libcst only when its text mentions `reduction` or `size_average` (a summed loss
can only come from such a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis.calls import argument_named
from gradlint.analysis.model import FileModel, Function, Kind, enclosing_class, snippet
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import Context, resolve_helper
from gradlint.analysis.values import string_value
from gradlint.analysis.walk import children
from gradlint.index.frameworks.places import context_of, index_of
from gradlint.index.summary import ClassSummary, FunctionSummary

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_DEPTH = 8
_SUMS = (cst.Add, cst.Subtract, cst.Multiply)
_NORMALIZERS = (cst.Divide, cst.FloorDivide)
_NORMALIZING_AUGMENTS = ("DivideAssign", "FloorDivideAssign")
_WORDS = ("reduction", "size_average")


def is_sum_reduced(call: cst.Call) -> bool:
    """`reduction="sum"` or the deprecated `size_average=False`."""
    for arg in call.args:
        if arg.keyword is None:
            continue
        if arg.keyword.value == "reduction" and string_value(arg.value) == "sum":
            return True
        if arg.keyword.value == "size_average" and isinstance(arg.value, cst.Name) and arg.value.value == "False":
            return True
    return False


@dataclass(frozen=True, eq=False)
class SummedLoss:
    path: Path
    node: cst.CSTNode
    """The sum-reduced call (a node of that file's libcst model, or of its summary)."""
    text: str
    """The call, shortened."""
    line: int
    via: tuple[str, ...] = ()
    """How the loss reached the backward: `returned by `loss_function` (line 20)`, ..."""


class LossTracer:
    """Traces the tensors of one checked file's backward calls to a summed loss."""

    def __init__(self, project: "ProjectIndex | None", path: Path, model: FileModel) -> None:
        self.project = project
        self.path = path
        self.model = model

    # ------------------------------------------------------------------ entry

    def source(self, context: Context, expr: cst.BaseExpression | None, before: int) -> SummedLoss | None:
        return self._trace(self.path, context, expr, before, 0)

    # -------------------------------------------------------------- the trace

    def _trace(self, path: Path, context: Context, expr: cst.BaseExpression | None, before: int, depth: int) -> SummedLoss | None:
        if expr is None or depth > MAX_DEPTH:
            return None
        if isinstance(expr, cst.Call):
            return self._call(path, context, expr, before, depth, None)
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, _NORMALIZERS):
                return None
            if isinstance(expr.operator, _SUMS):
                return self._trace(path, context, expr.left, before, depth + 1) or self._trace(
                    path, context, expr.right, before, depth + 1
                )
            return None
        if isinstance(expr, (cst.Name, cst.Attribute)):
            return self._name(path, context, expr, before, depth)
        return None

    def _name(self, path: Path, context: Context, expr: cst.Name | cst.Attribute, before: int, depth: int) -> SummedLoss | None:
        name = dotted_name(expr)
        if name is None:
            return None
        assignment = _latest_assignment(context, name, before)
        if assignment is None:
            if isinstance(expr, cst.Name):
                return self._parameter(path, context, name, depth)
            return None
        event = assignment.event
        if event.augmented is not None:
            if event.augmented in _NORMALIZING_AUGMENTS:
                return None
            return self._trace(path, context, event.value, assignment.index, depth + 1) or self._trace(
                path, context, expr, assignment.index, depth + 1
            )
        if event.targets == (name,):
            return self._trace(path, context, event.value, assignment.index, depth + 1)
        # `loss, logs = self.compute_loss(batch)`: the element of what the callee returns.
        node = event.node
        if isinstance(event.value, cst.Call) and isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = node.targets[0].target
            if isinstance(target, (cst.Tuple, cst.List)):
                for position, element in enumerate(target.elements):
                    if dotted_name(element.value) == name:
                        return self._call(path, context, event.value, assignment.index, depth + 1, position)
        return None

    def _call(
        self, path: Path, context: Context, call: cst.Call, before: int, depth: int, element: int | None
    ) -> SummedLoss | None:
        func = call.func
        if element is None:
            if isinstance(func, cst.Attribute) and func.attr.value == "mean":
                return None
            if is_sum_reduced(call):
                return self._found(path, context.model, call)
        callee = dotted_name(func)
        if not callee:
            return None
        if element is None:
            bound = context.binding(callee, before)
            if isinstance(bound, cst.Call) and is_sum_reduced(bound):
                return self._found(path, context.model, bound, f"as `{callee}`" if callee.startswith("self.") else "")
            if bound is None and callee.startswith("self.") and callee.count(".") == 1:
                inherited = self._inherited_attribute(path, context, callee[5:])
                if inherited is not None:
                    return inherited
            if bound is not None:
                return None  # a criterion bound to something else: a module, a mean-reduced loss
        return self._returned(path, context, callee, depth, element)

    # ------------------------------------------------------- criterion attributes

    def _inherited_attribute(self, path: Path, context: Context, attribute: str) -> SummedLoss | None:
        """`self.criterion` set by a base class of another file."""
        if self.project is None:
            return None
        owner = enclosing_class(context.function, context.model)
        if owner is None:
            return None
        for base in owner.bases:
            symbol = self._base(path, base)
            found = self._class_attribute(symbol, attribute, 0)
            if found is not None:
                return found
        return None

    def _class_attribute(self, symbol, attribute: str, depth: int) -> SummedLoss | None:
        if symbol is None or symbol.kind != "class" or not isinstance(symbol.target, ClassSummary) or depth > 4:
            return None
        info = symbol.target
        span = info.attribute_values.get(attribute)
        if span is not None:
            value = symbol.summary.expression(span)
            if isinstance(value, cst.Call) and is_sum_reduced(value):
                text = snippet_text(value)
                line = symbol.summary.line_of(value) or span[0]
                return SummedLoss(symbol.path, value, text, line, (f"as `self.{attribute}`",))
            return None
        for base in info.bases:
            inner = self._base(symbol.path, base)
            found = self._class_attribute(inner, attribute, depth + 1)
            if found is not None:
                return found
        return None

    # ---------------------------------------------------------- returned losses

    def _returned(self, path: Path, context: Context, callee: str, depth: int, element: int | None) -> SummedLoss | None:
        """The loss a project function or method returns (every return must carry it)."""
        located = self._function(path, context, callee)
        if located is None:
            return None
        target_path, target_model, function = located
        inner = context_of(target_model, function)
        if inner is None:
            return None
        found_returns = returns(function.node)
        if not found_returns:
            return None
        found = None
        for node in found_returns:
            value = node.value
            if element is not None:
                if not isinstance(value, cst.Tuple) or element >= len(value.elements):
                    return None
                value = value.elements[element].value
            summed = self._trace(target_path, inner, value, index_of(inner, node), depth + 1)
            if summed is None:
                return None
            found = found or summed
        line = _line(self.project, target_path, target_model, function.node)
        at = f"line {line}" if target_path == self.path else self._where(target_path, line)
        return SummedLoss(found.path, found.node, found.text, found.line, (f"returned by `{function.name}` ({at})", *found.via))

    def _function(self, path: Path, context: Context, callee: str) -> tuple[Path, FileModel, Function] | None:
        helper = resolve_helper(context.model, context.function, callee)
        if helper is not None:
            return path, context.model, helper
        if self.project is None:
            return None
        receiver, _, attribute = callee.rpartition(".")
        if receiver in ("self", "cls"):
            owner = enclosing_class(context.function, context.model)
            if owner is None:
                return None
            for base in owner.bases:
                symbol = self._base(path, base)
                found = self._inherited_method(symbol, attribute, 0)
                if found is not None:
                    return found
            return None
        if receiver:
            return None
        symbol = self.project.resolve_callee(path, callee)
        if symbol is None or symbol.kind != "function" or not isinstance(symbol.target, FunctionSummary):
            return None
        return self._parsed_function(symbol.path, symbol.summary, symbol.target)

    def _inherited_method(self, symbol, name: str, depth: int) -> tuple[Path, FileModel, Function] | None:
        if symbol is None or symbol.kind != "class" or not isinstance(symbol.target, ClassSummary) or depth > 4:
            return None
        info = symbol.target
        if name in info.methods:
            return self._parsed_function(symbol.path, symbol.summary, info.methods[name])
        for base in info.bases:
            inner = self._base(symbol.path, base)
            found = self._inherited_method(inner, name, depth + 1)
            if found is not None:
                return found
        return None

    def _parsed_function(self, path: Path, summary, function: FunctionSummary) -> tuple[Path, FileModel, Function] | None:
        """Another file's function in its libcst model: parsed only when the file can hold a summed loss."""
        if not any(word in summary.text for word in _WORDS):
            return None
        model = self.project.model(path)
        if model is None:
            return None
        found = next((f for f in model.all_functions if f.key == function.key), None)
        return (path, model, found) if found is not None else None

    # ------------------------------------------------------------ parameters

    def _parameter(self, path: Path, context: Context, name: str, depth: int) -> SummedLoss | None:
        """A loss passed in: what the callers of the function pass for this parameter (one level)."""
        function = context.function
        if function is None or name not in function.params or depth > 2:
            return None
        positional = [p for p in function.params]
        if function.class_name is not None and positional and positional[0] in ("self", "cls"):
            positional = positional[1:]
        for caller_path, caller_context, call in self._callers(path, context.model, function):
            argument = argument_named(call, positional, name)
            if argument is None:
                continue
            summed = self._trace(caller_path, caller_context, argument, index_of(caller_context, call), depth + 2)
            if summed is not None:
                line = _line(self.project, caller_path, caller_context.model, call)
                at = f"line {line}" if caller_path == self.path else self._where(caller_path, line)
                return SummedLoss(summed.path, summed.node, summed.text, summed.line, (f"passed to `{function.name}` at {at}", *summed.via))
        return None

    def _callers(self, path: Path, model: FileModel, function: Function):
        """(path, context, call) for each call of `function`: `self.<name>(...)` in the same class, or
        any call the index resolves to a module-level function."""
        if function.class_name is not None:
            info = model.classes.get(function.class_name)
            if info is None or info.methods.get(function.name) is not function:
                return
            methods = {id(method) for method in info.methods.values()}
            for site in model.calls:
                if site.callee == f"self.{function.name}" and site.function is not None and id(site.function) in methods:
                    context = context_of(model, site.function)
                    if context is not None:
                        yield path, context, site.node
            return
        if function.parent is not None or self.project is None:
            return
        symbol = self.project.resolve(path, function.name)
        if symbol is None or symbol.kind != "function":
            return
        for caller_path, site in self.project.call_sites(symbol):
            found = self.project.model_call(caller_path, site)
            if found is None:
                continue
            caller_model, call_site = found
            context = context_of(caller_model, call_site.function)
            if context is not None:
                yield caller_path, context, call_site.node

    def _base(self, path: Path, base: str):
        """A base class as the class statement names it (bases are qualified through imports)."""
        if not base:
            return None
        return self.project.resolve_callee(path, base) or self.project.resolve_qualified(path, base)

    # ---------------------------------------------------------------- results

    def _found(self, path: Path, model: FileModel, call: cst.Call, via: str = "") -> SummedLoss:
        line = _line(self.project, path, model, call)
        return SummedLoss(path, call, snippet(model.module, call, limit=50), line, (via,) if via else ())

    def _where(self, path: Path, line: int) -> str:
        return self.project.where(path, line) if self.project is not None else f"{path.name}:{line}"


def _latest_assignment(context: Context, name: str, before: int):
    for occ in reversed(context.occurrences[:before]):
        if occ.kind is Kind.ASSIGN and name in occ.event.targets:
            return occ
    return None


def returns(function: cst.FunctionDef) -> list[cst.Return]:
    """The `return <value>` statements of the function's own body."""
    found: list[cst.Return] = []
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            continue
        if isinstance(node, cst.Return):
            if node.value is not None:
                found.append(node)
            continue
        if isinstance(node, cst.BaseExpression):
            continue
        stack.extend(children(node))
    return found


def _line(project, path: Path, model: FileModel, node: cst.CSTNode) -> int:
    if project is not None:
        return project.line_of(path, node)
    return 0


def snippet_text(node: cst.CSTNode, limit: int = 50) -> str:
    text = " ".join(cst.Module([]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
