"""Specification tests for the training-step rules: GL101, GL102, GL103 and GL107.

Every test lints a small, realistic training snippet through the public `lint_sources` API and
checks the exact codes and lines. Lines are found by searching the snippet for a unique piece of
text (`at(code, "optimizer.step()")`), so the expectation is computed from the source itself.
"""

from __future__ import annotations


import pytest

from snippets import dedent, lint, lines, only, at
from gradlint.findings import Severity

# A plain classifier loop; `{clip}` is replaced by one clipping line (or nothing).
CLASSIFIER_LOOP = """\
import torch
import torch.nn as nn
import torch.nn.functional as F
{imports}

model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def train(loader, epochs):
    model.train()
    for epoch in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            {clip}
            optimizer.step()
"""


def classifier(clip: str = "pass", imports: str = "") -> str:
    return CLASSIFIER_LOOP.format(clip=clip, imports=imports)


# =========================================================================== GL101


def test_step_without_clipping_is_reported_at_the_optimizer_step():
    code = classifier()
    findings = lint(code, "GL101")
    assert lines(findings, "GL101") == [at(code, "optimizer.step()")]
    finding = only(findings, "GL101")
    assert f"since `loss.backward()` at line {at(code, 'loss.backward()')}" in finding.message
    assert "`optimizer.step()`" in finding.message
    assert "clip_grad_norm_(model.parameters(), max_norm=1.0)" in (finding.hint or "")


def test_step_without_clipping_and_without_risk_factor_is_info():
    finding = only(lint(classifier(), "GL101"), "GL101")
    assert finding.severity is Severity.INFO
    assert "informational" in finding.message


@pytest.mark.parametrize(
    "imports, clip",
    [
        ("", "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)"),
        ("", "nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),
        ("from torch.nn.utils import clip_grad_norm_ as clip", "clip(model.parameters(), 1.0)"),
        ("from torch.nn.utils import clip_grad_norm_", "clip_grad_norm_(model.parameters(), 1.0)"),
        ("", "torch.nn.utils.clip_grad.clip_grad_norm_(model.parameters(), 1.0)"),
        ("from torch.nn.utils.clip_grad import clip_grad_norm_", "clip_grad_norm_(model.parameters(), 1.0)"),
        ("", "torch.nn.utils.clip_grad_norm(model.parameters(), 1.0)"),
        ("", "torch.nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)"),
        ("from torch.nn.utils import clip_grad_value_", "clip_grad_value_(model.parameters(), 0.5)"),
        ("import torch.nn.utils as nn_utils", "nn_utils.clip_grad_norm_(model.parameters(), 1.0)"),
        ("from torch.nn import utils", "utils.clip_grad_norm_(model.parameters(), 1.0)"),
        (
            "from torch.nn.utils import clip_grads_with_norm_, get_total_norm",
            "clip_grads_with_norm_(model.parameters(), 1.0, get_total_norm([p.grad for p in model.parameters()]))",
        ),
    ],
    ids=[
        "torch-full-path",
        "nn-alias",
        "from-import-as-clip",
        "from-import",
        "clip_grad-submodule",
        "from-clip_grad-submodule",
        "deprecated-clip_grad_norm",
        "clip_grad_value_",
        "from-import-clip_grad_value_",
        "module-alias",
        "from-torch.nn-import-utils",
        "clip_grads_with_norm_",
    ],
)
def test_clip_between_backward_and_step_is_quiet_however_it_is_imported(imports, clip):
    assert lint(classifier(clip, imports), "GL101") == []


def test_a_non_clipping_call_between_backward_and_step_is_still_reported():
    code = classifier("grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))")
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_torch_clamp_of_the_loss_is_not_gradient_clipping():
    code = classifier("loss = torch.clip(loss, max=10.0)")
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_local_function_named_clip_grad_norm_that_only_measures_is_not_clipping():
    # The name is torch's, but the module defines its own: what runs is the local body, which
    # only computes the norm for logging. Name resolution must follow the definition, not the name.
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        def clip_grad_norm_(parameters, max_norm):
            norms = [p.grad.norm() for p in parameters if p.grad is not None]
            total = torch.stack(norms).norm()
            print(f"grad norm {total:.3f} (limit {max_norm})")
            return total


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """
    )
    findings = lint(code, "GL101", "GL104")
    assert lines(findings, "GL101") == [at(code, "optimizer.step()")]
    assert lines(findings, "GL104") == []


def test_local_function_named_clip_grad_norm_that_wraps_torch_is_clipping():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        def clip_grad_norm_(parameters, max_norm):
            total = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
            print(f"grad norm {total:.3f}")
            return total


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_clip_helper_function_called_between_backward_and_step_is_quiet():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F

        MAX_GRAD_NORM = 1.0


        def clip(model):
            return torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)


        def train(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = F.nll_loss(model(x), y)
                loss.backward()
                clip(model)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_clip_two_helpers_deep_is_quiet():
    code = dedent(
        """\
        import torch


        def _clip_all(params, limit):
            torch.nn.utils.clip_grad_norm_(params, limit)


        def before_step(model):
            _clip_all(model.parameters(), 1.0)


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                before_step(model)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_helper_that_does_not_clip_does_not_count_as_clipping():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        def log_gradients(model, writer, step):
            for name, p in model.named_parameters():
                writer.add_histogram(name, p.grad, step)


        def train(model, optimizer, loader, writer):
            for step, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                log_gradients(model, writer, step)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_clip_imported_from_another_module_by_a_clip_grad_name_is_assumed_to_clip():
    code = dedent(
        """\
        import torch
        from utils.training import clip_gradients


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                clip_gradients(model, 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_clip_helper_imported_from_another_module_is_assumed_to_clip():
    code = dedent(
        """\
        import torch
        from helpers import clip


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                clip(model)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_clip_function_called_through_an_imported_module_is_assumed_to_clip():
    code = dedent(
        """\
        import torch
        import train_utils


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                train_utils.clip_grads(model, 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_conditional_clip_counts_as_clipping():
    code = classifier("if args.clip > 0: torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)")
    assert lint(code, "GL101") == []


def test_conditional_clip_on_its_own_block_counts_as_clipping():
    code = dedent(
        """\
        import torch


        def train(args, model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                if args.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_nested_epoch_and_batch_loops_report_the_step_once():
    code = classifier()
    findings = lint(code, "GL101")
    assert len(findings) == 1
    assert lines(findings, "GL101") == [at(code, "optimizer.step()")]


def test_train_step_method_called_from_a_loop_is_reported_once_in_the_method():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        class Trainer:
            def __init__(self, model, lr=3e-4):
                self.model = model
                self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

            def train_step(self, batch):
                x, y = batch
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(x), y)
                loss.backward()
                self.optimizer.step()
                return loss.item()

            def fit(self, loader, epochs):
                for epoch in range(epochs):
                    for batch in loader:
                        self.train_step(batch)
        """
    )
    findings = lint(code, "GL101")
    assert lines(findings, "GL101") == [at(code, "self.optimizer.step()")]
    assert f"at line {at(code, 'loss.backward()')}" in findings[0].message


def test_train_step_method_clipping_through_its_own_helper_method_is_quiet():
    code = dedent(
        """\
        import torch
        import torch.nn.functional as F


        class Trainer:
            def __init__(self, model, max_norm=1.0):
                self.model = model
                self.max_norm = max_norm
                self.optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)

            def clip_gradients(self):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_norm)

            def train_step(self, x, y):
                self.optimizer.zero_grad()
                loss = F.cross_entropy(self.model(x), y)
                loss.backward()
                self.clip_gradients()
                self.optimizer.step()

            def fit(self, loader):
                for x, y in loader:
                    self.train_step(x, y)
        """
    )
    assert lint(code, "GL101") == []


def test_clip_helper_method_inherited_from_a_base_class_in_the_module_is_quiet():
    code = dedent(
        """\
        import torch


        class BaseTrainer:
            def clip(self):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)


        class Trainer(BaseTrainer):
            def train_epoch(self, loader):
                for x, y in loader:
                    self.optimizer.zero_grad()
                    self.criterion(self.model(x), y).backward()
                    self.clip()
                    self.optimizer.step()
        """
    )
    assert lint(code, "GL101") == []


def test_step_in_main_guard_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        if __name__ == "__main__":
            model = nn.Linear(10, 1)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            for x, y in data:
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "opt.step()")]


def test_step_in_a_plain_method_is_reported():
    code = dedent(
        """\
        import torch


        class Solver:
            def update(self, loss):
                self.optim.zero_grad()
                loss.backward()
                self.optim.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "self.optim.step()")]


def test_optimizer_with_an_unusual_name_is_recognised_from_its_constructor():
    code = dedent(
        """\
        import torch
        from torch.optim import SGD


        def train(model, loader, criterion):
            sgd = SGD(model.parameters(), lr=0.01)
            for x, y in loader:
                sgd.zero_grad()
                criterion(model(x), y).backward()
                sgd.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "sgd.step()")]


def test_two_optimizers_stepped_after_one_backward_are_each_checked():
    # Issue 11: an encoder's and a decoder's optimizer after one backward are two steps; each
    # updates its own model with unclipped gradients, so each is reported.
    code = dedent(
        """\
        import torch


        def train(encoder, decoder, loader, criterion):
            enc_opt = torch.optim.Adam(encoder.parameters(), lr=1e-3)
            dec_opt = torch.optim.Adam(decoder.parameters(), lr=1e-3)
            for x, y in loader:
                enc_opt.zero_grad()
                dec_opt.zero_grad()
                loss = criterion(decoder(encoder(x)), y)
                loss.backward()
                enc_opt.step()
                dec_opt.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "enc_opt.step()"), at(code, "dec_opt.step()")]


def test_each_backward_pairs_with_its_own_step_in_a_gan_loop():
    # The discriminator step is clipped, the generator step is not: only the latter is reported.
    code = dedent(
        """\
        import torch


        def train(G, D, opt_g, opt_d, loader, criterion, noise):
            for real, ones, zeros in loader:
                opt_d.zero_grad()
                d_loss = criterion(D(real), ones) + criterion(D(G(noise()).detach()), zeros)
                d_loss.backward()
                torch.nn.utils.clip_grad_norm_(D.parameters(), 1.0)
                opt_d.step()

                opt_g.zero_grad()
                g_loss = criterion(D(G(noise())), ones)
                g_loss.backward()
                opt_g.step()
        """
    )
    findings = lint(code, "GL101", "GL102")
    assert lines(findings, "GL101") == [at(code, "opt_g.step()")]
    assert lines(findings, "GL102") == []
    assert f"since `g_loss.backward()` at line {at(code, 'g_loss.backward()')}" in findings[0].message


def test_torch_autograd_backward_is_a_backward():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader):
            for x in loader:
                optimizer.zero_grad()
                torch.autograd.backward(model(x).sum())
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_plateau_scheduler_stepped_with_a_metric_is_not_an_optimizer_step():
    code = dedent(
        """\
        import torch
        from torch.optim.lr_scheduler import ReduceLROnPlateau


        class Trainer:
            def __init__(self, model):
                self.model = model
                self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
                self.opt_plateau = ReduceLROnPlateau(self.optimizer, patience=3)

            def epoch(self, loader, val_loss):
                for x, y in loader:
                    self.optimizer.zero_grad()
                    loss = self.model(x).sum()
                    loss.backward()
                    self.opt_plateau.step(val_loss)
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                    self.optimizer.step()
        """
    )
    assert lint(code, "GL101", "GL102") == []


@pytest.mark.parametrize(
    "scheduler_line, scheduler_step",
    [
        ("scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=1000)", "scheduler.step()"),
        ("lr_scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=100)", "lr_scheduler.step()"),
        ("opt_decay = StepLR(optimizer, step_size=30, gamma=0.1)", "opt_decay.step()"),
        ("warmup = get_linear_schedule_with_warmup(optimizer, 500, 10000)", "warmup.step()"),
    ],
    ids=["scheduler", "lr_scheduler", "StepLR-bound-to-opt_decay", "transformers-warmup"],
)
def test_scheduler_step_is_not_an_optimizer_step(scheduler_line, scheduler_step):
    # The scheduler steps right after backward, before the clip: if it were taken for the
    # optimizer step, its window (backward -> scheduler.step) would have no clip.
    code = dedent(
        f"""\
        import torch
        from torch.optim.lr_scheduler import StepLR
        from transformers import get_linear_schedule_with_warmup


        def train(model, loader, criterion):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            {scheduler_line}
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                {scheduler_step}
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """
    )
    findings = lint(code, "GL101", "GL102", "GL107")
    assert findings == []


def test_env_step_is_not_an_optimizer_step():
    # Saliency maps over a rollout: backward() for input gradients, env.step(action) to move on.
    code = dedent(
        """\
        import gym
        import torch


        def saliency_rollout(qnet, steps):
            env = gym.make("CartPole-v1")
            obs, _ = env.reset()
            maps = []
            for t in range(steps):
                obs_t = torch.tensor(obs, requires_grad=True)
                q = qnet(obs_t)
                q.max().backward()
                maps.append(obs_t.grad.abs())
                action = int(q.argmax())
                obs, reward, terminated, truncated, info = env.step(action)
            return maps
        """
    )
    assert lint(code, "GL101", "GL107") == []


def test_amp_step_without_clipping_is_reported_at_scaler_step_with_unscale_hint():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion):
            scaler = torch.cuda.amp.GradScaler()
            for x, y in loader:
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.line == at(code, "scaler.step(optimizer)")
    assert "scaler.unscale_(optimizer)" in (finding.hint or "")


def test_amp_with_unscale_then_clip_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion):
            scaler = torch.cuda.amp.GradScaler()
            for x, y in loader:
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
        """
    )
    assert lint(code, "GL101", "GL102", "GL103") == []


ACCELERATE = """\
from accelerate import Accelerator

accelerator = Accelerator(gradient_accumulation_steps=4)
model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

for batch in loader:
    with accelerator.accumulate(model):
        loss = model(**batch).loss
        accelerator.backward(loss)
        {clip}
        optimizer.step()
        optimizer.zero_grad()
"""


def test_accelerate_step_without_clipping_is_reported():
    code = ACCELERATE.format(clip="pass")
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


@pytest.mark.parametrize(
    "clip",
    [
        "if accelerator.sync_gradients: accelerator.clip_grad_norm_(model.parameters(), 1.0)",
        "accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)",
        "accelerator.clip_grad_value_(model.parameters(), clip_value=1.0)",
    ],
)
def test_accelerate_clip_counts_as_clipping(clip):
    assert lint(ACCELERATE.format(clip=clip), "GL101") == []


FABRIC = """\
import lightning as L
import torch

fabric = L.Fabric(accelerator="cuda", precision="16-mixed")
model = MyModel()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
model, optimizer = fabric.setup(model, optimizer)

for epoch in range(10):
    for batch in loader:
        optimizer.zero_grad()
        loss = model.training_loss(batch)
        fabric.backward(loss)
        {clip}
        optimizer.step()
"""


def test_fabric_step_without_clipping_is_reported():
    code = FABRIC.format(clip="pass")
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_fabric_clip_gradients_counts_as_clipping():
    code = FABRIC.format(clip="fabric.clip_gradients(model, optimizer, max_norm=1.0)")
    assert lint(code, "GL101", "GL103") == []


def test_deepspeed_engine_step_is_neither_gl101_nor_gl107():
    code = dedent(
        """\
        import deepspeed


        def train(args, model, loader):
            model_engine, optimizer, _, _ = deepspeed.initialize(
                args=args, model=model, model_parameters=model.parameters()
            )
            for step, batch in enumerate(loader):
                loss = model_engine(batch)
                model_engine.backward(loss)
                model_engine.step()
        """
    )
    assert lint(code, "GL101", "GL107") == []


LIGHTNING_MANUAL = """\
import lightning as L
import torch.nn.functional as F


class LitGAN(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        opt = self.optimizers()
        x, y = batch
        opt.zero_grad()
        loss = F.cross_entropy(self(x), y)
        self.manual_backward(loss)
        {clip}
        opt.step()
        return loss
"""


def test_lightning_manual_optimization_without_clipping_is_reported():
    code = LIGHTNING_MANUAL.format(clip="pass")
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.line == at(code, "opt.step()")
    assert "self.manual_backward(loss)" in finding.message


def test_lightning_manual_optimization_with_self_clip_gradients_is_quiet():
    code = LIGHTNING_MANUAL.format(
        clip='self.clip_gradients(opt, gradient_clip_val=0.5, gradient_clip_algorithm="norm")'
    )
    assert lint(code, "GL101", "GL102") == []


LBFGS = """\
import torch


def fit(model, x, y, criterion, steps=20):
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=10)

    def closure():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        {clip}
        return loss

    for i in range(steps):
        optimizer.step(closure)
"""


def test_lbfgs_step_with_closure_without_clipping_is_reported():
    code = LBFGS.format(clip="pass")
    findings = lint(code, "GL101")
    assert lines(findings, "GL101") == [at(code, "optimizer.step(closure)")]
    assert f"at line {at(code, 'loss.backward()')}" in findings[0].message


def test_lbfgs_closure_that_clips_is_quiet():
    code = LBFGS.format(clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    assert lint(code, "GL101", "GL102", "GL107") == []


def test_backward_only_loop_is_not_a_training_step():
    code = dedent(
        """\
        import torch


        def integrated_gradients(model, images, steps=50):
            grads = []
            for alpha in torch.linspace(0, 1, steps):
                x = (alpha * images).requires_grad_(True)
                model(x).sum().backward()
                grads.append(x.grad)
            return torch.stack(grads).mean(0)
        """
    )
    assert lint(code, "GL101", "GL102", "GL107") == []


# --------------------------------------------------------------- GL101 severity


def test_lstm_of_the_trained_model_makes_gl101_a_warning_naming_the_layer():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class CharModel(nn.Module):
            def __init__(self, vocab, hidden=256):
                super().__init__()
                self.embed = nn.Embedding(vocab, hidden)
                self.rnn = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True)
                self.head = nn.Linear(hidden, vocab)


        def train(model, loader):
            optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
            for x, y in loader:
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x).transpose(1, 2), y)
                loss.backward()
                optimizer.step()


        train(CharModel(vocab=96), loader)
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.line == at(code, "optimizer.step()")
    assert finding.severity is Severity.WARNING
    assert "`CharModel` has a recurrent layer (nn.LSTM" in finding.message
    assert f"at train.py:{at(code, 'nn.LSTM(')}" in finding.message


def test_a_model_that_cannot_be_resolved_leaves_gl101_at_info_and_says_why():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        encoder = nn.LSTM(128, 256, batch_first=True)


        def train(model, loader):
            optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.severity is Severity.INFO
    assert "`model`, whose parameters `optimizer` updates, could not be followed to its class" in finding.message


def test_a_recurrent_model_in_another_file_that_the_step_trains_makes_gl101_a_warning():
    model_py = dedent(
        """\
        import torch.nn as nn


        class Seq2Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = nn.GRU(128, 256, batch_first=True)
        """
    )
    code = classifier().replace(
        "model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))",
        "from model import Seq2Seq\n\nmodel = Seq2Seq()",
    )
    finding = only(lint(code, "GL101", extra={"model.py": model_py}), "GL101")
    assert finding.display_path == "train.py"
    assert finding.severity is Severity.WARNING
    assert "`Seq2Seq` has a recurrent layer (nn.GRU" in finding.message
    assert f"model.py:{at(model_py, 'nn.GRU(')}" in finding.message


def test_a_recurrent_layer_in_a_sibling_file_that_the_step_does_not_train_leaves_gl101_at_info():
    """The risk of a step is the model it trains, never the folder: an LSTM in a sibling script
    (PyG's examples/geniepath.py beside examples/ogc.py) says nothing about this classifier."""
    sibling = dedent(
        """\
        import torch
        import torch.nn as nn

        model = nn.LSTM(128, 256, batch_first=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.2)
        """
    )
    finding = only(lint(classifier(), "GL101", extra={"geniepath.py": sibling}), "GL101")
    assert finding.severity is Severity.INFO
    assert "`Sequential` has no recurrent layer" not in finding.message
    assert "geniepath.py" not in finding.message


def test_each_file_of_a_project_is_reported_on_its_own_lines():
    clipped = classifier("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    unclipped = classifier()
    findings = lint(unclipped, "GL101", extra={"finetune.py": clipped})
    assert lines(findings, "GL101", "train.py") == [at(unclipped, "optimizer.step()")]
    assert lines(findings, "GL101", "finetune.py") == []


def test_recurrent_layer_in_another_directory_does_not_raise_severity():
    model_py = "import torch.nn as nn\n\nrnn = nn.LSTM(128, 256)\n"
    findings = lint(classifier(), "GL101", extra={"models/rnn.py": model_py})
    assert only(findings, "GL101").severity is Severity.INFO


def test_relu_rnn_is_a_risk_factor():
    code = dedent(
        """\
        import torch
        from torch import nn

        rnn = nn.RNN(64, 64, nonlinearity="relu")
        optimizer = torch.optim.SGD(rnn.parameters(), lr=0.01)
        for x, y in batches:
            optimizer.zero_grad()
            out, _ = rnn(x)
            loss = ((out - y) ** 2).mean()
            loss.backward()
            optimizer.step()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.severity is Severity.WARNING
    assert "relu" in finding.message


@pytest.mark.parametrize(
    "optimizer, severity",
    [
        ("torch.optim.SGD(model.parameters(), lr=5.0)", Severity.WARNING),
        ("torch.optim.SGD(model.parameters(), lr=0.5)", Severity.INFO),
        ("torch.optim.Adam(model.parameters(), lr=0.1)", Severity.WARNING),
        ("torch.optim.Adam(model.parameters(), lr=3e-4)", Severity.INFO),
        ("torch.optim.AdamW(model.parameters(), 0.05)", Severity.WARNING),
        ("torch.optim.Adam(model.parameters(), lr=args.lr)", Severity.INFO),
    ],
)
def test_out_of_range_literal_learning_rate_is_a_risk_factor(optimizer, severity):
    code = dedent(
        f"""\
        import torch


        def train(model, loader, criterion, args):
            optimizer = {optimizer}
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.severity is severity
    if severity is Severity.WARNING:
        assert "learning rate" in finding.message


def _adagrad_step(lr: str) -> str:
    return dedent(
        f"""\
        import torch


        def train(model, loader, criterion):
            optimizer = torch.optim.Adagrad(model.parameters(), lr={lr})
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
        """
    )


def test_adagrad_keeps_its_own_usual_range():
    # Adagrad's default lr is 0.01 and 0.05-0.1 is common, so its limit is 0.1, not Adam's 0.01.
    assert only(lint(_adagrad_step("0.05"), "GL101"), "GL101").severity is Severity.INFO
    assert only(lint(_adagrad_step("0.5"), "GL101"), "GL101").severity is Severity.WARNING


# =========================================================================== GL102


def test_clip_after_step_is_reported_at_the_clip():
    code = dedent(
        """\
        import torch.nn as nn


        class Trainer:
            def train_epoch(self, loader):
                for adj, features, labels in loader:
                    self.optimizer.zero_grad()
                    loss = self.criterion(self.model(features, adj), labels)
                    loss.backward()
                    self.optimizer.step()
                    nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        """
    )
    findings = lint(code, "GL101", "GL102")
    assert lines(findings, "GL102") == [at(code, "clip_grad_norm_")]
    assert lines(findings, "GL101") == []  # the misplaced clip is the finding, not a missing one
    finding = only(findings, "GL102")
    assert f"runs after `self.optimizer.step()` at line {at(code, 'self.optimizer.step()')}" in finding.message


def test_clip_before_backward_is_reported_at_the_clip():
    code = classifier().replace(
        "            optimizer.zero_grad()\n",
        "            optimizer.zero_grad()\n            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
    )
    findings = lint(code, "GL102")
    finding = only(findings, "GL102")
    assert finding.line == at(code, "clip_grad_norm_")
    assert f"runs before `loss.backward()` at line {at(code, 'loss.backward()')}" in finding.message


def test_clip_between_backward_and_step_is_not_misplaced():
    code = classifier("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    assert lint(code, "GL102") == []


def test_amp_clip_after_scaler_step_is_reported():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, scaler, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                with torch.autocast("cuda"):
                    loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """
    )
    assert lines(lint(code, "GL101", "GL102"), "GL102") == [at(code, "clip_grad_norm_")]


def test_clip_after_the_batch_loop_is_not_in_the_step_iteration():
    # Scope is the batch loop; a clip once per epoch after it is not "the same iteration":
    # the steps in the batch loop are simply unclipped (GL101), and the epoch-end clip is not GL102.
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, epochs):
            for epoch in range(epochs):
                for x, y in loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    optimizer.step()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """
    )
    findings = lint(code, "GL101", "GL102")
    assert lines(findings, "GL102") == []
    assert lines(findings, "GL101") == [at(code, "optimizer.step()")]


@pytest.mark.parametrize(
    "clip",
    [
        "torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)",
        "self.clip_gradients(self.optimizers(), gradient_clip_val=1.0)",
    ],
)
def test_clip_in_lightning_training_step_with_automatic_optimization_is_reported(clip):
    code = dedent(
        f"""\
        import lightning as L
        import torch
        import torch.nn.functional as F


        class LitClassifier(L.LightningModule):
            def training_step(self, batch, batch_idx):
                x, y = batch
                loss = F.cross_entropy(self(x), y)
                {clip}
                return loss

            def configure_optimizers(self):
                return torch.optim.Adam(self.parameters(), lr=1e-3)
        """
    )
    finding = only(lint(code, "GL102"), "GL102")
    assert finding.line == at(code, clip)
    assert "training_step" in finding.message


def test_lightning_clip_in_configure_gradient_clipping_is_quiet():
    code = dedent(
        """\
        import lightning as L
        import torch.nn.functional as F


        class LitClassifier(L.LightningModule):
            def training_step(self, batch, batch_idx):
                x, y = batch
                return F.cross_entropy(self(x), y)

            def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
                self.clip_gradients(optimizer, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
        """
    )
    assert lint(code, "GL101", "GL102") == []


def test_clip_after_step_in_a_train_step_helper_is_reported_once():
    code = dedent(
        """\
        import torch


        def train_step(model, optimizer, batch):
            optimizer.zero_grad()
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)


        def main(model, optimizer, loader):
            for batch in loader:
                train_step(model, optimizer, batch)
        """
    )
    assert lines(lint(code, "GL102"), "GL102") == [at(code, "clip_grad_norm_")]


def test_clip_in_the_calling_loop_after_a_train_step_helper_is_reported():
    code = dedent(
        """\
        import torch


        def train_step(model, optimizer, batch):
            optimizer.zero_grad()
            model(batch).loss.backward()
            optimizer.step()


        def main(model, optimizer, loader):
            for batch in loader:
                train_step(model, optimizer, batch)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        """
    )
    findings = lint(code, "GL101", "GL102")
    assert lines(findings, "GL102") == [at(code, "clip_grad_norm_")]
    assert lines(findings, "GL101") == []


# =========================================================================== GL103


AMP = """\
import torch
from torch.cuda.amp import GradScaler, autocast

scaler = GradScaler()
for epoch in range(num_epochs):
    for inputs, targets in loader:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = criterion(model(inputs), targets)
        scaler.scale(loss).backward()
        {before}
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        {after}
        scaler.step(optimizer)
        scaler.update()
"""


def test_amp_clip_without_unscale_is_reported_at_the_clip():
    code = AMP.format(before="pass", after="pass")
    finding = only(lint(code, "GL103"), "GL103")
    assert finding.line == at(code, "clip_grad_norm_")
    assert "`scaler.unscale_(optimizer)`" in finding.message
    assert f"at line {at(code, 'scaler.scale(loss).backward()')}" in finding.message
    assert "scaler.unscale_(optimizer)" in (finding.hint or "")


def test_amp_unscale_before_clip_is_quiet():
    assert lint(AMP.format(before="scaler.unscale_(optimizer)", after="pass"), "GL103") == []


def test_amp_unscale_after_clip_is_reported():
    code = AMP.format(before="pass", after="scaler.unscale_(optimizer)")
    assert lines(lint(code, "GL103"), "GL103") == [at(code, "clip_grad_norm_")]


def test_clip_without_amp_is_not_gl103():
    assert lint(classifier("torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"), "GL103") == []


def test_gl103_message_uses_the_scaler_and_optimizer_names_of_the_code():
    code = dedent(
        """\
        import torch


        class Trainer:
            def step(self, batch):
                self.opt.zero_grad()
                with torch.autocast("cuda"):
                    loss = self.model(batch)
                self.grad_scaler.scale(loss).backward()
                torch.nn.utils.clip_grad_value_(self.model.parameters(), 0.5)
                self.grad_scaler.step(self.opt)
                self.grad_scaler.update()
        """
    )
    finding = only(lint(code, "GL103"), "GL103")
    assert finding.line == at(code, "clip_grad_value_")
    assert "`self.grad_scaler.unscale_(self.opt)`" in finding.message


def test_fsdp_clip_method_under_amp_without_unscale_is_reported():
    code = dedent(
        """\
        import torch
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler


        def train(model, optimizer, loader):
            model = FSDP(model)
            scaler = ShardedGradScaler()
            for batch in loader:
                optimizer.zero_grad()
                with torch.autocast("cuda", dtype=torch.float16):
                    loss = model(batch).loss
                scaler.scale(loss).backward()
                model.clip_grad_norm_(1.0)
                scaler.step(optimizer)
                scaler.update()
        """
    )
    assert lines(lint(code, "GL103"), "GL103") == [at(code, "model.clip_grad_norm_(1.0)")]


def test_unscale_inside_a_clip_helper_is_seen():
    code = dedent(
        """\
        import torch


        def unscale_and_clip(scaler, optimizer, model):
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)


        def train(model, optimizer, scaler, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                with torch.autocast("cuda"):
                    loss = criterion(model(x), y)
                scaler.scale(loss).backward()
                unscale_and_clip(scaler, optimizer, model)
                scaler.step(optimizer)
                scaler.update()
        """
    )
    assert lint(code, "GL101", "GL103") == []


def test_fabric_clip_under_mixed_precision_unscales_by_itself():
    # Fabric's clip_gradients unscales internally; only torch/FSDP clips need unscale_ first.
    code = dedent(
        """\
        import torch


        def train(fabric, model, optimizer, scaler, loader):
            for batch in loader:
                optimizer.zero_grad()
                loss = model(batch)
                scaler.scale(loss).backward()
                fabric.clip_gradients(model, optimizer, max_norm=1.0)
                scaler.step(optimizer)
                scaler.update()
        """
    )
    assert lint(code, "GL103") == []


# =========================================================================== GL107


NEVER_CLEARED = """\
import torch
import torch.nn.functional as F


def train(model, loader, epochs):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    {before}
    for epoch in range(epochs):
        for x, y in loader:
            {inside}
            loss = F.mse_loss(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
"""


def test_loop_that_never_zeroes_gradients_is_reported_at_the_backward():
    code = NEVER_CLEARED.format(before="pass", inside="pass")
    finding = only(lint(code, "GL107"), "GL107")
    assert finding.line == at(code, "loss.backward()")
    assert f"(line {at(code, 'optimizer.step()')})" in finding.message
    assert "optimizer.zero_grad(set_to_none=True)" in (finding.hint or "")


def test_zero_grad_only_before_the_loop_is_reported():
    code = NEVER_CLEARED.format(before="optimizer.zero_grad()", inside="pass")
    assert lines(lint(code, "GL107"), "GL107") == [at(code, "loss.backward()")]


@pytest.mark.parametrize(
    "inside",
    [
        "optimizer.zero_grad()",
        "optimizer.zero_grad(set_to_none=True)",
        "model.zero_grad()",
        "for p in model.parameters(): p.grad = None",
        "for p in model.parameters(): p.grad.zero_()",
        "for p in model.parameters(): p.grad.data.zero_()",
    ],
)
def test_zeroing_gradients_in_the_loop_is_quiet(inside):
    assert lint(NEVER_CLEARED.format(before="pass", inside=inside), "GL107") == []


def test_zero_grad_at_the_end_of_the_iteration_is_quiet():
    code = NEVER_CLEARED.format(before="pass", inside="pass").replace(
        "            optimizer.step()\n", "            optimizer.step()\n            optimizer.zero_grad()\n"
    )
    assert lint(code, "GL107") == []


def test_zero_grad_helper_in_the_loop_is_quiet():
    code = dedent(
        """\
        import torch


        def reset_grads(model):
            for p in model.parameters():
                p.grad = None


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                reset_grads(model)
                criterion(model(x), y).backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL107") == []


def test_zero_grad_under_an_accumulation_guard_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, accum):
            for i, (x, y) in enumerate(loader):
                loss = criterion(model(x), y) / accum
                loss.backward()
                if (i + 1) % accum == 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    optimizer.zero_grad()
        """
    )
    assert lint(code, "GL107") == []


def test_train_step_without_zero_grad_called_from_a_zeroing_loop_is_quiet():
    code = dedent(
        """\
        import torch


        def train_step(model, optimizer, x, y):
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()


        def main(model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                train_step(model, optimizer, x, y)
        """
    )
    assert lint(code, "GL107") == []


def test_function_level_step_that_no_loop_calls_is_not_reported():
    code = dedent(
        """\
        import torch


        def train_step(model, optimizer, x, y):
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()
        """
    )
    assert lint(code, "GL107") == []


def test_train_step_defined_after_its_calling_loop_without_zero_grad_is_reported():
    code = dedent(
        """\
        import torch


        def main(model, optimizer, loader):
            for x, y in loader:
                train_step(model, optimizer, x, y)


        def train_step(model, optimizer, x, y):
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL107"), "GL107") == [at(code, "loss.backward()")]


def test_train_step_defined_before_its_calling_loop_without_zero_grad_is_reported():
    code = dedent(
        """\
        import torch


        def train_step(model, optimizer, x, y):
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()


        def main(model, optimizer, loader):
            for x, y in loader:
                train_step(model, optimizer, x, y)
        """
    )
    assert lines(lint(code, "GL107"), "GL107") == [at(code, "loss.backward()")]


def test_train_step_method_called_from_a_loop_without_zero_grad_is_reported():
    code = dedent(
        """\
        import torch


        class Trainer:
            def fit(self, loader):
                for batch in loader:
                    self.train_step(batch)

            def train_step(self, batch):
                loss = self.model(**batch).loss
                loss.backward()
                self.optimizer.step()
        """
    )
    assert lines(lint(code, "GL107"), "GL107") == [at(code, "loss.backward()")]


def test_lbfgs_closure_without_zero_grad_is_reported():
    code = LBFGS.format(clip="pass").replace("        optimizer.zero_grad()\n", "")
    assert "zero_grad" not in code
    assert lines(lint(code, "GL107"), "GL107") == [at(code, "loss.backward()")]


def test_lbfgs_closure_with_zero_grad_is_quiet():
    assert lint(LBFGS.format(clip="pass"), "GL107") == []


def test_step_in_module_level_loop_without_zero_grad_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn as nn

        model = nn.Linear(8, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        optimizer.zero_grad()
        for x, y in data:
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL107"), "GL107") == [at(code, "loss.backward()")]


@pytest.mark.parametrize(
    "owner, backward, expected",
    [
        ("accelerator", "accelerator.backward(loss)", "accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)"),
        ("fabric", "fabric.backward(loss)", "fabric.clip_gradients(model, optimizer, max_norm=1.0)"),
    ],
)
def test_missing_clipping_hint_uses_the_framework_that_owns_backward(owner, backward, expected):
    code = dedent(
        f"""\
        import torch


        def train({owner}, model, optimizer, loader):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                {backward}
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert expected in finding.hint
