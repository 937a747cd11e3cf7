"""GL105 clip-exhausted-iterator: clipping a parameter generator that something already consumed."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.model import FileModel, Kind, snippet
from gradlint.analysis.steps import Context, Occurrence, contexts
from gradlint.findings import Severity
from gradlint.fix import FixSpec, ReplaceNode
from gradlint.rules._helpers import call_name, latest_assignment, text
from gradlint.rules.base import Diagnostic, Rule, RuleContext


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
                if not isinstance(params, cst.Name):
                    continue
                diagnostic = self._check_clip(model, ctx, context, clip, params)
                if diagnostic is not None:
                    yield diagnostic

    def _check_clip(
        self, model: FileModel, ctx: RuleContext, context: Context, clip: Occurrence, params: cst.Name
    ) -> Diagnostic | None:
        name = params.value
        binding = latest_assignment(context, name, clip.index)
        if binding is None or binding.event.targets != (name,) or not is_one_shot(binding.event.value):
            return None
        source = f"`{snippet(model.module, binding.event.value)}` at line {ctx.line_of(binding.event.node)}"
        fix = self._fix(model, name, binding.event.value)
        hint = f"Bind a list once: `{name} = list(...)`, or pass `model.parameters()` to each call directly."
        for occ in context.between(binding.index, clip.index):
            if self._consumes(occ, name) and occ.event.node is not clip.event.node:
                consumer = f"`{call_name(occ.event)}(...)`" if occ.event.call is not None else "a for loop"
                return Diagnostic(
                    params,
                    f"`{name}` is a generator ({source}) that {consumer} at line {ctx.line_of(occ.event.node)} "
                    f"already consumed: {text(model, clip.event)} gets no parameters and clips nothing",
                    hint=hint,
                    related=((occ.event.node, f"`{name}` is consumed here"),),
                    fix_safety="safe",
                    fix=fix,
                )
        loop = next((b for b in reversed(clip.path) if b.kind.value == "loop" and not binding.inside(b)), None)
        if loop is not None:
            return Diagnostic(
                params,
                f"`{name}` is a generator ({source}) bound outside the loop: the first iteration's "
                f"{text(model, clip.event)} consumes it, and every later iteration clips nothing",
                hint=hint,
                fix_safety="safe",
                fix=fix,
            )
        return None

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
        return event.kind is Kind.CLIP and isinstance(event.params, cst.Name) and event.params.value == name
