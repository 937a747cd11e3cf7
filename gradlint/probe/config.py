"""What the dynamic probe rebuilds: the `ProbeConfig` built from a finding's `data`.

This module never imports torch: the static path, the reporters and the CLI can build a
`ProbeConfig` without the `probe` extra installed. (What the probe reports is in
gradlint.probe.result, how it measures in gradlint.probe.options.)

`ProbeConfig.from_data(finding.data)` turns the resolved configuration a model/init rule puts
on its finding (GL201-GL302: `{"layer": "RNN", "hidden_size": 128, "num_layers": 4,
"nonlinearity": "relu", "seq_len": 200, "init": {...}, "unresolved": [...]}`) into the shape
of the module the probe rebuilds. Values the linter could not resolve (`null`, missing, or
named in `unresolved`) fall back to `DEFAULTS` and are listed in `defaults_applied`; sizes
above `CAPS` are lowered and listed in `caps_applied`, so a single probe stays small.

Defaults and caps: see gradlint.probe.defaults (the table and what each one means).

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

from gradlint.probe.defaults import CAPS, DEFAULTS, GATES, MIN_WINDOW
from gradlint.probe.names import (
    INIT_NAMES,
    KINDS,
    MLP_NONLINEARITIES,
    RECURRENT_KINDS,
    RNN_NONLINEARITIES,
    init_spec,
    normalise_init,
    normalise_kind,
    normalise_nonlinearity,
)

_RELU_LIKE = ("leaky_relu", "elu", "gelu", "selu", "silu", "celu", "softplus", "mish", "prelu", "rrelu")


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
    spec = init_spec(flat)
    if spec is not None:
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
    seq_len_origin: str | None = None
    """Where the code states T (`argparse default of --bptt (train.py:20)`); None when it does not
    (T is then the documented default and the probe also reports the length at which the
    gradient crosses the threshold)."""
    user_hidden_size: int | None = None
    """The code's hidden size before the cap (init steps keep their gain at the capped size)."""
    user_input_size: int | None = None
    init_unresolved: list[str] = field(default_factory=list)
    """The code's init steps the probe could not rebuild (reported in the probe's notes)."""
    tied: bool = False
    """MLP: one square layer applied `depth` times (the same weight), not `depth` layers."""
    depth_origin: str | None = None
    """MLP: where the depth comes from (`range(depth)` at model.py:12, `a ModuleList of 8`)."""

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

        extra = normalise_init(get("init"))
        program = raw.get("init_program")
        if isinstance(program, list) and program:
            covered = {spec.get("at") for spec in program if isinstance(spec, dict) and spec.get("at")}
            config.init = normalise_init(program) + [spec for spec in extra if spec.get("at") not in covered]
        else:
            config.init = extra
        config.init_unresolved = [str(item) for item in raw.get("init_unresolved") or ()]
        for spec in config.init:
            if spec["init"] not in INIT_NAMES:
                defaults.append(f"init={spec['init']!r} not supported: PyTorch default init used for it")
        if unresolved("init"):
            defaults.append("init=default (default: unresolved, PyTorch's own init used)")

        if config.recurrent:
            config.user_input_size = integer(("input_size",), DEFAULTS["input_size"], "input_size")
            config.input_size = cap("input_size", config.user_input_size)
            config.user_hidden_size = integer(("hidden_size",), DEFAULTS["hidden_size"], "hidden_size")
            config.hidden_size = cap("hidden_size", config.user_hidden_size)
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
            if get("seq_len", "bptt", "steps") is not None and config.seq_len == get("seq_len", "bptt", "steps"):
                origin = get("seq_len_origin")
                name = get("seq_len_name")
                config.seq_len_origin = (f"`{name}`: {origin}" if isinstance(name, str) and name not in ("input shape", "loop")
                                         and origin else str(origin) if origin else "the finding's data")
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
            config.user_hidden_size = config.user_input_size = width
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
            config.tied = get("tied") is True
            if get("depth", "num_layers") is not None:
                origin = get("depth_origin")
                config.depth_origin = str(origin) if origin else "the finding's data"
                config.seq_len_origin = config.depth_origin
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

