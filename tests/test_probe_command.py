"""`gradlint probe TARGET`: the user's factory runs in a subprocess; errors are theirs, exit 2."""

from __future__ import annotations

import importlib.util
import json
import textwrap

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from gradlint.cli import main  # noqa: E402

FACTORIES = textwrap.dedent(
    """
    import time

    import torch
    from torch import nn


    def irnn15():
        rnn = nn.RNN(16, 32, nonlinearity="relu", batch_first=True)
        with torch.no_grad():
            rnn.weight_hh_l0.copy_(torch.eye(32) * 1.5)
        return rnn


    def lstm():
        return nn.LSTM(16, 32)


    def _helper():
        raise ValueError("the user's factory is broken on purpose")


    def broken():
        return _helper()


    def sleepy():
        time.sleep(60)


    def mlp():
        return nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


    def huge():
        return nn.Linear(50_000, 50_000)  # 10 GB of float32 weights
    """
)


@pytest.fixture
def factory_file(tmp_path, monkeypatch):
    path = tmp_path / "models.py"
    path.write_text(FACTORIES, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return path


def _run(*args: str):
    result = CliRunner().invoke(main, ["probe", *args])
    return result.exit_code, result.stdout, result.stderr


def test_relu_rnn_with_identity_1_5_recurrence_explodes(factory_file):
    code, out, err = _run(f"{factory_file}:irnn15", "--format", "json", "--steps", "2")
    assert code == 0, err
    data = json.loads(out)
    assert data["verdict"] == "explodes"
    rec = data["recurrent"]
    assert rec["kind"] == "RNN" and rec["seq_len"] == 100 and rec["batch_first"] is True
    assert data["input_shape"] == [4, 100, 16]
    assert abs(rec["k"] - 1.5) < 0.1
    assert len(data["loss"]) == 2
    assert {p["name"] for p in data["parameters"]} == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}


def test_default_lstm_vanishes_via_module_form(factory_file):
    code, out, err = _run("models:lstm", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["recurrent"]["verdict"] == "vanishes"
    assert data["input_shape"] == [100, 4, 16]  # batch_first=False: (seq, batch, features)


def test_text_output_and_layer_ratio(factory_file):
    code, out, err = _run("models.py:mlp", "--input-shape", "4,8")
    assert code == 0, err
    assert "largest layer-to-layer ratio: 0 -> 2" in out
    assert "0.weight" in out


def test_exception_in_user_code_is_reported_with_their_traceback(factory_file):
    code, out, err = _run("models.py:broken")
    assert code == 2
    assert "the user's factory is broken on purpose" in err
    assert "Traceback (most recent call last)" in err
    assert "in _helper" in err and "models.py" in err
    assert "gradlint/probe/target.py" not in err and "gradlint/cli.py" not in err


def test_timeout(factory_file):
    code, out, err = _run("models.py:sleepy", "--timeout", "2")
    assert code == 2
    assert "timed out" in err


def test_a_model_beyond_the_memory_cap_is_not_probed_and_says_too_large(factory_file):
    code, out, err = _run("models.py:huge", "--memory-mb", "1024")
    assert code == 2
    assert "not probed" in err and "too large for the memory cap (1024 MiB)" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("target", ["models", "models.py:", ":factory", "no/such/file.py:f", "bad module:f"])
def test_bad_target_is_a_usage_error(factory_file, target):
    code, out, err = _run(target)
    assert code == 2
    assert "module:factory" in err or "no such file" in err


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_is_written(factory_file, tmp_path, suffix):
    pytest.importorskip("matplotlib")
    plot = tmp_path / f"out.{suffix}"
    code, out, err = _run("models.py:irnn15", "--steps", "1", "--plot", str(plot))
    assert code == 0, err
    assert plot.is_file() and plot.stat().st_size > 1000
    assert str(plot) in out


def test_plot_without_matplotlib_gives_the_install_hint(factory_file, tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a)
    )
    plot = tmp_path / "out.png"
    code, out, err = _run("models.py:irnn15", "--steps", "1", "--plot", str(plot))
    assert code == 2
    assert "pip install 'torch-gradlint[plot]'" in err
    assert not plot.exists()


def test_cuda_without_gpu_is_a_clear_error(factory_file):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is available")
    code, out, err = _run("models.py:lstm", "--device", "cuda")
    assert code == 2
    assert "CUDA is not available" in err
