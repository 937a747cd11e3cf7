"""Specification tests for GL109 (sum-reduction-loss): a loss built with reduction="sum" reaches
backward() with no normalisation on the way.

Lines are computed from the snippet (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations


import pytest

from snippets import dedent, lint, lines, only, at
from gradlint.findings import Severity

# A criterion object built once, used in the loop; `{loss}` computes `loss` from `criterion`.
OBJECT_LOSS = """\
import torch
import torch.nn as nn


def train(model, optimizer, loader):
    criterion = nn.CrossEntropyLoss({reduction})
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        {normalise}
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
"""


def object_loss(reduction: str, normalise: str = "pass") -> str:
    return OBJECT_LOSS.format(reduction=reduction, normalise=normalise)


# =========================================================================== GL109


def test_sum_reduced_criterion_object_is_reported_at_the_backward():
    code = object_loss('reduction="sum"')
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "loss.backward()")
    assert finding.severity is Severity.INFO
    assert "`nn.CrossEntropyLoss(reduction=\"sum\")`" in finding.message
    assert f"at line {at(code, 'nn.CrossEntropyLoss(')}" in finding.message


@pytest.mark.parametrize(
    "reduction",
    ['reduction="mean"', "", 'reduction="none"', "ignore_index=-100"],
    ids=["mean", "default", "none", "other-keyword"],
)
def test_mean_or_default_reduction_is_quiet(reduction):
    assert lint(object_loss(reduction), "GL109") == []


@pytest.mark.parametrize(
    "normalise",
    [
        "loss /= x.size(0)",
        "loss = loss / len(y)",
        "loss //= 4",
        "loss = loss.mean()",
    ],
)
def test_normalised_sum_loss_is_quiet(normalise):
    assert lint(object_loss('reduction="sum"', normalise), "GL109") == []


def test_sum_loss_scaled_by_a_product_is_still_reported():
    code = object_loss('reduction="sum"', "loss = loss * 0.5")
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "loss.backward()")]


def test_module_level_sum_criterion_is_reported():
    code = dedent(
        """\
        import torch.nn as nn

        criterion = nn.MSELoss(reduction="sum")


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "loss.backward()")
    assert f"at line {at(code, 'criterion = nn.MSELoss(')}" in finding.message


def test_functional_sum_loss_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.mse_loss(model(x), y, reduction="sum")
                loss.backward()
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "loss.backward()")
    assert f"at line {at(code, 'F.mse_loss(')}" in finding.message


def test_functional_sum_loss_divided_inline_is_quiet():
    code = dedent(
        """\
        import torch.nn.functional as F


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.mse_loss(model(x), y, reduction="sum") / x.size(0)
                loss.backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL109") == []


def test_backward_on_a_divided_expression_is_quiet():
    code = dedent(
        """\
        import torch.nn.functional as F


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.nll_loss(model(x), y, reduction="sum")
                (loss / len(x)).backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL109") == []


def test_vae_sum_of_summed_terms_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        def loss_function(recon_x, x, mu, logvar):
            return F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")


        def train(model, optimizer, loader):
            for data, _ in loader:
                optimizer.zero_grad()
                recon, mu, logvar = model(data)
                bce = F.binary_cross_entropy(recon, data.view(-1, 784), reduction="sum")
                kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
                loss = bce + kld
                loss.backward()
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "loss.backward()")
    assert f"at line {at(code, 'bce = F.binary_cross_entropy(')}" in finding.message


def test_sum_loss_accumulated_with_plus_equals_is_reported():
    code = dedent(
        """\
        import torch.nn as nn


        def train(model, optimizer, loader, heads):
            criterion = nn.MSELoss(reduction="sum")
            for x, targets in loader:
                optimizer.zero_grad()
                total = 0.0
                total += criterion(model(x), targets)
                total.backward()
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "total.backward()")]


def test_legacy_size_average_false_is_a_sum_when_the_file_mentions_sum():
    code = object_loss("size_average=False") + "# per-batch losses are summed\n"
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "loss.backward()")]


def test_legacy_size_average_false_is_a_sum():
    code = object_loss("size_average=False")
    assert "sum" not in code
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "loss.backward()")]


def test_sum_criterion_stored_on_self_is_reported():
    code = dedent(
        """\
        import torch.nn as nn


        class Trainer:
            def __init__(self, model, optimizer):
                self.model = model
                self.optimizer = optimizer
                self.criterion = nn.SmoothL1Loss(reduction="sum")

            def train_step(self, x, y):
                self.optimizer.zero_grad()
                loss = self.criterion(self.model(x), y)
                loss.backward()
                self.optimizer.step()
        """
    )
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "loss.backward()")]


def test_amp_scaled_sum_loss_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        def train(model, optimizer, scaler, loader):
            criterion = nn.CrossEntropyLoss(reduction="sum")
            for x, y in loader:
                optimizer.zero_grad()
                with torch.autocast("cuda"):
                    loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
        """
    )
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "scaler.scale(loss).backward()")]


def test_accelerate_backward_of_a_sum_loss_is_reported():
    code = dedent(
        """\
        import torch.nn.functional as F


        def train(accelerator, model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y, reduction="sum")
                accelerator.backward(loss)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL109"), "GL109") == [at(code, "accelerator.backward(loss)")]


def test_sum_loss_used_only_for_logging_is_quiet():
    code = dedent(
        """\
        import torch.nn.functional as F


        def train(model, optimizer, loader):
            total_nll = 0.0
            for x, y in loader:
                optimizer.zero_grad()
                out = model(x)
                total_nll += F.nll_loss(out, y, reduction="sum").item()
                loss = F.nll_loss(out, y)
                loss.backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL109") == []


def test_loss_reassigned_to_a_mean_loss_before_backward_is_quiet():
    code = dedent(
        """\
        import torch.nn.functional as F


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                out = model(x)
                loss = F.l1_loss(out, y, reduction="sum")
                print(loss.item())
                loss = F.l1_loss(out, y)
                loss.backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL109") == []
