"""Specification tests for the weight-initialization rules: GL301 (large weight init) and GL302
(unscaled random parameter), and for the weight facts they share (`gradlint.analysis.tensors`, `gradlint.analysis.inits`, `gradlint.index.weights`).

The expected gain of an n x n matrix is its typical stretch of a vector: s * sqrt(n) for entries of
std s, a * sqrt(n/3) for U(-a, a), the gain of an orthogonal or identity init, |c| * n for a
constant matrix. Lines come from the snippets (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import json
import math

import pytest
from snippets import at, dedent, lines, lint, only


def as_json(finding) -> dict:
    return json.loads(json.dumps(finding.data, allow_nan=False))


def module(init: str, layer: str = "nn.RNN(64, 256, batch_first=True)", extra: str = "") -> str:
    """A recurrent module whose __init__ ends with `init` (indented for the method body)."""
    body = "\n".join(f"        {line}" for line in dedent(init).strip().splitlines())
    extra = "\n".join(f"    {line}" if line else "" for line in dedent(extra).splitlines())
    return dedent(
        """\
        import math
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = {layer}
                self.fc = nn.Linear(256, 256)
                self.out = nn.Linear(256, 10)
        {body}
        {extra}
            def forward(self, x):
                out, _ = self.rnn(x)
                return self.out(self.fc(out))
        """
    ).format(layer=layer, body=body, extra=extra)


# =========================================================================== GL301 positives


@pytest.mark.parametrize(
    "init, needle, gain, formula",
    [
        ("nn.init.normal_(self.rnn.weight_hh_l0, std=0.5)", "normal_", 8.0, "std=0.5 * sqrt(256) = 8.0"),
        ("nn.init.normal_(self.rnn.weight_hh_l0, 0.0, 0.5)", "normal_", 8.0, "std=0.5 * sqrt(256) = 8.0"),
        ("nn.init.normal_(self.rnn.weight_hh_l0)", "normal_", 16.0, "std=1.0 * sqrt(256) = 16.0"),
        ("nn.init.uniform_(self.rnn.weight_hh_l0, -0.2, 0.2)", "uniform_", 0.2 * math.sqrt(256 / 3), "a=0.2 * sqrt(256/3)"),
        ("nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=1.5)", "orthogonal_", 1.5, "gain=1.5"),
        ("torch.nn.init.xavier_uniform_(self.rnn.weight_hh_l0, gain=2.0)", "xavier_uniform_", 2.0, "gain=2.0"),
        ("nn.init.constant_(self.rnn.weight_hh_l0, 0.01)", "constant_", 2.56, "|0.01| * n=256 = 2.56"),
        ("nn.init.ones_(self.fc.weight)", "ones_", 256.0, "1 * n=256"),
        ("self.rnn.weight_hh_l0.data.normal_(0, 0.1)", "normal_", 1.6, "std=0.1 * sqrt(256) = 1.6"),
        ("self.rnn.weight_hh_l0.data.uniform_(-0.5, 0.5)", "uniform_", 0.5 * math.sqrt(256 / 3), "a=0.5"),
        ("self.fc.weight.data.fill_(0.01)", "fill_", 2.56, "|0.01| * n=256"),
        ("nn.init.normal_(self.fc.weight, std=0.1)", "normal_", 1.6, "std=0.1 * sqrt(256) = 1.6"),
    ],
)
def test_an_init_with_gain_above_one_is_reported_at_the_call(init, needle, gain, formula):
    code = module(init)
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, needle)
    assert finding.data["gain"] == pytest.approx(gain, rel=1e-3)
    assert finding.data["n"] == 256
    assert formula in finding.message
    assert f"{round(gain, 2):g}"[:3] in finding.message


def test_identity_then_scale_is_reported_at_the_scaling_with_the_product():
    code = module(
        """
        nn.init.eye_(self.rnn.weight_hh_l0)
        self.rnn.weight_hh_l0.data.mul_(1.5)
        """
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "mul_(1.5)")
    assert "identity (gain 1), then * 1.5 = 1.5" in finding.message
    assert finding.data["gain"] == 1.5 and finding.data["init"] == "eye_"


def test_in_place_multiplication_of_a_weight_with_an_unknown_init_reports_the_factor():
    code = module(
        """
        with torch.no_grad():
            self.rnn.weight_hh_l0 *= 2.0
        """
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "*= 2.0")
    assert finding.data["gain"] == 2.0
    assert "prior init" in finding.data["unresolved"]
    assert "unknown gain" in finding.message


def test_the_recurrent_size_of_an_lstm_is_its_hidden_size_not_four_times_it():
    code = module("nn.init.normal_(self.rnn.weight_hh_l0, std=0.1)", layer="nn.LSTM(64, 128)")
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.data["n"] == 128
    assert finding.data["gain"] == pytest.approx(0.1 * math.sqrt(128), abs=1e-3)
    assert finding.data["layer"]["layer"] == "LSTM" and finding.data["layer"]["hidden_size"] == 128


def test_a_later_scaling_does_not_hide_a_gain_that_stays_above_one():
    code = module(
        """
        nn.init.normal_(self.rnn.weight_hh_l0, std=0.5)
        self.rnn.weight_hh_l0.data.mul_(0.5)
        """
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "normal_")
    assert finding.data["gain"] == pytest.approx(4.0)
    assert "then * 0.5 = 4.0" in finding.message


def test_a_named_parameters_loop_filtered_to_weight_hh_targets_the_recurrent_matrix():
    code = module(
        """
        for name, param in self.rnn.named_parameters():
            if "weight_ih" in name:
                nn.init.normal_(param, std=1.0)
            elif "weight_hh" in name:
                nn.init.orthogonal_(param, gain=3.0)
            elif "bias" in name:
                param.data.fill_(1.0)
        """,
        layer="nn.GRU(64, 256)",
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "gain=3.0")
    assert finding.data["gain"] == 3.0 and finding.data["target"] == "rnn.weight_hh"


def test_a_square_parameter_built_empty_then_drawn_with_a_large_std():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class Cell(nn.Module):
            def __init__(self, hidden=512):
                super().__init__()
                self.W = nn.Parameter(torch.empty(hidden, hidden))
                self.b = nn.Parameter(torch.zeros(hidden))
                nn.init.normal_(self.W, std=0.2)
                nn.init.normal_(self.b, std=0.2)
        """
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "normal_(self.W")
    assert finding.data["n"] == 512 and finding.data["target"] == "W"
    assert finding.data["gain"] == pytest.approx(0.2 * math.sqrt(512), abs=1e-3)


def test_a_parameter_created_as_a_scaled_identity_or_scaled_randn():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class Cell(nn.Module):
            def __init__(self, n=400):
                super().__init__()
                self.A = nn.Parameter(torch.eye(n) * 1.2)
                self.B = nn.Parameter(torch.randn(n, n) * 0.1)
                self.C = nn.Parameter(torch.randn(n, n) * 0.01)
        """
    )
    findings = lint(code, "GL301")
    assert lines(findings, "GL301") == [at(code, "self.A"), at(code, "self.B")]
    gains = sorted(f.data["gain"] for f in findings)
    assert gains == [pytest.approx(1.2), pytest.approx(2.0)]


def test_branches_are_separate_scenarios():
    code = module(
        """
        if self.init_scheme == "normal":
            nn.init.normal_(self.rnn.weight_hh_l0, std=1.0)
        else:
            nn.init.orthogonal_(self.rnn.weight_hh_l0)
        """
    )
    assert lines(lint(code, "GL301"), "GL301") == [at(code, "std=1.0")]


def test_data_is_json_and_names_the_layer_configuration():
    code = module("nn.init.normal_(self.rnn.weight_hh_l0, std=0.5)", layer='nn.RNN(64, 256, 2, nonlinearity="relu")')
    data = as_json(only(lint(code, "GL301"), "GL301"))
    assert data["init"] == "normal_" and data["std"] == 0.5 and data["n"] == 256 and data["gain"] == 8.0
    assert data["target"] == "rnn.weight_hh_l0"
    assert data["layer"]["nonlinearity"] == "relu" and data["layer"]["num_layers"] == 2
    assert data["layer"]["where"] == "train.py:9"
    assert data["unresolved"] == []


# =========================================================================== GL301 negatives


@pytest.mark.parametrize(
    "init",
    [
        "nn.init.normal_(self.rnn.weight_hh_l0, std=0.05)",  # 0.8
        "nn.init.normal_(self.rnn.weight_hh_l0, std=1 / math.sqrt(256))",  # exactly 1
        "nn.init.orthogonal_(self.rnn.weight_hh_l0)",
        "nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=1.0)",
        "nn.init.eye_(self.rnn.weight_hh_l0)",
        "nn.init.eye_(self.rnn.weight_hh_l0)\nself.rnn.weight_hh_l0.data.mul_(0.9)",
        "nn.init.normal_(self.rnn.weight_hh_l0, std=1.0)\nself.rnn.weight_hh_l0.data.mul_(0.01)",
        "nn.init.normal_(self.rnn.weight_ih_l0, std=1.0)",  # (256, 64): not square
        "nn.init.normal_(self.out.weight, std=1.0)",  # nn.Linear(256, 10): not square
        "nn.init.constant_(self.rnn.bias_hh_l0, 1.0)",
        "self.rnn.bias_hh_l0.data.fill_(1.0)",
        "nn.init.kaiming_normal_(self.rnn.weight_hh_l0)",
        "nn.init.xavier_uniform_(self.fc.weight, gain=2.0)",  # only recurrent matrices for xavier's gain
        "nn.init.zeros_(self.rnn.weight_hh_l0)",
        "for name, p in self.rnn.named_parameters():\n    if 'weight_hh' not in name:\n        nn.init.normal_(p, std=1.0)",
        "self.scale = torch.ones(10)\nself.scale.mul_(2.0)",  # not a weight
    ],
)
def test_an_init_with_gain_at_most_one_or_on_another_tensor_is_quiet(init):
    assert lint(module(init), "GL301") == []


def test_a_large_init_then_a_reinit_in_a_method_called_later_is_quiet():
    code = module(
        "nn.init.normal_(self.rnn.weight_hh_l0, std=1.0)\nself.reset_parameters()",
        extra="""
            def reset_parameters(self):
                nn.init.orthogonal_(self.rnn.weight_hh_l0)
            """,
    )
    assert lint(code, "GL301") == []


def test_scaling_inside_forward_is_not_an_init():
    code = dedent(
        """\
        import torch.nn as nn


        class Net(nn.Module):
            def forward(self, x):
                x = self.proj(x)
                x *= 2.0
                return x
        """
    )
    assert lint(code, "GL301") == []


# =========================================================================== GL301 unresolved values


def test_an_unresolved_hidden_size_keeps_size_dependent_inits_quiet():
    code = dedent(
        """\
        import json
        import torch.nn as nn

        config = json.load(open("config.json"))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.RNN(32, config["hidden"])
                nn.init.normal_(self.rnn.weight_hh_l0, std=0.5)
        """
    )
    assert lint(code, "GL301") == []


def test_an_unresolved_hidden_size_still_reports_a_gain_that_does_not_depend_on_it():
    code = dedent(
        """\
        import json
        import torch.nn as nn

        config = json.load(open("config.json"))


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.RNN(32, config["hidden"])
                nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=2.0)
        """
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.data["n"] is None and "hidden_size" in finding.data["unresolved"]
    assert finding.data["gain"] == 2.0


@pytest.mark.parametrize(
    "init",
    [
        "nn.init.normal_(self.rnn.weight_hh_l0, std=self.cfg.init_std)",
        "nn.init.eye_(self.rnn.weight_hh_l0)\nself.rnn.weight_hh_l0.data.mul_(self.cfg.scale)",
        "nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=nn.init.calculate_gain('tanh'))",
    ],
)
def test_an_unresolved_std_scale_or_gain_is_quiet(init):
    assert lint(module(init), "GL301") == []


# =========================================================================== GL301 across files


MODEL = dedent(
    """\
    import torch.nn as nn


    class IRNN(nn.Module):
        def __init__(self, input_size, hidden_size, init_scale=1.0):
            super().__init__()
            self.rnn = nn.RNN(input_size, hidden_size, nonlinearity="relu")
            nn.init.eye_(self.rnn.weight_hh_l0)
            self.rnn.weight_hh_l0.data.mul_(init_scale)
    """
)

TRAIN = dedent(
    """\
    import argparse

    from model import IRNN

    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--init-scale", type=float, default={scale})
    args = parser.parse_args()
    model = IRNN(2, args.hidden_size, init_scale=args.init_scale)
    """
)


def test_a_constructor_argument_resolves_through_the_call_site_and_argparse_in_another_file():
    findings = lint(TRAIN.format(scale=1.5), "GL301", extra={"model.py": MODEL})
    finding = only(findings, "GL301")
    assert finding.display_path == "model.py" and finding.line == at(MODEL, "mul_")
    assert finding.data["gain"] == 1.5 and finding.data["n"] == 128
    assert "--init-scale" in finding.message and "--hidden-size" in finding.message


def test_the_default_scale_passed_from_another_file_is_quiet():
    assert lint(TRAIN.format(scale=1.0), "GL301", extra={"model.py": MODEL}) == []


def test_an_init_in_the_training_script_finds_the_layer_of_a_model_class_in_another_file():
    model = dedent(
        """\
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self, hidden=300):
                super().__init__()
                self.gru = nn.GRU(64, hidden)
        """
    )
    train = dedent(
        """\
        import torch.nn as nn

        from model import Encoder

        encoder = Encoder().cuda()
        nn.init.orthogonal_(encoder.gru.weight_hh_l0, gain=1.3)
        nn.init.orthogonal_(encoder.gru.weight_ih_l0, gain=1.3)
        """
    )
    finding = only(lint(train, "GL301", extra={"model.py": model}), "GL301")
    assert finding.display_path == "train.py" and finding.line == at(train, "weight_hh_l0")
    assert finding.data["n"] == 300 and finding.data["target"] == "encoder.gru.weight_hh_l0"
    assert "model.py:7" in finding.message


# =========================================================================== GL302


def cell(weight: str, extra: str = "", signature: str = "input_size=16, hidden_size=64") -> str:
    body = "\n".join(f"        {line}" for line in dedent(extra).strip().splitlines()) if extra.strip() else ""
    return dedent(
        """\
        import math
        import torch
        import torch.nn as nn


        class Cell(nn.Module):
            def __init__(self, {signature}):
                super().__init__()
                n = hidden_size
                self.W_hh = {weight}
                self.W_xh = nn.Linear(input_size, hidden_size)
        {body}

            def forward(self, x, h):
                return torch.tanh(h @ self.W_hh + self.W_xh(x))
        """
    ).format(weight=weight, body=body, signature=signature)


@pytest.mark.parametrize(
    "weight, gain, words",
    [
        ("nn.Parameter(torch.randn(hidden_size, hidden_size))", 8.0, "sqrt(n) = sqrt(64) = 8.0"),
        ("nn.Parameter(torch.randn((n, n)))", 8.0, "sqrt(64)"),
        ("nn.Parameter(torch.randn(size=(n, n), dtype=torch.float32))", 8.0, "sqrt(64)"),
        ("nn.Parameter(torch.randn(n, n).to('cuda'))", 8.0, "N(0, 1)"),
        ("torch.nn.Parameter(torch.rand(n, n))", 32.0, "n/2 = 32"),
        ("nn.Parameter(torch.empty(n, n).normal_())", 8.0, "default std=1"),
        ("torch.randn(n, n, requires_grad=True)", 8.0, "sqrt(64)"),
    ],
)
def test_an_unscaled_square_random_weight_is_reported(weight, gain, words):
    code = cell(weight)
    finding = only(lint(code, "GL302"), "GL302")
    assert finding.line == at(code, "self.W_hh =")
    assert finding.data["n"] == 64 and finding.data["gain"] == pytest.approx(gain)
    assert finding.data["target"] == "W_hh" and finding.data["unresolved"] == []
    assert words in finding.message


@pytest.mark.parametrize(
    "weight",
    [
        "nn.Parameter(torch.randn(n, n) * 0.01)",
        "nn.Parameter(torch.randn(n, n) / math.sqrt(n))",
        "nn.Parameter(0.1 * torch.randn(n, n))",
        "nn.Parameter(torch.randn(n, n).mul(0.1))",
        "nn.Parameter(torch.randn(n, input_size))",  # 64 x 16: not square
        "nn.Parameter(torch.randn(n))",
        "nn.Parameter(torch.empty(n, n))",
        "nn.Parameter(torch.empty(n, n).normal_(0, 0.01))",
        "torch.randn(n, n)",  # not a parameter
    ],
)
def test_a_scaled_non_square_or_non_trainable_draw_is_quiet(weight):
    assert lint(cell(weight), "GL302") == []


@pytest.mark.parametrize(
    "extra",
    [
        "self.W_hh.data.mul_(0.01)",
        "nn.init.orthogonal_(self.W_hh)",
        "with torch.no_grad():\n    self.W_hh /= math.sqrt(n)",
        "self.W_hh.data.normal_(0, 1 / math.sqrt(n))",
    ],
)
def test_a_later_rescaling_in_init_counts_as_scaling(extra):
    assert lint(cell("nn.Parameter(torch.randn(n, n))", extra), "GL302") == []


def test_a_reset_parameters_method_or_a_loop_over_own_parameters_counts_as_scaling():
    reset = cell("nn.Parameter(torch.randn(n, n))") + (
        "\n"
        "    def reset_parameters(self):\n"
        "        nn.init.orthogonal_(self.W_hh)\n"
    )
    loop = cell("nn.Parameter(torch.randn(n, n))") + (
        "\n"
        "    def reset_parameters(self):\n"
        "        std = 1.0 / math.sqrt(self.hidden_size)\n"
        "        for weight in self.parameters():\n"
        "            nn.init.uniform_(weight, -std, std)\n"
    )
    assert lint(cell("nn.Parameter(torch.randn(n, n))"), "GL302") != []
    assert lint(reset, "GL302") == []
    assert lint(loop, "GL302") == []


def test_gain_at_most_one_is_quiet():
    assert lint(cell("nn.Parameter(torch.randn(1, 1))"), "GL302") == []
    assert lint(cell("nn.Parameter(torch.rand(2, 2))"), "GL302") == []


def test_a_requires_grad_tensor_is_a_weight_only_when_kept_or_trained():
    script = dedent(
        """\
        import torch

        n = 128
        W = torch.randn(n, n, requires_grad=True)
        U = torch.randn(n, 10, requires_grad=True)
        x = torch.randn(n, n, requires_grad=True)
        optimizer = torch.optim.SGD([W, U], lr=0.01)
        torch.autograd.gradcheck(torch.sin, (x,))
        h = torch.zeros(8, n)
        for t in range(50):
            h = torch.tanh(h @ W + x[t, :8].unsqueeze(1) @ U.t()[:1, :])
        """
    )
    finding = only(lint(script, "GL302"), "GL302")
    assert finding.line == at(script, "W = torch.randn")
    assert finding.data["n"] == 128


def test_an_unresolved_square_size_is_reported_without_a_number():
    code = cell("nn.Parameter(torch.randn(hidden_size, hidden_size))", signature="input_size, hidden_size")
    finding = only(lint(code, "GL302"), "GL302")
    assert finding.data["n"] is None and finding.data["unresolved"] == ["n"]
    assert "about sqrt(n)" in finding.message and "sqrt(64)" not in finding.message


def test_an_unresolved_pair_of_different_sizes_is_quiet():
    code = cell("nn.Parameter(torch.randn(hidden_size, input_size))", signature="input_size, hidden_size")
    assert lint(code, "GL302") == []


def test_gl302_size_resolves_through_another_file_and_gl301_leaves_it_alone():
    model = cell("nn.Parameter(torch.randn(hidden_size, hidden_size))", signature="input_size, hidden_size")
    train = dedent(
        """\
        import argparse

        from model import Cell

        parser = argparse.ArgumentParser()
        parser.add_argument("--hidden", type=int, default=100)
        args = parser.parse_args()
        model = Cell(8, args.hidden)
        """
    )
    findings = lint(train, "GL301", "GL302", extra={"model.py": model})
    finding = only(findings, "GL302")
    assert finding.display_path == "model.py"
    assert finding.data["n"] == 100 and finding.data["gain"] == 10.0
    assert "--hidden" in finding.message


# =========================================================================== GL301 through the init program


def lstm_module(body: str) -> str:
    lines = "\n".join(f"        {line}" if line else "" for line in dedent(body).splitlines())
    return dedent(
        """\
        import torch
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self, hidden=128):
                super().__init__()
                self.hidden = hidden
                self.lstm = nn.LSTM(16, hidden)
                self.head = nn.Linear(hidden, 2)
        {body}
        """
    ).format(body=lines)


def test_a_named_parameters_loop_over_every_parameter_reaches_the_recurrent_matrix():
    code = module("for name, p in self.rnn.named_parameters():\n    nn.init.normal_(p, std=1.0)")
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "nn.init.normal_(p, std=1.0)")
    assert "rnn.weight_hh_l0" in finding.message and "std=1 * sqrt(256) = 16" in finding.message


def test_per_gate_chunks_of_an_lstm_are_reported_with_the_gain_of_each_block():
    code = lstm_module(
        """\
        for name, param in self.lstm.named_parameters():
            if "weight_hh" in name:
                for block in param.chunk(4, 0):
                    nn.init.orthogonal_(block, gain=3.0)
        """
    )
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "gain=3.0")
    assert "128 x 128 per gate block" in finding.message and "an expected gain of 3.0" in finding.message
    assert finding.data["target"] == "lstm.weight_hh_l0" and finding.data["gain"] == 3.0


LSTM_CLASS = """\
import torch
import torch.nn as nn


class Encoder(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTM(16, hidden)
        self.head = nn.Linear(hidden, 2)
        {call}

{method}
"""


def test_an_init_applied_through_self_apply_with_isinstance_dispatch_is_reported():
    method = """\
    def _init(self, m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM):
            for name, p in m.named_parameters():
                if "weight_hh" in name:
                    nn.init.normal_(p, std=0.3)
"""
    code = LSTM_CLASS.format(call="self.apply(self._init)", method=method)
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "std=0.3")
    assert "(in `_init()`)" in finding.message and "std=0.3 * sqrt(128) = 3.39" in finding.message


def test_an_init_weights_method_copying_a_scaled_identity_is_reported():
    method = """\
    def init_weights(self):
        with torch.no_grad():
            for gate in range(4):
                block = self.lstm.weight_hh_l0[gate * self.hidden:(gate + 1) * self.hidden]
                block.copy_(torch.eye(self.hidden) * 1.5)
"""
    code = LSTM_CLASS.format(call="self.init_weights()", method=method)
    finding = only(lint(code, "GL301"), "GL301")
    assert finding.line == at(code, "block.copy_")
    assert "identity * 1.5" in finding.message


def test_a_whole_lstm_xavier_init_keeps_each_gate_block_below_one():
    # xavier on the (4h, h) matrix: std = gain * sqrt(2 / 5h), each h x h block ~ gain * sqrt(2/5).
    code = lstm_module(
        """\
        for name, p in self.lstm.named_parameters():
            if "weight" in name:
                nn.init.xavier_uniform_(p, gain=1.5)
        """
    )
    assert lint(code, "GL301") == []


def test_an_init_under_a_test_gradlint_cannot_evaluate_is_not_reported():
    code = lstm_module(
        """\
        for name, p in self.lstm.named_parameters():
            if torch.cuda.is_available():
                nn.init.orthogonal_(p, gain=3.0)
        """
    )
    assert lint(code, "GL301") == []


# =========================================================================== GL302 needs a matrix use


def test_a_square_random_parameter_that_is_only_indexed_and_added_is_quiet():
    # A CRF's transition scores: added to log-potentials, never multiplied into a state.
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class CRF(nn.Module):
            def __init__(self, num_tags=5):
                super().__init__()
                self.transitions = nn.Parameter(torch.randn(num_tags, num_tags))

            def score(self, feats, tags):
                score = torch.zeros(1)
                for i, feat in enumerate(feats):
                    score = score + self.transitions[tags[i + 1], tags[i]] + feat[tags[i + 1]]
                return score
        """
    )
    assert lint(code, "GL302") == []


def test_square_random_parameters_whose_gradients_a_unit_test_assigns_by_hand_are_quiet():
    code = dedent(
        """\
        import torch


        def test_grad_norm_groups():
            params = [torch.nn.Parameter(torch.randn(4, 4)) for _ in range(2)]
            main = torch.nn.Parameter(torch.randn(4, 4))
            for p in params + [main]:
                p.grad = torch.randn_like(p)
            norm = torch.nn.utils.clip_grad_norm_(params + [main], 1.0)
            assert norm > 0
        """
    )
    assert lint(code, "GL302") == []


def test_a_square_random_weight_multiplied_once_in_a_script_is_info():
    code = dedent(
        """\
        import torch

        n = 64
        W = torch.randn(n, n, requires_grad=True)
        optimizer = torch.optim.SGD([W], lr=0.1)
        y = torch.randn(8, n) @ W
        """
    )
    finding = only(lint(code, "GL302"), "GL302")
    assert finding.severity.label == "info" and "multiplies by it once" in finding.message
    assert finding.data["layer"] == dict(finding.data["layer"], layer="MLP", depth=1)


def test_a_square_random_weight_in_a_test_file_is_info_even_in_a_loop():
    code = cell("nn.Parameter(torch.randn(hidden_size, hidden_size))")
    findings = lint("", "GL302", extra={"tests/test_cell.py": code})
    finding = only(findings, "GL302")
    assert finding.display_path == "tests/test_cell.py" and finding.severity.label == "info"


def test_the_unscaled_recurrent_matrix_of_a_hand_written_loop_carries_its_recurrence():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class Elman(nn.Module):
            def __init__(self, hidden=64):
                super().__init__()
                self.W_hh = nn.Parameter(torch.randn(hidden, hidden))
                self.W_xh = nn.Linear(10, hidden)

            def forward(self, x):
                h = torch.zeros(x.size(1), self.W_hh.size(0))
                for t in range(x.size(0)):
                    h = torch.tanh(h @ self.W_hh + self.W_xh(x[t]))
                return h
        """
    )
    finding = only(lint(code, "GL302"), "GL302")
    assert finding.severity.label == "warning"
    assert "applies it to a state the loop carries" in finding.message
    layer = finding.data["layer"]
    assert (layer["layer"], layer["nonlinearity"], layer["hidden_size"]) == ("RNNCell", "tanh", 64)
