"""What an object is, decided by what its name is bound to, never by what it is called.

`lr_optimizer = torch.optim.SGD(...)` is an optimizer; `clipper = GradientClipper(1.0)` whose
`step(params)` clips is a clipper; `opt: torch.optim.Optimizer` is an optimizer. A name is
followed through aliases (`opt = optimizer`), attributes set in the class (`self.opt = ...`),
tuple unpacking of `accelerator.prepare(...)`, returns of functions, parameter annotations
and, through the project index (`FileModel.oracle`), classes, functions and callers in other
files. Only when the binding cannot be read does the name decide (`looks_like_*` in the
vocabulary); the rule documents say so.

Each `.step()` event gets its role once (`assign_roles`), read in the function that holds it.
"""

from __future__ import annotations

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.calls import parameter
from gradlint.analysis.model import ClassInfo, Event, FileModel, Function, Kind, Role
from gradlint.analysis.names import dotted_name, last_segment
from gradlint.analysis.walk import walk

MAX_DEPTH = 12

OPTIMIZER = Role("optimizer")
SCHEDULER = Role("scheduler")
SCALER = Role("scaler")
ENGINE = Role("engine")
OTHER = Role("other")


def assign_roles(model: FileModel) -> None:
    """Decide the role of every `.step()` receiver of the file, once: an optimizer step stays a
    STEP (a GradScaler's is `via_scaler`), a scheduler's becomes a SCHEDULER_STEP, a clipper's
    a CLIP, and anything else is no step at all."""
    if model.derived.get("roles.assigned"):
        return
    model.derived["roles.assigned"] = True
    owners: list[tuple[Function | None, Event]] = [(None, event) for event in model.body.events()]
    for function in model.all_functions:
        owners.extend((function, event) for event in function.body.events())
    for function, event in owners:
        if event.kind is Kind.STEP and event.role is None:
            _assign(model, function, event)


def _assign(model: FileModel, function: Function | None, event: Event) -> None:
    role = step_role(model, function, event)
    event.role = role.kind
    if role.kind not in ("optimizer", "engine"):
        event.closure = None  # `scaler.step(optimizer)`, `scheduler.step(epoch)`: no closure
    elif event.closure is not None:
        event.positional = False  # `optimizer.step(closure)`
    if role.kind == "scaler":
        event.via_scaler = True
    elif role.kind in ("optimizer", "engine"):
        if role.clips:
            event.origin = role.clips  # a wrapper optimizer whose step() clips first
    elif role.kind == "clipper":
        event.kind = Kind.CLIP
        event.form = "project"
        event.origin = role.clips or ""
        model.clip_events.append(event)
    elif role.kind == "scheduler":
        event.kind = Kind.SCHEDULER_STEP
    else:  # not a step of anything that trains: a call like any other (`ema.step()`)
        event.kind = Kind.CALL
        event.name = f"{event.receiver}.step"
        event.call = event.node if isinstance(event.node, cst.Call) else None


def step_role(model: FileModel, function: Function | None, event: Event) -> Role:
    receiver = event.receiver or ""
    if receiver in model.owner_receivers:
        return ENGINE
    role = name_role(model, function, receiver, event, 0)
    if role is not None:
        if role.kind == "clipper" and not event.positional:
            return OTHER  # `clipper.step()` with nothing to clip
        return role
    # The binding cannot be read: the name decides (documented in GL101's rule document).
    segment = last_segment(receiver)
    if vocab.looks_like_scaler(segment):
        return Role("scaler", how="name")
    if vocab.looks_like_scheduler(segment):
        return Role("scheduler", how="name")
    if event.positional and event.closure is None:
        return OTHER  # `x.step(value)` with no closure: a scheduler or a simulation, not an optimizer
    if vocab.looks_like_optimizer(segment):
        return Role("optimizer", how="name")
    return OTHER


def name_role(model: FileModel, function: Function | None, name: str, before: Event | None, depth: int) -> Role | None:
    """The role of what `name` is bound to where `before` runs in `function`."""
    if depth > MAX_DEPTH or not name:
        return None
    if name.startswith("self.") and name.count(".") == 1:
        return attribute_role(model, function, name[5:], depth)
    if "." in name:
        head, _, attribute = name.rpartition(".")
        if model.oracle is not None:
            return model.oracle.role(function, _expression(name))
        return None
    scope = function
    while True:
        found, value, position = binding(model, scope, name, before if scope is function else None)
        if found:
            if value is None:
                return None  # unpacked from something unknown, or augmented
            if position is not None:
                return _unpacked_role(model, scope, value, position, depth)
            return value_role(model, scope, value, depth + 1)
        if scope is not None and name in scope.params:
            return parameter_role(model, scope, name, depth)
        if scope is None:
            break
        scope = scope.parent
    value = model.constants.get(name)
    if value is not None:
        return value_role(model, None, value, depth + 1)
    if model.oracle is not None:
        return model.oracle.role(function, cst.Name(name))
    return None


def binding(
    model: FileModel, function: Function | None, name: str, before: Event | None
) -> tuple[bool, cst.BaseExpression | None, int | None]:
    """(found, value, position in a tuple target) of the last assignment to `name` in the body
    of `function` (the module body for None) before `before` (anywhere when None)."""
    body = function.body if function is not None else model.body
    found: tuple[bool, cst.BaseExpression | None, int | None] = (False, None, None)
    for event in body.events():
        if before is not None and event is before:
            break
        if event.kind is not Kind.ASSIGN or name not in event.targets:
            continue
        if event.augmented is not None:
            continue
        if event.targets == (name,):
            found = (True, event.value, None)
        else:
            position = _tuple_position(event, name)
            found = (True, event.value, position) if position is not None else (True, None, None)
    return found


def _tuple_position(event: Event, name: str) -> int | None:
    node = event.node
    targets = []
    if isinstance(node, cst.Assign) and len(node.targets) == 1:
        targets = [node.targets[0].target]
    if len(targets) != 1 or not isinstance(targets[0], (cst.Tuple, cst.List)):
        return None
    for index, element in enumerate(targets[0].elements):
        if dotted_name(element.value) == name:
            return index
    return None


def _unpacked_role(model: FileModel, function: Function | None, value: cst.BaseExpression, position: int, depth: int) -> Role | None:
    """`model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)`
    and `engine, optimizer, _, scheduler = deepspeed.initialize(...)`."""
    if not isinstance(value, cst.Call):
        return None
    qualified = model.qualify_call(value)
    if qualified == "deepspeed.initialize":
        return (ENGINE, OPTIMIZER, OTHER, SCHEDULER)[position] if position < 4 else None
    if isinstance(value.func, cst.Attribute) and value.func.attr.value == "prepare":
        positional = [arg.value for arg in value.args if arg.keyword is None and not arg.star]
        if position < len(positional):
            return value_role(model, function, positional[position], depth + 1)
    if isinstance(value.func, cst.Attribute) and value.func.attr.value == "optimizers":
        return OPTIMIZER  # Lightning: `g_opt, d_opt = self.optimizers()`
    if isinstance(value.func, cst.Name) and qualified is None:
        helper = _function_named(model, function, value.func.value)
        if helper is not None:  # `model, optimizer = build(cfg)` with `return model, optimizer`
            elements = [
                ret.elements[position].value
                for ret in helper.returns
                if isinstance(ret, (cst.Tuple, cst.List)) and position < len(ret.elements)
            ]
            roles = [value_role(model, helper, element, depth + 1) for element in elements]
            known = [role for role in roles if role is not None]
            return known[0] if known and len({role.kind for role in known}) == 1 else None
    if model.oracle is not None:
        return model.oracle.role(function, value, position=position)
    return None


def attribute_role(model: FileModel, function: Function | None, attribute: str, depth: int) -> Role | None:
    """`self.x`: what the class (or a base class in this file) sets it to; a base class in
    another file is the index's question."""
    info = _owner(model, function)
    seen: set[str] = set()
    while info is not None and info.name not in seen:
        seen.add(info.name)
        setter = info.attribute_functions.get(attribute)
        if setter is not None:
            # The setter's own binding: `self.optimizer, self.lr_scheduler = optimizers` binds
            # each by position, not both to the whole value.
            found, value, position = binding(model, setter, f"self.{attribute}", None)
            if not found or value is None:
                return None
            if position is not None:
                return _unpacked_role(model, setter, value, position, depth)
            return value_role(model, setter, value, depth + 1)
        info = next((model.classes[base] for base in info.bases if base in model.classes), None)
    if model.oracle is not None:
        return model.oracle.role(function, _expression(f"self.{attribute}"))
    return None


def parameter_role(model: FileModel, function: Function, name: str, depth: int) -> Role | None:
    """A parameter: its annotation, else what the callers pass (in this file, then in others)."""
    param = parameter(function, name)
    if param is not None and param.annotation is not None:
        role = class_expression_role(model, function, param.annotation.annotation, depth + 1)
        if role is not None:
            return role
    for site in _call_sites(model, function):
        argument = _argument(function, param, site.node) if param is not None else None
        if argument is not None:
            role = value_role(model, site.function, argument, depth + 1)
            if role is not None:
                return role
    if model.oracle is not None:
        return model.oracle.parameter_role(function, name)
    return None


def _call_sites(model: FileModel, function: Function):
    """Calls of `function` in this file: `train(...)`, `self.train_step(...)` in its class,
    `Trainer(...)` for an `__init__`."""
    if function.parent is not None:
        # A nested function: called by its name in the function that defines it (or deeper).
        for site in model.calls:
            caller = site.function
            while caller is not None and caller is not function.parent:
                caller = caller.parent
            if caller is not None and site.callee == function.name and site.function is not function:
                yield site
        return
    for site in model.calls:
        if site.function is function:
            continue
        if function.class_name is None:
            if site.callee == function.name and site.qualified is None:
                yield site
        elif function.name == "__init__":
            if site.callee == function.class_name and site.qualified is None:
                yield site
        elif site.callee == f"self.{function.name}" and _owner(model, site.function) is model.classes.get(function.class_name):
            yield site


def _argument(function: Function, param: cst.Param, call: cst.Call) -> cst.BaseExpression | None:
    from gradlint.analysis.calls import argument_for

    return argument_for(function, param, call)


def value_role(model: FileModel, function: Function | None, value: cst.BaseExpression, depth: int) -> Role | None:
    """The role of what an expression evaluates to."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, (cst.Name, cst.Attribute)):
        name = dotted_name(value)
        return name_role(model, function, name, None, depth + 1) if name else None
    if isinstance(value, cst.Subscript):
        inner = value.value
        if isinstance(inner, cst.Call) and isinstance(inner.func, cst.Attribute) and inner.func.attr.value == "optimizers":
            return OPTIMIZER  # Lightning: `self.optimizers()[0]`
        return None
    if not isinstance(value, cst.Call):
        return None
    func = value.func
    qualified = model.qualify_call(value)
    known = known_role(qualified)
    if known is not None:
        return known
    if isinstance(func, cst.Attribute):
        attr = func.attr.value
        if attr == "optimizers":
            return OPTIMIZER  # Lightning manual optimization: `opt = self.optimizers()`
        if attr in ("prepare", "prepare_optimizer", "prepare_scheduler"):
            positional = [arg.value for arg in value.args if arg.keyword is None and not arg.star]
            if len(positional) == 1:
                return value_role(model, function, positional[0], depth + 1)  # `accelerator.prepare(opt)`
            return None
    if isinstance(func, cst.Name) and qualified is None:
        info = model.classes.get(func.value)
        if info is not None:
            return class_role(model, info, depth + 1)
        helper = _function_named(model, function, func.value)
        if helper is not None:
            return returned_role(model, helper, depth + 1)
    if model.oracle is not None:
        return model.oracle.role(function, value)
    return None


def known_role(qualified: str | None) -> Role | None:
    """torch's and the frameworks' own classes and factories."""
    if not qualified:
        return None
    if qualified in vocab.GRAD_SCALERS:
        return SCALER
    if vocab.is_scheduler_factory(qualified):
        return SCHEDULER
    if vocab.is_optimizer_class(qualified):
        return OPTIMIZER
    if qualified in vocab.BACKWARD_OWNERS:
        return OTHER
    return None


def class_expression_role(model: FileModel, function: Function | None, annotation: cst.BaseExpression, depth: int) -> Role | None:
    """The role of an instance of the class an expression names (an annotation, a base)."""
    if isinstance(annotation, cst.SimpleString):
        return None
    if isinstance(annotation, cst.Subscript):  # Optional[Optimizer], not tuple[Optimizer, LambdaLR]
        if last_segment(dotted_name(annotation.value)) != "Optional" or len(annotation.slice) != 1:
            return None
        value = getattr(annotation.slice[0].slice, "value", None)
        return class_expression_role(model, function, value, depth) if value is not None else None
    if isinstance(annotation, cst.BinaryOperation):  # Optimizer | None
        parts = [annotation.left, annotation.right]
        named = [part for part in parts if not (isinstance(part, cst.Name) and part.value == "None")]
        return class_expression_role(model, function, named[0], depth) if len(named) == 1 else None
    name = dotted_name(annotation)
    if name is None:
        return None
    known = known_role(model.imports.qualify(name))
    if known is not None:
        return known
    info = model.classes.get(name)
    if info is not None:
        return class_role(model, info, depth + 1)
    if model.oracle is not None and model.imports.qualify(name) is not None:
        return model.oracle.role(function, cst.Call(func=annotation))
    return None


def class_role(model: FileModel, info: ClassInfo, depth: int) -> Role | None:
    """A class of this file: an optimizer (a torch.optim subclass, or a wrapper whose `step()`
    steps an inner optimizer, clipping first or not), a scheduler, a scaler, or a clipper (its
    `step(params)` clips and steps nothing)."""
    if depth > MAX_DEPTH:
        return None
    for base, node in zip(info.bases, info.node.bases):
        known = known_role(base)
        if known is not None and known.kind != "other":
            step = info.methods.get("step")
            clips = _step_clips(model, info, step) if known.kind == "optimizer" and step is not None else None
            return Role(known.kind, clips=clips)
        if base in model.classes and model.classes[base] is not info:
            inherited = class_role(model, model.classes[base], depth + 1)
            if inherited is not None and inherited.kind != "other":
                return inherited
    step = _method(model, info, "step")
    if step is None:
        return Role("optimizer") if _method(model, info, "zero_grad") is not None else OTHER
    clips = _step_clips(model, info, step)
    if _method(model, info, "zero_grad") is not None:
        return Role("optimizer", clips=clips)
    steps_inner = any(
        event.kind in (Kind.STEP, Kind.SCHEDULER_STEP)
        or (event.kind is Kind.CALL and (event.name or "").endswith(".step") and event.receiver not in ("self", "cls"))
        for event in _method_events(model, info, step)
    )
    if steps_inner:
        return Role("optimizer", clips=clips)
    takes_parameters = [name for name in step.params if name not in ("self", "cls", "closure")]
    if clips and takes_parameters:
        return Role("clipper", clips=clips)  # `clipper.step(model.parameters())`
    if clips or any(isinstance(node, cst.Attribute) and node.attr.value in ("grad", "param_groups") for node in walk(step.node)):
        return Role("optimizer", clips=clips)  # a hand-written optimizer: its step() applies the gradients
    return OTHER


def _step_clips(model: FileModel, info: ClassInfo, step: Function) -> str | None:
    for event in _method_events(model, info, step):
        if event.kind is Kind.CLIP and event.form != "assumed":
            return f"`{info.name}.step()` clips the gradients ({_describe(model, event)})"
        if event.kind is Kind.CALL and model.oracle is not None and event.receiver not in ("self", "cls"):
            effect = model.oracle.call_effect(step, event)
            if effect is not None and effect.clips and effect.form != "assumed":
                return f"`{info.name}.step()` clips the gradients ({effect.clips})"
    return None


def _describe(model: FileModel, event: Event) -> str:
    node = event.call or event.node
    text = model.module.code_for_node(node).split("(", 1)[0].strip() if isinstance(node, cst.Call) else event.kind.value
    return f"`{text}(...)`"


def _method_events(model: FileModel, info: ClassInfo, method: Function, depth: int = 0, seen: set[int] | None = None):
    """The events of a method with the methods of its class it calls (`self._clip()`)."""
    seen = seen if seen is not None else set()
    if id(method) in seen or depth > 4:
        return
    seen.add(id(method))
    for event in method.body.events():
        yield event
        if event.kind is Kind.CALL and (event.name or "").startswith("self."):
            inner = _method(model, info, (event.name or "")[5:])
            if inner is not None:
                yield from _method_events(model, info, inner, depth + 1, seen)


def _method(model: FileModel, info: ClassInfo, name: str) -> Function | None:
    seen: set[str] = set()
    current: ClassInfo | None = info
    while current is not None and current.name not in seen:
        seen.add(current.name)
        if name in current.methods:
            return current.methods[name]
        current = next((model.classes[base] for base in current.bases if base in model.classes), None)
    return None


def returned_role(model: FileModel, function: Function, depth: int) -> Role | None:
    """What a function of this file returns: the role of its returns when they agree."""
    roles = [value_role(model, function, value, depth + 1) for value in function.returns]
    known = [role for role in roles if role is not None]
    if not known or len({role.kind for role in known}) != 1:
        return None
    clips = next((role.clips for role in known if role.clips), None)  # some of them clip: it may
    return Role(known[0].kind, clips=clips)


def _function_named(model: FileModel, function: Function | None, name: str) -> Function | None:
    scope = function
    while scope is not None:
        if name in scope.local_functions:
            return scope.local_functions[name]
        scope = scope.parent
    return model.functions.get(name)


def _owner(model: FileModel, function: Function | None) -> ClassInfo | None:
    while function is not None and function.class_name is None:
        function = function.parent
    return model.classes.get(function.class_name) if function is not None and function.class_name else None


def _expression(dotted: str) -> cst.BaseExpression:
    parts = dotted.split(".")
    node: cst.BaseExpression = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def is_one_shot(value: cst.BaseExpression | None) -> bool:
    """A generator or iterator: usable once (`model.parameters()`, `filter(...)`, `(p for p in ...)`)."""
    if isinstance(value, cst.GeneratorExp):
        return True
    if isinstance(value, cst.Call):
        func = value.func
        if isinstance(func, cst.Attribute):
            return func.attr.value in vocab.ONE_SHOT_METHODS
        if isinstance(func, cst.Name):
            return func.value in vocab.ONE_SHOT_BUILTINS
    return False


def returns_iterator(model: FileModel, function: Function | None, call: cst.Call, depth: int = 0) -> bool:
    """A call of a function that returns a one-shot iterator: a generator function, or one
    whose returns are all `model.parameters()`, `filter(...)`, ... (in this file, or through the
    project index in another)."""
    if depth > 3:
        return False
    if isinstance(call.func, cst.Name) and model.qualify_call(call) is None:
        helper = _function_named(model, function, call.func.value)
        if helper is not None:
            if helper.yields:
                return True
            return bool(helper.returns) and all(
                is_one_shot(value) or (isinstance(value, cst.Call) and returns_iterator(model, helper, value, depth + 1))
                for value in helper.returns
            )
    if model.oracle is not None and not (model.qualify_call(call) or "").startswith("torch."):
        return bool(model.oracle.returns_iterator(function, call))
    return False
