"""The defaults and caps table: what an unresolved value becomes, and how large one probe may get.

Torch-free. `ProbeConfig.from_data` (gradlint.probe.config) applies these and lists each one it
applied in `defaults_applied` / `caps_applied`.

Defaults (unresolved values)
    input_size 32, hidden_size 128, num_layers 1, seq_len 100, nonlinearity "tanh" for
    recurrent layers and "relu" for MLP stacks, bias True, batch_first False, init: PyTorch's
    default, MLP depth 10, MLP width = hidden_size, MLP input size = width, input_scale 1.0
    (the unit-scale regime), clip max_norm 1.0.

Caps (one probe stays small; the window caps do not change `steps`)
    hidden_size (and MLP width) <= 512, input_size <= 512, num_layers <= 8,
    probe window <= 200 time steps, MLP depth <= 64, and a work cap
        gates x num_layers x window x max(1, (hidden_size / 256) ** 2) <= 800
    (gates: 1 vanilla, 3 GRU, 4 LSTM), which shortens the window but never below 50 steps:
    a vanilla layer keeps 200 steps up to hidden 512, two 512-wide layers get 100, an
    LSTM layer of 256 gets 200 and of 512 gets 50, eight layers get 50.
    The probe runs `window = min(seq_len, 200, work cap)` steps; the growth over the user's
    sequence is extrapolated as G = k ** (seq_len - 1) from the per-step factor k, so a capped
    window still speaks for the full sequence (the theory tests hold at 50 steps). The MLP is
    probed at depth <= 64 and G uses the user's depth the same way.
"""

from __future__ import annotations

from typing import Any

DEFAULTS: dict[str, Any] = {
    "input_size": 32,
    "hidden_size": 128,
    "num_layers": 1,
    "seq_len": 100,
    "nonlinearity": "tanh",
    "mlp_nonlinearity": "relu",
    "bias": True,
    "batch_first": False,
    "depth": 10,
    "input_scale": 1.0,
    "clip_max_norm": 1.0,
}

CAPS: dict[str, int] = {
    "hidden_size": 512,
    "input_size": 512,
    "num_layers": 8,
    "window": 200,
    "work": 800,
    "depth": 64,
}
GATES = {"RNN": 1, "RNNCell": 1, "GRU": 3, "GRUCell": 3, "LSTM": 4, "LSTMCell": 4}
MIN_WINDOW = 50
"""The work cap never shortens the window below this (the per-step factor needs ~30-50 steps)."""
