"""Autofix: GL103 / GL101 / GL107 fixes, --diff, --fix, --unsafe-fixes, line endings, mode."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner

from gradlint.api import lint_sources
from gradlint.cli import main
from gradlint.fix import fixed_text

ROOT = Path(__file__).resolve().parents[1]

GL103_SRC = '''import torch

def train(model, loader, optimizer, scaler):
    for x in loader:
        optimizer.zero_grad()
        loss = model(x)  # forward
        scaler.scale(loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # keep me
        scaler.step(optimizer)
        scaler.update()
'''

GL101_SRC = '''"""Doc."""
from __future__ import annotations
import torch.nn as nn

model = nn.LSTM(10, 10)
opt = make(model.parameters(), lr=1.0)
for x in range(3):
    opt.zero_grad()
    loss = model(x)  # comment
    loss.backward()
    opt.step()
'''

GL107_SRC = '''import torch

def train(model, loader):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for x in loader:
        loss = model(x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
'''


def _fix(text: str, code: str, unsafe: bool = True) -> str:
    findings = [f for f in lint_sources({"t.py": text}, select=[code])]
    assert findings, f"{code} should fire"
    return fixed_text(text, findings, unsafe)[0]


def _quiet_after(text: str, code: str) -> None:
    cst.parse_module(text)
    assert not [f for f in lint_sources({"t.py": text}, select=[code])]


def test_gl103_fix():
    after = _fix(GL103_SRC, "GL103", unsafe=False)
    assert "        scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # keep me\n" in after
    assert after.replace("        scaler.unscale_(optimizer)\n", "", 1) == GL103_SRC
    _quiet_after(after, "GL103")


def test_gl101_fix_adds_clip_and_import():
    after = _fix(GL101_SRC, "GL101")
    assert after.startswith('"""Doc."""\nfrom __future__ import annotations\nimport torch\nimport torch.nn as nn\n')
    assert "    loss.backward()\n    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n    opt.step()\n" in after
    assert "# comment" in after
    _quiet_after(after, "GL101")


def test_gl101_fix_with_scaler():
    src = GL103_SRC.replace("        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # keep me\n", "").replace(
        "def train(model, loader, optimizer, scaler):\n",
        "def train(model, loader, scaler):\n    optimizer = torch.optim.SGD(model.parameters(), lr=10.0)\n",
    )
    after = _fix(src, "GL101")
    assert "scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n        scaler.step(optimizer)" in after
    assert after.count("import torch") == 1
    _quiet_after(after, "GL101")


def test_gl107_fix():
    after = _fix(GL107_SRC, "GL107")
    assert "    for x in loader:\n        optimizer.zero_grad()\n        loss = model(x)\n" in after
    _quiet_after(after, "GL107")


def test_one_line_suite_has_no_fix():
    src = GL103_SRC.replace(
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # keep me\n",
        "        if True: torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
    )
    findings = lint_sources({"t.py": src}, select=["GL103"])
    assert findings and findings[0].fix is None
    assert "no automatic fix" in findings[0].hint


def _write(tmp_path: Path, text: str, name: str = "train.py", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def test_diff_writes_nothing(tmp_path):
    path = _write(tmp_path, GL103_SRC)
    result = CliRunner().invoke(main, ["check", str(path), "--diff"])
    assert result.exit_code == 1
    assert "+        scaler.unscale_(optimizer)" in result.output
    assert path.read_text() == GL103_SRC


def test_unsafe_needs_flag_and_idempotent(tmp_path):
    path = _write(tmp_path, GL107_SRC)
    runner = CliRunner()
    runner.invoke(main, ["check", str(path), "--fix", "--select", "GL107"])
    assert path.read_text() == GL107_SRC
    runner.invoke(main, ["check", str(path), "--fix", "--unsafe-fixes", "--select", "GL107"])
    once = path.read_text()
    assert once != GL107_SRC and "optimizer.zero_grad()" in once
    result = runner.invoke(main, ["check", str(path), "--fix", "--unsafe-fixes", "--select", "GL107"])
    assert result.exit_code == 0
    assert path.read_text() == once
    result = runner.invoke(main, ["check", str(path), "--diff", "--unsafe-fixes", "--select", "GL107"])
    assert result.exit_code == 0


def test_crlf_and_mode_preserved(tmp_path):
    path = _write(tmp_path, GL103_SRC, newline="\r\n")
    os.chmod(path, 0o751)
    CliRunner().invoke(main, ["check", str(path), "--fix"])
    data = path.read_bytes()
    assert b"scaler.unscale_(optimizer)\r\n" in data
    assert data.count(b"\n") == data.count(b"\r\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o751
    assert [p.name for p in tmp_path.iterdir()] == ["train.py"]


def test_fix_all_fixtures_parse(tmp_path):
    """--fix --unsafe-fixes on a copy of every fixture: each changed file parses, notebooks are
    untouched, and a second run has nothing left to fix (--diff: one check instead of two)."""
    target = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", target)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    CliRunner().invoke(main, ["check", str(target), "--fix", "--unsafe-fixes"])
    changed = [p for p, data in before.items() if p.read_bytes() != data]
    assert changed
    assert not [p for p in changed if p.suffix == ".ipynb"]
    for path in changed:
        compile(path.read_text(), str(path), "exec")
        cst.parse_module(path.read_text())
    fixed = {p.parent.name for p in changed}
    assert {"clip_after_step", "exhausted_params", "tbptt_language_model", "amp_clip_before_unscale"} <= fixed
    again = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["check", str(target), "--diff", "--unsafe-fixes"])
    assert "No fixes available." in result.output, result.output
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == again


# ----------------------------------------------------------------------------- GL102 (move the clip)

CLIP_AFTER_STEP = '''import torch
import torch.nn.functional as F


def train(model, loader, optimizer, epochs):
    model.train()
    for epoch in range(epochs):
        for data in loader:
            optimizer.zero_grad()
            out = model(data.x, data.edge_index)
            loss = F.nll_loss(out[data.train_mask], data.y[data.train_mask])
            loss.backward()
            optimizer.step()
            # clip for stability
            total_norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), max_norm=2.0
            )  # logged below
            log(loss.item(), total_norm)
'''

CLIP_BEFORE_BACKWARD_AMP = '''import torch
from torch.nn.utils import clip_grad_norm_ as clip

scaler = torch.cuda.amp.GradScaler()

for step, (inputs, targets) in enumerate(loader):
    optimizer.zero_grad(set_to_none=True)
    clip(model.parameters(), 1.0)  # was here since the first version
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        loss = criterion(model(inputs), targets)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
'''


def _check_fixed(before: str, code: str, unsafe: bool) -> str:
    """Fix `before`, check the result parses, no longer triggers `code`, and is left alone by a
    second fix; return it."""
    after = _fix(before, code, unsafe=unsafe)
    assert after != before
    _quiet_after(after, code)
    findings = lint_sources({"t.py": after})
    assert fixed_text(after, findings, unsafe=True)[0] == after, "a second --fix must change nothing"
    return after


def test_gl102_fix_moves_clip_after_step_to_before_step_with_its_trailing_comment():
    after = _check_fixed(CLIP_AFTER_STEP, "GL102", unsafe=False)
    assert after == CLIP_AFTER_STEP.replace(
        "            optimizer.step()\n            # clip for stability\n"
        "            total_norm = torch.nn.utils.clip_grad_norm_(\n"
        "                model.parameters(), max_norm=2.0\n"
        "            )  # logged below\n",
        "            total_norm = torch.nn.utils.clip_grad_norm_(\n"
        "                model.parameters(), max_norm=2.0\n"
        "            )  # logged below\n"
        "            optimizer.step()\n            # clip for stability\n",
    )


def test_gl102_fix_moves_clip_before_backward_after_an_inserted_unscale():
    after = _check_fixed(CLIP_BEFORE_BACKWARD_AMP, "GL102", unsafe=False)
    assert "    optimizer.zero_grad(set_to_none=True)\n    with torch.autocast(" in after
    assert (
        "    scaler.scale(loss).backward()\n"
        "    scaler.unscale_(optimizer)\n"
        "    clip(model.parameters(), 1.0)  # was here since the first version\n"
        "    scaler.step(optimizer)\n"
    ) in after
    assert not lint_sources({"t.py": after}, select=["GL103"])


def test_gl102_fix_keeps_the_clip_after_an_existing_unscale():
    src = CLIP_BEFORE_BACKWARD_AMP.replace(
        "    scaler.scale(loss).backward()\n", "    scaler.scale(loss).backward()\n    scaler.unscale_(optimizer)\n"
    )
    after = _check_fixed(src, "GL102", unsafe=False)
    assert after.count("unscale_") == 1
    assert "    scaler.unscale_(optimizer)\n    clip(model.parameters(), 1.0)" in after


def test_gl102_fix_moves_into_an_accumulation_guard_and_reindents():
    src = '''import torch

for i, (x, y) in enumerate(loader):
    loss = criterion(model(x), y) / accum_steps
    loss.backward()
    if (i + 1) % accum_steps == 0:
        optimizer.step()
        optimizer.zero_grad()
    torch.nn.utils.clip_grad_norm_(model.parameters(),
                                   max_norm=1.0)
'''
    after = _check_fixed(src, "GL102", unsafe=False)
    assert after.endswith(
        "    if (i + 1) % accum_steps == 0:\n"
        "        torch.nn.utils.clip_grad_norm_(model.parameters(),\n"
        "                                       max_norm=1.0)\n"
        "        optimizer.step()\n"
        "        optimizer.zero_grad()\n"
    )


def _no_fix_hint(src: str, code: str) -> None:
    findings = lint_sources({"t.py": src}, select=[code])
    assert findings, f"{code} should fire"
    assert all(finding.fix is None for finding in findings)
    assert all("no automatic fix" in (finding.hint or "") for finding in findings)
    assert fixed_text(src, findings, unsafe=True)[0] == src


def test_gl102_no_fix_for_a_clip_sharing_its_line_or_under_its_own_condition():
    one_line = CLIP_AFTER_STEP.replace(
        "            total_norm = torch.nn.utils.clip_grad_norm_(\n                model.parameters(), max_norm=2.0\n"
        "            )  # logged below\n            log(loss.item(), total_norm)\n",
        "            if args.clip: torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)\n",
    )
    _no_fix_hint(one_line, "GL102")
    # Moving the clip out of its `if` would drop the condition: not a one-statement move.
    own_block = one_line.replace("if args.clip: torch", "if args.clip:\n                torch")
    _no_fix_hint(own_block, "GL102")


def test_gl102_no_fix_moving_an_assigned_clip_later():
    src = CLIP_BEFORE_BACKWARD_AMP.replace("    clip(model.parameters(), 1.0)", "    norm = clip(model.parameters(), 1.0)")
    _no_fix_hint(src, "GL102")


def test_gl102_fix_keeps_crlf_and_everything_else(tmp_path):
    path = _write(tmp_path, CLIP_AFTER_STEP, newline="\r\n")
    result = CliRunner().invoke(main, ["check", str(path), "--fix", "--select", "GL102"])
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n") == CLIP_AFTER_STEP.count("\n")
    expected = _fix(CLIP_AFTER_STEP, "GL102", unsafe=False)
    assert data.decode() == expected.replace("\n", "\r\n")


# ----------------------------------------------------------------------------- GL105 (materialise)

EXHAUSTED = '''import torch

params = model.parameters()  # shared by the optimizer and the clip
optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
for x, y in loader:
    optimizer.zero_grad()
    loss = criterion(model(x), y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
    optimizer.step()
'''


def test_gl105_fix_materialises_the_parameters_in_place():
    after = _check_fixed(EXHAUSTED, "GL105", unsafe=False)
    assert after == EXHAUSTED.replace("params = model.parameters()  #", "params = list(model.parameters())  #")


def test_gl105_fix_materialises_a_generator_expression_without_double_parentheses():
    src = EXHAUSTED.replace(
        "params = model.parameters()  #",
        "params = (p for p in model.parameters()\n          if p.requires_grad)  #",
    )
    after = _check_fixed(src, "GL105", unsafe=False)
    assert "params = list(p for p in model.parameters()\n          if p.requires_grad)  # shared" in after
    assert after.replace("list(p for", "(p for", 1) == src


# ----------------------------------------------------------------------------- GL108 (detach)

LSTM_PAIR = '''import torch
from torch import nn

lstm = nn.LSTM(input_size=32, hidden_size=128, batch_first=True)
head = nn.Linear(128, 1)
optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)

h = torch.zeros(1, batch_size, 128)
c = torch.zeros(1, batch_size, 128)
for chunk, target in stream_chunks(series, length=50):
    optimizer.zero_grad()
    out, (h, c) = lstm(chunk, (h, c))  # one chunk
    loss = nn.functional.mse_loss(head(out), target)
    loss.backward()
    nn.utils.clip_grad_norm_([*lstm.parameters(), *head.parameters()], 1.0)
    optimizer.step()
'''

WORD_LM = '''import torch.nn as nn


def train(model, train_data, optimizer, criterion, bptt=35):
    model.train()
    hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, bptt)):
        data, targets = get_batch(train_data, i, bptt)
        optimizer.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
'''


def test_gl108_fix_is_unsafe():
    findings = lint_sources({"t.py": LSTM_PAIR}, select=["GL108"])
    assert findings[0].fix.safety == "unsafe"
    assert fixed_text(LSTM_PAIR, findings, unsafe=False)[0] == LSTM_PAIR


def test_gl108_fix_detaches_each_element_of_a_visible_pair_in_call_order():
    after = _check_fixed(LSTM_PAIR, "GL108", unsafe=True)
    assert after == LSTM_PAIR.replace(
        "    out, (h, c) = lstm(", "    h = h.detach()\n    c = c.detach()\n    out, (h, c) = lstm("
    )


def test_gl108_fix_detaches_a_tuple_state_of_an_lstm():
    src = LSTM_PAIR.replace(
        "h = torch.zeros(1, batch_size, 128)\nc = torch.zeros(1, batch_size, 128)\n",
        "state = (torch.zeros(1, batch_size, 128), torch.zeros(1, batch_size, 128))\n",
    ).replace("out, (h, c) = lstm(chunk, (h, c))", "out, state = lstm(chunk, state)")
    after = _check_fixed(src, "GL108", unsafe=True)
    assert "    state = tuple(h.detach() for h in state)\n    out, state = lstm(chunk, state)" in after


def test_gl108_fix_handles_tensor_or_tuple_when_the_model_does_not_say():
    after = _check_fixed(WORD_LM, "GL108", unsafe=True)
    assert after.startswith("import torch\nimport torch.nn as nn\n")
    assert (
        "        hidden = hidden.detach() if isinstance(hidden, torch.Tensor) else tuple(h.detach() for h in hidden)\n"
        "        output, hidden = model(data, hidden)\n"
    ) in after


def test_gl108_fix_handles_a_none_start():
    src = WORD_LM.replace("hidden = model.init_hidden(args.batch_size)", "hidden = None")
    after = _check_fixed(src, "GL108", unsafe=True)
    line = (
        "        hidden = None if hidden is None else hidden.detach() if isinstance(hidden, torch.Tensor) "
        "else tuple(h.detach() for h in hidden)\n"
    )
    assert line + "        output, hidden = model(data, hidden)\n" in after
    assert after.startswith("import torch\n")


def test_gl108_fix_of_a_none_start_keeps_the_layers_shape():
    gru = LSTM_PAIR.replace("nn.LSTM(", "nn.GRU(").replace(
        "h = torch.zeros(1, batch_size, 128)\nc = torch.zeros(1, batch_size, 128)\n", "hidden = None\n"
    ).replace("out, (h, c) = lstm(chunk, (h, c))", "out, hidden = lstm(chunk, hidden)")
    after = _check_fixed(gru, "GL108", unsafe=True)
    assert "    hidden = None if hidden is None else hidden.detach()\n    out, hidden = lstm(" in after
    lstm = gru.replace("nn.GRU(", "nn.LSTM(")
    after = _check_fixed(lstm, "GL108", unsafe=True)
    assert "    hidden = None if hidden is None else tuple(h.detach() for h in hidden)\n" in after


def test_gl108_none_start_fix_runs_for_none_a_tensor_and_a_tuple():
    """The inserted line, executed: None stays None, a tensor and each tensor of a tuple detach."""
    torch = pytest.importorskip("torch")
    src = WORD_LM.replace("hidden = model.init_hidden(args.batch_size)", "hidden = None")
    after = _fix(src, "GL108")
    (line,) = [text.strip() for text in after.splitlines() if text.strip().startswith("hidden = None if")]
    x = torch.ones(2, requires_grad=True)
    for start in (None, x * 2, (x * 2, x * 3)):
        scope = {"torch": torch, "hidden": start}
        exec(line, scope)
        hidden = scope["hidden"]
        if start is None:
            assert hidden is None
        elif isinstance(start, tuple):
            assert isinstance(hidden, tuple) and not any(h.requires_grad for h in hidden)
        else:
            assert not hidden.requires_grad


# ----------------------------------------------------------------------------- GL101 option

def test_gl101_fix_uses_the_fix_max_norm_option():
    findings = lint_sources({"t.py": GL101_SRC}, select=["GL101"], rule_options={"GL101": {"fix-max-norm": 0.25}})
    after = fixed_text(GL101_SRC, findings, unsafe=True)[0]
    assert "    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.25)\n    opt.step()\n" in after
    assert "max_norm=0.25" in findings[0].hint


def test_gl101_no_fix_with_a_threshold_that_cannot_clip():
    findings = lint_sources({"t.py": GL101_SRC}, select=["GL101"], rule_options={"GL101": {"fix-max-norm": 0}})
    assert findings and findings[0].fix is None


# ----------------------------------------------------------------------------- documents

def test_docs_autofix_table_and_rule_documents_agree_with_the_fixes():
    """docs/autofix.md lists each fix with its safety; the rule documents this task touched show
    the same safety in their Autofix cell; the rule's bad examples get fixes of that safety."""
    import re

    from gradlint import docs

    table = dict(re.findall(r"^\| (GL\d{3}) \| (safe|unsafe) \|", (ROOT / "docs/autofix.md").read_text(), re.M))
    assert {"GL101", "GL102", "GL103", "GL105", "GL107", "GL108", "GL110"} <= set(table)
    for code in ("GL101", "GL102", "GL105", "GL108", "GL110"):
        rows = re.findall(r"^\|(.+)\|\s*$", docs.rule_markdown(code) or "", flags=re.MULTILINE)
        assert rows[2].split("|")[2].strip() == table[code], code
    for code, safety in table.items():
        safeties = set()
        for example in docs.examples(code):
            if example.kind == "bad":
                found = lint_sources(example.files, select=[code], rule_options={code: example.options})
                safeties |= {f.fix.safety for f in found if f.fix is not None}
        assert safeties == {safety}, code


def test_diff_shows_a_move_and_a_replacement_and_writes_nothing(tmp_path):
    moved, replaced = _write(tmp_path, CLIP_AFTER_STEP, "gnn.py"), _write(tmp_path, EXHAUSTED, "mlp.py")
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--diff", "--select", "GL102,GL105"])
    assert result.exit_code == 1
    assert "-params = model.parameters()  # shared" in result.output
    assert "+params = list(model.parameters())  # shared" in result.output
    assert f"+++ b/{moved}" in result.output
    changed = [line[1:] for line in result.output.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert "            optimizer.step()" in changed or "            )  # logged below" in changed
    assert moved.read_text() == CLIP_AFTER_STEP and replaced.read_text() == EXHAUSTED


def test_text_summary_says_how_many_findings_each_fix_mode_would_fix(tmp_path):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    shutil.copytree(fixtures / "amp_clip_before_unscale", tmp_path / "amp")  # GL103: safe
    shutil.copytree(fixtures / "char_rnn_no_clip", tmp_path / "rnn")  # GL101: unsafe
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--no-cache"])
    assert result.exit_code == 1
    assert "1 finding fixable with `gradlint check --fix` (1 more with `--unsafe-fixes`)." in result.stdout
    only_unsafe = CliRunner().invoke(main, ["check", str(tmp_path / "rnn"), "--no-cache", "--format", "concise"])
    assert "1 finding fixable with `gradlint check --fix --unsafe-fixes`." in only_unsafe.stdout
    quiet = CliRunner().invoke(main, ["check", str(tmp_path), "--no-cache", "-q"])
    assert "fixable" not in quiet.stdout


# ----------------------------------------------------------------------------- the documents' before/after pairs

def _fix_pairs():
    from gradlint import docs
    from gradlint.rules import ALL_RULES

    return [pair for rule in ALL_RULES for pair in docs.fix_examples(rule.code)]


@pytest.mark.parametrize("pair", _fix_pairs(), ids=lambda pair: pair.test_id)
def test_autofix_section_after_block_is_what_the_fix_makes_of_the_before_block(pair):
    """Each `python before` / `python after` pair of a rule document's Autofix section is a
    specification: the fix turns the one into the other, the finding is gone, a second fix
    changes nothing."""
    findings = lint_sources({"t.py": pair.before}, select=[pair.code], rule_options={pair.code: pair.options})
    assert findings, f"{pair.code} does not fire on the before block"
    assert all(finding.fix is not None for finding in findings), [finding.hint for finding in findings]
    after = fixed_text(pair.before, findings, unsafe=True)[0]
    assert after == pair.after
    cst.parse_module(after)
    compile(after, "t.py", "exec")
    again = lint_sources({"t.py": after}, select=[pair.code], rule_options={pair.code: pair.options})
    assert not again
    everything = lint_sources({"t.py": after})
    assert fixed_text(after, everything, unsafe=True)[0] == after, "a second --fix must change nothing"


def test_rules_whose_fixes_changed_show_each_form_as_a_before_after_pair():
    from gradlint import docs

    for code, minimum in (("GL101", 3), ("GL108", 3), ("GL110", 2)):
        assert len(docs.fix_examples(code)) >= minimum, code


# ----------------------------------------------------------------------------- GL101: what the optimizer holds

GL101_EXPRESSION = """import torch
from torch import nn

rnn = nn.RNN(8, 16)
readout = nn.Linear(16, 1)
optimizer = torch.optim.SGD(list(rnn.parameters()) + list(readout.parameters()), lr=0.1)
for x, y in loader:
    optimizer.zero_grad()
    out, _ = rnn(x)
    loss = ((readout(out) - y) ** 2).mean()
    loss.backward()
    optimizer.step()
"""


def test_gl101_fix_clips_a_side_effect_free_expression_evaluated_again():
    after = _check_fixed(GL101_EXPRESSION, "GL101", unsafe=True)
    assert (
        "    torch.nn.utils.clip_grad_norm_(list(rnn.parameters()) + list(readout.parameters()), max_norm=1.0)\n"
        "    optimizer.step()\n"
    ) in after


def test_gl101_fix_clips_a_list_of_parameters_by_its_name():
    src = GL101_EXPRESSION.replace(
        "optimizer = torch.optim.SGD(list(rnn.parameters()) + list(readout.parameters()), lr=0.1)",
        "params = [*rnn.parameters(), *readout.parameters()]\noptimizer = torch.optim.SGD(params, lr=0.1)",
    )
    after = _check_fixed(src, "GL101", unsafe=True)
    assert "    torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)\n    optimizer.step()\n" in after


def test_gl101_fix_reads_a_consumed_generator_again_instead_of_clipping_it():
    src = GL101_EXPRESSION.replace(
        "optimizer = torch.optim.SGD(list(rnn.parameters()) + list(readout.parameters()), lr=0.1)",
        "params = rnn.parameters()\noptimizer = torch.optim.SGD(params, lr=0.1)",
    )
    after = _check_fixed(src, "GL101", unsafe=True)
    assert "    torch.nn.utils.clip_grad_norm_(rnn.parameters(), max_norm=1.0)\n" in after
    assert not lint_sources({"t.py": after}, select=["GL105"])


def test_gl101_fix_clips_every_parameter_group_the_optimizer_holds():
    src = GL101_EXPRESSION.replace(
        "optimizer = torch.optim.SGD(list(rnn.parameters()) + list(readout.parameters()), lr=0.1)",
        'optimizer = torch.optim.SGD([{"params": rnn.parameters(), "lr": 0.1}, {"params": readout.parameters()}],'
        " lr=0.01)",
    )
    after = _check_fixed(src, "GL101", unsafe=True)
    assert (
        '    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], '
        "max_norm=1.0)\n    optimizer.step()\n"
    ) in after


def test_gl101_fix_clips_the_param_groups_of_an_optimizer_passed_in():
    src = """import torch.nn as nn

rnn = nn.LSTM(8, 16)


def train(model, optimizer, loader):
    for x in loader:
        optimizer.zero_grad()
        loss = model(x)[0].sum()
        loss.backward()
        optimizer.step()
"""
    after = _check_fixed(src, "GL101", unsafe=True)
    assert after.startswith("import torch\nimport torch.nn as nn\n")
    assert '        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]]' in after


def test_gl101_fix_of_a_self_optimizer_reads_self_attributes_in_another_method():
    src = """import torch
from torch import nn


class Trainer:
    def __init__(self, hidden):
        self.rnn = nn.LSTM(8, hidden)
        self.head = nn.Linear(hidden, 1)
        self.opt = torch.optim.Adam([*self.rnn.parameters(), *self.head.parameters()], lr=1e-3)

    def step(self, x):
        self.opt.zero_grad()
        loss = self.head(self.rnn(x)[0]).sum()
        loss.backward()
        self.opt.step()
"""
    after = _check_fixed(src, "GL101", unsafe=True)
    assert "        torch.nn.utils.clip_grad_norm_([*self.rnn.parameters(), *self.head.parameters()], max_norm=1.0)\n" in after


def test_gl101_no_fix_for_an_unknown_factory_of_something_that_cannot_be_read_again():
    src = GL101_EXPRESSION.replace(
        "optimizer = torch.optim.SGD(list(rnn.parameters()) + list(readout.parameters()), lr=0.1)",
        "optimizer = build_optimizer(config, rnn)",
    )
    _no_fix_hint(src, "GL101")


def test_gl101_no_fix_re_evaluating_an_expression_with_side_effects():
    src = GL101_EXPRESSION.replace(
        "optimizer = torch.optim.SGD(list(rnn.parameters()) + list(readout.parameters()), lr=0.1)",
        "optimizer = make(fresh_params(rnn), lr=0.1)",
    )
    _no_fix_hint(src, "GL101")


# ----------------------------------------------------------------------------- GL110: into the branch that steps

ACCUMULATING = """import torch
from torch import nn

for step, (inputs, labels) in enumerate(loader):
    loss = nn.functional.cross_entropy(model(inputs), labels) / accum_steps
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    if (step + 1) % accum_steps == 0:
        optimizer.step()
        optimizer.zero_grad()
"""


def test_gl110_fix_moves_the_clip_into_the_branch_that_steps():
    after = _check_fixed(ACCUMULATING, "GL110", unsafe=True)
    assert after.endswith(
        "    if (step + 1) % accum_steps == 0:\n"
        "        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
        "        optimizer.step()\n"
    + "        optimizer.zero_grad()\n"
    )
    assert not lint_sources({"t.py": after}, select=["GL102"])


def test_gl110_fix_is_unsafe():
    findings = lint_sources({"t.py": ACCUMULATING}, select=["GL110"])
    assert findings[0].fix.safety == "unsafe" and findings[0].fix_safety == "unsafe"
    assert fixed_text(ACCUMULATING, findings, unsafe=False)[0] == ACCUMULATING


def test_gl110_no_fix_for_a_clip_whose_norm_is_kept():
    src = ACCUMULATING.replace(
        "    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n",
        "    norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n    log(norm)\n",
    )
    _no_fix_hint(src, "GL110")


def test_gl110_no_fix_inside_accelerate_accumulate_where_no_branch_steps():
    from gradlint import docs

    (accelerate,) = [e for e in docs.examples("GL110") if e.kind == "bad" and "accumulate(" in e.files["example.py"]]
    _no_fix_hint(accelerate.files["example.py"], "GL110")


# ----------------------------------------------------------------------------- every bad example of a fixed rule

def _bad_examples_of(*codes):
    from gradlint import docs

    return [example for code in codes for example in docs.examples(code) if example.kind == "bad"]


@pytest.mark.parametrize(
    "example", _bad_examples_of("GL101", "GL108", "GL110"), ids=lambda example: example.test_id
)
def test_where_a_bad_example_gets_a_fix_the_fix_removes_its_finding_and_is_idempotent(example):
    code = example.code
    for name, source in example.files.items():
        findings = [f for f in lint_sources(example.files, select=[code], rule_options={code: example.options})
                    if f.display_path == name]
        fixable = [f for f in findings if f.fix is not None]
        if not fixable:
            continue
        after, fixed = fixed_text(source, fixable, unsafe=True)
        assert fixed, f"{example.test_id}: {name}: the fix was not applied"
        compile(after, name, "exec")
        files = dict(example.files, **{name: after})
        left = [f for f in lint_sources(files, select=[code], rule_options={code: example.options})
                if f.display_path == name]
        assert len(left) == len(findings) - len(fixed), [f.message for f in left]
        again = [f for f in left if f.fix is not None]
        assert fixed_text(after, again, unsafe=True)[0] == after


def test_gl101_hint_shows_the_parameters_the_fix_clips():
    (finding,) = lint_sources({"t.py": GL101_EXPRESSION}, select=["GL101"])
    assert "clip_grad_norm_(list(rnn.parameters()) + list(readout.parameters()), max_norm=1.0)" in finding.hint


GLOBAL_OPTIMIZER = """import torch
from torch import nn

rnn = nn.GRU(8, 16)
optimizer = torch.optim.Adam(rnn.parameters(), lr=1e-3)


def train(loader):
    for x in loader:
        optimizer.zero_grad()
        rnn(x)[0].sum().backward()
        optimizer.step()
"""


def test_gl101_fix_reads_a_module_level_optimizers_expression_in_a_function():
    after = _check_fixed(GLOBAL_OPTIMIZER, "GL101", unsafe=True)
    assert "        torch.nn.utils.clip_grad_norm_(rnn.parameters(), max_norm=1.0)\n        optimizer.step()\n" in after


def test_gl101_fix_does_not_read_a_global_expression_where_the_function_shadows_its_names():
    src = GLOBAL_OPTIMIZER.replace("def train(loader):", "def train(loader, rnn):")
    after = _check_fixed(src, "GL101", unsafe=True)
    assert '        torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]]' in after
