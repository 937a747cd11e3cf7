"""What gradlint knows of each framework's clipping settings: the qualified names of the calls that
configure it, the defaults, and the records the finders return (`Setting`, `LightningTrainer`,
`HfArguments`, `DeepSpeedEngine`, `DeepSpeedConfig`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst

from gradlint.analysis import vocabulary as vocab
from gradlint.analysis.model import CallSite, snippet
from gradlint.index.facts import ModelFacts

LIGHTNING_TRAINERS = frozenset(
    {
        "lightning.Trainer",
        "lightning.pytorch.Trainer",
        "lightning.pytorch.trainer.Trainer",
        "lightning.pytorch.trainer.trainer.Trainer",
        "pytorch_lightning.Trainer",
        "pytorch_lightning.trainer.Trainer",
        "pytorch_lightning.trainer.trainer.Trainer",
    }
)
HF_TRAINING_ARGUMENTS = frozenset(
    {
        "transformers.TrainingArguments",
        "transformers.Seq2SeqTrainingArguments",
        "transformers.training_args.TrainingArguments",
        "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
    }
)
HF_TRAINERS = frozenset(
    {
        "transformers.Trainer",
        "transformers.Seq2SeqTrainer",
        "transformers.trainer.Trainer",
        "transformers.trainer_seq2seq.Seq2SeqTrainer",
    }
)
LIGHTNING_CLI = frozenset(
    {
        "lightning.pytorch.cli.LightningCLI",
        "lightning.pytorch.LightningCLI",
        "pytorch_lightning.cli.LightningCLI",
        "pytorch_lightning.utilities.cli.LightningCLI",
        "lightning.LightningCLI",
    }
)
DEEPSPEED_STRATEGIES = frozenset(
    {
        "lightning.pytorch.strategies.DeepSpeedStrategy",
        "lightning.pytorch.strategies.deepspeed.DeepSpeedStrategy",
        "pytorch_lightning.strategies.DeepSpeedStrategy",
        "pytorch_lightning.strategies.deepspeed.DeepSpeedStrategy",
        "lightning.pytorch.plugins.DeepSpeedPlugin",
        "pytorch_lightning.plugins.DeepSpeedPlugin",
    }
)
"""Lightning's DeepSpeed strategy: its DeepSpeed config's `"gradient_clipping"`, when set, wins over
the Trainer's `gradient_clip_val` (lightning/pytorch/strategies/deepspeed.py: the Trainer's value only
fills a config that has none)."""
HYDRA_MAIN = frozenset({"hydra.main"})
HYDRA_INSTANTIATE = frozenset({"hydra.utils.instantiate", "hydra.utils.call"})
DEEPSPEED_INITIALIZE = frozenset({"deepspeed.initialize"})
FSDP_WRAPPERS = vocab.FSDP_WRAPPERS
"""The original (FSDP1) wrapper (one list, in gradlint.analysis.vocabulary)."""

HF_MAX_GRAD_NORM_DEFAULT = 1.0

# What each framework does when nothing is said (used in messages and the rule document).
LIGHTNING_DEFAULT = "Lightning does not clip gradients unless `gradient_clip_val` is set (0 or None disables it)"
HF_DEFAULT = "the Hugging Face Trainer clips to `max_grad_norm`, 1.0 by default, and 0 disables it"
DEEPSPEED_DEFAULT = 'DeepSpeed does not clip gradients unless the config sets `"gradient_clipping"` (0 disables it)'


@dataclass(frozen=True, eq=False)
class Setting:
    """One setting of a framework call, as far as it is known statically."""

    state: str
    """'absent' (not passed: the framework default applies), 'value' or 'unresolved'."""
    node: cst.CSTNode | None = None
    """Where it is set in the checked file (the keyword argument, a dict entry), if there."""
    value: Any = None
    origin: str = ""
    """How the value was found (`argparse default of --clip (train.py:12)`), '' for a literal."""

    @property
    def is_value(self) -> bool:
        return self.state == "value"

    def number(self) -> float | None:
        """The value as a number, None when it is not one (None, "auto", unresolved)."""
        if self.state != "value" or isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            return None
        return self.value

    def describe(self, keyword: str, module: cst.Module) -> str:
        """`max_grad_norm=0.0`, or `max_grad_norm=args.max_grad_norm` is 0.0 (argparse default of ...)."""
        value = self.shown(with_origin=False)
        if not self.origin:
            return f"`{keyword}={value}`"
        written = self.node.value if isinstance(self.node, (cst.Arg, cst.DictElement)) else None
        if written is None:
            return f"`{keyword}` = {value} ({self.origin})"
        return f"`{keyword}={snippet(module, written, 40)}` = {value} ({self.origin})"

    def shown(self, with_origin: bool = True) -> str:
        value = self.value
        if isinstance(value, str):
            text = json.dumps(value)
        elif isinstance(value, float) and value.is_integer():
            text = repr(value)
        else:
            text = repr(value)
        return text + (f" ({self.origin})" if self.origin and with_origin else "")


ABSENT = Setting("absent")
UNRESOLVED = Setting("unresolved")


@dataclass(eq=False)
class DeepSpeedConfig:
    """A DeepSpeed config: an inline dict or a JSON file, and its `"gradient_clipping"`."""

    kind: str
    """'json' or 'dict'."""
    label: str
    """For messages: `ds_config.json` as written, or `the config dict (line 12)`."""
    clipping: Setting
    """`"gradient_clipping"`: absent, a value (a number or "auto") or unresolved."""
    path: Path | None = None
    """The JSON file read (None for a dict)."""
    inline: cst.CSTNode | None = None
    """The dict literal (or `dict(...)` call) when it is written in the checked file."""

    def clipping_text(self) -> str:
        return f'"gradient_clipping": {self.clipping.shown()} in {self.label}'


@dataclass(eq=False)
class LightningFit:
    call: cst.Call
    module: ModelFacts | None
    """The LightningModule passed to `fit`, None when it cannot be resolved."""


@dataclass(eq=False)
class LightningTrainer:
    call: cst.Call
    """Where findings about this Trainer go: the `Trainer(...)` call, a `LightningCLI(...)` or
    `hydra.utils.instantiate(cfg.trainer)` call, or the `trainer.fit(...)` of a Trainer built
    in another file."""
    site: CallSite
    clip_val: Setting
    clip_algorithm: Setting
    fits: list[LightningFit] = field(default_factory=list)
    source: str = ""
    """Where the settings come from when not from the call's own arguments: `configs/lstm.yaml`,
    `conf/config.yaml + conf/trainer/default.yaml`, `the Trainer built by `build_trainer` (utils.py:12)`."""
    remote: bool = False
    """Built in another file (that file's own check reports an explicit 0 there)."""
    config: "Any" = None
    """The `TrainerConfig` the settings were read from, if any (gradlint.index.frameworks.configs)."""
    deepspeed: "DeepSpeedConfig | None" = None
    """The config of a `DeepSpeedStrategy(config=...)` strategy, when one is given and readable."""

    def deepspeed_clips(self) -> bool:
        """The DeepSpeed strategy's own config clips (a positive `"gradient_clipping"`)."""
        number = self.deepspeed.clipping.number() if self.deepspeed is not None else None
        return number is not None and number > 0


@dataclass(eq=False)
class HfArguments:
    call: cst.Call
    site: CallSite
    max_grad_norm: Setting
    deepspeed: Setting
    """The `deepspeed=` argument (its value is not used: see `deepspeed_config`)."""
    deepspeed_config: DeepSpeedConfig | None
    """The config `deepspeed=` points at, None when absent or unresolved."""
    models: list[tuple[cst.Call, ModelFacts | None]] = field(default_factory=list)
    """The HF `Trainer(model=..., args=<these>)` calls and the models they train."""

    def effective_max_grad_norm(self) -> Setting:
        """`max_grad_norm`, with the default 1.0 when it is not passed."""
        if self.max_grad_norm.state == "absent":
            return Setting("value", None, HF_MAX_GRAD_NORM_DEFAULT, "the TrainingArguments default")
        return self.max_grad_norm


@dataclass(eq=False)
class DeepSpeedEngine:
    call: cst.Call
    site: CallSite
    config: DeepSpeedConfig | None
    """None when no config is passed (`args.deepspeed_config`) or it cannot be read."""
    model: ModelFacts | None
