"""The names the probe knows: layer kinds, nonlinearities and init functions, their aliases,
and the canonical form of each (`normalise_kind`, `normalise_nonlinearity`, `normalise_init`).

Torch-free. The init spec format is described in gradlint.probe.config.
"""

from __future__ import annotations

from typing import Any

RECURRENT_KINDS = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
MLP_KIND = "MLP"
KINDS = RECURRENT_KINDS + (MLP_KIND,)

RNN_NONLINEARITIES = ("tanh", "relu")
MLP_NONLINEARITIES = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "elu", "selu", "silu", "identity")

_KIND_ALIASES = {
    "rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "rnncell": "RNNCell", "lstmcell": "LSTMCell",
    "grucell": "GRUCell", "mlp": "MLP", "linear": "MLP", "sequential": "MLP", "stack": "MLP",
    "handwritten": "RNNCell",
}

_NONLINEARITY_ALIASES = {
    "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "gelu": "gelu", "leaky_relu": "leaky_relu",
    "leakyrelu": "leaky_relu", "elu": "elu", "selu": "selu", "silu": "silu", "swish": "silu",
    "identity": "identity", "linear": "identity", "none": "identity", "celu": "celu", "softplus": "softplus",
    "mish": "mish", "prelu": "prelu", "rrelu": "rrelu",
}

INIT_NAMES = (
    "default", "normal_", "uniform_", "trunc_normal_", "orthogonal_", "eye_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "constant_", "zeros_", "ones_", "multiply",
)

_INIT_ALIASES: dict[str, dict] = {
    # tensor methods and factories the init rules report (GL301/GL302)
    "normal": {"init": "normal_"}, "uniform": {"init": "uniform_"}, "fill_": {"init": "constant_"},
    "zero_": {"init": "zeros_"}, "zeros": {"init": "zeros_"}, "ones": {"init": "ones_"}, "eye": {"init": "eye_"},
    "randn": {"init": "normal_"}, "rand": {"init": "uniform_", "a": 0.0, "b": 1.0, "gain": None},
    "mul_": {"init": "default"}, "div_": {"init": "default"},
}

SPEC_KEYS = (
    "mean", "std", "a", "b", "bound", "gain", "gain_argument", "orthogonal_gain", "eye_scale", "n", "scale",
    "value", "val", "target", "per_gate", "forget_bias", "mode", "at",
)
"""Init parameters read from the top level of a finding's data when `init` there is a bare name
(GL301 / GL302 write `{"init": "normal_", "std": 0.2, "n": 128, "gain": 2.26, "target": ...}`)."""


def normalise_kind(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    last = value.rsplit(".", 1)[-1]
    return _KIND_ALIASES.get(last.lower())


def normalise_nonlinearity(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    last = value.rsplit(".", 1)[-1].lower().rstrip("()")
    return _NONLINEARITY_ALIASES.get(last)


def normalise_init(value: Any) -> list[dict]:
    """One init dict, a list of them, or a bare name -> a list of dicts with a canonical name."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[dict] = []
    for item in items:
        if isinstance(item, str):
            item = {"init": item}
        if not isinstance(item, dict):
            continue
        spec = dict(item)
        name = spec.get("init") or spec.get("name") or "default"
        name = str(name).rsplit(".", 1)[-1]
        if name in _INIT_ALIASES:
            spec.update(_INIT_ALIASES[name])
            name = spec["init"]
        if name not in INIT_NAMES and name + "_" in INIT_NAMES:
            name = name + "_"
        spec["init"] = name
        out.append({k: v for k, v in spec.items() if v is not None or k == "init"})
    return out


def init_spec(data: dict) -> dict | None:
    """The init spec a finding's data describes when its `init` is a bare name, with the
    parameters (`SPEC_KEYS`) read from the top level of the data; None when `init` is not a
    name (absent, a dict or a list: already specs)."""
    init = data.get("init")
    if not isinstance(init, str):
        return None
    spec = {"init": init}
    spec.update({key: data[key] for key in SPEC_KEYS if data.get(key) is not None})
    return spec
