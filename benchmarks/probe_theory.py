"""The probe against theory on the fixtures that state their own answer (not a test; prints a table).

    python benchmarks/probe_theory.py

For each case: the per-step (MLP: per-layer) factor theory gives, the spectral radius of the
linearised recurrence of the module the probe rebuilt (the independent eigenvalue check: W_hh;
0.5 I + 0.25 W_cell for an LSTM at the origin; D W for relu, D keeping a random half of the
units), the
probe's k, the length the code states (and where), G and the verdict. tests/test_probe_fixtures.py
holds the same cases to tolerances; benchmarks/README.md keeps the table.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = [
    # (label, fixture, rule, theory k, how to linearise the rebuilt module)
    ("tanh RNN, orthogonal gain 1.5, zero biases", "orthogonal_rnn_zero_bias", "GL301", 1.5, "whh"),
    ("relu IRNN: identity, zero biases", "irnn_identity", "GL202", 1.0, "whh"),
    ("LSTM, gate blocks orthogonal gain 4, zero biases", "lstm_gate_init", "GL301", 0.5 + 0.25 * 4, "lstm"),
    ("tanh RNN, orthogonal gain 1.2, only 10 steps", "short_window_rnn", "GL301", 1.2, "whh"),
    ("relu loop h = relu(W h), W std 2/sqrt(n) (GL202)", "iterative_refiner", "GL202", 2 / math.sqrt(2), "relu"),
    ("square Linear x12 tied, relu, std 2/sqrt(n) (GL301)", "iterative_refiner", "GL301", 2 / math.sqrt(2), None),
    ("12 relu blocks, PyTorch default init (GL204)", "block_mlp", "GL204", (1 / math.sqrt(3)) / math.sqrt(2), None),
]


def main() -> int:
    import torch

    from gradlint.api import check
    from gradlint.config import Config
    from gradlint.probe import ProbeConfig, ProbeOptions
    from gradlint.probe.build import build_module
    from gradlint.probe.confirm import _groups, pooled_data

    def radius(matrix) -> float:
        return float(torch.linalg.eigvals(matrix.double()).abs().max())

    torch.set_num_threads(1)
    print(f"{'case':52s} {'theory':>7s} {'eig':>7s} {'probe':>7s}  {'T / depth (from)':40s} {'G':>9s}  verdict")
    for label, fixture, rule, theory, how in CASES:
        root = ROOT / "fixtures" / fixture
        report = check([root], Config(root=root), probe=ProbeOptions(), cwd=root)
        findings = [f for f in report.findings if f.code == rule]
        finding = findings[0]
        groups = _groups([f for f in report.findings if isinstance(f.data, dict)])
        data, _ = pooled_data(finding, groups.get(id(finding), [finding]))
        config = ProbeConfig.from_data(data)
        eig = "-"
        if how is not None:
            module = build_module(config)
            h = config.hidden_size
            weight = module.weight_hh_l0 if hasattr(module, "weight_hh_l0") else module.weight_hh
            if how == "lstm":
                weight = 0.5 * torch.eye(h, dtype=torch.float64) + 0.25 * weight[2 * h : 3 * h]
            elif how == "relu":  # relu's Jacobian keeps the active half of the units: D W
                mask = (torch.rand(h, generator=torch.Generator().manual_seed(0)) < 0.5).double()
                weight = torch.diag(mask) @ weight.double()
            eig = f"{radius(weight):.3f}"
        probe = finding.probe
        origin = probe["steps_origin"] or "not in the code: default"
        origin = origin if len(origin) < 34 else origin[:31] + "..."
        print(f"{label:52s} {theory:7.3f} {eig:>7s} {probe['growth_per_step']:7.3f}  "
              f"{str(probe['steps']) + ' (' + origin + ')':40s} {'10^' + format(probe['log10_total_growth'], '.1f'):>9s}  "
              f"{probe['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
