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

from gradlint.analysis.calls import arg_value
from gradlint.analysis.inits import METHOD_ARGUMENTS
from gradlint.analysis.layers import owner_class
from gradlint.analysis.model import ClassInfo, FileModel, Function, shorten
from gradlint.analysis.names import dotted_name
from gradlint.analysis.tensors import assigned_to, code, strip_data
from gradlint.index.init_eval import Evaluator
from gradlint.index.init_values import (
    UNKNOWN,
    FunctionRef,
    Layer,
    LayerRef,
    OtherRef,
    OwnerRef,
    ParamRef,
    Frame,
    Return,
    arith,
    is_number,
    is_same,
    truth,
)

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_CALL_DEPTH = 6
MAX_ITERATIONS = 256
MAX_STEPS = 200
GATES = {"RNN": 1, "RNNCell": 1, "LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3}
MAX_STATEMENTS = 20000
"""Statements one program may run (nested loops over resolved ranges stop here)."""
BASES = {"RNNBase": ("RNN", "LSTM", "GRU"), "RNNCellBase": ("RNNCell", "LSTMCell", "GRUCell")}



@dataclass
class Program:
    steps: list[dict] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    nodes: list[tuple[Path, cst.CSTNode, str]] = field(default_factory=list)
    """(file, node, how it was reached) of each step, in the same order (not JSON: for GL301's
    findings on inits it reaches through loops, `apply` and methods)."""

    def data(self) -> dict:
        out: dict[str, Any] = {}
        if self.steps:
            out["init_program"] = self.steps
        if self.unresolved:
            out["init_unresolved"] = self.unresolved
        return out


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
    try:
        runner.run_site(path, model, site.function)
    except Return:
        pass
    except (RecursionError, ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        # Code the interpreter does not follow: what it read so far stands, and the report says so.
        program.unresolved.append(f"{project.where(path, call)}: the init code could not be followed further "
                                  f"({type(error).__name__})")
    return program


# --------------------------------------------------------------------------- the interpreter


class _Runner(Evaluator):
    def __init__(self, project: ProjectIndex, layer: Layer, call: cst.Call, program: Program) -> None:
        self.project = project
        self.layer = layer
        self.call = call
        self.program = program
        self.depth = 0
        self.seen_unresolved: set[str] = set()
        self.budget = MAX_STATEMENTS
        self.instances: dict[int, OwnerRef] = {}
        """Constructions of the owning class met elsewhere (`init_gates(Model())`): the owner."""
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
        """What the code does with an instance of the owning class, in any file of the run, after
        its construction: `model.init_weights()`, `model.apply(weights_init)`, a helper it is
        passed to (`init_gates(model)`, `init_gates(Model())`)."""
        names = {name for name in info.methods if name != "__init__"} | {"apply"}
        symbol = self.project.class_symbol(path, info)
        if symbol is None:
            return
        owner = OwnerRef(inner, info.name)
        for site_path, site in self.project.call_sites(symbol):
            found = self.project.model_call(site_path, site)
            if found is None:
                continue
            model, construction = found
            self.instances[id(construction.node)] = owner
            holder = assigned_to(model, construction.node, construction.function)
            if holder is not None and "." in holder:
                continue
            for other in model.calls:
                if other.function is not construction.function or other.node is construction.node:
                    continue
                func = other.node.func
                method = isinstance(func, cst.Attribute) and holder is not None and dotted_name(func.value) == holder \
                    and func.attr.value in names
                passed = any(
                    (holder is not None and isinstance(arg.value, cst.Name) and arg.value.value == holder)
                    or arg.value is construction.node
                    for arg in other.node.args
                )
                if not method and not passed:
                    continue
                env = {holder: owner} if holder is not None else {}
                frame = Frame(site_path, model, other.function, env)
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
        except Return:
            pass
        finally:
            self.depth -= 1
        return UNKNOWN

    def guarded(self, action) -> None:
        try:
            action()
        except Return:
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
            raise Return()
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
        known = truth(self.ev(statement.test, frame))
        if known is True:
            self.suite(statement.body, frame)
        elif known is False:
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
            raise Return()

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
        tensor = self.ev(strip_data(target), frame)
        if isinstance(tensor, ParamRef):
            spec = self.value_spec(value, frame)
            self.emit(tensor, spec, node, frame, "the new value")
        else:
            self.expression_statement(value, frame)

    def augmented(self, statement: cst.AugAssign, frame: Frame) -> None:
        target = self.ev(strip_data(statement.target), frame)
        operator = type(statement.operator).__name__
        if isinstance(target, ParamRef):
            factor = self.ev(statement.value, frame)
            if operator in ("MultiplyAssign", "DivideAssign") and is_number(factor) and factor != 0:
                value = factor if operator == "MultiplyAssign" else 1 / factor
                self.emit(target, {"init": "multiply", "factor": float(value)}, statement, frame, "")
            else:
                self.emit(target, None, statement, frame, "the factor" if is_same(factor, UNKNOWN) else "the operation")
            return
        if isinstance(statement.target, cst.Name):
            current = frame.env.get(statement.target.value, UNKNOWN)
            other = self.ev(statement.value, frame)
            frame.env[statement.target.value] = arith(operator.replace("Assign", ""), current, other)

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
        if frame is None:
            return None
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
        self.program.nodes.append((frame.path, node, self.how(frame)))

    def how(self, frame: Frame) -> str:
        """How the step is reached, for messages: `in `_init_weights`, applied by `self.apply``."""
        function = frame.function
        return f"in `{function.name}()`" if function is not None else "at module level"

    def unresolved(self, frame: Frame, node: cst.CSTNode, text: str, where: str | None = None) -> None:
        entry = f"{where or self.project.where(frame.path, node)}: {text}"
        if entry not in self.seen_unresolved:
            self.seen_unresolved.add(entry)
            self.program.unresolved.append(entry)

    # ------------------------------------------------------------ evaluation


def _is_tensor_view(call: cst.Call) -> bool:
    """`w.data.t()`-like receivers that are still the tensor (we treat `.detach()` as itself)."""
    return isinstance(call.func, cst.Attribute) and call.func.attr.value in ("detach",)


def _function_of_node(model: FileModel, node: cst.FunctionDef) -> Function | None:
    for function in model.all_functions:
        if function.node is node:
            return function
    return None


__all__ = ["Program", "init_program"]


