"""Framework facts: what Lightning, Hugging Face and DeepSpeed are told about gradient clipping.

When a framework owns the training loop there is no `backward()`/`step()` pair to look at;
what decides whether gradients are clipped is a setting:

- Lightning: `Trainer(gradient_clip_val=...)` (no clipping unless set) and the module that
  `trainer.fit(module, ...)` trains (it may override `configure_gradient_clipping`, or use
  manual optimization and clip itself);
- Hugging Face: `TrainingArguments(max_grad_norm=...)` (1.0 by default, 0 disables it) and
  its `deepspeed=` config (a JSON path or a dict) whose `"gradient_clipping"` must agree;
- DeepSpeed: `deepspeed.initialize(model=..., config=...)` with a dict or a JSON file whose
  `"gradient_clipping"` is 0 (no clipping) unless set.

This module finds those calls in a file, resolves the settings through the project index
(`Resolved` values with their origin) and the module a trainer fits (`ModelFacts`). A value
that cannot be resolved is marked "unresolved" and the rules stay quiet about it. Results
are computed once per file per run and shared by the rules (`ProjectIndex.memo_on`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gradlint.analysis.model import FileModel
from gradlint.index.frameworks import deepspeed, huggingface, lightning
from gradlint.index.frameworks.lightning import clip_events_of, clips_itself, override_clips_with_own_value
from gradlint.index.frameworks.places import bound_value, context_of, in_test_code, index_of
from gradlint.index.frameworks.reader import SettingReader
from gradlint.index.frameworks.records import (
    ABSENT,
    DEEPSPEED_DEFAULT,
    FSDP_WRAPPERS,
    HF_DEFAULT,
    LIGHTNING_DEFAULT,
    UNRESOLVED,
    DeepSpeedConfig,
    DeepSpeedEngine,
    HfArguments,
    LightningFit,
    LightningTrainer,
    Setting,
)

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex


def lightning_trainers(project: "ProjectIndex", path: Path, model: FileModel) -> list[LightningTrainer]:
    """Every Lightning `Trainer(...)` call of the file, with `gradient_clip_val` and what it fits."""
    return project.memo_on(
        "frameworks.lightning", model, lambda: lightning.find_trainers(SettingReader(project, path, model))
    )


def hf_training_arguments(project: "ProjectIndex", path: Path, model: FileModel) -> list[HfArguments]:
    """Every `TrainingArguments(...)` / `Seq2SeqTrainingArguments(...)` call of the file."""
    return project.memo_on(
        "frameworks.hf", model, lambda: huggingface.find_training_arguments(SettingReader(project, path, model))
    )


def deepspeed_engines(project: "ProjectIndex", path: Path, model: FileModel) -> list[DeepSpeedEngine]:
    """Every `deepspeed.initialize(...)` call of the file, with its config and model."""
    return project.memo_on(
        "frameworks.deepspeed", model, lambda: deepspeed.find_engines(SettingReader(project, path, model))
    )


def is_fsdp_wrapper(qualified: str | None) -> bool:
    return qualified in FSDP_WRAPPERS


__all__ = [
    "ABSENT", "DEEPSPEED_DEFAULT", "FSDP_WRAPPERS", "HF_DEFAULT", "LIGHTNING_DEFAULT", "UNRESOLVED",
    "DeepSpeedConfig", "DeepSpeedEngine", "HfArguments", "LightningFit", "LightningTrainer", "Setting",
    "bound_value", "clip_events_of", "clips_itself", "context_of", "deepspeed_engines", "hf_training_arguments",
    "in_test_code", "index_of", "is_fsdp_wrapper", "lightning_trainers", "override_clips_with_own_value",
]
