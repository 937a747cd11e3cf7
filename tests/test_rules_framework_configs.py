"""Specification tests for GL106 and GL113 when the Lightning Trainer is not written in the checked
file's own `Trainer(...)` call: a Trainer built in another file (a factory, an imported module
object), by `LightningCLI` from YAML configs beside the script, or by Hydra from a `conf/` tree;
and for the YAML reader those configs go through.

Lines are computed from the snippet (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import math

import pytest
import yaml

from gradlint.api import lint_sources
from gradlint.index.frameworks.yamlish import UNKNOWN, load
from snippets import at, dedent, only

MODELS = dedent(
    """\
    import lightning as L
    import torch
    from torch import nn


    class Forecaster(L.LightningModule):
        def __init__(self, hidden=128):
            super().__init__()
            self.lstm = nn.LSTM(8, hidden, num_layers=2, batch_first=True)
            self.head = nn.Linear(hidden, 1)

        def training_step(self, batch, batch_idx):
            x, y = batch
            out, _ = self.lstm(x)
            return nn.functional.mse_loss(self.head(out[:, -1]), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)


    class ConvForecaster(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(8, 32, 5)
            self.head = nn.Linear(32, 1)


    class ClippingForecaster(Forecaster):
        def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
            self.clip_gradients(optimizer, gradient_clip_val=0.5, gradient_clip_algorithm="norm")


    class ManualForecaster(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.gru = nn.GRU(8, 32)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            loss = self.gru(batch)[0].pow(2).mean()
            opt.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(opt, gradient_clip_val=0.5, gradient_clip_algorithm="norm")
            opt.step()
    """
)

CLI_MAIN = dedent(
    """\
    from lightning.pytorch.cli import LightningCLI

    from models import Forecaster
    from data import SeriesData


    def cli_main():
        cli = LightningCLI({arguments})


    if __name__ == "__main__":
        cli_main()
    """
)

CONFIG = """\
# python main.py fit --config configs/lstm.yaml
seed_everything: 7
trainer:
  max_epochs: 30
  accelerator: auto
{clip}model:
  hidden: 256
data:
  batch_size: 64
"""


def cli(arguments: str = "Forecaster, SeriesData", configs: dict[str, str] | None = None, select=("GL106",)):
    code = CLI_MAIN.format(arguments=arguments)
    files = {"main.py": code, "models.py": MODELS, **(configs or {})}
    return code, lint_sources(files, select=set(select))


def config(clip: str = "", **replace: str) -> str:
    text = CONFIG.format(clip=clip)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


# ============================================================================ LightningCLI


def test_cli_config_without_clip_val_for_a_recurrent_model_is_reported_at_the_cli():
    code, findings = cli(configs={"configs/lstm.yaml": config()})
    finding = only(findings, "GL106")
    assert finding.line == at(code, "cli = LightningCLI(")
    assert "`LightningCLI(...)` with `configs/lstm.yaml` fits `Forecaster`" in finding.message
    assert "no `gradient_clip_val`" in finding.message and "nn.LSTM" in finding.message
    assert "`gradient_clip_val: 1.0`" in finding.hint and "configs/lstm.yaml" in finding.hint


@pytest.mark.parametrize(
    ("clip", "arguments"),
    [
        ("  gradient_clip_val: 0.5\n", "Forecaster, SeriesData"),
        ("  gradient_clip_val: 1\n  gradient_clip_algorithm: norm\n", "Forecaster, SeriesData"),
        ("", 'Forecaster, SeriesData, trainer_defaults={"gradient_clip_val": 1.0}'),
        ("", "ClippingForecaster, SeriesData"),
        ("", "ConvForecaster, SeriesData"),
    ],
    ids=["yaml-clip", "yaml-int", "trainer-defaults", "module-clips-itself", "not-recurrent"],
)
def test_cli_that_clips_or_trains_a_model_needing_no_trainer_clipping_is_quiet(clip, arguments):
    code = CLI_MAIN.format(arguments=arguments).replace("import Forecaster", "import ClippingForecaster, ConvForecaster, Forecaster")
    files = {"main.py": code, "models.py": MODELS, "configs/lstm.yaml": config(clip)}
    assert lint_sources(files, select={"GL106"}) == []


def test_a_yaml_clip_val_of_zero_is_reported_with_its_file_and_line_whatever_the_model():
    text = config("  gradient_clip_val: 0\n")
    code = CLI_MAIN.format(arguments="ConvForecaster, SeriesData").replace("import Forecaster", "import ConvForecaster")
    findings = lint_sources({"main.py": code, "models.py": MODELS, "configs/cnn.yaml": text}, select={"GL106"})
    finding = only(findings, "GL106")
    assert finding.line == at(code, "cli = LightningCLI(")
    assert f"`gradient_clip_val` = 0 (configs/cnn.yaml:{at(text, 'gradient_clip_val')})" in finding.message
    assert "turns gradient clipping off" in finding.message


def test_a_yaml_zero_overrides_trainer_defaults():
    _, findings = cli(
        'Forecaster, SeriesData, trainer_defaults={"gradient_clip_val": 1.0}',
        {"configs/lstm.yaml": config("  gradient_clip_val: 0.0\n")},
    )
    assert "turns gradient clipping off" in only(findings, "GL106").message


def test_trainer_defaults_of_zero_without_any_config_is_reported_at_the_entry():
    code, findings = cli('Forecaster, SeriesData, trainer_defaults={"max_epochs": 5, "gradient_clip_val": 0}')
    finding = only(findings, "GL106")
    assert finding.line == at(code, "cli = LightningCLI(")
    assert "`gradient_clip_val=0`" in finding.message


def test_without_any_config_beside_the_script_the_command_line_is_unknown_and_quiet():
    _, findings = cli(configs={"README.md": "python main.py fit --trainer.gradient_clip_val 1.0\n"})
    assert findings == []


def test_the_model_class_path_of_the_config_is_the_model_in_subclass_mode():
    text = config().replace("model:\n  hidden: 256\n", "model:\n  class_path: models.Forecaster\n  init_args:\n    hidden: 256\n")
    code = CLI_MAIN.format(arguments="datamodule_class=SeriesData, subclass_mode_model=True").replace(
        "from models import Forecaster\n", ""
    )
    findings = lint_sources({"main.py": code, "models.py": MODELS, "configs/lstm.yaml": text}, select={"GL106"})
    assert "fits `Forecaster`" in only(findings, "GL106").message


def test_several_configs_without_clipping_give_one_finding_that_names_them_all():
    _, findings = cli(configs={"configs/small.yaml": config(), "configs/large.yaml": config(), "configs/clipped.yaml": config("  gradient_clip_val: 0.5\n")})
    finding = only(findings, "GL106")
    assert "`configs/large.yaml`" in finding.message and "the same holds for `configs/small.yaml`" in finding.message
    assert "clipped.yaml" not in finding.message


def test_default_config_files_are_read_wherever_they_are():
    _, findings = cli(
        'Forecaster, SeriesData, parser_kwargs={"fit": {"default_config_files": ["experiments/base.yaml"]}}',
        {"experiments/base.yaml": config()},
    )
    assert "`experiments/base.yaml`" in only(findings, "GL106").message


@pytest.mark.parametrize(
    "text",
    [
        "trainer: &shared\n  max_epochs: 3\nother:\n  <<: *shared\n",
        "trainer:\n  gradient_clip_val: !!python/name:foo.bar\n",
        "trainer: {max_epochs: 3\n",
        "model:\n  hidden: 256\n",
    ],
    ids=["merge-key", "tagged-value", "broken", "no-trainer-section"],
)
def test_configs_that_cannot_be_read_or_say_nothing_of_the_trainer_are_not_guessed(text):
    _, findings = cli(configs={"configs/lstm.yaml": text})
    assert findings == []


def test_yaml_beside_the_script_that_is_no_lightning_config_is_ignored():
    _, findings = cli(configs={".pre-commit-config.yaml": "repos:\n  - repo: local\n", "environment.yml": "name: ts\n"})
    assert findings == []


# ================================================================================= Hydra

HYDRA_TRAIN = dedent(
    """\
    import hydra
    import lightning as L
    from omegaconf import DictConfig


    def train(cfg: DictConfig):
        datamodule = hydra.utils.instantiate(cfg.data)
        model = hydra.utils.instantiate(cfg.model)
        trainer = {trainer}
        trainer.fit(model=model, datamodule=datamodule)


    @hydra.main(version_base="1.3", config_path="../configs", config_name="train.yaml")
    def main(cfg: DictConfig):
        train(cfg)


    if __name__ == "__main__":
        main()
    """
)

HYDRA_CONFIG = """\
defaults:
  - _self_
  - data: series
  - model: lstm
  - trainer: {option}
  - override hydra/launcher: basic

seed: 12345
{own}"""

TRAINER_DEFAULT = """\
_target_: lightning.pytorch.trainer.Trainer
default_root_dir: ${paths.output_dir}
min_epochs: 1
max_epochs: 10
accelerator: cpu
devices: 1
check_val_every_n_epoch: 1
deterministic: False
"""

MODEL_LSTM = """\
_target_: src.models.Forecaster
hidden: 128
"""


def hydra_project(trainer="hydra.utils.instantiate(cfg.trainer)", option="default", own="", trainer_yaml=TRAINER_DEFAULT):
    code = HYDRA_TRAIN.format(trainer=trainer)
    files = {
        "src/train.py": code,
        "src/__init__.py": "",
        "src/models.py": MODELS,
        "configs/train.yaml": HYDRA_CONFIG.format(option=option, own=own),
        f"configs/trainer/{option}.yaml": trainer_yaml,
        "configs/model/lstm.yaml": MODEL_LSTM,
    }
    return code, files


def test_hydra_trainer_group_without_clip_val_for_a_recurrent_target_model_is_reported():
    code, files = hydra_project()
    finding = only(lint_sources(files, select={"GL106"}), "GL106")
    assert finding.display_path == "src/train.py"
    assert finding.line == at(code, "trainer = hydra.utils.instantiate(cfg.trainer)")
    assert "configs/trainer/default.yaml" in finding.message and "fits `Forecaster`" in finding.message
    assert "nn.LSTM" in finding.message


@pytest.mark.parametrize(
    ("trainer_yaml", "own"),
    [
        (TRAINER_DEFAULT + "gradient_clip_val: 0.5\n", ""),
        (TRAINER_DEFAULT, "trainer:\n  gradient_clip_val: 1.0\n"),
    ],
    ids=["in-the-group", "in-the-primary"],
)
def test_hydra_configs_that_clip_are_quiet(trainer_yaml, own):
    _, files = hydra_project(own=own, trainer_yaml=trainer_yaml)
    assert lint_sources(files, select={"GL106"}) == []


def test_hydra_trainer_unpacked_into_lightning_trainer_reads_the_group_and_its_zero():
    code, files = hydra_project(
        trainer="L.Trainer(**cfg.trainer, logger=False)",
        trainer_yaml="max_epochs: 10\ngradient_clip_val: 0.0\n",
    )
    finding = only(lint_sources(files, select={"GL106"}), "GL106")
    assert finding.line == at(code, "L.Trainer(**cfg.trainer")
    assert "`gradient_clip_val` = 0.0 (configs/trainer/default.yaml:2)" in finding.message


def test_hydra_keyword_written_in_the_call_wins_over_the_config():
    _, files = hydra_project(trainer="hydra.utils.instantiate(cfg.trainer, gradient_clip_val=1.0)")
    assert lint_sources(files, select={"GL106"}) == []


def test_hydra_group_that_is_not_a_lightning_trainer_is_not_read():
    _, files = hydra_project(trainer_yaml=TRAINER_DEFAULT.replace("lightning.pytorch.trainer.Trainer", "src.loops.Runner"))
    assert lint_sources(files, select={"GL106"}) == []


# ===================================================================== Trainer built elsewhere

FACTORY = dedent(
    """\
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint


    def build_trainer(args):
        checkpoint = ModelCheckpoint(monitor="val_loss")
        trainer = L.Trainer(max_epochs=args.epochs, callbacks=[checkpoint]{clip})
        return trainer


    shared_trainer = L.Trainer(max_epochs=5{clip})
    """
)

FIT = dedent(
    """\
    import argparse

    from models import Forecaster
    from factory import build_trainer, shared_trainer


    def main():
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=20)
        args = parser.parse_args()
        trainer = build_trainer(args)
        trainer.fit(Forecaster(hidden=64))
        shared_trainer.fit(Forecaster())
    """
)


def test_a_trainer_built_by_a_factory_or_a_module_of_another_file_is_reported_at_the_fit():
    factory = FACTORY.format(clip="")
    findings = lint_sources({"train.py": FIT, "factory.py": factory, "models.py": MODELS}, select={"GL106"})
    found = sorted((f.display_path, f.line) for f in findings)
    assert found == [("train.py", at(FIT, "trainer.fit(Forecaster(hidden=64))")), ("train.py", at(FIT, "shared_trainer.fit("))]
    messages = " ".join(f.message for f in findings)
    assert f"the Trainer built by `build_trainer` (factory.py:{at(factory, '    trainer = L.Trainer(')})" in messages
    assert "the Trainer imported as `shared_trainer`" in messages


def test_a_factory_that_clips_is_quiet_and_its_zero_is_reported_only_where_it_is_built():
    assert lint_sources({"train.py": FIT, "factory.py": FACTORY.format(clip=", gradient_clip_val=1.0"), "models.py": MODELS}, select={"GL106"}) == []
    factory = FACTORY.format(clip=", gradient_clip_val=0")
    findings = lint_sources({"train.py": FIT, "factory.py": factory, "models.py": MODELS}, select={"GL106"})
    assert sorted({f.display_path for f in findings}) == ["factory.py"]


# ================================================================================= GL113


def test_cli_yaml_clip_val_with_a_manual_optimization_module_is_a_conflict():
    code = CLI_MAIN.format(arguments="ManualForecaster, SeriesData").replace("import Forecaster", "import ManualForecaster")
    text = config("  gradient_clip_val: 1.0\n")
    findings = lint_sources({"main.py": code, "models.py": MODELS, "configs/gan.yaml": text}, select={"GL113"})
    finding = only(findings, "GL113")
    assert finding.line == at(code, "cli = LightningCLI(")
    assert f"configs/gan.yaml:{at(text, 'gradient_clip_val')}" in finding.message
    assert "manual optimization" in finding.message


DEEPSPEED_TRAIN = dedent(
    """\
    import lightning as L
    from lightning.pytorch.strategies import DeepSpeedStrategy

    from models import Forecaster

    trainer = L.Trainer(
        max_epochs=10,
        gradient_clip_val={clip},
        strategy=DeepSpeedStrategy(config="ds_config.json"),
    )
    trainer.fit(Forecaster())
    """
)


@pytest.mark.parametrize(("clip", "ds", "reported"), [("1.0", 5.0, True), ("1.0", 1.0, False), ("1.0", None, False)])
def test_trainer_clip_val_against_a_deepspeed_strategy_config(clip, ds, reported):
    import json

    code = DEEPSPEED_TRAIN.format(clip=clip)
    config_json = {"zero_optimization": {"stage": 2}}
    if ds is not None:
        config_json["gradient_clipping"] = ds
    findings = lint_sources(
        {"train.py": code, "models.py": MODELS, "ds_config.json": json.dumps(config_json)}, select={"GL113"}
    )
    assert [f.line for f in findings] == ([at(code, "trainer = L.Trainer(")] if reported else [])
    if reported:
        assert '"gradient_clipping": 5.0' in findings[0].message


def test_cli_yaml_clip_val_against_a_deepspeed_strategy_in_the_same_config():
    text = config(
        "  gradient_clip_val: 1.0\n  strategy:\n    class_path: lightning.pytorch.strategies.DeepSpeedStrategy\n"
        "    init_args:\n      config: ds_config.json\n"
    )
    code = CLI_MAIN.format(arguments="Forecaster, SeriesData")
    files = {"main.py": code, "models.py": MODELS, "configs/ds.yaml": text, "ds_config.json": '{"gradient_clipping": 0.3}'}
    finding = only(lint_sources(files, select={"GL113"}), "GL113")
    assert '"gradient_clipping": 0.3' in finding.message and "configs/ds.yaml" in finding.message


# ============================================================================ the YAML reader

LIGHTNING_YAML = """\
# python main.py fit --config configs/lstm.yaml
seed_everything: 42
trainer:
  max_epochs: 20
  gradient_clip_val: 0.5   # clip
  accelerator: auto
  devices: [0, 1]
  callbacks:
    - class_path: lightning.pytorch.callbacks.ModelCheckpoint
      init_args:
        monitor: val_loss
        save_top_k: 3
    - class_path: EarlyStopping
  logger: {class_path: TensorBoardLogger, init_args: {save_dir: logs}}
model:
  class_path: models.lstm.LSTMForecaster
  init_args:
    hidden_size: 128
    dropout: .5
    note: "a # not a comment"
    name: 'it''s'
data:
  batch_size: 64
ckpt_path: null
"""

HYDRA_YAML = """\
defaults:
  - _self_
  - trainer: default
  - model: lstm
  - override hydra/launcher: basic

seed: 1234
trainer:
  max_epochs: 3
  enable_progress_bar: yes
  deterministic: False
tags: ["dev", 'lstm']
"""

BLOCKS_YAML = """\
---
a:
- 1
- 2
b:
  - x: 1
    y: -2.5e+3
  - z
c: ~
d: -.inf
e: 0x1F
"""


@pytest.mark.parametrize("text", [LIGHTNING_YAML, HYDRA_YAML, BLOCKS_YAML, TRAINER_DEFAULT, MODEL_LSTM], ids=["lightning", "hydra", "blocks", "trainer", "model"])
def test_the_yaml_reader_agrees_with_pyyaml_on_the_configs_it_reads(text):
    def plain(value):
        if isinstance(value, dict):
            return {key: plain(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [plain(inner) for inner in value]
        return value

    mine, reference = plain(load(text)), yaml.safe_load(text)
    assert mine == reference or (math.isinf(mine.get("d", 0)) and mine == reference)


def test_the_yaml_reader_keeps_lines_and_reads_exponents_as_floats():
    data = load(LIGHTNING_YAML)
    assert data["trainer"].lines["gradient_clip_val"] == 5
    assert load("lr: 1e-3\n") == {"lr": 0.001}  # PyYAML (YAML 1.1) keeps "1e-3" a string; configs mean a float
    assert load("description: |\n  two lines\n  of text\nnext: 1\n") == {"description": "...", "next": 1}


@pytest.mark.parametrize(
    "text",
    ["a: *ref\n", "a: !!python/object:x.Y {}\n", "a:\n  b: &x 1\n  c: *x\n"],
    ids=["alias", "tag", "anchor-and-alias"],
)
def test_what_the_yaml_reader_does_not_interpret_is_unknown_not_guessed(text):
    data = load(text)
    flat = list(data.values()) + [v for inner in data.values() if isinstance(inner, dict) for v in inner.values()]
    assert UNKNOWN in flat


@pytest.mark.parametrize("text", ["a: 1\n---\nb: 2\n", "a: [1, 2\n", "a:\n\tb: 1\n", "key: value\n  continued\n"])
def test_yaml_the_reader_cannot_follow_gives_nothing(text):
    assert load(text) is None


# ============================================================================ test code


@pytest.mark.parametrize("name", ["tests/helpers/test_models.py", "test_tbptt.py", "tests/conftest.py", "pkg/models_test.py"])
def test_a_trainer_in_test_code_is_a_check_not_a_training_run(name):
    """Lightning's own tests_pytorch/helpers/test_models.py fits an LSTM for one epoch."""
    code = dedent(
        """\
        from lightning.pytorch import Trainer

        from models import Forecaster


        def test_tbptt(tmp_path):
            model = Forecaster()
            trainer = Trainer(default_root_dir=tmp_path, max_epochs=1)
            trainer.fit(model)
            no_clip = Trainer(max_epochs=1, gradient_clip_val=0)
            no_clip.fit(model)
        """
    )
    findings = lint_sources({name: code, "models.py": MODELS}, select={"GL106"})
    assert findings == []
    assert lint_sources({"train.py": code, "models.py": MODELS}, select={"GL106"}) != []


# ============================================================================ the cache


def test_editing_or_adding_a_yaml_config_rechecks_the_cli_script(tmp_path):
    import gradlint.api as api
    from gradlint.config import load_config

    project = tmp_path / "project"
    (project / "configs").mkdir(parents=True)
    (project / "main.py").write_text(CLI_MAIN.format(arguments="Forecaster, SeriesData"))
    (project / "models.py").write_text(MODELS)
    (project / "configs" / "lstm.yaml").write_text(config("  gradient_clip_val: 0.5\n"))
    cache = tmp_path / "cache"

    def run():
        report = api.lint_paths([project], load_config([project], cwd=project), cache_dir=cache, cwd=project)
        return [f for f in report.findings if f.code == "GL106"]

    assert run() == []
    (project / "configs" / "lstm.yaml").write_text(config())  # clipping removed
    assert [f.display_path for f in run()] == ["main.py"]
    (project / "configs" / "lstm.yaml").write_text(config("  gradient_clip_val: 0.5\n"))
    assert run() == []
    (project / "configs" / "nightly.yaml").write_text(config())  # a new config without clipping
    found = run()
    assert len(found) == 1 and "nightly.yaml" in found[0].message
