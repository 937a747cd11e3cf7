"""Specification tests for the clip-call rules: GL104 (threshold), GL105 (exhausted iterator)
and GL110 (clipping inside gradient accumulation).

Lines are computed from the snippet (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations


import pytest

from snippets import dedent, lint, lines, only, at

# =========================================================================== GL104


THRESHOLD = """\
import math
import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

MAX_NORM = 0.0
GRAD_CLIP = 5.0


def train(args, model, optimizer, loader, criterion):
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        {clip}
        optimizer.step()
"""


def threshold(clip: str) -> str:
    return THRESHOLD.format(clip=clip)


@pytest.mark.parametrize(
    "clip, value_text",
    [
        ('clip_grad_norm_(model.parameters(), float("inf"))', "max_norm=inf"),
        ("clip_grad_norm_(model.parameters(), max_norm=math.inf)", "max_norm=inf"),
        ("clip_grad_norm_(model.parameters(), torch.inf)", "max_norm=inf"),
        ('clip_grad_norm_(model.parameters(), float("nan"))', "max_norm=nan"),
        ("clip_grad_norm_(model.parameters(), 0)", "max_norm=0"),
        ("clip_grad_norm_(model.parameters(), -1.0)", "max_norm=-1"),
        ("clip_grad_norm_(model.parameters(), 1e4)", "max_norm=10000"),
        ("clip_grad_norm_(model.parameters(), 1000)", "max_norm=1000"),
        ("clip_grad_norm_(model.parameters(), 2 ** 10)", "max_norm=1024"),
        ("clip_grad_norm_(model.parameters(), MAX_NORM)", "max_norm=0"),
        ("clip_grad_norm_(model.parameters(), -GRAD_CLIP)", "max_norm=-5"),
        ("nn.utils.clip_grad_norm_(model.parameters(), max_norm=1e9, norm_type=2)", "max_norm=1e+09"),
        ("clip_grad_value_(model.parameters(), 0.0)", "clip_value=0"),
        ("clip_grad_value_(model.parameters(), clip_value=-0.5)", "clip_value=-0.5"),
        ("nn.utils.clip_grads_with_norm_(model.parameters(), 0, total_norm)", "max_norm=0"),
    ],
)
def test_ineffective_threshold_is_reported_at_the_threshold_argument(clip, value_text):
    code = threshold(clip)
    finding = only(lint(code, "GL104"), "GL104")
    assert finding.line == at(code, clip)
    assert value_text in finding.message
    call = clip.split("(")[0]
    assert f"`{call}`" in finding.message


@pytest.mark.parametrize(
    "clip",
    [
        "clip_grad_norm_(model.parameters(), 1.0)",
        "clip_grad_norm_(model.parameters(), max_norm=0.25)",
        "clip_grad_norm_(model.parameters(), 999.0)",
        "clip_grad_norm_(model.parameters(), GRAD_CLIP)",
        "clip_grad_norm_(model.parameters(), args.clip)",
        "clip_grad_norm_(model.parameters(), max_norm=args.max_grad_norm)",
        "clip_grad_norm_(model.parameters(), cfg['clip'])",
        "clip_grad_value_(model.parameters(), clip_value=1.0)",
        # norm_type=inf is the infinity *norm*, not an infinite threshold
        "clip_grad_norm_(model.parameters(), 1.0, norm_type=math.inf)",
    ],
)
def test_effective_or_unresolved_threshold_is_quiet(clip):
    assert lint(threshold(clip), "GL104") == []


def test_threshold_on_its_own_line_is_reported_there():
    code = threshold(
        "clip_grad_norm_(\n"
        "            model.parameters(),\n"
        '            max_norm=float("inf"),\n'
        "        )"
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, 'max_norm=float("inf")')]


def test_inf_imported_from_math_is_resolved():
    code = dedent(
        """\
        from math import inf
        import torch


        def step(model, optimizer, loss):
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), inf)
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "clip_grad_norm_")]


def test_numpy_inf_is_resolved():
    code = dedent(
        """\
        import numpy as np
        import torch


        def step(model, optimizer, loss):
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=np.inf)
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "clip_grad_norm_")]


def test_max_norm_limit_option_lowers_the_too_large_bound():
    code = threshold("clip_grad_norm_(model.parameters(), 500.0)")
    assert lint(code, "GL104") == []
    findings = lint(code, "GL104", rule_options={"GL104": {"max-norm-limit": 100.0}})
    finding = only(findings, "GL104")
    assert finding.line == at(code, "clip_grad_norm_(model")
    assert "max_norm=500" in finding.message
    assert "100" in (finding.hint or "")


def test_max_norm_limit_option_raises_the_too_large_bound():
    code = threshold("clip_grad_norm_(model.parameters(), 5000.0)")
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "clip_grad_norm_(model")]
    assert lint(code, "GL104", rule_options={"GL104": {"max-norm-limit": 1e6}}) == []


def test_max_norm_limit_option_accepts_an_integer():
    code = threshold("clip_grad_norm_(model.parameters(), 100.0)")
    assert lines(lint(code, "GL104", rule_options={"GL104": {"max-norm-limit": 100}}), "GL104") == [
        at(code, "clip_grad_norm_(model")
    ]


def test_accelerate_clip_max_norm_is_checked():
    code = dedent(
        """\
        from accelerate import Accelerator

        accelerator = Accelerator()
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), max_norm=0)
            optimizer.step()
            optimizer.zero_grad()
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "accelerator.clip_grad_norm_")]


def test_accelerate_positional_max_norm_is_checked():
    code = dedent(
        """\
        def train(accelerator, model, optimizer, loader):
            for batch in loader:
                accelerator.backward(model(**batch).loss)
                accelerator.clip_grad_norm_(model.parameters(), float("inf"))
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "accelerator.clip_grad_norm_")]


def test_fabric_clip_gradients_max_norm_is_checked():
    code = dedent(
        """\
        def train(fabric, model, optimizer, loader):
            for batch in loader:
                optimizer.zero_grad()
                fabric.backward(model(batch))
                fabric.clip_gradients(model, optimizer, max_norm=-1)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "fabric.clip_gradients")]


def test_lightning_gradient_clip_val_is_checked():
    code = dedent(
        """\
        import lightning as L


        class Lit(L.LightningModule):
            def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
                self.clip_gradients(optimizer, gradient_clip_val=float("inf"), gradient_clip_algorithm="norm")
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "self.clip_gradients")]


def test_fsdp_clip_method_max_norm_is_checked():
    code = dedent(
        """\
        def train(model, optimizer, loader):
            for batch in loader:
                optimizer.zero_grad()
                model(batch).loss.backward()
                model.clip_grad_norm_(0.0)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL104"), "GL104") == [at(code, "model.clip_grad_norm_")]


def test_threshold_of_a_local_function_named_like_torch_clip_is_not_checked():
    # The module's own `clip_grad_norm_` may give its second argument any meaning.
    code = dedent(
        """\
        def clip_grad_norm_(parameters, every_n):
            pass


        def train(model, optimizer, loader):
            for step, batch in enumerate(loader):
                model(batch).backward()
                clip_grad_norm_(model.parameters(), 0)
                optimizer.step()
        """
    )
    assert lint(code, "GL104") == []


def test_module_constant_shadowed_by_a_parameter_is_not_used():
    code = dedent(
        """\
        import torch

        max_norm = 0.0  # module default, overridden by the caller


        def train(model, optimizer, loader, max_norm=1.0):
            for x, y in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
                optimizer.step()
        """
    )
    assert lint(code, "GL104") == []


def test_module_constant_rebound_locally_to_an_unresolved_value_is_quiet():
    code = dedent(
        """\
        import torch

        MAX_NORM = 0.0


        def train(model, optimizer, loader, args):
            MAX_NORM = args.clip
            for x, y in loader:
                optimizer.zero_grad()
                model(x).sum().backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
                optimizer.step()
        """
    )
    assert lint(code, "GL104") == []


# =========================================================================== GL105


def test_parameters_generator_consumed_by_the_optimizer_is_reported_at_the_clip_argument():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            params = model.parameters()
            optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL105"), "GL105")
    assert finding.line == at(code, "clip_grad_norm_(params")
    assert "`model.parameters()`" in finding.message
    assert f"at line {at(code, 'params = model.parameters()')}" in finding.message
    assert "torch.optim.SGD" in finding.message
    assert f"at line {at(code, 'optimizer = torch.optim.SGD')}" in finding.message
    assert "list(" in (finding.hint or "")


def test_parameters_generator_consumed_by_a_for_loop_is_reported():
    code = dedent(
        """\
        import torch
        import torch.nn as nn


        def train(model, optimizer, loader, criterion):
            params = model.parameters()
            for p in params:
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL105"), "GL105")
    assert finding.line == at(code, "clip_grad_norm_(params")
    assert "a for loop" in finding.message


def test_generator_bound_outside_the_loop_and_clipped_inside_is_reported():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            trainable = model.parameters()
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
        """
    )
    finding = only(lint(code, "GL105"), "GL105")
    assert finding.line == at(code, "clip_grad_norm_(trainable")
    assert "bound outside the loop" in finding.message


@pytest.mark.parametrize(
    "binding",
    [
        "(p for p in model.parameters() if p.requires_grad)",
        "filter(lambda p: p.requires_grad, model.parameters())",
        "map(lambda kv: kv[1], model.named_parameters())",
    ],
    ids=["generator-expression", "filter", "map"],
)
def test_one_shot_iterators_consumed_by_the_optimizer_are_reported(binding):
    code = dedent(
        f"""\
        import torch


        def finetune(model, loader, criterion):
            trainable = {binding}
            optimizer = torch.optim.AdamW(trainable, lr=2e-5)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL105"), "GL105") == [at(code, "clip_grad_norm_(trainable")]


@pytest.mark.parametrize(
    "binding",
    [
        "list(model.parameters())",
        "[p for p in model.parameters() if p.requires_grad]",
        "tuple(model.parameters())",
    ],
)
def test_materialised_parameter_list_is_quiet(binding):
    code = dedent(
        f"""\
        import torch


        def train(model, loader, criterion):
            params = {binding}
            optimizer = torch.optim.SGD(params, lr=0.01)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL105") == []


def test_generator_bound_fresh_in_each_iteration_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                params = model.parameters()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL105") == []


def test_parameters_passed_directly_to_the_clip_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL105") == []


def test_single_clip_of_an_unconsumed_generator_outside_any_loop_is_quiet():
    code = dedent(
        """\
        import torch


        def step(model, optimizer, loss):
            params = model.parameters()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        """
    )
    assert lint(code, "GL105") == []


def test_generator_rebound_after_consumption_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            params = model.parameters()
            optimizer = torch.optim.SGD(params, lr=0.01)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                params = model.parameters()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL105") == []


def test_generator_bound_per_epoch_and_clipped_per_batch_is_reported():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, epochs):
            for epoch in range(epochs):
                params = model.parameters()
                for x, y in loader:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
        """
    )
    assert lines(lint(code, "GL105"), "GL105") == [at(code, "clip_grad_norm_(params")]


def test_clip_with_keyword_parameters_argument_is_checked():
    code = dedent(
        """\
        import torch


        def train(model, loader, criterion):
            params = model.parameters()
            optimizer = torch.optim.SGD(params, lr=0.01)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(parameters=params, max_norm=1.0)
                optimizer.step()
        """
    )
    assert lines(lint(code, "GL105"), "GL105") == [at(code, "clip_grad_norm_(parameters=params")]


def test_generator_passed_to_the_optimizer_by_keyword_is_reported():
    # Test-time adaptation: one clipped gradient step on the incoming batch (no loop involved).
    code = dedent(
        """\
        import torch


        def adapt(model, batch, criterion):
            params = model.parameters()
            optimizer = torch.optim.SGD(params=params, lr=1e-3)
            optimizer.zero_grad()
            criterion(model(batch)).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL105"), "GL105") == [at(code, "clip_grad_norm_(params")]


def test_generator_passed_to_the_optimizer_positionally_without_a_loop_is_reported():
    code = dedent(
        """\
        import torch


        def adapt(model, batch, criterion):
            params = model.parameters()
            optimizer = torch.optim.SGD(params, lr=1e-3)
            optimizer.zero_grad()
            criterion(model(batch)).backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL105"), "GL105") == [at(code, "clip_grad_norm_(params")]


def test_generator_consumed_by_a_grad_norm_comprehension_is_reported():
    # The gradient norm is logged through a generator expression over `params`, which exhausts it.
    code = dedent(
        """\
        import torch


        def train_step(model, optimizer, batch, log):
            optimizer.zero_grad()
            model(**batch).loss.backward()
            params = model.parameters()
            log["grad_norm"] = sum(p.grad.norm() ** 2 for p in params) ** 0.5
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        """
    )
    assert lines(lint(code, "GL105"), "GL105") == [at(code, "clip_grad_norm_(params")]


# =========================================================================== GL110


ACCUMULATION = """\
import torch


def train(model, optimizer, loader, criterion, accum_steps=8):
    model.train()
    for i, (x, y) in enumerate(loader):
        loss = criterion(model(x), y) / accum_steps
        loss.backward()
        {outside}
        if (i + 1) % accum_steps == 0:
            {inside}
            optimizer.step()
            optimizer.zero_grad()
"""

CLIP = "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"


def test_clip_outside_the_accumulation_guard_is_reported_at_the_clip():
    code = ACCUMULATION.format(outside=CLIP, inside="pass")
    finding = only(lint(code, "GL110"), "GL110")
    assert finding.line == at(code, "clip_grad_norm_")
    assert "`(i + 1) % accum_steps == 0`" in finding.message
    assert f"(line {at(code, 'optimizer.step()')})" in finding.message


def test_clip_inside_the_accumulation_guard_is_quiet():
    code = ACCUMULATION.format(outside="pass", inside=CLIP)
    assert lint(code, "GL110", "GL101", "GL102") == []


def test_accumulation_guard_without_modulo_but_named_accum_is_recognised():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, grad_accum_steps):
            micro = 0
            for x, y in loader:
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                micro += 1
                if micro == grad_accum_steps:
                    optimizer.step()
                    optimizer.zero_grad()
                    micro = 0
        """
    )
    assert lines(lint(code, "GL110"), "GL110") == [at(code, "clip_grad_norm_")]


def test_condition_that_is_not_about_accumulation_is_not_a_guard():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                loss = criterion(model(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                if torch.isfinite(loss):
                    optimizer.step()
        """
    )
    assert lint(code, "GL110") == []


def test_modulo_condition_around_backward_and_step_is_not_an_accumulation_guard():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion, every):
            for i, (x, y) in enumerate(loader):
                if i % every == 0:
                    optimizer.zero_grad()
                    criterion(model(x), y).backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
        """
    )
    assert lint(code, "GL110") == []


def test_clip_inside_an_optimizer_step_helper_under_the_guard_is_quiet():
    code = dedent(
        """\
        import torch


        class Trainer:
            def optimizer_step(self):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
                self.optimizer.step()
                self.optimizer.zero_grad()

            def train_epoch(self, loader):
                for step, batch in enumerate(loader):
                    loss = self.model(**batch).loss / self.gradient_accumulation_steps
                    loss.backward()
                    if (step + 1) % self.gradient_accumulation_steps == 0:
                        self.optimizer_step()
        """
    )
    assert lint(code, "GL110", "GL101") == []


def test_clip_helper_called_outside_the_guard_is_reported_at_the_clip():
    code = dedent(
        """\
        import torch


        def clip(model):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)


        def train(model, optimizer, loader, criterion, accum):
            for i, (x, y) in enumerate(loader):
                (criterion(model(x), y) / accum).backward()
                clip(model)
                if (i + 1) % accum == 0:
                    optimizer.step()
                    optimizer.zero_grad()
        """
    )
    assert lines(lint(code, "GL110"), "GL110") == [at(code, "clip_grad_norm_")]


def test_amp_accumulation_with_unscale_and_clip_outside_guard_is_reported():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, scaler, loader, criterion, args):
            for step, (x, y) in enumerate(loader):
                with torch.autocast("cuda"):
                    loss = criterion(model(x), y) / args.accum_steps
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                if (step + 1) % args.accum_steps == 0:
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad()
        """
    )
    assert lines(lint(code, "GL110"), "GL110") == [at(code, "clip_grad_norm_")]


ACCELERATE_ACCUMULATE = """\
from accelerate import Accelerator

accelerator = Accelerator(gradient_accumulation_steps=4)
model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

for epoch in range(num_epochs):
    for batch in loader:
        with accelerator.accumulate(model):
            outputs = model(**batch)
            accelerator.backward(outputs.loss)
            {clip}
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
"""


def test_accelerate_clip_in_accumulate_without_sync_gradients_check_is_reported():
    code = ACCELERATE_ACCUMULATE.format(clip="accelerator.clip_grad_norm_(model.parameters(), 1.0)")
    finding = only(lint(code, "GL110"), "GL110")
    assert finding.line == at(code, "accelerator.clip_grad_norm_")
    assert "accumulate()" in finding.message
    assert "sync_gradients" in (finding.hint or "")


def test_accelerate_clip_under_sync_gradients_is_quiet():
    code = ACCELERATE_ACCUMULATE.format(
        clip="if accelerator.sync_gradients:\n"
        "                accelerator.clip_grad_norm_(model.parameters(), 1.0)"
    )
    assert lint(code, "GL110", "GL101") == []


def test_accelerate_clip_outside_accumulate_is_quiet():
    code = dedent(
        """\
        from accelerate import Accelerator

        accelerator = Accelerator()
        for batch in loader:
            optimizer.zero_grad()
            accelerator.backward(model(**batch).loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        """
    )
    assert lint(code, "GL110") == []


def test_no_accumulation_at_all_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL110") == []


def test_infinite_threshold_in_a_logging_helper_is_the_measuring_idiom():
    code = dedent(
        """\
        import torch


        def grad_norm(model):
            # inf: measure the total norm, clip nothing
            return torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))


        def train(model, optimizer, loader, log):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                log(grad_norm(model))
        """
    )
    assert lint(code, "GL104") == []


def test_infinite_threshold_beside_a_real_clip_in_the_step_is_quiet():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, log):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                log(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
        """
    )
    assert lint(code, "GL104") == []


def test_infinite_threshold_as_the_steps_only_clip_is_reported():
    code = dedent(
        """\
        import torch


        def train(model, optimizer, loader, log):
            for x, y in loader:
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                log(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
                optimizer.step()
        """
    )
    (finding,) = lint(code, "GL104")
    assert finding.line == at(code, "clip_grad_norm_")
    assert "only clipping" in finding.message
