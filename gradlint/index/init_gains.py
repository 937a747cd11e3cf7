"""The expected gain of a recurrent weight after the code's init program (gradlint.index.init_program).

GL301 reports inits that leave a recurrent or square weight with an expected gain above 1. Its
own chain reading covers operations it can name (`nn.init.normal_(self.rnn.weight_hh_l0, std=s)`);
the init program also reaches them through `named_parameters()` loops with name tests,
`self.apply(fn)` with `isinstance` dispatch, `init_weights()` / `reset_parameters()` methods and
per-gate `chunk`s. `weight_hh_chains(program, layer)` replays the program's steps on each
`weight_hh` parameter, gate block by gate block, with the same gain arithmetic as GL301:

    normal_(mean, std)   max(std * sqrt(n), |mean| * n)   (bulk radius, mean outlier)
    uniform_(-b, b)      b * sqrt(n / 3)                  (other ranges: by their moments)
    trunc_normal_        as normal_ with the truncated std
    orthogonal_(gain)    gain                             (the whole parameter, or one gate block)
    xavier_*(gain)       gain on a square block; gain * sqrt(2 / (1 + gates)) per block of a
                         whole (gates * h, h) LSTM/GRU weight
    eye_ 1, zeros_ 0, ones_ n, constant_(v) |v| * n, mul_(k) the gain so far times |k|
    PyTorch's default    1 / sqrt(3) (U(-1/sqrt(h), 1/sqrt(h)))
    kaiming_*, sparse_   unknown (the chain stops being known)

with n the hidden size (the recurrence is h x h per gate block, also for the (4h, h) LSTM and
(3h, h) GRU `weight_hh`). A chain is reported from the step after which its gain stays known and
above 1 to the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_GAIN = 1 / math.sqrt(3)
GATES = {"RNN": 1, "RNNCell": 1, "LSTM": 4, "LSTMCell": 4, "GRU": 3, "GRUCell": 3}


@dataclass
class Link:
    index: int
    """The step's position in the program."""
    gain: float | None
    """The gain of the gate block after the step."""
    formula: str
    sets: bool
    """The step sets the values (an init); False for a multiplication."""


@dataclass
class Chain:
    param: str
    gate: int
    links: list[Link] = field(default_factory=list)

    @property
    def gain(self) -> float | None:
        return self.links[-1].gain if self.links else DEFAULT_GAIN

    def start(self) -> int | None:
        """The link from which the gain stays known and above 1 to the end (None: it does not)."""
        start = None
        for position in range(len(self.links) - 1, -1, -1):
            link = self.links[position]
            if link.gain is None or link.gain <= 1 + 1e-9:
                break
            start = position
            if link.sets:
                break
        return start


def truncated_std(mean: float, std: float, low: float, high: float) -> float | None:
    """The std of N(mean, std) truncated to [low, high] (symmetric around the mean only)."""
    if std == 0:
        return 0.0
    if not math.isclose(mean - low, high - mean):
        return None
    c = (high - mean) / std
    if c >= 6:
        return std
    phi = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(c / math.sqrt(2))
    return std * math.sqrt(max(0.0, 1 - 2 * c * phi / mass))


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def step_gain(spec: dict, n: int, prior: float | None, whole_gates: int) -> tuple[float | None, str, bool]:
    """(gain after the step, formula, whether it sets the values) for one program step on an
    (n x n) gate block; `whole_gates` > 1 when the step covers a whole (gates * n, n) weight."""
    name = spec.get("init")
    number = lambda key, default=None: spec.get(key, default)  # noqa: E731
    if name == "multiply":
        factor = abs(float(number("factor", 1.0)))
        if prior is None:
            return None, "", False
        return prior * factor, f"then * {_fmt(factor)} = {_fmt(prior * factor)}", False
    if name == "default":
        return DEFAULT_GAIN, "PyTorch's default init", True
    gain: float | None
    formula = ""
    if name == "normal_":
        mean, std = float(number("mean", 0.0)), abs(float(number("std", 1.0)))
        gain, formula = _moments(mean, std, n, f"std={_fmt(std)}")
    elif name == "uniform_":
        low, high = float(number("a", 0.0)), float(number("b", 1.0))
        if math.isclose(low, -high):
            gain = abs(high) * math.sqrt(n / 3)
            formula = f"a={_fmt(abs(high))} * sqrt({n}/3) = {_fmt(gain)}"
        else:
            gain, formula = _moments((low + high) / 2, abs(high - low) / math.sqrt(12), n, "std=(b-a)/sqrt(12)")
    elif name == "trunc_normal_":
        std = truncated_std(float(number("mean", 0.0)), abs(float(number("std", 1.0))), float(number("a", -2.0)),
                            float(number("b", 2.0)))
        if std is None:
            return None, "", True
        gain, formula = _moments(float(number("mean", 0.0)), std, n, f"std={_fmt(std)}")
    elif name == "orthogonal_":
        gain = abs(float(number("gain_argument", 1.0))) * float(number("scale", 1.0))
        formula = f"orthogonal, gain={_fmt(gain)}" + (" per gate block" if whole_gates == 1 else "")
    elif name in ("xavier_normal_", "xavier_uniform_"):
        base = abs(float(number("gain_argument", 1.0)))
        if whole_gates > 1:
            gain = base * math.sqrt(2 / (1 + whole_gates))
            formula = f"xavier gain={_fmt(base)} on a ({whole_gates}h x h) weight: {_fmt(gain)} per gate block"
        else:
            gain = base
            formula = f"xavier gain={_fmt(base)} on an n x n block"
    elif name == "eye_":
        gain = float(number("scale", 1.0))
        formula = "identity" + (f" * {_fmt(gain)}" if gain != 1 else " (gain 1)")
    elif name == "zeros_":
        gain, formula = 0.0, "zeros (gain 0)"
    elif name == "ones_":
        gain = float(n) * float(number("scale", 1.0))
        formula = f"1 * n={n} = {_fmt(gain)}"
    elif name == "constant_":
        value = abs(float(number("val", 0.0))) * float(number("scale", 1.0))
        gain = value * n
        formula = f"|{_fmt(value)}| * n={n} = {_fmt(gain)}"
    else:
        return None, "", True
    scale = spec.get("scale")
    if scale is not None and name in ("normal_", "uniform_", "trunc_normal_") and gain is not None:
        gain *= abs(float(scale))
        formula += f", then * {_fmt(abs(float(scale)))} = {_fmt(gain)}"
    return gain, formula, True


def _moments(mean: float, std: float, n: int, label: str) -> tuple[float, str]:
    spread = std * math.sqrt(n)
    shift = abs(mean) * n
    if shift > spread:
        return shift, f"mean={_fmt(mean)} * n={n} = {_fmt(shift)}"
    return spread, f"{label} * sqrt({n}) = {_fmt(spread)}"


def weight_hh_chains(program: list[dict], kind: str, hidden_size: int | None) -> list[Chain]:
    """One chain per (weight_hh parameter, gate block), each the steps that touched it."""
    gates = GATES.get(kind, 1)
    chains: dict[tuple[str, int], Chain] = {}
    if not hidden_size:
        return []
    for index, step in enumerate(program):
        param = str(step.get("param") or "")
        if not param.startswith("weight_hh"):
            continue
        covered = _covered_gates(step, gates, hidden_size)
        whole = gates if covered == list(range(gates)) and step.get("rows") is None and step.get("block") is None \
            and not step.get("per_gate") else 1
        for gate in covered:
            chain = chains.setdefault((param, gate), Chain(param, gate))
            prior = chain.gain
            gain, formula, sets = step_gain(step, hidden_size, prior, whole)
            if not sets and chain.links and chain.links[-1].formula and gain is not None:
                formula = f"{chain.links[-1].formula}, {formula}"
            elif not sets and gain is not None:
                formula = f"PyTorch's default init (gain {_fmt(DEFAULT_GAIN)}), {formula}"
            chain.links.append(Link(index, gain, formula, sets))
    return list(chains.values())


def _covered_gates(step: dict, gates: int, h: int) -> list[int]:
    rows = step.get("rows")
    if rows is not None:
        unit = step.get("row_unit") or h
        start, stop = int(rows[0]), int(rows[1])
        if start % unit or stop % unit:
            return []
        return [g for g in range(start // unit, stop // unit) if g < gates]
    block = step.get("block")
    if block is not None:
        part, count = int(block[0]), int(block[1])
        if count == gates:
            return [part]
        return []
    return list(range(gates))


__all__ = ["Chain", "DEFAULT_GAIN", "Link", "step_gain", "truncated_std", "weight_hh_chains"]

