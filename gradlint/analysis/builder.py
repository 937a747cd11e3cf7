"""The one walk over a module that builds its FileModel (see gradlint.analysis.model).

The builder visits statements in source order and records, per block (function body, loop,
branch, with), the events the rules care about: backward, optimizer step, clip, unscale,
zero_grad, assignments, calls to helpers that may be defined in the module, and the facts
the project index reads (imports, constants, classes, argparse options, risk factors).
"""

from __future__ import annotations

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import (
    ArgparseArgument,
    Block,
    BlockKind,
    CallSite,
    ClassInfo,
    Event,
    FileModel,
    Function,
    Kind,
    RiskFactor,
)
from gradlint.analysis.names import ImportMap, dotted_name, last_segment
from gradlint.analysis.values import evaluate_number, is_true, string_value
from gradlint.analysis.walk import children


def build_model(module: cst.Module) -> FileModel:
    return _Builder(module).build()


# --------------------------------------------------------------------------- builder


def _target_names(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, (cst.Tuple, cst.List)):
        names: list[str] = []
        for element in node.elements:
            names.extend(_target_names(element.value))
        return names
    if isinstance(node, cst.StarredElement):
        return _target_names(node.value)
    name = dotted_name(node)
    return [name] if name and not isinstance(node, cst.Subscript) else []


def _unpacked(
    raw_targets: list[cst.BaseExpression], targets: list[str], value: cst.BaseExpression
) -> dict[str, cst.BaseExpression]:
    """`a = b = 1` binds both to 1; `w, d = 256, 32` binds element-wise; `w, d = f()` binds nothing."""
    bound: dict[str, cst.BaseExpression] = {}
    for raw in raw_targets:
        if isinstance(raw, (cst.Tuple, cst.List)):
            elements = [element.value for element in raw.elements]
            if isinstance(value, (cst.Tuple, cst.List)) and len(value.elements) == len(elements):
                for target, element in zip(elements, value.elements):
                    name = dotted_name(target) if isinstance(target, (cst.Name, cst.Attribute)) else None
                    if name:
                        bound[name] = element.value
        else:
            name = dotted_name(raw) if isinstance(raw, (cst.Name, cst.Attribute)) else None
            if name:
                bound[name] = value
    return bound




_LEAVES = frozenset({cst.Lambda, cst.SimpleString, cst.Name, cst.Integer, cst.Float})


def iter_calls(expression: cst.CSTNode) -> list[cst.Call | cst.CompFor]:
    """The calls (and comprehension `for`s) in an expression, in evaluation order.

    Arguments come before the call. Lambda bodies are skipped: they run later, if at all.
    """
    found: list[cst.Call | cst.CompFor] = []
    stack: list[tuple[cst.CSTNode, bool]] = [(expression, False)]
    while stack:
        node, done = stack.pop()
        if done:
            found.append(node)  # type: ignore[arg-type]
            continue
        node_type = type(node)  # exact types: isinstance against libcst's ABCs is slow
        if node_type in _LEAVES:
            continue
        if node_type is cst.Call or node_type is cst.CompFor:
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(children(node)))
    return found


def _imported_clip_helper(qualified: str | None) -> bool:
    """`from train_utils import clip` / `train_utils.clip_grads(...)`: a project helper named like a clip.

    torch's own `clip`/`clamp` clamp values, not gradients, so torch names never count.
    """
    if not qualified or qualified.split(".", 1)[0] in ("torch", "numpy", "np", "math"):
        return False
    return "clip" in qualified.rsplit(".", 1)[-1].lower()


class _Builder:
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.imports = ImportMap()
        self.functions: dict[str, Function] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.all_functions: list[Function] = []
        self.constants: dict[str, cst.BaseExpression] = {}
        self.risk_factors: list[RiskFactor] = []
        self.clip_events: list[Event] = []
        self.owner_receivers: set[str] = set()
        self.calls: list[CallSite] = []
        self.argparse: dict[str, ArgparseArgument] = {}
        self._class_stack: list[ClassInfo] = []
        self._function_stack: list[Function] = []
        self._keys: dict[str, int] = {}

    def build(self) -> FileModel:
        body = Block(BlockKind.BODY, self.module)
        self._statements(self.module.body, body)
        return FileModel(
            module=self.module,
            imports=self.imports,
            body=body,
            functions=self.functions,
            classes=self.classes,
            all_functions=self.all_functions,
            constants=self.constants,
            risk_factors=self.risk_factors,
            clip_events=self.clip_events,
            owner_receivers=self.owner_receivers,
            calls=self.calls,
            argparse=self.argparse,
        )

    # ----------------------------------------------------------------- statements

    def _statements(self, statements: "list[cst.BaseStatement] | tuple", block: Block) -> None:
        for statement in statements:
            self._statement(statement, block)

    def _suite(self, suite: cst.BaseSuite, block: Block) -> None:
        if isinstance(suite, cst.IndentedBlock):
            self._statements(suite.body, block)
        elif isinstance(suite, cst.SimpleStatementSuite):
            for small in suite.body:
                self._small(small, block)

    def _statement(self, statement: cst.BaseStatement, block: Block) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                self._small(small, block)
        elif isinstance(statement, cst.FunctionDef):
            self._function(statement, block)
        elif isinstance(statement, cst.ClassDef):
            self._class(statement, block)
        elif isinstance(statement, (cst.For, cst.While)):
            self._loop(statement, block)
        elif isinstance(statement, cst.If):
            self._if(statement, block)
        elif isinstance(statement, cst.With):
            self._with(statement, block)
        elif isinstance(statement, cst.Try) or type(statement).__name__ == "TryStar":
            self._suite(statement.body, block)
            for handler in statement.handlers:
                branch = Block(BlockKind.BRANCH, handler)
                block.items.append(branch)
                self._suite(handler.body, branch)
            if statement.orelse is not None:
                self._suite(statement.orelse.body, block)
            if statement.finalbody is not None:
                self._suite(statement.finalbody.body, block)
        elif isinstance(statement, cst.Match):
            self._expression(statement.subject, block)
            for case in statement.cases:
                branch = Block(BlockKind.BRANCH, case)
                block.items.append(branch)
                self._suite(case.body, branch)

    def _loop(self, statement: "cst.For | cst.While", block: Block) -> None:
        loop = Block(BlockKind.LOOP, statement)
        if isinstance(statement, cst.For):
            self._expression(statement.iter, block)
            loop.loop_target = tuple(_target_names(statement.target))
            if isinstance(statement.iter, cst.Name):
                loop.loop_iter = statement.iter.value
                block.items.append(Event(Kind.ARG, statement, name=statement.iter.value))
        else:
            self._expression(statement.test, loop)
        block.items.append(loop)
        self._suite(statement.body, loop)
        if statement.orelse is not None:
            self._suite(statement.orelse.body, block)

    def _if(self, statement: cst.If, block: Block) -> None:
        self._expression(statement.test, block)
        branch = Block(BlockKind.BRANCH, statement, test=statement.test)
        block.items.append(branch)
        self._suite(statement.body, branch)
        orelse = statement.orelse
        if isinstance(orelse, cst.If):
            # `elif` runs only when the first test failed: a sibling branch.
            self._if(orelse, block)
        elif isinstance(orelse, cst.Else):
            other = Block(BlockKind.BRANCH, orelse)
            block.items.append(other)
            self._suite(orelse.body, other)

    def _with(self, statement: cst.With, block: Block) -> None:
        inner = Block(BlockKind.WITH, statement)
        for item in statement.items:
            self._expression(item.item, block)
            if isinstance(item.item, cst.Call):
                qualified = self.imports.qualify_expr(item.item.func)
                if qualified in vocab.NO_GRAD_CONTEXTS:
                    enabled = arg_value(item.item, 0, "mode")
                    if qualified != "torch.set_grad_enabled" or (
                        isinstance(enabled, cst.Name) and enabled.value == "False"
                    ):
                        inner.no_grad = True
                if isinstance(item.item.func, cst.Attribute) and item.item.func.attr.value in (
                    "accumulate",
                    "no_backward_sync",
                ):
                    inner.accumulate = True
        block.items.append(inner)
        self._suite(statement.body, inner)

    def _function(self, node: cst.FunctionDef, block: Block) -> None:
        parent = self._function_stack[-1] if self._function_stack else None
        owner = self._class_stack[-1] if self._class_stack and parent is None else None
        qualname = node.name.value
        if owner is not None:
            qualname = f"{owner.name}.{qualname}"
        elif parent is not None:
            qualname = f"{parent.qualname}.<locals>.{qualname}"
        count = self._keys[qualname] = self._keys.get(qualname, 0) + 1
        function = Function(
            name=node.name.value,
            qualname=qualname,
            key=qualname if count == 1 else f"{qualname}#{count}",
            node=node,
            body=Block(BlockKind.BODY, node),
            class_name=owner.name if owner else None,
            parent=parent,
            params=tuple(
                param.name.value
                for param in (
                    *node.params.posonly_params,
                    *node.params.params,
                    *node.params.kwonly_params,
                    *([node.params.star_arg] if isinstance(node.params.star_arg, cst.Param) else []),
                    *([node.params.star_kwarg] if node.params.star_kwarg is not None else []),
                )
            ),
        )
        self.all_functions.append(function)
        if owner is not None:
            owner.methods[function.name] = function
        elif parent is not None:
            parent.local_functions[function.name] = function
        elif not self._class_stack:
            self.functions[function.name] = function
        for param in node.params.params + node.params.kwonly_params:
            if param.default is not None:
                self._expression(param.default, block)
        self._function_stack.append(function)
        self._suite(node.body, function.body)
        self._function_stack.pop()

    def _class(self, node: cst.ClassDef, block: Block) -> None:
        bases = []
        for base in node.bases:
            self._expression(base.value, block)
            spelled = dotted_name(base.value)
            bases.append(self.imports.qualify(spelled) or spelled or "")
        decorators = []
        for decorator in node.decorators:
            target = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) else decorator.decorator
            spelled = dotted_name(target)
            decorators.append(self.imports.qualify(spelled) or spelled or "")
        info = ClassInfo(name=node.name.value, node=node, bases=tuple(bases), decorators=tuple(decorators))
        if not self._function_stack:
            self.classes[info.name] = info
        self._class_stack.append(info)
        saved_functions, self._function_stack = self._function_stack, []
        self._suite(node.body, block)
        self._function_stack = saved_functions
        self._class_stack.pop()

    # ------------------------------------------------------------ small statements

    def _small(self, small: cst.BaseSmallStatement, block: Block) -> None:
        if isinstance(small, cst.Import):
            self.imports.add_import(small)
            return
        if isinstance(small, cst.ImportFrom):
            self.imports.add_import_from(small)
            return
        if isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            value = small.value
            if value is not None:
                self._expression(value, block)
            if isinstance(small, cst.Assign):
                targets = [name for target in small.targets for name in _target_names(target.target)]
                raw_targets = [target.target for target in small.targets]
            else:
                targets = _target_names(small.target)
                raw_targets = [small.target]
            augmented = None
            if isinstance(small, cst.AugAssign):
                augmented = small.operator.__class__.__name__
            self._assignment(small, raw_targets, targets, value, augmented, block)
            return
        if isinstance(small, (cst.Expr, cst.Return)) and small.value is not None:
            self._expression(small.value, block)
            return
        for child in small.children:
            if isinstance(child, cst.BaseExpression):
                self._expression(child, block)

    def _assignment(
        self,
        node: cst.CSTNode,
        raw_targets: list[cst.BaseExpression],
        targets: list[str],
        value: cst.BaseExpression | None,
        augmented: str | None,
        block: Block,
    ) -> None:
        for raw in raw_targets:
            # `p.grad = None` clears a gradient.
            if (
                isinstance(raw, cst.Attribute)
                and raw.attr.value == "grad"
                and isinstance(value, cst.Name)
                and value.value == "None"
            ):
                block.items.append(Event(Kind.ZERO_GRAD, node, receiver=dotted_name(raw.value)))
        if not targets:
            return
        block.items.append(
            Event(Kind.ASSIGN, node, targets=tuple(targets), value=value, augmented=augmented)
        )
        if value is None:
            return
        values = _unpacked(raw_targets, targets, value)
        if not self._function_stack and not self._class_stack and augmented is None:
            for target, target_value in values.items():
                if "." not in target:
                    self.constants[target] = target_value
        if self._class_stack and self._function_stack:
            info = self._class_stack[-1]
            for target in targets:
                if target.startswith("self.") and target.count(".") == 1:
                    info.attribute_values[target[5:]] = value
                    info.attribute_functions[target[5:]] = self._function_stack[-1]
        elif self._class_stack and augmented is None:
            for target, target_value in values.items():
                if "." not in target:
                    self._class_stack[-1].class_values[target] = target_value

    def _expression(self, expression: cst.BaseExpression, block: Block) -> None:
        if not isinstance(expression, cst.CSTNode):
            return
        for node in iter_calls(expression):
            if isinstance(node, cst.CompFor):
                if isinstance(node.iter, cst.Name):
                    block.items.append(Event(Kind.ARG, node, name=node.iter.value))
            else:
                self._call(node, block)

    # --------------------------------------------------------------------- calls

    def _call(self, call: cst.Call, block: Block) -> None:
        func = call.func
        qualified = self.imports.qualify_expr(func)
        attr = func.attr.value if isinstance(func, cst.Attribute) else None
        receiver = dotted_name(func.value) if isinstance(func, cst.Attribute) else None
        self._risk_factor(call, qualified)
        spelled = dotted_name(func)
        if spelled is not None:
            self.calls.append(
                CallSite(call, spelled, qualified, self._function_stack[-1] if self._function_stack else None)
            )
            if attr == "add_argument":
                self._argparse_argument(call)
        for arg in call.args:
            if isinstance(arg.value, cst.Name):
                block.items.append(Event(Kind.ARG, call, name=arg.value.value, call=call))

        if qualified in vocab.CLIP_FUNCTIONS:
            position, keyword = vocab.CLIP_FUNCTIONS[qualified]
            self._clip(call, block, "torch", receiver, arg_value(call, 0, "parameters"), position, keyword)
            return
        if qualified == "torch.autograd.backward":
            block.items.append(
                Event(
                    Kind.BACKWARD,
                    call,
                    tensor=arg_value(call, 0, "tensors"),
                    retain_graph=is_true(kwarg_value(call, "retain_graph")),
                )
            )
            return
        if qualified == "torch._foreach_zero_":
            block.items.append(Event(Kind.ZERO_GRAD, call))
            return

        if attr is None:
            if isinstance(func, cst.Name):
                name = func.value
                if qualified is None:
                    block.items.append(Event(Kind.CALL, call, name=name, call=call))
                elif _imported_clip_helper(qualified):
                    self._clip(call, block, "assumed", None, None, -1, "")
            return

        if attr == "backward":
            self._backward(call, func, receiver, block)
        elif attr == "manual_backward":
            block.items.append(
                Event(Kind.BACKWARD, call, receiver=receiver, owner=True, tensor=arg_value(call, 0, "loss"))
            )
        elif attr == "step":
            self._step(call, receiver, block)
        elif attr in vocab.CLIP_METHODS and not (receiver == "self" and self._defines_method(attr)):
            self._method_clip(call, attr, receiver, block)
        elif attr == "unscale_":
            block.items.append(Event(Kind.UNSCALE, call, receiver=receiver))
        elif attr == "zero_grad":
            block.items.append(Event(Kind.ZERO_GRAD, call, receiver=receiver))
        elif attr == "zero_" and receiver and (receiver.endswith(".grad") or receiver.endswith(".grad.data")):
            block.items.append(Event(Kind.ZERO_GRAD, call, receiver=receiver))
        elif attr == "detach_":
            block.items.append(Event(Kind.DETACH_INPLACE, call, receiver=receiver))
        elif receiver in ("self", "cls") or (qualified is None and receiver and self._is_local_callable(receiver)):
            block.items.append(Event(Kind.CALL, call, name=f"{receiver}.{attr}", receiver=receiver, call=call))
        elif qualified is None and self._assumed_clip(attr):
            self._clip(call, block, "assumed", receiver, None, -1, "")
        elif _imported_clip_helper(qualified):
            self._clip(call, block, "assumed", receiver, None, -1, "")

    def _argparse_argument(self, call: cst.Call) -> None:
        flags = [string_value(arg.value) for arg in call.args if arg.keyword is None]
        flags = [flag for flag in flags if flag]
        if not flags:
            return
        dest_arg = string_value(kwarg_value(call, "dest"))
        long = next((flag for flag in flags if flag.startswith("--")), None)
        option = long or flags[0]
        dest = dest_arg or option.lstrip("-").replace("-", "_")
        action = string_value(kwarg_value(call, "action"))
        implicit = {"store_true": False, "store_false": True}.get(action or "")
        self.argparse[dest] = ArgparseArgument(call, dest, option, kwarg_value(call, "default"), implicit)

    def _is_local_callable(self, receiver: str) -> bool:
        return receiver in self.classes

    def _defines_method(self, name: str) -> bool:
        return bool(self._class_stack) and name in {
            statement.name.value
            for statement in self._class_stack[-1].node.body.body
            if isinstance(statement, cst.FunctionDef)
        }

    @staticmethod
    def _assumed_clip(name: str) -> bool:
        lowered = name.lower()
        return "clip" in lowered and ("grad" in lowered or "norm" in lowered)

    def _backward(self, call: cst.Call, func: cst.Attribute, receiver: str | None, block: Block) -> None:
        inner = func.value
        scaled = (
            isinstance(inner, cst.Call)
            and isinstance(inner.func, cst.Attribute)
            and inner.func.attr.value == "scale"
        )
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        owner = bool(positional) and receiver is not None and self._is_backward_owner(receiver)
        if owner:
            assert receiver is not None
            self.owner_receivers.add(receiver)
            tensor = positional[0].value
        elif scaled:
            assert isinstance(inner, cst.Call)
            tensor = arg_value(inner, 0, "outputs")
        else:
            tensor = inner
        block.items.append(
            Event(
                Kind.BACKWARD,
                call,
                receiver=receiver,
                scaled=scaled,
                retain_graph=is_true(kwarg_value(call, "retain_graph")),
                owner=owner,
                tensor=tensor,
            )
        )

    def _is_backward_owner(self, receiver: str) -> bool:
        segment = last_segment(receiver).lower()
        if any(word in segment for word in ("accelerator", "fabric", "engine", "deepspeed", "ds_model")):
            return True
        return False

    def _step(self, call: cst.Call, receiver: str | None, block: Block) -> None:
        if receiver is None:
            return
        segment = last_segment(receiver)
        positional = [arg for arg in call.args if arg.keyword is None]
        if vocab.looks_like_scaler(segment):
            block.items.append(Event(Kind.STEP, call, receiver=receiver, via_scaler=True))
            return
        if vocab.looks_like_scheduler(segment):
            block.items.append(Event(Kind.SCHEDULER_STEP, call, receiver=receiver))
            return
        closure_arg = arg_value(call, 0, "closure")
        closure = closure_arg.value if isinstance(closure_arg, cst.Name) else None
        if positional and closure is None:
            return
        block.items.append(Event(Kind.STEP, call, receiver=receiver, closure=closure))

    def _method_clip(self, call: cst.Call, attr: str, receiver: str | None, block: Block) -> None:
        segment = last_segment(receiver).lower()
        if "accelerator" in segment:
            keyword = "clip_value" if attr == "clip_grad_value_" else "max_norm"
            self._clip(call, block, "accelerate", receiver, arg_value(call, 0, "parameters"), 1, keyword)
        elif attr == "clip_gradients" and receiver == "self":
            threshold = arg_value(call, 1, "gradient_clip_val")
            self._clip(call, block, "lightning", receiver, None, -1, "gradient_clip_val", threshold)
        elif attr == "clip_gradients":
            threshold = kwarg_value(call, "max_norm")
            keyword = "max_norm"
            if threshold is None:
                threshold, keyword = kwarg_value(call, "clip_val"), "clip_val"
            self._clip(call, block, "fabric", receiver, None, -1, keyword, threshold)
        elif attr == "clip_grad_norm_":
            self._clip(call, block, "fsdp", receiver, None, 0, "max_norm")

    def _clip(
        self,
        call: cst.Call,
        block: Block,
        form: str,
        receiver: str | None,
        params: cst.BaseExpression | None,
        position: int,
        keyword: str,
        threshold: cst.BaseExpression | None = None,
    ) -> None:
        if threshold is None and position >= 0:
            threshold = arg_value(call, position, keyword)
        event = Event(
            Kind.CLIP,
            call,
            receiver=receiver,
            form=form,
            params=params,
            threshold=threshold,
            threshold_name=keyword,
        )
        block.items.append(event)
        self.clip_events.append(event)

    # -------------------------------------------------------------- risk factors

    def _risk_factor(self, call: cst.Call, qualified: str | None) -> None:
        if qualified is None:
            return
        if qualified in vocab.RECURRENT_LAYERS:
            layer = qualified.rsplit(".", 1)[-1]
            nonlinearity = string_value(kwarg_value(call, "nonlinearity"))
            detail = f"nn.{layer}"
            if nonlinearity == "relu":
                detail += " with nonlinearity='relu'"
            self.risk_factors.append(RiskFactor(call, f"a recurrent layer ({detail})"))
            return
        if vocab.is_optimizer_class(qualified):
            family = qualified.rsplit(".", 1)[-1]
            limit = vocab.LR_LIMITS.get(family)
            lr = arg_value(call, 1, "lr")
            value = evaluate_number(lr, self.imports, self.constants) if lr is not None else None
            if limit is not None and value is not None and value > limit:
                self.risk_factors.append(
                    RiskFactor(call, f"a learning rate of {value:g} for {family} (usual range: <= {limit:g})")
                )
