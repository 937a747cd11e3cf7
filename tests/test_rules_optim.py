"""Specification tests for the optimizer rules: GL401 (high learning rate without clipping) and
GL402 (no weight regularization), and for how a step's optimizer constructor is found
(`gradlint.rules._helpers.optimizer_site`): in the step's function, in its class, or through the
call sites that pass the optimizer in, possibly from another file.

Lines come from the snippets (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import pytest
from snippets import at, dedent, lines, lint, only

from gradlint.findings import Severity

LSTM_MODEL = dedent(
    """\
    import torch.nn as nn


    class Regressor(nn.Module):
        def __init__(self, hidden=64):
            super().__init__()
            self.lstm = nn.LSTM(4, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])
    """
)

MLP_MODEL = dedent(
    """\
    import torch.nn as nn


    class Regressor(nn.Module):
        def __init__(self, hidden=64):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, x):
            return self.net(x)
    """
)


def script(optimizer: str, clip: str = "", header: str = "") -> str:
    """A training script around `optimizer = <optimizer>`; `clip` goes between backward and step."""
    clip_line = f"\n        {clip}" if clip else ""
    return dedent(
        """\
        import argparse

        import torch
        import torch.nn as nn

        from model import Regressor
        {header}
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.1)
        parser.add_argument("--wd", type=float, default=0.0)
        args = parser.parse_args()

        model = Regressor()
        optimizer = {optimizer}
        criterion = nn.MSELoss()
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward(){clip}
            optimizer.step()
        """
    ).format(optimizer=optimizer, clip=clip_line.replace("\n        ", "\n    "), header=header)


def run(optimizer: str, *codes: str, clip: str = "", model: str = LSTM_MODEL, options=None):
    code = script(optimizer, clip)
    kwargs = {"rule_options": options} if options else {}
    return code, lint(code, *codes, extra={"model.py": model}, **kwargs)


# =========================================================================== GL401


@pytest.mark.parametrize(
    "optimizer, shown, family, limit",
    [
        ("torch.optim.Adam(model.parameters(), lr=0.1)", "lr=0.1", "Adam", "0.01"),
        ("torch.optim.Adam(model.parameters(), lr=1.5e-2)", "lr=0.015", "Adam", "0.01"),
        ("torch.optim.AdamW(model.parameters(), 0.05)", "lr=0.05", "AdamW", "0.01"),
        ("torch.optim.RMSprop(model.parameters(), lr=0.02)", "lr=0.02", "RMSprop", "0.01"),
        ("torch.optim.SGD(model.parameters(), lr=1.5)", "lr=1.5", "SGD", "1.0"),
        ("torch.optim.SGD(model.parameters(), lr=2 * 1.5, momentum=0.9)", "lr=3.0", "SGD", "1.0"),
        ("torch.optim.Adagrad(model.parameters(), lr=0.2)", "lr=0.2", "Adagrad", "0.1"),
        ("torch.optim.NAdam(model.parameters(), lr=args.lr)", "lr=0.1", "NAdam", "0.01"),
    ],
)
def test_a_learning_rate_above_the_limit_without_clipping_is_reported_at_the_lr(optimizer, shown, family, limit):
    code, findings = run(optimizer, "GL401")
    finding = only(findings, "GL401")
    assert finding.line == at(code, "optimizer = ")
    assert f"`{shown}`" in finding.message
    assert f"above {family}'s usual range (<= {limit})" in finding.message
    assert "no gradient clipping" in finding.message
    assert finding.severity is Severity.WARNING
    # The trained model's recurrent layer, for the probe (issue 12): GL401 carries it like GL101.
    assert finding.data["layer"] == "LSTM" and finding.data["model"] == "Regressor" and finding.data["clip_max_norm"] == 1.0


def test_the_message_says_where_an_argparse_default_comes_from():
    code, findings = run("torch.optim.Adam(model.parameters(), lr=args.lr)", "GL401")
    finding = only(findings, "GL401")
    assert f"`lr=0.1` (argparse default of --lr, train.py:{at(code, '--lr')})" in finding.message


@pytest.mark.parametrize(
    "optimizer",
    [
        "torch.optim.Adam(model.parameters(), lr=1e-3)",
        "torch.optim.Adam(model.parameters(), lr=0.01)",  # the top of Adam's usual range is in it
        "torch.optim.SGD(model.parameters(), lr=1.0)",
        "torch.optim.Adagrad(model.parameters(), lr=0.1)",
        "torch.optim.Adam(model.parameters())",
        "torch.optim.SGD(model.parameters(), lr=0.5)",
        "torch.optim.Adagrad(model.parameters(), lr=0.05)",
        "torch.optim.LBFGS(model.parameters(), lr=1.0)",
        "torch.optim.Adam(model.parameters(), lr=config['lr'])",
        "torch.optim.Adam(model.parameters(), lr=get_lr())",
    ],
)
def test_a_moderate_missing_or_unresolved_learning_rate_is_quiet(optimizer):
    _, findings = run(optimizer, "GL401")
    assert findings == []


@pytest.mark.parametrize(
    "clip",
    [
        "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)",
        "if args.lr > 0:\n    torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)",
    ],
)
def test_a_clipped_step_is_quiet(clip):
    _, findings = run("torch.optim.Adam(model.parameters(), lr=0.1)", "GL401", clip=clip)
    assert findings == []


def test_a_misplaced_clip_is_left_to_gl102():
    code = script("torch.optim.Adam(model.parameters(), lr=0.1)").replace(
        "    optimizer.step()\n", "    optimizer.step()\n    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
    )
    assert lint(code, "GL401", extra={"model.py": LSTM_MODEL}) == []
    assert lines(lint(code, "GL102", extra={"model.py": LSTM_MODEL}), "GL102") != []


def test_options_move_the_limits():
    _, quiet = run("torch.optim.Adam(model.parameters(), lr=0.1)", "GL401", options={"GL401": {"adaptive-limit": 0.2}})
    _, loud = run("torch.optim.SGD(model.parameters(), lr=0.5)", "GL401", options={"GL401": {"sgd-limit": 0.4}})
    assert quiet == []
    assert only(loud, "GL401").message.count("(<= 0.4)") == 1


def test_a_multi_line_constructor_is_reported_on_the_lr_line():
    code = script("torch.optim.Adam(\n    model.parameters(),\n    lr=args.lr,\n)")
    finding = only(lint(code, "GL401", extra={"model.py": LSTM_MODEL}), "GL401")
    assert finding.line == at(code, "lr=args.lr")


TRAIN_FUNCTION = dedent(
    """\
    import argparse

    import torch

    from model import Regressor


    def train_epoch(model, loader, optimizer, criterion):
        for x, y in loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.05)
        args = parser.parse_args()
        model = Regressor().to("cuda")
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        for epoch in range(10):
            train_epoch(model, loader, optimizer, torch.nn.MSELoss())
    """
)


def test_an_optimizer_passed_to_the_training_function_is_found_through_the_call_site():
    findings = lint(TRAIN_FUNCTION, "GL401", "GL402", extra={"model.py": LSTM_MODEL})
    high = only(findings, "GL401")
    assert high.line == at(TRAIN_FUNCTION, "lr=args.lr")
    assert "(`optimizer.step()` at line 13)" in high.message
    regularization = only(findings, "GL402")
    assert regularization.line == at(TRAIN_FUNCTION, "optimizer = torch.optim.Adam")


def test_an_optimizer_built_in_another_file_is_reported_at_the_step_naming_where_the_lr_is():
    trainer = dedent(
        """\
        class Trainer:
            def __init__(self, model, optimizer):
                self.model = model
                self.optimizer = optimizer

            def fit(self, loader, criterion):
                for x, y in loader:
                    self.optimizer.zero_grad()
                    loss = criterion(self.model(x), y)
                    loss.backward()
                    self.optimizer.step()
        """
    )
    main = dedent(
        """\
        import torch

        from model import Regressor
        from trainer import Trainer

        model = Regressor()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.3)
        Trainer(model, optimizer).fit(loader, torch.nn.MSELoss())
        """
    )
    findings = lint(main, "GL401", "GL402", extra={"trainer.py": trainer, "model.py": LSTM_MODEL})
    high = only(findings, "GL401")
    assert high.display_path == "trainer.py" and high.line == at(trainer, "self.optimizer.step()")
    assert "set at train.py:7" in high.message
    regularization = only(findings, "GL402")
    assert regularization.display_path == "trainer.py" and "built at train.py:7" in regularization.message


def test_an_optimizer_attribute_built_in_init_resolves_its_lr_through_the_constructor_call():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        class Trainer:
            def __init__(self, model, lr=0.001):
                self.model = model
                self.optimizer = torch.optim.Adam(model.parameters(), lr=lr)

            def step(self, x, y):
                self.optimizer.zero_grad()
                loss = nn.functional.mse_loss(self.model(x), y)
                loss.backward()
                self.optimizer.step()


        trainer = Trainer(nn.Linear(4, 1), lr=0.25)
        """
    )
    finding = only(lint(code, "GL401"), "GL401")
    assert finding.line == at(code, "lr=lr")
    assert "`lr=0.25` (passed at train.py:17)" in finding.message


# =========================================================================== GL402


@pytest.mark.parametrize(
    "optimizer, how",
    [
        ("torch.optim.Adam(model.parameters(), lr=1e-3)", "no `weight_decay` (the default is 0)"),
        ("torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0)", "`weight_decay=0`"),
        ("torch.optim.SGD(model.parameters(), 0.1, 0.9, 0, 0.0)", "`weight_decay=0.0`"),
        ("torch.optim.AdamW(model.parameters(), weight_decay=0.0)", "`weight_decay=0.0`"),
        ("torch.optim.RMSprop(model.parameters(), lr=1e-3, weight_decay=args.wd)", "--wd"),
    ],
)
def test_a_recurrent_model_without_weight_decay_or_clipping_is_reported_at_the_constructor(optimizer, how):
    code, findings = run(optimizer, "GL402")
    finding = only(findings, "GL402")
    assert finding.line == at(code, "optimizer = ")
    assert finding.severity is Severity.INFO
    assert how in finding.message
    assert "`Regressor`" in finding.message and "nn.LSTM at model.py:7" in finding.message


@pytest.mark.parametrize(
    "optimizer",
    [
        "torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)",
        "torch.optim.AdamW(model.parameters(), lr=1e-3)",  # default weight_decay=0.01
        "torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=settings.wd)",  # unresolved
        "torch.optim.LBFGS(model.parameters())",  # has no weight_decay
        "torch.optim.Adam([{'params': model.lstm.parameters(), 'weight_decay': 1e-4}, {'params': model.head.parameters()}])",
        "SomeOptimizer(model.parameters())",
    ],
)
def test_weight_decay_set_unresolved_or_not_applicable_is_quiet(optimizer):
    _, findings = run(optimizer, "GL402")
    assert findings == []


def test_a_clipped_step_or_a_model_without_recurrent_layers_is_quiet():
    _, clipped = run("torch.optim.Adam(model.parameters())", "GL402", clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    _, feedforward = run("torch.optim.Adam(model.parameters())", "GL402", model=MLP_MODEL)
    assert clipped == [] and feedforward == []


def test_an_unresolved_model_is_quiet():
    code = dedent(
        """\
        import torch

        model = build_model()
        optimizer = torch.optim.Adam(model.parameters())
        for x, y in loader:
            optimizer.zero_grad()
            loss = model(x).sub(y).pow(2).mean()
            loss.backward()
            optimizer.step()
        """
    )
    assert lint(code, "GL402") == []


def test_a_recurrent_submodule_in_a_package_and_a_dataclass_config():
    package = {
        "pkg/__init__.py": "from .model import Seq2Seq\n",
        "pkg/model.py": dedent(
            """\
            import torch.nn as nn


            class Encoder(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.rnn = nn.GRU(32, 64)


            class Seq2Seq(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.encoder = Encoder()
            """
        ),
        "pkg/config.py": dedent(
            """\
            from dataclasses import dataclass


            @dataclass
            class Config:
                lr: float = 0.5
                weight_decay: float = 0.0
            """
        ),
    }
    code = dedent(
        """\
        import torch

        from pkg import Seq2Seq
        from pkg.config import Config

        cfg = Config()
        model = Seq2Seq()
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for x, y in loader:
            optimizer.zero_grad()
            loss = model(x, y)
            loss.backward()
            optimizer.step()
        """
    )
    findings = lint(code, "GL401", "GL402", extra=package)
    finding = only(findings, "GL402")
    assert finding.line == at(code, "optimizer = ")
    assert "nn.GRU at pkg/model.py:7" in finding.message
    assert "Config.weight_decay" in finding.message
