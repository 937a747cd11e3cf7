"""Roles come from what a name is bound to, never from what it is called (issue 11).

`lr_optimizer = torch.optim.SGD(...)` is an optimizer although its name starts with `lr`; a
scheduler named like an optimizer is a scheduler; the binding is followed through aliases,
attributes, tuple unpacking, annotations, callers and returns of project functions in other
files. Only a name whose binding cannot be read is judged by its name (documented in GL101)."""

from __future__ import annotations

from tests.snippets import at, dedent, lines, lint

LSTM_MODEL = dedent(
    """\
    import torch.nn as nn


    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(32, 64, batch_first=True)
            self.head = nn.Linear(64, 5)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out)
    """
)


def test_optimizer_named_like_a_scheduler_is_an_optimizer_by_its_binding():
    code = dedent(
        """\
        import torch
        from model import Tagger


        def train(loader, criterion):
            model = Tagger()
            lr_optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                lr_optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                lr_optimizer.step()
        """
    )
    findings = lint(code, "GL101", "GL402", extra={"model.py": LSTM_MODEL})
    assert lines(findings, "GL101") == [at(code, "lr_optimizer.step()")]
    assert next(f for f in findings if f.code == "GL101").severity.name == "WARNING"
    assert lines(findings, "GL402") == [at(code, "lr_optimizer = torch.optim.SGD")]


def test_alias_of_an_optimizer_is_an_optimizer():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            base = torch.optim.Adam(model.parameters(), lr=1e-3)
            lr_opt = base
            for x, y in loader:
                lr_opt.zero_grad()
                criterion(model(x), y).backward()
                lr_opt.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "lr_opt.step()")]


def test_scheduler_named_like_an_optimizer_is_not_an_optimizer_step():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            optimizer_schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer_schedule.step()
        """
    )
    assert lint(code, "GL101", "GL102") == []


def test_optimizer_kept_on_self_in_a_base_class_of_another_file_is_an_optimizer():
    base = dedent(
        """\
        import torch


        class BaseTrainer:
            def __init__(self, model):
                self.model = model
                self.lr_optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
        """
    )
    code = dedent(
        """\
        from base import BaseTrainer


        class Trainer(BaseTrainer):
            def fit(self, loader, criterion):
                for x, y in loader:
                    self.lr_optimizer.zero_grad()
                    criterion(self.model(x), y).backward()
                    self.lr_optimizer.step()
        """
    )
    assert lines(lint(code, "GL101", extra={"base.py": base}), "GL101") == [at(code, "self.lr_optimizer.step()")]


def test_optimizer_returned_by_a_project_function_in_another_file_is_an_optimizer():
    factory = dedent(
        """\
        import torch


        def build(model, lr):
            return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        """
    )
    code = dedent(
        """\
        from optim import build


        def train(model, loader, criterion):
            lr_sched_opt = build(model, 0.1)
            for x, y in loader:
                lr_sched_opt.zero_grad()
                criterion(model(x), y).backward()
                lr_sched_opt.step()
        """
    )
    assert lines(lint(code, "GL101", extra={"optim.py": factory}), "GL101") == [at(code, "lr_sched_opt.step()")]


def test_annotated_parameter_is_what_its_annotation_says():
    code = dedent(
        """\
        import torch


        def train_epoch(model, loader, criterion, lr_opt: torch.optim.Optimizer):
            for x, y in loader:
                lr_opt.zero_grad()
                criterion(model(x), y).backward()
                lr_opt.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "lr_opt.step()")]


def test_parameter_is_what_the_callers_pass():
    runner = dedent(
        """\
        import torch
        from train import train_epoch


        def main(model, loader, criterion):
            train_epoch(model, loader, criterion, torch.optim.Adam(model.parameters(), lr=1e-3))
        """
    )
    code = dedent(
        """\
        def train_epoch(model, loader, criterion, lr_step):
            for x, y in loader:
                lr_step.zero_grad()
                criterion(model(x), y).backward()
                lr_step.step()
        """
    )
    assert lines(lint(code, "GL101", extra={"run.py": runner}), "GL101") == [at(code, "lr_step.step()")]


def test_optimizer_unpacked_from_accelerator_prepare_is_an_optimizer():
    code = dedent(
        """\
        import torch
        from accelerate import Accelerator


        def train(model, loader, criterion):
            accelerator = Accelerator()
            model, lr_optimizer, loader = accelerator.prepare(
                model, torch.optim.AdamW(model.parameters(), lr=1e-4), loader
            )
            for x, y in loader:
                lr_optimizer.zero_grad()
                accelerator.backward(criterion(model(x), y))
                lr_optimizer.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "lr_optimizer.step()")]


def test_grad_scaler_is_a_scaler_by_its_binding():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion):
            amp = torch.cuda.amp.GradScaler()
            for x, y in loader:
                optimizer.zero_grad()
                amp.scale(criterion(model(x), y)).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                amp.step(optimizer)
                amp.update()
        """
    )
    assert lines(lint(code, "GL103"), "GL103") == [at(code, "clip_grad_norm_")]


def test_unreadable_binding_falls_back_on_the_name():
    # `optimizer` and `lr_scheduler` are parameters nobody annotates or passes in the project:
    # their names decide, as GL101's document says.
    code = dedent(
        """\
        def train_epoch(model, loader, criterion, optimizer, lr_scheduler):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
                lr_scheduler.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_ema_with_a_step_method_is_not_an_optimizer():
    code = dedent(
        """\
        import torch


        class EMA:
            def __init__(self, model, decay=0.999):
                self.shadow = {k: v.clone() for k, v in model.state_dict().items()}
                self.decay = decay

            def step(self, model):
                for k, v in model.state_dict().items():
                    self.shadow[k].mul_(self.decay).add_(v, alpha=1 - self.decay)


        def train(model, loader, criterion):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            ema = EMA(model)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                ema.step(model)
        """
    )
    assert lint(code, "GL101", "GL102", "GL110") == []


def test_optimizer_unpacked_from_a_tuple_a_project_function_returns_is_an_optimizer():
    setup = dedent(
        """\
        import torch


        def setup_model_and_optimizer(model_cls, lr):
            model = model_cls()
            optimizer = torch.optim.SGD(model.parameters(), lr=lr)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)
            return model, optimizer, scheduler
        """
    )
    code = dedent(
        """\
        from setup import setup_model_and_optimizer


        def train(model_cls, loader, criterion):
            model, lr_opt, lr_sched = setup_model_and_optimizer(model_cls, 0.1)
            for x, y in loader:
                lr_opt.zero_grad()
                criterion(model(x), y).backward()
                lr_opt.step()
                lr_sched.step()
        """
    )
    assert lines(lint(code, "GL101", extra={"setup.py": setup}), "GL101") == [at(code, "lr_opt.step()")]
    local = setup + "\n\n" + code.split("\n", 2)[2]
    assert lines(lint(local, "GL101"), "GL101") == [at(local, "lr_opt.step()")]


def test_hand_written_optimizer_class_is_an_optimizer():
    code = dedent(
        """\
        import torch


        class PlainSGD:
            def __init__(self, params, lr):
                self.params, self.lr = list(params), lr

            def step(self):
                with torch.no_grad():
                    for p in self.params:
                        if p.grad is not None:
                            p -= self.lr * p.grad


        def train(model, loader, criterion):
            updater = PlainSGD(model.parameters(), lr=0.1)
            for x, y in loader:
                model.zero_grad()
                criterion(model(x), y).backward()
                updater.step()
        """
    )
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "updater.step()")]
