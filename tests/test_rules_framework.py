"""Specification tests for the framework rules: GL106 (framework clipping disabled), GL112 (FSDP
local clipping) and GL113 (conflicting clip config), and for framework awareness: correct
Lightning, Fabric, Hugging Face, DeepSpeed, Accelerate and FSDP code is quiet under every rule.

Lines are computed from the snippets (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gradlint.api import lint_paths, lint_sources
from gradlint.config import Config
from snippets import at, dedent, lines, lint, only

# ============================================================================ shared modules

GRU_MODULE = dedent(
    """\
    import lightning as L
    import torch
    from torch import nn


    class Encoder(nn.Module):
        def __init__(self, hidden):
            super().__init__()
            self.rnn = nn.GRU(1, hidden, num_layers=2, batch_first=True)


    class BeatGRU(L.LightningModule):
        def __init__(self, hidden=128):
            super().__init__()
            self.encoder = Encoder(hidden)
            self.head = nn.Linear(hidden, 5)

        def training_step(self, batch, batch_idx):
            x, y = batch
            out, _ = self.encoder.rnn(x)
            return nn.functional.cross_entropy(self.head(out[:, -1]), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)


    class BeatCNN(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 16, 5)
            self.head = nn.Linear(16, 5)


    class ClippingGRU(BeatGRU):
        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            self.clip_gradients(optimizer, gradient_clip_val=0.5, gradient_clip_algorithm="norm")


    class PassThroughGRU(BeatGRU):
        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            self.log("clip", gradient_clip_val or 0.0)
            self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val, gradient_clip_algorithm=gradient_clip_algorithm)


    class HookClippingGRU(BeatGRU):
        def on_before_optimizer_step(self, optimizer):
            torch.nn.utils.clip_grad_norm_(self.parameters(), 1.0)


    class ManualGRU(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.gru = nn.GRU(4, 32)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.gru(batch)[0].pow(2).mean()
            opt.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(opt, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
            opt.step()


    class ManualNoClipGRU(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.gru = nn.GRU(4, 32)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.gru(batch)[0].pow(2).mean()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
    """
)


def lightning(launcher: str, *codes: str):
    code = dedent(launcher)
    return code, lint(code, *codes, extra={"model.py": GRU_MODULE})


# ============================================================================ GL106 Lightning


@pytest.mark.parametrize(
    "imports, trainer",
    [
        ("import lightning as L", "L.Trainer"),
        ("import lightning.pytorch as pl", "pl.Trainer"),
        ("import pytorch_lightning as pl", "pl.Trainer"),
        ("from lightning.pytorch import Trainer", "Trainer"),
        ("from pytorch_lightning import Trainer as PLTrainer", "PLTrainer"),
    ],
)
def test_trainer_without_clip_val_fitting_a_recurrent_module_is_reported_at_the_trainer(imports, trainer):
    code, findings = lightning(
        f"""\
        {imports}
        from model import BeatGRU

        def main():
            model = BeatGRU(hidden=64)
            trainer = {trainer}(max_epochs=20, accelerator="cpu")
            trainer.fit(model, datamodule)
        """,
        "GL106",
    )
    finding = only(findings, "GL106")
    assert finding.line == at(code, "max_epochs=20")
    assert "`BeatGRU` (model.py:12)" in finding.message
    assert "nn.GRU at model.py:9" in finding.message  # through the Encoder submodule
    assert "does not clip gradients unless `gradient_clip_val` is set" in finding.message
    assert "gradient_clip_val=1.0" in finding.hint


def test_the_module_may_be_passed_by_keyword_built_inline_or_held_on_self():
    code, findings = lightning(
        """\
        import lightning as L
        from model import BeatGRU

        class Runner:
            def __init__(self):
                self.trainer = L.Trainer(max_epochs=3)

            def run(self):
                self.trainer.fit(model=BeatGRU())

        trainer = L.Trainer(max_epochs=5)
        trainer.fit(BeatGRU().to("cpu"))
        """,
        "GL106",
    )
    assert lines(findings, "GL106") == [at(code, "L.Trainer(max_epochs=3)"), at(code, "L.Trainer(max_epochs=5)")]


@pytest.mark.parametrize(
    "module, clip",
    [
        ("BeatGRU", "gradient_clip_val=0.5"),
        ("BeatGRU", "gradient_clip_val=args.clip"),  # argparse default 1.0
        ("BeatGRU", "gradient_clip_val=clip"),  # unresolved parameter: not guessed
        ("BeatGRU", "**trainer_kwargs"),  # may set it
        ("BeatCNN", ""),  # no recurrent layer: Lightning's default is a choice
        ("ClippingGRU", ""),  # configure_gradient_clipping
        ("HookClippingGRU", ""),  # clips in on_before_optimizer_step
        ("ManualGRU", ""),  # manual optimization with self.clip_gradients
    ],
)
def test_trainer_that_clips_or_fits_a_module_that_needs_no_trainer_clipping_is_quiet(module, clip):
    _, findings = lightning(
        f"""\
        import argparse
        import lightning as L
        from model import {module}

        parser = argparse.ArgumentParser()
        parser.add_argument("--clip", type=float, default=1.0)
        args = parser.parse_args()

        def main(clip, trainer_kwargs):
            trainer = L.Trainer(max_epochs=20, {clip})
            trainer.fit({module}())
        """,
        "GL106",
    )
    assert lines(findings, "GL106") == []


def test_module_that_cannot_be_resolved_is_not_guessed():
    _, findings = lightning(
        """\
        import lightning as L
        from model import BeatGRU

        def main(model, build_trainer):
            trainer = L.Trainer(max_epochs=20)
            trainer.fit(model)
            other = build_trainer()
            other.fit(BeatGRU())
        """,
        "GL106",
    )
    assert lines(findings, "GL106") == []


def test_manual_optimization_without_any_clip_is_reported_with_the_manual_fix():
    code, findings = lightning(
        """\
        import lightning as L
        from model import ManualNoClipGRU

        trainer = L.Trainer(max_epochs=20)
        trainer.fit(ManualNoClipGRU())
        """,
        "GL106",
    )
    finding = only(findings, "GL106")
    assert finding.line == at(code, "L.Trainer(")
    assert "self.clip_gradients(opt" in finding.hint and "manual_backward" in finding.hint


@pytest.mark.parametrize("value", ["0", "0.0", "None", "NO_CLIP", "args.clip"])
def test_explicit_zero_or_none_is_reported_at_the_argument_whatever_the_model(value):
    code, findings = lightning(
        f"""\
        import argparse
        import lightning.pytorch as pl
        from model import BeatCNN

        NO_CLIP = 0
        parser = argparse.ArgumentParser()
        parser.add_argument("--clip", type=float, default=0.0)
        args = parser.parse_args()

        trainer = pl.Trainer(
            max_epochs=20,
            gradient_clip_val={value},
        )
        trainer.fit(BeatCNN())
        """,
        "GL106",
    )
    finding = only(findings, "GL106")
    assert finding.line == at(code, "gradient_clip_val=")
    assert "turns gradient clipping off" in finding.message
    if value == "args.clip":
        assert "argparse default of --clip" in finding.message


def test_explicit_zero_on_an_unfitted_trainer_is_reported_too():
    code = dedent(
        """\
        from lightning.pytorch import Trainer

        def make_trainer():
            return Trainer(max_epochs=1, gradient_clip_val=0)
        """
    )
    assert lines(lint(code, "GL106"), "GL106") == [at(code, "gradient_clip_val=0")]


@pytest.mark.parametrize(
    "module, reported",
    [
        ("ClippingGRU", False),  # the override clips with its own 0.5
        ("PassThroughGRU", True),  # the override passes the Trainer's 0 on
        ("ManualGRU", False),  # manual optimization ignores the Trainer's value
        ("ManualNoClipGRU", True),
    ],
)
def test_explicit_zero_is_quiet_only_when_the_module_clips_with_a_value_of_its_own(module, reported):
    code, findings = lightning(
        f"""\
        import lightning as L
        from model import {module}

        trainer = L.Trainer(max_epochs=20, gradient_clip_val=0)
        trainer.fit({module}())
        """,
        "GL106",
    )
    assert lines(findings, "GL106") == ([at(code, "gradient_clip_val=0")] if reported else [])


def test_a_none_that_is_only_a_default_is_the_same_as_leaving_it_out():
    code, findings = lightning(
        """\
        import argparse
        import lightning as L
        from model import BeatCNN, BeatGRU

        parser = argparse.ArgumentParser()
        parser.add_argument("--clip", type=float, default=None)
        args = parser.parse_args()

        cnn = L.Trainer(gradient_clip_val=args.clip)
        cnn.fit(BeatCNN())
        gru = L.Trainer(gradient_clip_val=args.clip)
        gru.fit(BeatGRU())
        """,
        "GL106",
    )
    finding = only(findings, "GL106")
    assert finding.line == at(code, "gru = L.Trainer")
    assert "argparse default of --clip" in finding.message


def test_a_trainer_of_another_library_is_not_lightning():
    code = dedent(
        """\
        from my_framework import Trainer
        from model import BeatGRU

        trainer = Trainer(max_epochs=20, gradient_clip_val=0)
        trainer.fit(BeatGRU())
        """
    )
    assert lint(code, "GL106", extra={"model.py": GRU_MODULE}) == []


# ============================================================================ GL106 Hugging Face

HF_LSTM = dedent(
    """\
    import torch.nn as nn


    class LSTMClassifier(nn.Module):
        def __init__(self, vocab, hidden=128):
            super().__init__()
            self.embed = nn.Embedding(vocab, hidden)
            self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 2)
    """
)


@pytest.mark.parametrize(
    "arguments, value",
    [
        ("TrainingArguments", "0.0"),
        ("TrainingArguments", "0"),
        ("TrainingArguments", "-1"),
        ("Seq2SeqTrainingArguments", "0"),
        ("TrainingArguments", "NO_CLIP"),
        ("TrainingArguments", "args.max_grad_norm"),
        ("TrainingArguments", "cfg.max_grad_norm"),
    ],
)
def test_max_grad_norm_zero_is_reported_at_the_argument(arguments, value):
    code = dedent(
        f"""\
        import argparse
        from dataclasses import dataclass

        from transformers import Seq2SeqTrainingArguments, Trainer, TrainingArguments

        from settings import NO_CLIP


        @dataclass
        class Config:
            max_grad_norm: float = 0.0


        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("--max-grad-norm", type=float, default=0.0)
            args = parser.parse_args()
            cfg = Config()
            training_args = {arguments}(
                output_dir="out",
                learning_rate=2e-3,
                max_grad_norm={value},
            )
            Trainer(model=model, args=training_args).train()
        """
    )
    finding = only(lint(code, "GL106", extra={"settings.py": "NO_CLIP = 0.0\n"}), "GL106")
    assert finding.line == at(code, "max_grad_norm=")
    assert "1.0 by default" in finding.message and "0 disables it" in finding.message
    assert "max_grad_norm=1.0" in finding.hint
    if value == "NO_CLIP":
        assert "settings.py:1" in finding.message


@pytest.mark.parametrize("value", ["", "max_grad_norm=1.0,", "max_grad_norm=0.5,", "max_grad_norm=args.clip,", "**overrides,"])
def test_default_or_positive_or_unresolved_max_grad_norm_is_quiet(value):
    code = dedent(
        f"""\
        from transformers import TrainingArguments

        def build(args, overrides):
            return TrainingArguments(output_dir="out", {value})
        """
    )
    assert lint(code, "GL106") == []


def test_the_recurrent_model_is_named_when_the_trainer_shows_it():
    code = dedent(
        """\
        from transformers import Trainer, TrainingArguments
        from model import LSTMClassifier

        model = LSTMClassifier(5000)
        args = TrainingArguments(output_dir="out", max_grad_norm=0)
        trainer = Trainer(model=model, args=args)
        """
    )
    finding = only(lint(code, "GL106", extra={"model.py": HF_LSTM}), "GL106")
    assert "`LSTMClassifier` has a recurrent layer (nn.LSTM at model.py:8)" in finding.message


@pytest.mark.parametrize(
    "config, reported",
    [
        ({"train_batch_size": "auto"}, True),
        ({"train_batch_size": "auto", "gradient_clipping": "auto"}, False),
        ({"train_batch_size": "auto", "gradient_clipping": 1.0}, False),
    ],
)
def test_hf_deepspeed_config_without_gradient_clipping_is_reported_for_a_recurrent_model(config, reported):
    code = dedent(
        """\
        from transformers import Trainer, TrainingArguments
        from model import LSTMClassifier

        model = LSTMClassifier(5000)
        args = TrainingArguments(
            output_dir="out",
            deepspeed="ds_config.json",
        )
        trainer = Trainer(model=model, args=args)
        """
    )
    findings = lint(code, "GL106", extra={"model.py": HF_LSTM, "ds_config.json": json.dumps(config)})
    assert lines(findings, "GL106") == ([at(code, 'deepspeed="ds_config.json"')] if reported else [])
    if reported:
        assert '"gradient_clipping": "auto"' in findings[0].hint


# ============================================================================ GL106 DeepSpeed

DS_SCRIPT = """\
import deepspeed
from model import LSTMClassifier

model = LSTMClassifier(5000)
engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config={config})
"""


@pytest.mark.parametrize(
    "config, model, reported",
    [
        ({"train_batch_size": 8, "gradient_clipping": 0}, "model.py", True),
        ({"train_batch_size": 8, "gradient_clipping": 0.0}, "cnn", True),  # 0 is reported whatever the model
        ({"train_batch_size": 8}, "model.py", True),  # missing: reported for a recurrent model
        ({"train_batch_size": 8}, "cnn", False),
        ({"train_batch_size": 8, "gradient_clipping": 1.0}, "model.py", False),
    ],
)
def test_deepspeed_json_config_is_read_beside_the_script(config, model, reported):
    code = DS_SCRIPT.format(config='"configs/ds.json"')
    module = HF_LSTM if model == "model.py" else HF_LSTM.replace("nn.LSTM(hidden, hidden, batch_first=True)", "nn.Linear(hidden, hidden)")
    findings = lint(code, "GL106", extra={"model.py": module, "configs/ds.json": json.dumps(config, indent=2)})
    assert lines(findings, "GL106") == ([at(code, "deepspeed.initialize")] if reported else [])
    if reported:
        assert "configs/ds.json" in findings[0].message
        assert "does not clip gradients unless the config sets" in findings[0].message


def test_deepspeed_dict_literal_is_reported_at_its_entry_and_mutations_are_followed():
    code = dedent(
        """\
        import deepspeed

        zero_config = {
            "train_batch_size": 8,
            "gradient_clipping": 0.0,
        }
        engine, *_ = deepspeed.initialize(model=net, config=zero_config)

        def later(net):
            cfg = dict(train_batch_size=8, gradient_clipping=0)
            cfg["gradient_clipping"] = 1.0
            return deepspeed.initialize(model=net, config_params=cfg)

        def inline(net):
            return deepspeed.initialize(model=net, config={"gradient_clipping": 0, "fp16": {"enabled": True}})
        """
    )
    findings = lint(code, "GL106")
    assert lines(findings, "GL106") == [at(code, '"gradient_clipping": 0.0'), at(code, 'config={"gradient_clipping": 0')]


def test_deepspeed_dict_imported_from_another_module_is_reported_at_the_call():
    code = DS_SCRIPT.format(config="ZERO2")
    code = code.replace("import deepspeed\n", "import deepspeed\nfrom ds_configs import ZERO2\n")
    configs = 'ZERO2 = {\n    "zero_optimization": {"stage": 2},\n    "gradient_clipping": 0,\n}\n'
    finding = only(lint(code, "GL106", extra={"model.py": HF_LSTM, "ds_configs.py": configs}), "GL106")
    assert finding.line == at(code, "deepspeed.initialize")
    assert "ds_configs.py" in finding.message


@pytest.mark.parametrize(
    "config",
    [
        "args.deepspeed_config",  # from the command line
        "build_config()",  # built at run time
        '"missing.json"',  # no such file
        '"broken.json"',  # not JSON
        '"list.json"',  # JSON, but not an object
        "unknown",  # `unknown.update(...)`: keys cannot be known
    ],
)
def test_deepspeed_config_that_cannot_be_read_is_not_guessed(config):
    code = DS_SCRIPT.format(config=config)
    code = code.replace("model = ", 'unknown = {"train_batch_size": 8}\nunknown.update(extra)\nmodel = ')
    extra = {"model.py": HF_LSTM, "broken.json": '{"gradient_clipping": 0,', "list.json": "[1, 2]"}
    assert lint(code, "GL106", extra=extra) == []


def test_deepspeed_without_config_argument_and_unresolved_model_are_quiet():
    code = dedent(
        """\
        import deepspeed

        def setup(args, model):
            engine, *_ = deepspeed.initialize(args=args, model=model, model_parameters=model.parameters())
            other, *_ = deepspeed.initialize(model=model, config={"train_batch_size": 8})
            return engine, other
        """
    )
    assert lint(code, "GL106") == []


def test_json_is_read_from_disk_beside_the_script_then_under_the_project_root(tmp_path: Path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (tmp_path / "pyproject.toml").write_text("[tool.gradlint]\n")
    (tmp_path / "ds_root.json").write_text(json.dumps({"gradient_clipping": 0}))
    (scripts / "ds_local.json").write_text(json.dumps({"gradient_clipping": 0.0}))
    (scripts / "ds_broken.json").write_text("{not json")
    script = dedent(
        """\
        import deepspeed

        def run(model):
            a = deepspeed.initialize(model=model, config="ds_local.json")
            b = deepspeed.initialize(model=model, config="ds_root.json")
            c = deepspeed.initialize(model=model, config="ds_broken.json")
            d = deepspeed.initialize(model=model, config="ds_missing.json")
        """
    )
    (scripts / "train.py").write_text(script)
    report = lint_paths([tmp_path], Config(root=tmp_path), cwd=tmp_path)
    assert not report.errors
    found = sorted(f.line for f in report.findings if f.code == "GL106")
    assert found == [at(script, "ds_local.json"), at(script, "ds_root.json")]


# ============================================================================ GL112

FSDP_LOOP = dedent(
    """\
    import torch
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.distributed.fsdp import fully_shard


    def main(net, loader):
        model = {wrap}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        for x, y in loader:
            optimizer.zero_grad()
            loss = model(x, y)
            loss.backward()
            {clip}
            optimizer.step()
    """
)


@pytest.mark.parametrize(
    "wrap",
    [
        "FSDP(net, device_id=rank)",
        "FSDP(net).cuda()",
        "torch.distributed.fsdp.FullyShardedDataParallel(net)",
    ],
)
def test_plain_clip_on_an_fsdp_wrapped_model_is_reported_at_the_clip(wrap):
    code = FSDP_LOOP.format(wrap=wrap, clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    finding = only(lint(code, "GL112"), "GL112")
    assert finding.line == at(code, "clip_grad_norm_")
    assert f"at line {at(code, 'model = ')}" in finding.message
    assert "local shard" in finding.message
    assert "`model.clip_grad_norm_(1.0)`" in finding.hint
    assert [r.line for r in finding.related] == [at(code, "model = ")]


@pytest.mark.parametrize(
    "wrap, clip",
    [
        ("FSDP(net)", "model.clip_grad_norm_(1.0)"),  # the wrapper's method
        ("FSDP(net)", "torch.nn.utils.clip_grad_value_(model.parameters(), 1.0)"),  # element-wise
        ("fully_shard(net)", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),  # FSDP2: DTensor-aware
        ("DDP(net)", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),
        ("net", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),
    ],
)
def test_correct_clipping_of_sharded_or_replicated_models_is_quiet(wrap, clip):
    code = FSDP_LOOP.format(wrap=wrap, clip=clip)
    assert lint(code, "GL112") == []


def test_a_local_class_named_fsdp_is_not_torch_fsdp():
    code = FSDP_LOOP.format(wrap="FSDP(net)", clip="torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)")
    code = code.replace("from torch.distributed.fsdp import FullyShardedDataParallel as FSDP", "from mylib import FSDP")
    assert lint(code, "GL112") == []


def test_wrapped_on_self_and_clipped_in_another_method_through_a_params_variable():
    code = dedent(
        """\
        import torch
        import torch.distributed.fsdp as fsdp
        from torch.nn.utils import clip_grad_norm_ as clip


        class Trainer:
            def __init__(self, net):
                self.model = fsdp.FullyShardedDataParallel(net, use_orig_params=True)
                self.optimizer = torch.optim.AdamW(self.model.parameters())

            def step(self, batch):
                self.optimizer.zero_grad()
                self.model(batch).backward()
                params = self.model.parameters()
                clip(params, 0.5)
                self.optimizer.step()
        """
    )
    finding = only(lint(code, "GL112"), "GL112")
    assert finding.line == at(code, "clip(params, 0.5)")
    assert "`self.model.clip_grad_norm_(0.5)`" in finding.hint


def test_wrapped_model_passed_to_a_training_function_in_another_file():
    loop = dedent(
        """\
        import torch


        def train_epoch(model, loader, optimizer, max_norm=1.0):
            for batch in loader:
                optimizer.zero_grad()
                model(batch).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                optimizer.step()
        """
    )
    launcher = dedent(
        """\
        from torch.distributed.fsdp import FullyShardedDataParallel
        from loop import train_epoch

        def main(net, loader, optimizer, plain):
            model = FullyShardedDataParallel(net)
            train_epoch(model, loader, optimizer)
            train_epoch(plain, loader, optimizer)
        """
    )
    findings = lint_sources({"loop.py": loop, "launch.py": launcher}, select={"GL112"})
    finding = only(findings, "GL112")
    assert (finding.display_path, finding.line) == ("loop.py", at(loop, "clip_grad_norm_"))
    assert f"launch.py:{at(launcher, 'model = ')}" in finding.message
    assert f"launch.py:{at(launcher, 'train_epoch(model')}" in finding.message


def test_a_parameter_that_no_caller_wraps_is_quiet():
    code = dedent(
        """\
        import torch
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        def train(model, optimizer):
            model(batch).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

        def main(net, optimizer):
            sharded = FSDP(net)
            sharded.clip_grad_norm_(1.0)
            train(net, optimizer)
        """
    )
    assert lint(code, "GL112") == []


# ============================================================================ GL113 Hugging Face + DeepSpeed

HF_DS = """\
from transformers import Trainer, TrainingArguments

training_args = TrainingArguments(output_dir="out", learning_rate=2e-3, {norm}deepspeed={config})
"""


@pytest.mark.parametrize(
    "norm, clipping, reported",
    [
        ("max_grad_norm=1.0, ", 5.0, True),
        ("", 5.0, True),  # the default 1.0 against 5.0
        ("", 1, False),  # 1 == 1.0
        ("max_grad_norm=0.5, ", 0.5, False),
        ("max_grad_norm=1.0, ", "auto", False),  # the Trainer fills "auto" in
        ("max_grad_norm=1.0, ", None, False),  # no entry: GL106's concern, not a conflict
        ("max_grad_norm=args.clip, ", 5.0, False),  # unresolved
    ],
)
def test_max_grad_norm_against_the_deepspeed_json(norm, clipping, reported):
    code = HF_DS.format(norm=norm, config='"ds_config.json"')
    config = {"train_batch_size": "auto"}
    if clipping is not None:
        config["gradient_clipping"] = clipping
    findings = lint(code, "GL113", extra={"ds_config.json": json.dumps(config)})
    assert lines(findings, "GL113") == ([at(code, "TrainingArguments(output_dir")] if reported else [])
    if reported:
        message = findings[0].message
        assert f'"gradient_clipping": {clipping}' in message and "`ds_config.json`" in message
        assert ("at its default 1.0" in message) == (norm == "")
        assert '"auto"' in findings[0].hint


def test_max_grad_norm_against_an_inline_dict_points_at_both_values():
    code = HF_DS.format(norm="max_grad_norm=MAX_NORM, ", config='{"gradient_clipping": 2.0}')
    code = code.replace("training_args", "MAX_NORM = 0.25\ntraining_args", 1)
    finding = only(lint(code, "GL113"), "GL113")
    assert finding.line == at(code, "TrainingArguments(output_dir")
    assert "`max_grad_norm=MAX_NORM` = 0.25" in finding.message
    assert {r.message for r in finding.related} == {"the Trainer's threshold", "DeepSpeed's threshold"}


def test_deepspeed_config_from_the_command_line_is_not_compared():
    code = HF_DS.format(norm="max_grad_norm=1.0, ", config="args.deepspeed")
    assert lint(code, "GL113") == []


# ============================================================================ GL113 Lightning


@pytest.mark.parametrize(
    "module, clip, reported",
    [
        ("ManualGRU", "gradient_clip_val=1.0", True),
        ("ManualNoClipGRU", "gradient_clip_val=0.5", True),
        ("ManualGRU", "gradient_clip_val=args.clip", True),  # argparse default 1.0
        ("ManualGRU", "gradient_clip_val=0", False),  # Lightning accepts 0 (GL106 judges it)
        ("ManualGRU", "", False),
        ("ManualGRU", "gradient_clip_val=clip", False),  # unresolved
        ("BeatGRU", "gradient_clip_val=1.0", False),  # automatic optimization
    ],
)
def test_trainer_clip_val_with_manual_optimization(module, clip, reported):
    code, findings = lightning(
        f"""\
        import argparse
        import lightning.pytorch as pl
        from model import {module}

        parser = argparse.ArgumentParser()
        parser.add_argument("--clip", type=float, default=1.0)
        args = parser.parse_args()

        def main(clip):
            model = {module}()
            trainer = pl.Trainer(max_epochs=50, {clip})
            trainer.fit(model, datamodule=datamodule)
        """,
        "GL113",
    )
    assert lines(findings, "GL113") == ([at(code, "pl.Trainer(")] if reported else [])
    if reported:
        assert "MisconfigurationException" in findings[0].message
        assert f"`{module}` (model.py:" in findings[0].message
        assert ("already clips" in findings[0].message) == (module == "ManualGRU")


def test_unresolved_module_is_not_guessed_for_gl113():
    _, findings = lightning(
        """\
        import lightning.pytorch as pl

        def main(model):
            trainer = pl.Trainer(gradient_clip_val=1.0)
            trainer.fit(model)
        """,
        "GL113",
    )
    assert findings == []


# ============================================================================ framework awareness

ALL_RULES = ("ALL",)

CORRECT_FRAMEWORK_CODE = {
    "lightning_automatic": {
        "model.py": GRU_MODULE[: GRU_MODULE.index("class ManualNoClipGRU")],
        "train.py": dedent(
            """\
            import lightning as L
            from model import BeatGRU, ManualGRU

            def main():
                trainer = L.Trainer(max_epochs=20, gradient_clip_val=1.0, gradient_clip_algorithm="norm")
                trainer.fit(BeatGRU(), datamodule)
                manual = L.Trainer(max_epochs=20)
                manual.fit(ManualGRU(), datamodule)
            """
        ),
    },
    "fabric": {
        "train.py": dedent(
            """\
            import lightning as L
            import torch
            from torch import nn

            fabric = L.Fabric(accelerator="cuda", devices=2, precision="bf16-mixed")
            fabric.launch()
            model = nn.LSTM(32, 128, num_layers=2)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            model, optimizer = fabric.setup(model, optimizer)
            loader = fabric.setup_dataloaders(loader)
            for x, y in loader:
                optimizer.zero_grad()
                out, _ = model(x)
                loss = nn.functional.mse_loss(out, y)
                fabric.backward(loss)
                fabric.clip_gradients(model, optimizer, max_norm=1.0)
                optimizer.step()
            """
        ),
    },
    "hugging_face_deepspeed": {
        "ds_config.json": json.dumps({"train_batch_size": "auto", "gradient_clipping": "auto"}),
        "model.py": HF_LSTM,
        "train.py": dedent(
            """\
            from transformers import Trainer, TrainingArguments
            from model import LSTMClassifier

            model = LSTMClassifier(5000)
            args = TrainingArguments(output_dir="out", learning_rate=2e-3, weight_decay=0.01, deepspeed="ds_config.json")
            trainer = Trainer(model=model, args=args, train_dataset=train_dataset)
            trainer.train()
            """
        ),
    },
    "deepspeed_engine": {
        "ds_config.json": json.dumps({"train_batch_size": 64, "gradient_clipping": 1.0}),
        "model.py": HF_LSTM,
        "train.py": dedent(
            """\
            import deepspeed
            from model import LSTMClassifier

            model = LSTMClassifier(5000)
            engine, optimizer, loader, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config="ds_config.json")
            for x, y in loader:
                loss = engine(x, y)
                engine.backward(loss)
                engine.step()
            """
        ),
    },
    "accelerate": {
        "train.py": dedent(
            """\
            import torch
            from accelerate import Accelerator
            from torch import nn

            accelerator = Accelerator(gradient_accumulation_steps=4)
            model = nn.GRU(16, 64)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
            for x, y in loader:
                with accelerator.accumulate(model):
                    out, _ = model(x)
                    loss = nn.functional.mse_loss(out, y)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    optimizer.zero_grad()
            """
        ),
    },
    "fsdp": {
        "train.py": dedent(
            """\
            import torch
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

            def train(model, loader, optimizer):
                for x, y in loader:
                    optimizer.zero_grad(set_to_none=True)
                    loss = model(x, y)
                    loss.backward()
                    model.clip_grad_norm_(1.0)
                    optimizer.step()

            def main(net, loader):
                model = FSDP(net)
                optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
                train(model, loader, optimizer)
            """
        ),
    },
}


@pytest.mark.parametrize("project", sorted(CORRECT_FRAMEWORK_CODE))
def test_correct_framework_code_is_quiet_under_every_rule(project):
    findings = lint_sources(CORRECT_FRAMEWORK_CODE[project], select=ALL_RULES)
    assert [(f.code, f.display_path, f.line, f.message) for f in findings if f.code != "GL000"] == []


BROKEN_SETTINGS = {
    "lightning_automatic": ("train.py", "gradient_clip_val=1.0", "gradient_clip_val=0"),
    "hugging_face_deepspeed": ("ds_config.json", '"auto"}', "3.0}"),
    "deepspeed_engine": ("ds_config.json", '"gradient_clipping": 1.0', '"gradient_clipping": 0'),
    "fsdp": ("train.py", "model.clip_grad_norm_(1.0)", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"),
}
"""One edit per project that breaks its framework clipping setting (Fabric and Accelerate have none:
their loops are hand-written, and GL101/GL110 judge them)."""


@pytest.mark.parametrize("project", sorted(BROKEN_SETTINGS))
def test_the_framework_rules_see_the_correct_code(project):
    """The quiet result above is not for lack of reading: breaking the setting is reported."""
    files = dict(CORRECT_FRAMEWORK_CODE[project])
    name, old, new = BROKEN_SETTINGS[project]
    assert old in files[name]
    files[name] = files[name].replace(old, new)
    findings = lint_sources(files, select={"GL106", "GL112", "GL113"})
    assert len(findings) == 1, [(f.code, f.line, f.message) for f in findings]


def test_each_fit_belongs_to_the_trainer_assigned_last_before_it():
    code, findings = lightning(
        """\
        import lightning as L
        from model import BeatCNN, BeatGRU

        def main():
            trainer = L.Trainer(max_epochs=1)
            trainer.fit(BeatGRU())
            trainer = L.Trainer(max_epochs=2)
            trainer.fit(BeatCNN())
        """,
        "GL106",
    )
    assert lines(findings, "GL106") == [at(code, "max_epochs=1")]
