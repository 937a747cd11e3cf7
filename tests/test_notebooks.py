"""Jupyter notebooks: joined code cells, neutralised IPython syntax, findings located by cell."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.api import lint_paths
from gradlint.cli import main
from gradlint.config import Config
from gradlint.discovery import discover
from gradlint.notebook import MAGIC_REPLACEMENT, NotebookError, parse_notebook

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "notebook_char_rnn" / "char_rnn.ipynb"
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"

UNCLIPPED = (
    "import torch\n"
    "import torch.nn as nn\n"
    "model = nn.RNN(8, 8)\n"
    "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "for x in range(3):\n"
    "    out, _ = model(torch.randn(5, 1, 8))\n"
    "    loss = out.sum()\n"
    "    opt.zero_grad()\n"
    "    loss.backward()\n"
    "    opt.step()\n"
)


def notebook(*cells: tuple[str, str]) -> str:
    return json.dumps(
        {
            "cells": [
                {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
                 **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                for kind, source in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )  # fmt: skip


def run(*args: str, cwd: Path) -> tuple[int, str, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def codes_at(report) -> list[tuple[str, int | None, int | None]]:
    return [(f.code, f.cell, f.cell_line) for f in report.findings]


# --- the reader ------------------------------------------------------------------------------


def test_magics_shell_escapes_and_help_are_neutralised_line_for_line():
    source = parse_notebook(
        notebook(
            ("markdown", "# Title\n\nsome `code`\n"),
            ("code", "!pip install torch\n%matplotlib inline\nimport torch\n"),
            ("code", "files = !ls\ntorch.nn.RNN?\n??torch\nif True:\n    %time x = 1\nget_ipython().run_line_magic('pwd', '')\n"),
        )
    )
    assert source.text.splitlines() == [
        MAGIC_REPLACEMENT,
        MAGIC_REPLACEMENT,
        "import torch",
        MAGIC_REPLACEMENT,
        MAGIC_REPLACEMENT,
        MAGIC_REPLACEMENT,
        "if True:",
        "    " + MAGIC_REPLACEMENT,
        "get_ipython().run_line_magic('pwd', '')",
    ]
    assert source.locations[0] == (2, 1) and source.locations[3] == (3, 1) and source.locations[-1] == (3, 6)
    assert source.original_lines[0] == "!pip install torch"
    compile(source.text, "<nb>", "exec")


def test_markdown_and_raw_cells_contribute_nothing_but_count_in_cell_numbers():
    source = parse_notebook(notebook(("markdown", "x = (\n"), ("raw", "%%%\n"), ("code", "y = 1\n")))
    assert source.text == "y = 1\n"
    assert source.locations == [(3, 1)]


def test_a_cell_magic_turns_a_foreign_cell_into_comments():
    source = parse_notebook(notebook(("code", "%%bash\nls -la | grep x\n"), ("code", "z = 2\n")))
    lines = source.text.splitlines()
    assert all(line.startswith("#") for line in lines[:2]) and lines[2] == "z = 2"
    compile(source.text, "<nb>", "exec")


def test_a_time_cell_magic_keeps_its_python_body_checked(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(("markdown", "# timing\n"), ("code", "%%time\n" + UNCLIPPED)))
    report = lint_paths([path], Config(root=tmp_path), cwd=tmp_path)
    assert ("GL101", 2, 11) in codes_at(report)
    assert not report.skipped


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "invalid JSON"),
        ("[1, 2]", "top level is not a JSON object"),
        ('{"metadata": {}}', "no 'cells'"),
        ('{"cells": {}}', "'cells' is not a list"),
        ('{"cells": [3]}', "cell 1 is not a JSON object"),
        ('{"cells": [{"source": "x"}]}', "cell 1 has no 'cell_type'"),
        ('{"cells": [{"cell_type": "code", "source": 5}]}', "'source' must be a string or a list of strings"),
    ],
)
def test_malformed_notebooks_are_refused_with_a_reason(text, reason):
    with pytest.raises(NotebookError, match=reason.replace("(", r"\(")):
        parse_notebook(text)


# --- the fixture -----------------------------------------------------------------------------


def test_the_char_rnn_notebook_fixture_findings(tmp_path):
    report = lint_paths([FIXTURE], Config(root=FIXTURE.parent), cwd=FIXTURE.parent)
    assert report.files_checked == 1 and not report.skipped and not report.errors
    assert codes_at(report) == [("GL203", 5, 5), ("GL402", 7, 1), ("GL101", 7, 13)]
    gl101 = report.findings[-1]
    assert gl101.source_line.strip() == "optimizer.step()"
    assert gl101.related[0].cell == 7 and gl101.related[0].cell_line == 12


def test_text_and_concise_show_cell_and_line(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    code, out, _ = run("check", "--output-format", "concise", "nb.ipynb", cwd=tmp_path)
    assert code == 1
    assert "nb.ipynb:cell 7:line 13: GL101 [warning]" in out
    code, out, _ = run("check", "nb.ipynb", cwd=tmp_path)
    assert "nb.ipynb:cell 7:line 13: GL101" in out and " 13 |     optimizer.step()" in out
    assert "note: nb.ipynb:cell 7:line 12: gradients are computed here" in out


def test_json_has_cell_and_cell_line_and_null_for_python_files(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    (tmp_path / "train.py").write_text(UNCLIPPED)
    _, out, _ = run("check", "--output-format", "json", ".", cwd=tmp_path)
    findings = json.loads(out)["findings"]
    by_path = {(f["path"], f["code"]): f for f in findings}
    nb = by_path[("nb.ipynb", "GL101")]
    assert (nb["cell"], nb["cell_line"], nb["line"]) == (7, 13, 36)
    assert nb["related"][0]["cell"] == 7 and nb["related"][0]["cell_line"] == 12
    py = by_path[("train.py", "GL101")]
    assert py["cell"] is None and py["cell_line"] is None
    assert py["related"][0]["cell"] is None and py["related"][0]["cell_line"] is None


def test_messages_name_other_lines_of_a_notebook_by_their_cell(tmp_path):
    report = lint_paths([FIXTURE], Config(root=FIXTURE.parent), cwd=FIXTURE.parent)
    gl101 = next(f for f in report.findings if f.code == "GL101")
    assert "`loss.backward()` at line 12 of cell 7" in gl101.message
    assert "char_rnn.ipynb:cell 5:line 5" in gl101.message  # the nn.RNN, reached through the index
    gl402 = next(f for f in report.findings if f.code == "GL402")
    assert "at line 13 of cell 7" in gl402.message


def test_sarif_location_carries_the_cell_and_validates(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    _, out, _ = run("check", "--output-format", "sarif", "nb.ipynb", cwd=tmp_path)
    document = json.loads(out)
    jsonschema.validate(document, json.loads(SARIF_SCHEMA.read_text(encoding="utf-8")))
    result = next(r for r in document["runs"][0]["results"] if r["ruleId"] == "GL101")
    location = result["locations"][0]
    assert location["properties"] == {"cell": 7, "cellLine": 13}
    assert result["relatedLocations"][0]["properties"] == {"cell": 7, "cellLine": 12}
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "nb.ipynb"
    assert location["physicalLocation"]["region"]["startLine"] == 36


def test_github_annotation_names_the_cell(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    _, out, _ = run("check", "--output-format", "github", "nb.ipynb", cwd=tmp_path)
    line = next(l for l in out.splitlines() if "GL101" in l)
    assert "file=nb.ipynb,line=36," in line and "title=GL101 missing-gradient-clipping (cell 7%2C line 13)" in line


# --- parse errors, suppressions, broken notebooks, discovery ---------------------------------


def test_a_syntax_error_is_gl000_at_its_cell_and_line(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook(("code", "import torch\n"), ("markdown", "text\n"), ("code", "x = 1\ny = (\n")))
    report = lint_paths([path], Config(root=tmp_path), cwd=tmp_path)
    assert [(f.code, f.cell) for f in report.findings] == [("GL000", 3)]
    assert report.findings[0].cell_line in (2, 3)


def test_suppression_comments_work_inside_cells(tmp_path):
    path = tmp_path / "nb.ipynb"
    suppressed = UNCLIPPED.replace("    opt.step()\n", "    opt.step()  # gradlint: ignore[GL101]\n")
    path.write_text(notebook(("code", "%matplotlib inline\n"), ("code", suppressed)))
    report = lint_paths([path], Config(root=tmp_path), cwd=tmp_path)
    assert "GL101" not in [f.code for f in report.findings] and report.suppressed >= 1


def test_a_broken_notebook_is_skipped_with_a_warning_and_the_others_are_checked(tmp_path):
    (tmp_path / "broken.ipynb").write_text('{"cells": [')
    (tmp_path / "clean.py").write_text("x = 1\n")
    code, out, err = run("check", ".", cwd=tmp_path)
    assert code == 0  # the exit code comes from the files that were checked
    assert "skipped broken.ipynb: not a valid notebook: invalid JSON" in " ".join(err.split())
    assert "1 file" in out
    (tmp_path / "train.py").write_text(UNCLIPPED)
    code, out, err = run("check", ".", cwd=tmp_path)
    assert code == 1 and "train.py:10:5: GL101" in out and "not a valid notebook" in err


def test_directory_walk_finds_notebooks_and_skips_checkpoints(tmp_path):
    (tmp_path / "nb.ipynb").write_text(notebook(("code", "x = 1\n")))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.ipynb").write_text(notebook(("code", "x = 1\n")))
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "nb-checkpoint.ipynb").write_text(notebook(("code", "x = 1\n")))
    (tmp_path / "notes.txt").write_text("x")
    result = discover([tmp_path], Config(root=tmp_path))
    assert [p.relative_to(tmp_path).as_posix() for p in result.files] == ["nb.ipynb", "sub/deep.ipynb"]
