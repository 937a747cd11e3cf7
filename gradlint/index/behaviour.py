"""What project code does, followed through calls, classes and files: clipping, zeroing,
detaching, and the roles of objects (optimizer, scheduler, scaler, clipper).

Everything here is read from file summaries (gradlint.index.summary), never from another
file's libcst tree:

- `effects(path, function)`: does a function clip gradients, clear them, detach, run a
  backward? Its own body's facts (gradlint.index.body_facts), or any function it calls that
  does, followed transitively across files with a depth limit and a cycle guard, once per run
  (a lasting table whose entries replay their dependencies, index/deps.py).
- `callee(path, function, spelled, qualified)`: which function a call runs: an imported or
  local function, a method of `self` (in the class, a base class or a mixin in another file),
  or a method of an object whose class is known from what it is bound to (a constructor call,
  a parameter annotation, a function's return, an attribute set in `__init__`).
- `role_of_value(...)`: what an object is (an optimizer, a scheduler, ...), for the `.step()`
  receivers a file cannot decide alone.

`gradlint.index.oracle.FileOracle` answers a checked file's model from here, and
`gradlint.index.fsdp` follows a clipped module back to its FSDP wrapping with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.model import Role
from gradlint.analysis.names import dotted_name
from gradlint.index.summary import ClassSummary, FileSummary, FunctionSummary
from gradlint.index.values import argument_for

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

MAX_DEPTH = 6
"""How many calls deep effects are followed (`step()` -> `self.clip()` -> `clip_grad_norm_fp32`)."""
ROLE_DEPTH = 16
"""How many bindings, returns and tuple elements a role is followed through."""


@dataclass(frozen=True)
class Effects:
    clips: tuple[Path, int, str] | None = None
    """Where the first clip found is: (file, line, what)."""
    zeroes: bool = False
    detaches: bool = False
    backward: bool = False
    steps: bool = False
    via: str = ""
    """The call chain that reaches the clip (`self.clip_grad_norm -> clip_grad_norm_fp32`)."""
    clips_if: "Dispatch | None" = None
    """No sure clip, but a call on the objects of a loop (plugins, algorithms, callbacks) that
    clips when one of them is a project class whose method clips: it depends on configuration."""


@dataclass(frozen=True)
class Dispatch:
    """`for algorithm in algorithms: algorithm.apply(...)` where a project class's `apply` clips."""

    call: str
    """The dispatching call as spelled (`algorithm.apply`)."""
    owner: str
    """The project class whose method clips (`GradientClipping`)."""
    path: Path
    line: int
    """Where that method is defined."""
    via: str = ""
    """The call chain from the function asked about to the dispatching call."""


NOTHING = Effects()


@dataclass(frozen=True)
class ClassRef:
    path: Path
    summary: FileSummary
    info: ClassSummary


@dataclass(frozen=True)
class Target:
    path: Path
    summary: FileSummary
    function: FunctionSummary


MAX_NESTING = 40
"""How deep the questions below may call each other (a name bound to a call of a function
returning a name bound to ...) before the answer is "unknown"."""


def _guarded(method):
    """Answer None past MAX_NESTING nested questions: bindings can form cycles (`x = x.to(d)`,
    two classes whose attributes refer to each other) that no per-question depth sees."""

    def wrapper(self, *args, **kwargs):
        if self._nesting >= MAX_NESTING:
            return None
        self._nesting += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            self._nesting -= 1

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class Behaviour:
    def __init__(self, project: "ProjectIndex", declared: Mapping[str, str] | None = None) -> None:
        self.project = project
        self.declared = dict(declared or {})
        """Qualified function name -> 'clip' / 'detach' (the configuration's `clip-functions`,
        `detach-functions`)."""
        self._in_progress: set[tuple] = set()
        self._nesting = 0

    # ---------------------------------------------------------------- memo

    def _memo(self, table: str, key: tuple, compute: Callable, default):
        """`compute()` once per run, its dependencies replayed on each use; `default` for a key
        whose computation is under way (a cycle)."""
        entries = self.project.lasting_table(f"behaviour.{table}")
        if key in self._in_progress and key not in entries:
            return default
        self._in_progress.add(key)
        try:
            return self.project.deps.memo(entries, key, compute)
        finally:
            self._in_progress.discard(key)

    # ------------------------------------------------------------- effects

    def effects(self, path: Path, summary: FileSummary, function: FunctionSummary, depth: int = 0) -> Effects:
        key = (str(path), function.key)
        return self._memo("effects", key, lambda: self._effects(path, summary, function, depth), NOTHING)

    def _effects(self, path: Path, summary: FileSummary, function: FunctionSummary, depth: int) -> Effects:
        facts = function.facts
        clips = (path, facts.clips[0][0], facts.clips[0][1]) if facts.clips else None
        zeroes, detaches, backward, steps, via = facts.zeroes, facts.detaches, facts.backward, bool(facts.steps), ""
        clips_if: Dispatch | None = None
        if depth >= MAX_DEPTH:
            return Effects(clips, zeroes, detaches, backward, steps)
        for site in summary.calls:
            if site.function is not function:
                continue
            declared = self.declared.get(site.qualified or "")
            if declared == "clip" and clips is None:
                clips = (path, site.line, f"{site.callee} (declared in clip-functions)")
            if declared == "detach":
                detaches = True
            if declared is not None:
                continue
            target = self.callee(path, summary, function, site.callee, site.qualified)
            if target is None:
                if clips_if is None:
                    clips_if = self._dispatch(function, site.callee)
                continue
            if target.function is function:
                continue
            inner = self.effects(target.path, target.summary, target.function, depth + 1)
            if inner.clips is not None and clips is None:
                clips = inner.clips
                via = site.callee + (f" -> {inner.via}" if inner.via else "")
            if inner.clips_if is not None and clips_if is None:
                chain = site.callee + (f" -> {inner.clips_if.via}" if inner.clips_if.via else "")
                clips_if = replace(inner.clips_if, via=chain)
            zeroes |= inner.zeroes
            detaches |= inner.detaches
            backward |= inner.backward
            steps |= inner.steps
        return Effects(clips, zeroes, detaches, backward, steps, via, None if clips is not None else clips_if)

    def _dispatch(self, function: FunctionSummary, spelled: str) -> Dispatch | None:
        """`algorithm.apply(...)` on the variable of a `for` in the function, which no assignment
        binds: the objects iterated come from configuration, so gradlint cannot tell their
        classes. When a project class has a method of that name that clips, clipping depends on
        whether such an object is configured (a documented fallback on the method's name)."""
        receiver, _, method = spelled.rpartition(".")
        if not receiver or "." in receiver or receiver not in function.loop_names or receiver in function.bindings:
            return None
        found = self._memo("dispatch", (method,), lambda: self._clipping_method(method), None)
        return replace(found, call=spelled) if found is not None else None

    def _clipping_method(self, method: str) -> Dispatch | None:
        for path, summary in self.project.summaries_with((f"def {method}",)):
            for info in summary.classes.values():
                found = info.methods.get(method)
                if found is None:
                    continue
                if self.effects(path, summary, found, 1).clips is not None:
                    return Dispatch("", info.name, path, found.line)
        return None

    def describe_clip(self, effects: Effects, spelled: str) -> str:
        assert effects.clips is not None
        path, line, what = effects.clips
        where = self.project.where(path, line)
        through = f" through `{effects.via}`" if effects.via else ""
        return f"`{spelled}(...)` clips: its body{through} calls `{what}` at {where}"

    def describe_dispatch(self, effects: Effects, spelled: str) -> str:
        dispatch = effects.clips_if
        assert dispatch is not None
        through = f" (through `{dispatch.via}`)" if dispatch.via else ""
        return (
            f"`{spelled}(...)` calls `{dispatch.call}(...)` on each of a collection of objects{through}, and "
            f"`{dispatch.owner}.{dispatch.call.rpartition('.')[2]}` ({self.project.where(dispatch.path, dispatch.line)}) "
            f"clips when one is a `{dispatch.owner}`"
        )

    # ------------------------------------------------------------- callees

    @_guarded
    def callee(
        self, path: Path, summary: FileSummary, function: FunctionSummary | None, spelled: str, qualified: str | None
    ) -> Target | None:
        """The project function a call runs, or None when it cannot be read."""
        if qualified is not None:
            if qualified.split(".", 1)[0] in ("torch", "numpy", "math", "os", "sys"):
                return None
            symbol = self.project.resolve_qualified(path, qualified)
            return function_target(symbol)
        receiver, _, attribute = spelled.rpartition(".")
        if not receiver:
            scope = function
            while scope is not None:
                if spelled in scope.local_functions:
                    return Target(path, summary, scope.local_functions[spelled])
                scope = scope.parent
            if spelled in summary.functions:
                return Target(path, summary, summary.functions[spelled])
            if spelled in summary.classes:
                return None
            return function_target(self.project.resolve(path, spelled))
        head = receiver.split(".", 1)[0]
        if head in summary.imports and receiver == head:
            return function_target(self.project.resolve_callee(path, spelled))
        owner = self.class_of_name(path, summary, function, receiver, 0)
        if owner is None:
            return None
        return self.method(owner, attribute)

    @_guarded
    def method(self, owner: ClassRef, name: str, depth: int = 0) -> Target | None:
        """A method of a class, looked up in the class and then its bases (in any file)."""
        if depth > MAX_DEPTH:
            return None
        found = owner.info.methods.get(name)
        if found is not None:
            return Target(owner.path, owner.summary, found)
        for base in self.bases(owner):
            inherited = self.method(base, name, depth + 1)
            if inherited is not None:
                return inherited
        return None

    def bases(self, owner: ClassRef) -> list[ClassRef]:
        found = []
        for base, spelled in zip(owner.info.bases, owner.info.bases):
            if not base:
                continue
            symbol = self.project.resolve_callee(owner.path, base)
            if symbol is None and base.startswith("."):
                symbol = self.project.resolve_qualified(owner.path, base)
            if symbol is None and "." in base:
                symbol = self.project.resolve_qualified(owner.path, base)
            ref = class_ref(symbol)
            if ref is not None and ref.info is not owner.info:
                found.append(ref)
        return found

    # --------------------------------------------------------- what names are

    @_guarded
    def class_of_name(
        self, path: Path, summary: FileSummary, function: FunctionSummary | None, name: str, depth: int
    ) -> ClassRef | None:
        """The class of the object a dotted name is bound to."""
        if depth > MAX_DEPTH:
            return None
        if name in ("self", "cls"):
            return self.enclosing(path, summary, function)
        if "." in name:
            receiver, _, attribute = name.rpartition(".")
            owner = self.class_of_name(path, summary, function, receiver, depth + 1)
            if owner is None:
                return None
            found = self.attribute_value(owner, attribute)
            if found is None:
                return None
            value, where = found
            return self.class_of_value(where.path, where.summary, where.function, value, depth + 1)
        scope = function
        while scope is not None:
            assigned = scope.bindings.get(name)
            if assigned is not None:
                return self.class_of_value(path, summary, scope, summary.expression(assigned), depth + 1)
            param = scope.param(name)
            if param is not None:
                if param.annotation is not None:
                    return self.class_of_annotation(path, summary, summary.expression(param.annotation))
                return None
            scope = scope.parent
        constant = summary.constants.get(name)
        if constant is not None:
            return self.class_of_value(path, summary, None, summary.expression(constant), depth + 1)
        return None

    @_guarded
    def attribute_value(self, owner: ClassRef, attribute: str, depth: int = 0) -> "tuple[cst.BaseExpression, Target] | None":
        """`self.<attribute> = value` in the class or a base class: (value, the method setting it)."""
        if depth > MAX_DEPTH:
            return None
        span = owner.info.attribute_values.get(attribute)
        if span is not None:
            method = owner.info.attribute_functions.get(attribute)
            # The setter's own binding: None when it unpacks (`self.opt, self.sched = optimizers`).
            own = method.bindings.get(f"self.{attribute}") if method is not None else None
            value = owner.summary.expression(own) if own is not None else None
            if value is not None and method is not None:
                return value, Target(owner.path, owner.summary, method)
            return None
        for base in self.bases(owner):
            found = self.attribute_value(base, attribute, depth + 1)
            if found is not None:
                return found
        return None

    @_guarded
    def class_of_value(
        self, path: Path, summary: FileSummary, function: FunctionSummary | None, value: cst.BaseExpression | None, depth: int
    ) -> ClassRef | None:
        if value is None or depth > MAX_DEPTH:
            return None
        if isinstance(value, (cst.Name, cst.Attribute)):
            name = dotted_name(value)
            return self.class_of_name(path, summary, function, name, depth + 1) if name else None
        if not isinstance(value, cst.Call):
            return None
        func = value.func
        if isinstance(func, cst.Attribute) and func.attr.value in vocab.MODULE_MOVES:
            return self.class_of_value(path, summary, function, func.value, depth + 1)
        spelled = dotted_name(func)
        if spelled is None:
            return None
        symbol = self._symbol(path, summary, function, spelled)
        if symbol is not None and symbol.kind == "class":
            return class_ref(symbol)
        target = function_target(symbol) if symbol is not None else None
        if target is None and "." in spelled:
            target = self.callee(path, summary, function, spelled, summary.qualify(spelled))
        if target is not None:
            for span in target.function.facts.returns:
                found = self.class_of_value(target.path, target.summary, target.function, target.summary.expression(span), depth + 1)
                if found is not None:
                    return found
        return None

    @_guarded
    def class_of_annotation(self, path: Path, summary: FileSummary, annotation: cst.BaseExpression | None) -> ClassRef | None:
        if isinstance(annotation, cst.Subscript):  # Optional[Trainer]; not tuple[A, B] or list[A]
            if (dotted_name(annotation.value) or "").rsplit(".", 1)[-1] != "Optional" or len(annotation.slice) != 1:
                return None
            inner = getattr(annotation.slice[0].slice, "value", None)
            return self.class_of_annotation(path, summary, inner) if inner is not None else None
        if isinstance(annotation, cst.BinaryOperation):  # Trainer | None
            named = [part for part in (annotation.left, annotation.right) if not (isinstance(part, cst.Name) and part.value == "None")]
            return self.class_of_annotation(path, summary, named[0]) if len(named) == 1 else None
        name = dotted_name(annotation) if annotation is not None else None
        if name is None:
            return None
        return class_ref(self.project.resolve_callee(path, name) or qualified_symbol(self.project, path, summary, name))

    def _symbol(self, path: Path, summary: FileSummary, function: FunctionSummary | None, spelled: str):
        if "." not in spelled:
            scope = function
            while scope is not None:
                if spelled in scope.local_functions:
                    from gradlint.index.project import Symbol

                    return Symbol(path, summary, "function", spelled, scope.local_functions[spelled])
                scope = scope.parent
        return self.project.resolve_callee(path, spelled) or qualified_symbol(self.project, path, summary, spelled)

    def enclosing(self, path: Path, summary: FileSummary, function: FunctionSummary | None) -> ClassRef | None:
        """The class a function is a method of (or nested in)."""
        while function is not None and function.class_name is None:
            function = function.parent
        if function is None or function.class_name is None:
            return None
        info = summary.classes.get(function.class_name)
        return ClassRef(path, summary, info) if info is not None else None

    # ----------------------------------------------------------------- roles

    @_guarded
    def role_of_value(
        self,
        path: Path,
        summary: FileSummary,
        function: FunctionSummary | None,
        value: cst.BaseExpression | None,
        depth: int = 0,
        position: int | None = None,
    ) -> Role | None:
        """The role of what `value` evaluates to; `position`: of that element of the tuple it
        evaluates to (`model, optimizer, scheduler = setup_model_and_optimizer(...)`)."""
        if value is None or depth > ROLE_DEPTH:
            return None
        if position is not None:
            if isinstance(value, (cst.Tuple, cst.List)):
                if position < len(value.elements):
                    return self.role_of_value(path, summary, function, value.elements[position].value, depth + 1)
                return None
            if not isinstance(value, cst.Call):
                return None
            spelled = dotted_name(value.func)
            symbol = self._symbol(path, summary, function, spelled) if spelled and "." not in spelled else None
            target = function_target(symbol) if symbol is not None else None
            if target is None and spelled:
                target = self.callee(path, summary, function, spelled, summary.qualify(spelled))
            return self._returned_role(target, depth + 1, position) if target is not None else None
        if isinstance(value, cst.Call):
            known = known_role(summary.qualify_expr(value.func))
            if known is not None:
                return known
            spelled = dotted_name(value.func)
            symbol = self._symbol(path, summary, function, spelled) if spelled else None
            if symbol is not None and symbol.kind == "class":
                ref = class_ref(symbol)
                return self.role_of_class(ref) if ref is not None else None
            if symbol is not None and symbol.kind == "module":
                return None
            target = function_target(symbol) if symbol is not None else None
            if target is None and spelled and "." in spelled:
                target = self.callee(path, summary, function, spelled, summary.qualify(spelled))
            if target is not None:
                return self._returned_role(target, depth + 1)
            return None
        if isinstance(value, (cst.Name, cst.Attribute)):
            name = dotted_name(value)
            if name is None:
                return None
            if "." in name:
                receiver, _, attribute = name.rpartition(".")
                owner = self.class_of_name(path, summary, function, receiver, depth + 1)
                found = self.attribute_value(owner, attribute) if owner is not None else None
                if found is None:
                    return None
                bound, where = found
                return self.role_of_value(where.path, where.summary, where.function, bound, depth + 1)
            scope = function
            while scope is not None:
                assigned = scope.bindings.get(name)
                if assigned is not None:
                    return self.role_of_value(path, summary, scope, summary.expression(assigned), depth + 1)
                if name in scope.bindings and name in scope.unpacked:
                    span, position = scope.unpacked[name]
                    return self.role_of_value(path, summary, scope, summary.expression(span), depth + 1, position)
                param = scope.param(name)
                if param is not None:
                    if param.annotation is not None:
                        annotation = summary.expression(param.annotation)
                        ref = self.class_of_annotation(path, summary, annotation)
                        if ref is not None:
                            return self.role_of_class(ref)
                        if isinstance(annotation, (cst.Name, cst.Attribute)):
                            return known_role(summary.qualify_expr(annotation))
                        return None
                    return self.parameter_role(path, summary, scope, name, depth + 1)
                scope = scope.parent
            symbol = self.project.resolve(path, name)
            if symbol is not None and symbol.kind == "value" and isinstance(symbol.target, tuple):
                return self.role_of_value(symbol.path, symbol.summary, None, symbol.summary.expression(symbol.target), depth + 1)
        return None

    @_guarded
    def parameter_role(self, path: Path, summary: FileSummary, function: FunctionSummary, name: str, depth: int = 0) -> Role | None:
        """What a function's callers (in any file) pass for a parameter, when they agree."""
        if depth > ROLE_DEPTH or function.param(name) is None:
            return None
        symbol = self.project.callable_symbol(path, function)
        if symbol is None:
            return None
        roles = []
        for site_path, site in self.project.call_sites(symbol):
            site_summary = self.project.summary(site_path)
            call = site_summary.expression(site.span) if site_summary is not None else None
            argument = argument_for(function, name, call) if isinstance(call, cst.Call) else None
            if argument is None or site_summary is None:
                continue
            roles.append(self.role_of_value(site_path, site_summary, site.function, argument, depth + 1))
        known = [role for role in roles if role is not None]
        if known and len({role.kind for role in known}) == 1:
            return known[0]
        return None

    def _returned_role(self, target: Target, depth: int, position: int | None = None) -> Role | None:
        roles = [
            self.role_of_value(
                target.path, target.summary, target.function, target.summary.expression(span), depth + 1, position
            )
            for span in target.function.facts.returns
        ]
        known = [role for role in roles if role is not None]
        if not known or len({role.kind for role in known}) != 1:
            return None
        # A factory that builds one of several optimizers, some of which clip in `step()`: the
        # configuration picks one, so clipping may well be there (a false warning costs more).
        clips = next((role.clips for role in known if role.clips), None)
        return Role(known[0].kind, clips=clips)

    def role_of_class(self, owner: ClassRef) -> Role | None:
        key = (str(owner.path), owner.info.name)
        return self._memo("roles", key, lambda: self._role_of_class(owner), None)

    def _role_of_class(self, owner: ClassRef) -> Role | None:
        """A scheduler or a scaler (by a base class of torch's); an optimizer (a torch.optim
        subclass, a subclass of a project optimizer, or a class with `zero_grad()` or whose
        `step()` steps an inner optimizer), saying how its `step()` clips when it does; a clipper
        (its `step(params)` clips, and it is no optimizer); else 'other'."""
        kind = None
        for base in owner.info.bases:
            known = known_role(base)
            if known is not None:
                kind = known.kind
                break
        if kind is None:
            for base in self.bases(owner):
                inherited = self.role_of_class(base)
                if inherited is not None and inherited.kind in ("optimizer", "scheduler", "scaler"):
                    kind = inherited.kind
                    break
        if kind in ("scheduler", "scaler"):
            return Role(kind)
        step = self.method(owner, "step")
        effects = self.effects(step.path, step.summary, step.function) if step is not None else NOTHING
        clips = self.describe_clip(effects, f"{owner.info.name}.step") if effects.clips is not None else None
        if kind == "optimizer" or effects.steps or self.method(owner, "zero_grad") is not None:
            return Role("optimizer", clips=clips)
        takes_parameters = step is not None and [name for name in step.function.positional_names() if name != "closure"]
        if step is not None and clips and takes_parameters:
            return Role("clipper", clips=clips)  # `clipper.step(model.parameters())`
        if step is not None and (clips or step.function.facts.uses_grad):
            return Role("optimizer", clips=clips)  # a hand-written optimizer: its step() applies the gradients
        return Role("other")


def known_role(qualified: str | None) -> Role | None:
    if not qualified:
        return None
    if qualified in vocab.GRAD_SCALERS:
        return Role("scaler")
    if vocab.is_scheduler_factory(qualified):
        return Role("scheduler")
    if vocab.is_optimizer_class(qualified):
        return Role("optimizer")
    return None


def function_target(symbol) -> Target | None:
    if symbol is not None and symbol.kind == "function" and isinstance(symbol.target, FunctionSummary):
        return Target(symbol.path, symbol.summary, symbol.target)
    return None


def class_ref(symbol) -> ClassRef | None:
    if symbol is not None and symbol.kind == "class" and isinstance(symbol.target, ClassSummary):
        return ClassRef(symbol.path, symbol.summary, symbol.target)
    return None


def qualified_symbol(project, path: Path, summary: FileSummary, spelled: str):
    qualified = summary.qualify(spelled)
    return project.resolve_qualified(path, qualified) if qualified else None
