"""What the probe is told about the code, before any torch runs: the init program of a layer
(gradlint.index.init_program), the sequence length the code runs (gradlint.index.sequence) and
what the code does with a square weight (gradlint.index.weight_use).

These read the `data` a finding carries; no torch needed.
"""

from __future__ import annotations

from snippets import at, dedent, lint, only


def layer_data(code: str, rule: str = "GL202", extra: dict | None = None) -> dict:
    finding = only(lint(code, rule, extra=extra), rule)
    data = finding.data
    return data["layer"] if isinstance(data.get("layer"), dict) else data


def steps(data: dict) -> list[tuple[str, str]]:
    return [(step["init"], step["param"]) for step in data.get("init_program", [])]


RELU_RNN = """\
import math
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.hidden = hidden
        self.rnn = nn.RNN(16, hidden, num_layers={layers}, nonlinearity="relu")
{body}

    def forward(self, x):
        return self.rnn(x)[0]
"""


def relu_rnn(body: str, layers: int = 1) -> str:
    indented = "\n".join(f"        {line}" if line else "" for line in dedent(body).splitlines())
    return RELU_RNN.format(body=indented, layers=layers)


# -- the init program --------------------------------------------------------------------------


def test_direct_inits_on_weights_and_biases_are_listed_in_program_order():
    data = layer_data(relu_rnn("""\
        nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=1.5)
        nn.init.zeros_(self.rnn.bias_ih_l0)
        nn.init.zeros_(self.rnn.bias_hh_l0)
        self.rnn.weight_hh_l0.data.mul_(0.5)
    """))
    assert steps(data) == [("orthogonal_", "weight_hh_l0"), ("zeros_", "bias_ih_l0"), ("zeros_", "bias_hh_l0"),
                           ("multiply", "weight_hh_l0")]
    assert data["init_program"][0]["gain_argument"] == 1.5
    assert data["init_program"][3]["factor"] == 0.5
    assert data["init_program"][0]["at"] == "train.py:11"


def test_a_named_parameters_loop_applies_each_branch_to_the_parameters_its_name_test_selects():
    data = layer_data(relu_rnn("""\
        for name, param in self.rnn.named_parameters():
            if "weight_hh" in name:
                nn.init.eye_(param)
            elif name.startswith("bias"):
                nn.init.zeros_(param)
            else:
                nn.init.xavier_uniform_(param)
    """, layers=2))
    assert steps(data) == [
        ("xavier_uniform_", "weight_ih_l0"), ("eye_", "weight_hh_l0"), ("zeros_", "bias_ih_l0"), ("zeros_", "bias_hh_l0"),
        ("xavier_uniform_", "weight_ih_l1"), ("eye_", "weight_hh_l1"), ("zeros_", "bias_ih_l1"), ("zeros_", "bias_hh_l1"),
    ]


def test_a_parameters_loop_with_a_shape_test_reaches_weights_and_biases_apart():
    data = layer_data(relu_rnn("""\
        std = 1.0 / math.sqrt(self.hidden)
        for weight in self.parameters():
            if weight.dim() > 1:
                nn.init.normal_(weight, 0.0, std)
            else:
                weight.data.zero_()
    """))
    assert steps(data) == [("normal_", "weight_ih_l0"), ("normal_", "weight_hh_l0"), ("zeros_", "bias_ih_l0"),
                           ("zeros_", "bias_hh_l0")]
    assert data["init_program"][1]["std"] == 1.0 / 128 ** 0.5


def test_apply_runs_the_function_on_the_layer_with_its_isinstance_dispatch():
    code = dedent("""\
        import torch.nn as nn


        class Model(nn.Module):
            def __init__(self, hidden=128):
                super().__init__()
                self.rnn = nn.RNN(16, hidden, nonlinearity="relu")
                self.head = nn.Linear(hidden, 1)
                self.apply(self._init_weights)

            def _init_weights(self, module):
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, std=1.0)
                elif isinstance(module, (nn.RNN, nn.GRU)):
                    nn.init.orthogonal_(module.weight_hh_l0)
                    nn.init.zeros_(module.bias_hh_l0)
        """)
    assert steps(layer_data(code)) == [("orthogonal_", "weight_hh_l0"), ("zeros_", "bias_hh_l0")]


def test_a_module_level_apply_function_dispatching_on_the_class_name():
    code = relu_rnn("") + dedent("""\


        def weights_init(m):
            classname = m.__class__.__name__
            if classname.find("RNN") != -1:
                m.weight_hh_l0.data.uniform_(-0.3, 0.3)


        model = Model()
        model.apply(weights_init)
        """)
    data = layer_data(code)
    assert steps(data) == [("uniform_", "weight_hh_l0")]
    assert (data["init_program"][0]["a"], data["init_program"][0]["b"]) == (-0.3, 0.3)


def test_init_methods_called_from_the_constructor_or_on_an_instance_in_the_training_script():
    model = dedent("""\
        import torch
        import torch.nn as nn


        class Model(nn.Module):
            def __init__(self, hidden=128):
                super().__init__()
                self.hidden = hidden
                self.rnn = nn.RNN(16, hidden, nonlinearity="relu")
                self.init_weights()

            def init_weights(self):
                with torch.no_grad():
                    self.rnn.weight_hh_l0.copy_(torch.eye(self.hidden) * 1.2)
                    self.rnn.bias_hh_l0.fill_(0.0)

            def reset_parameters(self):
                nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=2.0)
        """)
    train = dedent("""\
        from model import Model

        model = Model()
        model.reset_parameters()
        """)
    finding = only(lint(train, "GL202", extra={"model.py": model}), "GL202")
    program = finding.data["init_program"]
    assert [(s["init"], s["param"]) for s in program] == [
        ("eye_", "weight_hh_l0"), ("constant_", "bias_hh_l0"), ("orthogonal_", "weight_hh_l0")]
    assert program[0]["scale"] == 1.2
    assert program[2]["at"] == f"model.py:{at(model, 'gain=2.0')}"


def test_per_gate_chunks_and_slices_set_row_blocks():
    code = relu_rnn("").replace('nn.RNN(16, hidden, num_layers=1, nonlinearity="relu")', "nn.LSTM(16, hidden)") + dedent("""\
        def init_gates(model):
            h = model.hidden
            for block in model.rnn.weight_hh_l0.chunk(4, 0):
                nn.init.orthogonal_(block, gain=2.0)
            model.rnn.bias_ih_l0.data[h:2 * h].fill_(1.0)


        init_gates(Model())
        """)
    finding = only(lint(code, "GL301"), "GL301")
    program = finding.data["layer"]["init_program"]
    assert [s.get("rows") for s in program] == [[0, 128], [128, 256], [256, 384], [384, 512], [128, 256]]
    assert [s["param"] for s in program] == ["weight_hh_l0"] * 4 + ["bias_ih_l0"]
    assert program[-1] == dict(program[-1], init="constant_", val=1.0, row_unit=128)


def test_getattr_over_the_layers_of_a_stack():
    data = layer_data(relu_rnn("""\
        for layer in range(3):
            nn.init.eye_(getattr(self.rnn, f"weight_hh_l{layer}"))
    """, layers=3))
    assert steps(data) == [("eye_", "weight_hh_l0"), ("eye_", "weight_hh_l1"), ("eye_", "weight_hh_l2")]


def test_an_init_under_a_condition_gradlint_cannot_evaluate_is_unresolved_not_applied():
    code = relu_rnn("""\
        if torch.cuda.device_count() > 4:
            nn.init.orthogonal_(self.rnn.weight_hh_l0, gain=3.0)
        nn.init.normal_(self.rnn.weight_ih_l0, std=self.scale)
    """)
    data = layer_data(code)
    assert "init_program" not in data
    unresolved = data["init_unresolved"]
    assert len(unresolved) == 2
    assert "which gradlint cannot evaluate" in unresolved[0] and "weight_hh_l0" in unresolved[0]
    assert "an argument does not resolve" in unresolved[1]


def test_a_holder_class_initialising_the_layer_through_its_own_named_parameters():
    code = dedent("""\
        import torch.nn as nn


        class Encoder(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.RNN(8, 64, nonlinearity="relu")


        class Seq2Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = Encoder()
                for name, p in self.named_parameters():
                    if "encoder.rnn.weight_hh" in name:
                        nn.init.eye_(p)
        """)
    assert steps(layer_data(code)) == [("eye_", "weight_hh_l0")]


# -- the sequence length -----------------------------------------------------------------------


def test_the_sequence_length_of_the_tensor_fed_to_the_model():
    code = relu_rnn("") + dedent("""\


        model = Model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for step in range(10):
            loss = model(torch.randn(8, 32, 16)).sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        """)
    data = layer_data(code)
    assert data["seq_len"] == 8 and data["seq_len_name"] == "input shape"
    assert data["seq_len_origin"] == f"`torch.randn(8, 32, 16)` fed to the model at train.py:{at(code, 'model(torch.randn')}"


def test_a_batch_first_layer_reads_the_second_dimension_and_token_ids_count_too():
    code = relu_rnn("").replace('nonlinearity="relu")', 'nonlinearity="relu", batch_first=True)') + dedent("""\


        model = Model()
        out = model(torch.randint(0, 100, (32, 12)))
        """)
    assert layer_data(code)["seq_len"] == 12


def test_a_named_length_resolves_through_argparse():
    code = dedent("""\
        import argparse
        import torch.nn as nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--bptt", type=int, default=70)
        args = parser.parse_args()
        rnn = nn.RNN(10, 20, nonlinearity="relu")
        """)
    data = layer_data(code)
    assert data["seq_len"] == 70 and data["seq_len_origin"].startswith("argparse default of --bptt")


def test_no_length_in_the_code_leaves_it_out_of_the_data():
    assert "seq_len" not in layer_data(relu_rnn(""))


# -- square weights: what the code does with them ----------------------------------------------


def square_linear(forward: str) -> str:
    return dedent("""\
        import torch
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, width=256, steps=6):
                super().__init__()
                self.steps = steps
                self.fc = nn.Linear(width, width)
                nn.init.normal_(self.fc.weight, std=0.1)

            def forward(self, x, h):
        {forward}
        """).format(forward="\n".join(f"        {line}" for line in dedent(forward).splitlines()))


def test_a_square_linear_applied_in_a_loop_is_a_tied_stack_of_that_depth():
    finding = only(lint(square_linear("""\
        for _ in range(self.steps):
            x = torch.tanh(self.fc(x))
        return x
    """), "GL301"), "GL301")
    layer = finding.data["layer"]
    assert (layer["layer"], layer["tied"], layer["depth"], layer["nonlinearity"], layer["width"]) == (
        "MLP", True, 6, "tanh", 256)
    assert layer["depth_origin"].startswith("`for ... in range(self.steps)`")


def test_a_square_linear_in_a_cell_that_maps_a_state_is_a_recurrence():
    finding = only(lint(square_linear("return torch.relu(self.fc(h) + x)"), "GL301"), "GL301")
    layer = finding.data["layer"]
    assert (layer["layer"], layer["nonlinearity"], layer["hidden_size"]) == ("RNNCell", "relu", 256)
    assert "seq_len" not in layer  # its caller's loop is not in the code: the probe reads T*


def test_a_square_linear_applied_once_is_one_layer():
    finding = only(lint(square_linear("return torch.relu(self.fc(x))"), "GL301"), "GL301")
    assert finding.data["layer"]["depth"] == 1 and finding.data["layer"]["layer"] == "MLP"


def test_a_square_linear_inside_a_sequential_is_probed_as_that_stack():
    code = dedent("""\
        import torch.nn as nn

        net = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64))
        nn.init.normal_(net[2].weight, std=0.5)
        first = nn.Linear(64, 64)
        stack = nn.Sequential(first, nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        nn.init.normal_(first.weight, std=0.5)
        """)
    finding = only(lint(code, "GL301"), "GL301")
    layer = finding.data["layer"]
    assert (layer["layer"], layer["depth"], layer["nonlinearity"]) == ("MLP", 2, "ReLU")
