"""A file's summary: the facts other files ask about, taken once from CPython's syntax tree.

Every cross-file question the project index answers (what a name is bound to, where a class is
called, what an argparse option defaults to, what a constant holds) is answered from these
summaries, never from another file's libcst tree. A summary is built once per file per run from
the tree CPython's parser makes (which gradlint parses first anyway, and which costs a sixth of
libcst's), and it holds no tree: expressions are kept as spans of the source text and parsed
by libcst, one expression at a time, when a question reaches them (`FileSummary.expression`),
so the resolver and the rules read every file's values as the same libcst nodes.
So a summary costs a few kilobytes, survives the index's release of syntax trees, and a file is
never parsed twice to answer a lookup.

The walk mirrors `gradlint.analysis.builder` (the libcst model of a checked file) in what it
records and in which order, so that both agree on names, scopes and call sites;
tests/test_summary.py compares the two on every fixture.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field

import libcst as cst

from gradlint.analysis.walk import walk
from gradlint.index.body_facts import BodyFacts, body_facts
from gradlint.index.compact import compact
from gradlint.index.syntax import (
    Span, calls_in, dotted, keyword, span_of, string_value, target_names, unpacked_values,
)
from gradlint.source import ReleasableText, unvalidated


@dataclass(eq=False, slots=True)
class Param:
    name: str
    default: Span | None
    kind: str
    """'posonly', 'regular', 'kwonly', 'vararg' or 'kwarg'."""
    line: int
    annotation: Span | None = None
    """`trainer: GradientDescentTrainer` -> the span of `GradientDescentTrainer`."""


@dataclass(frozen=True, slots=True)
class ReturnSummary:
    """A `return` of a function's own body: what it returns, and the `if` tests it sits under."""

    value: Span | None
    line: int
    guards: tuple[tuple[Span, bool], ...] = ()
    """The enclosing `if` tests within the function, outermost first, with the branch taken
    (True: the body, False: the else)."""


@dataclass(eq=False, slots=True)
class FunctionSummary:
    name: str
    qualname: str
    key: str
    """The qualname, with `#2`, `#3`... for a second and third definition of the same qualname."""
    line: int
    """Where the definition starts (its first decorator, as libcst places a FunctionDef)."""
    span: Span
    """The whole `def` statement."""
    class_name: str | None
    parent: "FunctionSummary | None"
    params: tuple[Param, ...] = ()
    bindings: dict[str, Span | None] = field(default_factory=dict)
    """Each name's last plain `name = value` in the function's own body (the value's span), or
    None when the last binding unpacks, is augmented or annotation-only (the value is unknown)."""
    assigned: set[str] = field(default_factory=set)
    """Every name any assignment of the body binds (`a, b = ...` included)."""
    single_targets: list[str] = field(default_factory=list)
    """Names bound alone by a plain assignment (`n = ...`, not `a, b = ...` or `n += 1`), in the
    order they first appear."""
    local_functions: dict[str, "FunctionSummary"] = field(default_factory=dict)
    returns: list[ReturnSummary] = field(default_factory=list)
    """The function's own `return` statements, in source order (optimizer factories)."""
    unpacked: dict[str, tuple[Span, int]] = field(default_factory=dict)
    """Names bound by unpacking (`model, optimizer = setup(cfg)`): the unpacked value's span and
    the name's position in it."""
    facts: BodyFacts = field(default_factory=BodyFacts)
    """What the function's own body does to gradients (gradlint.index.body_facts)."""
    loop_names: set[str] = field(default_factory=set)
    """Names a `for` of the body binds (`for algorithm in algorithms:`)."""
    returns_annotation: Span | None = None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(param.name for param in self.params)

    def param(self, name: str) -> Param | None:
        """A named parameter (positional-only, regular or keyword-only; not `*args`/`**kwargs`)."""
        for param in self.params:
            if param.name == name and param.kind in ("posonly", "regular", "kwonly"):
                return param
        return None

    def positional_names(self) -> list[str]:
        """The parameters a call fills by position (a method's `self`/`cls` is not passed)."""
        ordered = [param.name for param in self.params if param.kind in ("posonly", "regular")]
        if self.class_name is not None and ordered and ordered[0] in ("self", "cls"):
            ordered = ordered[1:]
        return ordered


@dataclass(eq=False, slots=True)
class ClassSummary:
    name: str
    line: int
    span: Span
    bases: tuple[str, ...]
    """Qualified through the imports seen so far when possible, else as spelled (`""` for an
    expression that is no dotted name)."""
    decorators: tuple[str, ...] = ()
    methods: dict[str, FunctionSummary] = field(default_factory=dict)
    attribute_values: dict[str, Span] = field(default_factory=dict)
    """`self.x = <value>` in any method (last one wins)."""
    attribute_functions: dict[str, FunctionSummary] = field(default_factory=dict)
    class_values: dict[str, Span] = field(default_factory=dict)
    """Class-level `x = <value>` / `x: int = <value>`."""


@dataclass(eq=False, slots=True)
class CallSummary:
    span: Span
    callee: str
    """As spelled: `nn.LSTM`, `RNNModel`, `self.rnn`."""
    qualified: str | None
    """Through the imports seen before the call (`torch.nn.LSTM`), None for local names."""
    function: FunctionSummary | None
    guards: tuple[tuple[Span, bool], ...] = ()
    """The `if` tests around the call within its function (or the module body), outermost first,
    with the branch it is in (True: the body, False: the else): a layer built under a condition."""

    @property
    def line(self) -> int:
        return self.span[0]


@dataclass(eq=False, slots=True)
class ArgparseSummary:
    call: Span
    dest: str
    option: str
    default: Span | None
    implicit_default: object = None


@dataclass(eq=False)
class FileSummary:
    text: str = ReleasableText(unreadable="")  # type: ignore[assignment]
    """Read again from disk on use once let go (gradlint.texts); "" if the file changed since."""
    imports: dict[str, str] = field(default_factory=dict)
    """Local name -> qualified name it was imported as (relative imports keep their dots)."""
    star_imports: list[str] = field(default_factory=list)
    """`from model import *` -> `model` (with leading dots for relative imports)."""
    functions: dict[str, FunctionSummary] = field(default_factory=dict)
    """Module-level functions by name (last one wins)."""
    classes: dict[str, ClassSummary] = field(default_factory=dict)
    all_functions: list[FunctionSummary] = field(default_factory=list)
    constants: dict[str, Span] = field(default_factory=dict)
    calls: list[CallSummary] = field(default_factory=list)
    argparse: dict[str, ArgparseSummary] = field(default_factory=dict)
    statement_lines: list[int] = field(default_factory=list)
    """The first line of each top-level statement (for libcst positions, see source.py)."""
    _expressions: dict[Span, "cst.BaseExpression | None"] = field(default_factory=dict, repr=False)
    _roots: dict[int, tuple["cst.BaseExpression", Span]] = field(default_factory=dict, repr=False)
    _lines: list[bytes] | None = field(default=None, repr=False)

    def qualify(self, dotted: str | None) -> str | None:
        """The qualified name of a dotted name, or None when its head was not imported."""
        if not dotted:
            return None
        head, _, rest = dotted.partition(".")
        target = self.imports.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    def qualify_expr(self, node: "cst.BaseExpression") -> str | None:
        """`qualify` for a libcst Name/Attribute chain."""
        from gradlint.analysis.names import dotted_name

        return self.qualify(dotted_name(node))

    def function(self, key: str) -> FunctionSummary | None:
        for function in self.all_functions:
            if function.key == key:
                return function
        return None

    def expression(self, span: Span | None) -> "cst.BaseExpression | None":
        """The expression at `span` as a libcst node, parsed from the source text on first use
        (one expression, not the file). `line_of` gives the line of it or of any node in it.
        None when the span holds no standalone expression."""
        if span is None:
            return None
        found = self._expressions.get(span)
        if found is None and span not in self._expressions:
            found = self._parse_span(span)
            self._expressions[span] = found
            if found is not None:
                self._roots[id(found)] = (found, span)
        return found

    def line_of(self, node: "cst.CSTNode") -> int | None:
        """The line in the file of a node that `expression` made (None for another node)."""
        entry = self._roots.get(id(node))
        if entry is not None and entry[0] is node:
            return entry[1][0]
        for root, span in self._roots.values():
            if span[0] == span[2]:
                if any(inner is node for inner in walk(root)):
                    return span[0]
                continue
            line = _relative_line(root, node)
            if line is not None:
                return span[0] + line - 1
        return None

    def position_of(self, node: "cst.CSTNode") -> tuple[tuple[int, int], tuple[int, int]] | None:
        """((line, column), (end line, end column)) in the file, columns 1-based in characters as
        `gradlint.source.LazyPositions.span` gives them, of a node `expression` made."""
        for root, span in self._roots.values():
            position = _relative_position(root, node)
            if position is None:
                continue
            (line, column), (end_line, end_column) = position
            lines = self.text.splitlines()
            if not lines:
                return None  # the file no longer holds the text the node was parsed from
            text_line = lines[span[0] - 1] if span[0] - 1 < len(lines) else ""
            first = len(text_line.encode("utf-8")[: span[1]].decode("utf-8", "replace"))
            start = (span[0] + line - 1, column + (first if line == 1 else 0) + 1)
            end = (span[0] + end_line - 1, end_column + (first if end_line == 1 else 0) + 1)
            return start, end
        return None

    def source_segment(self, span: Span) -> str:
        line, column, end_line, end_column = span
        if self._lines is None:
            self._lines = [line.encode("utf-8") for line in self.text.splitlines(keepends=True)]
        lines = self._lines[line - 1 : end_line]
        if not lines:
            return ""
        if len(lines) == 1:
            return lines[0][column:end_column].decode("utf-8", "replace")
        first, last = lines[0][column:], lines[-1][:end_column]
        return b"".join([first, *lines[1:-1], last]).decode("utf-8", "replace")

    def forget_expressions(self) -> None:
        """Drop the parsed expressions (the index releases memory between files)."""
        self._expressions.clear()
        self._roots.clear()
        self._lines = None

    def _parse_span(self, span: Span) -> "cst.BaseExpression | None":
        segment = self.source_segment(span)
        if not segment.strip():
            return None  # a zero-width span (a line marker) holds no expression
        try:
            with unvalidated():
                node = cst.parse_expression(f"({segment}\n)")
        except (cst.ParserSyntaxError, RecursionError, MemoryError, ValueError):
            return None
        # Drop the parentheses added around the segment (the outermost pair).
        if getattr(node, "lpar", None) and getattr(node, "rpar", None):
            node = node.with_changes(lpar=node.lpar[1:], rpar=node.rpar[:-1])
        return node


def _relative_line(root: "cst.BaseExpression", node: "cst.CSTNode") -> int | None:
    """The 1-based line of `node` inside the code of `root` (None when it is not in it)."""
    position = _relative_position(root, node)
    return position[0][0] if position is not None else None


def _relative_position(root: "cst.BaseExpression", node: "cst.CSTNode"):
    """((line, column), (end line, end column)) of `node` in the code of `root`, 1-based lines and
    0-based columns; None when it is not in it."""
    from libcst.metadata.position_provider import PositionProvider

    if not any(inner is node for inner in walk(root)):
        return None
    module = cst.Module(body=[cst.SimpleStatementLine(body=[cst.Expr(value=root)])])
    provider = PositionProvider()
    provider._gen_impl(module)
    position = provider._computed.get(node)
    if position is None:
        return None
    return (position.start.line, position.start.column), (position.end.line, position.end.column)


def _annotation(arg: ast.arg) -> Span | None:
    return span_of(arg.annotation) if arg.annotation is not None else None


def summarize(tree: ast.Module, text: str) -> FileSummary:
    summary = FileSummary(text=text, statement_lines=[statement.lineno for statement in tree.body])
    _Summarizer(summary).statements(tree.body)
    compact(summary)  # kept for the whole run: equal values shared (index/compact.py)
    return summary


class _Summarizer:
    def __init__(self, summary: FileSummary) -> None:
        self.summary = summary
        self.class_stack: list[ClassSummary] = []
        self.function_stack: list[FunctionSummary] = []
        self.keys: dict[str, int] = {}
        self.body_owners: list[FunctionSummary | None] = [None]
        """Whose body a statement binds into: class bodies inside a function bind into it."""
        self.guards: list[tuple[Span, bool]] = []
        """The `if` tests around the statement being walked, within the current function."""

    @property
    def function(self) -> FunctionSummary | None:
        return self.function_stack[-1] if self.function_stack else None

    # ----------------------------------------------------------------- statements

    def statements(self, statements: list[ast.stmt]) -> None:
        for statement in statements:
            self.statement(statement)

    def statement(self, statement: ast.stmt) -> None:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.define_function(statement)
        elif isinstance(statement, ast.ClassDef):
            self.define_class(statement)
        elif isinstance(statement, (ast.For, ast.AsyncFor)):
            self.expression(statement.iter)
            owner = self.body_owners[-1]
            if owner is not None:
                owner.loop_names.update(
                    node.id for node in ast.walk(statement.target) if isinstance(node, ast.Name)
                )
            self.statements(statement.body)
            self.statements(statement.orelse)
        elif isinstance(statement, ast.While):
            self.expression(statement.test)
            self.statements(statement.body)
            self.statements(statement.orelse)
        elif isinstance(statement, ast.If):
            self.expression(statement.test)
            self.guards.append((span_of(statement.test), True))
            self.statements(statement.body)
            self.guards[-1] = (span_of(statement.test), False)
            self.statements(statement.orelse)
            self.guards.pop()
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                self.expression(item.context_expr)
            self.statements(statement.body)
        elif isinstance(statement, ast.Try) or type(statement).__name__ == "TryStar":
            self.statements(statement.body)  # type: ignore[attr-defined]
            for handler in statement.handlers:  # type: ignore[attr-defined]
                self.statements(handler.body)
            self.statements(statement.orelse)  # type: ignore[attr-defined]
            self.statements(statement.finalbody)  # type: ignore[attr-defined]
        elif isinstance(statement, ast.Match):
            self.expression(statement.subject)
            for case in statement.cases:
                self.statements(case.body)
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname is not None:
                    self.summary.imports[alias.asname] = alias.name
                else:
                    head = alias.name.split(".", 1)[0]
                    self.summary.imports[head] = head
        elif isinstance(statement, ast.ImportFrom):
            prefix = "." * statement.level + (statement.module or "")
            for alias in statement.names:
                if alias.name == "*":
                    self.summary.star_imports.append(prefix)
                    continue
                base = f"{prefix}.{alias.name}" if prefix and not prefix.endswith(".") else f"{prefix}{alias.name}"
                self.summary.imports[alias.asname or alias.name] = base
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self.assignment(statement)
        elif isinstance(statement, (ast.Expr, ast.Return)):
            if isinstance(statement, ast.Return) and self.function_stack and self.body_owners[-1] is self.function:
                value = span_of(statement.value) if statement.value is not None else None
                self.function.returns.append(ReturnSummary(value, statement.lineno, tuple(self.guards)))
            if statement.value is not None:
                self.expression(statement.value)
        else:
            for child in ast.iter_child_nodes(statement):
                if isinstance(child, ast.expr):
                    self.expression(child)

    def define_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        parent = self.function
        owner = self.class_stack[-1] if self.class_stack and parent is None else None
        qualname = node.name
        if owner is not None:
            qualname = f"{owner.name}.{qualname}"
        elif parent is not None:
            qualname = f"{parent.qualname}.<locals>.{qualname}"
        count = self.keys[qualname] = self.keys.get(qualname, 0) + 1
        arguments = node.args
        params: list[Param] = []
        defaults = list(arguments.defaults)
        positional = [*arguments.posonlyargs, *arguments.args]
        padded: list[ast.expr | None] = [None] * (len(positional) - len(defaults)) + defaults  # type: ignore[list-item]
        for index, arg in enumerate(positional):
            default = padded[index]
            kind = "posonly" if index < len(arguments.posonlyargs) else "regular"
            params.append(Param(arg.arg, span_of(default) if default is not None else None, kind, arg.lineno, _annotation(arg)))
        if arguments.vararg is not None:
            params.append(Param(arguments.vararg.arg, None, "vararg", arguments.vararg.lineno))
        for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
            params.append(Param(arg.arg, span_of(default) if default is not None else None, "kwonly", arg.lineno, _annotation(arg)))
        if arguments.kwarg is not None:
            params.append(Param(arguments.kwarg.arg, None, "kwarg", arguments.kwarg.lineno))
        # libcst's order: positional-only, regular, keyword-only, then *args and **kwargs.
        order = {"posonly": 0, "regular": 1, "kwonly": 2, "vararg": 3, "kwarg": 4}
        params.sort(key=lambda param: order[param.kind])
        function = FunctionSummary(
            name=node.name,
            qualname=qualname,
            key=qualname if count == 1 else f"{qualname}#{count}",
            line=min([decorator.lineno for decorator in node.decorator_list] + [node.lineno]),
            span=span_of(node),
            class_name=owner.name if owner else None,
            parent=parent,
            params=tuple(params),
            returns_annotation=span_of(node.returns) if node.returns is not None else None,
        )
        self.summary.all_functions.append(function)
        if owner is not None:
            owner.methods[function.name] = function
        elif parent is not None:
            parent.local_functions[function.name] = function
        elif not self.class_stack:
            self.summary.functions[function.name] = function
        # libcst's model reads the defaults of regular and keyword-only parameters (not of
        # positional-only ones) in the enclosing block.
        regular_defaults = padded[len(arguments.posonlyargs):]
        for default in [*regular_defaults, *arguments.kw_defaults]:
            if default is not None:
                self.expression(default)
        self.function_stack.append(function)
        self.body_owners.append(function)
        saved_guards, self.guards = self.guards, []
        self.statements(node.body)
        self.guards = saved_guards
        self.body_owners.pop()
        self.function_stack.pop()
        # After the body: imports inside it (`from torch.distributed.fsdp import ...`) qualify its calls.
        function.facts = body_facts(node, self.summary.qualify)

    def define_class(self, node: ast.ClassDef) -> None:
        bases = []
        for base in node.bases:
            self.expression(base)
            spelled = dotted(base)
            bases.append(self.summary.qualify(spelled) or spelled or "")
        decorators = []
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            spelled = dotted(target)
            decorators.append(self.summary.qualify(spelled) or spelled or "")
        line = min([decorator.lineno for decorator in node.decorator_list] + [node.lineno])
        info = ClassSummary(node.name, line, span_of(node), tuple(bases), tuple(decorators))
        if not self.function_stack:
            self.summary.classes[info.name] = info
        self.class_stack.append(info)
        saved, self.function_stack = self.function_stack, []
        # A class body inside a function binds into that function's body, as the libcst model has it.
        self.statements(node.body)
        self.function_stack = saved
        self.class_stack.pop()

    def assignment(self, node: ast.Assign | ast.AnnAssign | ast.AugAssign) -> None:
        value = node.value
        if value is not None:
            self.expression(value)
        raw_targets = list(node.targets) if isinstance(node, ast.Assign) else [node.target]
        targets = [name for target in raw_targets for name in target_names(target)]
        augmented = isinstance(node, ast.AugAssign)
        if not targets:
            return
        self._bind_in_function(targets, value, augmented)
        if value is None:
            return
        self._bind_unpacked(raw_targets, value)
        values = unpacked_values(raw_targets, value)
        if not self.function_stack and not self.class_stack and not augmented:
            for target, target_value in values.items():
                if "." not in target:
                    self.summary.constants[target] = span_of(target_value)
        if self.class_stack and self.function_stack:
            info = self.class_stack[-1]
            for target in targets:
                if target.startswith("self.") and target.count(".") == 1:
                    info.attribute_values[target[5:]] = span_of(value)
                    info.attribute_functions[target[5:]] = self.function_stack[-1]
        elif self.class_stack and not augmented:
            for target, target_value in values.items():
                if "." not in target:
                    self.class_stack[-1].class_values[target] = span_of(target_value)

    def _bind_unpacked(self, raw_targets: list[ast.expr], value: ast.expr) -> None:
        """`model, optimizer, scheduler = setup(...)`: each name's position in what is unpacked
        (the last such binding of a name wins; a later plain binding takes precedence in
        `bindings`)."""
        function = self.body_owners[-1]
        if function is None or len(raw_targets) != 1 or not isinstance(raw_targets[0], (ast.Tuple, ast.List)):
            return
        for position, element in enumerate(raw_targets[0].elts):
            name = dotted(element) if isinstance(element, (ast.Name, ast.Attribute)) else None
            if name is None or isinstance(element, ast.Starred):
                continue
            function.unpacked[name] = (span_of(value), position)

    def _bind_in_function(self, targets: list[str], value: ast.expr | None, augmented: bool) -> None:
        """Record the binding in the innermost function whose body holds it: the function being
        walked, or, for a class body inside a function, that function (the saved stack)."""
        function = self.body_owners[-1]
        if function is None:
            return
        if not augmented and len(targets) == 1 and targets[0] not in function.single_targets:
            function.single_targets.append(targets[0])
        for name in targets:
            function.assigned.add(name)
            if augmented:
                continue  # `x += 1` leaves the last plain binding as it was
            function.bindings[name] = span_of(value) if value is not None and targets == [name] else None

    # ---------------------------------------------------------------- expressions

    def expression(self, expression: ast.expr) -> None:
        for call in calls_in(expression):
            self.call(call)

    def call(self, call: ast.Call) -> None:
        spelled = dotted(call.func)
        qualified = self.summary.qualify(spelled)
        # Every call of every file is kept for the run: the same names (`nn.Linear`,
        # `torch.nn.Linear`, `self.fc`) are stored once.
        if spelled is not None:
            spelled = sys.intern(spelled)
        if qualified is not None:
            qualified = sys.intern(qualified)
        if spelled is None:
            if isinstance(call.func, ast.IfExp):
                # `(AMPTrainer if cfg.AMP else SimpleTrainer)(...)` calls either (as analysis/builder.py).
                for branch in (call.func.body, call.func.orelse):
                    branch_name = dotted(branch)
                    if branch_name is not None:
                        self.summary.calls.append(CallSummary(
                            span_of(call), sys.intern(branch_name), self.summary.qualify(branch_name), self.function,
                            tuple(self.guards),
                        ))
            return
        self.summary.calls.append(CallSummary(span_of(call), spelled, qualified, self.function, tuple(self.guards)))
        if isinstance(call.func, ast.Attribute) and call.func.attr == "add_argument":
            self.argparse_argument(call)

    def argparse_argument(self, call: ast.Call) -> None:
        flags = [string_value(arg) for arg in call.args]
        flags = [flag for flag in flags if flag]
        if not flags:
            return
        dest_arg = string_value(keyword(call, "dest"))
        long = next((flag for flag in flags if flag.startswith("--")), None)
        option = long or flags[0]
        dest = dest_arg or option.lstrip("-").replace("-", "_")
        action = string_value(keyword(call, "action"))
        implicit = {"store_true": False, "store_false": True}.get(action or "")
        default = keyword(call, "default")
        self.summary.argparse[dest] = ArgparseSummary(
            span_of(call), dest, option, span_of(default) if default is not None else None, implicit
        )

