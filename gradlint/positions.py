"""Positions of libcst nodes (line, column), computed only for the nodes a finding names.

libcst computes positions by generating the code of the whole module, which costs more than
parsing it; a finding needs the positions of a few nodes. See `LazyPositions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import libcst as cst


class LazyPositions:
    """Positions (libcst's PositionProvider), computed on first use, one top-level statement
    at a time.

    libcst computes positions by generating the code of the whole module, which costs more
    than parsing it; a finding needs the positions of a few nodes. So only the top-level
    statement holding the node is generated, and its lines are shifted to where CPython's
    parser put that statement (`statement_lines`: the line of each top-level statement of
    the module, from the AST). When the two parsers' statements do not pair up, the whole
    module is generated as libcst does.

    Which statement holds a node is found by walking the statements one at a time, in order,
    until the node turns up (each statement is walked at most once per file), and a generated
    statement's positions are shifted only when one is asked for.
    """

    def __init__(self, module: cst.Module, statement_lines: list[int] | None = None) -> None:
        self.module = module
        self._statement_lines = statement_lines
        self._whole_positions: dict[cst.CSTNode, Any] = {}
        """node -> position, once the whole module was generated."""
        self._generated: dict[int, tuple[dict[cst.CSTNode, Any], int]] = {}
        """index of a generated top-level statement -> (node -> position within the statement's
        code, lines to add to place it in the file)."""
        self._top: dict[int, int] = {}
        """id(node) -> index of the top-level statement holding it, for the statements walked."""
        self._walked = 0
        """Statements 0 .. _walked - 1 are in `_top`."""
        self._paired: bool | None = None
        self._whole = False

    def _get(self, node: cst.CSTNode):
        found = self._find(node)
        if found is None:
            self._compute(node)
            found = self._find(node)
            assert found is not None
        position, shift = found
        if not shift and not isinstance(position, tuple):
            return position
        from libcst._position import CodePosition, CodeRange

        if isinstance(position, tuple):  # from `_positions_state`: ((line, column), (line, column))
            (start_line, start_column), (end_line, end_column) = position
        else:
            start_line, start_column = position.start.line, position.start.column
            end_line, end_column = position.end.line, position.end.column
        return CodeRange(CodePosition(start_line + shift, start_column), CodePosition(end_line + shift, end_column))

    def _find(self, node: cst.CSTNode) -> tuple[Any, int] | None:
        """(position within its generated code, line shift), when already generated."""
        if self._whole:
            position = self._whole_positions.get(node)
            return (position, 0) if position is not None else None
        index = self._top.get(id(node))
        generated = self._generated.get(index) if index is not None else None
        if generated is not None and node in generated[0]:
            return generated[0][node], generated[1]
        for positions, shift in self._generated.values():  # a token the walk does not visit
            if node in positions:
                return positions[node], shift
        return None

    def _compute(self, node: cst.CSTNode) -> None:
        index = self._statement_of(node)
        if index is None or not self._statement(index):
            self._generate_whole()

    def _statement_of(self, node: cst.CSTNode) -> int | None:
        if self._statement_lines is None or self._whole:
            return None
        if self._paired is None:
            self._paired = _pairs_up(self.module, self._statement_lines)
        if not self._paired:
            self._statement_lines = None
            return None
        key = id(node)
        found = self._top.get(key)
        body = self.module.body
        while found is None and self._walked < len(body):
            index = self._walked
            _index_nodes(body[index], index, self._top)
            self._walked += 1
            found = self._top.get(key)
        return found

    def _statement(self, index: int) -> bool:
        """Generate one top-level statement; False when its lines cannot be placed."""
        assert self._statement_lines is not None
        statement = self.module.body[index]
        state = _positions_state(self.module.default_indent, self.module.default_newline)
        statement._codegen(state)
        local = state.computed.get(statement)
        if local is None:
            return False
        shift = _first_line(self._statement_lines, self.module.body, index) - local[0][0]
        self._generated[index] = (state.computed, shift)
        return True

    def _generate_whole(self) -> None:
        # The provider's own code generation pass, without MetadataWrapper's visitor
        # machinery around it: the same positions in about 60% of the time.
        from libcst.metadata import PositionProvider

        provider = PositionProvider()
        provider._gen_impl(self.module)
        self._whole_positions = provider._computed
        self._generated.clear()
        self._whole = True

    def statement_index(self, node: cst.CSTNode) -> int | None:
        """The index of the top-level statement holding `node` (None when the statements do not
        pair up with CPython's, or the node is not found by walking them)."""
        return self._statement_of(node)

    def holds(self, node: cst.CSTNode) -> bool:
        """Whether `node` is a node of this module (not one parsed from a span of it elsewhere)."""
        if self._find(node) is not None:
            return True
        if self._statement_of(node) is not None:
            return True
        if self._whole or self._statement_lines is None:
            from gradlint.analysis.walk import walk

            return any(inner is node for inner in walk(self.module))
        return False

    def start(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self._get(node)
        return position.start.line, position.start.column + 1

    def span(self, node: cst.CSTNode) -> tuple[tuple[int, int], tuple[int, int]]:
        position = self._get(node)
        return (
            (position.start.line, position.start.column + 1),
            (position.end.line, position.end.column + 1),
        )


_STATE_CLASS: Any = None


def _positions_state(default_indent: str, default_newline: str) -> Any:
    """A codegen state that computes what libcst's PositionProvider computes (the same
    syntactic ranges, the same rules for which range a node keeps) but keeps no code and no
    position objects: a range is a pair of (line, column) tuples, and a token without a line
    break only moves the column. Generating a statement's positions took three times as long as
    generating its code; this state takes a third to a half of libcst's time (every statement of
    the 543-line benchmark script: 25-32 ms against 68-94 ms). tests/test_positions.py compares
    the two on every node of the fixtures."""
    global _STATE_CLASS
    if _STATE_CLASS is None:
        _STATE_CLASS = _define_state()
    return _STATE_CLASS(default_indent, default_newline)


def _define_state() -> type:
    import re

    from libcst._nodes.internal import CodegenState  # libcst is loaded: a tree is being placed

    line_break = re.compile(r"\r\n?|\n")

    class PositionsOnly(CodegenState):
        def __init__(self, default_indent: str, default_newline: str) -> None:
            super().__init__(default_indent, default_newline)
            self.line = 1
            self.column = 0
            self.starts: list[tuple[int, int]] = []
            self.computed: dict[Any, tuple[tuple[int, int], tuple[int, int]]] = {}

        def add_indent_tokens(self) -> None:
            for token in self.indent_tokens:
                self.add_token(token)

        def add_token(self, value: str) -> None:
            if "\n" in value or "\r" in value:
                segments = line_break.split(value)
                self.line += len(segments) - 1
                self.column = len(segments[-1])
            else:
                self.column += len(value)

        def before_codegen(self, node: Any) -> None:
            self.starts.append((self.line, self.column))

        def after_codegen(self, node: Any) -> None:
            start = self.starts.pop()
            if node not in self.computed:  # a syntactic range, recorded inside, wins
                self.computed[node] = (start, (self.line, self.column))

        def pop_trailing_newline(self) -> None:
            pass

        def record_syntactic_position(self, node: Any, *, start_node: Any = None, end_node: Any = None) -> Any:
            return _Syntactic(self, node, start_node, end_node)

    return PositionsOnly


class _Syntactic:
    """libcst's `record_syntactic_position` as a plain context manager (a generator-based one
    costs a generator and a wrapper per node)."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state: Any, node: Any, start_node: Any, end_node: Any) -> None:
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exception: Any) -> None:
        state = self.state
        computed = state.computed
        start = computed[self.start_node][0] if self.start_node is not None else self.start
        end = computed[self.end_node][1] if self.end_node is not None else (state.line, state.column)
        computed[self.node] = (start, end)


_FIELDS: dict[type, tuple[str, ...]] = {}
_NODE_TYPES: dict[type, bool] = {}


def _index_nodes(statement: cst.CSTNode, index: int, into: dict[int, int]) -> None:
    """id(node) -> index for `statement` and every node below it (the nodes gradlint's walk
    visits: the same fields, from `child_fields`), in one loop without a generator or a list
    per node: half the walk's time."""
    from gradlint.analysis.walk import child_fields, is_node_type  # libcst is loaded by now

    stack = [statement]
    pop, push = stack.pop, stack.append
    fields_of, node_types = _FIELDS, _NODE_TYPES
    while stack:
        node = pop()
        into[id(node)] = index
        node_type = type(node)
        fields = fields_of.get(node_type)
        if fields is None:
            fields = fields_of[node_type] = child_fields(node_type)
        for name in fields:
            value = getattr(node, name)
            value_type = type(value)
            if value_type is tuple or value_type is list:
                for item in value:
                    item_type = type(item)
                    is_node = node_types.get(item_type)
                    if is_node is None:
                        is_node = node_types[item_type] = is_node_type(item_type)
                    if is_node:
                        push(item)
            else:
                is_node = node_types.get(value_type)
                if is_node is None:
                    is_node = node_types[value_type] = is_node_type(value_type)
                if is_node:
                    push(value)


def _ast_statement_count(statement: cst.CSTNode) -> int:
    """How many statements CPython's AST has for one libcst top-level statement (`a; b` is two)."""
    import libcst as cst

    if isinstance(statement, cst.SimpleStatementLine):
        return len(statement.body)
    return 1


def _pairs_up(module: cst.Module, statement_lines: list[int]) -> bool:
    return sum(_ast_statement_count(statement) for statement in module.body) == len(statement_lines)


def _first_line(statement_lines: list[int], body: Any, index: int) -> int:
    """CPython's line for libcst's top-level statement `index` (the line of its keyword, or of
    its first small statement: where libcst's syntactic position starts too)."""
    consumed = sum(_ast_statement_count(statement) for statement in body[:index])
    return statement_lines[consumed]
