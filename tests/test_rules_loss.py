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


# ----------------------------------------------------------- across functions, methods and files


VAE_LOSS = """\
import torch
import torch.nn.functional as F


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return {ret}
"""

VAE_TRAIN = """\
import torch

from losses import loss_function


def train(model, optimizer, loader):
    model.train()
    for data, _ in loader:
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar){normalise}
        loss.backward()
        optimizer.step()
"""


def test_a_summed_loss_returned_by_a_loss_function_in_another_file_is_reported():
    losses = VAE_LOSS.format(ret="BCE + KLD")
    train = VAE_TRAIN.format(normalise="")
    finding = only(lint(train, "GL109", extra={"losses.py": losses}), "GL109")
    assert finding.line == at(train, "loss.backward()")
    assert f"losses.py:{at(losses, 'BCE = F.binary_cross_entropy(')}" in finding.message
    assert f"returned by `loss_function` (losses.py:{at(losses, 'def loss_function')})" in finding.message


@pytest.mark.parametrize(
    ("ret", "normalise"),
    [("(BCE + KLD) / x.size(0)", ""), ("BCE + KLD", " / data.size(0)"), ("torch.mean(BCE) + KLD", "")],
    ids=["divided-in-the-function", "divided-by-the-caller", "not-every-term-is-the-sum"],
)
def test_a_loss_function_normalised_on_either_side_is_quiet(ret, normalise):
    losses = VAE_LOSS.format(ret=ret)
    if "torch.mean" in ret:
        losses = losses.replace('reduction="sum"', 'reduction="mean"')
    train = VAE_TRAIN.format(normalise=normalise)
    assert lint(train, "GL109", extra={"losses.py": losses}) == []


def test_a_loss_function_with_one_normalised_return_is_not_guessed():
    losses = VAE_LOSS.format(ret="BCE + KLD").replace(
        "    return BCE + KLD", "    if mean:\n        return (BCE + KLD) / x.size(0)\n    return BCE + KLD"
    ).replace("def loss_function(recon_x, x, mu, logvar):", "def loss_function(recon_x, x, mu, logvar, mean=True):")
    assert lint(VAE_TRAIN.format(normalise=""), "GL109", extra={"losses.py": losses}) == []


BASE_TRAINER = """\
import torch.nn as nn


class BaseTrainer:
    def __init__(self, model, optimizer):
        self.model = model
        self.optimizer = optimizer
        self.criterion = nn.CrossEntropyLoss(reduction="sum")
"""

TAGGER_TRAINER = """\
import torch

from base import BaseTrainer


class TaggerTrainer(BaseTrainer):
    def compute_loss(self, tokens, tags):
        logits = self.model(tokens)
        loss = self.criterion(logits.view(-1, logits.size(-1)), tags.view(-1))
        return loss, logits.argmax(-1)

    def train_step(self, tokens, tags):
        self.optimizer.zero_grad()
        loss, predictions = self.compute_loss(tokens, tags)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimizer.step()
        return loss.item()
"""


def test_a_criterion_attribute_of_a_base_class_in_another_file_reaches_a_method_of_the_subclass():
    finding = only(lint(TAGGER_TRAINER, "GL109", extra={"base.py": BASE_TRAINER}), "GL109")
    assert finding.line == at(TAGGER_TRAINER, "loss.backward()")
    assert f"base.py:{at(BASE_TRAINER, 'self.criterion = ')}" in finding.message
    assert "as `self.criterion`" in finding.message
    assert "returned by `compute_loss`" in finding.message


def test_a_subclass_that_normalises_in_its_own_method_is_quiet():
    code = TAGGER_TRAINER.replace("        return loss, logits.argmax(-1)", "        return loss / tags.numel(), logits.argmax(-1)")
    assert lint(code, "GL109", extra={"base.py": BASE_TRAINER}) == []


def test_a_subclass_that_sets_a_mean_criterion_is_quiet():
    code = TAGGER_TRAINER.replace(
        "class TaggerTrainer(BaseTrainer):\n",
        "class TaggerTrainer(BaseTrainer):\n    def __init__(self, model, optimizer):\n"
        "        super().__init__(model, optimizer)\n        self.criterion = torch.nn.CrossEntropyLoss()\n\n",
    )
    assert lint(code, "GL109", extra={"base.py": BASE_TRAINER}) == []


def test_a_summed_loss_passed_to_a_backward_helper_is_reported_at_its_backward():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        criterion = nn.MSELoss(reduction="sum")


        def backward_step(loss, model, optimizer):
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()


        def train(model, optimizer, loader):
            for x, y in loader:
                loss = criterion(model(x), y)
                backward_step(loss, model, optimizer)


        def finetune(model, optimizer, loader):
            for x, y in loader:
                backward_step(criterion(model(x), y) / x.size(0), model, optimizer)
        """
    )
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "loss.backward()")
    assert f"passed to `backward_step` at line {at(code, '        backward_step(loss, model, optimizer)')}" in finding.message


def test_a_summed_loss_handed_to_a_backward_method_of_the_same_class_is_reported():
    code = dedent(
        """\
        import torch.nn as nn


        class Trainer:
            def __init__(self, model, optimizer):
                self.model, self.optimizer = model, optimizer
                self.loss_fn = nn.SmoothL1Loss(reduction="sum")

            def _backward(self, loss):
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()

            def fit(self, loader):
                for x, y in loader:
                    self._backward(self.loss_fn(self.model(x), y))
        """
    )
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "loss.backward()")
    assert "passed to `_backward`" in finding.message


LIGHTNING_MODULE = """\
import lightning as L
import torch
import torch.nn as nn


class SpeechTagger(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.encoder = nn.GRU(80, 256, batch_first=True)
        self.head = nn.Linear(256, 48)
        self.criterion = nn.CrossEntropyLoss(reduction="sum")

    def training_step(self, batch, batch_idx):
        frames, labels = batch
        out, _ = self.encoder(frames)
        loss = self.criterion(self.head(out).transpose(1, 2), labels)
        self.log("train_loss", loss)
        return {ret}

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)
"""


def test_a_lightning_training_step_returning_a_summed_loss_is_reported_at_its_return():
    code = LIGHTNING_MODULE.format(ret="loss")
    finding = only(lint(code, "GL109"), "GL109")
    assert finding.line == at(code, "return loss")
    assert "`SpeechTagger.training_step` returns a loss summed with reduction='sum'" in finding.message
    assert "Lightning backpropagates it" in finding.message


@pytest.mark.parametrize("ret", ["loss / labels.numel()", '{"loss": loss / frames.size(0), "sum": loss}'])
def test_a_lightning_training_step_returning_a_normalised_loss_is_quiet(ret):
    assert lint(LIGHTNING_MODULE.format(ret=ret), "GL109") == []


def test_a_lightning_step_returning_the_sum_in_a_dict_is_reported():
    code = LIGHTNING_MODULE.format(ret='{"loss": loss, "log": {"train_loss": loss}}')
    assert lines(lint(code, "GL109"), "GL109") == [at(code, 'return {"loss"')]
