"""The synthetic input of `gradlint probe TARGET` when neither `--batch` nor `--input-shape` is
given: read from the model's first layer, before anything runs.

The first layer is the first module, in registration order, that owns parameters (a model whose
recurrent layer is its first child keeps the recurrent default: batch 4, 100 steps):

    nn.Linear(in_features)               (8, in_features)
    nn.Bilinear                          not inferred (two inputs)
    nn.Conv1d/2d/3d(in_channels)         (8, C, 64) / (8, C, 32, 32) / (8, C, 16, 16, 16)
    nn.ConvTranspose1d/2d/3d             the same
    nn.Embedding / EmbeddingBag(num)     integer tokens in [0, num): (8, 32)
    nn.RNN/LSTM/GRU(input_size)          (4, 100, input_size), or (100, 4, input_size) unless batch_first
    nn.RNNCell/LSTMCell/GRUCell          (8, input_size)
    nn.BatchNorm1d/2d/3d(num_features)   (8, C) / (8, C, 32, 32) / (8, C, 16, 16, 16)
    nn.LayerNorm(normalized_shape)       (8, *normalized_shape)

Anything else (a lazy layer, attention, a custom parameter) is not guessed: the probe stops
before running the model and asks for `--input-shape` or `--batch`. This module imports
nothing; the caller passes torch's `nn`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BATCH = 8
RECURRENT_BATCH, RECURRENT_STEPS = 4, 100
TOKENS = 32
LENGTH_1D, SIDE_2D, SIDE_3D = 64, 32, 16
ASK = "pass --input-shape (e.g. --input-shape 8,3,32,32) or --batch module:fn"


class NoInput(Exception):
    """The first layer says nothing about the input (the message says why and what to pass)."""


@dataclass(frozen=True)
class InferredInput:
    shape: list[int]
    source: str
    """What the shape was read from, for the report: "nn.Conv2d `features.0` (in_channels=3)"."""
    tokens: int | None = None
    """For an embedding: integer tokens in [0, tokens); None for a float input."""


def first_layer(model: Any) -> tuple[str, Any] | None:
    """(name, module) of the first module that owns parameters, in registration order."""
    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            return name, module
    return None


def infer_input(model: Any, nn: Any) -> InferredInput:
    """The input shape the first layer takes; raises NoInput when it cannot be read."""
    found = first_layer(model)
    if found is None:
        raise NoInput(f"cannot infer an input: the model has no parameters; {ASK}")
    name, layer = found
    kind = type(layer).__name__
    where = f"nn.{kind} `{name}`" if name else f"nn.{kind}"
    lazy = getattr(nn.modules, "lazy", None)
    if lazy is not None and isinstance(layer, lazy.LazyModuleMixin):
        raise NoInput(f"cannot infer an input from the first layer, {where}: its size is set by the first input; {ASK}")
    if isinstance(layer, (nn.RNN, nn.LSTM, nn.GRU)):
        size = layer.input_size
        shape = [RECURRENT_BATCH, RECURRENT_STEPS, size] if layer.batch_first else [RECURRENT_STEPS, RECURRENT_BATCH, size]
        return InferredInput(shape, f"{where} (input_size={size}, batch {RECURRENT_BATCH}, {RECURRENT_STEPS} steps)")
    if isinstance(layer, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        return InferredInput([BATCH, layer.input_size], f"{where} (input_size={layer.input_size})")
    if isinstance(layer, nn.Linear):
        return InferredInput([BATCH, layer.in_features], f"{where} (in_features={layer.in_features})")
    convolutions = {
        1: (nn.Conv1d, nn.ConvTranspose1d), 2: (nn.Conv2d, nn.ConvTranspose2d), 3: (nn.Conv3d, nn.ConvTranspose3d),
    }
    for dims, kinds in convolutions.items():
        if isinstance(layer, kinds):
            return InferredInput([BATCH, layer.in_channels, *_sides(dims)], f"{where} (in_channels={layer.in_channels})")
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        return InferredInput([BATCH, TOKENS], f"{where} (integer tokens below {layer.num_embeddings})",
                             tokens=layer.num_embeddings)
    norms = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
    for dims, norm in norms.items():
        if isinstance(layer, norm):
            sides = [] if dims == 1 else _sides(dims)
            return InferredInput([BATCH, layer.num_features, *sides], f"{where} (num_features={layer.num_features})")
    if isinstance(layer, nn.LayerNorm):
        shape = list(layer.normalized_shape)
        return InferredInput([BATCH, *shape], f"{where} (normalized_shape={tuple(shape)})")
    raise NoInput(f"cannot infer an input from the first layer, {where}; {ASK}")


def _sides(dims: int) -> list[int]:
    return {1: [LENGTH_1D], 2: [SIDE_2D, SIDE_2D], 3: [SIDE_3D, SIDE_3D, SIDE_3D]}[dims]
