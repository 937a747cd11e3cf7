"""The growth arithmetic, from the gradient's log-norms to the verdict. Torch-free, so the
in-process probe (gradlint.probe.measure) and the sandboxed `gradlint probe` child
(gradlint.probe.target) share it.

    log-norms ln ||dL/dx_t|| -> k (`fit_growth`; `fit_window` applies the skip rule)
    -> G = k ** (T - 1) (`total_growth`; `power_growth` for `gradlint probe`; the log10 of G
       without forming it: `log10_total_growth`)
    -> verdict (`verdict_for`; `VERDICT_RANK` orders verdicts)

The definitions are in the docstring of gradlint.probe.measure.
"""

from __future__ import annotations

import math

from gradlint.probe.options import ProbeOptions

VERDICT_RANK = {"vanishes": 0, "stable": 1, "explodes": 2}
LN10 = math.log(10.0)


def fit_growth(log_norms: list[float], skip_last: int = 0) -> tuple[float, int]:
    """(k, points): k = exp of the least-squares slope of ln-norm against the distance from the
    loss s = n-1-t, over the finite entries with s >= skip_last. `log_norms` are natural logs
    indexed by position t (-inf for a zero norm). Returns (nan, points) with fewer than 2 points."""
    n = len(log_norms)
    pts = [(float(n - 1 - t), v) for t, v in enumerate(log_norms) if math.isfinite(v) and n - 1 - t >= skip_last]
    if len(pts) < 2:
        return float("nan"), len(pts)
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pts)
    slope = sxy / sxx
    try:
        return math.exp(slope), len(pts)
    except OverflowError:
        return float("inf"), len(pts)


def fit_window(log_norms: list[float], options: ProbeOptions) -> tuple[float, int]:
    """`fit_growth` over a window of time steps: the `options.skip_last` steps nearest the loss
    are left out when the window has at least 10 steps."""
    return fit_growth(log_norms, options.skip_last if len(log_norms) >= 10 else 0)


def log10_norms(log_norms: list[float]) -> list[float]:
    """Natural-log norms as log10 (non-finite entries stay inf / -inf / nan)."""
    return [v / LN10 for v in log_norms]


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


def power_growth(k: float, steps: int) -> float:
    """G = k ** (T - 1) as `gradlint probe` (gradlint.probe.target) reports it: Python's float
    power, inf when it overflows, k itself when k is not finite.

    The same quantity as `total_growth` but not the same float: `total_growth` computes
    exp((T - 1) ln k), which differs from k ** (T - 1) in the last bits for most k, and says
    inf from exp(709) up where the power is still finite; for nan k it says 1.0 at T = 1
    where this says nan. Kept separate so that `gradlint probe` and `gradlint check --probe`
    both report exactly what they reported before the two shared this module."""
    if not math.isfinite(k):
        return k
    try:
        return k ** (steps - 1)
    except OverflowError:
        return float("inf")


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


def steps_to_threshold(k: float, options: ProbeOptions) -> int | None:
    """T* = 1 + ln(threshold) / ln(k), rounded up: the length at which G = k^(T-1) reaches the
    explode threshold (k > 1) or the vanish threshold (k < 1). Needs no sequence length, so it
    speaks for code that does not state one. None for k = 1, 0, or non-finite k."""
    if not math.isfinite(k) or k <= 0 or k == 1.0:
        return None
    threshold = options.explode_threshold if k > 1 else options.vanish_threshold
    if threshold <= 0 or threshold == 1:
        return None
    value = 1.0 + math.log(threshold) / math.log(k)
    if value <= 1:
        return 1
    return int(math.ceil(value - 1e-9))


def verdict_for(growth: float, nonfinite: bool, options: ProbeOptions) -> str:
    if nonfinite or math.isnan(growth) or growth >= options.explode_threshold:
        return "explodes"
    if growth <= options.vanish_threshold:
        return "vanishes"
    return "stable"
