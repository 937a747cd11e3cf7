"""Specification tests for the model rules: GL201 (deep vanilla RNN), GL202 (relu recurrence),
GL203 (long-unrolled vanilla RNN) and GL204 (deep unnormalized stack), and for the layer facts
they share (`gradlint.analysis.layers`).

Every finding carries the resolved configuration as `data`; a later tool rebuilds the module from
it, so the tests check it is complete and JSON-serialisable. Lines come from the snippets
(`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import json

import libcst as cst
import pytest
from snippets import at, dedent, lines, lint, only

from gradlint.analysis.layers import bound_arguments, json_value, layer_kind


def as_json(finding) -> dict:
    """The finding's data after a JSON round trip (fails on anything JSON cannot hold)."""
    return json.loads(json.dumps(finding.data, allow_nan=False))


TRAIN_LOOP = """
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
"""


# =========================================================================== layer facts


def _call(source: str) -> cst.Call:
    expression = cst.parse_expression(source)
    assert isinstance(expression, cst.Call)
    return expression


def test_positional_arguments_are_mapped_to_torch_parameter_names():
    passed, opaque = bound_arguments(_call('nn.RNN(64, 128, 4, "relu", False, True)'), "RNN")
    assert {name: cst.Module([]).code_for_node(value) for name, value in passed.items()} == {
        "input_size": "64", "hidden_size": "128", "num_layers": "4",
        "nonlinearity": '"relu"', "bias": "False", "batch_first": "True",
    }
    assert opaque == set()
    cell, _ = bound_arguments(_call('nn.RNNCell(8, 16, True, "relu")'), "RNNCell")
    assert cst.Module([]).code_for_node(cell["nonlinearity"]) == '"relu"'
    linear, _ = bound_arguments(_call("nn.Linear(4, 8, False)"), "Linear")
    assert set(linear) == {"in_features", "out_features", "bias"}


def test_star_arguments_make_the_missing_parameters_unknown_not_defaults():
    _, opaque = bound_arguments(_call("nn.RNN(64, *rest)"), "RNN")
    assert "num_layers" in opaque and "input_size" not in opaque
    passed, opaque = bound_arguments(_call("nn.RNN(64, 128, **kwargs)"), "RNN")
    assert set(passed) == {"input_size", "hidden_size"} and "nonlinearity" in opaque


def test_layer_kinds_are_torch_nn_classes_only():
    assert layer_kind("torch.nn.RNN") == "RNN"
    assert layer_kind("torch.nn.modules.rnn.RNNCell") == "RNNCell"
    assert layer_kind("torch.nn.Conv2d") == "Conv2d"
    assert layer_kind("torch.nn.quantized.dynamic.LSTM") is None
    assert layer_kind("mylib.RNN") is None and layer_kind(None) is None


def test_json_value_keeps_only_what_json_can_hold():
    assert json_value((3, 3)) == [3, 3]
    assert json_value(float("inf")) is None
    assert json_value({"a": 1}) is None
    assert json_value("relu") == "relu" and json_value(True) is True


# =========================================================================== GL201


def test_deep_rnn_is_reported_at_the_constructor_with_its_configuration():
    code = dedent(
        """\
        import torch.nn as nn

        rnn = nn.RNN(64, 128, 4, batch_first=True)
        """
    )
    finding = only(lint(code, "GL201"), "GL201")
    assert finding.line == at(code, "nn.RNN(")
    assert "4 vanilla tanh layers" in finding.message
    assert "nn.LSTM" in (finding.hint or "")
    assert as_json(finding) == {
        "layer": "RNN", "input_size": 64, "hidden_size": 128, "num_layers": 4, "nonlinearity": "tanh",
        "bias": True, "batch_first": True, "dropout": 0.0, "bidirectional": False, "unresolved": [],
    }


def test_depth_from_argparse_says_where_it_comes_from():
    code = dedent(
        """\
        import argparse
        import torch.nn as nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--n-layers", type=int, default=5)
        args = parser.parse_args()
        rnn = nn.RNN(32, 32, num_layers=args.n_layers, nonlinearity="relu")
        """
    )
    finding = only(lint(code, "GL201"), "GL201")
    assert finding.line == at(code, "nn.RNN(")
    assert f"num_layers=5 (argparse default of --n-layers (train.py:{at(code, '--n-layers')}))" in finding.message
    assert finding.data["nonlinearity"] == "relu"


def test_constructor_parameter_resolves_through_the_call_site_in_another_file():
    model = dedent(
        """\
        import torch.nn as nn


        class CharRNN(nn.Module):
            def __init__(self, vocab, hidden, nlayers, dropout=0.1):
                super().__init__()
                self.embed = nn.Embedding(vocab, hidden)
                self.rnn = nn.RNN(hidden, hidden, nlayers, dropout=dropout)
                self.head = nn.Linear(hidden, vocab)
        """
    )
    train = dedent(
        """\
        import argparse
        from model import CharRNN

        parser = argparse.ArgumentParser()
        parser.add_argument("--nlayers", type=int, default=3)
        parser.add_argument("--hidden", type=int, default=256)
        args = parser.parse_args()
        model = CharRNN(96, args.hidden, args.nlayers)
        """
    )
    findings = lint(train, "GL201", extra={"model.py": model})
    assert lines(findings, "GL201", "model.py") == [at(model, "nn.RNN(")]
    assert lines(findings, "GL201", "train.py") == []
    finding = only(findings, "GL201")
    assert "argparse default of --nlayers (train.py:5)" in finding.message
    data = as_json(finding)
    assert (data["input_size"], data["hidden_size"], data["num_layers"], data["dropout"]) == (256, 256, 3, 0.1)


@pytest.mark.parametrize(
    "layer",
    [
        "nn.RNN(64, 128, 2)",
        "nn.RNN(64, 128)",
        "nn.LSTM(64, 128, 4)",
        "nn.GRU(64, 128, num_layers=6)",
        "nn.RNN(64, 128, num_layers=cfg['layers'])",
        "nn.RNN(64, 128, **cfg)",
    ],
    ids=["two-layers", "default-depth", "lstm", "gru", "unresolved", "kwargs"],
)
def test_shallow_gated_or_unresolved_rnns_are_quiet(layer):
    code = f"import json\nimport torch.nn as nn\n\ncfg = json.load(open('x.json'))\nrnn = {layer}\n"
    assert lint(code, "GL201") == []


def test_max_layers_option_raises_the_bar():
    code = "import torch.nn as nn\n\nrnn = nn.RNN(8, 8, 4)\n"
    assert lint(code, "GL201", rule_options={"GL201": {"max-layers": 5}}) == []
    assert len(lint(code, "GL201", rule_options={"GL201": {"max-layers": 4}})) == 1


CELL_STACKS = {
    "module-list-comprehension": """\
        self.cells = nn.ModuleList([nn.RNNCell(hidden, hidden) for _ in range(depth)])
    """,
    "append-loop": """\
        self.cells = nn.ModuleList()
        for i in range(depth):
            self.cells.append(nn.RNNCell(hidden, hidden))
    """,
}


@pytest.mark.parametrize("build", list(CELL_STACKS), ids=list(CELL_STACKS))
def test_stacked_rnn_cells_are_reported_at_the_cell(build):
    body = dedent(CELL_STACKS[build])
    code = (
        "import torch.nn as nn\n\n\nclass Stack(nn.Module):\n"
        "    def __init__(self, hidden=64, depth=4):\n        super().__init__()\n"
        + "".join(f"        {line}\n" for line in body.splitlines())
    )
    finding = only(lint(code, "GL201"), "GL201")
    assert finding.line == at(code, "nn.RNNCell(")
    assert finding.message.startswith("4 vanilla tanh `nn.RNNCell`s are stacked")
    data = as_json(finding)
    assert (data["layer"], data["num_layers"], data["hidden_size"]) == ("RNNCell", 4, 64)


def test_cells_held_in_separate_attributes_are_reported_at_the_first():
    code = dedent(
        """\
        import torch.nn as nn


        class ThreeCells(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.cell1 = nn.RNNCell(n, n)
                self.cell2 = nn.RNNCell(n, n)
                self.cell3 = nn.RNNCell(n, n)
        """
    )
    finding = only(lint(code, "GL201"), "GL201")
    assert finding.line == at(code, "self.cell1")
    assert "3 attributes of `ThreeCells`" in finding.message
    assert finding.data["num_layers"] == 3 and finding.data["unresolved"] == ["input_size", "hidden_size"]


def test_cells_listed_in_a_module_list_count_too():
    code = "import torch.nn as nn\n\ncells = nn.ModuleList([nn.RNNCell(8, 16), nn.RNNCell(16, 16), nn.RNNCell(16, 16)])\n"
    assert lines(lint(code, "GL201"), "GL201") == [3]


@pytest.mark.parametrize(
    "cells",
    [
        "nn.ModuleList([nn.RNNCell(8, 8) for _ in range(2)])",
        "nn.ModuleList([nn.LSTMCell(8, 8) for _ in range(4)])",
        "nn.ModuleList([nn.RNNCell(8, 8) for _ in range(depth)])",
        "nn.ModuleList([nn.RNNCell(8, 8) for _ in layers_from_file()])",
    ],
    ids=["two-cells", "lstm-cells", "unresolved-depth", "unknown-iterable"],
)
def test_short_gated_or_unresolved_cell_stacks_are_quiet(cells):
    code = f"import torch.nn as nn\n\n\ndef build(depth):\n    return {cells}\n"
    assert lint(code, "GL201") == []


# =========================================================================== GL202


@pytest.mark.parametrize(
    "layer",
    ['nn.RNN(32, 64, nonlinearity="relu")', 'nn.RNNCell(32, 64, True, "relu")', "nn.RNN(32, 64, 1, ACT)"],
    ids=["rnn-keyword", "cell-positional", "rnn-constant"],
)
def test_relu_rnn_is_reported_at_the_constructor(layer):
    code = f'import torch.nn as nn\n\nACT = "relu"\nlayer = {layer}\n'
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == 4
    assert "nonlinearity='relu'" in finding.message
    assert as_json(finding)["nonlinearity"] == "relu"


def test_relu_from_an_argparse_default_in_another_file():
    model = "import torch.nn as nn\n\n\nclass IRNN(nn.Module):\n    def __init__(self, act):\n        super().__init__()\n        self.rnn = nn.RNN(1, 100, nonlinearity=act)\n"
    train = dedent(
        """\
        import argparse
        from model import IRNN

        parser = argparse.ArgumentParser()
        parser.add_argument("--act", default="relu")
        args = parser.parse_args()
        model = IRNN(args.act)
        """
    )
    finding = only(lint(train, "GL202", extra={"model.py": model}), "GL202")
    assert (finding.display_path, finding.line) == ("model.py", at(model, "nn.RNN("))
    assert "argparse default of --act (train.py:5)" in finding.message


@pytest.mark.parametrize(
    "layer",
    ['nn.RNN(32, 64, nonlinearity="tanh")', "nn.RNN(32, 64)", "nn.RNN(32, 64, nonlinearity=cfg.act)", 'nn.LSTM(32, 64)'],
    ids=["tanh", "default", "unresolved", "lstm"],
)
def test_bounded_default_or_unresolved_nonlinearity_is_quiet(layer):
    code = f"import torch.nn as nn\n\ncfg = load()\nlayer = {layer}\n"
    assert lint(code, "GL202") == []


CELL = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Cell(nn.Module):
    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.W_hh = nn.Linear(n_hidden, n_hidden)
        self.W_xh = nn.Linear(n_in, n_hidden)
        self.weight = nn.Parameter(torch.randn(n_hidden, n_hidden) / n_hidden ** 0.5)
        self.act = {act_module}
        self.norm = nn.LayerNorm(n_hidden)
        self.layers = nn.ModuleList([nn.Linear(n_hidden, n_hidden) for _ in range(3)])

    def forward(self, x):
        h = x.new_zeros(x.size(1), self.W_hh.out_features)
        total = torch.zeros_like(h)
        outputs = []
        for t in range(x.size(0)):
            {update}
            outputs.append(h)
        return torch.stack(outputs), h


model = Cell(16, 64)
"""


def cell(update: str, act_module: str = "nn.ReLU()") -> str:
    return CELL.format(update=update, act_module=act_module)


@pytest.mark.parametrize(
    ("update", "activation"),
    [
        ("h = F.relu(self.W_hh(h) + self.W_xh(x[t]))", "relu"),
        ("h = torch.relu(self.W_xh(x[t]) + self.W_hh(h))", "relu"),
        ("h = F.leaky_relu(self.W_hh(h) + self.W_xh(x[t]), 0.01)", "leaky_relu"),
        ("h = nn.functional.gelu(self.W_hh(h) + self.W_xh(x[t]))", "gelu"),
        ("h = (self.W_hh(h) + self.W_xh(x[t])).relu()", "relu"),
        ("h = self.act(self.W_hh(h) + self.W_xh(x[t]))", "relu"),
        ("h = F.softplus(h @ self.weight + self.W_xh(x[t]))", "softplus"),
        ("h = F.elu(torch.mm(h, self.weight) + self.W_xh(x[t]))", "elu"),
        ("h = F.relu(F.linear(h, self.weight) + self.W_xh(x[t]))", "relu"),
        ("h = F.relu(self.W_hh(torch.cat([h, x[t]], dim=-1)))", "relu"),
    ],
    ids=["F.relu", "torch.relu", "leaky_relu", "gelu", "method", "relu-module", "matmul", "torch.mm", "F.linear", "concat"],
)
def test_unbounded_handwritten_recurrence_is_reported_at_the_assignment(update, activation):
    code = cell(update)
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, update)
    assert f"`{activation}`" in finding.message and "`h`" in finding.message
    data = as_json(finding)
    assert (data["layer"], data["state"], data["nonlinearity"]) == ("handwritten", "h", activation)
    assert data["hidden_size"] == 64


@pytest.mark.parametrize(
    "update",
    [
        "h = self.W_hh(h) + self.W_xh(x[t])",
        "h = h @ self.weight + self.W_xh(x[t])",
        "h = 0.5 * h + self.W_hh(h)",
    ],
    ids=["two-linears", "matmul", "leaky-integrator"],
)
def test_affine_update_without_activation_is_reported(update):
    code = cell(update)
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, update)
    assert "no activation" in finding.message
    assert finding.data["nonlinearity"] == "none"


def test_handwritten_data_gives_the_sizes_of_the_linears():
    finding = only(lint(cell("h = F.relu(self.W_hh(h) + self.W_xh(x[t]))"), "GL202"), "GL202")
    data = as_json(finding)
    assert data == {
        "layer": "handwritten", "state": "h", "nonlinearity": "relu", "weight": "self.W_hh",
        "input_size": 16, "hidden_size": 64, "bias": True, "unresolved": [],
    }


@pytest.mark.parametrize(
    "update",
    [
        "h = torch.tanh(self.W_hh(h) + self.W_xh(x[t]))",
        "h = torch.sigmoid(self.W_hh(h) + self.W_xh(x[t]))",
        "h = F.hardtanh(self.W_hh(h) + self.W_xh(x[t]))",
        "h = torch.clamp(self.W_hh(h) + self.W_xh(x[t]), -1, 1)",
        "h = self.norm(F.relu(self.W_hh(h) + self.W_xh(x[t])))",
        "h = F.relu(self.W_xh(x[t])) + 0.9 * h",
        "total = total + h",
        "total = 0.9 * total + 0.1 * self.W_xh(x[t])",
        "h = h + torch.softmax(self.W_xh(x[t]), -1) @ x[t]",
        "h = F.relu(self.layers[t](h))",
        "h = F.relu(h @ self.weights[t])",
        "h = F.relu(self.unknown(h))",
    ],
    ids=[
        "tanh", "sigmoid", "hardtanh", "clamp", "normalized", "state-not-through-weight", "sum-over-time",
        "running-mean", "attention-accumulation", "weights-per-step", "matrix-per-step", "unknown-module",
    ],
)
def test_bounded_or_untied_updates_are_quiet(update):
    assert lint(cell(update), "GL202") == []


def test_tanh_activation_module_is_quiet():
    assert lint(cell("h = self.act(self.W_hh(h) + self.W_xh(x[t]))", act_module="nn.Tanh()"), "GL202") == []


def test_a_stack_of_different_layers_in_forward_is_not_a_recurrence():
    code = dedent(
        """\
        import torch.nn as nn
        import torch.nn.functional as F


        class MLP(nn.Module):
            def __init__(self, width, depth):
                super().__init__()
                self.layers = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])

            def forward(self, x):
                for layer in self.layers:
                    x = F.relu(layer(x))
                for i in range(len(self.layers)):
                    x = F.relu(self.layers[i](x))
                return x
        """
    )
    assert lint(code, "GL202") == []


def test_same_update_outside_a_loop_or_outside_forward_is_quiet():
    code = dedent(
        """\
        import torch.nn as nn
        import torch.nn.functional as F


        class Cell(nn.Module):
            def __init__(self, n):
                super().__init__()
                self.W = nn.Linear(n, n)

            def forward(self, h):
                h = F.relu(self.W(h))
                return h

            def rollout(self, h, steps):
                for _ in range(steps):
                    h = F.relu(self.W(h))
                return h
        """
    )
    assert lint(code, "GL202") == []


def test_the_same_linear_applied_in_a_loop_is_a_tied_recurrence():
    code = dedent(
        """\
        import torch.nn as nn
        import torch.nn.functional as F


        class Refiner(nn.Module):
            def __init__(self, n, steps):
                super().__init__()
                self.step = nn.Linear(n, n)
                self.steps = steps

            def forward(self, x):
                while self.steps:
                    x = F.relu(self.step(x))
                return x
        """
    )
    assert lines(lint(code, "GL202"), "GL202") == [at(code, "x = F.relu(self.step(x))")]


# =========================================================================== GL203

RNN_SCRIPT = """\
import argparse
import torch
import torch.nn as nn

parser = argparse.ArgumentParser()
parser.add_argument("--bptt", type=int, default={bptt})
args = parser.parse_args()


class LM(nn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = {layer}
        self.head = nn.Linear(hidden, vocab)


model = LM(1000, 200)
""" + TRAIN_LOOP


def rnn_script(bptt="200", layer="nn.RNN(hidden, hidden)") -> str:
    return RNN_SCRIPT.format(bptt=bptt, layer=layer)


def test_vanilla_rnn_trained_on_long_sequences_is_reported_at_the_constructor():
    code = rnn_script()
    finding = only(lint(code, "GL203"), "GL203")
    assert finding.line == at(code, "self.rnn = ")
    assert "sequences of 200 steps" in finding.message
    assert f"argparse default of --bptt (train.py:{at(code, '--bptt')})" in finding.message
    data = as_json(finding)
    assert (data["layer"], data["seq_len"], data["hidden_size"], data["num_layers"]) == ("RNN", 200, 200, 1)
    assert data["unresolved"] == []


@pytest.mark.parametrize(
    ("bptt", "layer"),
    [
        ("35", "nn.RNN(hidden, hidden)"),
        ("200", "nn.LSTM(hidden, hidden)"),
        ("200", "nn.GRU(hidden, hidden, 2)"),
        ("int(os.environ['BPTT'])", "nn.RNN(hidden, hidden)"),
    ],
    ids=["short", "lstm", "gru", "unresolved"],
)
def test_short_gated_or_unresolved_lengths_are_quiet(bptt, layer):
    assert lint(rnn_script(bptt, layer), "GL203") == []


def test_min_length_option():
    code = rnn_script("200")
    assert lint(code, "GL203", rule_options={"GL203": {"min-length": 250}}) == []
    assert len(lint(rnn_script("60"), "GL203", rule_options={"GL203": {"min-length": 50}})) == 1


def test_length_comes_from_the_script_that_trains_the_model_in_another_file():
    model = dedent(
        """\
        import torch.nn as nn


        class Elman(nn.Module):
            def __init__(self, n_in, n_hidden):
                super().__init__()
                self.rnn = nn.RNN(n_in, n_hidden, batch_first=True)
                self.out = nn.Linear(n_hidden, 1)
        """
    )
    train = dedent(
        """\
        import torch
        from model import Elman

        SEQ_LEN = 500
        model = Elman(1, 128)
        """
    ) + TRAIN_LOOP
    findings = lint(train, "GL203", extra={"model.py": model})
    finding = only(findings, "GL203")
    assert (finding.display_path, finding.line) == ("model.py", at(model, "nn.RNN("))
    assert "500 steps" in finding.message and "train.py:4" in finding.message
    assert as_json(finding)["seq_len"] == 500 and finding.data["batch_first"] is True


def test_length_imported_from_a_config_module():
    config = "BPTT = 150\nEVAL_BPTT = 10\n"
    train = dedent(
        """\
        import torch
        import torch.nn as nn
        from config import BPTT

        model = nn.RNN(10, 10)
        """
    ) + TRAIN_LOOP
    finding = only(lint(train, "GL203", extra={"config.py": config}), "GL203")
    assert finding.line == at(train, "nn.RNN(")
    assert "150 steps" in finding.message and "config.py:1" in finding.message


def test_model_file_alone_uses_a_config_file_of_the_project():
    model = "import torch.nn as nn\n\n\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.rnn = nn.RNNCell(4, 64)\n"
    config = "from dataclasses import dataclass\n\n\n@dataclass\nclass Config:\n    seq_len: int = 784\n    lr: float = 1e-3\n"
    findings = lint_model_only(model, {"hparams.py": config})
    finding = only(findings, "GL203")
    assert (finding.display_path, finding.line) == ("model.py", at(model, "nn.RNNCell("))
    assert "Config.seq_len (hparams.py:6)" in finding.message
    assert finding.data["seq_len"] == 784


def lint_model_only(model: str, extra: dict[str, str]):
    from gradlint.api import lint_sources

    return lint_sources({"model.py": model, **extra}, select={"GL203"})


def test_the_training_script_wins_over_a_config_default():
    config = "BPTT = 400\n"
    train = dedent(
        """\
        import torch
        import torch.nn as nn

        bptt = 35
        model = nn.RNN(10, 10)
        """
    ) + TRAIN_LOOP
    assert lint(train, "GL203", extra={"config.py": config}) == []


def test_evaluation_lengths_and_other_names_do_not_count():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        EVAL_BPTT = 500
        NUM_STEPS = 1000
        t = 300
        model = nn.RNN(10, 10)
        """
    ) + TRAIN_LOOP
    assert lint(code, "GL203") == []


def test_a_stack_of_cells_is_reported_once():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        T = 784


        class Deep(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.RNNCell(1, 64)
                self.c2 = nn.RNNCell(64, 64)


        model = Deep()
        """
    ) + TRAIN_LOOP
    assert lines(lint(code, "GL203"), "GL203") == [at(code, "self.c1")]


# =========================================================================== GL204


def test_sequential_of_ten_linears_is_reported_at_the_container():
    layers = ", ".join(["nn.Linear(64, 64), nn.ReLU()"] * 9 + ["nn.Linear(64, 10)"])
    code = f"import torch.nn as nn\n\nnet = nn.Sequential({layers})\n"
    finding = only(lint(code, "GL204"), "GL204")
    assert finding.line == 3
    assert "stacks 10 `nn.Linear` layers" in finding.message
    data = as_json(finding)
    assert data["depth"] == 10 and data["layers"] == ["Linear"] * 10
    assert data["widths"] == [[64, 64]] * 9 + [[64, 10]]
    assert data["modules"] == ["Linear", "ReLU"] * 9 + ["Linear"] and data["unresolved"] == []


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        ("nn.Sequential(nn.Linear(d_in, width), *[nn.Linear(width, width) for _ in range(args.depth)])", 13),
        ("nn.Sequential(*([nn.Linear(width, width), nn.ReLU()] * args.depth))", 12),
        ("nn.Sequential(*[m for _ in range(args.depth) for m in (nn.Linear(width, width), nn.Tanh())])", 12),
    ],
    ids=["comprehension", "list-multiplication", "nested-comprehension"],
)
def test_repeated_layers_count_with_a_resolved_depth(body, depth):
    code = dedent(
        f"""\
        import argparse
        import torch.nn as nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--depth", type=int, default=12)
        args = parser.parse_args()
        width = 256
        d_in = 32
        net = {body}
        """
    )
    finding = only(lint(code, "GL204"), "GL204")
    assert finding.line == at(code, "net = ")
    assert "argparse default of --depth (train.py:5)" in finding.message
    assert finding.data["depth"] == depth
    assert len(finding.data["widths"]) == depth and finding.data["widths"][-1] == [256, 256]


def test_list_built_in_a_loop_then_wrapped_in_a_sequential():
    code = dedent(
        """\
        import torch.nn as nn


        def mlp(width=128, depth=9):
            layers = [nn.Linear(3, width)]
            for _ in range(depth):
                layers.append(nn.Linear(width, width))
                layers.append(nn.ReLU())
            layers += [nn.Linear(width, 1)]
            return nn.Sequential(*layers)
        """
    )
    finding = only(lint(code, "GL204"), "GL204")
    assert finding.line == at(code, "nn.Sequential(*layers)")
    data = as_json(finding)
    assert data["depth"] == 11
    assert data["modules"][:5] == ["Linear", "Linear", "ReLU", "Linear", "ReLU"]


def test_module_list_and_separate_attributes_of_a_class():
    code = dedent(
        """\
        import torch.nn as nn
        import torch.nn.functional as F

        DEPTH = 8


        class Tower(nn.Module):
            def __init__(self, width):
                super().__init__()
                self.layers = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1) for _ in range(DEPTH)])

            def forward(self, x):
                for layer in self.layers:
                    x = F.relu(layer(x))
                return x


        class Chain(nn.Module):
            def __init__(self):
                super().__init__()
        """
    ) + "".join(f"        self.fc{i} = nn.Linear(32, 32)\n" for i in range(8)) + dedent(
        """
            def forward(self, x):
                return self.tail(F.relu(self.fc3(F.relu(self.fc2(F.relu(self.fc1(self.fc0(x))))))))

            def tail(self, x):
                for _ in range(2):
                    x = F.relu(self.fc4(x))
                h = F.relu(self.fc5(x))
                return self.fc7(torch.tanh(self.fc6(h)))
        """
    ).replace("\n", "\n    ")
    findings = lint(code, "GL204")
    assert lines(findings, "GL204") == [at(code, "nn.ModuleList("), at(code, "class Chain")]
    tower = next(f for f in findings if "ModuleList" in f.message)
    assert tower.data["layers"] == ["Conv2d"] * 8 and tower.data["widths"] == [[None, None]] * 8
    assert tower.data["unresolved"] == ["widths of nn.Conv2d"]
    assert "DEPTH = ... (train.py:4)" in tower.message
    chain = next(f for f in findings if "Chain" in f.message)
    assert chain.data["depth"] == 8 and chain.data["widths"] == [[32, 32]] * 8


def test_attributes_used_side_by_side_are_not_a_stack():
    heads = "".join(f"        self.head{i} = nn.Linear(256, {i + 2})\n" for i in range(8))
    code = (
        "import torch.nn as nn\n\n\nclass MultiTask(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.trunk = nn.Linear(64, 256)\n" + heads + "\n    def forward(self, x):\n        z = self.trunk(x)\n"
        "        return [" + ", ".join(f"self.head{i}(z)" for i in range(8)) + "]\n"
    )
    assert lint(code, "GL204") == []


def test_depth_from_another_module():
    config = "DEPTH = 16\nWIDTH = 512\n"
    model = dedent(
        """\
        import torch.nn as nn
        from config import DEPTH, WIDTH

        body = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(DEPTH)])
        """
    )
    finding = only(lint(model, "GL204", extra={"config.py": config}), "GL204")
    assert finding.data["depth"] == 16 and finding.data["widths"][0] == [512, 512]
    assert "config.py:1" in finding.message


NORMALIZED = {
    "layernorm-in-sequential": "self.net = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(64, 64), nn.LayerNorm(64), nn.ReLU())])",
    "batchnorm-in-sequential": "self.net = nn.Sequential(*[m for _ in range(10) for m in (nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8))])",
    "norm-list-beside-module-list": "self.net = nn.ModuleList([nn.Linear(64, 64) for _ in range(10)])\n        self.norms = nn.ModuleList([nn.LayerNorm(64) for _ in range(10)])",
    "project-norm": "self.net = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(64, 64), RMSNorm(64))])",
}


@pytest.mark.parametrize("build", list(NORMALIZED.values()), ids=list(NORMALIZED))
def test_normalized_stacks_are_quiet(build):
    code = f"import torch.nn as nn\nfrom mylib import RMSNorm\n\n\nclass M(nn.Module):\n    def __init__(self):\n        super().__init__()\n        {build}\n"
    assert lint(code, "GL204") == []


@pytest.mark.parametrize(
    "forward",
    [
        "for layer in self.layers:\n            x = x + layer(x)\n        return x",
        "for layer in self.layers:\n            identity = x\n            x = layer(x)\n            x += identity\n        return x",
        "for layer in self.layers:\n            x = torch.add(x, layer(x))\n        return x",
        "out = x\n        for layer in self.layers:\n            out = layer(out)\n        return out + x",
    ],
    ids=["x-plus-f-x", "augmented-identity", "torch-add", "input-skip"],
)
def test_residual_stacks_are_quiet(forward):
    code = (
        "import torch\nimport torch.nn as nn\n\n\nclass Res(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(12)])\n\n"
        f"    def forward(self, x):\n        {forward}\n"
    )
    assert lint(code, "GL204") == []


def test_a_sum_in_forward_is_not_a_residual():
    code = (
        "import torch.nn as nn\n\n\nclass Plain(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.layers = nn.ModuleList([nn.Linear(64, 64) for _ in range(12)])\n\n"
        "    def forward(self, x):\n        total = 0\n        for layer in self.layers:\n"
        "            x = layer(x)\n            total = total + x.mean()\n        return x, total\n"
    )
    assert lines(lint(code, "GL204"), "GL204") == [at(code, "nn.ModuleList(")]


@pytest.mark.parametrize(
    "stack",
    [
        "nn.Sequential(*[nn.Linear(8, 8) for _ in range(7)])",
        "nn.Sequential(*[nn.Linear(8, 8) for _ in range(depth)])",
        "nn.Sequential(*[nn.Linear(8, 8) for _ in range(20) if keep(_)])",
        "nn.Sequential(*[Block(nn.Linear(8, 8)) for _ in range(20)])",
        "nn.Sequential(*[nn.utils.weight_norm(nn.Linear(8, 8)) for _ in range(20)])",
        "[nn.Linear(8, 8) for _ in range(20)]",
    ],
    ids=["seven", "unresolved-depth", "filtered", "wrapped-in-a-block", "weight-norm", "no-container"],
)
def test_shallow_unresolved_wrapped_or_loose_layers_are_quiet(stack):
    code = f"import torch.nn as nn\nfrom blocks import Block\n\n\ndef build(depth):\n    return {stack}\n"
    assert lint(code, "GL204") == []


def test_min_depth_option():
    code = "import torch.nn as nn\n\nnet = nn.Sequential(*[nn.Linear(8, 8) for _ in range(6)])\n"
    assert lint(code, "GL204") == []
    assert lines(lint(code, "GL204", rule_options={"GL204": {"min-depth": 6}}), "GL204") == [3]


def test_a_value_of_the_wrong_type_is_unresolved_not_passed_on():
    code = "import torch.nn as nn\n\nSIZES = (64, 128)\nrnn = nn.RNN(SIZES, 128, 4)\n"
    finding = only(lint(code, "GL201"), "GL201")
    assert finding.data["input_size"] is None and finding.data["unresolved"] == ["input_size"]


def test_one_attribute_assigned_in_two_branches_is_one_cell():
    code = dedent(
        """\
        import torch.nn as nn


        class Cells(nn.Module):
            def __init__(self, n, relu):
                super().__init__()
                if relu:
                    self.cell1 = nn.RNNCell(n, n, nonlinearity="relu")
                else:
                    self.cell1 = nn.RNNCell(n, n)
                self.cell2 = nn.RNNCell(n, n)
                self.gates = {}
                self.gates["a"] = nn.RNNCell(n, n)
        """
    )
    assert lint(code, "GL201") == []


def test_a_pipeline_that_reassigns_a_name_inside_a_loop_is_not_a_recurrence():
    """transformers' multimodal projectors: `x = self.up(img); x = gelu(x); x = self.down(x)` per image."""
    code = dedent(
        """\
        import torch.nn as nn
        import torch.nn.functional as F


        class Projector(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.up = nn.Linear(d, 4 * d)
                self.down = nn.Linear(4 * d, d)

            def forward(self, images):
                out = []
                proj = None
                for image in images:
                    proj = self.up(image)
                    proj = F.gelu(proj)
                    proj = self.down(proj)
                    out.append(proj)
                for image in images:
                    fresh = self.down(fresh)
                return out
        """
    )
    assert lint(code, "GL202") == []


def test_a_state_detached_at_the_top_of_the_loop_is_still_carried():
    update = "h = F.relu(self.W_hh(h) + self.W_xh(x[t]))"
    code = cell(update).replace("            " + update, "            h = h.detach()\n            " + update)
    assert lines(lint(code, "GL202"), "GL202") == [at(code, update)]


def test_a_module_imported_under_a_length_name_is_skipped():
    code = dedent(
        """\
        import torch
        import torch as T
        import torch.nn as nn

        WINDOW = 300
        model = nn.RNN(10, 10)
        """
    ) + TRAIN_LOOP
    finding = only(lint(code, "GL203"), "GL203")
    assert "300 steps" in finding.message and finding.data["seq_len_name"] == "WINDOW"


@pytest.mark.parametrize(
    "register",
    ['self.add_module(f"fc{i}", nn.Linear(64, 64))', 'setattr(self, f"fc{i}", nn.Linear(64, 64))'],
    ids=["add_module", "setattr"],
)
def test_layers_registered_in_a_loop_are_a_stack_of_the_class(register):
    code = dedent(
        f"""\
        import torch.nn as nn


        class Deep(nn.Module):
            def __init__(self, depth=9):
                super().__init__()
                for i in range(depth):
                    {register}
        """
    )
    finding = only(lint(code, "GL204"), "GL204")
    assert finding.line == at(code, "class Deep")
    assert finding.data["depth"] == 9 and finding.data["widths"] == [[64, 64]] * 9


def test_a_call_site_passing_an_unresolvable_depth_overrides_the_default():
    code = dedent(
        """\
        import json
        import torch.nn as nn


        class M(nn.Module):
            def __init__(self, nlayers=4):
                super().__init__()
                self.rnn = nn.RNN(8, 8, nlayers)


        cfg = json.load(open("c.json"))
        model = M(nlayers=cfg["layers"])
        """
    )
    assert lint(code, "GL201") == []


# =========================================================================== this round: tests, blocks


def test_a_deep_vanilla_rnn_that_a_unit_test_builds_and_nothing_trains_is_info():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        def test_output_shape():
            rnn = nn.RNN(8, 16, num_layers=4)
            out, _ = rnn(torch.randn(5, 2, 8))
            assert out.shape == (5, 2, 16)
        """
    )
    finding = only(lint("", "GL201", extra={"tests/test_rnn.py": code}), "GL201")
    assert finding.severity.label == "info"
    assert only(lint(code, "GL201"), "GL201").severity.label == "warning"  # the same code in train.py


BLOCK = """\
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, width)
        {extra_init}

    def forward(self, x):
        {forward}


class Net(nn.Module):
    def __init__(self, width=64, depth=10):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(width) for _ in range(depth)])
"""


def test_a_block_class_repeated_in_a_sequential_counts_its_layers():
    code = BLOCK.format(extra_init="", forward="return torch.relu(self.fc(x))")
    finding = only(lint(code, "GL204"), "GL204")
    assert finding.line == at(code, "nn.Sequential(*[Block")
    assert "stacks 10 `nn.Linear` layers in 10 `Block` blocks" in finding.message
    assert finding.data["depth"] == 10 and finding.data["widths"] == [[64, 64]] * 10
    assert finding.data["depth_origin"].startswith("10 layers stacked at train.py:")


@pytest.mark.parametrize("extra_init, forward", [
    ("self.norm = nn.LayerNorm(width)", "return self.norm(torch.relu(self.fc(x)))"),
    ("", "return x + torch.relu(self.fc(x))"),
])
def test_a_repeated_block_that_normalizes_or_skips_is_quiet(extra_init, forward):
    assert lint(BLOCK.format(extra_init=extra_init, forward=forward), "GL204") == []


def test_a_loop_that_extends_a_list_of_layers_then_unpacks_it_into_a_sequential():
    code = dedent(
        """\
        import torch.nn as nn


        def make_mlp(width=256, depth=12):
            layers = []
            for _ in range(depth):
                layers += [nn.Linear(width, width), nn.ReLU()]
            return nn.Sequential(*layers)
        """
    )
    finding = only(lint(code, "GL204"), "GL204")
    assert finding.data["depth"] == 12 and finding.data["modules"][:2] == ["Linear", "ReLU"]


def test_a_plain_stack_is_info_with_the_default_init_and_a_warning_with_its_own():
    plain = dedent(
        """\
        import torch.nn as nn


        class Tower(nn.Module):
            def __init__(self, width=64, depth=10):
                super().__init__()
                self.layers = nn.Sequential(*[nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)])
        """
    )
    initialised = plain + "        self.apply(self._init)\n\n    def _init(self, m):\n        if isinstance(m, nn.Linear):\n            nn.init.normal_(m.weight, std=0.2)\n"
    quiet = only(lint(plain, "GL204"), "GL204")
    assert quiet.severity.label == "info" and "shrinks by about 0.4 per relu layer" in quiet.message
    assert only(lint(initialised, "GL204"), "GL204").severity.label == "warning"
