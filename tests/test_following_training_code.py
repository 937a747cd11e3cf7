"""The training step where real projects put it: wrapper optimizers, trainer classes with base
classes and mixins in other files, steps split over methods, two optimizers after one backward,
accumulation in its real forms, FSDP in helpers, gradient scopes, Accelerate fp16 (issue 11)."""

from __future__ import annotations

from gradlint.api import lint_sources
from gradlint.findings import Severity
from tests.snippets import at, dedent, lines, lint, only

# ------------------------------------------------------------------ wrapper optimizers

WRAPPER = dedent(
    """\
    import torch


    class ClippedOptimizer:
        def __init__(self, optimizer, max_norm):
            self.optimizer = optimizer
            self.max_norm = max_norm

        def step(self):
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.max_norm)
            self.optimizer.step()

        def zero_grad(self, set_to_none=True):
            self.optimizer.zero_grad(set_to_none=set_to_none)
    """
)


def test_step_of_a_wrapper_optimizer_that_clips_first_is_a_clipped_step():
    code = dedent(
        """\
        import torch
        from optim import ClippedOptimizer


        def train(model, loader, criterion):
            wrapped = ClippedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), max_norm=1.0)
            for x, y in loader:
                wrapped.zero_grad(set_to_none=True)
                criterion(model(x), y).backward()
                wrapped.step()
        """
    )
    assert lint(code, "GL101", "GL107", "GL110", extra={"optim.py": WRAPPER}) == []


def test_wrapper_optimizer_of_the_same_file_is_read_too():
    code = WRAPPER + dedent(
        """\


        def train(model, loader, criterion):
            wrapped = ClippedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), max_norm=1.0)
            for x, y in loader:
                wrapped.zero_grad()
                criterion(model(x), y).backward()
                wrapped.step()
        """
    )
    assert lint(code, "GL101", "GL107") == []


def test_wrapper_optimizer_that_does_not_clip_is_reported():
    plain = WRAPPER.replace("        torch.nn.utils.clip_grad_norm_(params, self.max_norm)\n", "")
    assert plain != WRAPPER
    code = dedent(
        """\
        import torch
        from optim import ClippedOptimizer


        def train(model, loader, criterion):
            wrapped = ClippedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), max_norm=1.0)
            for x, y in loader:
                wrapped.zero_grad()
                criterion(model(x), y).backward()
                wrapped.step()
        """
    )
    assert lines(lint(code, "GL101", extra={"optim.py": plain}), "GL101") == [at(code, "wrapped.step()")]


# ------------------------------------------------------------------- trainer classes

BASE_TRAINER = dedent(
    """\
    import torch


    def clip_gradient(model, clip_value):
        for p in model.parameters():
            if p.grad is not None:
                p.grad.data.clamp_(-clip_value, clip_value)


    class BaseTrainer:
        def __init__(self, model, lr):
            self.model = model
            self.lr_optimizer = torch.optim.Adam(model.parameters(), lr=lr)

        def _clip(self):
            clip_gradient(self.model, 5.0)

        def _reset(self):
            self.model.zero_grad(set_to_none=True)
    """
)


def test_trainer_methods_inherited_from_another_file_clip_and_clear():
    code = dedent(
        """\
        from base import BaseTrainer


        class Trainer(BaseTrainer):
            def train_step(self, x, y, criterion):
                self._reset()
                loss = criterion(self.model(x), y)
                loss.backward()
                self._clip()
                self.lr_optimizer.step()

            def fit(self, loader, criterion):
                for x, y in loader:
                    self.train_step(x, y, criterion)
        """
    )
    assert lint(code, "GL101", "GL107", extra={"base.py": BASE_TRAINER}) == []


def test_trainer_method_inherited_from_another_file_runs_every_micro_batch():
    code = dedent(
        """\
        from base import BaseTrainer


        class Trainer(BaseTrainer):
            def fit(self, loader, criterion, accum):
                for i, (x, y) in enumerate(loader):
                    loss = criterion(self.model(x), y) / accum
                    loss.backward()
                    self._clip()
                    if (i + 1) % accum == 0:
                        self.lr_optimizer.step()
                        self._reset()
        """
    )
    finding = only(lint(code, "GL110", extra={"base.py": BASE_TRAINER}), "GL110")
    assert finding.line == at(code, "self._clip()")


def test_class_that_splits_backward_and_step_over_two_methods_is_one_training_step():
    # guided-diffusion's MixedPrecisionTrainer: users call backward(loss), then optimize(opt).
    code = dedent(
        """\
        import torch


        class MixedPrecisionTrainer:
            def __init__(self, model, use_fp16=False):
                self.model = model
                self.use_fp16 = use_fp16
                self.lg_loss_scale = 20.0

            def backward(self, loss):
                if self.use_fp16:
                    (loss * 2 ** self.lg_loss_scale).backward()
                else:
                    loss.backward()

            def optimize(self, opt: torch.optim.Optimizer):
                if self.use_fp16:
                    return self._optimize_fp16(opt)
                return self._optimize_normal(opt)

            def _optimize_fp16(self, opt):
                for p in self.model.parameters():
                    p.grad.mul_(1.0 / (2 ** self.lg_loss_scale))
                opt.step()
                return True

            def _optimize_normal(self, opt):
                opt.step()
                return True
        """
    )
    findings = lint(code, "GL101")
    assert lines(findings, "GL101") == [at(code, "opt.step()", 1), at(code, "opt.step()", 2)]
    assert f"since `loss.backward()` at line {at(code, 'loss.backward()')}" in findings[0].message


def test_class_that_offers_clipping_leaves_it_to_its_caller():
    # fairseq-style optimizer wrapper: backward(), clip_grad_norm() and step() are separate
    # services; the trainer calls all three.
    code = dedent(
        """\
        import torch


        class Optimizer:
            def __init__(self, optimizer):
                self.optimizer = optimizer

            def backward(self, loss):
                loss.backward()

            def clip_grad_norm(self, max_norm):
                return torch.nn.utils.clip_grad_norm_(self.params, max_norm)

            def step(self, closure=None):
                self.optimizer.step(closure)
        """
    )
    assert lint(code, "GL101") == []


def test_two_optimizers_after_one_backward_are_checked_one_by_one():
    code = dedent(
        """\
        import torch


        def train(encoder, decoder, loader, criterion):
            encoder_optimizer = torch.optim.SGD(encoder.parameters(), lr=0.01)
            decoder_optimizer = torch.optim.SGD(decoder.parameters(), lr=0.01)
            for x, y in loader:
                encoder_optimizer.zero_grad()
                decoder_optimizer.zero_grad()
                loss = criterion(decoder(encoder(x)), y)
                loss.backward()
                encoder_optimizer.step()
                torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
                decoder_optimizer.step()
        """
    )
    findings = lint(code, "GL101", "GL102")
    assert lines(findings, "GL101") == [at(code, "encoder_optimizer.step()")]
    assert lines(findings, "GL102") == []  # the clip belongs to the decoder's step after it


# ------------------------------------------------------------------------ accumulation


def test_clip_before_an_early_return_of_the_step_method_runs_every_micro_batch():
    code = dedent(
        """\
        import torch


        class Trainer:
            def __init__(self, model, accum):
                self.model, self.accum, self.micro = model, accum, 0
                self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

            def train_step(self, x, y, criterion):
                loss = criterion(self.model(x), y) / self.accum
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self._step()

            def _step(self):
                self.micro += 1
                if self.micro % self.accum != 0:
                    return
                self.optimizer.step()
                self.optimizer.zero_grad()
        """
    )
    finding = only(lint(code, "GL110"), "GL110")
    assert finding.line == at(code, "clip_grad_norm_")
    assert "early exit" in finding.message


def test_continue_before_the_accumulation_boundary_guards_the_step():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, accum):
            for i, (x, y) in enumerate(loader):
                (criterion(model(x), y) / accum).backward()
                if (i + 1) % accum:
                    continue
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
        """
    )
    assert lint(code, "GL110", "GL101") == []


def test_counter_reset_marks_the_accumulation_boundary():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, micro_batches):
            pending = 0
            for x, y in loader:
                criterion(model(x), y).backward()
                pending += 1
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                if pending == micro_batches:
                    optimizer.step()
                    optimizer.zero_grad()
                    pending = 0
        """
    )
    assert lines(lint(code, "GL110"), "GL110") == [at(code, "clip_grad_norm_")]


def test_clip_inside_no_sync_runs_on_unsynchronised_micro_batches():
    code = dedent(
        """\
        import torch


        def train(ddp_model, optimizer, loader, criterion, accum):
            for i, (x, y) in enumerate(loader):
                if (i + 1) % accum != 0:
                    with ddp_model.no_sync():
                        criterion(ddp_model(x), y).backward()
                        torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), 1.0)
                    continue
                criterion(ddp_model(x), y).backward()
                optimizer.step()
                optimizer.zero_grad()
        """
    )
    finding = only(lint(code, "GL110"), "GL110")
    assert finding.line == at(code, "clip_grad_norm_") and "no_sync()" in finding.message


def test_clip_under_not_is_accumulating_is_at_the_boundary():
    code = dedent(
        """\
        def fit(fabric, model, optimizer, loader, criterion, accum):
            for i, (x, y) in enumerate(loader):
                is_accumulating = (i + 1) % accum != 0
                with fabric.no_backward_sync(model, enabled=is_accumulating):
                    fabric.backward(criterion(model(x), y))
                if not is_accumulating:
                    fabric.clip_gradients(model, optimizer, max_norm=1.0)
                    optimizer.step()
                    optimizer.zero_grad()
        """
    )
    assert lint(code, "GL110", "GL101") == []


def test_clipper_object_stepped_every_micro_batch_is_reported_at_its_call():
    # DeepSpeedExamples' BingBertSquad: gradClipper.step(...) after every backward.
    code = dedent(
        """\
        import torch


        class GradientClipper:
            def __init__(self, max_grad_norm):
                self.max_norm = max_grad_norm

            def step(self, parameters):
                grads = [p.grad for p in parameters if p.grad is not None]
                total_norm = torch.norm(torch.stack([torch.norm(g) for g in grads]))
                clip_coef = self.max_norm / (total_norm + 1e-6)
                if clip_coef < 1:
                    torch._foreach_mul_(grads, clip_coef)


        def train(model, optimizer, loader, criterion, accum):
            clipper = GradientClipper(max_grad_norm=1.0)
            for step, (x, y) in enumerate(loader):
                (criterion(model(x), y) / accum).backward()
                clipper.step(model.parameters())
                if (step + 1) % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
        """
    )
    findings = lint(code, "GL110", "GL101")
    assert lines(findings, "GL110") == [at(code, "clipper.step(model.parameters())")]
    assert lines(findings, "GL101") == []


# ------------------------------------------------------------------------------ FSDP


def test_fsdp_model_kept_on_self_and_clipped_in_another_method_is_reported():
    code = dedent(
        """\
        import torch
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP


        class Trainer:
            def __init__(self, model):
                self.model = FSDP(model)
                self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)

            def train_step(self, x, y, criterion):
                loss = criterion(self.model(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.optimizer.step()
        """
    )
    assert lines(lint(code, "GL112"), "GL112") == [at(code, "clip_grad_norm_")]


def test_model_whose_children_a_helper_of_another_file_wraps_in_place_is_reported():
    # composer before 043ef267d: prepare_fsdp_module wraps the model's children in place, the
    # State keeps the model, and the clipping algorithm clips state.model.parameters().
    dist = dedent(
        """\
        from torch.distributed.fsdp import FullyShardedDataParallel


        def prepare_fsdp_module(model, config):
            for name, child in model.named_children():
                wrapped = FullyShardedDataParallel(child, **config)
                setattr(model, name, wrapped)
        """
    )
    state = "class State:\n    def __init__(self, model, optimizer):\n        self.model = model\n        self.optimizer = optimizer\n"
    trainer = dedent(
        """\
        from dist import prepare_fsdp_module
        from state import State


        class Trainer:
            def __init__(self, model, optimizer, fsdp_config=None):
                if fsdp_config is not None:
                    prepare_fsdp_module(model, fsdp_config)
                self.state = State(model=model, optimizer=optimizer)
        """
    )
    code = dedent(
        """\
        import torch
        from state import State


        def apply_gradient_clipping(parameters, threshold):
            torch.nn.utils.clip_grad_norm_(parameters, max_norm=threshold)


        class GradientClipping:
            def apply(self, state: State):
                apply_gradient_clipping(parameters=state.model.parameters(), threshold=1.0)
        """
    )
    finding = only(
        lint(code, "GL112", extra={"dist.py": dist, "state.py": state, "trainer.py": trainer}), "GL112"
    )
    assert finding.line == at(code, "clip_grad_norm_")
    assert "prepare_fsdp_module" in finding.message and "state.model" in finding.message


# ------------------------------------------------------------------ gradient scopes


def test_dist_autograd_context_per_iteration_clears_the_gradients():
    code = dedent(
        """\
        import torch.distributed.autograd as dist_autograd


        def train(model, dist_optimizer, loader, criterion):
            for x, y in loader:
                with dist_autograd.context() as context_id:
                    loss = criterion(model(x), y)
                    dist_autograd.backward(context_id, [loss])
                    dist_optimizer.step(context_id)
        """
    )
    assert lint(code, "GL107") == []


def test_zeroing_helper_in_another_file_clears_the_gradients():
    helpers = "def reset(params):\n    for p in params:\n        p.grad = None\n"
    code = dedent(
        """\
        from helpers import reset


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                reset(model.parameters())
                criterion(model(x), y).backward()
                optimizer.step()
        """
    )
    assert lint(code, "GL107", extra={"helpers.py": helpers}) == []


def test_deliberate_accumulation_in_a_unit_test_is_not_reported():
    code = dedent(
        """\
        import torch


        def test_hybrid_optimizer_matches_the_reference(net, ref, inputs):
            ref_optimizer = torch.optim.SGD(ref.parameters(), lr=0.1)
            for x in inputs:
                ref(x).sum().backward()
                ref_optimizer.step()
        """
    )
    assert lint_sources({"test_hybrid_optimizer.py": code}, select={"GL107"}) == []
    assert lint_sources({"hybrid_optimizer.py": code}, select={"GL107"}) != []


# --------------------------------------------------------------- Accelerate under fp16

ACCELERATE = """\
import torch
from accelerate import Accelerator


class PPOTrainer:
    def __init__(self, model, optimizer, config):
        self.accelerator = Accelerator({kwargs})
        self.model, self.optimizer = model, optimizer

    def train_minibatch(self, loss):
        self.accelerator.backward(loss)
        {before}torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
"""


def accelerate(kwargs: str, before: str = "") -> str:
    return ACCELERATE.format(kwargs=kwargs, before=before)


def test_torch_clip_after_an_accelerate_fp16_backward_is_clipping_before_unscale():
    code = accelerate('mixed_precision="fp16"')
    finding = only(lint(code, "GL103"), "GL103")
    assert finding.line == at(code, "clip_grad_norm_") and finding.severity is Severity.ERROR
    assert "accelerator.clip_grad_norm_" in finding.hint


def test_accelerate_precision_set_elsewhere_makes_it_a_warning_that_says_so():
    for kwargs in ("gradient_accumulation_steps=4", "**config.accelerator_kwargs"):
        finding = only(lint(accelerate(kwargs), "GL103"), "GL103")
        assert finding.severity is Severity.WARNING and "mixed_precision" in finding.message


def test_accelerate_without_fp16_or_with_an_unscale_is_quiet():
    assert lint(accelerate('mixed_precision="bf16"'), "GL103") == []
    assert lint(accelerate('mixed_precision="no"'), "GL103") == []
    unscaled = accelerate('mixed_precision="fp16"', before="self.accelerator.unscale_gradients()\n        ")
    assert lint(unscaled, "GL103") == []


# ---------------------------------------------------------------- exhausted iterators


def test_generator_reached_through_an_alias_is_exhausted():
    # diffusers' train_text_to_image_lora.py: `params_to_clip = lora_layers` with
    # `lora_layers = filter(...)` already consumed by the optimizer.
    code = dedent(
        """\
        import torch


        def train(unet, loader, criterion, accelerator):
            lora_layers = filter(lambda p: p.requires_grad, unet.parameters())
            optimizer = torch.optim.AdamW(lora_layers, lr=1e-4)
            for x, y in loader:
                accelerator.backward(criterion(unet(x), y))
                if accelerator.sync_gradients:
                    params_to_clip = lora_layers
                    accelerator.clip_grad_norm_(params_to_clip, 1.0)
                optimizer.step()
                optimizer.zero_grad()
        """
    )
    finding = only(lint(code, "GL105"), "GL105")
    assert finding.line == at(code, "accelerator.clip_grad_norm_(params_to_clip")
    assert "`lora_layers`" in finding.message


def test_generator_kept_on_self_and_consumed_by_the_optimizer_in_init_is_exhausted():
    code = dedent(
        """\
        import torch


        class Trainer:
            def __init__(self, model):
                self.model = model
                self.params = model.parameters()
                self.optimizer = torch.optim.SGD(self.params, lr=0.1)

            def train_step(self, x, y, criterion):
                self.optimizer.zero_grad()
                criterion(self.model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(self.params, 1.0)
                self.optimizer.step()
        """
    )
    finding = only(lint(code, "GL105"), "GL105")
    assert finding.line == at(code, "clip_grad_norm_(self.params")


def test_generator_returned_by_a_project_function_is_exhausted():
    helpers = dedent(
        """\
        def trainable(model):
            for p in model.parameters():
                if p.requires_grad:
                    yield p
        """
    )
    code = dedent(
        """\
        import torch
        from helpers import trainable


        def train(model, loader, criterion):
            params = trainable(model)
            optimizer = torch.optim.Adam(params, lr=1e-3)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL105", extra={"helpers.py": helpers}), "GL105") == [at(code, "clip_grad_norm_(params")]


def test_generator_consumed_in_one_branch_and_clipped_in_another_is_fresh_there():
    # composer's apply_gradient_clipping: `_apply_agc(parameters)` runs only for 'adaptive'.
    code = dedent(
        """\
        import torch


        def _apply_agc(parameters, threshold):
            for param in parameters:
                if param.grad is not None:
                    param.grad.detach().mul_(threshold)


        def apply_gradient_clipping(model, clipping_type, threshold):
            parameters = model.parameters()
            if clipping_type == "adaptive":
                _apply_agc(parameters, threshold)
            elif clipping_type == "norm":
                torch.nn.utils.clip_grad_norm_(parameters, max_norm=threshold)
            elif clipping_type == "value":
                torch.nn.utils.clip_grad_value_(parameters, clip_value=threshold)
        """
    )
    assert lint(code, "GL105") == []


def test_gradient_hook_that_clamps_under_a_grad_scaler_clamps_scaled_gradients():
    # allennlp before PR #5426: enable_gradient_clipping registered clamping hooks, and the
    # trainer's backward was `scaler.scale(loss).backward()`.
    util = dedent(
        """\
        def enable_gradient_clipping(model, grad_clipping):
            if grad_clipping is not None:
                for parameter in model.parameters():
                    if parameter.requires_grad:
                        parameter.register_hook(
                            lambda grad: grad.clamp(min=-grad_clipping, max=grad_clipping)
                        )
        """
    )
    trainer = dedent(
        """\
        import torch
        from util import enable_gradient_clipping


        class Trainer:
            def __init__(self, model, optimizer, grad_clipping=None, use_amp=False):
                self.model, self.optimizer = model, optimizer
                self.scaler = torch.cuda.amp.GradScaler() if use_amp else None
                enable_gradient_clipping(self.model, grad_clipping)
        """
    )
    findings = lint(trainer, "GL103", extra={"util.py": util})
    assert [(f.display_path, f.line) for f in findings] == [("util.py", at(util, "lambda grad"))]
    assert findings[0].severity is Severity.WARNING
    no_scaler = trainer.replace("torch.cuda.amp.GradScaler() if use_amp else None", "None")
    assert lint(no_scaler, "GL103", extra={"util.py": util}) == []
