"""What the dynamic probe measures, built from a finding's `data`; and what it reports.

This module never imports torch: the static path, the reporters and the CLI can build a
`ProbeConfig`, read a `ProbeResult` and write its JSON without the `probe` extra installed.

`ProbeConfig.from_data(finding.data)` turns the resolved configuration a model/init rule puts
on its finding (GL201-GL302: `{"layer": "RNN", "hidden_size": 128, "num_layers": 4,
"nonlinearity": "relu", "seq_len": 200, "init": {...}, "unresolved": [...]}`) into the shape
of the module the probe rebuilds. Values the linter could not resolve (`null`, missing, or
named in `unresolved`) fall back to `DEFAULTS` and are listed in `defaults_applied`; sizes
above `CAPS` are lowered and listed in `caps_applied`, so a single probe stays small.

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

Init description (`init`: one dict or a list of dicts, applied in order; or a bare name with
its parameters at the top level of `data`, as GL301/GL302 write it)
    {"init": name, ...parameters, "target": ..., "per_gate": bool, "bias": ..., "scale": x}
    name: "default" (PyTorch's own init), "normal_" (mean, std), "uniform_" (a, b),
    "trunc_normal_" (mean, std, a, b), "orthogonal_" (orthogonal_gain / gain_argument),
    "eye_" (eye_scale), "xavier_uniform_" / "xavier_normal_" (gain_argument),
    "kaiming_uniform_" / "kaiming_normal_" (a, mode, nonlinearity), "constant_" (val / value),
    "zeros_", "ones_"; aliases: randn (normal_, std 1), rand (uniform_ 0..1), eye, zeros,
    fill_, zero_, and mul_ / div_ (the default init times `scale`).
    `scale` multiplies the weight after the init (`w.mul_(scale)`).
    `gain` is the expected gain of the weight after the spec, scale included (GL301's `gain`):
    it is used only when the init's own parameter is missing: std = gain / (scale sqrt(n)) for
    normal_, bound = gain sqrt(3 / n) / scale for uniform_, gain / scale for orthogonal_ / eye_ /
    xavier; n defaults to the fan-in of the weight (block) being initialised.
    target: "recurrent" (weight_hh, the default for recurrent layers), "input" (weight_ih),
    "all" (every weight; the default for MLP stacks), or a parameter name, possibly dotted as
    the linter shows it ("rnn.weight_hh_l0": its last segment is matched).
    per_gate: apply the init to each H-row gate block of an LSTM/GRU weight separately
    (default False: the whole parameter, as a call on `weight_hh_l0` does). The LSTM/GRU
    comparison always applies the vanilla RNN's recurrent init per gate block.
    bias: "zeros" (or 0), a number (constant), or "default". `forget_bias` (LSTM only) sets
    the forget-gate slice of bias_ih to the value and of bias_hh to 0 (the total is the value).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

RECURRENT_KINDS = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")
MLP_KIND = "MLP"
KINDS = RECURRENT_KINDS + (MLP_KIND,)

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
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "constant_", "zeros_", "ones_",
)

_INIT_ALIASES: dict[str, dict] = {
    # tensor methods and factories the init rules report (GL301/GL302)
    "normal": {"init": "normal_"}, "uniform": {"init": "uniform_"}, "fill_": {"init": "constant_"},
    "zero_": {"init": "zeros_"}, "zeros": {"init": "zeros_"}, "ones": {"init": "ones_"}, "eye": {"init": "eye_"},
    "randn": {"init": "normal_"}, "rand": {"init": "uniform_", "a": 0.0, "b": 1.0, "gain": None},
    "mul_": {"init": "default"}, "div_": {"init": "default"},
}

_SPEC_KEYS = (
    "mean", "std", "a", "b", "bound", "gain", "gain_argument", "orthogonal_gain", "eye_scale", "n", "scale",
    "value", "val", "target", "per_gate", "forget_bias", "mode",
)
"""Init parameters read from the top level of a finding's data when `init` there is a bare name
(GL301 / GL302 write `{"init": "normal_", "std": 0.2, "n": 128, "gain": 2.26, "target": ...}`)."""

_RELU_LIKE = ("leaky_relu", "elu", "gelu", "selu", "silu", "celu", "softplus", "mish", "prelu", "rrelu")


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


def _flatten(raw: dict) -> dict:
    """The data shapes the model/init rules write, as one flat dict of this module's keys.

    - GL301 nests the layer (`{"layer": {"layer": "LSTM", "hidden_size": 128, ...}, "init":
      "normal_", "std": ..., "target": "rnn.weight_hh_l0", "unresolved": ["layer.input_size"]}`):
      the layer's keys move up, `layer.x` in `unresolved` becomes `x`, and the top-level init
      parameters become one init spec.
    - GL302 has no layer: `n` (the parameter's size) stands for hidden_size.
    - GL204 describes a stack (`{"layers": [...], "depth": N, "widths": [[in, out], ...],
      "modules": [...]}`): an MLP of those widths (`widths`), with the first activation listed.
    """
    flat = dict(raw)
    unresolved = [str(u) for u in (raw.get("unresolved") or ())]
    nested = flat.get("layer")
    if isinstance(nested, dict):
        flat.pop("layer")
        for key, value in nested.items():
            if key == "unresolved":
                unresolved += [str(u) for u in value or ()]
            elif key not in flat or key in ("layer", "input_size", "hidden_size", "num_layers", "bias", "batch_first"):
                flat[key] = value
    flat["unresolved"] = [u.split(".", 1)[1] if u.startswith("layer.") else u for u in unresolved]
    init = flat.get("init")
    if isinstance(init, str):
        spec = {"init": init}
        for key in _SPEC_KEYS:
            if flat.get(key) is not None:
                spec[key] = flat[key]
        flat["init"] = spec
    if flat.get("hidden_size") is None and "hidden_size" not in raw and isinstance(flat.get("n"), int) \
            and not isinstance(flat.get("n"), bool):
        flat["hidden_size"] = flat["n"]
    if "layer" not in flat and isinstance(flat.get("layers"), list):
        layers = [str(x) for x in flat["layers"]]
        flat["layer"] = "MLP" if layers and all(x == "Linear" for x in layers) else (layers[0] if layers else None)
        widths = [w for w in flat.get("widths") or () if isinstance(w, (list, tuple)) and len(w) == 2]
        outs = [w[1] for w in widths if isinstance(w[1], int) and not isinstance(w[1], bool)]
        if outs and flat.get("width") is None:
            flat["width"] = max(outs)
        if widths and isinstance(widths[0][0], int) and flat.get("input_size") is None:
            flat["input_size"] = widths[0][0]
        if flat.get("nonlinearity") is None:
            acts = [m for m in flat.get("modules") or () if normalise_nonlinearity(m) not in (None, "identity")]
            if acts:
                flat["nonlinearity"] = acts[0]
    return flat


@dataclass
class ProbeOptions:
    """How to measure (the thresholds are the verdict's options)."""

    explode_threshold: float = 10.0
    """Verdict `explodes` when G >= this (or anything non-finite appears)."""
    vanish_threshold: float = 0.1
    """Verdict `vanishes` when G <= this."""
    regimes: tuple[str, ...] = ("small-signal", "unit-scale")
    small_signal_scale: float = 1e-100
    """Input scale of the small-signal regime (float64: linear over any probed window)."""
    skip_last: int = 2
    """Time steps nearest the loss left out of the fit (projection transient), when the window
    has at least 10 steps."""
    compare: bool = True
    """Also probe nn.LSTM / nn.GRU of the same size and init, and the clipped vanilla RNN."""
    compare_window: int = 50
    """Window of the LSTM/GRU comparison (a per-step factor needs no more; G still uses T)."""
    per_layer: bool = True
    clip_update: bool = False
    """Also measure the parameter-gradient norm of one unit-scale sequence before/after clipping
    (an extra backward pass with weight gradients); off by default: clipping never changes k."""
    seed: int = 0
    mlp_batch: int = 4
    device: str = "cpu"


@dataclass
class ProbeConfig:
    """The shape of the module to rebuild (after defaults and caps)."""

    kind: str = "RNN"
    input_size: int = DEFAULTS["input_size"]
    hidden_size: int = DEFAULTS["hidden_size"]
    num_layers: int = DEFAULTS["num_layers"]
    nonlinearity: str = DEFAULTS["nonlinearity"]
    bias: bool = DEFAULTS["bias"]
    batch_first: bool = DEFAULTS["batch_first"]
    seq_len: int = DEFAULTS["seq_len"]
    """The user's sequence length T (G = k ** (T - 1)); not capped."""
    window: int = DEFAULTS["seq_len"]
    """Time steps the probe runs: min(seq_len, 200)."""
    init: list[dict] = field(default_factory=list)
    depth: int = DEFAULTS["depth"]
    """MLP: the user's number of Linear layers (G uses it)."""
    probe_depth: int = DEFAULTS["depth"]
    """MLP: layers the probe builds: min(depth, 64)."""
    width: int = DEFAULTS["hidden_size"]
    """MLP: hidden width (capped like hidden_size)."""
    widths: list[list[int]] = field(default_factory=list)
    """MLP: [in, out] of each Linear layer the probe builds, when the finding lists them
    (GL204's `widths`, each capped at 512, first 64 layers); empty: `depth` layers of `width`."""
    input_scale: float = DEFAULTS["input_scale"]
    clip_max_norm: float = DEFAULTS["clip_max_norm"]
    defaults_applied: list[str] = field(default_factory=list)
    caps_applied: list[str] = field(default_factory=list)

    @property
    def recurrent(self) -> bool:
        return self.kind in RECURRENT_KINDS

    @property
    def steps(self) -> int:
        """T_user: what G is extrapolated over (time steps, or Linear layers for an MLP)."""
        return self.seq_len if self.recurrent else self.depth

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_data(cls, data: dict | None, **overrides: Any) -> ProbeConfig:
        """Build from a finding's `data` dict; `overrides` win over `data` (same keys).

        A value is unresolved when it is `null` or named in `data["unresolved"]`: it falls back
        to `DEFAULTS` and is listed in `defaults_applied`. A key that is simply absent means the
        same for sizes (input_size, hidden_size, seq_len, depth, width); for the constructor
        arguments with a PyTorch default (num_layers, nonlinearity of nn.RNN, bias, batch_first)
        absence means the code did not pass them, so PyTorch's default is used silently.
        Raises `UnsupportedModule` when the layer kind is given but is not one the probe
        rebuilds (a missing kind falls back to RNN and is reported)."""
        raw = _flatten(dict(data or {}))
        raw.update(overrides)
        unresolved_names = set(raw.get("unresolved") or ())
        defaults: list[str] = []
        caps: list[str] = []

        def unresolved(*keys: str) -> bool:
            return any(k in unresolved_names or (k in raw and raw[k] is None) for k in keys)

        def get(*keys: str) -> Any:
            for key in keys:
                if key in raw and raw[key] is not None and key not in unresolved_names:
                    return raw[key]
            return None

        def integer(keys: tuple[str, ...], default: int, name: str, torch_default: bool = False) -> int:
            value = get(*keys)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
                if value is not None:
                    defaults.append(f"{name}={default} (default: {value!r} is not a size)")
                elif not torch_default or unresolved(*keys):
                    defaults.append(f"{name}={default} (default: unresolved)")
                return default
            return int(value)

        def boolean(key: str, default: bool) -> bool:
            value = get(key)
            if isinstance(value, bool):
                return value
            if value is not None:
                defaults.append(f"{key}={default} (default: {value!r} is not a boolean)")
            elif unresolved(key):
                defaults.append(f"{key}={default} (default: unresolved)")
            return default

        def cap(name: str, value: int) -> int:
            limit = CAPS[name]
            if value > limit:
                caps.append(f"{name} {value} -> {limit} (cap)")
                return limit
            return value

        kind_keys = ("layer", "kind", "module", "type")
        given = get(*kind_keys)
        kind = normalise_kind(given)
        if kind is None:
            if given is not None:
                raise UnsupportedModule(f"the probe does not rebuild {given!r} layers (supported: {', '.join(KINDS)})")
            kind = "RNN"
            defaults.append("kind=RNN (default: unresolved)")

        config = cls(kind=kind)
        config.bias = boolean("bias", DEFAULTS["bias"])
        config.batch_first = boolean("batch_first", DEFAULTS["batch_first"])

        scale = get("input_scale")
        if isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale) and scale > 0:
            config.input_scale = float(scale)
        clip = get("clip_max_norm", "max_norm", "clip")
        if isinstance(clip, (int, float)) and not isinstance(clip, bool) and math.isfinite(clip) and clip > 0:
            config.clip_max_norm = float(clip)

        config.init = normalise_init(get("init"))
        for spec in config.init:
            if spec["init"] not in INIT_NAMES:
                defaults.append(f"init={spec['init']!r} not supported: PyTorch default init used for it")
        if unresolved("init"):
            defaults.append("init=default (default: unresolved, PyTorch's own init used)")

        if config.recurrent:
            config.input_size = cap("input_size", integer(("input_size",), DEFAULTS["input_size"], "input_size"))
            config.hidden_size = cap("hidden_size", integer(("hidden_size",), DEFAULTS["hidden_size"], "hidden_size"))
            cell_layers = get("num_layers")
            if kind.endswith("Cell") and isinstance(cell_layers, int) and not isinstance(cell_layers, bool) \
                    and cell_layers > 1:
                # A stack of cells run layer by layer at each step is the stacked module.
                stacked = kind[: -len("Cell")]
                defaults.append(f"kind={stacked} (a stack of {cell_layers} nn.{kind}s probed as nn.{stacked}"
                                f"(num_layers={cell_layers}))")
                kind = config.kind = stacked
            if kind.endswith("Cell"):
                config.num_layers = 1
            else:
                config.num_layers = cap("num_layers", integer(("num_layers",), DEFAULTS["num_layers"], "num_layers",
                                                              torch_default=True))
            config.seq_len = integer(("seq_len", "bptt", "steps"), DEFAULTS["seq_len"], "seq_len")
            config.window = config.seq_len
            if config.window > CAPS["window"]:
                caps.append(f"window {config.seq_len} -> {CAPS['window']} steps (cap; G extrapolated to {config.seq_len})")
                config.window = CAPS["window"]
            per_step = GATES[kind] * config.num_layers * max(1.0, (config.hidden_size / 256) ** 2)
            if per_step * config.window > CAPS["work"]:
                shorter = max(int(CAPS["work"] // per_step), min(MIN_WINDOW, config.window))
                if shorter < config.window:
                    caps.append(f"window {config.window} -> {shorter} steps (work cap: gates x num_layers x window x "
                                f"(hidden/256)^2 <= {CAPS['work']}; G extrapolated to {config.seq_len})")
                    config.window = shorter
            if kind in ("RNN", "RNNCell"):
                given_nl = get("nonlinearity")
                nl = normalise_nonlinearity(given_nl)
                if nl in _RELU_LIKE:
                    defaults.append(f"nonlinearity=relu (closest torch recurrence to {given_nl!r})")
                    nl = "relu"
                elif nl == "identity":
                    defaults.append(f"nonlinearity=tanh (for {given_nl!r}: its small-signal regime is the linear "
                                    "recurrence)")
                    nl = "tanh"
                elif nl not in RNN_NONLINEARITIES:
                    if given_nl is not None:
                        defaults.append(f"nonlinearity={DEFAULTS['nonlinearity']} (default: {given_nl!r} is not an "
                                        "RNN nonlinearity)")
                    elif unresolved("nonlinearity"):
                        defaults.append(f"nonlinearity={DEFAULTS['nonlinearity']} (default: unresolved)")
                    nl = DEFAULTS["nonlinearity"]
                config.nonlinearity = nl
            else:
                config.nonlinearity = "tanh"  # gated cells: fixed sigmoid/tanh
            if get("bidirectional") is True:
                defaults.append("bidirectional=False (one direction probed: the reverse one is the same recurrence)")
            if isinstance(get("proj_size"), int) and get("proj_size") > 0:
                defaults.append("proj_size=0 (LSTM projection not rebuilt)")
        else:
            width = integer(("width", "hidden_size"), DEFAULTS["hidden_size"], "width")
            config.width = config.hidden_size = cap("hidden_size", width)
            # An MLP's input size defaults to its width, silently: it is the stack's own size.
            given_input = get("input_size")
            config.input_size = (cap("input_size", integer(("input_size",), config.width, "input_size"))
                                 if given_input is not None else config.width)
            widths = raw.get("widths")
            if isinstance(widths, list) and widths and all(
                isinstance(w, (list, tuple)) and len(w) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in w) for w in widths
            ):
                if get("depth") is None:
                    raw["depth"] = len(widths)
                limit = CAPS["hidden_size"]
                if any(v > limit for w in widths for v in w):
                    caps.append(f"widths above {limit} -> {limit} (cap)")
                chain: list[list[int]] = []
                for w_in, w_out in widths[: CAPS["depth"]]:
                    w_in = chain[-1][1] if chain else min(w_in, limit)
                    chain.append([w_in, min(w_out, limit)])
                config.widths = chain
                config.input_size = chain[0][0]
                config.width = config.hidden_size = max(w[1] for w in chain)
            config.depth = integer(("depth", "num_layers"), DEFAULTS["depth"], "depth")
            config.probe_depth = cap("depth", config.depth)
            if config.widths:
                del config.widths[config.probe_depth:]
                while len(config.widths) < config.probe_depth:  # a listing shorter than the depth
                    config.widths.append([config.widths[-1][1], config.widths[-1][1]])
            config.num_layers = config.probe_depth
            config.seq_len = config.depth
            config.window = config.probe_depth
            nl = normalise_nonlinearity(get("nonlinearity", "activation"))
            if nl not in MLP_NONLINEARITIES:
                given_nl = get("nonlinearity", "activation")
                defaults.append(f"nonlinearity={DEFAULTS['mlp_nonlinearity']} (default: "
                                + ("unresolved" if given_nl is None else f"{given_nl!r} not supported") + ")")
                nl = DEFAULTS["mlp_nonlinearity"]
            config.nonlinearity = nl
        config.defaults_applied = defaults
        config.caps_applied = caps
        return config


class UnsupportedModule(ValueError):
    """The finding's layer kind is not one the probe can rebuild (the finding is not probed)."""


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------

VERDICT_RANK = {"vanishes": 0, "stable": 1, "explodes": 2}


def json_number(value: Any) -> Any:
    """JSON has no inf/nan: finite floats stay numbers, the others become the strings
    "inf", "-inf" and "nan". Everything else is returned unchanged."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    return value


def from_json_number(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return json_number(value)


def log10_total_growth(k: float, steps: int) -> float | None:
    """log10 G = (T - 1) * log10 k, computed without forming G (finite whenever k is finite
    and positive, even when G itself overflows); -inf for k = 0, None for nan."""
    if math.isnan(k) or k < 0:
        return None
    if steps <= 1:
        return 0.0
    if k == 0:
        return float("-inf")
    if math.isinf(k):
        return float("inf")
    return (steps - 1) * math.log10(k)


def total_growth(k: float, steps: int) -> float:
    """G = k ** (T - 1); inf when it overflows a float."""
    if steps <= 1:
        return 1.0
    if math.isnan(k):
        return float("nan")
    if k <= 0:
        return 0.0
    if math.isinf(k):
        return float("inf")
    exponent = (steps - 1) * math.log(k)
    if exponent > 709.0:
        return float("inf")
    return math.exp(exponent)


@dataclass
class RegimeResult:
    """One input regime's measurement (the same fields as the headline)."""

    regime: str
    verdict: str
    growth_per_step: float
    total_growth: float
    steps: int
    window: int
    input_scale: float
    norms: list[float]
    """log10 ||dL/dx_t|| for t = 0..window-1 (MLP: per layer input); -inf for an exact 0."""
    nonfinite: bool = False
    fit_points: int = 0
    per_layer: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    state_max: float | None = None
    """Small-signal: largest |h| of the zero-input (operating-point) trajectory."""
    linear: bool | None = None
    """Small-signal: the state stayed in the linear range (no biases: max |h| <= 1e-3; with biases
    True by construction, see gradlint.probe.measure)."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["log10_total_growth"] = log10_total_growth(self.growth_per_step, self.steps)
        return d


@dataclass
class ProbeResult:
    """What one probe found (see gradlint.probe.measure for the definitions).

    The headline fields are those of the worst regime (explodes > stable > vanishes, ties:
    the larger k), named by `regime`; `regimes` holds every regime probed.
    """

    verdict: str
    """`explodes` / `stable` / `vanishes`."""
    growth_per_step: float
    """k: the per-step (MLP: per-layer) factor of the gradient norm, going back from the loss."""
    total_growth: float
    """G = k ** (steps - 1); float("inf") when it overflows."""
    steps: int
    """T: the user's sequence length (MLP: depth), uncapped."""
    regime: str
    """The regime that gave the headline: `small-signal` or `unit-scale`."""
    regimes: list[RegimeResult] = field(default_factory=list)
    per_layer: list[dict] = field(default_factory=list)
    """Recurrent: {"layer", "input_size", "growth_per_step", "total_growth", "verdict",
    "nonfinite"} per layer of the headline regime; MLP: {"layer", "log10_norm", "factor"}."""
    compare: dict[str, dict] = field(default_factory=dict)
    """{"lstm": {...}, "gru": {...}, "rnn_clipped": {...}} for recurrent modules, each with at
    least growth_per_step and verdict; {} for MLPs."""
    norms: list[float] = field(default_factory=list)
    """log10 ||dL/dx_t|| per time step t = 0..window-1 of the headline regime (for charts)."""
    defaults_applied: list[str] = field(default_factory=list)
    caps_applied: list[str] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the probe (torch import excluded)."""
    kind: str = "RNN"
    window: int = 0
    """Steps (MLP: layers) actually run; G is extrapolated from them to `steps`."""
    config: dict = field(default_factory=dict)
    """The ProbeConfig that was rebuilt (after defaults and caps)."""
    notes: list[str] = field(default_factory=list)

    def regime_result(self, name: str) -> RegimeResult:
        for item in self.regimes:
            if item.regime == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict:
        """Python values (floats may be inf / nan)."""
        d = asdict(self)
        d["regimes"] = [r.to_dict() for r in self.regimes]
        d["log10_total_growth"] = log10_total_growth(self.growth_per_step, self.steps)
        return d

    def to_json(self) -> dict:
        """A JSON-safe dict: every non-finite float (G = inf, log10 of a zero norm) is written
        as the string "inf", "-inf" or "nan"; finite values stay numbers. `log10_total_growth`
        (a number whenever k is finite and positive) rides along for consumers that want a
        number. `from_json_number` reads the strings back."""
        return _jsonable(self.to_dict())
