"""Specification tests for the carried-state rules: GL108 (hidden state not detached) and
GL111 (retain_graph=True with a carried state).

Lines are computed from the snippet (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations


import pytest

from snippets import dedent, lint, lines, only, at

# word_language_model style truncated BPTT; `{detach}` goes right before the model call.
WORD_LM = """\
import torch
import torch.nn as nn


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def train(model, train_data, optimizer, criterion, bptt, batch_size, clip=0.25):
    model.train()
    hidden = model.init_hidden(batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i)
        optimizer.zero_grad()
        {detach}
        output, hidden = model(data, hidden)
        loss = criterion(output.view(-1, output.size(-1)), targets)
        loss.backward({backward_args})
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
"""


def word_lm(detach: str = "pass", backward_args: str = "") -> str:
    return WORD_LM.format(detach=detach, backward_args=backward_args)


# =========================================================================== GL108


def test_hidden_fed_back_without_detach_is_reported_at_the_model_call():
    code = word_lm()
    finding = only(lint(code, "GL108"), "GL108")
    assert finding.line == at(code, "output, hidden = model(data, hidden)")
    assert "`hidden`" in finding.message
    assert "`model(data, hidden)`" in finding.message
    assert "repackage_hidden(hidden)" in (finding.hint or "")


@pytest.mark.parametrize(
    "detach",
    [
        "hidden = repackage_hidden(hidden)",
        "hidden = hidden.detach()",
        "hidden = tuple(h.detach() for h in hidden)",
        "hidden = model.init_hidden(batch_size)",
        "hidden.detach_()",
    ],
    ids=["repackage-helper", "detach", "tuple-of-detached", "re-init", "detach_-in-place"],
)
def test_detached_or_reinitialised_hidden_is_quiet(detach):
    assert lint(word_lm(detach), "GL108") == []


def test_imported_repackage_helper_counts_as_detach():
    code = word_lm("hidden = repackage_hidden(hidden)").replace(
        "def repackage_hidden(h):\n"
        "    if isinstance(h, torch.Tensor):\n"
        "        return h.detach()\n"
        "    return tuple(repackage_hidden(v) for v in h)\n",
        "from utils import repackage_hidden\n",
    )
    assert "def repackage_hidden" not in code
    assert lint(code, "GL108") == []


def test_detach_at_the_end_of_the_iteration_is_quiet():
    # It runs before the next iteration's call, which is what matters for the carried graph.
    code = word_lm().replace(
        "        optimizer.step()\n", "        optimizer.step()\n        hidden = hidden.detach()\n"
    )
    assert lint(code, "GL108") == []


def test_masking_the_hidden_state_is_not_a_detach():
    # Recurrent policy (A2C style): zeroing the state of finished episodes keeps the graph.
    code = dedent(
        """\
        import torch


        def train(policy, optimizer, rollouts, hidden):
            for obs, masks, returns in rollouts:
                hidden = hidden * masks
                value, hidden = policy(obs, hidden)
                loss = (returns - value).pow(2).mean()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "value, hidden = policy(obs, hidden)")]


LSTM_CELL_STATE = """\
import torch
from torch import nn

lstm = nn.LSTM(input_size=32, hidden_size=128, batch_first=True)
head = nn.Linear(128, 1)
optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)

h = torch.zeros(1, 16, 128)
c = torch.zeros(1, 16, 128)
for chunk, target in stream_chunks(series, length=50):
    optimizer.zero_grad()
    {detach}
    out, (h, c) = lstm(chunk, (h, c))
    loss = nn.functional.mse_loss(head(out), target)
    loss.backward({backward_args})
    torch.nn.utils.clip_grad_norm_(lstm.parameters(), 1.0)
    optimizer.step()
"""


def test_lstm_tuple_state_fed_back_without_detach_is_reported_once():
    code = LSTM_CELL_STATE.format(detach="pass", backward_args="")
    findings = lint(code, "GL108")
    # One finding per call, however many of its targets are carried.
    assert lines(findings, "GL108") == [at(code, "out, (h, c) = lstm(chunk, (h, c))")]
    assert findings[0].message.split("`")[1] in {"h", "c"}


def test_lstm_tuple_state_detached_is_quiet():
    code = LSTM_CELL_STATE.format(detach="h, c = h.detach(), c.detach()", backward_args="")
    assert lint(code, "GL108") == []


def test_lstm_tuple_state_with_only_h_detached_is_reported_for_c():
    code = LSTM_CELL_STATE.format(detach="h = h.detach()", backward_args="")
    finding = only(lint(code, "GL108"), "GL108")
    assert finding.line == at(code, "out, (h, c) = lstm(chunk, (h, c))")
    assert finding.message.startswith("`c` returned by")


def test_hidden_tuple_passed_as_one_name_is_reported():
    code = dedent(
        """\
        import torch


        def train(lstm, head, optimizer, chunks, hc):
            for x, y in chunks:
                optimizer.zero_grad()
                out, hc = lstm(x, hc)
                loss = ((head(out) - y) ** 2).mean()
                loss.backward()
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "out, hc = lstm(x, hc)")]


def test_hidden_attribute_on_self_fed_back_is_reported():
    code = dedent(
        """\
        import torch


        class Trainer:
            def train_epoch(self, loader):
                self.hidden = self.model.init_hidden(self.batch_size)
                for x, y in loader:
                    self.optimizer.zero_grad()
                    out, self.hidden = self.model(x, self.hidden)
                    self.criterion(out, y).backward()
                    self.optimizer.step()
        """
    )
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "out, self.hidden = self.model(x, self.hidden)")]


def test_no_grad_call_in_the_training_loop_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, criterion, train_chunks, val_chunks, hidden, val_hidden):
            for (x, y), (vx, vy) in zip(train_chunks, val_chunks):
                hidden = hidden.detach()
                optimizer.zero_grad()
                out, hidden = model(x, hidden)
                criterion(out, y).backward()
                optimizer.step()
                with torch.no_grad():
                    val_out, val_hidden = model(vx, val_hidden)
        """
    )
    assert lint(code, "GL108") == []


def test_evaluation_loop_under_no_grad_inside_the_epoch_loop_is_quiet():
    code = dedent(
        """\
        import torch


        def repackage_hidden(h):
            return h.detach() if isinstance(h, torch.Tensor) else tuple(repackage_hidden(v) for v in h)


        def run(model, optimizer, criterion, train_batches, val_batches, epochs, bsz):
            for epoch in range(epochs):
                hidden = model.init_hidden(bsz)
                for x, y in train_batches:
                    hidden = repackage_hidden(hidden)
                    optimizer.zero_grad()
                    output, hidden = model(x, hidden)
                    criterion(output, y).backward()
                    optimizer.step()
                model.eval()
                with torch.no_grad():
                    eval_hidden = model.init_hidden(bsz)
                    for x, y in val_batches:
                        output, eval_hidden = model(x, eval_hidden)
        """
    )
    assert lint(code, "GL108") == []


def test_evaluation_loop_inside_the_epoch_loop_without_no_grad_is_reported():
    # The same shape without torch.no_grad(): the epoch loop runs backward and carries eval_hidden.
    code = dedent(
        """\
        import torch


        def run(model, optimizer, criterion, train_batches, val_batches, epochs, bsz):
            eval_hidden = model.init_hidden(bsz)
            for epoch in range(epochs):
                for x, y in train_batches:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
                for x, y in val_batches:
                    output, eval_hidden = model(x, eval_hidden)
        """
    )
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "output, eval_hidden = model(x, eval_hidden)")]


def test_loop_target_names_are_rebound_every_iteration_and_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, alpha):
            for x, y in loader:
                x, y = mixup(x, y, alpha)
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL108") == []


def test_state_named_loop_target_is_rebound_every_iteration_and_quiet():
    code = dedent(
        """\
        import torch


        def train(cell, optimizer, stream, criterion):
            for step, (x, h) in enumerate(stream):
                optimizer.zero_grad()
                out, h = cell(x, h)
                criterion(out).backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL108") == []


def test_loop_without_backward_is_quiet():
    code = dedent(
        """\
        def generate(model, start, hidden, length):
            tokens = [start]
            for _ in range(length):
                logits, hidden = model(tokens[-1], hidden)
                tokens.append(logits.argmax(-1))
            return tokens
        """
    )
    assert lint(code, "GL108") == []


def test_model_whose_forward_detaches_is_quiet():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class StatefulRNN(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = nn.GRU(16, 32)

            def forward(self, x, hidden):
                out, hidden = self.rnn(x, hidden.detach())
                return out, hidden


        def train(loader, optimizer, criterion, hidden):
            model = StatefulRNN()
            for x, y in loader:
                optimizer.zero_grad()
                out, hidden = model(x, hidden)
                criterion(out, y).backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL108") == []


def test_carried_state_in_a_helper_called_from_the_loop_is_reported_once():
    code = dedent(
        """\
        import torch


        def tbptt_step(model, optimizer, criterion, x, y, hidden):
            optimizer.zero_grad()
            out, hidden = model(x, hidden)
            criterion(out, y).backward()
            optimizer.step()
            return hidden


        def train(model, optimizer, criterion, loader, hidden):
            for x, y in loader:
                optimizer.zero_grad()
                out, hidden = model(x, hidden)
                criterion(out, y).backward()
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "out, hidden = model(x, hidden)", 2)]


# =========================================================================== GL111


def test_retain_graph_with_carried_hidden_is_reported_at_the_backward():
    code = word_lm(backward_args="retain_graph=True")
    findings = lint(code, "GL108", "GL111")
    finding = only(findings, "GL111")
    assert finding.line == at(code, "loss.backward(retain_graph=True)")
    assert "`hidden`" in finding.message
    assert f"from line {at(code, 'output, hidden = model(data, hidden)')}" in finding.message
    assert lines(findings, "GL108") == [at(code, "output, hidden = model(data, hidden)")]


def test_retain_graph_with_detached_hidden_is_still_reported():
    code = word_lm("hidden = repackage_hidden(hidden)", backward_args="retain_graph=True")
    findings = lint(code, "GL108", "GL111")
    assert lines(findings, "GL111") == [at(code, "loss.backward(retain_graph=True)")]
    assert lines(findings, "GL108") == []


def test_retain_graph_with_lstm_tuple_state_is_reported():
    code = LSTM_CELL_STATE.format(detach="pass", backward_args="retain_graph=True")
    assert lines(lint(code, "GL111"), "GL111") == [at(code, "loss.backward(retain_graph=True)")]


def test_autograd_backward_with_retain_graph_and_carried_hidden_is_reported():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, hidden):
            for x, y in loader:
                optimizer.zero_grad()
                out, hidden = model(x, hidden)
                torch.autograd.backward((out - y).pow(2).mean(), retain_graph=True)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL111"), "GL111") == [at(code, "torch.autograd.backward(")]


def test_backward_without_retain_graph_is_not_gl111():
    assert lint(word_lm(), "GL111") == []


def test_retain_graph_false_is_quiet():
    assert lint(word_lm(backward_args="retain_graph=False"), "GL111") == []


def test_retain_graph_without_carried_state_is_quiet():
    # Two losses through a shared graph (GAN-style): retain_graph is legitimate here.
    code = dedent(
        """\
        import torch


        def train(encoder, head_a, head_b, opt, loader):
            for x, ya, yb in loader:
                opt.zero_grad()
                features = encoder(x)
                loss_a = torch.nn.functional.cross_entropy(head_a(features), ya)
                loss_b = torch.nn.functional.cross_entropy(head_b(features), yb)
                loss_a.backward(retain_graph=True)
                loss_b.backward()
                opt.step()
        """
    )
    assert lint(code, "GL111") == []


def test_retain_graph_outside_the_carrying_loop_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, hidden, probe_x):
            for x, y in loader:
                hidden = hidden.detach()
                optimizer.zero_grad()
                out, hidden = model(x, hidden)
                criterion(out, y).backward()
                optimizer.step()
            probe = model(probe_x, None)[0].sum()
            probe.backward(retain_graph=True)
        """
    )
    assert lint(code, "GL111") == []
