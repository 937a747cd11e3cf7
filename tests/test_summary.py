"""A file's summary (CPython's tree, what other files ask about) agrees with the libcst model of
the same file on every fact both hold: names, scopes, bindings, call sites and argparse options.
Cross-file answers come from summaries and in-file answers from the model, so a disagreement would make a finding depend on which file asks."""

from __future__ import annotations

import ast
from pathlib import Path

import libcst as cst
import pytest

from gradlint.analysis.builder import build_model
from gradlint.analysis.model import FileModel, Function, last_assignment
from gradlint.index.summary import FileSummary, summarize
from gradlint.source import Parsed, cpython_parse, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FILES = sorted(FIXTURES.rglob("*.py"))

TRICKY = '''
import torch
import torch.nn as nn
from torch.nn.utils import clip_grad_norm_ as clip
from .model import *
from . import helpers
N = 4
w, d = 256, 32
a = b = (7)
CFG = {"lr": 0.1, f(): g()}
x = f() if g() else h()

def outer(p, /, q=N, *args, r=fn(), **kwargs):
    y = 1
    y += 2
    z: int
    u, v = 1, 2
    class Inner:
        k = 3
        def method(self, t=k()):
            self.layer = nn.RNN(t, t)
    def inner():
        return q
    return inner

class Model(nn.Module):
    SIZE: int = 16
    def __init__(self, n=SIZE):
        super().__init__()
        self.rnn = nn.LSTM(n, n, num_layers=2)
        self.opt, self.sched = make(), other()
        self.count += 1
    def __init__(self, n):  # redefined
        self.rnn = nn.GRU(n, n)

def outer(p):
    parser.add_argument("--lr", "-l", type=float, default=1e-3)
    parser.add_argument("--flag", action="store_true")
    parser.add_argument("epochs", default=N * 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    return [f(q) for q in range(p) if g(q)], {k(): v() for k in p}
'''


def _pair(text: str) -> tuple[FileModel, FileSummary, Parsed]:
    parsed = parse(text, build_model)
    assert isinstance(parsed, Parsed)
    return parsed.model, summarize(cpython_parse(text), text), parsed


def _dump(code: str) -> str:
    return ast.dump(ast.parse(f"({code}\n)", mode="eval").body)


def _same_expression(model: FileModel, node: cst.CSTNode | None, summary: FileSummary, span) -> bool:
    """The libcst model's node and the summary's expression at `span` are the same expression."""
    if node is None or span is None:
        return node is None and span is None
    found = summary.expression(span)
    return found is not None and _dump(cst.Module([]).code_for_node(found)) == _dump(model.module.code_for_node(node))


def _qualname(function: Function | None) -> str | None:
    return function.qualname if function is not None else None


def check_agreement(text: str) -> None:
    model, summary, parsed = _pair(text)
    assert summary.imports == model.imports.aliases
    assert summary.constants.keys() == model.constants.keys()
    for name, node in model.constants.items():
        assert _same_expression(model, node, summary, summary.constants[name]), name

    assert [f.qualname for f in summary.all_functions] == [f.qualname for f in model.all_functions]
    for mine, theirs in zip(summary.all_functions, model.all_functions):
        assert mine.param_names == theirs.params
        assert mine.key == theirs.key
        assert mine.class_name == theirs.class_name
        assert _qualname(mine.parent) == _qualname(theirs.parent)  # type: ignore[arg-type]
        assert mine.local_functions.keys() == theirs.local_functions.keys()
        names = {name for event in theirs.body.events() if event.kind.value == "assign" for name in event.targets}
        for name in names:
            assert _same_expression(model, last_assignment(theirs, name), summary, mine.bindings.get(name)), (
                mine.qualname,
                name,
            )
    assert summary.functions.keys() == model.functions.keys()

    assert summary.classes.keys() == model.classes.keys()
    for name, info in model.classes.items():
        mine = summary.classes[name]
        assert mine.bases == info.bases and mine.decorators == info.decorators
        assert mine.methods.keys() == info.methods.keys()
        assert mine.attribute_values.keys() == info.attribute_values.keys()
        for attribute, node in info.attribute_values.items():
            assert _same_expression(model, node, summary, mine.attribute_values[attribute]), attribute
            assert mine.attribute_functions[attribute].qualname == info.attribute_functions[attribute].qualname
        assert mine.class_values.keys() == info.class_values.keys()
        for attribute, node in info.class_values.items():
            assert _same_expression(model, node, summary, mine.class_values[attribute]), attribute

    assert [(c.callee, c.qualified, _qualname(c.function)) for c in summary.calls] == [  # type: ignore[arg-type]
        (c.callee, c.qualified, _qualname(c.function)) for c in model.calls
    ]
    for mine, theirs in zip(summary.calls, model.calls):
        assert _same_expression(model, theirs.node, summary, mine.span)

    assert summary.argparse.keys() == model.argparse.keys()
    for dest, argument in model.argparse.items():
        mine = summary.argparse[dest]
        assert (mine.option, mine.implicit_default) == (argument.option, argument.implicit_default)
        assert _same_expression(model, argument.default, summary, mine.default)
        assert mine.call[0] == parsed.positions.start(argument.node)[0]


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_summary_agrees_with_the_libcst_model_on_every_fixture(path: Path) -> None:
    check_agreement(path.read_text(encoding="utf-8"))


def test_summary_agrees_on_tricky_scopes_bindings_and_call_order() -> None:
    check_agreement(TRICKY)


def test_summary_and_model_list_each_branch_of_a_conditional_callee() -> None:
    text = "from train_loop import A, B\n\ndef build(cfg, m):\n    return (A if cfg.amp else B)(m, lr=(f if x else g)(1))\n"
    check_agreement(text)
    summary = summarize(cpython_parse(text), text)
    assert [c.callee for c in summary.calls] == ["f", "g", "A", "B"]  # the argument's call first, as the model
    assert [c.qualified for c in summary.calls][2:] == ["train_loop.A", "train_loop.B"]


def test_summary_keeps_star_imports_and_relative_prefixes() -> None:
    summary = summarize(cpython_parse(TRICKY), TRICKY)
    assert summary.star_imports == [".model"]
    assert summary.imports["helpers"] == ".helpers"
    assert summary.imports["clip"] == "torch.nn.utils.clip_grad_norm_"


def test_summary_expressions_are_parsed_back_with_their_place_in_the_file() -> None:
    summary = summarize(cpython_parse(TRICKY), TRICKY)
    call = next(c for c in summary.calls if c.callee == "torch.optim.Adam")
    node = summary.expression(call.span)
    assert isinstance(node, cst.Call)
    line = TRICKY.splitlines().index("    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)") + 1
    assert summary.line_of(node) == call.line == line
    lr = node.args[1].value
    assert summary.position_of(lr) == ((line, 57), (line, 60))
    assert summary.source_segment(call.span) == "torch.optim.Adam(model.parameters(), lr=0.5)"
    assert cst.Module([]).code_for_node(node) == "torch.optim.Adam(model.parameters(), lr=0.5)"


def test_a_multi_line_expression_places_its_inner_nodes_on_their_own_lines() -> None:
    text = "CONFIG = dict(\n    lr=0.1,\n    hidden=256,\n)\n"
    summary = summarize(cpython_parse(text), text)
    node = summary.expression(summary.constants["CONFIG"])
    assert isinstance(node, cst.Call)
    hidden = node.args[1].value
    assert summary.line_of(node) == 1 and summary.line_of(hidden) == 3
    assert summary.position_of(hidden) == ((3, 12), (3, 15))


def test_a_second_definition_gets_its_own_key() -> None:
    summary = summarize(cpython_parse(TRICKY), TRICKY)
    keys = [f.key for f in summary.all_functions if f.qualname == "Model.__init__"]
    assert keys == ["Model.__init__", "Model.__init__#2"]
    assert summary.functions["outer"].key == "outer#2"


CLIPPING = '''
import torch
from torch.nn.utils import clip_grad_norm_ as clip


def clamp_all(model, value):
    for p in model.parameters():
        p.grad.data.clamp_(-value, value)


def by_norm(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = torch.norm(torch.stack([g.norm() for g in grads]))
    clip_coef = max_norm / (total_norm + 1e-6)
    torch._foreach_mul_(grads, clip_coef)


def unscale(params, loss_scale):
    for p in params:
        p.grad.mul_(1.0 / loss_scale)


def fused(params, buf, coef_norm):
    l = [p.grad for p in params]
    multi_tensor_applier(amp_C.multi_tensor_scale, buf, [l, l], coef_norm)


def aliased(model):
    clip(model.parameters(), 1.0)
    lambda: clip(model.parameters(), 2.0)


class Trainer:
    def step(self):
        self.accelerator.clip_grad_norm_(self.model.parameters(), 1.0)

    def reset(self):
        for p in self.params:
            p.grad = None
'''


def _clipping_functions(model: FileModel) -> set[str]:
    return {
        function.qualname
        for function in model.all_functions
        if any(event.kind.value == "clip" and event.form != "assumed" for event in function.body.events())
    }


@pytest.mark.parametrize("text", [CLIPPING, TRICKY, *(path.read_text(encoding="utf-8") for path in FILES)])
def test_summary_and_model_agree_on_which_functions_clip(text: str) -> None:
    # The index reads other files' clipping from the summary, the checked file's from the model.
    model, summary, _ = _pair(text)
    assert {f.qualname for f in summary.all_functions if f.facts.clips} == _clipping_functions(model)


def test_in_place_scaling_of_gradients_clips_only_by_a_norm_derived_factor() -> None:
    summary = summarize(cpython_parse(CLIPPING), CLIPPING)
    clipping = {f.qualname for f in summary.all_functions if f.facts.clips}
    assert clipping == {"clamp_all", "by_norm", "fused", "aliased", "Trainer.step"}
    assert not summary.functions["unscale"].facts.clips
