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


    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
            self.head = nn.Linear(8, 10)

        def forward(self, images):
            return self.head(self.features(images).mean((2, 3)))


    def cnn():
        return Classifier()


    class LanguageModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(100, 16)
            self.rnn = nn.RNN(16, 32, nonlinearity="relu", batch_first=True)
            with torch.no_grad():
                self.rnn.weight_hh_l0.copy_(torch.eye(32) * 1.5)
            self.out = nn.Linear(32, 100)

        def forward(self, tokens):
            return self.out(self.rnn(self.embed(tokens))[0])


    def language_model():
        return LanguageModel()


    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 6, 5)
            self.fc = nn.Linear(6 * 24 * 24, 10)  # for 28x28 digits

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))


    def lenet():
        return LeNet()


    def lazy():
        return nn.Sequential(nn.LazyLinear(4), nn.ReLU())
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
    assert code == 1, err  # the gate: an explosion fails the command
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
    code, out, err = _run("models.py:irnn15", "--steps", "1", "--plot", str(plot), "--exit-zero")
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


# ---------------------------------------------------------------- the gate

def test_probe_exits_1_when_the_gradients_explode_and_0_with_exit_zero(factory_file):
    code, out, err = _run("models.py:irnn15", "--steps", "1")
    assert code == 1, err
    assert "explodes" in out
    code, _, err = _run("models.py:irnn15", "--steps", "1", "--exit-zero")
    assert code == 0, err


def test_probe_exits_0_when_the_gradients_do_not_explode(factory_file):
    code, out, err = _run("models:lstm", "--steps", "1")
    assert code == 0, err
    assert "vanishes" in out


def test_the_gate_is_in_the_help():
    result = CliRunner().invoke(main, ["probe", "--help"])
    assert "--exit-zero" in result.stdout and '1 the verdict is "explodes"' in " ".join(result.stdout.split())


# ---------------------------------------------------------------- the input, read from the first layer

def test_a_convolutional_model_gets_an_image_batch_from_its_first_conv(factory_file):
    code, out, err = _run("models.py:cnn", "--format", "json", "--steps", "1")
    assert code == 0, err
    data = json.loads(out)
    assert data["input_shape"] == [8, 3, 32, 32]
    assert "nn.Conv2d `features.0` (in_channels=3)" in data["input"]
    assert data["recurrent"] is None and data["verdict"] is None


def test_an_mlp_gets_its_first_linears_in_features(factory_file):
    code, out, err = _run("models.py:mlp", "--format", "json", "--steps", "1")
    assert code == 0, err
    assert json.loads(out)["input_shape"] == [8, 8]


def test_an_embedding_gets_integer_tokens_and_the_rnn_behind_it_is_measured(factory_file):
    code, out, err = _run("models.py:language_model", "--format", "json", "--steps", "1")
    assert code == 1, err  # relu recurrence at gain 1.5: explodes
    data = json.loads(out)
    assert data["input_shape"] == [8, 32] and "integer tokens below 100" in data["input"]
    rec = data["recurrent"]
    assert rec["module"] == "rnn" and rec["seq_len"] == 32 and abs(rec["k"] - 1.5) < 0.1


def test_a_first_layer_that_says_nothing_stops_before_running_and_asks_for_input_shape(factory_file):
    code, out, err = _run("models.py:lazy")
    assert code == 2 and out == ""
    assert "nn.LazyLinear" in err and "pass --input-shape" in err
    assert "Traceback" not in err


def test_a_forward_failing_on_the_inferred_input_says_so_without_a_traceback(factory_file):
    code, out, err = _run("models.py:lenet")
    assert code == 2
    assert "failed on the input inferred from the first layer, nn.Conv2d `conv` (in_channels=1)" in err
    assert "shape [8, 1, 32, 32]" in err and "pass --input-shape" in err
    assert "Traceback" not in err
    code, out, err = _run("models.py:lenet", "--input-shape", "8,1,28,28", "--steps", "1")
    assert code == 0, err
