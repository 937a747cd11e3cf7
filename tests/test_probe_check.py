"""`gradlint check --probe`: the seam (gradlint/probe/confirm.py), the CLI and the reporters.

Tests that measure need torch (`pytest.importorskip`); the no-torch path runs the CLI in a
subprocess with a `torch.py` blocker on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gradlint.cli import main
from gradlint.findings import Finding, Report, Severity
from gradlint.probe.confirm import PROBE_KEYS, confirm_report, pooled_data

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
JSON_DOC = REPO / "docs" / "json-schema.md"
INSTALL_MESSAGE = "--probe needs torch: pip install 'torch-gradlint[probe]' (from a checkout: pip install -e '.[probe]')"

RELU_DEFAULT = """\
    import torch
    from torch import nn


    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(16, 256, nonlinearity="relu")
            self.head = nn.Linear(256, 1)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[-1])


    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(10):
        loss = model(torch.randn(100, 8, 16)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    """

IRNN_SCALED = RELU_DEFAULT.replace(
    'self.head = nn.Linear(256, 1)\n',
    'self.head = nn.Linear(256, 1)\n'
    '            nn.init.eye_(self.rnn.weight_hh_l0)\n'
    '            self.rnn.weight_hh_l0.data.mul_(1.5)\n',
)

UNRESOLVED_HIDDEN = RELU_DEFAULT.replace("import torch\n", "import json\n    import torch\n").replace(
    "nn.RNN(16, 256,", 'nn.RNN(16, json.load(open("config.json"))["hidden"],'
).replace("nn.Linear(256, 1)", "nn.LazyLinear(1)")


def project(tmp_path: Path, source: str, name: str = "proj") -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "train.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return root


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def findings_json(*args: str) -> list[dict]:
    result = run_cli(*args, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)["findings"]


def by_code(findings: list[dict], code: str) -> dict:
    matches = [f for f in findings if f["code"] == code]
    assert len(matches) == 1, [f["code"] for f in findings]
    return matches[0]


# -- JSON: the documented fields --------------------------------------------------------------


def test_relu_irnn_fixture_json_has_probe_objects_with_the_documented_fields():
    pytest.importorskip("torch")
    findings = findings_json(str(FIXTURES / "relu_irnn"), "--probe")
    probed = [f for f in findings if "probe" in f]
    assert {f["code"] for f in probed} == {"GL202", "GL301"}
    for finding in probed:
        probe = finding["probe"]
        assert list(probe) == list(PROBE_KEYS)
        assert probe["status"] == "confirmed" and probe["reason"] is None
        assert probe["verdict"] == "explodes"
        assert probe["growth_per_step"] == pytest.approx(1.5, rel=0.05)
        # The fixture states its length: `--seq-len` defaults to 50 and builds the dataset.
        assert probe["steps"] == 50 and probe["window"] == 50
        assert probe["steps_origin"] == "`seq_len`: argparse default of --seq-len (fixtures/relu_irnn/train.py:66)" \
            or probe["steps_origin"].startswith("`seq_len`: argparse default of --seq-len (")
        assert probe["steps_to_threshold"] == 7  # 1 + ln 10 / ln 1.5 = 6.68
        assert probe["log10_total_growth"] == pytest.approx(49 * 0.1761, rel=0.05)
        assert probe["total_growth"] == pytest.approx(10 ** probe["log10_total_growth"], rel=1e-3)
        assert probe["regime"] in ("small-signal", "unit-scale")
        assert [r["regime"] for r in probe["regimes"]] == ["small-signal", "unit-scale"]
        for regime in probe["regimes"]:
            assert {"verdict", "growth_per_step", "total_growth", "steps"} <= set(regime)
        assert set(probe["compare"]) >= {"lstm", "gru"}
        for cell in ("lstm", "gru"):
            assert probe["compare"][cell]["verdict"] in ("explodes", "stable", "vanishes")
            assert isinstance(probe["compare"][cell]["growth_per_step"], float)
        assert len(probe["norms"]) == probe["window"]
        assert probe["module"]["kind"] == "RNN" and probe["module"]["nonlinearity"] == "relu"
        assert probe["defaults_applied"] == []
        assert probe["static_severity"] == "warning"
        assert finding["severity"] == "error"  # G = 10^8.6: far above the threshold
        assert finding["message"].endswith("[probe: confirmed (explodes, x1.50/step, 10^8.6 over 50 steps)]")
        # The init program: every init the code applies to the layer, in order, biases included.
        applied = [note for note in probe["notes"] if note.startswith("init applied:")]
        assert [note.rsplit("-> ", 1)[1] for note in applied] == [
            "weight_ih_l0", "bias_ih_l0", "bias_hh_l0", "weight_hh_l0", "weight_hh_l0"]
        assert "nn.init.eye_(self.rnn.weight_hh_l0)" in applied[3]


def test_relu_rnn_with_default_init_is_not_confirmed_it_vanishes(tmp_path):
    pytest.importorskip("torch")
    findings = findings_json(str(project(tmp_path, RELU_DEFAULT)), "--probe")
    finding = by_code(findings, "GL202")
    probe = finding["probe"]
    assert probe["status"] == "not-confirmed"
    assert probe["verdict"] == "vanishes"
    assert probe["growth_per_step"] == pytest.approx(0.41, rel=0.05)
    assert finding["severity"] == "info" and probe["static_severity"] == "warning"
    assert re.search(r"\[probe: not confirmed \(vanishes, x0\.4\d/step\)\]$", finding["message"])


def test_irnn_scaled_by_one_and_a_half_is_confirmed(tmp_path):
    pytest.importorskip("torch")
    findings = findings_json(str(project(tmp_path, IRNN_SCALED)), "--probe")
    for code in ("GL202", "GL301"):
        probe = by_code(findings, code)["probe"]
        assert probe["status"] == "confirmed" and probe["verdict"] == "explodes"
        assert probe["growth_per_step"] == pytest.approx(1.5, rel=0.05)
    # Exit 1: the confirmed findings are errors now.
    assert run_cli(str(tmp_path / "proj"), "--probe", "-q").exit_code == 1


def test_unresolved_sizes_fall_back_to_defaults_and_say_so(tmp_path):
    pytest.importorskip("torch")
    root = project(tmp_path, UNRESOLVED_HIDDEN)
    probe = by_code(findings_json(str(root), "--probe"), "GL202")["probe"]
    assert "hidden_size=128 (default: unresolved)" in probe["defaults_applied"]
    assert probe["module"]["hidden_size"] == 128
    text = run_cli(str(root), "--probe").stdout
    assert "defaults: hidden_size=128 (unresolved)" in text


def test_a_confirmed_finding_below_the_escalation_margin_keeps_its_severity():
    pytest.importorskip("torch")
    # G = 10^8.6 >= 1e8 (confirmed) but below 1e8 * 1e5 (no escalation to error).
    findings = findings_json(str(FIXTURES / "relu_irnn"), "--probe", "--probe-threshold", "1e8")
    finding = by_code(findings, "GL202")
    assert finding["probe"]["status"] == "confirmed"
    assert finding["severity"] == "warning"


def test_gl101_on_a_recurrent_model_is_probed_and_keeps_its_severity():
    pytest.importorskip("torch")
    findings = findings_json(str(FIXTURES / "char_rnn_no_clip"), "--probe")
    gl101 = by_code(findings, "GL101")
    # The trained model's nn.RNN is rebuilt from its data; the missing clip stays a warning
    # whatever the verdict, and the probe adds what the fix's clip does to one update.
    assert "nn.RNN at" in gl101["message"]
    assert gl101["probe"]["status"] in ("confirmed", "not-confirmed")
    assert gl101["probe"]["verdict"] in ("explodes", "stable", "vanishes")
    assert gl101["severity"] == "warning" and "[probe:" in gl101["message"]
    assert all("probe" not in f for f in findings if f["code"] not in ("GL101", "GL401"))


def test_without_probe_no_finding_has_a_probe_key():
    findings = findings_json(str(FIXTURES / "relu_irnn"))
    assert findings and all("probe" not in f for f in findings)


# -- the other formats ------------------------------------------------------------------------


def test_sarif_with_probe_validates_and_carries_the_probe_object():
    pytest.importorskip("torch")
    from test_reporters import assert_valid_sarif

    target = str(FIXTURES / "relu_irnn")
    document = json.loads(run_cli(target, "--probe", "--format", "sarif").stdout)
    assert_valid_sarif(document)
    results = document["runs"][0]["results"]
    probes = [r["properties"]["probe"] for r in results if "probe" in r.get("properties", {})]
    assert len(probes) == 2
    json_probes = [f["probe"] for f in findings_json(target, "--probe") if "probe" in f]
    assert probes == json_probes


def test_text_output_has_the_probe_line_and_chart():
    pytest.importorskip("torch")
    result = run_cli(str(FIXTURES / "relu_irnn"), "--probe")
    text = result.stdout
    assert "probe: confirmed - explodes, x1.50/step, 10^8.6 over 50 steps (small-signal); LSTM x" in text
    assert re.search(r"LSTM x\d\.\d\d (stable|vanishes|explodes), GRU x\d\.\d\d (stable|vanishes|explodes)", text)
    chart = [line for line in text.splitlines() if line.strip().startswith("t=0 ")]
    assert chart and "log10 |dL/dx_t|" in chart[0]
    assert "regimes: small-signal x1.50 explodes, unit-scale x" in text
    assert "note: T = 50 steps, from `seq_len`: argparse default of --seq-len" in text
    assert "probe: 2 findings probed" in result.stderr


def test_sparkline_scales_between_the_finite_extremes():
    from gradlint.report.text import sparkline

    assert sparkline([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]) == "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
    assert sparkline([3.0, "-inf", "inf"], unicode=False) == "= !"  # one finite value: mid-scale
    assert sparkline([0.0, "-inf", 1.0], unicode=False) == "_ @"
    assert len(sparkline([float(i) for i in range(200)])) == 50
    assert sparkline([]) == ""


# -- the probe's JSON fields are documented ---------------------------------------------------


def _probe_doc_fields() -> dict[str, set[str]]:
    text = JSON_DOC.read_text(encoding="utf-8")
    section = text.split("\n## The `probe` object", 1)[1].split("\n## ", 1)[0]
    fields: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]
        if len(cells) >= 4 and re.fullmatch(r"`[^`]+`", cells[1]):
            fields[cells[1].strip("`")] = {t.strip() for t in cells[2].split("\\|")}
    return fields


def test_json_doc_and_probe_output_name_the_same_fields_with_the_same_types():
    pytest.importorskip("torch")
    from test_reporters import _rendered_fields

    # A single-layer RNN, a 4-layer stack (per_layer), a probed GL101 (with the fix's clip) and a
    # not-probed GL101 (a feed-forward model).
    findings = findings_json(
        str(FIXTURES / "relu_irnn"), str(FIXTURES / "package_project"), str(FIXTURES / "char_rnn_no_clip"),
        str(FIXTURES / "cnn_classifier"), "--probe",
    )
    statuses = {f["probe"]["status"] for f in findings if "probe" in f}
    assert statuses == {"confirmed", "not-confirmed", "not-probed"}
    rendered = {
        path: types for path, types in _rendered_fields({"findings": findings}).items()
        if path.startswith("findings[].probe") and not path.startswith("findings[].probe.module.init[]")
    }
    documented = _probe_doc_fields()
    assert documented, "no probe field table in docs/json-schema.md"
    assert set(rendered) == set(documented), (
        f"undocumented: {sorted(set(rendered) - set(documented))}; "
        f"documented but absent: {sorted(set(documented) - set(rendered))}"
    )
    for path, seen in rendered.items():
        assert seen <= documented[path], f"{path}: rendered as {sorted(seen)}, documented as {sorted(documented[path])}"


# -- the seam ---------------------------------------------------------------------------------


def _finding(code: str, line: int, data: dict | None) -> Finding:
    return Finding(code=code, name="x", severity=Severity.WARNING, message="m.", path=Path("/p/train.py"),
                   display_path="train.py", line=line, column=1, end_line=line, end_column=2, data=data)


def test_findings_on_one_layer_pool_their_init_and_sequence_length():
    layer = {"layer": "RNN", "input_size": 4, "hidden_size": 32, "nonlinearity": "relu", "unresolved": []}
    gl202 = _finding("GL202", 10, dict(layer))
    gl203 = _finding("GL203", 10, dict(layer, seq_len=400))
    gl301 = _finding("GL301", 12, {"init": "eye_", "scale": 1.5, "gain": 1.5, "target": "rnn.weight_hh_l0",
                                  "layer": dict(layer, where="train.py:10"), "unresolved": []})
    group = [gl202, gl203, gl301]
    data, notes = pooled_data(gl202, group)
    assert data["init"] == [{"init": "eye_", "scale": 1.5, "gain": 1.5, "target": "rnn.weight_hh_l0",
                             "at": "train.py:12"}]
    assert data["seq_len"] == 400
    assert notes == ["init eye_ from GL301 at line 12", "seq_len=400 from GL203 at line 10"]
    data, _ = pooled_data(gl301, group)
    assert data["seq_len"] == 400 and data["init"][0]["init"] == "eye_"


def test_confirm_report_imports_the_measurement_once_and_measures_each_configuration_once(monkeypatch):
    pytest.importorskip("torch")
    from gradlint.probe import confirm

    loads = []
    real = confirm.load_measure
    monkeypatch.setattr(confirm, "load_measure", lambda: loads.append(1) or real())
    layer = {"layer": "RNN", "input_size": 4, "hidden_size": 32, "nonlinearity": "relu", "seq_len": 60,
             "unresolved": []}
    report = Report(findings=[_finding("GL202", 10, dict(layer)), _finding("GL201", 10, dict(layer)),
                              _finding("GL109", 3, None), _finding("GL401", 20, None)])
    summary = confirm_report(report)
    assert loads == [1]
    assert summary.measurements == 1 and summary.probed == 2 and summary.not_probed == 1
    assert report.findings[0].probe == report.findings[1].probe
    assert report.findings[2].probe is None
    assert report.findings[3].probe["status"] == "not-probed"


def test_an_unsupported_layer_is_not_probed_with_the_reason():
    pytest.importorskip("torch")
    report = Report(findings=[_finding("GL201", 1, {"layer": "Transformer", "unresolved": []})])
    confirm_report(report)
    probe = report.findings[0].probe
    assert probe["status"] == "not-probed" and "Transformer" in probe["reason"]
    assert report.findings[0].severity == Severity.WARNING


# -- without torch ----------------------------------------------------------------------------


def _blocked_env(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch is blocked in this test')\n")
    return {**os.environ, "PYTHONPATH": str(blocker)}


def test_probe_without_torch_prints_static_results_then_the_install_hint_and_exits_2(tmp_path):
    env = _blocked_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", str(FIXTURES / "relu_irnn"), "--probe", "--format", "json"],
        capture_output=True, text=True, env=env, check=False,
    )
    assert result.returncode == 2, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert {f["code"] for f in findings} >= {"GL202", "GL301"}
    assert all("probe" not in f for f in findings)
    assert INSTALL_MESSAGE in result.stderr
    assert "Traceback" not in result.stderr and "blocked in this test" not in result.stderr


def test_the_probe_seam_does_not_import_torch_at_import_time():
    code = "import sys, gradlint.cli, gradlint.probe.confirm; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the whole fixture tree -------------------------------------------------------------------


def test_check_fixtures_with_probe_finishes_and_reports_both_outcomes(capsys):
    pytest.importorskip("torch")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", str(FIXTURES), "--probe", "--format", "json"],
        capture_output=True, text=True, check=False,
    )
    wall = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n[timing] gradlint check fixtures/ --probe: {wall:.2f} s wall (torch import included); "
              f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ''}")
    assert result.returncode == 1, result.stderr
    statuses = [f["probe"]["status"] for f in json.loads(result.stdout)["findings"] if "probe" in f]
    assert "confirmed" in statuses and "not-confirmed" in statuses


def _bare_finding(code: str, message: str) -> Finding:
    return Finding(code, "name", Severity.WARNING, message, Path("/x/train.py"), "train.py", 3, 1, 3, 2)


def test_a_finding_that_names_no_layer_is_told_so_in_plain_words():
    from gradlint.probe.confirm import unprobed_reason

    reason = unprobed_reason(_bare_finding("GL101", "`opt.step()` updates the weights with no clipping (informational)"))
    assert reason == "GL101 names no layer the probe can rebuild"
    reason = unprobed_reason(_bare_finding("GL203", "a vanilla RNN over long sequences"))
    assert "null" not in reason and "data" not in reason


def test_a_finding_that_names_a_layer_is_never_told_it_has_none():
    from gradlint.probe.confirm import unprobed_reason

    message = "`optimizer.step()` ... ; `RNNModel` has a recurrent layer (nn.RNN at model.py:18), a known cause"
    reason = unprobed_reason(_bare_finding("GL401", message))
    assert "nn.RNN at model.py:18" in reason and "no layer" not in reason
