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

# timm's adaptive gradient clipping, apex's and DeepSpeed's copies of torch's norm clipping.
CLIP_FUNCTIONS["timm.utils.adaptive_clip_grad"] = (1, "clip_factor")
CLIP_FUNCTIONS["timm.utils.agc.adaptive_clip_grad"] = (1, "clip_factor")
CLIP_FUNCTIONS["apex.contrib.clip_grad.clip_grad_norm_"] = (1, "max_norm")
CLIP_FUNCTIONS["deepspeed.runtime.utils.clip_grad_norm_"] = (1, "max_norm")

CLIP_METHODS = {
    "clip_grad_norm_",  # FSDP / fairscale FSDP, Accelerate
    "clip_grad_value_",  # Accelerate
    "clip_gradients",  # Lightning (`self.clip_gradients`), Fabric
    "clip_grad_norm",  # fairseq optimizers, older FSDP wrappers
    "clip_grads",  # mmcv-style optimizer hooks (`self.clip_grads(params)`)
    "clip_grad_by_norm",  # ColossalAI optimizers
    "clip_grad_by_value",
}
"""Method names that clip gradients in the frameworks gradlint knows (listed in
rules/GL101-missing-gradient-clipping.md, "What counts as clipping")."""

# In-place operations on gradients (`p.grad.clamp_(-c, c)`, `p.grad.data.mul_(clip_coef)`):
# a clamp always clips; a scaling clips when its factor comes from a norm or a clip threshold
# (`max_norm / (total_norm + 1e-6)`), not when it unscales AMP gradients (`1 / loss_scale`).
GRAD_CLAMPS = {"clamp_", "clip_", "clamp_max_", "clamp_min_"}
GRAD_SCALINGS = {"mul_", "div_", "copy_"}
FOREACH_SCALINGS = {"torch._foreach_mul_", "torch._foreach_div_", "torch._foreach_clamp_max_", "torch._foreach_clamp_min_"}
MULTI_TENSOR_SCALE = re.compile(r"multi_tensor_scale")
"""apex/amp_C's fused scaling kernel, called as `multi_tensor_applier(amp_C.multi_tensor_scale,
overflow_buf, [grads, grads], clip_coef)`."""
NORM_WORDS = re.compile(r"norm|clip", re.IGNORECASE)
"""Words of a scaling factor that make it a clip coefficient."""
GRAD_WORDS = re.compile(r"grad", re.IGNORECASE)


def is_grad_text(dotted: str | None) -> bool:
    """Whether a dotted expression names gradients (`p.grad`, `p.grad.data`, `grads`, `grad_list`)."""
    return bool(dotted) and bool(GRAD_WORDS.search(dotted))  # type: ignore[arg-type]


MODEL_WORDS = re.compile(r"model|net|param|grad|module|optim", re.IGNORECASE)


def clips_by_name(name: str, arguments: list[str] = ()) -> bool:  # type: ignore[assignment]
    """The fallback for a function whose body cannot be read: its name says it clips gradients
    (`clip_gradients`, `clip_grad_norm`, `clip_grads`), or it is named like a clip and given a
    model or parameters (`clip(model)`, `clip(model.parameters(), 1.0)`); not a function that
    clips something else (`clip_boxes_to_image(boxes, size)`). `arguments`: the dotted names
    of the call's arguments (`model.parameters` for `model.parameters()`)."""
    lowered = name.lower()
    if "clip" not in lowered:
        return False
    return "grad" in lowered or "norm" in lowered or any(MODEL_WORDS.search(argument) for argument in arguments)


def detaches_by_name(name: str) -> bool:
    """The fallback for a function whose body cannot be read (`repackage_hidden`, `detach_state`)."""
    lowered = name.lower()
    return "repackage" in lowered or "detach" in lowered

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

FSDP_WRAPPERS = frozenset(
    {
        "torch.distributed.fsdp.FullyShardedDataParallel",
        "torch.distributed.fsdp.fully_sharded_data_parallel.FullyShardedDataParallel",
    }
)
"""The original (FSDP1) wrapper. FSDP2's `fully_shard` makes DTensor parameters, which
`torch.nn.utils.clip_grad_norm_` reduces correctly."""

BACKWARD_OWNERS = {
    "accelerate.Accelerator",
    "accelerate.accelerator.Accelerator",
    "lightning.Fabric",
    "lightning.fabric.Fabric",
    "lightning.fabric.fabric.Fabric",
    "lightning_fabric.Fabric",
}
"""Classes whose `backward(loss)` runs the backward (and scales it under mixed precision)."""

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


# Role fallbacks: used only when what a name is bound to cannot be read (a parameter nobody
# annotates, a value from a function outside the project). Roles come from bindings first
# (gradlint.analysis.roles).
def looks_like_scheduler(name: str) -> bool:
    lowered = name.lower()
    return "sched" in lowered or lowered.startswith("lr") or "warmup" in lowered


def looks_like_optimizer(name: str) -> bool:
    lowered = name.lower()
    return "opt" in lowered and "option" not in lowered and not looks_like_scheduler(name)


def looks_like_scaler(name: str) -> bool:
    return "scaler" in name.lower()
