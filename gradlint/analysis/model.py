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
    positional: bool = False
    """`x.step(arg)`: a positional argument that is not a closure (a scaler's optimizer, a
    scheduler's epoch or metric, a clipper's parameters)."""
    role: str | None = None
    """What the receiver of a `.step()` is bound to, once decided (gradlint.analysis.roles):
    'optimizer', 'scheduler', 'scaler', 'clipper', 'other'."""
    # clip
    form: str = ""
    """'torch' (function), 'fsdp' (model method), 'accelerate', 'fabric', 'lightning', 'method'
    (another framework's clip method), 'grad' (an in-place change of `.grad` that clips),
    'project' (a project function whose body clips), 'declared' (`clip-functions` in the
    configuration), 'assumed' (a function that cannot be read, named like a gradient clip)."""
    origin: str = ""
    """For 'project' and 'declared' clips: what clips (`its body calls clip_grad_norm_ at
    trainer.py:389`)."""
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
    qualified: str | None = None
    """For a call of an imported function: its qualified name (`train_utils.clip_grads`)."""

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
    """`with accelerator.accumulate(model):` (Accelerate's gradient accumulation), also
    `with model.no_sync():` and Fabric's `no_backward_sync` (see `accumulate_call`)."""
    accumulate_call: str = ""
    """The method that opened an accumulation context: 'accumulate', 'no_sync', 'no_backward_sync'."""
    grad_scope: bool = False
    """`with dist_autograd.context():`: gradients live in this context and start from zero."""
    chain: int = 0
    """For branches: the if/elif/else chain (or match) they belong to; two branches of the same
    chain never both run. 0: not exclusive with anything (try handlers)."""
    early_exit: bool = False
    """A branch made of the statements after `if <test>: return/continue`: they run only when
    the test is false (`test` holds that test)."""

    def events(self) -> Iterator[Event]:
        for item in self.items:
            if isinstance(item, Block):
                yield from item.events()
            else:
                yield item

    @property
    def is_accumulation_guard(self) -> bool:
        """`if (i + 1) % accum == 0:`, `if accelerator.sync_gradients:`, `if not is_accumulating:`,
        a counter reset inside (`if micro == n: ...; micro = 0`), or the statements after an
        early `return`/`continue` on such a test."""
        if self.kind is not BlockKind.BRANCH or self.test is None:
            return False
        if is_accumulation_test(self.test):
            return True
        tested = {dotted_name(node) for node in walk(self.test) if isinstance(node, (cst.Name, cst.Attribute))}
        for item in self.items:
            if isinstance(item, Event) and item.kind is Kind.ASSIGN and item.augmented is None:
                if isinstance(item.value, cst.Integer) and item.value.value == "0" and set(item.targets) & tested:
                    return True
        return False

    def exclusive_with(self, other: "Block") -> bool:
        """Two branches of the same if/elif/else chain: at most one of them runs."""
        return (
            self is not other
            and self.kind is BlockKind.BRANCH
            and other.kind is BlockKind.BRANCH
            and self.chain != 0
            and self.chain == other.chain
        )

    @property
    def tests_sync_gradients(self) -> bool:
        return (
            self.kind is BlockKind.BRANCH
            and self.test is not None
            and any(isinstance(n, cst.Attribute) and n.attr.value == "sync_gradients" for n in walk(self.test))
        )


def is_accumulation_test(test: cst.BaseExpression) -> bool:
    """A condition about gradient accumulation: a modulo, or a name about accumulation
    (`accum`, `sync_gradients`, `update_freq`, `is_accumulating`)."""
    for node in walk(test):
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Modulo):
            return True
        if isinstance(node, (cst.Name, cst.Attribute)) and vocab.ACCUMULATION_WORDS.search(dotted_name(node) or ""):
            return True
    return False


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
    returns: list[cst.BaseExpression] = field(default_factory=list)
    """The values of its own `return` statements."""
    yields: bool = False
    """A generator function (its body yields)."""


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
    clip_events: list[Event]
    owner_receivers: set[str]
    """Receivers of `X.backward(loss)` calls (accelerator, fabric, DeepSpeed engines)."""
    calls: list["CallSite"] = field(default_factory=list)
    """Every call whose callee is a (dotted) name, with the function it sits in."""
    argparse: dict[str, "ArgparseArgument"] = field(default_factory=dict)
    """`parser.add_argument("--n-layers", default=2)` by dest (`n_layers`)."""
    derived: dict[str, Any] = field(default_factory=dict)
    """Analyses computed from the model on first use (flattened contexts), shared by rules."""
    oracle: "Oracle | None" = None
    """What the project knows about names this file cannot see (set by the project index when
    it parses the file; None for a file modelled on its own)."""

    def qualify_call(self, call: cst.Call) -> str | None:
        return self.imports.qualify_expr(call.func)

    def qualify_expr(self, node: cst.BaseExpression) -> str | None:
        return self.imports.qualify_expr(node)

    def number(self, node: cst.BaseExpression | None, lookup=None) -> float | int | None:
        """A constant's value; names resolve through `lookup` (default: module constants)."""
        return None if node is None else evaluate_number(node, self.imports, lookup or self.constants)


@dataclass(frozen=True)
class Role:
    """What an object is, from what it is bound to: 'optimizer', 'scheduler', 'scaler', 'engine',
    'clipper' (its `step(params)` clips, like a GradientClipper) or 'other'."""

    kind: str
    clips: str | None = None
    """For an optimizer or a clipper: how its `step()` clips (`GradientClipper.step clips
    (line 763)`), else None."""
    how: str = "binding"
    """'binding' (read from what the name is bound to) or 'name' (the documented fallback)."""


@dataclass(frozen=True)
class CallEffect:
    """What a call does to gradients, as the project index read it from the callee's body."""

    clips: str | None = None
    """How it clips (`its body calls clip_grad_norm_ at trainer.py:389`), or None."""
    form: str = "project"
    """'project' (read from its body), 'declared' (configuration), 'assumed' (name fallback)."""
    zeroes: bool = False
    detaches: bool | None = None
    """True / False when its body was read (or the configuration says), None when unknown."""
    resolved: bool = False
    """The callee's body was found (in the project, or on disk)."""
    clips_if: str | None = None
    """No sure clip, but clipping when the configuration registers a certain object: `` `self.engine.run_event(...)`
    runs `algorithm.apply(...)` over configured objects; `GradientClipping.apply` (gc.py:131) clips``."""


class Oracle:
    """Questions a file's model cannot answer alone, answered by the project index
    (gradlint.index.behaviour implements it). This base answers "unknown" to everything, so
    a model built without a project falls back on what the file itself shows."""

    def call_effect(self, function: Function | None, event: Event) -> CallEffect | None:
        """What a call the file cannot resolve does (a function or method in another file, a
        method of an object whose class is elsewhere); None when the callee cannot be read."""
        return None

    def role(self, function: Function | None, value: cst.BaseExpression, position: int | None = None) -> "Role | None":
        """The role of what `value` evaluates to where `function` runs, when the file alone
        cannot tell: a call of a class or function of another file, a name bound there, an
        attribute a base class in another file sets; None when unknown. `position`: the element
        of a returned tuple (`model, optimizer, scheduler = setup(...)`)."""
        return None

    def parameter_role(self, function: Function, name: str) -> "Role | None":
        """The role of a parameter, from what the function's callers (in any file) pass."""
        return None

    def returns_iterator(self, function: Function | None, call: cst.Call) -> bool | None:
        """Whether a call of a function in another file returns a one-shot iterator (a
        generator function, or one that returns `model.parameters()` / `filter(...)`)."""
        return None

    def declared(self, qualified: str) -> str | None:
        """'clip' / 'detach' when the configuration declares this function so."""
        return None

    def remember(self, key: str, table: dict, compute):
        """`table[key]`, computed once; the index replays the cross-file facts it rested on
        into the cache's dependency log on each use."""
        if key not in table:
            table[key] = compute()
        return table[key]


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
