"""GL203 long-unrolled-vanilla-rnn: A vanilla RNN is trained on long sequences, so its gradient is a product of a hundred or more Jacobians."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gradlint.analysis.layers import VANILLA_KINDS, json_value, layers
from gradlint.analysis.model import FileModel
from gradlint.findings import Severity
from gradlint.index.layer_config import resolve_layer
from gradlint.index.sequence import sequence_length
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext


class LongUnrolledVanillaRnn(Rule):
    code = "GL203"
    name = "long-unrolled-vanilla-rnn"
    severity = Severity.WARNING
    summary = "A vanilla RNN is trained on long sequences, so its gradient is a product of a hundred or more Jacobians."
    options = (
        Option("min-length", 100, "Report vanilla RNNs trained on sequences at least this long."),
    )
    triggers = ("RNN",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        minimum = ctx.options["min-length"]
        path = ctx.source.path
        cells_seen: set[Any] = set()
        for layer in layers(model):
            if layer.kind not in VANILLA_KINDS:
                continue
            if layer.kind == "RNNCell":
                # One finding per model for a stack of cells.
                key = layer.owner or id(layer.function)
                if key in cells_seen:
                    continue
                cells_seen.add(key)
            length = sequence_length(ctx.project, path, model, layer.node, layer.function)
            if length is None:
                continue
            value = length.value
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
                continue
            config = resolve_layer(ctx.project, path, model, layer.node, layer.kind, layer.function)
            nonlinearity = config.get("nonlinearity")
            activation = f"{nonlinearity} " if isinstance(nonlinearity, str) else ""
            steps = f"{value:g}"
            yield Diagnostic(
                layer.node,
                f"This vanilla {activation}`nn.{layer.kind}` is trained on sequences of {steps} steps "
                f"(`{length.name}`: {length.origin}): backpropagation through time multiplies {steps} "
                f"recurrent Jacobians, so the gradient explodes or vanishes exponentially with the length.",
                hint=(
                    f"Use a gated `nn.LSTM`/`nn.GRU`, or truncate backpropagation to shorter chunks "
                    f"(`{length.name}` of 35-50 and detach the hidden state between chunks), and clip gradients "
                    f"with `torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`."
                ),
                data=config.data(seq_len=json_value(value), seq_len_name=length.name, seq_len_origin=length.origin),
            )


