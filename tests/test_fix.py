"""Autofix: GL103 / GL101 / GL107 fixes, --diff, --fix, --unsafe-fixes, line endings, mode."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import libcst as cst
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
    target = tmp_path / "fixtures"
    shutil.copytree(ROOT / "fixtures", target)
    before = {p: p.read_bytes() for p in target.rglob("*")  if p.is_file()}
    CliRunner().invoke(main, ["check", str(target), "--fix", "--unsafe-fixes"])
    changed = [p for p, data in before.items() if p.read_bytes() != data]
    assert changed
    assert not [p for p in changed if p.suffix == ".ipynb"]
    for path in changed:
        compile(path.read_text(), str(path), "exec")
    again = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    CliRunner().invoke(main, ["check", str(target), "--fix", "--unsafe-fixes"])
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == again
