"""What PyTorch and its frameworks call things: the qualified names gradlint recognises."""

from __future__ import annotations

import re

# Clipping functions, with the position of their threshold argument and its keyword.
CLIP_FUNCTIONS: dict[str, tuple[int, str]] = {}
for _module in ("torch.nn.utils", "torch.nn.utils.clip_grad"):
    CLIP_FUNCTIONS[f"{_module}.clip_grad_norm_"] = (1, "max_norm")
    CLIP_FUNCTIONS[f"{_module}.clip_grad_norm"] = (1, "max_norm")
    CLIP_FUNCTIONS[f"{_module}.clip_grads_with_norm_"] = (1, "max_norm")
    CLIP_FUNCTIONS[f"{_module}.clip_grad_value_"] = (1, "clip_value")

# timm's helper clips by norm, value or AGC: `dispatch_clip_grad(parameters, value, mode="norm")`.
for _module in ("timm.utils", "timm.utils.clip_grad"):
    CLIP_FUNCTIONS[f"{_module}.dispatch_clip_grad"] = (1, "value")

CLIP_METHODS = {"clip_grad_norm_", "clip_grad_value_", "clip_gradients", "clip_grad_norm"}

RECURRENT_LAYERS = {
    "torch.nn.RNN",
    "torch.nn.LSTM",
    "torch.nn.GRU",
    "torch.nn.RNNCell",
    "torch.nn.LSTMCell",
    "torch.nn.GRUCell",
    "torch.nn.modules.rnn.RNN",
    "torch.nn.modules.rnn.LSTM",
    "torch.nn.modules.rnn.GRU",
    "torch.nn.modules.rnn.RNNCell",
    "torch.nn.modules.rnn.LSTMCell",
    "torch.nn.modules.rnn.GRUCell",
}

GRAD_SCALERS = {
    "torch.cuda.amp.GradScaler",
    "torch.amp.GradScaler",
    "torch.GradScaler",
    "torch.cpu.amp.GradScaler",
    "torch.amp.grad_scaler.GradScaler",
    "torch.distributed.fsdp.sharded_grad_scaler.ShardedGradScaler",
}

OPTIMIZER_MODULES = (
    "torch.optim.",
    "transformers.optimization.",
    "bitsandbytes.optim.",
    "apex.optimizers.",
    "timm.optim.",
    "torch_optimizer.",
    "deepspeed.ops.",
)
SCHEDULER_MODULES = ("torch.optim.lr_scheduler.", "torch.optim.swa_utils.SWALR")
SCHEDULER_FACTORIES = re.compile(r"(^|\.)get_\w*schedule\w*$|(^|\.)\w*[Ss]cheduler$")

# lr above these is outside the usual range for the optimizer family (a risk factor).
LR_LIMITS = {
    "SGD": 1.0,
    "Adam": 0.01,
    "AdamW": 0.01,
    "Adamax": 0.01,
    "NAdam": 0.01,
    "RAdam": 0.01,
    "RMSprop": 0.01,
    "Adagrad": 0.1,
    "Adadelta": 10.0,
}

NO_GRAD_CONTEXTS = {"torch.no_grad", "torch.inference_mode", "torch.set_grad_enabled"}

ONE_SHOT_METHODS = {"parameters", "named_parameters"}
ONE_SHOT_BUILTINS = {"filter", "map", "iter", "reversed"}

MODULE_MOVES = {"to", "cuda", "cpu", "double", "float", "half", "bfloat16", "train", "eval", "requires_grad_"}
"""Module methods that return the module itself (`model.to(device)` is still `model`)."""
MODULE_WRAPPERS = {"DataParallel", "DistributedDataParallel", "DDP", "compile", "FullyShardedDataParallel", "FSDP"}
"""Wrappers whose first argument is the module they train (`DDP(model)`, `torch.compile(model)`)."""

ACCUMULATION_WORDS = re.compile(r"accum|sync_gradients|update_freq|grad_acc", re.IGNORECASE)


def is_optimizer_class(qualified: str | None) -> bool:
    if not qualified:
        return False
    if qualified.startswith(SCHEDULER_MODULES) or SCHEDULER_FACTORIES.search(qualified):
        return False
    return qualified.startswith(OPTIMIZER_MODULES) and qualified.rsplit(".", 1)[-1][:1].isupper() or qualified in {
        "transformers.AdamW",
        "transformers.Adafactor",
    }


def is_scheduler_factory(qualified: str | None) -> bool:
    return bool(qualified) and (
        qualified.startswith(SCHEDULER_MODULES) or bool(SCHEDULER_FACTORIES.search(qualified))
    )


def looks_like_scheduler(name: str) -> bool:
    lowered = name.lower()
    return "sched" in lowered or lowered.startswith("lr") or "warmup" in lowered


def looks_like_optimizer(name: str) -> bool:
    lowered = name.lower()
    return "opt" in lowered and "option" not in lowered and not looks_like_scheduler(name)


def looks_like_scaler(name: str) -> bool:
    return "scaler" in name.lower()
