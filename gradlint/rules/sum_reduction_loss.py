"""GL109 sum-reduction-loss: a reduction='sum' loss backpropagated without normalization."""

from __future__ import annotations

from typing import Iterator

import libcst as cst

from gradlint.analysis.model import FileModel, Kind
from gradlint.analysis.steps import contexts
from gradlint.findings import Severity
from gradlint.index.frameworks.places import context_of, index_of
from gradlint.index.losses import LossTracer, SummedLoss, returns
from gradlint.rules._helpers import text
from gradlint.rules.base import Diagnostic, Rule, RuleContext

_WHY = (
    "the gradient grows with the batch size and sequence length, so a learning rate tuned on one size "
    "explodes on a larger one"
)
_HINT = "Use reduction='mean', or divide the loss by the number of elements (the batch size or token count) before backward()."


class SumReductionLoss(Rule):
    code = "GL109"
    name = "sum-reduction-loss"
    severity = Severity.INFO
    summary = "A loss built with reduction='sum' is backpropagated without normalization, so the gradient grows with the batch size."
    # A summed loss built in another file reaches this one's backward through the index: `backward`
    # is enough (GL109 traces only the tensors of backward calls).
    triggers = ("sum", "size_average", "backward", "training_step")

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        tracer = LossTracer(ctx.project, ctx.source.path, model)
        reported: set[int] = set()
        for context in contexts(model):
            for occ in context.of_kind(Kind.BACKWARD):
                if id(occ.event.node) in reported:
                    continue
                source = tracer.source(context, occ.event.tensor, occ.index)
                if source is None:
                    continue
                reported.add(id(occ.event.node))
                yield Diagnostic(
                    occ.event.node,
                    f"{text(model, occ.event)} backpropagates a loss summed with reduction='sum' "
                    f"({_described(source, ctx)}): {_WHY}",
                    hint=_HINT,
                    related=_related(source, ctx),
                )
        yield from self._lightning(model, ctx, tracer)

    def _lightning(self, model: FileModel, ctx: RuleContext, tracer: LossTracer) -> Iterator[Diagnostic]:
        """A LightningModule's `training_step` returns the loss Lightning backpropagates."""
        project = ctx.project
        if project is None:
            return
        for info in model.classes.values():
            method = info.methods.get("training_step")
            if method is None:
                continue
            symbol = project.class_symbol(ctx.source.path, info)
            facts = project.facts.of_class(symbol) if symbol is not None else None
            if facts is None or not facts.lightning or facts.manual_optimization:
                continue
            context = context_of(model, method)
            if context is None:
                continue
            for node in returns(method.node):
                value = node.value
                if isinstance(value, cst.Dict):
                    value = next(
                        (e.value for e in value.elements if isinstance(e, cst.DictElement) and _key(e) == "loss"), None
                    )
                source = tracer.source(context, value, index_of(context, node))
                if source is None:
                    continue
                yield Diagnostic(
                    node,
                    f"`{info.name}.training_step` returns a loss summed with reduction='sum' "
                    f"({_described(source, ctx)}), and Lightning backpropagates it as it is: {_WHY}",
                    hint=_HINT,
                    related=_related(source, ctx),
                )


def _described(source: SummedLoss, ctx: RuleContext) -> str:
    where = f"line {source.line}" if source.path == ctx.source.path else ctx.project.where(source.path, source.line)
    return ", ".join([f"`{source.text}` at {where}", *source.via])


def _related(source: SummedLoss, ctx: RuleContext) -> tuple:
    if source.path != ctx.source.path:
        return ()
    return ((source.node, "the loss is summed here"),)


def _key(element: cst.DictElement) -> str | None:
    key = element.key
    return key.raw_value if isinstance(key, cst.SimpleString) else None
