"""The init program of a layer: every initialisation the code applies to its parameters, in order.

`init_program(project, path, call, kind, config)` answers "what does the code do to the weights
of this `nn.RNN(...)` / `nn.LSTM(...)` before training?" for the dynamic probe, which rebuilds the
layer with exactly that (gradlint.probe.build). The answer is a list of steps, each on one
parameter of the layer by torch's name (`weight_hh_l0`, `bias_ih_l0`), in program order:

    {"init": "orthogonal_", "gain_argument": 1.5, "param": "weight_hh_l0",
     "at": "model.py:57", "code": "nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=1.5)"}

with `rows: [start, stop]` (and `row_unit`, the hidden size) for a slice or a gate block
(`w[h:2 * h]`, `w.chunk(4, 0)`), and the operations that could not be read (an argument that does
not resolve, a name test gradlint cannot evaluate) under `unresolved`, so the probe says what it
left at PyTorch's default.

How: a small interpreter runs the code that builds the layer, with the layer as a value.
- Where the layer lives: `self.rnn = nn.RNN(...)` in a class (its methods run with `self` bound to
  the module that owns the layer), or a local `rnn = nn.RNN(...)` (the function runs from the top).
- What runs: the building method, the methods it calls on `self` (`self.init_weights()`,
  `self.reset_parameters()`, `self._init_weights()`), `self.apply(fn)` (fn runs on each submodule:
  the layer, "another module", the owner), helper functions the layer or a parameter is passed to,
  and, in other files of the run, calls on an instance of the owning class (`model.init_weights()`,
  `model.apply(weights_init)`), and the `__init__` of classes that hold the owner as a submodule.
- What a value can be: the layer, the module that owns it (with the attribute path to the layer),
  one of its parameters (with a row slice), another module or tensor (ignored), a number or a
  string (from the code or, through the project index, from call sites and argparse), or unknown.
  `named_parameters()` / `parameters()` / `modules()` / `chunk()` / `range()` loops run once per
  element; `if` tests on names (`"weight_hh" in name`, `name.startswith("bias")`), shapes
  (`p.dim() > 1`), `isinstance(m, nn.LSTM)` and `m.__class__.__name__` are evaluated. A test that
  cannot be evaluated guarding an init of the layer is reported as unresolved, never guessed.
- Which operations: `nn.init.*` functions, the Tensor methods `normal_`, `uniform_`, `fill_`,
  `zero_`, `mul_`, `div_`, `copy_`, `w *= k`, `w /= k`, and new values (`w.data = torch.eye(h) * k`,
  `self.rnn.weight_hh_l0 = nn.Parameter(...)`), on a parameter, a `.data` of it, or a slice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value
from gradlint.analysis.inits import FUNCTION_ARGUMENTS, METHOD_ARGUMENTS, REQUIRED
from gradlint.analysis.layers import ancestors, owner_class
from gradlint.analysis.model import ClassInfo, FileModel, Function, shorten
from gradlint.analysis.names import dotted_name
from gradlint.analysis.tensors import PARAMETER_CLASSES, TENSOR_MOVES, code, tensor_shape

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_CALL_DEPTH = 6
MAX_ITERATIONS = 256
MAX_STEPS = 200
GATES = {"RNN": 1, "RNNCell": 1, "LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3}
MAX_STATEMENTS = 20000
"""Statements one program may run (nested loops over resolved ranges stop here)."""
_BASES = {"RNNBase": ("RNN", "LSTM", "GRU"), "RNNCellBase": ("RNNCell", "LSTMCell", "GRUCell")}


# --------------------------------------------------------------------------- values


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class LayerRef:
    """The layer itself."""


@dataclass(frozen=True)
class OwnerRef:
    """A module that holds the layer at `path` (`("rnn",)`, `("encoder", "rnn")`)."""

    path: tuple[str, ...]
    cls: str = ""


@dataclass(frozen=True)
class OtherRef:
    """A module or tensor that is not the layer nor one of its parameters."""


@dataclass(frozen=True)
class ParamRef:
    name: str
    """torch's name in the layer: `weight_hh_l0`."""
    dims: int
    rows: tuple[int, int] | None = None
    """A row slice (dim 0), in the user's sizes."""
    block: tuple[int, int] | None = None
    """(index, count): one of `count` equal row blocks (`chunk`), when the sizes are unknown."""
    label: str = ""
    """The name as the loop sees it (`rnn.weight_hh_l0` from the owner's named_parameters())."""


@dataclass(frozen=True)
class FunctionRef:
    path: Path
    model: FileModel
    function: Function
    bound_self: Any = None


@dataclass(frozen=True)
class TypeRef:
    """`type(m)` of the layer (or another module)."""

    of: Any


@dataclass(frozen=True)
class ClassRef:
    names: tuple[str, ...] | None
    """torch.nn classes by last segment; None: a class that is not torch's (a project class)."""


@dataclass
class Layer:
    """What the interpreter knows about the layer whose program it collects."""

    kind: str
    hidden_size: int | None
    input_size: int | None
    num_layers: int
    bias: bool
    bidirectional: bool

    @property
    def gates(self) -> int:
        return GATES.get(self.kind, 1)

    def parameters(self) -> list[ParamRef]:
        """torch's parameters of the layer, in registration order."""
        suffixes = [""] if self.kind.endswith("Cell") else [
            f"_l{index}{direction}" for index in range(self.num_layers)
            for direction in (("", "_reverse") if self.bidirectional else ("",))
        ]
        names: list[ParamRef] = []
        for suffix in suffixes:
            names.append(ParamRef(f"weight_ih{suffix}", 2))
            names.append(ParamRef(f"weight_hh{suffix}", 2))
            if self.bias:
                names.append(ParamRef(f"bias_ih{suffix}", 1))
                names.append(ParamRef(f"bias_hh{suffix}", 1))
        return names

    def parameter(self, name: str) -> ParamRef | None:
        for param in self.parameters():
            if param.name == name:
                return param
        return None

    def rows(self) -> int | None:
        return self.gates * self.hidden_size if self.hidden_size else None


@dataclass
class Program:
    steps: list[dict] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def data(self) -> dict:
        out: dict[str, Any] = {}
        if self.steps:
            out["init_program"] = self.steps
        if self.unresolved:
            out["init_unresolved"] = self.unresolved
        return out


class _Return(Exception):
    pass


@dataclass
class Frame:
    path: Path
    model: FileModel
    function: Function | None
    env: dict[str, Any]
    dry: str | None = None
    """Set when the code runs under a condition gradlint cannot evaluate (its text): an init of
    the layer met here is reported as unresolved instead of applied."""

    def child(self, **changes: Any) -> Frame:
        values = dict(path=self.path, model=self.model, function=self.function, env=self.env, dry=self.dry)
        values.update(changes)
        return Frame(**values)


# --------------------------------------------------------------------------- the entry point


def init_program(project: ProjectIndex, path: Path, call: cst.Call, kind: str, config: Any) -> Program:
    """The init program of the layer built by `call` (a node of `project.model(path)`), memoised
    for the run's trees with the dependencies it read."""
    table = project.table("init_program.programs")
    return project.deps.memo(table, id(call), lambda: _collect(project, path, call, kind, config))


def _collect(project: ProjectIndex, path: Path, call: cst.Call, kind: str, config: Any) -> Program:
    model = project.model(path)
    program = Program()
    if model is None:
        return program
    site = next((s for s in model.calls if s.node is call), None)
    if site is None:
        return program
    num_layers = config.integer("num_layers") if config.get("num_layers") is not None else 1
    layer = Layer(
        kind=kind,
        hidden_size=config.integer("hidden_size"),
        input_size=config.integer("input_size"),
        num_layers=max(1, min(num_layers or 1, 16)),
        bias=config.get("bias") is not False,
        bidirectional=config.get("bidirectional") is True,
    )
    runner = _Runner(project, layer, call, program)
    runner.run_site(path, model, site.function)
    return program


# --------------------------------------------------------------------------- the interpreter


class _Runner:
    def __init__(self, project: ProjectIndex, layer: Layer, call: cst.Call, program: Program) -> None:
        self.project = project
        self.layer = layer
        self.call = call
        self.program = program
        self.depth = 0
        self.seen_unresolved: set[str] = set()
        self.budget = MAX_STATEMENTS
        self.owner_classes: list[tuple[Path, ClassInfo, tuple[str, ...]]] = []

    # ------------------------------------------------------------ where the layer lives

    def run_site(self, path: Path, model: FileModel, function: Function | None) -> None:
        target = assigned_to(model, self.call, function)
        info = owner_class(model, function)
        if target is not None and target.startswith("self.") and target.count(".") == 1 and info is not None:
            owner = OwnerRef((target[5:],), info.name)
            assert function is not None
            self.owner_classes.append((path, info, owner.path))
            self.run_function(Frame(path, model, function, {}), function, [], {}, bound_self=owner)
            self.run_holders(path, info, owner.path, 0)
            self.run_instance_calls(path, info, owner.path)
            return
        if target is not None and "." not in target:
            if function is None:
                body = model.module.body
                self.run_block(body, Frame(path, model, None, {}))
            else:
                self.run_function(Frame(path, model, function, {}), function, [], {})

    def run_holders(self, path: Path, info: ClassInfo, inner: tuple[str, ...], depth: int) -> None:
        """Classes of the run that hold the owner as `self.x = Owner(...)`: their `__init__` runs
        with the longer path (`encoder.rnn`)."""
        if depth >= 2:
            return
        symbol = self.project.class_symbol(path, info)
        if symbol is None:
            return
        for site_path, site in self.project.call_sites(symbol):
            found = self.project.model_call(site_path, site)
            if found is None:
                continue
            model, call_site = found
            target = assigned_to(model, call_site.node, call_site.function)
            holder = owner_class(model, call_site.function)
            if target is None or holder is None or not target.startswith("self.") or target.count(".") != 1:
                continue
            owner = OwnerRef((target[5:], *inner), holder.name)
            function = call_site.function
            if function is None:
                continue
            self.owner_classes.append((site_path, holder, owner.path))
            self.run_function(Frame(site_path, model, function, {}), function, [], {}, bound_self=owner)
            self.run_holders(site_path, holder, owner.path, depth + 1)

    def run_instance_calls(self, path: Path, info: ClassInfo, inner: tuple[str, ...]) -> None:
        """`model.init_weights()` / `model.apply(weights_init)` on an instance of the owning class,
        in any file of the run (after its construction)."""
        names = {name for name in info.methods if name != "__init__"} | {"apply"}
        symbol = self.project.class_symbol(path, info)
        if symbol is None:
            return
        for site_path, site in self.project.call_sites(symbol):
            found = self.project.model_call(site_path, site)
            if found is None:
                continue
            model, construction = found
            holder = assigned_to(model, construction.node, construction.function)
            if holder is None or "." in holder:
                continue
            for other in model.calls:
                if other.function is not construction.function:
                    continue
                func = other.node.func
                if not (isinstance(func, cst.Attribute) and dotted_name(func.value) == holder and func.attr.value in names):
                    continue
                frame = Frame(site_path, model, other.function, {holder: OwnerRef(inner, info.name)})
                self.guarded(lambda: self.expression_statement(other.node, frame))

    # ------------------------------------------------------------ functions and blocks

    def run_function(self, frame: Frame, function: Function, args: list, kwargs: dict, bound_self: Any = None) -> Any:
        if self.depth >= MAX_CALL_DEPTH:
            return UNKNOWN
        env: dict[str, Any] = {}
        params = list(function.node.params.params)
        values = list(args)
        if bound_self is not None and params:
            env[params[0].name.value] = bound_self
            params = params[1:]
        for param in params:
            name = param.name.value
            if values:
                env[name] = values.pop(0)
            elif name in kwargs:
                env[name] = kwargs[name]
        inner = Frame(frame.path, frame.model, function, env, frame.dry)
        self.depth += 1
        try:
            body = function.node.body
            if isinstance(body, cst.IndentedBlock):
                self.run_block(body.body, inner)
            elif isinstance(body, cst.SimpleStatementSuite):
                for small in body.body:
                    self.small(small, inner)
        except _Return:
            pass
        finally:
            self.depth -= 1
        return UNKNOWN

    def guarded(self, action) -> None:
        try:
            action()
        except _Return:
            pass
        except RecursionError:  # pragma: no cover - pathological code
            pass

    def run_block(self, statements, frame: Frame) -> None:
        for statement in statements:
            if len(self.program.steps) >= MAX_STEPS:
                return
            self.statement(statement, frame)

    def suite(self, suite: cst.BaseSuite, frame: Frame) -> None:
        if isinstance(suite, cst.IndentedBlock):
            self.run_block(suite.body, frame)
        elif isinstance(suite, cst.SimpleStatementSuite):
            for small in suite.body:
                self.small(small, frame)

    def statement(self, statement: cst.CSTNode, frame: Frame) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise _Return()
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                self.small(small, frame)
        elif isinstance(statement, cst.If):
            self.branch(statement, frame)
        elif isinstance(statement, cst.For):
            self.loop(statement, frame)
        elif isinstance(statement, cst.While):
            self.suite(statement.body, frame.child(dry=frame.dry or "inside a while loop"))
        elif isinstance(statement, cst.With):
            self.suite(statement.body, frame)
        elif isinstance(statement, cst.Try) or type(statement).__name__ == "TryStar":
            self.suite(statement.body, frame)  # type: ignore[attr-defined]
        elif isinstance(statement, cst.FunctionDef):
            function = _function_of_node(frame.model, statement)
            if function is not None:
                frame.env[statement.name.value] = FunctionRef(frame.path, frame.model, function)

    def branch(self, statement: cst.If, frame: Frame) -> None:
        truth = _truth(self.ev(statement.test, frame))
        if truth is True:
            self.suite(statement.body, frame)
        elif truth is False:
            orelse = statement.orelse
            if isinstance(orelse, cst.If):
                self.branch(orelse, frame)
            elif isinstance(orelse, cst.Else):
                self.suite(orelse.body, frame)
        else:
            why = frame.dry or f"under `if {shorten(code(statement.test), 60)}`, which gradlint cannot evaluate"
            dry = frame.child(dry=why)
            self.suite(statement.body, dry)
            orelse = statement.orelse
            if isinstance(orelse, cst.If):
                self.branch(orelse, dry)
            elif isinstance(orelse, cst.Else):
                self.suite(orelse.body, dry)

    def loop(self, statement: cst.For, frame: Frame) -> None:
        items = self.iterate(statement.iter, frame)
        if items is None:
            why = frame.dry or f"in a loop over `{shorten(code(statement.iter), 60)}`, which gradlint cannot list"
            dry = frame.child(dry=why)
            self.bind(statement.target, UNKNOWN, dry)
            self.suite(statement.body, dry)
            return
        for item in items[:MAX_ITERATIONS]:
            self.bind(statement.target, item, frame)
            self.suite(statement.body, frame)

    def bind(self, target: cst.BaseExpression, value: Any, frame: Frame) -> None:
        if isinstance(target, cst.Name):
            frame.env[target.value] = value
        elif isinstance(target, (cst.Tuple, cst.List)):
            parts = value if isinstance(value, (tuple, list)) and len(value) == len(target.elements) else None
            for index, element in enumerate(target.elements):
                self.bind(element.value, parts[index] if parts is not None else UNKNOWN, frame)

    # ------------------------------------------------------------ small statements

    def small(self, small: cst.BaseSmallStatement, frame: Frame) -> None:
        if isinstance(small, cst.Expr):
            self.expression_statement(small.value, frame)
        elif isinstance(small, cst.Assign):
            self.assign(small, frame)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self.assign_to(small.target, small.value, small, frame)
        elif isinstance(small, cst.AugAssign):
            self.augmented(small, frame)
        elif isinstance(small, cst.Return):
            if small.value is not None:
                self.expression_statement(small.value, frame)
            raise _Return()

    def assign(self, statement: cst.Assign, frame: Frame) -> None:
        for target in statement.targets:
            self.assign_to(target.target, statement.value, statement, frame)

    def assign_to(self, target: cst.BaseExpression, value: cst.BaseExpression, node: cst.CSTNode, frame: Frame) -> None:
        if isinstance(target, cst.Name):
            frame.env[target.value] = self.ev(value, frame)
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            evaluated = self.ev(value, frame)
            self.bind(target, evaluated, frame)
            return
        tensor = self.ev(_strip_data(target), frame)
        if isinstance(tensor, ParamRef):
            spec = self.value_spec(value, frame)
            self.emit(tensor, spec, node, frame, "the new value")
        else:
            self.expression_statement(value, frame)

    def augmented(self, statement: cst.AugAssign, frame: Frame) -> None:
        target = self.ev(_strip_data(statement.target), frame)
        operator = type(statement.operator).__name__
        if isinstance(target, ParamRef):
            factor = self.ev(statement.value, frame)
            if operator in ("MultiplyAssign", "DivideAssign") and _number(factor) and factor != 0:
                value = factor if operator == "MultiplyAssign" else 1 / factor
                self.emit(target, {"init": "multiply", "factor": float(value)}, statement, frame, "")
            else:
                self.emit(target, None, statement, frame, "the factor" if _is(factor, UNKNOWN) else "the operation")
            return
        if isinstance(statement.target, cst.Name):
            current = frame.env.get(statement.target.value, UNKNOWN)
            other = self.ev(statement.value, frame)
            frame.env[statement.target.value] = _arith(operator.replace("Assign", ""), current, other)

    # ------------------------------------------------------------ calls

    def expression_statement(self, node: cst.BaseExpression, frame: Frame) -> None:
        if isinstance(node, cst.Call):
            self.call_statement(node, frame)

    def call_statement(self, call: cst.Call, frame: Frame) -> Any:
        """Run a call for its effect on the layer; returns the tensor it returns (for chains)."""
        model = frame.model
        func = call.func
        qualified = model.qualify_expr(func) or ""
        if qualified.startswith("torch.nn.init.") or qualified.endswith(".trunc_normal_"):
            name = qualified.rsplit(".", 1)[-1]
            tensor_node = arg_value(call, 0, "tensor")
            tensor = self.tensor_of(tensor_node, frame) if tensor_node is not None else UNKNOWN
            name = name if name.endswith("_") else name + "_"
            if isinstance(tensor, ParamRef):
                spec = self.function_spec(name, call, frame)
                self.emit(tensor, spec, call, frame, "an argument")
            return tensor
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            if attr in METHOD_ARGUMENTS or attr in ("copy_", "data_copy_"):
                receiver = func.value
                tensor = (self.call_statement(receiver, frame) if isinstance(receiver, cst.Call)
                          and not _is_tensor_view(receiver) else self.tensor_of(receiver, frame))
                if isinstance(tensor, ParamRef):
                    if attr == "copy_":
                        source = arg_value(call, 0, "src")
                        spec = self.value_spec(source, frame) if source is not None else None
                        self.emit(tensor, spec, call, frame, "the copied value")
                    else:
                        spec = self.method_spec(attr, call, frame)
                        self.emit(tensor, spec, call, frame, "an argument")
                return tensor
            receiver_value = self.ev(func.value, frame)
            if attr == "apply" and isinstance(receiver_value, (OwnerRef, LayerRef)):
                self.apply(call, receiver_value, frame)
                return receiver_value
            if attr == "reset_parameters" and isinstance(receiver_value, LayerRef):
                self.reset(call, frame)
                return UNKNOWN
            if isinstance(receiver_value, OwnerRef):
                method = self.method_of(receiver_value, attr, frame)
                if method is not None:
                    args, kwargs = self.arguments(call, frame)
                    self.run_function(frame.child(path=method.path, model=method.model), method.function, args, kwargs,
                                      bound_self=receiver_value)
                return UNKNOWN
        # A helper the layer, its owner or one of its parameters is passed to.
        args, kwargs = self.arguments(call, frame)
        if any(isinstance(v, (LayerRef, OwnerRef, ParamRef)) for v in [*args, *kwargs.values()]):
            function = self.ev(func, frame)
            if not isinstance(function, FunctionRef):
                function = self.function_named(func, frame)
            if isinstance(function, FunctionRef):
                self.run_function(frame.child(path=function.path, model=function.model), function.function, args, kwargs)
        return UNKNOWN

    def arguments(self, call: cst.Call, frame: Frame) -> tuple[list, dict]:
        args, kwargs = [], {}
        for arg in call.args:
            if arg.star:
                continue
            value = self.ev(arg.value, frame)
            if arg.keyword is not None:
                kwargs[arg.keyword.value] = value
            else:
                args.append(value)
        return args, kwargs

    def apply(self, call: cst.Call, receiver: Any, frame: Frame) -> None:
        node = arg_value(call, 0, "fn")
        function = self.ev(node, frame) if node is not None else UNKNOWN
        if not isinstance(function, FunctionRef) and node is not None:
            function = self.function_named(node, frame)
        if not isinstance(function, FunctionRef):
            self.unresolved(frame, call, f"`{shorten(code(call), 60)}` applies a function gradlint cannot read")
            return
        # torch applies fn to every submodule, children first, then the module itself.
        modules: list[Any] = [LayerRef(), OtherRef()]
        if isinstance(receiver, OwnerRef):
            modules.append(receiver)
        for module in modules:
            self.run_function(frame.child(path=function.path, model=function.model), function.function, [module], {},
                              bound_self=function.bound_self)

    def reset(self, call: cst.Call, frame: Frame) -> None:
        h = self.layer.hidden_size
        for param in self.layer.parameters():
            if h:
                spec = {"init": "uniform_", "a": -1 / math.sqrt(h), "b": 1 / math.sqrt(h)}
            else:
                spec = {"init": "default"}
            self.emit(param, spec, call, frame, "")

    def method_of(self, owner: OwnerRef, name: str, frame: Frame) -> FunctionRef | None:
        for path, info, inner in self.owner_classes:
            if inner == owner.path and info.name == owner.cls:
                method = info.methods.get(name)
                model = self.project.model(path)
                if method is not None and model is not None:
                    return FunctionRef(path, model, method)
        info = frame.model.classes.get(owner.cls)
        method = info.methods.get(name) if info is not None else None
        return FunctionRef(frame.path, frame.model, method) if method is not None else None

    def function_named(self, node: cst.BaseExpression, frame: Frame) -> FunctionRef | None:
        """A module-level function of this file or of the project (`weights_init`, `utils.init_rnn`)."""
        name = dotted_name(node)
        if name is None:
            return None
        if "." not in name and name in frame.model.functions:
            return FunctionRef(frame.path, frame.model, frame.model.functions[name])
        symbol = self.project.resolve_callee(frame.path, name)
        if symbol is None or symbol.kind != "function":
            return None
        model = self.project.model(symbol.path)
        if model is None:
            return None
        function = model.functions.get(symbol.name)
        return FunctionRef(symbol.path, model, function) if function is not None else None

    # ------------------------------------------------------------ specs

    def function_spec(self, name: str, call: cst.Call, frame: Frame) -> dict | None:
        table = FUNCTION_ARGUMENTS.get(name)
        if table is None:
            return None
        values = self.read(call, table, frame)
        if values is None:
            return None
        spec: dict[str, Any] = {"init": name}
        if name in ("orthogonal_", "xavier_normal_", "xavier_uniform_"):
            spec["gain_argument"] = values["gain"]
        elif name == "constant_":
            spec["val"] = values["val"]
        else:
            spec.update(values)
        return spec

    def method_spec(self, attr: str, call: cst.Call, frame: Frame) -> dict | None:
        values = self.read(call, METHOD_ARGUMENTS[attr], frame)
        if values is None:
            return None
        if attr == "normal_":
            return {"init": "normal_", **values}
        if attr == "uniform_":
            return {"init": "uniform_", "a": values["from"], "b": values["to"]}
        if attr == "fill_":
            return {"init": "constant_", "val": values["value"]}
        if attr == "zero_":
            return {"init": "zeros_"}
        factor = values["other"]
        if not _number(factor) or factor == 0:
            return None
        return {"init": "multiply", "factor": float(factor if attr == "mul_" else 1 / factor)}

    def read(self, call: cst.Call, table, frame: Frame) -> dict | None:
        values: dict[str, Any] = {}
        for name, position, default in table:
            node = arg_value(call, position, name)
            if node is None:
                if default is REQUIRED:
                    return None
                values[name] = default
                continue
            value = self.ev(node, frame)
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                return None
            values[name] = float(value) if isinstance(value, int) else value
        return values

    def value_spec(self, value: cst.BaseExpression | None, frame: Frame, depth: int = 0) -> dict | None:
        """The init a new value amounts to: `torch.eye(h) * 1.5` -> eye_ scaled by 1.5."""
        if value is None or depth > 4:
            return None
        value = _unwrap_value(frame.model, value)
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, (cst.Multiply, cst.Divide)):
            right = self.ev(value.right, frame)
            left = self.ev(value.left, frame) if isinstance(value.operator, cst.Multiply) else UNKNOWN
            if _number(right) and right != 0:
                inner, factor = self.value_spec(value.left, frame, depth + 1), (
                    right if isinstance(value.operator, cst.Multiply) else 1 / right)
            elif _number(left):
                inner, factor = self.value_spec(value.right, frame, depth + 1), left
            else:
                return None
            if inner is None:
                return None
            return dict(inner, scale=float(inner.get("scale", 1.0)) * float(factor))
        if not isinstance(value, cst.Call):
            number = self.ev(value, frame)
            return {"init": "constant_", "val": float(number)} if _number(number) else None
        qualified = frame.model.qualify_expr(value.func) or ""
        if qualified.startswith("torch.nn.init."):
            name = qualified.rsplit(".", 1)[-1]
            return self.function_spec(name if name.endswith("_") else name + "_", value, frame)
        if isinstance(value.func, cst.Attribute) and value.func.attr.value in METHOD_ARGUMENTS:
            return self.method_spec(value.func.attr.value, value, frame)
        shape = tensor_shape(frame.model, value)
        if shape is None:
            return None
        factory = shape[0]
        if factory == "eye":
            return {"init": "eye_"}
        if factory == "zeros":
            return {"init": "zeros_"}
        if factory == "ones":
            return {"init": "ones_"}
        if factory == "randn":
            return {"init": "normal_", "mean": 0.0, "std": 1.0}
        if factory == "rand":
            return {"init": "uniform_", "a": 0.0, "b": 1.0}
        if factory == "full" and len(value.args) >= 2:
            fill = self.ev(value.args[1].value, frame)
            return {"init": "constant_", "val": float(fill)} if _number(fill) else None
        return None

    # ------------------------------------------------------------ the steps

    def emit(self, param: ParamRef, spec: dict | None, node: cst.CSTNode, frame: Frame, what: str) -> None:
        where = self.project.where(frame.path, node)
        text = shorten(code(node), 90)
        if frame.dry is not None:
            self.unresolved(frame, node, f"`{text}` on {param.name} runs {frame.dry}", where)
            return
        if spec is None:
            reason = f"{what} does not resolve" if what else "not an init the probe rebuilds"
            self.unresolved(frame, node, f"`{text}` on {param.name}: {reason}", where)
            return
        if spec.get("init") in ("sparse_", "dirac_"):
            self.unresolved(frame, node, f"`{text}` on {param.name}: {spec['init']} is not rebuilt", where)
            return
        step = {key: value for key, value in spec.items()}
        step["param"] = param.name
        if param.rows is not None:
            step["rows"] = list(param.rows)
            if self.layer.hidden_size:
                step["row_unit"] = self.layer.hidden_size
        elif param.block is not None:
            step["block"] = list(param.block)
        step["at"] = where
        step["code"] = text
        self.program.steps.append(step)

    def unresolved(self, frame: Frame, node: cst.CSTNode, text: str, where: str | None = None) -> None:
        entry = f"{where or self.project.where(frame.path, node)}: {text}"
        if entry not in self.seen_unresolved:
            self.seen_unresolved.add(entry)
            self.program.unresolved.append(entry)

    # ------------------------------------------------------------ evaluation

    def tensor_of(self, node: cst.BaseExpression, frame: Frame) -> Any:
        return self.ev(_strip_data(node), frame)

    def iterate(self, node: cst.BaseExpression, frame: Frame) -> list | None:
        value = self.ev(node, frame)
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, range):
            return list(value)[:MAX_ITERATIONS]
        if isinstance(value, (dict, str)):
            return list(value)
        return None

    def ev(self, node: cst.BaseExpression, frame: Frame) -> Any:
        try:
            return self._ev(node, frame)
        except (ArithmeticError, ValueError, TypeError, OverflowError, IndexError, KeyError, AttributeError):
            return UNKNOWN

    def _ev(self, node: cst.BaseExpression, frame: Frame) -> Any:
        if node is self.call:
            return LayerRef()
        if isinstance(node, cst.Name):
            name = node.value
            if name in frame.env:
                return frame.env[name]
            if name in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[name]
            if name in frame.model.functions:
                return FunctionRef(frame.path, frame.model, frame.model.functions[name])
            torch_class = _torch_class(frame.model.qualify_expr(node))
            if torch_class is not None:
                return torch_class
            return self.resolved(node, frame)
        if isinstance(node, (cst.Integer, cst.Float)):
            return node.evaluated_value
        if isinstance(node, cst.SimpleString):
            return node.evaluated_value
        if isinstance(node, cst.ConcatenatedString):
            left, right = self.ev(node.left, frame), self.ev(node.right, frame)
            return left + right if isinstance(left, str) and isinstance(right, str) else UNKNOWN
        if isinstance(node, cst.FormattedString):
            return self.formatted(node, frame)
        if isinstance(node, (cst.List, cst.Tuple)):
            items = [self.ev(element.value, frame) for element in node.elements if not isinstance(element, cst.StarredElement)]
            if len(items) != len(node.elements):
                return UNKNOWN
            return items if isinstance(node, cst.List) else tuple(items)
        if isinstance(node, cst.Attribute):
            return self.attribute(node, frame)
        if isinstance(node, cst.Subscript):
            return self.subscript(node, frame)
        if isinstance(node, cst.Call):
            return self.evaluate_call(node, frame)
        if isinstance(node, cst.UnaryOperation):
            value = self.ev(node.expression, frame)
            if isinstance(node.operator, cst.Not):
                truth = _truth(value)
                return UNKNOWN if truth is None else not truth
            if isinstance(node.operator, cst.Minus) and _number(value):
                return -value
            if isinstance(node.operator, cst.Plus) and _number(value):
                return value
            return UNKNOWN
        if isinstance(node, cst.BinaryOperation):
            left, right = self.ev(node.left, frame), self.ev(node.right, frame)
            result = _arith(type(node.operator).__name__, left, right)
            return self.resolved(node, frame) if result is UNKNOWN and not _refs(left, right) else result
        if isinstance(node, cst.BooleanOperation):
            left = _truth(self.ev(node.left, frame))
            if isinstance(node.operator, cst.And):
                if left is False:
                    return False
                right = _truth(self.ev(node.right, frame))
                return False if right is False else (True if left and right else UNKNOWN)
            if left is True:
                return True
            right = _truth(self.ev(node.right, frame))
            return True if right is True else (False if left is False and right is False else UNKNOWN)
        if isinstance(node, cst.Comparison):
            return self.compare(node, frame)
        if isinstance(node, cst.IfExp):
            truth = _truth(self.ev(node.test, frame))
            if truth is None:
                return UNKNOWN
            return self.ev(node.body if truth else node.orelse, frame)
        return self.resolved(node, frame)

    def resolved(self, node: cst.BaseExpression, frame: Frame) -> Any:
        scope = self.project.scope(frame.path, frame.function)
        found = self.project.resolver.resolve(node, scope)
        if found is None or not isinstance(found.value, (int, float, str, bool, list, tuple)):
            return UNKNOWN
        return found.value

    def formatted(self, node: cst.FormattedString, frame: Frame) -> Any:
        parts = []
        for part in node.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(part.value)
            elif isinstance(part, cst.FormattedStringExpression):
                value = self.ev(part.expression, frame)
                if value is UNKNOWN or part.format_spec or part.conversion:
                    return UNKNOWN
                if not isinstance(value, (int, str, float)):
                    return UNKNOWN
                parts.append(str(value))
        return "".join(parts)

    def attribute(self, node: cst.Attribute, frame: Frame) -> Any:
        attr = node.attr.value
        torch_class = _torch_class(frame.model.qualify_expr(node))
        if torch_class is not None:
            return torch_class
        base = self.ev(node.value, frame)
        return self.get_attribute(base, attr, node, frame)

    def get_attribute(self, base: Any, attr: str, node: cst.BaseExpression | None, frame: Frame) -> Any:
        if isinstance(base, OwnerRef):
            if attr == base.path[0]:
                return LayerRef() if len(base.path) == 1 else OwnerRef(base.path[1:], "")
            method = self.method_of(base, attr, frame)
            if method is not None:
                return FunctionRef(method.path, method.model, method.function, bound_self=base)
            if node is not None:
                value = self.resolved(node, frame)
                if value is not UNKNOWN:
                    return value
            return OtherRef()
        if isinstance(base, LayerRef):
            param = self.layer.parameter(attr)
            if param is not None:
                return param
            if attr in ("hidden_size", "input_size", "num_layers", "bias", "bidirectional"):
                value = getattr(self.layer, attr)
                return value if value is not None else UNKNOWN
            if attr == "__class__":
                return TypeRef(base)
            return UNKNOWN
        if isinstance(base, TypeRef) and attr == "__name__":
            return self.layer.kind if isinstance(base.of, LayerRef) else UNKNOWN
        if isinstance(base, ParamRef):
            if attr == "data":
                return base
            if attr in ("shape",):
                return UNKNOWN
            if attr == "ndim":
                return base.dims
            return UNKNOWN
        if isinstance(base, OtherRef):
            return OtherRef()
        if base is UNKNOWN and node is not None and not self.mentions_env(node, frame):
            return self.resolved(node, frame)
        return UNKNOWN

    def mentions_env(self, node: cst.BaseExpression, frame: Frame) -> bool:
        while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
            node = node.value if not isinstance(node, cst.Call) else node.func
        return isinstance(node, cst.Name) and node.value in frame.env

    def subscript(self, node: cst.Subscript, frame: Frame) -> Any:
        base = self.ev(node.value, frame)
        if len(node.slice) != 1:
            if isinstance(base, ParamRef):
                first = node.slice[0].slice
                if isinstance(first, cst.Slice) and all(
                    isinstance(element.slice, cst.Slice) and element.slice.lower is None and element.slice.upper is None
                    for element in node.slice[1:]
                ):
                    return self.slice_param(base, first, frame)
                return UNKNOWN
            return UNKNOWN
        element = node.slice[0].slice
        if isinstance(base, ParamRef):
            if isinstance(element, cst.Slice):
                return self.slice_param(base, element, frame)
            return UNKNOWN
        if isinstance(element, cst.Index):
            index = self.ev(element.value, frame)
            if isinstance(base, (list, tuple, str)) and isinstance(index, int):
                return base[index]
            if isinstance(base, dict) and isinstance(index, (str, int)):
                return base.get(index, UNKNOWN)
            if base is UNKNOWN and not self.mentions_env(node, frame):
                return self.resolved(node, frame)
            return UNKNOWN
        if isinstance(element, cst.Slice) and isinstance(base, (list, tuple, str)):
            lower = self.ev(element.lower, frame) if element.lower is not None else None
            upper = self.ev(element.upper, frame) if element.upper is not None else None
            if (lower is None or isinstance(lower, int)) and (upper is None or isinstance(upper, int)):
                return base[lower:upper]
        return UNKNOWN

    def slice_param(self, param: ParamRef, element: cst.Slice, frame: Frame) -> Any:
        if element.step is not None:
            return UNKNOWN
        total = self.layer.rows()
        if param.rows is not None:
            return UNKNOWN  # a slice of a slice: rare
        lower = self.ev(element.lower, frame) if element.lower is not None else 0
        upper = self.ev(element.upper, frame) if element.upper is not None else total
        if not isinstance(lower, int) or not isinstance(upper, int) or isinstance(lower, bool):
            return UNKNOWN
        if lower < 0 or upper < 0:
            if total is None:
                return UNKNOWN
            lower, upper = lower % total if lower < 0 else lower, upper % total if upper < 0 else upper
        if total is not None and lower == 0 and upper >= total:
            return param
        return ParamRef(param.name, param.dims, (lower, upper), None, param.label)

    def compare(self, node: cst.Comparison, frame: Frame) -> Any:
        left = self.ev(node.left, frame)
        result: Any = True
        for target in node.comparisons:
            right = self.ev(target.comparator, frame)
            outcome = _compare(type(target.operator).__name__, left, right, self.layer)
            if outcome is UNKNOWN:
                return UNKNOWN
            if not outcome:
                result = False
            left = right
        return result

    def evaluate_call(self, call: cst.Call, frame: Frame) -> Any:
        func = call.func
        name = dotted_name(func) or ""
        qualified = frame.model.qualify_expr(func) or ""
        args = [arg for arg in call.args if arg.keyword is None and not arg.star]
        if name == "isinstance" and len(args) == 2:
            subject = self.ev(args[0].value, frame)
            classes = self.classes(args[1].value, frame)
            return _isinstance(subject, classes, self.layer)
        if name == "type" and len(args) == 1:
            return TypeRef(self.ev(args[0].value, frame))
        if name == "getattr" and len(args) >= 2:
            base = self.ev(args[0].value, frame)
            attr = self.ev(args[1].value, frame)
            if isinstance(attr, str):
                return self.get_attribute(base, attr, None, frame)
            return UNKNOWN
        if name in ("range", "len", "str", "int", "float", "enumerate", "zip", "list", "tuple", "reversed", "abs",
                    "min", "max", "sorted"):
            values = [self.ev(arg.value, frame) for arg in args]
            if any(v is UNKNOWN for v in values) or len(args) != len(call.args):
                return UNKNOWN
            if name == "enumerate":
                return list(enumerate(_listed(values[0])))
            if name == "zip":
                return list(zip(*[_listed(v) for v in values]))
            if name == "len" and isinstance(values[0], ParamRef):
                return UNKNOWN
            return _BUILTINS[name](*values)
        if qualified.startswith("math.") and qualified.rsplit(".", 1)[-1] in ("sqrt", "log", "exp", "pow", "floor", "ceil"):
            values = [self.ev(arg.value, frame) for arg in args]
            if all(_number(v) for v in values):
                return getattr(math, qualified.rsplit(".", 1)[-1])(*values)
            return UNKNOWN
        if qualified.startswith("torch.nn.init.") or qualified.endswith(".trunc_normal_"):
            return self.call_statement(call, frame)
        if isinstance(func, cst.Attribute):
            attr = func.attr.value
            base = self.ev(func.value, frame)
            if isinstance(base, (LayerRef, OwnerRef)) and attr in ("named_parameters", "parameters", "modules",
                                                                   "children", "named_modules", "named_children"):
                return self.listing(base, attr)
            if isinstance(base, (LayerRef, OwnerRef)) and attr in tuple(vocab.MODULE_MOVES) + ("train", "eval",
                                                                                            "requires_grad_"):
                return base
            if isinstance(base, ParamRef):
                if attr in ("dim", "ndimension"):
                    return base.dims
                if attr in ("size",) and not call.args:
                    return UNKNOWN
                if attr in ("chunk", "split", "tensor_split", "unbind"):
                    return self.blocks(base, attr, call, frame)
                if attr in TENSOR_MOVES or attr in ("view_as",):
                    return base
                if attr in METHOD_ARGUMENTS or attr == "copy_":
                    return self.call_statement(call, frame)
                return UNKNOWN
            if isinstance(base, str) and attr in _STRING_METHODS:
                values = [self.ev(arg.value, frame) for arg in args]
                if any(v is UNKNOWN for v in values) or len(args) != len(call.args):
                    return UNKNOWN
                return getattr(base, attr)(*values)
            if isinstance(base, OwnerRef):
                method = self.method_of(base, attr, frame)
                if method is not None:
                    return self.call_statement(call, frame)
            if isinstance(base, OtherRef):
                return OtherRef()
        if qualified in ("torch.chunk", "torch.split") and args:
            base = self.ev(args[0].value, frame)
            if isinstance(base, ParamRef):
                return self.blocks(base, qualified.rsplit(".", 1)[-1], cst.Call(func, call.args[1:]), frame)
        if self.mentions_env(call, frame) or any(self.mentions_env(arg.value, frame) for arg in call.args):
            return UNKNOWN
        return self.resolved(call, frame)

    def classes(self, node: cst.BaseExpression, frame: Frame) -> list[ClassRef] | None:
        if isinstance(node, (cst.Tuple, cst.List)):
            found: list[ClassRef] = []
            for element in node.elements:
                inner = self.classes(element.value, frame)
                if inner is None:
                    return None
                found.extend(inner)
            return found
        torch_class = _torch_class(frame.model.qualify_expr(node))
        if torch_class is not None:
            return [torch_class]
        name = dotted_name(node)
        if name is not None:
            symbol = self.project.resolve_callee(frame.path, name)
            if symbol is not None and symbol.kind == "class":
                return [ClassRef(None)]
        return None

    def listing(self, base: Any, attr: str) -> list:
        prefix = ".".join(base.path) + "." if isinstance(base, OwnerRef) else ""
        if attr in ("named_parameters", "parameters"):
            params = [ParamRef(p.name, p.dims, label=prefix + p.name) for p in self.layer.parameters()]
            if attr == "parameters":
                return params
            return [(p.label, p) for p in params]
        modules: list[Any] = []
        named = attr.startswith("named")
        if attr in ("modules", "named_modules") and isinstance(base, OwnerRef):
            modules.append(("", base) if named else base)
        if isinstance(base, LayerRef):
            return [("", base)] if named else [base]
        if attr in ("children", "named_children") and len(base.path) > 1:
            layer_entry: Any = OwnerRef(base.path[1:], "")
        else:
            layer_entry = LayerRef()
        other = OtherRef()
        modules.append((".".join(base.path), layer_entry) if named else layer_entry)
        modules.append(("other", other) if named else other)
        return modules

    def blocks(self, param: ParamRef, attr: str, call: cst.Call, frame: Frame) -> Any:
        if param.rows is not None or param.block is not None:
            return UNKNOWN
        first = arg_value(call, 0, "chunks" if attr == "chunk" else "split_size_or_sections")
        dim = arg_value(call, 1, "dim")
        if dim is not None and self.ev(dim, frame) not in (0, -2 if param.dims == 2 else 0):
            return UNKNOWN
        if attr == "unbind":
            return UNKNOWN
        value = self.ev(first, frame) if first is not None else UNKNOWN
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return UNKNOWN
        total = self.layer.rows()
        if attr == "chunk" or attr == "tensor_split":
            count = value
        elif total is not None and total % value == 0:
            count = total // value
        else:
            return UNKNOWN
        if total is not None and total % count == 0:
            size = total // count
            return [ParamRef(param.name, param.dims, (i * size, (i + 1) * size), None, param.label) for i in range(count)]
        return [ParamRef(param.name, param.dims, None, (i, count), param.label) for i in range(count)]


# --------------------------------------------------------------------------- helpers


_BUILTINS = {
    "range": range, "len": len, "str": str, "int": int, "float": float, "list": list, "tuple": tuple,
    "reversed": lambda v: list(reversed(v)), "abs": abs, "min": min, "max": max, "sorted": sorted,
}
_STRING_METHODS = {
    "startswith", "endswith", "find", "rfind", "split", "rsplit", "lower", "upper", "replace", "strip", "count",
    "index", "partition", "rpartition", "isdigit",
}


def _listed(value: Any) -> list:
    if isinstance(value, (list, tuple, range, str)):
        return list(value)
    raise TypeError("not iterable")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is(value: Any, other: Any) -> bool:
    return value is other


def _refs(*values: Any) -> bool:
    return any(isinstance(v, (LayerRef, OwnerRef, ParamRef, OtherRef, TypeRef)) for v in values)


def _truth(value: Any) -> bool | None:
    if value is UNKNOWN or isinstance(value, (OtherRef, TypeRef, ClassRef, FunctionRef)):
        return None
    if isinstance(value, (LayerRef, OwnerRef, ParamRef)):
        return True
    try:
        return bool(value)
    except Exception:  # noqa: BLE001
        return None


def _arith(operator: str, left: Any, right: Any) -> Any:
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if isinstance(left, str) and isinstance(right, str) and operator == "Add":
        return left + right
    if isinstance(left, (str, list, tuple)) and isinstance(right, int) and operator == "Multiply":
        return left * right
    if not (_number(left) and _number(right)):
        return UNKNOWN
    operations = {
        "Add": lambda a, b: a + b, "Subtract": lambda a, b: a - b, "Multiply": lambda a, b: a * b,
        "Divide": lambda a, b: a / b, "FloorDivide": lambda a, b: a // b, "Modulo": lambda a, b: a % b,
        "Power": lambda a, b: a ** b,
    }
    operation = operations.get(operator)
    return operation(left, right) if operation is not None else UNKNOWN


def _compare(operator: str, left: Any, right: Any, layer: Layer) -> Any:
    if isinstance(left, TypeRef) or isinstance(right, TypeRef):
        subject, other = (left, right) if isinstance(left, TypeRef) else (right, left)
        if operator in ("Equal", "Is", "NotEqual", "IsNot", "In", "NotIn"):
            classes = [other] if isinstance(other, ClassRef) else other if isinstance(other, (list, tuple)) else None
            if classes is None or not all(isinstance(c, ClassRef) for c in classes):
                return UNKNOWN
            exact = _exact_type(subject.of, list(classes), layer)
            if exact is UNKNOWN:
                return UNKNOWN
            return exact if operator in ("Equal", "Is", "In") else not exact
        return UNKNOWN
    if left is UNKNOWN or right is UNKNOWN or _refs(left, right):
        return UNKNOWN
    try:
        if operator == "Equal":
            return left == right
        if operator == "NotEqual":
            return left != right
        if operator == "In":
            return left in right
        if operator == "NotIn":
            return left not in right
        if operator == "LessThan":
            return left < right
        if operator == "LessThanEqual":
            return left <= right
        if operator == "GreaterThan":
            return left > right
        if operator == "GreaterThanEqual":
            return left >= right
        if operator == "Is":
            return left is right
        if operator == "IsNot":
            return left is not right
    except TypeError:
        return UNKNOWN
    return UNKNOWN


def _isinstance(subject: Any, classes: list[ClassRef] | None, layer: Layer) -> Any:
    if classes is None:
        return UNKNOWN
    if isinstance(subject, LayerRef):
        for ref in classes:
            if ref.names is None:
                continue
            if layer.kind in ref.names or "Module" in ref.names:
                return True
        return False
    if isinstance(subject, OwnerRef):
        if any(ref.names is not None and "Module" in ref.names for ref in classes):
            return True
        if all(ref.names is not None for ref in classes):
            return False  # the owner is a project class, not one of torch's
        return UNKNOWN
    if isinstance(subject, ParamRef):
        return UNKNOWN
    return UNKNOWN


def _exact_type(subject: Any, classes: list[ClassRef], layer: Layer) -> Any:
    if not isinstance(subject, LayerRef):
        return UNKNOWN
    return any(ref.names is not None and layer.kind in ref.names and len(ref.names) == 1 for ref in classes)


def _torch_class(qualified: str | None) -> ClassRef | None:
    """`torch.nn.LSTM` -> ClassRef(("LSTM",)); `torch.nn.RNNBase` -> its three kinds."""
    if not qualified or not qualified.startswith("torch.nn."):
        return None
    last = qualified.rsplit(".", 1)[-1]
    if not last[:1].isupper() or qualified.startswith("torch.nn.init") or qualified.startswith("torch.nn.functional"):
        return None
    return ClassRef(_BASES.get(last, (last,)))


def _strip_data(node: cst.BaseExpression) -> cst.BaseExpression:
    while isinstance(node, cst.Attribute) and node.attr.value == "data":
        node = node.value
    return node


def _is_tensor_view(call: cst.Call) -> bool:
    """`w.data.t()`-like receivers that are still the tensor (we treat `.detach()` as itself)."""
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in ("detach",)


def _unwrap_value(model: FileModel, value: cst.BaseExpression) -> cst.BaseExpression:
    for _ in range(6):
        if isinstance(value, cst.Call) and model.qualify_expr(value.func) in PARAMETER_CLASSES:
            inner = arg_value(value, 0, "data")
            if inner is None:
                return value
            value = inner
            continue
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and \
                value.func.attr.value in TENSOR_MOVES:
            value = value.func.value
            continue
        return value
    return value


def assigned_to(model: FileModel, call: cst.Call, function: Function | None) -> str | None:
    """`self.rnn` / `rnn` for `self.rnn = nn.RNN(...)` / `rnn = nn.RNN(...).to(device)`."""
    child: cst.CSTNode = call
    for parent, node in ancestors(model, call, function):
        if isinstance(parent, cst.Attribute) and parent.value is node:
            child = parent
            continue
        if isinstance(parent, cst.Call) and parent.func is child and isinstance(child, cst.Attribute) \
                and child.attr.value in vocab.MODULE_MOVES:
            child = parent
            continue
        if isinstance(parent, (cst.Assign, cst.AnnAssign)):
            targets = [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
            if len(targets) == 1 and parent.value is node:
                return dotted_name(targets[0])
            return None
        return None
    return None


def _function_of_node(model: FileModel, node: cst.FunctionDef) -> Function | None:
    for function in model.all_functions:
        if function.node is node:
            return function
    return None


__all__ = ["Program", "assigned_to", "init_program"]


