"""The probe measures the module the code really builds, over the sequence it really runs.

Each case is a fixture project (fixtures/README.md) whose per-step factor theory gives, checked
twice: against the theory, and against the spectral radius of the (linearised) recurrence of the
module the probe rebuilt (the independent eigenvalue check of tests/test_probe_theory.py).
The measured-vs-theory table is in benchmarks/README.md ("The probe against theory").

    orthogonal gain g, tanh, zero biases      k = g                        (linear at the origin)
    relu IRNN: identity, zero biases          k = 1
    LSTM, gate blocks orthogonal gain g,      k = 0.5 + 0.25 g             (0.5 I + 0.25 W_cell)
      zero biases
    relu layers with std c / sqrt(n)          k = c / sqrt(2) per layer    (relu keeps half)
    PyTorch's default Linear init, relu       k = (1 / sqrt(3)) / sqrt(2) ~ 0.41
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gradlint.api import check, lint_sources  # noqa: E402
from gradlint.config import Config  # noqa: E402
from gradlint.findings import Report, Severity  # noqa: E402
from gradlint.probe import ProbeConfig, ProbeOptions  # noqa: E402
from gradlint.probe.build import build_module  # noqa: E402
from gradlint.probe.confirm import confirm_report, pooled_data  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def probed(folder: str) -> list:
    root = FIXTURES / folder
    report = check([root], Config(root=root), probe=ProbeOptions(), cwd=root)
    assert report.probe_error is None
    return report.findings


def finding(findings: list, code: str):
    found = [f for f in findings if f.code == code]
    assert len(found) == 1, [(f.code, f.line) for f in findings]
    return found[0]


def rebuilt(item, group=None):
    data, _ = pooled_data(item, group or [item])
    config = ProbeConfig.from_data(data)
    return config, build_module(config)


def radius(matrix) -> float:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return float(torch.linalg.eigvals(matrix.double()).abs().max())
    finally:
        torch.set_num_threads(threads)


def test_orthogonal_gain_with_zero_biases_is_the_gain_over_the_stated_bptt():
    item = finding(probed("orthogonal_rnn_zero_bias"), "GL301")
    probe = item.probe
    assert probe["growth_per_step"] == pytest.approx(1.5, rel=0.02)
    config, module = rebuilt(item)
    assert probe["growth_per_step"] == pytest.approx(radius(module.weight_hh_l0), rel=0.02)
    assert float(module.bias_hh_l0.abs().max()) == 0.0 and float(module.bias_ih_l0.abs().max()) == 0.0
    assert probe["steps"] == 35 and probe["steps_origin"].startswith("`bptt`: argparse default of --bptt")
    assert probe["status"] == "confirmed" and item.severity == Severity.ERROR  # 1.5^34 = 10^6.0


def test_an_irnn_initialised_as_in_the_paper_is_stable_and_lowered_to_info():
    findings = probed("irnn_identity")
    for code in ("GL202", "GL203"):
        item = finding(findings, code)
        for regime in item.probe["regimes"]:
            assert regime["growth_per_step"] == pytest.approx(1.0, abs=0.02)
        assert item.probe["verdict"] == "stable" and item.severity == Severity.INFO
        assert item.probe["steps"] == 200
    _, module = rebuilt(finding(findings, "GL202"))
    assert radius(module.weight_hh_l0) == pytest.approx(1.0)


def test_an_lstm_with_gain_four_orthogonal_gate_blocks_explodes_at_one_and_a_half():
    item = finding(probed("lstm_gate_init"), "GL301")
    probe = item.probe
    assert probe["growth_per_step"] == pytest.approx(1.5, rel=0.03)
    config, module = rebuilt(item)
    h = config.hidden_size
    cell_block = module.weight_hh_l0[2 * h : 3 * h]
    linearised = 0.5 * torch.eye(h, dtype=torch.float64) + 0.25 * cell_block
    assert probe["growth_per_step"] == pytest.approx(radius(linearised), rel=0.03)
    assert probe["steps"] == 60 and "--window" in probe["steps_origin"]
    applied = [note for note in probe["notes"] if note.startswith("init applied")]
    assert len(applied) == 1 + 4 + 2  # weight_ih, the 4 gate blocks of weight_hh, the 2 biases, in program order
    assert applied[1].endswith("weight_hh_l0[0:128]") and applied[4].endswith("weight_hh_l0[384:512]")


def test_an_lstm_whole_matrix_orthogonal_gain_four_is_at_the_edge_not_exploding():
    # orthogonal_ on the whole (4h, h) weight_hh: each gate block has entries of std 4/sqrt(4h),
    # spectral radius about 2, so 0.5 I + 0.25 W_cell sits at about 1.0 (theory), not 1.5.
    code = (FIXTURES / "lstm_gate_init" / "model.py").read_text().replace(
        "                for gate in param.data.chunk(4, 0):\n                    nn.init.orthogonal_(gate, gain=4.0)",
        "                nn.init.orthogonal_(param, gain=4.0)")
    item = [f for f in lint_sources({"model.py": code}, select={"GL301"})][0]
    report = Report(findings=[item])
    confirm_report(report, ProbeOptions())
    config, module = rebuilt(item)
    h = config.hidden_size
    linearised = 0.5 * torch.eye(h, dtype=torch.float64) + 0.25 * module.weight_hh_l0[2 * h : 3 * h]
    assert item.probe["growth_per_step"] == pytest.approx(radius(linearised), rel=0.03)
    assert item.probe["growth_per_step"] == pytest.approx(1.0, abs=0.05)
    assert item.probe["steps_origin"] is None and item.probe["steps"] == 100


def test_a_layer_that_only_sees_ten_steps_is_not_confirmed():
    item = finding(probed("short_window_rnn"), "GL301")
    probe = item.probe
    assert probe["steps"] == 10 and probe["window"] == 10
    assert probe["growth_per_step"] == pytest.approx(1.2, rel=0.05)
    assert probe["status"] == "not-confirmed" and item.severity == Severity.INFO
    assert probe["total_growth"] < 10  # 1.2^9 = 5.2
    k = probe["growth_per_step"]
    assert probe["steps_to_threshold"] == math.ceil(1 + math.log(10) / math.log(k))  # theory: 1 + ln 10 / ln 1.2 = 13.6


def test_a_square_linear_applied_in_a_loop_is_probed_as_a_stack_of_that_depth():
    findings = probed("iterative_refiner")
    item = finding(findings, "GL301")
    probe = item.probe
    assert probe["module"]["kind"] == "MLP" and probe["module"]["nonlinearity"] == "relu"
    assert probe["steps"] == 12 and "--refine-steps" in probe["steps_origin"]
    assert probe["growth_per_step"] == pytest.approx(math.sqrt(2), rel=0.05)  # gain 2, relu halves the energy
    assert probe["status"] == "confirmed"  # 1.41^11 ~ 45
    # The loop is also a relu recurrence (GL202): same weight, same init, same length.
    recurrence = finding(findings, "GL202").probe
    assert recurrence["growth_per_step"] == pytest.approx(math.sqrt(2), rel=0.05)
    assert recurrence["steps"] == 12


def test_a_deep_stack_of_block_classes_with_default_init_vanishes():
    item = finding(probed("block_mlp"), "GL204")
    probe = item.probe
    assert probe["module"]["kind"] == "MLP" and probe["module"]["nonlinearity"] == "relu"
    assert probe["steps"] == 12 and "--depth" in probe["steps_origin"]
    assert probe["growth_per_step"] == pytest.approx(1 / math.sqrt(6), rel=0.06)
    assert probe["verdict"] == "vanishes" and item.severity == Severity.INFO


def test_unknown_length_reports_where_the_gradient_crosses_the_threshold():
    code = (FIXTURES / "orthogonal_rnn_zero_bias" / "train.py").read_text().replace(
        'parser.add_argument("--bptt", type=int, default=35, help="tokens per training chunk")',
        'parser.add_argument("--chunk", type=int, default=35, help="tokens per training chunk")').replace(
        "args.bptt", "args.chunk")
    item = [f for f in lint_sources({"train.py": code}, select={"GL301"})][0]
    confirm_report(Report(findings=[item]), ProbeOptions())
    probe = item.probe
    assert probe["steps_origin"] is None and probe["steps"] == 100
    assert probe["steps_to_threshold"] == 7  # 1 + ln 10 / ln 1.5 = 6.68
    assert "grows 10x in 7 steps; T not in the code: 10^17.4 over the default 100 steps" in item.message
    assert probe["notes"][0].startswith("the code does not state the sequence length")
