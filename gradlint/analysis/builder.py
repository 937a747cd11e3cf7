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
from gradlint.analysis.gradients import Frame, clipping_change
from gradlint.analysis.statements import (
    LIBRARIES,
    PLAIN_METHODS,
    consumed_name,
    exits_early,
    iter_calls,
    target_names,
    unpacked,
)
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
)
from gradlint.analysis.names import ImportMap, dotted_name, last_segment
from gradlint.analysis.values import is_true, string_value


def build_model(module: cst.Module) -> FileModel:
    return _Builder(module).build()


# --------------------------------------------------------------------------- builder


class _Builder:
    def __init__(self, module: cst.Module) -> None:
        self.module = module
        self.imports = ImportMap()
        self.functions: dict[str, Function] = {}
        self.classes: dict[str, ClassInfo] = {}
        self.all_functions: list[Function] = []
        self.constants: dict[str, cst.BaseExpression] = {}
        self.clip_events: list[Event] = []
        self.owner_receivers: set[str] = set()
        self.calls: list[CallSite] = []
        self.argparse: dict[str, ArgparseArgument] = {}
        self._class_stack: list[ClassInfo] = []
        self._function_stack: list[Function] = []
        self._keys: dict[str, int] = {}
        self._frames: list[Frame] = [Frame()]
        self._chains = 0

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
            clip_events=self.clip_events,
            owner_receivers=self.owner_receivers,
            calls=self.calls,
            argparse=self.argparse,
        )

    # ----------------------------------------------------------------- statements

    def _statements(self, statements: "list[cst.BaseStatement] | tuple", block: Block) -> None:
        statements = list(statements)
        for position, statement in enumerate(statements):
            self._statement(statement, block)
            if exits_early(statement) and position + 1 < len(statements):
                # `if not at_boundary: return` / `continue`: what follows runs only when the
                # test is false, as if it were the else branch.
                assert isinstance(statement, cst.If)
                # The same chain as the `if`: one iteration runs the exit or the rest, never both.
                chain = next((item.chain for item in reversed(block.items) if isinstance(item, Block)), 0)
                rest = Block(BlockKind.BRANCH, statement, test=statement.test, early_exit=True, chain=chain)
                block.items.append(rest)
                for later in statements[position + 1 :]:
                    self._statement(later, rest)
                return

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
            self._chains += 1
            for case in statement.cases:
                branch = Block(BlockKind.BRANCH, case, chain=self._chains)
                block.items.append(branch)
                self._suite(case.body, branch)

    def _loop(self, statement: "cst.For | cst.While", block: Block) -> None:
        loop = Block(BlockKind.LOOP, statement)
        if isinstance(statement, cst.For):
            self._expression(statement.iter, block)
            loop.loop_target = tuple(target_names(statement.target))
            self._frames[-1].iterate(list(loop.loop_target), statement.iter)
            if isinstance(statement.iter, cst.Name):
                loop.loop_iter = statement.iter.value
            iterated = consumed_name(statement.iter)
            if iterated is not None:
                block.items.append(Event(Kind.ARG, statement, name=iterated))
        else:
            self._expression(statement.test, loop)
        block.items.append(loop)
        self._suite(statement.body, loop)
        if statement.orelse is not None:
            self._suite(statement.orelse.body, block)

    def _if(self, statement: cst.If, block: Block, chain: int = 0) -> None:
        if not chain:
            self._chains += 1
            chain = self._chains
        self._expression(statement.test, block)
        branch = Block(BlockKind.BRANCH, statement, test=statement.test, chain=chain)
        block.items.append(branch)
        self._suite(statement.body, branch)
        orelse = statement.orelse
        if isinstance(orelse, cst.If):
            # `elif` runs only when the first test failed: a sibling branch of the same chain.
            self._if(orelse, block, chain)
        elif isinstance(orelse, cst.Else):
            other = Block(BlockKind.BRANCH, orelse, chain=chain)
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
                    "no_sync",
                ):
                    inner.accumulate = True
                    inner.accumulate_call = item.item.func.attr.value
                if qualified in ("torch.distributed.autograd.context", "torch.distributed.autograd.DistAutogradContext"):
                    inner.grad_scope = True
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
        self._frames.append(Frame())
        self._suite(node.body, function.body)
        self._frames.pop()
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
                targets = [name for target in small.targets for name in target_names(target.target)]
                raw_targets = [target.target for target in small.targets]
            else:
                targets = target_names(small.target)
                raw_targets = [small.target]
            augmented = None
            if isinstance(small, cst.AugAssign):
                augmented = small.operator.__class__.__name__
            self._assignment(small, raw_targets, targets, value, augmented, block)
            return
        if isinstance(small, (cst.Expr, cst.Return)) and small.value is not None:
            self._expression(small.value, block)
            if isinstance(small, cst.Return) and self._function_stack:
                self._function_stack[-1].returns.append(small.value)
            elif isinstance(small.value, (cst.Yield,)) and self._function_stack:
                self._function_stack[-1].yields = True
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
        if augmented is None:
            self._frames[-1].bind(targets, value)
        values = unpacked(raw_targets, targets, value)
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
                self._frames[-1].iterate(target_names(node.target), node.iter)
                iterated = consumed_name(node.iter)
                if iterated is not None:
                    block.items.append(Event(Kind.ARG, node, name=iterated))
            else:
                self._call(node, block)

    # --------------------------------------------------------------------- calls

    def _call(self, call: cst.Call, block: Block) -> None:
        func = call.func
        qualified = self.imports.qualify_expr(func)
        attr = func.attr.value if isinstance(func, cst.Attribute) else None
        receiver = dotted_name(func.value) if isinstance(func, cst.Attribute) else None
        spelled = dotted_name(func)
        function = self._function_stack[-1] if self._function_stack else None
        if spelled is not None:
            self.calls.append(CallSite(call, spelled, qualified, function))
            if attr == "add_argument":
                self._argparse_argument(call)
        elif isinstance(func, cst.IfExp):
            # `(AMPTrainer if cfg.AMP else SimpleTrainer)(model, loader, optimizer)` calls either:
            # a call site of each, in the order the summary lists them (index/summary.py).
            for branch in (func.body, func.orelse):
                branch_name = dotted_name(branch)
                if branch_name is not None:
                    self.calls.append(CallSite(call, branch_name, self.imports.qualify_expr(branch), function))
        for arg in call.args:
            passed = consumed_name(arg.value)
            if passed is not None:
                block.items.append(Event(Kind.ARG, call, name=passed, call=call))

        if qualified in vocab.CLIP_FUNCTIONS:
            position, keyword = vocab.CLIP_FUNCTIONS[qualified]
            self._clip(call, block, "torch", receiver, arg_value(call, 0, "parameters"), position, keyword)
            return
        if qualified == "torch.distributed.autograd.backward":
            # `dist_autograd.backward(context_id, [loss])`: the gradients go to the context.
            roots = arg_value(call, 1, "roots")
            tensor = roots.elements[0].value if isinstance(roots, (cst.List, cst.Tuple)) and roots.elements else roots
            block.items.append(Event(Kind.BACKWARD, call, tensor=tensor))
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
        change = clipping_change(call, qualified, self._frames[-1])
        if change is not None:
            self._clip(call, block, "grad", receiver, None, -1, "")
            return

        if attr is None:
            if isinstance(func, cst.Name):
                name = func.value
                if qualified is None:
                    block.items.append(Event(Kind.CALL, call, name=name, call=call))
                elif not qualified.startswith(LIBRARIES):
                    # An imported function: the project index reads its body (or the configuration
                    # says what it is); only one that cannot be read is judged by its name.
                    block.items.append(Event(Kind.CALL, call, name=name, call=call, qualified=qualified))
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
        elif attr in ("unscale_", "unscale_gradients"):
            block.items.append(Event(Kind.UNSCALE, call, receiver=receiver))
        elif attr == "zero_grad":
            block.items.append(Event(Kind.ZERO_GRAD, call, receiver=receiver))
        elif attr == "zero_" and receiver and (receiver.endswith(".grad") or receiver.endswith(".grad.data")):
            block.items.append(Event(Kind.ZERO_GRAD, call, receiver=receiver))
        elif attr == "detach_":
            block.items.append(Event(Kind.DETACH_INPLACE, call, receiver=receiver))
        elif receiver in ("self", "cls") or (qualified is None and receiver and self._is_local_callable(receiver)):
            block.items.append(Event(Kind.CALL, call, name=f"{receiver}.{attr}", receiver=receiver, call=call))
        elif receiver and attr not in PLAIN_METHODS and not (qualified or "").startswith(LIBRARIES):
            # `trainer.rescale_gradients()`, `self.mp_trainer.optimize(opt)`, `utils.clip_grads(...)`:
            # what the receiver is bound to decides what runs (gradlint.analysis.steps).
            block.items.append(
                Event(Kind.CALL, call, name=f"{receiver}.{attr}", receiver=receiver, call=call, qualified=qualified)
            )

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
        """`accelerator.backward(loss)`: the receiver is bound to an Accelerator, a Fabric or a
        DeepSpeed engine (or, when the binding is not in sight, is named like one)."""
        value = self._bound_value(receiver)
        if isinstance(value, cst.Call):
            qualified = self.imports.qualify_expr(value.func)
            if qualified in vocab.BACKWARD_OWNERS or qualified == "deepspeed.initialize":
                return True
            if qualified is not None and qualified.startswith("torch."):
                return False  # a torch module or tensor (`model = nn.Linear(...)`)
        segment = last_segment(receiver).lower()
        return any(word in segment for word in ("accelerator", "fabric", "engine", "deepspeed", "ds_model"))

    def _bound_value(self, name: str) -> cst.BaseExpression | None:
        """The last value bound to a local name (or `self.x`) seen so far in this file."""
        values = self._frames[-1].bindings.get(name)
        if values:
            return values[-1]
        if name.startswith("self.") and name.count(".") == 1 and self._class_stack:
            return self._class_stack[-1].attribute_values.get(name[5:])
        return None

    def _step(self, call: cst.Call, receiver: str | None, block: Block) -> None:
        """Every `x.step(...)`: whether `x` is an optimizer, a scheduler, a GradScaler or a
        clipper is decided from what it is bound to (gradlint.analysis.roles)."""
        if receiver is None:
            return
        # `optimizer.step(closure)` (LBFGS) or `scaler.step(optimizer)`: which one is decided with
        # the receiver's role (gradlint.analysis.roles), which keeps `closure` only for an optimizer.
        closure_arg = arg_value(call, 0, "closure")
        closure = closure_arg.value if isinstance(closure_arg, cst.Name) else None
        positional = any(arg.keyword is None for arg in call.args)
        block.items.append(Event(Kind.STEP, call, receiver=receiver, closure=closure, positional=positional))

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
        else:
            # fairseq's `optimizer.clip_grad_norm(max_norm)`, mmcv's `self.clip_grads(params)`,
            # ColossalAI's `optimizer.clip_grad_by_norm(max_norm)`: frameworks that unscale first.
            self._clip(call, block, "method", receiver, None, -1, "")

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
