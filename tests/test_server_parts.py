"""The language server's pieces without a client: `gradlint.api.check_documents` (the check over
open buffers), the positions and edits the server sends, and `gradlint server` without the extra.
The server end to end (a real client over stdio): tests/test_server.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.api import check_documents
from gradlint.cli import main
from gradlint.config import Config, load_config
from gradlint.findings import Severity

MODEL = '''import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)
'''

SCRIPT = '''import torch
from model import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in data:
    optimizer.zero_grad()
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
'''

RECURRENT = MODEL.replace("nn.Linear(4, 4)", "nn.RNN(4, 4)")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "script.py").write_text(SCRIPT)
    return tmp_path


def severities(checked, path: Path) -> list[tuple[str, Severity]]:
    return [(finding.code, finding.severity) for finding in checked[path].result.findings]


# ----------------------------------------------------------------------------- check_documents


def test_buffers_replace_the_files_on_disk_in_the_project(project: Path) -> None:
    script, model = project / "script.py", project / "model.py"
    config = Config(root=project)
    on_disk = check_documents({script: SCRIPT}, config, root=project)
    assert severities(on_disk, script) == [("GL101", Severity.INFO)]
    assert on_disk[script].result.display_path == "script.py"

    edited = check_documents({script: SCRIPT, model: RECURRENT}, config, root=project, check=[script])
    assert list(edited) == [script]
    assert severities(edited, script) == [("GL402", Severity.INFO), ("GL101", Severity.WARNING)]
    assert "nn.RNN at model.py:7" in edited[script].result.findings[1].message


def test_known_facts_recheck_exactly_the_documents_that_depend_on_a_change(project: Path) -> None:
    script, model = project / "script.py", project / "model.py"
    (project / "other.py").write_text("x = 1\n")
    other = project / "other.py"
    config = Config(root=project)
    first = check_documents({script: SCRIPT, model: MODEL, other: "x = 1\n"}, config, root=project)
    assert ("text", str(model)) in first[script].facts
    known = {path: checked.facts for path, checked in first.items()}

    # Nothing changed: nothing is checked.
    texts = {script: SCRIPT, model: MODEL, other: "x = 1\n"}
    assert check_documents(texts, config, root=project, check=[], known=known) == {}
    # The model's buffer changed: the script, which rests on it, is checked again; other.py is not.
    texts[model] = RECURRENT
    again = check_documents(texts, config, root=project, check=[model], known=known)
    assert sorted(again) == [model, script]
    assert severities(again, script)[-1] == ("GL101", Severity.WARNING)


def test_configuration_applies_to_documents(project: Path) -> None:
    (project / "pyproject.toml").write_text(
        '[tool.gradlint]\nextend-exclude = ["old/"]\n\n[tool.gradlint.GL101]\nseverity = "error"\n'
    )
    (project / "old").mkdir()
    (project / "old" / "script.py").write_text(SCRIPT)
    script, old = project / "script.py", project / "old" / "script.py"
    config = load_config([project], cwd=project)
    checked = check_documents({script: SCRIPT, old: SCRIPT}, config, root=project)
    assert severities(checked, script) == [("GL101", Severity.ERROR)]
    assert checked[old].excluded and checked[old].result.findings == []


def test_a_notebook_buffer_is_read_like_a_notebook_file(tmp_path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
        {
            "cell_type": "code",
            "metadata": {},
            "source": "%matplotlib inline\nimport torch\nfor x in data:\n    opt.zero_grad()\n"
            "    model(x).backward()\n    opt.step()\n    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
        },
    ]
    notebook = tmp_path / "explore.ipynb"
    text = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    checked = check_documents({notebook: text}, Config(root=tmp_path), root=tmp_path)
    (finding,) = checked[notebook].result.findings
    assert (finding.code, finding.line, finding.cell, finding.cell_line) == ("GL102", 7, 2, 7)

    broken = check_documents({notebook: "{"}, Config(root=tmp_path), root=tmp_path)
    assert broken[notebook].result.skipped.reason.startswith("not a valid notebook: invalid JSON")


def test_reused_parses_give_the_same_results_and_are_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradlint import source
    from gradlint.source import ParsedFiles

    root = REPO / "fixtures" / "package_project"
    texts = {path: path.read_text(encoding="utf-8") for path in sorted(root.rglob("*.py"))}
    config = Config(root=root)

    def results(checked):
        return {
            path: ([(f.code, f.line, f.column, f.message, f.severity, f.related, f.data) for f in c.result.findings], c.facts)
            for path, c in checked.items()
        }

    fresh = results(check_documents(texts, config, root=root))
    assert any(findings for findings, _ in fresh.values())
    parsed_files = ParsedFiles(max_lines=100_000)
    assert results(check_documents(texts, config, root=root, parsed_files=parsed_files)) == fresh
    parses = []
    monkeypatch.setattr(source, "_parse", lambda text, build: parses.append(text))
    assert results(check_documents(texts, config, root=root, parsed_files=parsed_files)) == fresh
    assert parses == []


def test_parsed_files_keep_at_most_their_lines() -> None:
    from gradlint.analysis.model import build_model
    from gradlint.source import ParsedFiles

    parsed_files = ParsedFiles(max_lines=4)
    first = parsed_files.parse("a = 1\nb = 2\n", build_model)  # 3 lines (the count includes the end)
    assert parsed_files.parse("a = 1\nb = 2\n", build_model) is first
    parsed_files.parse("c = 3\n", build_model)  # 2 more: the first is dropped
    assert parsed_files.parse("a = 1\nb = 2\n", build_model) is not first


def test_documents_outside_every_folder_are_a_project_of_their_own(project: Path) -> None:
    script = project / "script.py"
    checked = check_documents({script: SCRIPT}, Config(root=project), root=None)
    # The model is still read from disk, as imports always are.
    assert severities(checked, script) == [("GL101", Severity.INFO)]


# ----------------------------------------------------------------------------- positions and edits


@pytest.fixture
def types():
    """lsprotocol's types (the `lsp` extra); the tests that need them are skipped without it."""
    return pytest.importorskip("lsprotocol.types")



def test_positions_are_counted_in_the_clients_encoding(types) -> None:
    from gradlint.server.convert import Layout, finding_location
    from gradlint.findings import Finding

    text = 'x = "é😀"; loss.backward()\n'
    finding = Finding("GL109", "sum-reduction-loss", Severity.INFO, "m", Path("t.py"), "t.py", 1, 11, 1, 26)
    layout = Layout.text_document("file:///t.py", text)
    _, utf16 = finding_location(finding, layout, types.PositionEncodingKind.Utf16)
    _, utf8 = finding_location(finding, layout, types.PositionEncodingKind.Utf8)
    _, utf32 = finding_location(finding, layout, types.PositionEncodingKind.Utf32)
    assert (utf16.start.character, utf16.end.character) == (11, 26)
    assert (utf8.start.character, utf8.end.character) == (14, 29)
    assert (utf32.start.character, utf32.end.character) == (10, 25)


def test_suppress_edit_goes_where_a_comment_can(types) -> None:
    from gradlint.server.actions import suppress_edit

    utf16 = types.PositionEncodingKind.Utf16
    edit = suppress_edit("loss.backward()   \n", 0, "GL109", utf16)
    assert (edit.range.start.character, edit.range.end.character, edit.new_text) == (15, 18, "  # gradlint: ignore[GL109]")
    # A comment that is not gradlint's stays; the directive follows it.
    edit = suppress_edit("loss.backward()  # noqa: E501\n", 0, "GL109", utf16)
    assert (edit.range.start.character, edit.new_text) == (29, "  # gradlint: ignore[GL109]")
    # An existing gradlint ignore is extended, even an empty list.
    edit = suppress_edit("loss.backward()  # gradlint: ignore[] why\n", 0, "GL109", utf16)
    assert (edit.range.start.character, edit.new_text) == (36, "GL109")
    # Inside a string that goes on, or before a backslash continuation, a comment cannot go.
    assert suppress_edit('x = """\nloss.backward()\n"""\n', 1, "GL109", utf16) is None
    assert suppress_edit("x = a + \\\n    b\n", 0, "GL109", utf16) is None


def test_text_edits_change_only_the_changed_lines(types) -> None:
    from gradlint.server.actions import text_edits

    utf16 = types.PositionEncodingKind.Utf16
    (edit,) = text_edits("a\nb\nc\n", "a\nx\ny\nc\n", utf16)
    assert (edit.range.start.line, edit.range.end.line, edit.new_text) == (1, 2, "x\ny\n")
    # A last line without an ending: the edit ends at its end, not past the document.
    (edit,) = text_edits("a\nb", "a\nb\nc\n", utf16)
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.line, edit.range.end.character) == (
        1,
        0,
        1,
        1,
    )
    assert edit.new_text == "b\nc\n"


# ----------------------------------------------------------------------------- the command


def test_without_the_extra_the_command_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradlint.server import command

    monkeypatch.setattr(command, "lsp_available", lambda: False)
    result = CliRunner().invoke(main, ["server"])
    assert result.exit_code == 2
    assert "gradlint server needs pygls and lsprotocol: pip install 'torch-gradlint[lsp]'" in result.output


# ----------------------------------------------------------------------------- docs/editors.md


def _blocks(language: str) -> list[str]:
    import re

    text = (REPO / "docs" / "editors.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_editor_docs_install_the_extra_under_the_distributions_name() -> None:
    import tomllib

    from gradlint.server import INSTALL_HINT

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name, extras = project["name"], project["optional-dependencies"]
    assert {dependency.split(">")[0] for dependency in extras["lsp"]} == {"pygls", "lsprotocol"}
    assert any(dependency.startswith("pytest-lsp") for dependency in extras["test"])  # CI runs the server tests
    installs = _blocks("bash")
    assert "pip install -e '.[lsp]'" in installs[0]
    assert f'"{name}[lsp] @ git+https://github.com/OWNER/gradlint@v0.1.0"' in installs[1]
    assert INSTALL_HINT == f"pip install '{name}[lsp]' (from a checkout: pip install -e '.[lsp]')"
    assert "[docs/editors.md](docs/editors.md)" in (REPO / "README.md").read_text(encoding="utf-8")


def test_every_editor_snippet_starts_gradlint_server() -> None:
    import tomllib

    (vscode,) = _blocks("json")
    settings = json.loads(vscode)
    assert (settings["glspc.server.command"], settings["glspc.server.commandArguments"]) == ("gradlint", ["server"])
    assert settings["glspc.server.languageId"] == ["python"]
    assert settings["[python]"]["editor.codeActionsOnSave"] == {"source.fixAll.gradlint": "explicit"}

    native, lspconfig, fix_all = _blocks("lua")
    assert 'vim.lsp.config("gradlint", {\n  cmd = { "gradlint", "server" },' in native
    assert 'vim.lsp.enable("gradlint")' in native
    assert 'cmd = { "gradlint", "server" },' in lspconfig and "lspconfig.gradlint.setup({})" in lspconfig
    assert '"source.fixAll.gradlint"' in fix_all

    (helix,) = _blocks("toml")
    languages = tomllib.loads(helix)
    assert languages["language-server"]["gradlint"] == {"command": "gradlint", "args": ["server"]}
    (python,) = languages["language"]
    assert python["name"] == "python" and "gradlint" in python["language-servers"]

    for elisp in _blocks("elisp"):
        assert '("gradlint" "server")' in elisp and "(python-mode python-ts-mode)" in elisp
        assert elisp.count("(") == elisp.count(")")
