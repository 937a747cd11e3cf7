"""Specification tests for what a step trains (issue 11): GL101's risk comes from the model and the
optimizer that step trains, and GL101, GL401 and GL402 speak of weight training only: not of a
check in a test, an optimizer over a latent or an input, or an optimizer that clips in its own
step(). Also: clipping that depends on configuration, two optimizers after one backward, and the
one table of learning-rate limits.

Lines come from the snippets (`at(code, needle)`), never written by hand.
"""

from __future__ import annotations

import pytest
from snippets import at, dedent, lines, lint, only

from gradlint.api import lint_sources
from gradlint.findings import Severity

OPTIMIZER_RULES = ("GL101", "GL401", "GL402")

LSTM_MODEL = dedent(
    """\
    import torch.nn as nn


    class Tagger(nn.Module):
        def __init__(self, vocab=5000, hidden=256):
            super().__init__()
            self.embed = nn.Embedding(vocab, hidden)
            self.lstm = nn.LSTM(hidden, hidden, num_layers=2, batch_first=True)
            self.out = nn.Linear(hidden, 17)
    """
)


def findings_of(code: str, extra: dict[str, str] | None = None, name: str = "train.py", options=None):
    files = {name: code, **(extra or {})}
    kwargs = {"rule_options": options} if options else {}
    return lint_sources(files, select=set(OPTIMIZER_RULES), **kwargs)


# ================================================================ risk of the trained model only


def test_a_high_learning_rate_of_another_optimizer_in_the_file_leaves_this_step_at_info():
    """Megatron's test_moe_single_grouped_weight_numerics.py took the lr 0.05 of a sibling test."""
    code = dedent(
        """\
        import torch
        from torch import nn

        probe = nn.Linear(8, 8)
        probe_optimizer = torch.optim.Adam(probe.parameters(), lr=0.5)

        classifier = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        optimizer = torch.optim.SGD(classifier.parameters(), lr=0.1, momentum=0.9)
        for images, labels in loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(classifier(images), labels).backward()
            optimizer.step()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.severity is Severity.INFO
    assert "the trained model `nn.Sequential` has no recurrent layer" in finding.message


def test_the_recurrent_model_among_several_joined_parameters_makes_gl101_a_warning():
    """PyG's tgn.py: `set(memory.parameters()) | set(gnn.parameters()) | ...` trains a GRUCell."""
    model = dedent(
        """\
        from torch import nn


        class TGNMemory(nn.Module):
            def __init__(self, num_nodes, dim):
                super().__init__()
                self.gru = nn.GRUCell(dim, dim)
        """
    )
    code = dedent(
        """\
        import torch
        from torch import nn

        from memory import TGNMemory

        memory = TGNMemory(1000, 100)
        gnn = nn.Linear(100, 100)
        link_pred = nn.Linear(200, 1)
        optimizer = torch.optim.Adam(
            set(memory.parameters()) | set(gnn.parameters()) | set(link_pred.parameters()), lr=0.0001)


        def train():
            for batch in loader:
                optimizer.zero_grad()
                loss = criterion(link_pred(batch.pairs), batch.labels)
                loss.backward()
                optimizer.step()
        """
    )
    findings = findings_of(code, {"memory.py": model})
    gl101 = only(findings, "GL101")
    assert gl101.severity is Severity.WARNING
    assert "`TGNMemory` has a recurrent layer (nn.GRUCell at memory.py:" in gl101.message
    gl402 = only(findings, "GL402")
    assert gl402.line == at(code, "optimizer = torch.optim.Adam(")
    assert "trains `TGNMemory`" in gl402.message


def test_a_model_picked_from_a_dict_of_classes_by_a_resolved_key_is_followed():
    code = dedent(
        """\
        import argparse

        import torch
        from torch import nn

        parser = argparse.ArgumentParser()
        parser.add_argument("--model", default="Lazy")
        args = parser.parse_args()


        class Eager(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(8, 8)


        class Lazy(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(8, 8)


        MODELS = {"Eager": Eager, "Lazy": Lazy}
        model = MODELS[args.model]().to("cuda")
        optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
        for x, y in loader:
            optimizer.zero_grad()
            loss_op(model(x), y).backward()
            optimizer.step()
        """
    )
    findings = findings_of(code)
    assert only(findings, "GL101").severity is Severity.WARNING
    assert "`Lazy` has a recurrent layer" in only(findings, "GL101").message
    assert lines(findings, "GL402") == [at(code, "optimizer = torch.optim.Adam(")]


def test_a_recurrent_layer_built_only_under_an_unresolved_condition_is_no_evidence():
    """PyG's GCN holds a JumpingKnowledge that builds an LSTM only when `mode == 'lstm'`."""
    library = dedent(
        """\
        from torch import nn


        class JumpingKnowledge(nn.Module):
            def __init__(self, mode, channels):
                super().__init__()
                if mode == "lstm":
                    self.lstm = nn.LSTM(channels, channels, bidirectional=True, batch_first=True)


        class GCN(nn.Module):
            def __init__(self, channels, jk=None):
                super().__init__()
                self.lin = nn.Linear(channels, channels)
                if jk is not None and jk != "last":
                    self.jk = JumpingKnowledge(jk, channels)
        """
    )
    code = dedent(
        """\
        import torch

        from library import GCN

        model = GCN(64)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for data in loader:
            optimizer.zero_grad()
            criterion(model(data.x), data.y).backward()
            optimizer.step()
        """
    )
    findings = findings_of(code, {"library.py": library})
    assert only(findings, "GL101").severity is Severity.INFO
    assert lines(findings, "GL402") == []


def test_a_recurrent_layer_in_either_branch_of_an_if_is_certain():
    code = dedent(
        """\
        import torch
        from torch import nn


        class Encoder(nn.Module):
            def __init__(self, cell, hidden):
                super().__init__()
                if cell == "lstm":
                    self.rnn = nn.LSTM(hidden, hidden)
                else:
                    self.rnn = nn.GRU(hidden, hidden)


        def train(cell, loader):
            model = Encoder(cell, 128)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                optimizer.step()
        """
    )
    assert only(lint(code, "GL101"), "GL101").severity is Severity.WARNING


# ================================================================ optimizers over plain tensors


@pytest.mark.parametrize(
    "latent",
    [
        "torch.nn.Parameter(sample.detach().clone())",
        "torch.randn(1, 512, device=sample.device, requires_grad=True)",
        "sample.clone().detach().requires_grad_(True)",
    ],
)
def test_an_optimizer_over_a_latent_or_an_input_is_not_weight_training(latent):
    code = dedent(
        f"""\
        import torch


        def optimize_feature(decoder, sample, target, iters=20):
            latent = {latent}
            optimizer = torch.optim.Adam([latent], lr=0.2)
            for _ in range(iters):
                optimizer.zero_grad()
                loss = torch.nn.functional.mse_loss(decoder(latent), target)
                loss.backward()
                optimizer.step()
            return latent.detach()
        """
    )
    assert findings_of(code) == []


def test_a_fresh_standalone_parameter_is_a_weight_and_still_judged():
    code = dedent(
        """\
        import torch

        weight = torch.nn.Parameter(torch.randn(64, 64))
        optimizer = torch.optim.SGD([weight], lr=0.05)
        for x, y in batches:
            optimizer.zero_grad()
            ((x @ weight - y) ** 2).mean().backward()
            optimizer.step()
        """
    )
    finding = only(lint(code, "GL101"), "GL101")
    assert finding.severity is Severity.INFO
    assert "could not be followed to a model" in finding.message


# ================================================================ checks in test code


SINGLE_STEP_TEST = dedent(
    """\
    import torch


    def test_only_lora_weights_change():
        model = build_lora_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        model(torch.randint(0, 8, (2, 4))).sum().backward()
        optimizer.step()
        assert torch.equal(model.frozen.weight, frozen)
    """
)


def test_a_single_step_in_a_test_function_is_not_a_training_loop():
    """litgpt tests/test_lora.py:78/81: SGD at lr 1.0, one step, to check which weights move."""
    assert findings_of(SINGLE_STEP_TEST) == []


def test_a_few_steps_in_a_range_loop_of_a_test_class_are_a_check():
    code = dedent(
        """\
        import torch


        class TestMovingAverage:
            def test_shadow_follows_weights(self):
                model = torch.nn.LSTM(1, 1)
                optimizer = torch.optim.SGD(list(model.parameters()), lr=0.1)
                for _ in range(10):
                    optimizer.zero_grad()
                    model(torch.randn(10, 1, 1))[0].sum().backward()
                    optimizer.step()
        """
    )
    assert findings_of(code) == []


def test_every_function_of_a_file_under_tests_is_test_code():
    code = SINGLE_STEP_TEST.replace("def test_only_lora_weights_change", "def run_one_step")
    assert findings_of(code, name="tests/unit_tests/helpers.py") == []
    assert lines(findings_of(code), "GL101", "train.py") == [at(code, "optimizer.step()")]


def test_a_test_that_trains_over_a_data_loader_is_still_judged():
    code = dedent(
        """\
        import torch


        def test_regression_converges(loader):
            model = torch.nn.Linear(32, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
        """
    )
    finding = only(findings_of(code, name="tests/test_convergence.py"), "GL101")
    assert finding.severity is Severity.INFO


def test_a_test_helper_is_judged_where_a_loop_over_data_calls_it():
    code = dedent(
        """\
        import torch


        def _train_step(model, optimizer, x, y):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()


        def test_training_runs(loader):
            model = torch.nn.Linear(4, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            for x, y in loader:
                _train_step(model, optimizer, x, y)
        """
    )
    findings = findings_of(code, name="tests/test_training.py")
    assert lines(findings, "GL101", "tests/test_training.py") == [at(code, "optimizer.step()")]


def test_a_function_named_test_in_a_training_script_is_not_test_code():
    code = SINGLE_STEP_TEST.replace("def test_only_lora_weights_change():", "def test():")
    assert lines(findings_of(code), "GL101") == [at(code, "optimizer.step()")]


# ================================================================ clipping inside the optimizer


def gemini(clipping: str) -> str:
    return dedent(
        f"""\
        import argparse

        import torch
        from colossalai.nn.optimizer.gemini_optimizer import GeminiAdamOptimizer

        parser = argparse.ArgumentParser()
        parser.add_argument("--max_grad_norm", default=1.0, type=float)
        args = parser.parse_args()

        unet = torch.nn.LSTM(64, 64)
        optimizer = GeminiAdamOptimizer(unet, lr=0.1, initial_scale=2**5{clipping})
        for batch in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(unet(batch)[0], batch)
            loss.backward()
            optimizer.step()
        """
    )


def test_an_optimizer_that_clips_in_its_own_step_is_a_clipped_step():
    """diffusers' train_dreambooth_colossalai.py:620: `clipping_norm=args.max_grad_norm` (1.0)."""
    assert findings_of(gemini(", clipping_norm=args.max_grad_norm")) == []
    assert findings_of(gemini(", clipping_norm=1.0")) == []


def test_the_clipping_keyword_off_or_left_at_its_off_default_is_no_clipping():
    for clipping in ("", ", clipping_norm=0.0"):
        finding = only(findings_of(gemini(clipping)), "GL101")
        assert finding.severity is Severity.WARNING  # the trained nn.LSTM


def test_an_unresolved_clipping_keyword_makes_clipping_depend_on_it():
    finding = only(findings_of(gemini(", clipping_norm=config['clip']")), "GL101")
    assert finding.severity is Severity.INFO
    assert finding.message.startswith("Clipping depends on `config['clip']`")


def test_an_optimizer_that_clips_by_default_needs_no_keyword():
    code = dedent(
        """\
        import torch
        from apex.optimizers import FusedLAMB

        model = torch.nn.GRU(64, 64)
        optimizer = FusedLAMB(model.parameters(), lr=1e-3)
        for x, y in loader:
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x)[0], y).backward()
            optimizer.step()
        """
    )
    assert findings_of(code) == []


SOLVER = dedent(
    """\
    import torch


    def _with_clipping(optimizer_type, max_norm):
        def step(self, closure=None):
            params = [p for group in self.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, max_norm)
            super(type(self), self).step(closure)

        return type(optimizer_type.__name__ + "WithGradientClip", (optimizer_type,), {"step": step})


    def maybe_add_gradient_clipping(cfg, optimizer_type):
        if not cfg.SOLVER.CLIP_GRADIENTS.ENABLED:
            return optimizer_type
        return _with_clipping(optimizer_type, cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE)


    def build_optimizer(cfg, model):
        return maybe_add_gradient_clipping(cfg, torch.optim.SGD)(model.parameters(), lr=cfg.SOLVER.BASE_LR)


    class ClippedSGD(torch.optim.SGD):
        def step(self, closure=None):
            torch.nn.utils.clip_grad_norm_([p for g in self.param_groups for p in g["params"]], 1.0)
            return super().step(closure)


    def build_clipped(model, lr):
        return ClippedSGD(model.parameters(), lr=lr)
    """
)


def detectron_loop(build: str) -> str:
    return dedent(
        f"""\
        from solver import build_clipped, build_optimizer


        def do_train(cfg, model, loader):
            optimizer = {build}
            for images, targets in loader:
                losses = sum(model(images, targets).values())
                optimizer.zero_grad()
                losses.backward()
                optimizer.step()
        """
    )


def test_a_factory_that_clips_only_when_the_config_says_so_makes_gl101_info_naming_the_key():
    """detectron2's build_optimizer -> maybe_add_gradient_clipping (tools/plain_train_net.py:151)."""
    code = detectron_loop("build_optimizer(cfg, model)")
    finding = only(findings_of(code, {"solver.py": SOLVER}), "GL101")
    assert finding.line == at(code, "optimizer.step()")
    assert finding.severity is Severity.INFO
    assert finding.message.startswith("Clipping depends on `cfg.SOLVER.CLIP_GRADIENTS.ENABLED`")
    assert f"solver.py:{at(SOLVER, 'if not cfg.SOLVER')}" in finding.message
    assert "cfg.SOLVER.CLIP_GRADIENTS.ENABLED" in (finding.hint or "")


def test_a_project_optimizer_class_whose_step_clips_is_a_clipped_step():
    code = detectron_loop("build_clipped(model, lr=5.0)")
    assert findings_of(code, {"solver.py": SOLVER}) == []


TRAIN_LOOP = dedent(
    """\
    class SimpleTrainer:
        def __init__(self, model, data_loader, optimizer):
            self.model = model
            self.data_loader = data_loader
            self.optimizer = optimizer

        def run_step(self):
            losses = sum(self.model(next(self.data_loader)).values())
            self.optimizer.zero_grad()
            losses.backward()
            self.optimizer.step()


    class AMPTrainer(SimpleTrainer):
        def __init__(self, model, data_loader, optimizer, grad_scaler):
            super().__init__(model, data_loader, optimizer)
            self.grad_scaler = grad_scaler

        def run_step(self):
            losses = sum(self.model(next(self.data_loader)).values())
            self.optimizer.zero_grad()
            self.grad_scaler.scale(losses).backward()
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
    """
)

DEFAULTS = dedent(
    """\
    import solver
    from train_loop import AMPTrainer, SimpleTrainer


    class DefaultTrainer:
        def __init__(self, cfg, model, data_loader):
            optimizer = self.build_optimizer(cfg, model)
            self._trainer = (AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(model, data_loader, optimizer)

        @classmethod
        def build_optimizer(cls, cfg, model):
            return solver.build_optimizer(cfg, model)
    """
)


def test_a_trainer_class_built_by_a_conditional_callee_is_followed_to_its_optimizer_factory():
    """detectron2: `(AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer)(model, loader, optimizer)`
    in another file, the optimizer from a classmethod `self.build_optimizer`, and AMPTrainer's
    `self.optimizer` set in its base class's `__init__` (engine/train_loop.py:336, 517)."""
    found = lint_sources(
        {"train_loop.py": TRAIN_LOOP, "defaults.py": DEFAULTS, "solver.py": SOLVER}, select={"GL101"}
    )
    steps = {finding.line: finding for finding in found if finding.display_path == "train_loop.py"}
    assert sorted(steps) == [at(TRAIN_LOOP, "self.optimizer.step()"), at(TRAIN_LOOP, "self.grad_scaler.step(")]
    for finding in steps.values():
        assert finding.severity is Severity.INFO
        assert finding.message.startswith("Clipping depends on `cfg.SOLVER.CLIP_GRADIENTS.ENABLED`")


def test_without_its_callers_a_trainer_class_optimizer_is_unknown():
    found = lint_sources({"train_loop.py": TRAIN_LOOP}, select={"GL101"})
    assert [f.severity for f in found] == [Severity.INFO, Severity.INFO]
    assert all("could not be followed" in f.message for f in found)


ENGINE = dedent(
    """\
    class Engine:
        def __init__(self, state):
            self.state = state

        def run_event(self, event):
            for algorithm in self.state.algorithms:
                if algorithm.match(event, self.state):
                    algorithm.apply(event, self.state)
    """
)

ALGORITHMS = dedent(
    """\
    import torch


    class Algorithm:
        def match(self, event, state):
            return False

        def apply(self, event, state):
            pass


    class GradientClipping(Algorithm):
        def __init__(self, threshold):
            self.threshold = threshold

        def match(self, event, state):
            return event == "after_train_batch"

        def apply(self, event, state):
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), self.threshold)


    class LabelSmoothing(Algorithm):
        def apply(self, event, state):
            state.smoothing = 0.1
    """
)

TRAINER = dedent(
    """\
    from engine import Engine


    class Trainer:
        def __init__(self, state):
            self.state = state
            self.engine = Engine(state)

        def train_batch(self, batch):
            loss = self.state.model(batch)
            loss.backward()
            self.engine.run_event("after_train_batch")
            for optimizer in self.state.optimizers:
                optimizer.step()
    """
)


def test_clipping_by_a_configured_algorithm_makes_gl101_info_naming_it():
    """composer: `self.engine.run_event(Event.AFTER_TRAIN_BATCH)` runs every configured algorithm's
    `apply`; the GradientClipping algorithm clips, when configured (trainer.py:2692)."""
    found = lint_sources({"trainer.py": TRAINER, "engine.py": ENGINE, "algorithms.py": ALGORITHMS}, select={"GL101"})
    finding = only(found, "GL101")
    assert finding.line == at(TRAINER, "optimizer.step()")
    assert finding.severity is Severity.INFO
    assert finding.message.startswith("Clipping depends on configuration")
    assert f"`GradientClipping.apply` (algorithms.py:{at(ALGORITHMS, 'def apply(self, event, state):', 2)})" in finding.message


def test_a_loop_over_objects_whose_classes_never_clip_is_no_clipping():
    algorithms = ALGORITHMS.replace("torch.nn.utils.clip_grad_norm_(state.model.parameters(), self.threshold)", "pass")
    found = lint_sources({"trainer.py": TRAINER, "engine.py": ENGINE, "algorithms.py": algorithms}, select={"GL101"})
    assert "Clipping depends" not in only(found, "GL101").message


def test_a_clipping_condition_that_resolves_decides():
    solver = SOLVER.replace("if not cfg.SOLVER.CLIP_GRADIENTS.ENABLED:", "if not CLIP_ENABLED:")
    on = "CLIP_ENABLED = True\n\n" + solver
    off = "CLIP_ENABLED = False\n\n" + solver
    code = detectron_loop("build_optimizer(cfg, model)")
    assert findings_of(code, {"solver.py": on}) == []
    finding = only(findings_of(code, {"solver.py": off}), "GL101")
    assert "Clipping depends on" not in finding.message


# ================================================================ two optimizers, one backward


SEQ2SEQ = dedent(
    """\
    import torch
    from torch import nn


    class EncoderRNN(nn.Module):
        def __init__(self, vocab, hidden):
            super().__init__()
            self.gru = nn.GRU(hidden, hidden, batch_first=True)


    class DecoderRNN(nn.Module):
        def __init__(self, hidden, vocab):
            super().__init__()
            self.gru = nn.GRU(hidden, hidden, batch_first=True)


    def train(source, target, encoder, decoder, encoder_optimizer, decoder_optimizer, criterion):
        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()
        loss = criterion(decoder(encoder(source)), target)
        loss.backward()
        encoder_optimizer.step()
        decoder_optimizer.step()
        return loss.item()


    def train_iters(encoder, decoder, pairs, learning_rate=0.01):
        encoder_optimizer = torch.optim.SGD(encoder.parameters(), lr=learning_rate)
        decoder_optimizer = torch.optim.SGD(decoder.parameters(), lr=learning_rate)
        for source, target in pairs:
            train(source, target, encoder, decoder, encoder_optimizer, decoder_optimizer, nn.NLLLoss())


    train_iters(EncoderRNN(4000, 256), DecoderRNN(256, 3000), pairs)
    """
)


def test_gl402_judges_both_optimizers_passed_into_the_step_function():
    """pytorch/tutorials seq2seq_translation_tutorial.py:634/635."""
    findings = findings_of(SEQ2SEQ)
    assert lines(findings, "GL402") == [at(SEQ2SEQ, "encoder_optimizer = "), at(SEQ2SEQ, "decoder_optimizer = ")]
    messages = sorted(f.message for f in findings if f.code == "GL402")
    assert "trains `DecoderRNN`" in messages[0] and "trains `EncoderRNN`" in messages[1]


def test_the_fix_clips_every_model_the_steps_of_one_backward_update_before_the_first_step():
    finding = next(f for f in findings_of(SEQ2SEQ) if f.code == "GL101" and f.line == at(SEQ2SEQ, "encoder_optimizer.step()"))
    assert finding.severity is Severity.WARNING
    assert finding.fix is not None and finding.fix.safety == "unsafe"
    inserted = [text for edit in finding.fix.edits for text in edit.text]
    assert [line.strip() for line in inserted] == [
        "torch.nn.utils.clip_grad_norm_(encoder.parameters(), max_norm=1.0)",
        "torch.nn.utils.clip_grad_norm_(decoder.parameters(), max_norm=1.0)",
    ]
    assert finding.fix.edits[0].line == at(SEQ2SEQ, "encoder_optimizer.step()") - 1  # before the first step
    assert "encoder.parameters()" in finding.hint and "decoder.parameters()" in finding.hint


# ================================================================ one table of learning-rate limits


@pytest.mark.parametrize("lr, severity, reported", [("0.01", Severity.INFO, False), ("0.02", Severity.WARNING, True)])
def test_gl101_and_gl401_agree_on_the_limit(lr, severity, reported):
    """PyG's gcn.py/agnn.py/glnn.py: Adam at lr 0.01 is the usual setting, not above the range."""
    code = dedent(
        f"""\
        import torch
        from torch import nn

        model = nn.Sequential(nn.Linear(1433, 16), nn.ReLU(), nn.Linear(16, 7))
        optimizer = torch.optim.Adam(model.parameters(), lr={lr}, weight_decay=5e-4)
        for epoch in range(200):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        """
    )
    findings = findings_of(code)
    assert only(findings, "GL101").severity is severity
    assert bool(lines(findings, "GL401")) is reported


def test_gl401_options_move_gl101s_limit_too():
    code = dedent(
        """\
        import torch
        from torch import nn

        model = nn.Linear(16, 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for x, y in loader:
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
        """
    )
    default = lint_sources({"train.py": code}, select={"GL101"})
    strict = lint_sources({"train.py": code}, select={"GL101"}, rule_options={"GL401": {"adaptive-limit": 0.001}})
    assert only(default, "GL101").severity is Severity.INFO
    finding = only(strict, "GL101")
    assert finding.severity is Severity.WARNING
    assert "above its usual range (<= 0.001)" in finding.message


# ================================================================ argparse: the script's own parser


def test_gl401_reads_the_lr_of_the_scripts_own_parser_not_another_scripts():
    """DeepSpeedExamples training/gan/gan_baseline_train.py:104/105 took compression/cifar's 0.1."""
    utils = dedent(
        """\
        import argparse


        def get_argument_parser():
            parser = argparse.ArgumentParser(description="GAN")
            parser.add_argument("--lr", type=float, default=0.0002)
            return parser
        """
    )
    other = dedent(
        """\
        import argparse

        parser = argparse.ArgumentParser()
        parser.add_argument("--lr", type=float, default=0.1)
        """
    )
    code = dedent(
        """\
        import torch

        from utils import get_argument_parser


        def train(args, loader):
            net = torch.nn.Conv2d(3, 8, 3)
            optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.5, 0.999))
            for real, label in loader:
                net.zero_grad()
                torch.nn.functional.mse_loss(net(real), label).backward()
                optimizer.step()


        def main():
            parser = get_argument_parser()
            args = parser.parse_args()
            train(args, loader)
        """
    )
    findings = findings_of(code, {"gan/utils.py": utils, "cifar/options.py": other}, name="gan/train.py")
    assert lines(findings, "GL401", "gan/train.py") == []
    assert only(findings, "GL101").severity is Severity.INFO
    assert "its learning rate is in its usual range" in only(findings, "GL101").message
