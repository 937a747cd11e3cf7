"""Clipping and detaching are what a function's body does, followed across files (issue 11).

Clipping is a known clip API, an in-place clip of `.grad`, or a project function whose body (in
any file, through other functions) does one of these; a function merely named like a clip is
not clipping when its body can be read. Only code that cannot be read is judged by its name, or
by the configuration's `clip-functions` / `detach-functions`."""

from __future__ import annotations

import pytest

from tests.snippets import at, dedent, lines, lint

LOOP = """\
import torch
{imports}


def train(model, optimizer, loader, criterion):
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        {between}
        optimizer.step()
"""


def loop(between: str, imports: str = "") -> str:
    return LOOP.format(between=between, imports=imports)


def test_clip_boxes_to_image_between_backward_and_step_is_not_clipping():
    code = loop("boxes = clip_boxes_to_image(boxes, (224, 224))", "from torchvision.ops import clip_boxes_to_image")
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]


def test_imported_function_named_like_a_clip_whose_body_clips_no_gradient_is_not_clipping():
    utils = dedent(
        """\
        def clip_grad_values(values, low, high):
            return values.clamp(low, high)
        """
    )
    code = loop("logits = clip_grad_values(loss, -5, 5)", "from utils import clip_grad_values")
    assert lines(lint(code, "GL101", extra={"utils.py": utils}), "GL101") == [at(code, "optimizer.step()")]


@pytest.mark.parametrize(
    "body",
    [
        "for p in model.parameters():\n        p.grad.data.clamp_(-value, value)",
        "for p in model.parameters():\n        if p.grad is not None:\n            p.grad.clamp_(min=-value, max=value)",
        "grads = [p.grad for p in model.parameters()]\n    norm = torch.norm(torch.stack([g.norm() for g in grads]))\n"
        "    clip_coef = value / (norm + 1e-6)\n    torch._foreach_mul_(grads, clip_coef)",
        "total_norm = sum(p.grad.norm() ** 2 for p in model.parameters()) ** 0.5\n"
        "    for p in model.parameters():\n        p.grad.data.mul_(min(1.0, value / (total_norm + 1e-6)))",
    ],
    ids=["clamp_ on grad.data", "clamp_ on grad", "_foreach_mul_ by a clip coefficient", "mul_ by a norm ratio"],
)
def test_handwritten_clip_that_changes_every_grad_in_place_is_clipping(body):
    utils = f"import torch\n\n\ndef tame(model, value):\n    {body}\n"
    code = loop("tame(model, 1.0)", "from utils import tame")
    assert lint(code, "GL101", extra={"utils.py": utils}) == []
    same_file = loop("tame(model, 1.0)") + "\n\n" + utils.split("\n", 1)[1]
    assert lint(same_file, "GL101") == []


def test_unscaling_gradients_by_the_loss_scale_is_not_clipping():
    utils = dedent(
        """\
        def unscale(params, loss_scale):
            for p in params:
                p.grad.mul_(1.0 / loss_scale)
        """
    )
    code = loop("unscale(model.parameters(), 2 ** 16)", "from utils import unscale")
    assert lines(lint(code, "GL101", extra={"utils.py": utils}), "GL101") == [at(code, "optimizer.step()")]


def test_clipping_reached_through_functions_in_other_files_is_clipping():
    low = "import torch\n\n\ndef clip_all(params, max_norm):\n    torch.nn.utils.clip_grad_norm_(params, max_norm)\n"
    middle = "from low import clip_all\n\n\ndef after_backward(model):\n    clip_all(model.parameters(), 1.0)\n"
    code = loop("after_backward(model)", "from middle import after_backward")
    assert lint(code, "GL101", extra={"low.py": low, "middle.py": middle}) == []


def test_method_of_an_object_whose_class_is_in_another_file_clips_when_its_body_does():
    # allennlp's find_learning_rate: `trainer.rescale_gradients()` of a GradientDescentTrainer.
    trainer = dedent(
        """\
        from torch.nn.utils import clip_grad_norm_


        class GradientDescentTrainer:
            def __init__(self, model, optimizer, grad_norm=None):
                self.model, self.optimizer, self._grad_norm = model, optimizer, grad_norm

            def rescale_gradients(self):
                if self._grad_norm is not None:
                    return clip_grad_norm_(self.model.parameters(), self._grad_norm)
                return None
        """
    )
    code = dedent(
        """\
        from trainer import GradientDescentTrainer


        def search_learning_rate(trainer: GradientDescentTrainer, loader, criterion):
            for x, y in loader:
                trainer.optimizer.zero_grad()
                loss = criterion(trainer.model(x), y)
                loss.backward()
                trainer.rescale_gradients()
                trainer.optimizer.step()
        """
    )
    assert lint(code, "GL101", extra={"trainer.py": trainer}) == []


def test_mutually_recursive_helpers_are_read_without_looping_forever():
    utils = dedent(
        """\
        def visit(module, depth):
            if depth:
                walk(module, depth - 1)


        def walk(module, depth):
            visit(module, depth)
        """
    )
    code = loop("visit(model, 3)", "from utils import visit")
    assert lines(lint(code, "GL101", extra={"utils.py": utils}), "GL101") == [at(code, "optimizer.step()")]


def test_unreadable_function_named_like_a_gradient_clip_is_taken_at_its_word():
    code = loop("clip_gradients(model, 1.0)", "from some_missing_package import clip_gradients")
    assert lint(code, "GL101") == []


def test_clip_functions_declares_what_an_unreadable_function_does():
    code = loop("tame_gradients(model)", "from mylib.train import tame_gradients")
    assert lines(lint(code, "GL101"), "GL101") == [at(code, "optimizer.step()")]
    assert lint(code, "GL101", clip_functions=["mylib.train.tame_gradients"]) == []


# ----------------------------------------------------------------------------- detaching

BPTT = """\
import torch
import torch.nn as nn
{imports}


def train(data, bptt, vocab, criterion):
    model = nn.LSTM(32, 64)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    hidden = None
    for i in range(0, data.size(0) - 1, bptt):
        x, y = data[i : i + bptt], data[i + 1 : i + 1 + bptt]
        hidden = {detach}(hidden)
        optimizer.zero_grad()
        output, hidden = model(x, hidden)
        loss = criterion(output.view(-1, vocab), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
{helper}"""


def bptt(detach: str, imports: str = "", helper: str = "") -> str:
    return BPTT.format(detach=detach, imports=imports, helper=helper)


def test_repackage_hidden_that_returns_its_argument_unchanged_does_not_detach():
    helper = "\n\ndef repackage_hidden(h):\n    return h\n"
    code = bptt("repackage_hidden", helper=helper)
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "output, hidden = model(x, hidden)")]


def test_repackage_hidden_that_detaches_recursively_detaches():
    helper = dedent(
        """\


        def repackage_hidden(h):
            if isinstance(h, torch.Tensor):
                return h.detach()
            return tuple(repackage_hidden(v) for v in h)
        """
    )
    assert lint(bptt("repackage_hidden", helper=helper), "GL108") == []


def test_detaching_helper_in_another_file_is_read_there():
    detaching = "def cut(h):\n    return tuple(v.detach() for v in h) if h is not None else None\n"
    no_op = "def repackage_hidden(h):\n    return h\n"
    assert lint(bptt("cut", "from utils import cut"), "GL108", extra={"utils.py": detaching}) == []
    code = bptt("repackage_hidden", "from utils import repackage_hidden")
    assert lines(lint(code, "GL108", extra={"utils.py": no_op}), "GL108") == [at(code, "output, hidden = model(x, hidden)")]


def test_unreadable_detaching_helper_falls_back_on_its_name_or_the_configuration():
    assert lint(bptt("repackage_hidden", "from missing_pkg import repackage_hidden"), "GL108") == []
    code = bptt("cut_history", "from mylib.rnn import cut_history")
    assert lines(lint(code, "GL108"), "GL108") == [at(code, "output, hidden = model(x, hidden)")]
    assert lint(code, "GL108", detach_functions=["mylib.rnn.cut_history"]) == []
