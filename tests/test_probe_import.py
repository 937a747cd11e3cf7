"""The probe beyond the rebuild: GL101/GL401 findings that carry their trained model's recurrent
layer, and `--probe-import`, which builds the code's own module in a sandboxed subprocess.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.cli import main
from gradlint.findings import Report, Severity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

UNCLIPPED_IRNN = textwrap.dedent("""\
    import argparse

    import torch
    import torch.nn as nn


    class Model(nn.Module):
        def __init__(self, hidden=64):
            super().__init__()
            self.rnn = nn.RNN(8, hidden, nonlinearity="relu")
            self.head = nn.Linear(hidden, 1)
            nn.init.eye_(self.rnn.weight_hh_l0)
            self.rnn.weight_hh_l0.data.mul_(1.5)
            nn.init.zeros_(self.rnn.bias_ih_l0)
            nn.init.zeros_(self.rnn.bias_hh_l0)

        def forward(self, x):
            return self.head(self.rnn(x)[0][-1])


    parser = argparse.ArgumentParser()
    parser.add_argument("--seq-len", type=int, default=40)
    args = parser.parse_args()
    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(100):
        x = torch.randn(args.seq_len, 16, 8)
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    """)


def test_a_gl101_that_carries_its_trained_model_is_probed_with_and_without_the_clip():
    """GL101 attaches the probe data of the model its step trains (`model_probe_data`); the probe
    measures it and what the fix's clip does to one update."""
    pytest.importorskip("torch")
    from gradlint.api import lint_sources
    from gradlint.probe import ProbeOptions
    from gradlint.probe.confirm import confirm_report

    (finding,) = lint_sources({"train.py": UNCLIPPED_IRNN}, select={"GL101"})
    assert finding.data["layer"] == "RNN" and finding.data["model"] == "Model"
    assert finding.data["seq_len"] == 40 and finding.data["clip_max_norm"] == 1.0
    assert [step["init"] for step in finding.data["init_program"]] == ["eye_", "multiply", "zeros_", "zeros_"]

    confirm_report(Report(findings=[finding]), ProbeOptions())
    probe = finding.probe
    assert probe["status"] == "confirmed" and probe["growth_per_step"] == pytest.approx(1.5, rel=0.02)
    assert probe["steps"] == 40
    clipped = probe["compare"]["rnn_clipped"]
    assert clipped["growth_per_step"] == probe["growth_per_step"]  # clipping never changes k
    assert clipped["update_norm"] > 1e3 and clipped["clipped_update_norm"] == 1.0
    assert "with clip_grad_norm_(max_norm=1.0) the update of one sequence goes from" in finding.message


def test_a_gl101_on_a_feed_forward_model_has_no_data_and_stays_not_probed():
    pytest.importorskip("torch")
    from gradlint.probe.confirm import confirm_report
    from gradlint.api import lint_sources

    feed_forward = UNCLIPPED_IRNN.replace('nn.RNN(8, hidden, nonlinearity="relu")', "nn.Linear(8, hidden)")
    (finding,) = lint_sources({"train.py": feed_forward}, select={"GL101"})
    assert finding.data is None
    confirm_report(Report(findings=[finding]))
    assert finding.probe["status"] == "not-probed"


# -- --probe-import ----------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, ["check", *args], catch_exceptions=False)


def test_probe_import_builds_the_codes_own_module_and_measures_its_weights():
    pytest.importorskip("torch")
    result = run(str(FIXTURES / "relu_irnn"), "--probe", "--probe-import", "--format", "json", "--no-cache")
    findings = json.loads(result.stdout)["findings"]
    for item in findings:
        notes = item["probe"]["notes"]
        assert any(note.startswith("measured the code's own module: IRNN(2, 100, 1, init_scale=1.5).rnn") for note in notes)
        assert item["probe"]["growth_per_step"] == pytest.approx(1.5, rel=0.02)
        assert item["probe"]["steps"] == 50


def test_probe_import_falls_back_to_the_rebuild_and_says_why(tmp_path):
    pytest.importorskip("torch")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "model.py").write_text(textwrap.dedent("""\
        import torch.nn as nn

        raise RuntimeError("needs the GPU cluster's config server")


        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.RNN(8, 64)
                nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=1.5)
                nn.init.zeros_(self.rnn.bias_ih_l0)
                nn.init.zeros_(self.rnn.bias_hh_l0)
        """))
    result = run(str(root), "--probe", "--probe-import", "--format", "json", "--no-cache")
    findings = json.loads(result.stdout)["findings"]
    gl301 = [f for f in findings if f["code"] == "GL301"][0]
    note = [n for n in gl301["probe"]["notes"] if n.startswith("--probe-import could not build")][0]
    assert "RuntimeError: needs the GPU cluster's config server" in note and "measured the rebuild instead" in note
    assert gl301["probe"]["status"] == "confirmed"  # the rebuild still measured it


def test_probe_import_runs_user_code_only_in_a_subprocess_with_a_timeout(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from gradlint.probe import ProbeOptions
    from gradlint.probe.real import measure_owned

    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(60)\n\nclass Model:\n    pass\n")
    answers = measure_owned([{"file": str(script), "class": "Model", "attribute": "rnn", "args": [], "kwargs": {},
                              "unresolved": [], "data": {}}], ProbeOptions(), timeout=3.0, memory_mb=2048)
    assert answers == [{"error": "building the code's own module timed out after 3 s"}]


def test_probe_import_is_opt_in_and_its_help_warns_about_untrusted_code():
    result = CliRunner().invoke(main, ["check", "--help"])
    text = " ".join(result.output.split())
    assert "--probe-import" in text and "never use it on untrusted pull requests" in text
    assert run(str(FIXTURES / "relu_irnn"), "--probe-import").exit_code == 2  # needs --probe
    assert Severity  # the default path never imports project code: see test_probe_check's no-torch tests


def test_probe_import_builds_a_factory_that_returns_the_layer(tmp_path):
    pytest.importorskip("torch")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "layers.py").write_text(textwrap.dedent("""\
        import torch.nn as nn


        def make_rnn(hidden=64):
            rnn = nn.RNN(8, hidden)
            nn.init.orthogonal_(rnn.weight_hh_l0, gain=1.5)
            nn.init.zeros_(rnn.bias_ih_l0)
            nn.init.zeros_(rnn.bias_hh_l0)
            return rnn


        encoder = make_rnn(hidden=32)
        """))
    result = run(str(root), "--probe", "--probe-import", "--format", "json", "--no-cache")
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["data"]["layer"]["owner"]["factory"] == "make_rnn"
    assert finding["data"]["layer"]["owner"]["kwargs"] == {"hidden": 32}
    assert any(n.startswith("measured the code's own module: make_rnn(hidden=32)") for n in finding["probe"]["notes"])
    assert finding["probe"]["growth_per_step"] == pytest.approx(1.5, rel=0.02)  # tanh, zero biases: the gain
    assert finding["probe"]["module"]["hidden_size"] == 32
