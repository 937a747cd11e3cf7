"""The growth arithmetic: G = k ** (T - 1) from the per-step factor k, its log10, and the
verdict ranking. Torch-free.
"""

from __future__ import annotations

import math

VERDICT_RANK = {"vanishes": 0, "stable": 1, "explodes": 2}


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

