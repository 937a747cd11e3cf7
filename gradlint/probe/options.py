"""How to measure: `ProbeOptions` (the verdict thresholds, the regimes, the comparison). Torch-free."""

from __future__ import annotations

from dataclasses import dataclass


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
    import_project: bool = False
    """`--probe-import`: build the code's own module holding a flagged layer (runs project code, in
    a sandboxed subprocess: gradlint.probe.real) and measure it; the rebuild is the fallback."""
    import_timeout: float = 60.0
    """Wall-clock limit of that subprocess, in seconds (all findings of a run together)."""
    import_memory_mb: int = 4096
    """Its address-space cap in MiB (0: none)."""

