"""The measurement: how fast the gradient grows (or shrinks) per time step, and the verdict.

Definitions (the theory tests in tests/test_probe_theory.py hold the probe to them)

Recurrent modules (nn.RNN / nn.LSTM / nn.GRU, their cells)
    Run the rebuilt module (float64, fixed seeds, zero initial state, one sequence per regime)
    over `window` steps of synthetic input x_0..x_{W-1} (window = min(seq_len, 200), shortened
    by the work cap of `gradlint.probe.defaults`, never below 50). The loss is a fixed random
    unit projection of the last output, L = <r, h_{W-1}>. Backward gives g_t = dL/dx_t for
    every step (the input sequence requires grad; parameters do not). Norms are taken in log
    space (ln max|g| + ln ||g / max|g|||) so that nothing under- or overflows before float64
    itself does. The per-step factor k is exp(slope) of the least-squares line through
    (s, ln ||g_t||), s = W-1-t the distance back from the loss, over the steps whose norm is
    finite and > 0, leaving out the `skip_last` = 2 steps nearest the loss when W >= 10 (the
    first backward steps carry the projection's transient: r is not yet aligned with the
    dominant modes). A least-squares slope, not the first/last ratio: the ratio is off by up to
    2x for saturating or power-law (||W^s v|| ~ sqrt(s) rho^s) cases. The growth over the
    user's sequence length T is G = k ** (T - 1) (inf when it overflows a float), so a capped
    window speaks for T.

Verdict
    `explodes` if G >= explode_threshold (10) or any inf/nan appears in the forward outputs or
    the input gradient; `vanishes` if G <= vanish_threshold (0.1); `stable` otherwise.

Regimes (both are probed, as two samples of one batch; the headline is the worst: explodes >
stable > vanishes, ties broken by the larger k, and `regime` names the one that gave it)
    small-signal: inputs of scale 1e-100 (float64) from a zero state, i.e. the linearisation
        around the zero-input trajectory of the module as built. With zero (or no) bias that
        trajectory is the origin and the state stays linear over any window: a gain-1.5 tanh
        recurrence reads 1.500 over 200 steps (1e-4 inputs saturate it after ~20 steps and read
        1.12; 1e-8 after ~45). For relu with zero bias the network is positively homogeneous,
        so any scale gives the same Jacobians. With nonzero biases the 1e-100 perturbation is
        below float64 resolution of the bias-driven state, so the gradient is the exact
        Jacobian product along that state (`linear` is True by construction); `state_max`
        reports its size and a note flags it above 0.5. Consequence: a recurrence whose gain
        exceeds 1 and whose biases are nonzero is linearised around a saturated, bias-driven
        state, not the origin (tanh with std 2/sqrt(n): 1.18 with PyTorch's default biases,
        2.1 with zero biases). `linear` without biases: max |h| <= 1e-3 over the window (the
        Jacobians within 1e-6 of the origin's); 1e-8 inputs fail it past ~30 steps at gain 1.5.
    unit-scale: unit-variance Gaussian inputs (times the config's `input_scale`) from a zero
        state; saturating units (tanh, gates) show their real, smaller factors here.

Stacks
    Multi-layer nn.RNN/LSTM/GRU run as a chain of single-layer copies (the same weights), each
    on the detached output sequence of the layer below, in one forward pass. The headline k is
    the whole stack's: the backward is chained through every layer down to the network input.
    `per_layer` is each layer's own recurrence: a second backward through the same graph from
    that layer's own last output (its own projection) to its own input sequence. Upper
    layers see the lower layers' outputs (hidden_size wide, saturated or not), so their
    factors differ from the first's.
    MLP (Linear + activation per layer, depth D, GL204's widths when given): g_l = dL/da_l for
    the input a_l of every Linear layer, loss a fixed projection of the output, 4 samples per
    regime (log-norms averaged); k is exp of the least-squares slope of ln ||g_l|| over
    s = D-1-l (nothing skipped): the per-layer factor; G = k ** (depth - 1) with the user's
    (uncapped) depth. MLP `per_layer` entries are {"layer", "log10_norm", "factor"} (factor:
    the local ratio to the next layer's norm).

Comparison (`compare`)
    lstm / gru: the same measurement (both regimes, worst) for one layer of nn.LSTM / nn.GRU
        with the same input size, hidden size, bias and init ("the same layer as an LSTM"), the
        inits applied to each gate block, over min(window, 50) steps (a per-step factor needs
        no more; G still uses T). One layer whatever the probed depth: the comparison is about
        the cell, and its cost stays bounded; the probed stack's layers are in `per_layer`.
        When the probed module is itself an LSTM or GRU its own result is reused
        (`same_as_probed`). Note: at the origin with zero biases an LSTM and a GRU linearise to
        the same map, 0.5 I + 0.25 W (W the candidate/cell block), so their small-signal
        factors coincide when that block is the same matrix (the orthogonal draws are shared
        between the compared modules).
    rnn_clipped: clipping (clip_grad_norm_(max_norm)) rescales the whole gradient after the
        backward pass. It bounds the update, not the per-step factor: the entry repeats k, G
        and the verdict of the probed module (`k_unchanged`: true) with `max_norm` (the
        finding's, else 1.0) and a note. With `ProbeOptions(clip_update=True)` it also reports,
        for one unit-scale sequence and the probe's projection loss, the parameter-gradient
        norm before (`update_norm`) and after (`clipped_update_norm`) clipping, and
        `clip_coefficient` = min(1, max_norm / update_norm) (an extra backward with weight
        gradients; off by default).

Environment
    One torch thread (set and restored), `torch.set_flush_denormal(True)` during the probe
    (restored to False afterwards: torch has no getter), float64 (weights drawn in float32 and
    converted), fixed seeds through `fork_rng` and local generators (the caller's RNG state is
    untouched), grad mode enabled locally. The first probe in a process costs ~0.1 s extra
    (kernel warm-up); torch itself is imported once, by the first import of this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from gradlint.probe.build import build_module, comparison_config, split_layers
from gradlint.probe.config import ProbeConfig
from gradlint.probe.growth import (
    LN10,
    VERDICT_RANK,
    fit_growth,
    fit_window,
    log10_norms,
    steps_to_threshold,
    total_growth,
    verdict_for,
)
from gradlint.probe.names import MLP_KIND
from gradlint.probe.options import ProbeOptions
from gradlint.probe.result import ProbeResult, RegimeResult

__all__ = [
    "SMALL_SIGNAL",
    "UNIT_SCALE",
    "ProbeResult",
    "RegimeResult",
    "fit_growth",
    "measure_module",
    "probe",
    "probe_environment",
    "probe_module",
    "probe_finding",
    "verdict_for",
]

SMALL_SIGNAL = "small-signal"
UNIT_SCALE = "unit-scale"
DTYPE = torch.float64
LINEAR_TOLERANCE = 1e-3
"""Small-signal without biases: max |h| for the trajectory to count as linear (tanh'(h) = 1 - h^2
stays within 1e-6 of 1)."""
FAR_FROM_ORIGIN = 0.5
"""Small-signal: operating points with max |h| above this get a note (bias-driven state)."""


# --------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------

@contextmanager
def probe_environment() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    try:
        with torch.enable_grad():
            yield
    finally:
        torch.set_flush_denormal(False)
        torch.set_num_threads(threads)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _projection(size: int, seed: int, device: torch.device) -> torch.Tensor:
    r = torch.randn(size, generator=_generator(seed), dtype=DTYPE)
    return (r / r.norm()).to(device)


def _forward(module: nn.Module, kind: str, x: torch.Tensor, batch_first: bool) -> torch.Tensor:
    """Outputs h_t of the last layer, time-major (T, B, H), from a zero initial state."""
    if kind in ("RNN", "LSTM", "GRU"):
        out = module(x.transpose(0, 1) if batch_first else x)[0]
        return out.transpose(0, 1) if batch_first else out
    outs = []
    state = None
    for t in range(x.shape[0]):
        state = module(x[t], state)
        outs.append(state[0] if kind == "LSTMCell" else state)
    return torch.stack(outs)


def _scaled_log_norm(grad: torch.Tensor) -> torch.Tensor:
    """ln ||g|| over the last dim, computed as ln max|g| + ln ||g / max|g||| so that entries far
    below 1e-154 (whose squares underflow) or above 1e154 (whose squares overflow) still give
    their true norm; -inf for an exact zero vector, inf/nan for non-finite entries."""
    peak = grad.abs().amax(dim=-1, keepdim=True)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    scaled = torch.where(torch.isfinite(safe), grad / safe, grad)
    return peak.squeeze(-1).log() + torch.linalg.vector_norm(scaled, dim=-1).log()


def _log_norms(grad: torch.Tensor) -> list[float]:
    """Natural-log norms per position (dim 0), averaged over the batch (dim 1) in log space."""
    logs = _scaled_log_norm(grad).mean(dim=1)
    return [float(v) for v in logs.cpu()]


def _has_bias(module: nn.Module) -> bool:
    return any(bool((p != 0).any()) for n, p in module.named_parameters() if "bias" in n.rsplit(".", 1)[-1])


def _fit_regime(log_norms: list[float], nonfinite: bool, steps: int, options: ProbeOptions, notes: list[str]) -> tuple[float, int]:
    window = len(log_norms)
    k, points = fit_window(log_norms, options)
    zeros = sum(1 for v in log_norms if v == float("-inf"))
    if zeros:
        notes.append(f"the gradient is exactly 0 at {zeros} of {window} positions (underflow or dead units): fit over the rest")
    if math.isnan(k):  # fewer than 2 usable points
        if window < 2:
            notes.append("a single step: no recurrence to measure (k = 1)")
            k = 1.0
        elif zeros:
            k = 0.0
        elif nonfinite:
            k = float("inf")
    return k, points


# --------------------------------------------------------------------------------------------
# Recurrent measurement
# --------------------------------------------------------------------------------------------

REGIME_ORDER = (SMALL_SIGNAL, UNIT_SCALE)


def _check_regimes(regimes: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [r for r in regimes if r not in REGIME_ORDER]
    if unknown or not regimes:
        raise ValueError(f"unknown regimes {unknown!r} (expected some of {REGIME_ORDER})")
    return tuple(regimes)


def _inputs(regimes: tuple[str, ...], rows: int, batch: int, size: int, scale: float,
            options: ProbeOptions, device: torch.device, batch_dim: int = 1) -> torch.Tensor:
    """Synthetic inputs, one block of `batch` samples per regime along `batch_dim`. Each
    regime's noise has its own seed, so a regime's numbers do not depend on which others run."""
    blocks = []
    for regime in regimes:
        gen = _generator(options.seed + 1 + REGIME_ORDER.index(regime))
        shape = (rows, batch, size) if batch_dim == 1 else (batch, size)
        z = torch.randn(*shape, generator=gen, dtype=DTYPE)
        blocks.append(z * (options.small_signal_scale if regime == SMALL_SIGNAL else scale))
    return torch.cat(blocks, dim=batch_dim).to(device)


def measure_recurrent(
    module: nn.Module,
    kind: str,
    *,
    regimes: tuple[str, ...],
    window: int,
    steps: int,
    options: ProbeOptions,
    batch_first: bool = False,
    input_scale: float = 1.0,
    per_layer: bool = False,
) -> list[RegimeResult]:
    """Every regime of one recurrent module in one forward pass: the regimes are the samples of
    one batch (samples do not interact in a recurrent layer).

    A stack measured per layer runs as a chain of single-layer copies, each on the detached
    output of the one below; the backward then goes twice through the shared forward graph:
    once chained through every layer (the whole stack: gradient w.r.t. the network input) and
    once per layer from that layer's own last output (its own recurrence)."""
    regimes = _check_regimes(regimes)
    device = next(module.parameters()).device
    layers = split_layers(module) if per_layer else [module]
    x = _inputs(regimes, window, 1, module.input_size, input_scale, options, device)
    inputs: list[torch.Tensor] = []
    outputs: list[torch.Tensor] = []
    current = x
    for layer in layers:
        xi = current.detach().requires_grad_(True)
        current = _forward(layer, kind, xi, batch_first)
        inputs.append(xi)
        outputs.append(current)
    many = len(layers) > 1

    def last_step_loss(index: int, seed: int) -> torch.Tensor:
        return (outputs[index][-1] @ _projection(outputs[index].shape[-1], seed, device)).sum()

    def vjp(index: int, grad: torch.Tensor) -> torch.Tensor:
        # <out, g> as a scalar: passing g as grad_outputs costs a one-off sympy import in torch
        return torch.autograd.grad((outputs[index] * grad).sum(), inputs[index], retain_graph=True)[0]

    # The whole stack: L = <r, h_last> of the top layer, chained down to the network input.
    g = torch.autograd.grad(last_step_loss(len(layers) - 1, options.seed + 2), inputs[-1], retain_graph=many)[0]
    own = {len(layers) - 1: g}
    for index in range(len(layers) - 2, -1, -1):
        g = vjp(index, g.detach())
    gx = g
    # Each lower layer on its own: loss on its own last output.
    for index in range(len(layers) - 1):
        own[index] = torch.autograd.grad(last_step_loss(index, options.seed + 10 + index), inputs[index],
                                         retain_graph=True)[0]
    out = outputs[-1].detach()
    biased = _has_bias(module)
    results = []
    for j, regime in enumerate(regimes):
        result = _regime_result(regime, out[:, j], gx[:, j : j + 1], window, steps, input_scale, options)
        if regime == SMALL_SIGNAL:
            _small_signal_checks(result, float(out[:, j].abs().max()), biased)
        if per_layer:
            if not many:
                result.per_layer = [_layer_entry(0, module.input_size, result)]
            else:
                for index, layer in enumerate(layers):
                    r = _regime_result(regime, outputs[index].detach()[:, j], own[index][:, j : j + 1], window, steps,
                                       input_scale, options)
                    result.per_layer.append(_layer_entry(index, layer.input_size, r))
        results.append(result)
    return results


def _regime_result(regime: str, out: torch.Tensor, grad: torch.Tensor, window: int, steps: int,
                   input_scale: float, options: ProbeOptions) -> RegimeResult:
    nonfinite = not (bool(torch.isfinite(out).all()) and bool(torch.isfinite(grad).all()))
    notes: list[str] = []
    log_norms = _log_norms(grad)
    k, points = _fit_regime(log_norms, nonfinite, steps, options, notes)
    G = total_growth(k, steps)
    if nonfinite:
        notes.append("inf/nan in the forward outputs or the input gradient")
    return RegimeResult(
        regime=regime, verdict=verdict_for(G, nonfinite, options), growth_per_step=k, total_growth=G,
        steps=steps, window=window,
        input_scale=options.small_signal_scale if regime == SMALL_SIGNAL else input_scale,
        norms=log10_norms(log_norms), nonfinite=nonfinite, fit_points=points, notes=notes,
    )


def _small_signal_checks(result: RegimeResult, out_max: float, biased: bool) -> None:
    """Without biases the operating point is the origin and |h| itself is the deviation from it.
    With biases the 1e-100 perturbation is below float64 resolution of the bias-driven state, so
    the trajectory *is* the operating point and the gradient is the exact Jacobian product
    along it (linear by construction); its size is reported."""
    if biased:
        result.state_max = out_max
        result.linear = not math.isnan(out_max)
        if out_max > FAR_FROM_ORIGIN:
            result.notes.append(f"the biases drive the zero-input state to max |h| = {out_max:.2g}: "
                                "the small-signal regime linearises around that state, not the origin")
    else:
        result.state_max = 0.0
        result.linear = not math.isnan(out_max) and out_max <= LINEAR_TOLERANCE
        if not result.linear:
            result.notes.append(f"the small-signal state reached max |h| = {out_max:.2g}: it left the linear "
                                "range within the window")


def _layer_entry(index: int, input_size: int, r: RegimeResult) -> dict:
    return {"layer": index, "input_size": input_size, "growth_per_step": r.growth_per_step,
            "total_growth": r.total_growth, "verdict": r.verdict, "nonfinite": r.nonfinite}


def clipped_update_norm(module: nn.Module, kind: str, config: ProbeConfig, options: ProbeOptions) -> float:
    """Norm of the parameter gradient of the probe's loss for one unit-scale sequence (what
    clip_grad_norm_ would compare with max_norm)."""
    device = next(module.parameters()).device
    x = _inputs((UNIT_SCALE,), config.window, 1, module.input_size, config.input_scale, options, device)
    params = list(module.parameters())
    for p in params:
        p.requires_grad_(True)
    try:
        out = _forward(module, kind, x, config.batch_first)
        loss = (out[-1] @ _projection(module.hidden_size, options.seed + 2, device)).sum()
        grads = torch.autograd.grad(loss, params)
    finally:
        for p in params:
            p.requires_grad_(False)
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads)))


# --------------------------------------------------------------------------------------------
# MLP measurement
# --------------------------------------------------------------------------------------------

def measure_mlp(module: nn.Sequential, *, regimes: tuple[str, ...], steps: int, options: ProbeOptions,
                input_scale: float = 1.0) -> list[RegimeResult]:
    regimes = _check_regimes(regimes)
    device = next(module.parameters()).device
    linears = [m for m in module if isinstance(m, nn.Linear)]
    batch = options.mlp_batch
    x = _inputs(regimes, 0, batch, linears[0].in_features, input_scale, options, device, batch_dim=0)
    x = x.requires_grad_(True)
    acts = [x]
    h = x
    children = list(module)
    for index in range(0, len(children), 2):
        h = children[index + 1](children[index](h))
        if index + 2 < len(children):
            acts.append(h)
    loss = (h @ _projection(h.shape[-1], options.seed + 2, device)).sum()
    grads = torch.autograd.grad(loss, acts)
    h = h.detach()
    # (depth, regimes * batch) natural-log norms
    logs = torch.stack([_scaled_log_norm(g) for g in grads]).cpu()
    results = []
    for j, regime in enumerate(regimes):
        rows = slice(j * batch, (j + 1) * batch)
        nonfinite = not (bool(torch.isfinite(h[rows]).all()) and all(bool(torch.isfinite(g[rows]).all()) for g in grads))
        log_norms = [float(v) for v in logs[:, rows].mean(dim=1)]
        notes: list[str] = []
        depth = len(log_norms)
        k, points = fit_growth(log_norms, 0)
        if depth == 1 and math.isfinite(log_norms[0]):
            # One layer: its factor is ||dL/dx|| against the unit-norm projection of the loss.
            k, points = math.exp(log_norms[0]), 1
        elif math.isnan(k):
            k = 1.0 if depth < 2 else (0.0 if any(v == float("-inf") for v in log_norms) else float("inf"))
        G = total_growth(k, steps)
        if nonfinite:
            notes.append("inf/nan in the forward outputs or the gradients")
        result = RegimeResult(
            regime=regime, verdict=verdict_for(G, nonfinite, options), growth_per_step=k, total_growth=G,
            steps=steps, window=depth,
            input_scale=options.small_signal_scale if regime == SMALL_SIGNAL else input_scale,
            norms=log10_norms(log_norms), nonfinite=nonfinite, fit_points=points, notes=notes,
        )
        for index, v in enumerate(log_norms):
            nxt = log_norms[index + 1] if index + 1 < depth else None
            factor = math.exp(v - nxt) if nxt is not None and math.isfinite(v) and math.isfinite(nxt) else None
            result.per_layer.append({"layer": index, "log10_norm": v / LN10, "factor": factor})
        results.append(result)
    return results


# --------------------------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------------------------

def _worst(results: list[RegimeResult]) -> RegimeResult:
    return max(results, key=lambda r: (VERDICT_RANK[r.verdict], math.inf if math.isnan(r.growth_per_step) else r.growth_per_step))


def _device(options: ProbeOptions) -> torch.device:
    if options.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(options.device)


def measure_module(module: nn.Module, config: ProbeConfig, options: ProbeOptions, *, window: int | None = None,
                   per_layer: bool = False) -> list[RegimeResult]:
    """Every regime of `options.regimes` for an already built module."""
    if config.kind == MLP_KIND:
        return measure_mlp(module, regimes=tuple(options.regimes), steps=config.steps, options=options,
                           input_scale=config.input_scale)
    return measure_recurrent(module, config.kind, regimes=tuple(options.regimes), window=window or config.window,
                             steps=config.steps, options=options, batch_first=config.batch_first,
                             input_scale=config.input_scale, per_layer=per_layer)


def compare_window(config: ProbeConfig, options: ProbeOptions) -> int:
    """min(window, compare_window = 50)."""
    return max(1, min(config.window, options.compare_window))


def _summary(worst: RegimeResult, results: list[RegimeResult], window: int) -> dict:
    return {
        "growth_per_step": worst.growth_per_step, "total_growth": worst.total_growth, "verdict": worst.verdict,
        "regime": worst.regime, "window": window, "num_layers": 1,
        "regimes": {r.regime: {"growth_per_step": r.growth_per_step, "verdict": r.verdict} for r in results},
    }


def probe(config: ProbeConfig | dict, options: ProbeOptions | None = None) -> ProbeResult:
    """Rebuild the module `config` describes and measure it (see the module docstring)."""
    options = options or ProbeOptions()
    if not isinstance(config, ProbeConfig):
        config = ProbeConfig.from_data(config)
    return _probe(config, options, None)


def probe_module(module: nn.Module, config: ProbeConfig, options: ProbeOptions | None = None,
                 notes: list[str] | None = None) -> ProbeResult:
    """Measure an existing module (the code's own, `--probe-import`) as `probe` measures a
    rebuilt one: a float64 copy, parameters frozen, its shape in `config`."""
    options = options or ProbeOptions()
    import copy

    with probe_environment():
        own = copy.deepcopy(module).to(device=_device(options), dtype=DTYPE)
        for p in own.parameters():
            p.requires_grad_(False)
        own.eval()
    return _probe(config, options, own, notes)


def _probe(config: ProbeConfig, options: ProbeOptions, given: nn.Module | None, extra: list[str] | None = None) -> ProbeResult:
    device = _device(options)
    start = time.perf_counter()
    with probe_environment():
        cache: dict = {}
        notes: list[str] = list(extra or ())
        if given is None:
            module = build_module(config, seed=options.seed, device=device, cache=cache, log=notes)
            notes.extend(f"init not rebuilt: {item}" for item in config.init_unresolved)
        else:
            module = given
        unit = "layers" if config.kind == MLP_KIND else "steps"
        if config.seq_len_origin is not None:
            notes.insert(0, f"{'depth' if unit == 'layers' else 'T'} = {config.steps} {unit}, from {config.seq_len_origin}")
        results = measure_module(module, config, options, per_layer=options.per_layer)
        worst = _worst(results)
        compare: dict[str, dict] = {}
        if options.compare and config.recurrent:
            for key, kind in (("lstm", "LSTM"), ("gru", "GRU")):
                if config.kind.startswith(kind):
                    compare[key] = dict(_summary(worst, results, config.window), same_as_probed=True,
                                        num_layers=config.num_layers)
                    continue
                cc = comparison_config(config, kind)
                cm = build_module(cc, seed=options.seed, device=device, cache=cache)
                cwindow = compare_window(config, options)
                cresults = measure_module(cm, cc, options, window=cwindow)
                compare[key] = _summary(_worst(cresults), cresults, cwindow)
            clipped = {
                "module": config.kind, "growth_per_step": worst.growth_per_step, "total_growth": worst.total_growth,
                "verdict": worst.verdict, "regime": worst.regime, "max_norm": config.clip_max_norm,
                "k_unchanged": True,
                "note": "clip_grad_norm_ rescales the whole gradient after backward: it caps the update at "
                        "max_norm but leaves the per-step factor k, G and the share of each time step in the "
                        "update unchanged",
            }
            if options.clip_update:
                norm = clipped_update_norm(module, config.kind, config, options)
                clipped.update(update_norm=norm, clipped_update_norm=min(norm, config.clip_max_norm),
                               clip_coefficient=min(1.0, config.clip_max_norm / norm) if norm > 0 else 1.0)
            compare["rnn_clipped"] = clipped
            lstm = compare.get("lstm")
            if lstm and lstm["verdict"] == "explodes" and not lstm.get("same_as_probed"):
                notes.append("an LSTM of the same size and init explodes too: switching cells is not a cure here")
        if config.kind in ("LSTM", "GRU", "LSTMCell", "GRUCell") and worst.verdict == "explodes":
            notes.append(f"this gated cell explodes ({worst.regime}: k = {worst.growth_per_step:.3g}): gating does "
                         "not save a recurrence whose gain is this large")
        if not config.recurrent:
            notes.append("MLP: k is the per-layer factor of the gradient norm; steps is the depth")
    seconds = time.perf_counter() - start
    crossing = steps_to_threshold(worst.growth_per_step, options)
    if config.seq_len_origin is None:
        what = "the depth" if config.kind == MLP_KIND else "the sequence length"
        per = "layer" if config.kind == MLP_KIND else "step"
        unit = "layers" if config.kind == MLP_KIND else "steps"
        reading = (f"; the gradient {'grows 10x' if worst.growth_per_step > 1 else 'shrinks 10x'} within "
                   f"{crossing} {unit} (T* = 1 + ln(threshold) / ln(k) at k = {worst.growth_per_step:.3g}/{per})"
                   if crossing is not None else "")
        notes.insert(0, f"the code does not state {what}: the verdict reads G at the default {config.steps}{reading}")
    return ProbeResult(
        verdict=worst.verdict, growth_per_step=worst.growth_per_step, total_growth=worst.total_growth,
        steps=config.steps, regime=worst.regime, regimes=results, per_layer=worst.per_layer, compare=compare,
        norms=worst.norms, defaults_applied=list(config.defaults_applied), caps_applied=list(config.caps_applied),
        seconds=seconds, kind=config.kind, window=config.window, config=config.to_dict(), notes=notes,
        steps_origin=config.seq_len_origin, steps_to_threshold=crossing,
    )


def probe_finding(data: dict | None, options: ProbeOptions | None = None, **overrides) -> ProbeResult:
    """Probe the module a finding's `data` describes (`overrides` win over `data`)."""
    return probe(ProbeConfig.from_data(data, **overrides), options)
