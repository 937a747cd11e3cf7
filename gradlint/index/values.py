"""Value resolution across a project: what number `args.nlayers` or `cfg.lr` stands for.

Resolves literals, module and class constants (imported ones too), simple arithmetic,
function default arguments, constructor call sites, argparse defaults, dataclass field
defaults, dict configs and `getattr(cfg, "x", default)`. Anything else is unresolved:
`resolve` returns None and rules stay quiet rather than guess.

Names are looked up in the scopes file summaries describe (gradlint.index.summary): a value in
another file costs a lookup and the parse of that one expression, never the parse of its file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import libcst as cst

from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.names import dotted_name
from gradlint.analysis import values as arithmetic
from gradlint.analysis.values import INF_NAMES, NAN_NAMES
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_DEPTH = 12
MAX_REACHABLE = 200
"""How many imported files an argparse lookup may read (the nearest first)."""

_PARSE_ARGS = ("parse_args", "parse_known_args", "parse_intermixed_args")
_ARGS_NAMES = {"args", "opt", "opts", "options", "flags", "hparams", "hp", "params", "config", "cfg", "FLAGS"}


@dataclass(frozen=True)
class Scope:
    """Where an expression is evaluated: its file, and the function it sits in (if any).
    Make one with `ProjectIndex.scope(path, function)`."""

    path: Path
    summary: FileSummary
    function: FunctionSummary | None = None

    def expression(self, span) -> cst.BaseExpression | None:
        return self.summary.expression(span)


class Origin:
    """Where a value came from, written only when a message needs it.

    Most resolved values never reach a message, so their origin is not written until one does.
    """

    def __init__(self, describe: Callable[[], str]) -> None:
        self._describe = describe
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._describe()
        return self._text

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __contains__(self, part: str) -> bool:
        return part in str(self)

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return repr(str(self))


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: "str | Origin" = ""
    """Where the value came from; `origin` writes it out on first use."""

    @property
    def origin(self) -> str:
        return str(self.source)
    """How the value was found, for messages: `argparse default of --nlayers (train.py:14)`."""


class Resolver:
    def __init__(self, project: "ProjectIndex") -> None:
        self.project = project

    def resolve(self, node: cst.BaseExpression | None, scope: Scope, depth: int = 0) -> Resolved | None:
        if node is None or depth > MAX_DEPTH:
            return None
        try:
            return self._resolve(node, scope, depth + 1)
        except (ArithmeticError, ValueError, TypeError, OverflowError):
            return None

    def value(self, node: cst.BaseExpression | None, scope: Scope) -> Any:
        resolved = self.resolve(node, scope)
        return None if resolved is None else resolved.value

    # ------------------------------------------------------------------ dispatch

    def _resolve(self, node: cst.BaseExpression, scope: Scope, depth: int) -> Resolved | None:
        value = arithmetic.literal(node)
        if value is not None:
            return Resolved(value)
        # Operators and pure functions: the one constant arithmetic (gradlint.analysis.values).
        if isinstance(node, cst.UnaryOperation):
            inner = self.resolve(node.expression, scope, depth)
            if inner is None:
                return None
            value = arithmetic.unary(node.operator, inner.value)
            return None if value is None else replace(inner, value=value)
        if isinstance(node, cst.BinaryOperation):
            left, right = self.resolve(node.left, scope, depth), self.resolve(node.right, scope, depth)
            if left is None or right is None:
                return None
            value = arithmetic.binary(node.operator, left.value, right.value)
            return None if value is None else Resolved(value, left.source or right.source)
        if isinstance(node, cst.Comparison):
            return self._comparison(node, scope, depth)
        if isinstance(node, cst.BooleanOperation):
            left = self.resolve(node.left, scope, depth)
            if left is None:
                return None
            if arithmetic.short_circuits(node.operator, left.value):
                return left  # the right side is never evaluated
            return self.resolve(node.right, scope, depth)
        if isinstance(node, (cst.Tuple, cst.List)):
            values = [self.resolve(element.value, scope, depth) for element in node.elements]
            if any(value is None for value in values):
                return None
            return Resolved(tuple(value.value for value in values if value is not None))
        if isinstance(node, cst.Dict):
            return Resolved(self._dict(node, scope, depth))
        if isinstance(node, cst.Name):
            return self._name(node.value, scope, depth)
        if isinstance(node, cst.Attribute):
            return self._attribute(node, scope, depth)
        if isinstance(node, cst.Subscript):
            return self._subscript(node, scope, depth)
        if isinstance(node, cst.Call):
            return self._call(node, scope, depth)
        return None

    def _comparison(self, node: cst.Comparison, scope: Scope, depth: int) -> Resolved | None:
        left = self.resolve(node.left, scope, depth)
        if left is None:
            return None
        source = left.source
        for target in node.comparisons:
            right = self.resolve(target.comparator, scope, depth)
            if right is None:
                return None
            outcome = arithmetic.compare(target.operator, left.value, right.value)
            if outcome is None:
                return None
            source = source or right.source
            if not outcome:
                return Resolved(False, source)
            left = right
        return Resolved(True, source)

    def _dict(self, node: cst.Dict, scope: Scope, depth: int) -> dict:
        result: dict = {}
        for element in node.elements:
            if not isinstance(element, cst.DictElement):
                continue
            key = self.resolve(element.key, scope, depth)
            if key is None:
                continue
            value = self.resolve(element.value, scope, depth)
            result[key.value] = Unresolved(element.value, scope) if value is None else value.value
        return result

    # --------------------------------------------------------------------- names

    def _name(self, name: str, scope: Scope, depth: int) -> Resolved | None:
        if name in ("True", "False", "None"):
            return Resolved({"True": True, "False": False, "None": None}[name])
        qualified = scope.summary.qualify(name)
        if qualified in INF_NAMES:
            return Resolved(math.inf)
        if qualified in NAN_NAMES:
            return Resolved(math.nan)
        function = scope.function
        while function is not None:
            assigned = function.bindings.get(name)
            if assigned is not None:
                return self.resolve(scope.expression(assigned), Scope(scope.path, scope.summary, function), depth)
            if name in function.param_names:
                return self._parameter(function, name, scope, depth)
            function = function.parent
        symbol = self.project.resolve(scope.path, name)
        if symbol is not None and symbol.kind == "value" and isinstance(symbol.target, tuple):
            target = symbol.target
            resolved = self.resolve(symbol.summary.expression(target), Scope(symbol.path, symbol.summary), depth)
            if resolved is not None and not resolved.source:
                origin = Origin(lambda: f"{symbol.name} = ... ({self.project.where(symbol.path, target)})")
                return replace(resolved, source=origin)
            return resolved
        return None

    def _parameter(self, function: FunctionSummary, name: str, scope: Scope, depth: int) -> Resolved | None:
        """A parameter's value: what a call site in the project passes, else its default."""
        param = function.param(name)
        if param is None:
            return None
        passed_unknown = False
        for site_path, site_summary, call, caller in self._call_sites(function, scope):
            argument = argument_for(function, name, call) if isinstance(call, cst.Call) else None
            if argument is None:
                continue
            resolved = self.resolve(argument, Scope(site_path, site_summary, caller), depth)
            if resolved is not None:
                origin = resolved.source or Origin(lambda path=site_path, call=call: f"passed at {self.project.where(path, call)}")
                return replace(resolved, source=origin)
            passed_unknown = True
        if passed_unknown:
            return None  # a caller passes a value we cannot see: the default would be a guess
        if param.default is not None:
            default = param.default
            resolved = self.resolve(scope.expression(default), Scope(scope.path, scope.summary, function.parent), depth)
            if resolved is not None and not resolved.source:
                origin = Origin(lambda: f"default of {name} ({self.project.where(scope.path, default)})")
                return replace(resolved, source=origin)
            return resolved
        return None

    def _call_sites(self, function: FunctionSummary, scope: Scope):
        symbol = self.project.callable_symbol(scope.path, function)
        if symbol is None:
            return []
        found = []
        for path, site in self.project.call_sites(symbol):
            summary = self.project.summary(path)
            if summary is not None:
                found.append((path, summary, summary.expression(site.span), site.function))
        return found

    # ---------------------------------------------------------------- attributes

    def _attribute(self, node: cst.Attribute, scope: Scope, depth: int) -> Resolved | None:
        qualified = scope.summary.qualify(dotted_name(node))
        if qualified in INF_NAMES:
            return Resolved(math.inf)
        if qualified in NAN_NAMES:
            return Resolved(math.nan)
        attribute = node.attr.value
        base = node.value
        base_name = dotted_name(base)
        if base_name == "self" and scope.function is not None:
            return self._self_attribute(attribute, scope, depth)
        # A module attribute (`config.BPTT`) or a class constant (`Defaults.LR`).
        if base_name is not None:
            symbol = self.project.resolve_callee(scope.path, base_name)
            if symbol is not None and symbol.kind == "module":
                inner = self.project.resolve(symbol.path, attribute)
                if inner is not None and inner.kind == "value" and isinstance(inner.target, tuple):
                    return self.resolve(inner.summary.expression(inner.target), Scope(inner.path, inner.summary), depth)
                return None
            if symbol is not None and symbol.kind == "class" and isinstance(symbol.target, ClassSummary):
                return self._class_value(symbol.target, attribute, symbol.path, depth)
        # `args.x` from argparse, `cfg.x` from a dataclass instance.
        bound = base if isinstance(base, cst.Call) else self._binding(base, scope)
        if isinstance(bound, cst.Call):
            callee = dotted_name(bound.func) or ""
            if callee.rsplit(".", 1)[-1] in _PARSE_ARGS:
                parser = bound.func.value if isinstance(bound.func, cst.Attribute) else None
                return self._argparse(attribute, scope, depth, self._parser_files(parser, scope))
            if isinstance(bound.func, (cst.Subscript,)):
                return None
            symbol = self.project.resolve_callee(scope.path, callee) if callee else None
            if symbol is not None and symbol.kind == "class" and isinstance(symbol.target, ClassSummary):
                passed = kwarg_value(bound, attribute)
                if passed is not None:
                    return self.resolve(passed, scope, depth)
                return self._class_value(symbol.target, attribute, symbol.path, depth)
            if symbol is not None and symbol.kind == "function" and _parses_arguments(symbol.target, symbol.summary):
                # `args = get_args()`: a project function that parses the command line.
                return self._argparse(attribute, scope, depth, [symbol.path])
            return None
        if bound is None and isinstance(base, cst.Name):
            passed = self._through_parameter(base.value, attribute, scope, depth)
            if passed is not False:
                return passed  # type: ignore[return-value]
            if base.value in _ARGS_NAMES:
                return self._argparse(attribute, scope, depth)
        return None

    def _through_parameter(self, name: str, attribute: str, scope: Scope, depth: int) -> "Resolved | None | bool":
        """`args.lr` where `args` is a parameter: `<what the caller passes>.lr` at the call sites
        (`train(args)` in `main()` after `args = parser.parse_args()`); False when the function has
        no such parameter or no call site passes it."""
        function = scope.function
        while function is not None and name not in function.param_names:
            if name in function.assigned:
                return False
            function = function.parent
        if function is None or function.param(name) is None:
            return False
        passed = False
        for site_path, site_summary, call, caller in self._call_sites(function, Scope(scope.path, scope.summary, function)):
            argument = argument_for(function, name, call) if isinstance(call, cst.Call) else None
            if argument is None:
                continue
            passed = True
            found = self.resolve(cst.Attribute(value=argument, attr=cst.Name(attribute)), Scope(site_path, site_summary, caller), depth)
            if found is not None:
                return found
        return None if passed else False

    def _parser_files(self, parser: cst.BaseExpression | None, scope: Scope) -> list[Path]:
        """The files that build the parser `parser.parse_args()` reads: the project function that
        returned it (`parser = get_argument_parser()` from utils.py), else none known."""
        bound = self._binding(parser, scope) if isinstance(parser, cst.Name) else parser
        if isinstance(bound, cst.Call):
            callee = dotted_name(bound.func)
            symbol = self.project.resolve_callee(scope.path, callee) if callee else None
            if symbol is not None and symbol.kind == "function":
                return [symbol.path]
        return []

    def _self_attribute(self, attribute: str, scope: Scope, depth: int) -> Resolved | None:
        function = scope.function
        while function is not None and function.class_name is None:
            function = function.parent
        if function is None:
            return None
        info = scope.summary.classes.get(function.class_name or "")
        if info is None:
            return None
        if attribute in info.attribute_values:
            where = info.attribute_functions.get(attribute, function)
            value = scope.expression(info.attribute_values[attribute])
            return self.resolve(value, Scope(scope.path, scope.summary, where), depth)
        return self._class_value(info, attribute, scope.path, depth)

    def _class_value(self, info: ClassSummary, attribute: str, path: Path, depth: int) -> Resolved | None:
        summary = self.project.summary(path)
        if summary is None or attribute not in info.class_values:
            return None
        span = info.class_values[attribute]
        resolved = self.resolve(summary.expression(span), Scope(path, summary), depth)
        if resolved is not None and not resolved.source:
            return replace(resolved, source=Origin(lambda: f"{info.name}.{attribute} ({self.project.where(path, span)})"))
        return resolved

    def _argparse(self, dest: str, scope: Scope, depth: int, parser_files: "list[Path] | None" = None) -> Resolved | None:
        """`args.dest`: the default of the matching add_argument in the script itself, then in the
        files that build its parser (a project function that returns it), then in the files the
        script reaches through its imports, nearest first. Never in an unrelated file of the
        project: a wrong default is worse than none."""
        found = self._argparse_in(scope.path, scope.summary, dest, depth)
        if found is not False:
            return found  # type: ignore[return-value]
        candidates = [*(parser_files or []), *self._reachable(scope.path)]
        for path in candidates:
            if path == scope.path:
                continue
            summary = self.project.summary(path)
            found = self._argparse_in(path, summary, dest, depth) if summary is not None else False
            if found is not False:
                return found  # type: ignore[return-value]
        return None

    def _reachable(self, path: Path) -> list[Path]:
        """The project files `path` imports, directly or through the files it imports, nearest
        first (at most `MAX_REACHABLE`)."""

        def build() -> list[Path]:
            order: list[Path] = []
            seen = {path}
            frontier = [path]
            while frontier and len(order) < MAX_REACHABLE:
                next_frontier: list[Path] = []
                for current in frontier:
                    summary = self.project.summary(current)
                    if summary is None:
                        continue
                    for file in self._imported_files(current, summary):
                        if file not in seen:
                            seen.add(file)
                            order.append(file)
                            next_frontier.append(file)
                frontier = next_frontier
            return order[:MAX_REACHABLE]

        return self.project.deps.memo(self.project.lasting_table("values.reachable"), str(path), build)

    def _imported_files(self, path: Path, summary: FileSummary) -> list[Path]:
        files: list[Path] = []
        for target in summary.imports.values():
            symbol = self.project.resolve_qualified(path, target)
            if symbol is not None and symbol.path != path:
                files.append(symbol.path)
        for module in summary.star_imports:
            level = len(module) - len(module.lstrip("."))
            file = self.project.module_path(path, module[level:], level)
            if file is not None and file != path:
                files.append(file)
        return files

    def _argparse_in(self, path: Path, summary: FileSummary, dest: str, depth: int) -> "Resolved | None | bool":
        """The option's default in one file; False when the file does not define it."""
        argument = summary.argparse.get(dest)
        if argument is None:
            return False
        origin = Origin(lambda: f"argparse default of {argument.option} ({self.project.where(path, argument.call)})")
        if argument.default is None:
            return Resolved(argument.implicit_default, origin)
        resolved = self.resolve(summary.expression(argument.default), Scope(path, summary), depth)
        if resolved is None:
            return None
        return Resolved(resolved.value, origin)

    def _binding(self, base: cst.BaseExpression, scope: Scope) -> cst.BaseExpression | None:
        """The expression a bare name is assigned from, in its function or at module level."""
        if not isinstance(base, cst.Name):
            return None
        function = scope.function
        while function is not None:
            assigned = function.bindings.get(base.value)
            if assigned is not None:
                return scope.expression(assigned)
            if base.value in function.param_names:
                return None
            function = function.parent
        span = scope.summary.constants.get(base.value)
        return scope.expression(span) if span is not None else None

    # --------------------------------------------------------- subscripts, calls

    def _subscript(self, node: cst.Subscript, scope: Scope, depth: int) -> Resolved | None:
        if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
            return None
        container = self.resolve(node.value, scope, depth)
        key = self.resolve(node.slice[0].slice.value, scope, depth)
        if container is None or key is None:
            return None
        try:
            value = container.value[key.value]
        except (KeyError, IndexError, TypeError):
            return None
        return self._settle(value, container.source, depth)

    def _call(self, node: cst.Call, scope: Scope, depth: int) -> Resolved | None:
        callee = dotted_name(node.func) or ""
        positional = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
        if callee == "getattr" and len(positional) in (2, 3):
            name = self.resolve(positional[1], scope, depth)
            if name is None or not isinstance(name.value, str):
                return None
            attribute = cst.Attribute(value=positional[0], attr=cst.Name(name.value))
            found = self._attribute(attribute, scope, depth)
            if found is not None or len(positional) == 2:
                return found
            return self.resolve(positional[2], scope, depth)
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "get" and positional:
            container = self.resolve(node.func.value, scope, depth)
            key = self.resolve(positional[0], scope, depth)
            if container is None or key is None or not isinstance(container.value, dict):
                return None
            if key.value in container.value:
                return self._settle(container.value[key.value], container.source, depth)
            return self.resolve(positional[1], scope, depth) if len(positional) > 1 else Resolved(None)
        if callee == "dict" and not positional:
            values = {}
            for arg in node.args:
                if arg.keyword is None:
                    return None
                resolved = self.resolve(arg.value, scope, depth)
                values[arg.keyword.value] = Unresolved(arg.value, scope) if resolved is None else resolved.value
            return Resolved(values)
        name = arithmetic.function_name(node.func, scope.summary.qualify_expr)
        if name is None or any(arg.keyword is not None or arg.star for arg in node.args):
            return None
        values = [self.resolve(arg, scope, depth) for arg in positional]
        if any(value is None for value in values):
            return None
        value = arithmetic.function(name, [value.value for value in values if value is not None])
        return None if value is None else Resolved(value, next((v.source for v in values if v and v.source), ""))

    def _settle(self, value: Any, origin: "str | Origin", depth: int) -> Resolved | None:
        if isinstance(value, Unresolved):
            return self.resolve(value.node, value.scope, depth)
        return Resolved(value, origin)


def _parses_arguments(function: FunctionSummary, summary: FileSummary) -> bool:
    """A function that returns `parser.parse_args()` (or the like) of its own file."""
    for returned in function.returns:
        value = summary.expression(returned.value)
        if isinstance(value, cst.Call) and (dotted_name(value.func) or "").rsplit(".", 1)[-1] in _PARSE_ARGS:
            return True
        if isinstance(value, cst.Name):
            span = function.bindings.get(value.value)
            bound = summary.expression(span) if span is not None else None
            if isinstance(bound, cst.Call) and (dotted_name(bound.func) or "").rsplit(".", 1)[-1] in _PARSE_ARGS:
                return True
    return False


@dataclass(frozen=True)
class Unresolved:
    """A dict entry whose value could not be resolved up front (tried again on access)."""

    node: cst.BaseExpression
    scope: Scope


def argument_for(function: FunctionSummary, name: str, call: cst.Call) -> cst.BaseExpression | None:
    """The argument a call of `function` passes for parameter `name` (keyword or position; a
    method's `self`/`cls` is not passed), None when it passes none."""
    ordered = function.positional_names()
    if name not in ordered:
        return kwarg_value(call, name)
    return arg_value(call, ordered.index(name), name)
