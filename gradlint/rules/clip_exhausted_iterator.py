"""GL105 clip-exhausted-iterator: clipping a parameter generator that something already consumed."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.analysis.model import BlockKind, ClassInfo, Event, FileModel, Kind, snippet
from gradlint.analysis.names import dotted_name
from gradlint.analysis.roles import is_one_shot, returns_iterator
from gradlint.analysis.steps import Context, Occurrence, contexts, exclusive
from gradlint.findings import Severity
from gradlint.fix import FixSpec, ReplaceNode
from gradlint.rules._helpers import call_name, latest_assignment, text
from gradlint.rules.base import Diagnostic, Rule, RuleContext

MAX_ALIASES = 4


class ClipExhaustedIterator(Rule):
    code = "GL105"
    name = "clip-exhausted-iterator"
    severity = Severity.ERROR
    summary = "Clipping is given a parameter generator that was already consumed, so it clips nothing."
    fix = "safe"
    triggers = ("clip_grad",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        for context in contexts(model):
            for clip in context.of_kind(Kind.CLIP):
                params = clip.event.params
                name = dotted_name(params) if isinstance(params, (cst.Name, cst.Attribute)) else None
                if name is None or ("." in name and not (name.startswith("self.") and name.count(".") == 1)):
                    continue
                diagnostic = self._check_clip(model, ctx, context, clip, params, name)
                if diagnostic is not None:
                    yield diagnostic

    def _check_clip(
        self, model: FileModel, ctx: RuleContext, context: Context, clip: Occurrence, params, name: str
    ) -> Diagnostic | None:
        # Follow aliases back to the generator: `params_to_clip = lora_layers` with
        # `lora_layers = filter(...)`; a consumer of any of these names exhausts it.
        names = [name]
        binding = latest_assignment(context, name, clip.index)
        while (
            binding is not None
            and binding.event.targets == (names[-1],)
            and isinstance(binding.event.value, cst.Name)
            and len(names) <= MAX_ALIASES
        ):
            alias = binding.event.value.value
            earlier = latest_assignment(context, alias, binding.index)
            if earlier is None:
                break
            names.append(alias)
            binding = earlier
        if binding is None:
            if name.startswith("self."):
                return self._check_attribute(model, ctx, context, clip, params, name)
            return None
        value = binding.event.value
        if binding.event.targets != (names[-1],) or not self._one_shot(model, context, binding, value):
            return None
        source = f"`{snippet(model.module, value)}` at line {ctx.line_of(binding.event.node)}"
        fix = self._fix(model, names[-1], value)
        hint = f"Bind a list once: `{names[-1]} = list(...)`, or pass `model.parameters()` to each call directly."
        through = f", bound through `{names[-1]}`," if len(names) > 1 else ""
        for occ in context.between(binding.index, clip.index):
            if occ.event.node is clip.event.node or not any(self._consumes(occ, alias) for alias in names):
                continue
            if exclusive(occ, clip):
                continue  # the consumer and the clip are in different branches of one if/elif/else
            consumer = f"`{call_name(occ.event)}(...)`" if occ.event.call is not None else "a for loop"
            return Diagnostic(
                params,
                f"`{name}` is a generator ({source}){through} that {consumer} at line {ctx.line_of(occ.event.node)} "
                f"already consumed: {text(model, clip.event)} gets no parameters and clips nothing",
                hint=hint,
                related=((occ.event.node, f"`{occ.event.name}` is consumed here"),),
                fix_safety="safe",
                fix=fix,
            )
        loop = next((b for b in reversed(clip.path) if b.kind is BlockKind.LOOP and not binding.inside(b)), None)
        if loop is not None:
            return Diagnostic(
                params,
                f"`{name}` is a generator ({source}){through} bound outside the loop: the first iteration's "
                f"{text(model, clip.event)} consumes it, and every later iteration clips nothing",
                hint=hint,
                fix_safety="safe",
                fix=fix,
            )
        return None

    def _check_attribute(
        self, model: FileModel, ctx: RuleContext, context: Context, clip: Occurrence, params, name: str
    ) -> Diagnostic | None:
        """`self.params = model.parameters()` set in one method (`__init__`, `setup`) and consumed
        there or in another method (the optimizer built with it), then clipped in `train_step`."""
        owner = context.owner_class()
        attribute = name[5:]
        if owner is None or attribute not in owner.attribute_values:
            return None
        value = owner.attribute_values[attribute]
        setter = owner.attribute_functions.get(attribute)
        setter_context = next((c for c in contexts(model) if c.function is setter), None)
        if setter is None or setter_context is None or setter is context.function:
            return None
        binding = latest_assignment(setter_context, name, len(setter_context.occurrences))
        if binding is None or not self._one_shot(model, setter_context, binding, value):
            return None
        consumer = self._attribute_consumer(model, owner, setter_context, binding, name, clip)
        if consumer is None:
            return None
        source = f"`{snippet(model.module, value)}` at line {ctx.line_of(binding.event.node)}"
        where = f"`{call_name(consumer)}(...)`" if consumer.call is not None else "a for loop"
        return Diagnostic(
            params,
            f"`{name}` is a generator ({source}) that {where} at line {ctx.line_of(consumer.node)} already "
            f"consumed: {text(model, clip.event)} gets no parameters and clips nothing",
            hint=f"Bind a list once: `{name} = list(...)`.",
            related=((consumer.node, f"`{name}` is consumed here"),),
            fix_safety="safe",
            fix=self._fix(model, name, value),
        )

    def _attribute_consumer(
        self, model: FileModel, owner: ClassInfo, setter: Context, binding: Occurrence, name: str, clip: Occurrence
    ) -> Event | None:
        """The first consumer of `self.x` other than this clip: after the binding in the method
        that sets it, or in any other method of the class."""
        for occ in setter.occurrences[binding.index + 1 :]:
            if self._consumes(occ, name) and occ.event.node is not clip.event.node:
                return occ.event
        for method in owner.methods.values():
            if method is setter.function:
                continue
            for event in method.body.events():
                if event.node is clip.event.node:
                    continue
                if (event.kind is Kind.ARG and event.name == name) or (
                    event.kind is Kind.CLIP and dotted_name(event.params) == name if event.params is not None else False
                ):
                    return event
        return None

    @staticmethod
    def _one_shot(model: FileModel, context: Context, binding: Occurrence, value) -> bool:
        if is_one_shot(value):
            return True
        owner = context.owner_function(binding)
        return isinstance(value, cst.Call) and returns_iterator(model, owner, value)

    @staticmethod
    def _fix(model: FileModel, name: str, value: cst.BaseExpression) -> FixSpec:
        """`params = model.parameters()` -> `params = list(model.parameters())`: every consumer then
        sees all the parameters, which is what passing the same name twice meant."""
        code = model.module.code_for_node(value)
        if isinstance(value, cst.GeneratorExp) and len(value.lpar) == 1:
            materialised = f"list{code}"  # `list(p for p in ...)`, not `list((p for p in ...))`
        else:
            materialised = f"list({code})"
        return FixSpec("safe", f"bind a list: `{name} = list(...)`", (ReplaceNode(value, materialised),))

    @staticmethod
    def _consumes(occ: Occurrence, name: str) -> bool:
        event = occ.event
        if event.kind is Kind.ARG and event.name == name:
            return True
        return event.kind is Kind.CLIP and event.params is not None and dotted_name(event.params) == name

