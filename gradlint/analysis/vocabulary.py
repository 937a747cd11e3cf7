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
# Optimizers that clip inside their own step() when a constructor keyword asks them to: the
# qualified constructor -> (keyword, its default, the value that turns clipping off). A step of
# such an optimizer is clipped when the keyword (or its default) is not the "off" value.
CLIPPING_OPTIMIZERS: dict[str, tuple[tuple[str, float, float], ...]] = {}
for _name in (
    "colossalai.nn.optimizer.GeminiAdamOptimizer",
    "colossalai.nn.optimizer.gemini_optimizer.GeminiAdamOptimizer",
    "colossalai.zero.GeminiAdamOptimizer",
    "colossalai.zero.GeminiOptimizer",
    "colossalai.zero.gemini.GeminiOptimizer",
    "colossalai.zero.gemini.gemini_optimizer.GeminiOptimizer",
    "colossalai.zero.ZeroOptimizer",
):
    CLIPPING_OPTIMIZERS[_name] = (("clipping_norm", 0.0, 0.0), ("max_norm", 0.0, 0.0))
for _name in ("colossalai.zero.LowLevelZeroOptimizer", "colossalai.zero.low_level.LowLevelZeroOptimizer"):
    CLIPPING_OPTIMIZERS[_name] = (("clip_grad_norm", 0.0, 0.0),)
for _name in (
    "apex.optimizers.FusedLAMB",
    "apex.optimizers.FusedMixedPrecisionLamb",
    "timm.optim.Lamb",
    "timm.optim.lamb.Lamb",
):
    CLIPPING_OPTIMIZERS[_name] = (("max_grad_norm", 1.0, 0.0),)  # on by default
for _name in ("deepspeed.ops.lamb.FusedLamb", "deepspeed.ops.lamb.fused_lamb.FusedLamb"):
    CLIPPING_OPTIMIZERS[_name] = (("max_grad_norm", 0.0, 0.0),)
for _family in ("Adam", "AdamW", "Adam8bit", "AdamW8bit", "PagedAdamW", "PagedAdamW8bit", "LAMB", "LARS", "SGD", "Lion"):
    # bitsandbytes: `percentile_clipping=p` (< 100) clips each gradient at the p-th percentile of
    # the last 100 gradient norms.
    CLIPPING_OPTIMIZERS[f"bitsandbytes.optim.{_family}"] = (("percentile_clipping", 100.0, 100.0),)

SCHEDULER_MODULES = ("torch.optim.lr_scheduler.", "torch.optim.swa_utils.SWALR")
SCHEDULER_FACTORIES = re.compile(r"(^|\.)get_\w*schedule\w*$|(^|\.)\w*[Ss]cheduler$")

# The top of each optimizer family's usual learning-rate range: an lr strictly above it is high (GL401
# reports it, and it makes GL101 a warning). The one table of learning-rate limits: GL401's options
# (`LR_LIMIT_OPTIONS`) move these limits for both rules.
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
LR_LIMIT_OPTIONS = {
    "SGD": "sgd-limit",
    **{family: "adaptive-limit" for family in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop")},
}
"""The GL401 option that sets a family's limit (the families without one keep the table's)."""

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
    } or qualified in CLIPPING_OPTIMIZERS


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
