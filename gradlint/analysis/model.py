"""One walk over a module builds its FileModel: the events that matter for training steps.

The model is a small tree that mirrors the control flow the rules care about: blocks
(function, loop, branch, with) holding events (backward, optimizer step, clip, unscale,
zero_grad, assignments, helper calls) in source order. Rules query this model; none of
them walks the syntax tree again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterator

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.names import ImportMap, dotted_name
from gradlint.analysis.values import evaluate_number
from gradlint.analysis.walk import walk


class Kind(enum.Enum):
    BACKWARD = "backward"
    STEP = "step"
    SCHEDULER_STEP = "scheduler-step"
    CLIP = "clip"
    UNSCALE = "unscale"
    ZERO_GRAD = "zero_grad"
    ASSIGN = "assign"
    CALL = "call"
    """A call to a function or method that may be defined in this module (a helper)."""
    ARG = "arg"
    """A bare name passed as an argument: consumes a one-shot iterator."""
    DETACH_INPLACE = "detach_"


@dataclass(eq=False)
class Event:
    kind: Kind
    node: cst.CSTNode
    receiver: str | None = None
    """The dotted receiver of a method call (`scaler`, `self.optimizer`)."""
    # backward
    scaled: bool = False
    retain_graph: bool = False
    owner: bool = False
    """`accelerator.backward(loss)` style: the receiver owns the backward, not the tensor."""
    tensor: cst.BaseExpression | None = None
    # step
    via_scaler: bool = False
    closure: str | None = None
    # clip
    form: str = ""
    """'torch' (function), 'fsdp' (model method), 'accelerate', 'fabric', 'lightning', 'assumed'."""
    params: cst.BaseExpression | None = None
    threshold: cst.BaseExpression | None = None
    threshold_name: str = ""
    # assignment / argument / helper call
    targets: tuple[str, ...] = ()
    value: cst.BaseExpression | None = None
    augmented: str | None = None
    """The operator of an augmented assignment (`/=` -> '/')."""
    name: str | None = None
    call: cst.Call | None = None

    def describe(self, module: cst.Module) -> str:
        """Short source text of the event, for messages (`optimizer.step()`)."""
        return snippet(module, self.node if self.call is None else self.call)


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the last three of them `...` when it is cut:
    the one shortening of source text in messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def snippet(module: cst.Module, node: cst.CSTNode, limit: int = 60) -> str:
    """One line of source for a message: comments dropped, whitespace collapsed, shortened."""
    lines = [line.split("#", 1)[0] if "#" in line and "'" not in line and '"' not in line else line
             for line in module.code_for_node(node).splitlines()]
    text = " ".join(" ".join(lines).split())
    return shorten(text, limit)


class BlockKind(enum.Enum):
    BODY = "body"
    """A function or module body."""
    LOOP = "loop"
    BRANCH = "branch"
    """One branch of an if/elif/else, try handler or match case."""
    WITH = "with"


@dataclass(eq=False)
class Block:
    kind: BlockKind
    node: cst.CSTNode
    items: list["Event | Block"] = field(default_factory=list)
    test: cst.BaseExpression | None = None
    """For branches: the condition (None for else / except)."""
    loop_target: tuple[str, ...] = ()
    loop_iter: str | None = None
    """For loops: the bare name iterated over (`for p in params`)."""
    no_grad: bool = False
    accumulate: bool = False
    """`with accelerator.accumulate(model):` (Accelerate's gradient accumulation)."""

    def events(self) -> Iterator[Event]:
        for item in self.items:
            if isinstance(item, Block):
                yield from item.events()
            else:
                yield item

    @property
    def is_accumulation_guard(self) -> bool:
        if self.kind is not BlockKind.BRANCH or self.test is None:
            return False
        for node in walk(self.test):
            if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
                return True
            if isinstance(node, (cst.Name, cst.Attribute)) and vocab.ACCUMULATION_WORDS.search(dotted_name(node) or ""):
                return True
        return False

    @property
    def tests_sync_gradients(self) -> bool:
        return (
            self.kind is BlockKind.BRANCH
            and self.test is not None
            and any(isinstance(n, cst.Attribute) and n.attr.value == "sync_gradients" for n in walk(self.test))
        )


@dataclass(eq=False)
class Function:
    name: str
    qualname: str
    node: cst.FunctionDef
    body: Block
    class_name: str | None
    parent: "Function | None"
    params: tuple[str, ...] = ()
    local_functions: dict[str, "Function"] = field(default_factory=dict)
    key: str = ""
    """The qualname, with `#2`, `#3`... for later definitions of the same qualname (the key of
    the function in the file's summary, gradlint.index.summary)."""


@dataclass(eq=False)
class ClassInfo:
    name: str
    node: cst.ClassDef
    bases: tuple[str, ...]
    """Bases, qualified through imports when possible, else as spelled."""
    methods: dict[str, Function] = field(default_factory=dict)
    attribute_values: dict[str, cst.BaseExpression] = field(default_factory=dict)
    """`self.x = <value>` in any method (last one wins)."""
    attribute_functions: dict[str, "Function"] = field(default_factory=dict)
    """The method that assigns each `self.x` (to resolve the value in its scope)."""
    class_values: dict[str, cst.BaseExpression] = field(default_factory=dict)
    """Class-level `x = <value>` / `x: int = <value>` (dataclass fields, constants)."""
    decorators: tuple[str, ...] = ()


@dataclass(eq=False)
class RiskFactor:
    node: cst.CSTNode
    description: str


@dataclass(eq=False)
class CallSite:
    node: cst.Call
    callee: str
    """The callee as spelled (`nn.LSTM`, `RNNModel`, `self.rnn`)."""
    qualified: str | None
    """Resolved through imports (`torch.nn.LSTM`), None for local names."""
    function: "Function | None"


@dataclass(eq=False)
class ArgparseArgument:
    node: cst.Call
    dest: str
    option: str
    """The flag as the user types it (`--nlayers`)."""
    default: cst.BaseExpression | None
    implicit_default: Any = None
    """The default argparse supplies when `default=` is absent (False for store_true)."""


@dataclass(eq=False)
class FileModel:
    module: cst.Module
    imports: ImportMap
    body: Block
    functions: dict[str, Function]
    """Module-level functions by name."""
    classes: dict[str, ClassInfo]
    all_functions: list[Function]
    constants: dict[str, cst.BaseExpression]
    """Module-level `NAME = <expr>` (last one wins)."""
    risk_factors: list[RiskFactor]
    clip_events: list[Event]
    owner_receivers: set[str]
    """Receivers of `X.backward(loss)` calls (accelerator, fabric, DeepSpeed engines)."""
    calls: list["CallSite"] = field(default_factory=list)
    """Every call whose callee is a (dotted) name, with the function it sits in."""
    argparse: dict[str, "ArgparseArgument"] = field(default_factory=dict)
    """`parser.add_argument("--n-layers", default=2)` by dest (`n_layers`)."""
    derived: dict[str, Any] = field(default_factory=dict)
    """Analyses computed from the model on first use (flattened contexts), shared by rules."""

    def qualify_call(self, call: cst.Call) -> str | None:
        return self.imports.qualify_expr(call.func)

    def qualify_expr(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualify_expr(node)

    def number(self, node: cst.BaseExpression | None, lookup=None) -> float | int | None:
        """A constant's value; names resolve through `lookup` (default: module constants)."""
        return None if node is None else evaluate_number(node, self.imports, lookup or self.constants)


def build_model(module: cst.Module) -> FileModel:
    """The module's FileModel, built by one walk (gradlint.analysis.builder)."""
    from gradlint.analysis.builder import build_model as build

    return build(module)


def last_assignment(function: Function, name: str) -> cst.BaseExpression | None:
    """The value of the last plain `name = value` in the function's own body (not in nested
    functions); None when there is none, or when the last binding unpacks (`name, x = ...`) or
    is augmented, so that the value is not known."""
    found = None
    for event in function.body.events():
        if event.kind is Kind.ASSIGN and event.augmented is None and name in event.targets:
            found = event.value if event.targets == (name,) else None
    return found


def enclosing_class(function: Function | None, model: FileModel) -> ClassInfo | None:
    """The class a method (or a function nested in one) belongs to, looked up by name.
    `gradlint.analysis.layers.owner_class` is the strict form: only a method the class holds."""
    while function is not None and function.class_name is None:
        function = function.parent
    return model.classes.get(function.class_name) if function is not None and function.class_name else None


def in_class(function: Function | None, info: ClassInfo) -> bool:
    """Whether `function` is a method of `info` or a function nested in one."""
    while function is not None:
        if function.class_name == info.name and info.methods.get(function.name) is function:
            return True
        function = function.parent
    return False
