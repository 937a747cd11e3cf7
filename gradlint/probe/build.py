"""Rebuild, from a `ProbeConfig`, a module of the same shape with the init the code applies.

Never executes user code: the module is one of torch's own (`nn.RNN`, `nn.LSTM`, `nn.GRU`,
their cells, or a `Linear`/activation stack for MLPs), built in float64 under a fixed seed
inside `torch.random.fork_rng`, so the caller's random state is untouched and the same config
always gives the same weights (on every device: weights are made on the CPU, then moved).
All parameters come back with `requires_grad=False`; the measurement asks for what it needs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace

import torch
from torch import nn

from gradlint.probe.config import ProbeConfig
from gradlint.probe.defaults import GATES
from gradlint.probe.names import INIT_NAMES, MLP_KIND

DTYPE = torch.float64

_ACTIVATIONS = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "silu": nn.SiLU, "identity": nn.Identity,
}


def build_module(config: ProbeConfig, *, seed: int = 0, device: str | torch.device = "cpu",
                 cache: dict | None = None, log: list[str] | None = None) -> nn.Module:
    """The module the finding describes, float64, seeded, parameters frozen.

    Weights are drawn in float32 (torch's float64 `normal_` and QR are 2-10x slower on one
    thread) and then converted: the probe computes in float64 with float32-representable
    weights. `cache` (a dict shared by the modules of one probe) lets the LSTM/GRU comparison
    reuse the orthogonal matrices already drawn for the same gate block, saving QR factorisations.
    `log` receives one line per init step of the code's program (what was applied where, or why
    a step was skipped).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _construct(config)
        default_init(module, config, skip=overwritten(module, config))
        apply_init(module, config, cache=cache, log=log)
    module = module.to(device=device, dtype=DTYPE)
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    return module


def _construct(config: ProbeConfig) -> nn.Module:
    """torch's own module of that shape, parameters allocated but not initialised
    (a subclass whose `reset_parameters` does nothing: `default_init` and `apply_init` fill
    them; the meta-device route, `to_empty`, costs a 0.6 s sympy import on first use)."""
    kw = {"dtype": torch.float32}

    def skip(cls, *args, **kwargs):
        return _uninitialised(cls)(*args, **kwargs)

    k, i, h = config.kind, config.input_size, config.hidden_size
    if k == "RNN":
        return skip(nn.RNN, i, h, num_layers=config.num_layers, nonlinearity=config.nonlinearity,
                    bias=config.bias, batch_first=config.batch_first, **kw)
    if k in ("LSTM", "GRU"):
        return skip(getattr(nn, k), i, h, num_layers=config.num_layers, bias=config.bias,
                    batch_first=config.batch_first, **kw)
    if k == "RNNCell":
        return skip(nn.RNNCell, i, h, bias=config.bias, nonlinearity=config.nonlinearity, **kw)
    if k in ("LSTMCell", "GRUCell"):
        return skip(getattr(nn, k), i, h, bias=config.bias, **kw)
    if k == MLP_KIND and config.tied:
        # One square layer applied `depth` times: the same module (and weight) at every position.
        shared = skip(nn.Linear, config.width, config.width, bias=config.bias, **kw)
        layers = []
        for _ in range(config.probe_depth):
            layers += [shared, _ACTIVATIONS[config.nonlinearity]()]
        return nn.Sequential(*layers)
    if k == MLP_KIND:
        layers: list[nn.Module] = []
        width = config.width
        shapes = config.widths or [[config.input_size if i == 0 else width, width] for i in range(config.probe_depth)]
        for w_in, w_out in shapes:
            layers.append(skip(nn.Linear, w_in, w_out, bias=config.bias, **kw))
            layers.append(_ACTIVATIONS[config.nonlinearity]())
        return nn.Sequential(*layers)
    raise ValueError(f"unsupported layer kind {k!r}")


@functools.cache
def _uninitialised(cls: type) -> type:
    """`cls` without its default init (parameters stay as allocated by torch.empty)."""
    return type(cls.__name__, (cls,), {"reset_parameters": lambda self: None, "__module__": __name__})


def default_init(module: nn.Module, config: ProbeConfig, skip: set[str] = frozenset()) -> None:
    """PyTorch's default init, drawn only for the parameters the code does not overwrite:
    recurrent layers and cells U(-1/sqrt(hidden), 1/sqrt(hidden)) for every parameter;
    nn.Linear weight kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) and bias
    U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    with torch.no_grad():
        if config.kind == MLP_KIND:
            for index, layer in enumerate(module):
                if not isinstance(layer, nn.Linear):
                    continue
                bound = 1.0 / math.sqrt(layer.in_features)
                for name in ("weight", "bias"):
                    p = getattr(layer, name)
                    if p is not None and f"{index}.{name}" not in skip:
                        p.uniform_(-bound, bound)
            return
        bound = 1.0 / math.sqrt(config.hidden_size)
        for name, p in module.named_parameters():
            if name not in skip:
                p.uniform_(-bound, bound)


def overwritten(module: nn.Module, config: ProbeConfig) -> set[str]:
    """Parameters that some init spec overwrites entirely (their default draw is skipped)."""
    names: set[str] = set()
    own = dict(module.named_parameters())
    for spec in config.init:
        if "param" in spec:
            whole = spec.get("rows") is None and spec.get("block") is None and not spec.get("per_gate")
            if whole and spec["init"] in INIT_NAMES and spec["init"] not in ("default", "multiply") \
                    and spec["param"] in own:
                names.add(spec["param"])
            continue
        if spec["init"] not in INIT_NAMES or spec["init"] in ("default", "multiply"):
            pass
        else:
            default_target = "all" if config.kind == MLP_KIND else "recurrent"
            names.update(n for n, _ in _targets(module, config, str(spec.get("target") or default_target)))
        if config.bias and _bias_fill(spec.get("bias")) is not None:
            names.update(n for n, _ in module.named_parameters() if "bias" in n.rsplit(".", 1)[-1])
    return names


# --------------------------------------------------------------------------------------------
# Init
# --------------------------------------------------------------------------------------------

def _targets(module: nn.Module, config: ProbeConfig, target: str) -> list[tuple[str, torch.Tensor]]:
    weights = [(n, p) for n, p in module.named_parameters() if "weight" in n.rsplit(".", 1)[-1]]
    if config.kind == MLP_KIND:
        if target in ("all", "recurrent", "weight", "hidden"):
            return weights
        if target == "input":
            return weights[:1]
        return [(n, p) for n, p in weights if n.startswith(target)] or weights
    if target in ("recurrent", "hidden", "weight_hh"):
        return [(n, p) for n, p in weights if n.startswith("weight_hh")]
    if target in ("input", "weight_ih"):
        return [(n, p) for n, p in weights if n.startswith("weight_ih")]
    if target in ("all", "weight"):
        return weights
    exact = [(n, p) for n, p in weights if n.startswith(target)]
    if exact:
        return exact
    # A dotted display name (`self.rnn.weight_hh_l0`, `W`): match its last segment, else the
    # recurrent weights (what a square weight the init rules flag stands for).
    last = target.rsplit(".", 1)[-1]
    if last.startswith("weight_ih"):
        return [(n, p) for n, p in weights if n.startswith(last)] or _targets(module, config, "input")
    if last.startswith("weight_hh"):
        return [(n, p) for n, p in weights if n.startswith(last)] or _targets(module, config, "recurrent")
    return _targets(module, config, "recurrent")


def apply_init(module: nn.Module, config: ProbeConfig, cache: dict | None = None, log: list[str] | None = None) -> None:
    """Apply `config.init` (in order) to the module's weights and biases."""
    gates = GATES.get(config.kind, 1)
    h = config.hidden_size
    with torch.no_grad():
        for index, spec in enumerate(config.init):
            if "param" in spec:
                _apply_step(module, config, spec, index, cache, log)
                continue
            name = spec["init"]
            default_target = "all" if config.kind == MLP_KIND else "recurrent"
            target = str(spec.get("target") or default_target)
            if name in ("default", "multiply"):
                factor = spec.get("scale") if name == "default" else spec.get("factor")
                if factor is not None:  # `w.mul_(scale)` on the values so far
                    for _, weight in _targets(module, config, target):
                        weight.mul_(float(factor))
            elif name in INIT_NAMES:
                per_gate = bool(spec.get("per_gate", False)) and gates > 1
                for pname, weight in _targets(module, config, target):
                    blocks = weight.split(h, dim=0) if per_gate else (weight,)
                    for number, block in enumerate(blocks):
                        key = (index, pname, number, tuple(block.shape))
                        _init_tensor(block, spec, cache, key)
            _init_bias(module, config, spec)


def _describe(spec: dict) -> str:
    where = f" at {spec['at']}" if spec.get("at") else ""
    text = f"`{spec['code']}`" if spec.get("code") else spec["init"]
    return f"{text}{where}"


def _user_fan_in(config: ProbeConfig, param: str) -> tuple[int, int] | None:
    """(the user's fan-in, the rebuilt one) of a recurrent parameter, when a cap changed it."""
    if param.startswith("weight_hh"):
        return config.user_hidden_size, config.hidden_size
    if param.startswith("weight_ih"):
        if param.startswith("weight_ih_l0") or param == "weight_ih":
            return config.user_input_size, config.input_size
        return config.user_hidden_size, config.hidden_size
    return None


def _apply_step(module: nn.Module, config: ProbeConfig, spec: dict, index: int, cache: dict | None,
                log: list[str] | None) -> None:
    """One step of the code's init program on one parameter (by torch's name), its rows or one of
    its gate blocks; the step's numbers are the code's (a capped size keeps the gain: the scale of
    normal/uniform draws is multiplied by sqrt(user fan-in / rebuilt fan-in))."""
    params = dict(module.named_parameters())
    name = spec["param"]
    note = log.append if log is not None else (lambda _text: None)
    if name not in params:
        note(f"init skipped: {_describe(spec)} sets {name}, which the probe does not rebuild (one direction, "
             f"{config.num_layers} layer(s))")
        return
    weight = params[name]
    h, user_h = config.hidden_size, config.user_hidden_size or config.hidden_size
    rows = spec.get("rows")
    block = spec.get("block")
    target = weight
    shown = name
    if rows is not None:
        start, stop = int(rows[0]), int(rows[1])
        unit = spec.get("row_unit") or user_h
        if unit and unit != h:
            if start % unit or stop % unit:
                note(f"init skipped: {_describe(spec)} sets rows {start}:{stop} of {name}, which do not map to the "
                     f"capped hidden size {h}")
                return
            start, stop = start // unit * h, stop // unit * h
        target = weight[start:stop]
        shown = f"{name}[{start}:{stop}]"
    elif block is not None:
        part, count = int(block[0]), int(block[1])
        size = weight.shape[0] // count if count else 0
        if not size or weight.shape[0] % count:
            note(f"init skipped: {_describe(spec)}: {name} does not split into {count} blocks")
            return
        target = weight[part * size:(part + 1) * size]
        shown = f"{name}[{part * size}:{(part + 1) * size}]"
    kind = spec["init"]
    spec = dict(spec)
    sizes = _user_fan_in(config, name) if target.dim() == 2 else None
    if sizes is not None and sizes[0] and sizes[1] and sizes[0] != sizes[1]:
        ratio = sizes[0] / sizes[1]
        if kind in ("normal_", "trunc_normal_") and spec.get("std") is not None:
            spec["std"] = float(spec["std"]) * math.sqrt(ratio)
        elif kind == "uniform_" and spec.get("a") is not None and spec.get("b") is not None:
            spec["a"], spec["b"] = float(spec["a"]) * math.sqrt(ratio), float(spec["b"]) * math.sqrt(ratio)
        elif kind == "constant_" and spec.get("val") is not None:
            spec["val"] = float(spec["val"]) * ratio
        if kind in ("normal_", "trunc_normal_", "uniform_", "constant_"):
            shown += f" (scale x{math.sqrt(ratio) if kind != 'constant_' else ratio:.3g} for the capped size)"
    try:
        if kind == "multiply":
            target.mul_(float(spec.get("factor", 1.0)))
        elif kind == "default":
            bound = 1.0 / math.sqrt(h)
            target.uniform_(-bound, bound)
        elif kind in INIT_NAMES:
            blocks = target.split(h, dim=0) if spec.get("per_gate") and target.shape[0] > h else (target,)
            for number, part in enumerate(blocks):
                _init_tensor(part, spec, cache, (index, name, number, tuple(part.shape)))
        else:
            note(f"init skipped: {_describe(spec)}: {kind} is not rebuilt (PyTorch's default kept)")
            return
    except (ValueError, RuntimeError) as error:
        note(f"init skipped: {_describe(spec)} on {shown}: {error}")
        return
    note(f"init applied: {_describe(spec)} -> {shown}")


def _fan_in(w: torch.Tensor) -> int:
    return int(w.shape[1]) if w.dim() >= 2 else int(w.shape[0])


def _own_gain(spec: dict, *keys: str) -> float | None:
    """The init's own gain parameter, else the spec's expected `gain` divided by its `scale`."""
    for key in keys:
        if spec.get(key) is not None:
            return float(spec[key])
    if spec.get("gain") is not None:
        return float(spec["gain"]) / float(spec.get("scale") or 1.0)
    return None


def _init_tensor(w: torch.Tensor, spec: dict, cache: dict | None = None, key: tuple = ()) -> None:
    name = spec["init"]
    n = spec.get("n") or _fan_in(w)
    if name in ("normal_", "trunc_normal_"):
        std = spec.get("std")
        if std is None:
            gain = _own_gain(spec)
            std = gain / math.sqrt(n) if gain is not None else 1.0
        mean = float(spec.get("mean", 0.0))
        if name == "normal_":
            nn.init.normal_(w, mean=mean, std=float(std))
        else:
            nn.init.trunc_normal_(w, mean=mean, std=float(std), a=float(spec.get("a", -2.0)), b=float(spec.get("b", 2.0)))
    elif name == "uniform_":
        gain = _own_gain(spec)
        if spec.get("a") is not None or spec.get("b") is not None:
            a, b = float(spec.get("a", 0.0)), float(spec.get("b", 1.0))
        elif spec.get("bound") is not None:
            a, b = -float(spec["bound"]), float(spec["bound"])
        elif spec.get("std") is not None:
            bound = float(spec["std"]) * math.sqrt(3.0)
            a, b = -bound, bound
        elif gain is not None:
            bound = gain * math.sqrt(3.0 / n)
            a, b = -bound, bound
        else:
            a, b = 0.0, 1.0
        nn.init.uniform_(w, a, b)
    elif name == "orthogonal_":
        gain = _own_gain(spec, "orthogonal_gain", "gain_argument")
        if cache is not None and ("orthogonal",) + key in cache:
            w.copy_(cache[("orthogonal",) + key])
        else:
            nn.init.orthogonal_(w)
            if cache is not None:
                cache[("orthogonal",) + key] = w.detach().clone()
        w.mul_(1.0 if gain is None else gain)
    elif name == "eye_":
        gain = _own_gain(spec, "eye_scale")
        nn.init.eye_(w)
        w.mul_(1.0 if gain is None else gain)
    elif name in ("xavier_uniform_", "xavier_normal_"):
        gain = _own_gain(spec, "gain_argument")
        getattr(nn.init, name)(w, gain=1.0 if gain is None else gain)
    elif name in ("kaiming_uniform_", "kaiming_normal_"):
        fn = getattr(nn.init, name)
        fn(w, a=float(spec.get("a", 0.0)), mode=str(spec.get("mode", "fan_in")),
           nonlinearity=str(spec.get("nonlinearity", "leaky_relu")))
    elif name == "constant_":
        nn.init.constant_(w, float(spec.get("val", spec.get("value", 0.0))))
    elif name == "zeros_":
        nn.init.zeros_(w)
    elif name == "ones_":
        nn.init.ones_(w)
    else:  # unsupported: keep PyTorch's default (reported in defaults_applied)
        return
    if spec.get("scale") is not None:
        w.mul_(float(spec["scale"]))


def _bias_fill(value) -> float | None:
    """The constant a spec's `bias` sets every bias to, or None (keep the default)."""
    if isinstance(value, str) and value.lower() in ("zeros", "zero", "zeros_", "0"):
        return 0.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _init_bias(module: nn.Module, config: ProbeConfig, spec: dict) -> None:
    if not config.bias:
        return
    biases = [(n, p) for n, p in module.named_parameters() if "bias" in n.rsplit(".", 1)[-1]]
    fill = _bias_fill(spec.get("bias"))
    if fill is not None:
        for _, p in biases:
            p.fill_(fill)
    forget = spec.get("forget_bias")
    if forget is not None and config.kind in ("LSTM", "LSTMCell"):
        h = config.hidden_size
        for n, p in biases:
            p[h:2 * h] = float(forget) if "bias_ih" in n else 0.0


# --------------------------------------------------------------------------------------------
# Derived modules
# --------------------------------------------------------------------------------------------

def comparison_config(config: ProbeConfig, kind: str) -> ProbeConfig:
    """One layer of `kind` (`LSTM` / `GRU`) with the probed module's input size, hidden size,
    bias and init: every weight init is applied to each gate block of the corresponding weight
    (`forget_bias` is dropped for GRU). One layer: the comparison is "the same layer as an
    LSTM/GRU" (its per-step factor); the probed stack's own layers are in `per_layer`."""
    init = []
    for spec in config.init:
        mapped = dict(spec, per_gate=True)
        if isinstance(mapped.get("target"), str) and "weight_hh_l" in mapped["target"]:
            mapped["target"] = "recurrent"
        elif isinstance(mapped.get("target"), str) and "weight_ih_l" in mapped["target"]:
            mapped["target"] = "input"
        if kind != "LSTM":
            mapped.pop("forget_bias", None)
        init.append(mapped)
    return replace(config, kind=kind, num_layers=1, nonlinearity="tanh", init=init, defaults_applied=[],
                   caps_applied=[])


def split_layers(module: nn.Module) -> list[nn.Module]:
    """A stacked `nn.RNN/LSTM/GRU` as one single-layer module per layer (copied weights), so
    each layer's recurrence can be measured on its own input. Cells and one-layer modules come
    back as `[module]`."""
    layers = getattr(module, "num_layers", 1)
    if not isinstance(module, nn.RNNBase) or layers == 1:
        return [module]
    weight = next(module.parameters())
    out: list[nn.Module] = []
    for index in range(layers):
        kwargs = {"input_size": module.input_size if index == 0 else module.hidden_size,
                  "hidden_size": module.hidden_size, "num_layers": 1, "bias": module.bias,
                  "batch_first": module.batch_first, "dtype": weight.dtype, "device": weight.device}
        if isinstance(module, nn.RNN):
            kwargs["nonlinearity"] = module.nonlinearity
        single = type(module)(**kwargs)
        with torch.no_grad():
            for name, p in single.named_parameters():
                p.copy_(getattr(module, name.replace("_l0", f"_l{index}")))
                p.requires_grad_(False)
        single.eval()
        out.append(single)
    return out
