"""Specification tests for hand-written recurrences (GL202, and the recurrent risk context they give
the other rules): tutorial-style one-step cells driven by a loop in the training code, linear
recurrences with no activation, relu ones, and IndRNN-style element-wise recurrent weights.

Lines are computed from the snippet (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import json

import pytest

from snippets import at, dedent, lint, only
from gradlint.api import lint_sources
from gradlint.findings import Severity

# The PyTorch char-RNN classification tutorial: `forward` is one step, the loop over the letters of
# a name is in `train`, and the state goes through `i2h` with no activation at all.
TUTORIAL = """\
import torch
import torch.nn as nn

n_letters = 57
n_categories = 18


class RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input, hidden):
        combined = torch.cat((input, hidden), 1)
        {update}
        output = self.i2o(combined)
        output = self.softmax(output)
        return output, hidden

    def initHidden(self):
        return torch.zeros(1, self.hidden_size)


n_hidden = 128
rnn = RNN(n_letters, n_hidden, n_categories)
criterion = nn.NLLLoss()
learning_rate = 0.005


def train(category_tensor, line_tensor):
    hidden = rnn.initHidden()
    rnn.zero_grad()
    for i in range(line_tensor.size()[0]):
        {call}
    loss = criterion(output, category_tensor)
    loss.backward()
    for p in rnn.parameters():
        p.data.add_(p.grad.data, alpha=-learning_rate)
    return output, loss.item()
"""

LINEAR = "hidden = self.i2h(combined)"
FED_BACK = "output, hidden = rnn(line_tensor[i], hidden)"


def tutorial(update: str = LINEAR, call: str = FED_BACK) -> str:
    return TUTORIAL.format(update=update, call=call)


def as_json(finding) -> dict:
    return json.loads(json.dumps(finding.data, allow_nan=False))


# ====================================================================== one-step cells


def test_tutorial_cell_whose_loop_is_in_the_training_function_is_reported_at_its_update():
    code = tutorial()
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, LINEAR)
    assert "`RNN.forward` is one step of a hand-written recurrence" in finding.message
    assert f"the loop at line {at(code, FED_BACK)}" in finding.message
    assert "`hidden`" in finding.message and "`self.i2h`" in finding.message
    assert "no activation" in finding.message
    data = as_json(finding)
    assert (data["layer"], data["state"], data["nonlinearity"], data["weight"]) == ("handwritten", "hidden", "none", "self.i2h")
    # i2h reads torch.cat((input, hidden)): 57 inputs and 128 state units.
    assert (data["input_size"], data["hidden_size"]) == (57, 128)


@pytest.mark.parametrize(
    ("update", "activation"),
    [
        ("hidden = torch.relu(self.i2h(combined))", "relu"),
        ("hidden = self.i2h(combined).relu()", "relu"),
        ("hidden = F.leaky_relu(self.i2h(combined))", "leaky_relu"),
    ],
)
def test_tutorial_cell_with_an_unbounded_activation_names_it(update, activation):
    code = "import torch.nn.functional as F\n" + tutorial(update)
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, update)
    assert f"`{activation}`" in finding.message
    assert finding.data["nonlinearity"] == activation


@pytest.mark.parametrize(
    "update",
    [
        "hidden = torch.tanh(self.i2h(combined))",
        "hidden = torch.sigmoid(self.i2h(combined))",
        "hidden = self.norm(self.i2h(combined))",
        "hidden = self.i2h(torch.tanh(combined))",
    ],
    ids=["tanh", "sigmoid", "unknown-call", "bounded-before-the-weight"],
)
def test_tutorial_cell_with_a_bounded_update_is_quiet(update):
    assert lint(tutorial(update), "GL202") == []


@pytest.mark.parametrize(
    "call",
    [
        "output, next_hidden = rnn(line_tensor[i], hidden)",
        "output, hidden = rnn(line_tensor[i], rnn.initHidden())",
        "output, hidden = other(line_tensor[i], hidden)",
        "hidden, output = rnn(line_tensor[i], hidden)",
    ],
    ids=["state-not-fed-back", "fresh-state-each-step", "another-callable", "other-returned-value"],
)
def test_a_cell_that_no_loop_feeds_back_is_not_a_recurrence(call):
    assert lint(tutorial(call=call), "GL202") == []


def test_a_cell_called_once_outside_any_loop_is_quiet():
    code = tutorial().replace(
        "    for i in range(line_tensor.size()[0]):\n        " + FED_BACK,
        "    output, hidden = rnn(line_tensor[0], hidden)",
    )
    assert "for i in" not in code
    assert lint(code, "GL202") == []


def test_the_generation_tutorial_cell_with_a_category_input_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        n_categories = 18


        class RNN(nn.Module):
            def __init__(self, input_size, hidden_size, output_size):
                super(RNN, self).__init__()
                self.i2h = nn.Linear(n_categories + input_size + hidden_size, hidden_size)
                self.i2o = nn.Linear(n_categories + input_size + hidden_size, output_size)
                self.o2o = nn.Linear(hidden_size + output_size, output_size)
                self.dropout = nn.Dropout(0.1)
                self.softmax = nn.LogSoftmax(dim=1)

            def forward(self, category, input, hidden):
                input_combined = torch.cat((category, input, hidden), 1)
                hidden = self.i2h(input_combined)
                output = self.i2o(input_combined)
                output_combined = torch.cat((hidden, output), 1)
                output = self.o2o(output_combined)
                output = self.dropout(output)
                output = self.softmax(output)
                return output, hidden


        def train(rnn, criterion, category_tensor, input_line_tensor, target_line_tensor):
            hidden = torch.zeros(1, 128)
            rnn.zero_grad()
            loss = 0
            for i in range(input_line_tensor.size(0)):
                output, hidden = rnn(category_tensor, input_line_tensor[i], hidden)
                loss += criterion(output, target_line_tensor[i])
            loss.backward()
            return loss.item()


        rnn = RNN(59, 128, 59)
        for it in range(100000):
            train(rnn, nn.NLLLoss(), *random_training_example())
        """
    )
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, "hidden = self.i2h(input_combined)")
    assert "rnn(category_tensor, input_line_tensor[i], hidden)" in finding.message


MODEL_FILE = """\
import torch
import torch.nn as nn


class CharCell(nn.Module):
    def __init__(self, n_in, n_hidden, n_out):
        super().__init__()
        self.i2h = nn.Linear(n_in + n_hidden, n_hidden)
        self.h2o = nn.Linear(n_hidden, n_out)

    def forward(self, x, hidden):
        hidden = torch.relu(self.i2h(torch.cat([x, hidden], dim=1)))
        return self.h2o(hidden), hidden
"""

TRAIN_FILE = """\
import torch
import torch.nn as nn

from model import CharCell


def train_step(cell, optimizer, line, target):
    hidden = torch.zeros(line.size(1), 256)
    optimizer.zero_grad()
    for t in range(line.size(0)):
        logits, hidden = cell(line[t], hidden)
    loss = nn.functional.cross_entropy(logits, target)
    loss.backward()
    optimizer.step()
    return loss.item()


def main():
    cell = CharCell(64, 256, 10)
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.05)
    for step in range(10000):
        train_step(cell, optimizer, torch.randn(20, 32, 64), torch.randint(0, 10, (32,)))


if __name__ == "__main__":
    main()
"""


def test_a_cell_driven_through_a_parameter_from_another_file_is_reported_in_the_model_file():
    findings = lint_sources({"model.py": MODEL_FILE, "train.py": TRAIN_FILE}, select={"GL202"})
    finding = only(findings, "GL202")
    assert finding.display_path == "model.py"
    assert finding.line == at(MODEL_FILE, "hidden = torch.relu(")
    assert f"train.py:{at(TRAIN_FILE, 'logits, hidden = cell(line[t], hidden)')}" in finding.message
    assert "`relu`" in finding.message


def test_a_hand_written_cell_makes_the_step_that_trains_it_a_recurrent_risk():
    findings = lint_sources({"model.py": MODEL_FILE, "train.py": TRAIN_FILE}, select={"GL101"})
    finding = only(findings, "GL101")
    assert finding.severity is Severity.WARNING
    assert "`CharCell` has a recurrent layer (a hand-written recurrence with an unbounded relu" in finding.message
    assert f"model.py:{at(MODEL_FILE, 'hidden = torch.relu(')}" in finding.message


def test_without_the_loop_the_same_cell_is_an_ordinary_module():
    train = TRAIN_FILE.replace(
        "    for t in range(line.size(0)):\n        logits, hidden = cell(line[t], hidden)",
        "    logits, hidden = cell(line[-1], hidden)",
    )
    findings = lint_sources({"model.py": MODEL_FILE, "train.py": train}, select={"GL202", "GL101"})
    assert [f.code for f in findings] == ["GL101"]
    assert only(findings, "GL101").severity is Severity.INFO


def test_a_cell_held_by_another_module_and_looped_in_its_forward_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class Cell(nn.Module):
            def __init__(self, n_in, n_hidden):
                super().__init__()
                self.W_xh = nn.Linear(n_in, n_hidden)
                self.W_hh = nn.Linear(n_hidden, n_hidden, bias=False)

            def forward(self, x, h):
                h = self.W_xh(x) + self.W_hh(h)
                return h


        class Sequence(nn.Module):
            def __init__(self, n_in, n_hidden):
                super().__init__()
                self.cell = Cell(n_in, n_hidden)
                self.n_hidden = n_hidden

            def forward(self, xs):
                h = xs.new_zeros(xs.size(1), self.n_hidden)
                for x in xs:
                    h = self.cell(x, h)
                return h
        """
    )
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, "h = self.W_xh(x) + self.W_hh(h)")
    assert "`Cell.forward`" in finding.message and "h = self.cell(x, h)" in finding.message


def test_a_block_applied_to_its_own_output_through_a_normalization_is_quiet():
    code = dedent(
        """\
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.fc = nn.Linear(d, d)
                self.norm = nn.LayerNorm(d)

            def forward(self, x, mask):
                x = self.norm(x + self.fc(x))
                return x * mask


        class Universal(nn.Module):
            def __init__(self, d, steps):
                super().__init__()
                self.block = Block(d)
                self.layers = nn.ModuleList([Block(d) for _ in range(steps)])
                self.steps = steps

            def forward(self, x, mask):
                for _ in range(self.steps):
                    x = self.block(x, mask)
                for layer in self.layers:
                    x = layer(x, mask)
                return x
        """
    )
    assert lint(code, "GL202") == []


def test_a_seq2seq_decoder_built_on_a_gru_is_not_a_hand_written_recurrence():
    code = dedent(
        """\
        import torch
        import torch.nn as nn
        import torch.nn.functional as F


        class DecoderRNN(nn.Module):
            def __init__(self, hidden_size, output_size):
                super().__init__()
                self.embedding = nn.Embedding(output_size, hidden_size)
                self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
                self.out = nn.Linear(hidden_size, output_size)

            def forward(self, input, hidden):
                output = F.relu(self.embedding(input))
                output, hidden = self.gru(output, hidden)
                output = self.out(output)
                return output, hidden


        decoder = DecoderRNN(256, 1000)


        def decode(decoder_input, decoder_hidden, steps):
            outputs = []
            for i in range(steps):
                decoder_output, decoder_hidden = decoder(decoder_input, decoder_hidden)
                decoder_input = decoder_output.argmax(-1).detach()
                outputs.append(decoder_output)
            return outputs
        """
    )
    assert lint(code, "GL202") == []


# ====================================================================== loops inside forward


INDRNN = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class IndRNN(nn.Module):
    def __init__(self, n_in, n_hidden):
        super().__init__()
        self.w_ih = nn.Linear(n_in, n_hidden)
        self.u = nn.Parameter(torch.rand(n_hidden))
        self.decay = 0.9
        self.n_hidden = n_hidden

    def forward(self, x):
        h = x.new_zeros(x.size(1), self.n_hidden)
        for t in range(x.size(0)):
            {update}
        return h
"""


@pytest.mark.parametrize(
    ("update", "activation"),
    [
        ("h = F.relu(self.w_ih(x[t]) + self.u * h)", "relu"),
        ("h = F.relu(self.w_ih(x[t]) + h * self.u.unsqueeze(0))", "relu"),
        ("h = F.relu(self.w_ih(x[t]) + torch.mul(self.u, h))", "relu"),
        ("h = self.w_ih(x[t]) + self.u * h", None),
    ],
    ids=["relu", "broadcast", "torch.mul", "linear"],
)
def test_indrnn_element_wise_recurrent_weight_is_reported(update, activation):
    code = INDRNN.format(update=update)
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, update)
    assert "element-wise by the recurrent weight `self.u" in finding.message
    assert finding.data["nonlinearity"] == (activation or "none")
    assert finding.data["hidden_size"] is None or isinstance(finding.data["hidden_size"], int)


@pytest.mark.parametrize(
    "update",
    [
        "h = F.relu(self.w_ih(x[t]) + self.decay * h)",
        "h = F.relu(self.w_ih(x[t]) + 0.5 * h)",
        "h = torch.tanh(self.w_ih(x[t]) + self.u * h)",
        "h = F.relu(self.w_ih(x[t]) + self.u[t] * h)",
    ],
    ids=["float-attribute", "constant", "tanh", "weight-per-step"],
)
def test_a_state_scaled_by_a_constant_or_bounded_is_not_an_indrnn(update):
    assert lint(INDRNN.format(update=update), "GL202") == []


def test_the_linear_concatenated_recurrence_of_the_issue_is_reported_in_a_forward_loop():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class Elman(nn.Module):
            def __init__(self, n_in, n_hidden):
                super().__init__()
                self.i2h = nn.Linear(n_in + n_hidden, n_hidden)
                self.n_hidden = n_hidden

            def forward(self, xs):
                hidden = xs.new_zeros(xs.size(1), self.n_hidden)
                for x in xs:
                    hidden = self.i2h(torch.cat((x, hidden), 1))
                return hidden
        """
    )
    finding = only(lint(code, "GL202"), "GL202")
    assert finding.line == at(code, "hidden = self.i2h(torch.cat((x, hidden), 1))")
    assert "no activation" in finding.message


def test_a_state_bounded_later_in_the_loop_body_is_quiet():
    """pytorch_geometric's ARMAConv: the product goes through message passing and an activation
    before the next iteration."""
    code = dedent(
        """\
        import torch.nn as nn


        class Filter(nn.Module):
            def __init__(self, d, steps):
                super().__init__()
                self.weight = nn.Parameter(torch.empty(d, d))
                self.norm = nn.LayerNorm(d)
                self.steps = steps

            def forward(self, x, edge_index):
                out = x
                for t in range(self.steps):
                    out = out @ self.weight
                    out = self.propagate(edge_index, x=out)
                for t in range(self.steps):
                    x = x @ self.weight
                    x = self.norm(x)
                return out + x
        """
    )
    assert lint(code, "GL202") == []



# ================================================================= the fact, for other rules


def test_a_lightning_module_with_a_hand_written_recurrence_is_recurrent_for_gl106():
    model = dedent(
        """\
        import lightning as L
        import torch
        import torch.nn as nn
        import torch.nn.functional as F


        class IRNNClassifier(L.LightningModule):
            def __init__(self, n_in=1, n_hidden=100):
                super().__init__()
                self.w_xh = nn.Linear(n_in, n_hidden)
                self.w_hh = nn.Linear(n_hidden, n_hidden)
                self.out = nn.Linear(n_hidden, 10)
                self.n_hidden = n_hidden

            def forward(self, x):
                h = x.new_zeros(x.size(0), self.n_hidden)
                for t in range(x.size(1)):
                    h = F.relu(self.w_xh(x[:, t]) + self.w_hh(h))
                return self.out(h)

            def training_step(self, batch, batch_idx):
                x, y = batch
                return F.cross_entropy(self(x), y)
        """
    )
    train = dedent(
        """\
        import lightning as L

        from model import IRNNClassifier

        trainer = L.Trainer(max_epochs=10)
        trainer.fit(IRNNClassifier())
        """
    )
    findings = lint_sources({"model.py": model, "train.py": train}, select={"GL106", "GL202"})
    assert sorted((f.code, f.display_path) for f in findings) == [("GL106", "train.py"), ("GL202", "model.py")]
    gl106 = only(findings, "GL106")
    assert "a hand-written recurrence with an unbounded relu, `h = F.relu(self.w_xh(x[:, t]) + self.w_hh(h))`" in gl106.message
    assert f"model.py:{at(model, 'h = F.relu(')}" in gl106.message


def test_the_index_gives_the_hand_written_cell_of_a_class_without_any_tree():
    from pathlib import Path

    from gradlint.index import ProjectIndex
    from gradlint.index.recurrences import handwritten_cell
    from gradlint.source import SourceFile

    root = Path("/gradlint-sources")
    sources = []
    for name, text in {"model.py": MODEL_FILE, "train.py": TRAIN_FILE}.items():
        sources.append(SourceFile(root / name, name, text=text))
    project = ProjectIndex(sources, roots=[root])
    symbol = project.resolve(root / "model.py", "CharCell")
    cell = handwritten_cell(project, symbol)
    assert cell is not None
    assert (cell.state, cell.activation, cell.weight, cell.elementwise) == ("hidden", "relu", "self.i2h", False)
    assert cell.line == at(MODEL_FILE, "hidden = torch.relu(")
    assert cell.loop is not None and cell.loop[0] == root / "train.py"
    assert cell.loop[1] == at(TRAIN_FILE, "logits, hidden = cell(line[t], hidden)")
