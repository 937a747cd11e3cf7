"""What a probe reports: `RegimeResult` (one input regime) and `ProbeResult` (the headline and
every regime). Torch-free: the CLI and the reporters read and write them without torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gradlint.probe.growth import log10_total_growth
from gradlint.probe.jsonsafe import from_json_number, jsonable


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
    steps_origin: str | None = None
    """Where the code states `steps` (T, or an MLP's depth); None: the documented default was used."""
    steps_to_threshold: int | None = None
    """The smallest T at which G = k^(T-1) reaches the explode threshold (k > 1) or the vanish
    threshold (k < 1): T* = 1 + ln(threshold) / ln(k), rounded up; None for k = 1 or non-finite."""

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

    @classmethod
    def from_json(cls, data: dict) -> ProbeResult:
        """The inverse of `to_json` (the sandboxed child of `--probe-import` sends results so)."""

        def numbers(value):
            if isinstance(value, dict):
                return {k: numbers(v) for k, v in value.items()}
            if isinstance(value, list):
                return [numbers(v) for v in value]
            return from_json_number(value)

        data = numbers(dict(data))
        data.pop("log10_total_growth", None)
        regimes = []
        for item in data.pop("regimes", []):
            item.pop("log10_total_growth", None)
            regimes.append(RegimeResult(**item))
        known = set(cls.__dataclass_fields__)
        return cls(regimes=regimes, **{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict:
        """A JSON-safe dict: every non-finite float (G = inf, log10 of a zero norm) is written
        as the string "inf", "-inf" or "nan"; finite values stay numbers. `log10_total_growth`
        (a number whenever k is finite and positive) rides along for consumers that want a
        number. `from_json_number` reads the strings back."""
        return jsonable(self.to_dict())
