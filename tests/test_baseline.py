"""`gradlint baseline create FILE` and `gradlint check --baseline FILE` (docs/baseline.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.baseline import BaselineError, from_dict
from gradlint.cli import main

REPO = Path(__file__).resolve().parent.parent
JSON_DOC = REPO / "docs" / "json-schema.md"

LOOP = """\
def {name}(data):
    for x, y in data:
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
"""

HEADER = """\
import torch

model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def check_json(*args: str) -> tuple[int, dict, str]:
    code, out, err = run("check", "--format", "json", "--select", "GL101", *args)
    return code, json.loads(out), err


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(HEADER + LOOP.format(name="train"), encoding="utf-8")
    return tmp_path


def test_create_writes_a_sorted_versioned_file(project):
    code, _, err = run("baseline", "create", "baseline.json", "--select", "GL101")
    assert code == 0, err
    assert "Wrote 1 baseline entry" in err
    data = json.loads((project / "baseline.json").read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["tool"] == "gradlint"
    [entry] = data["entries"]
    assert entry["code"] == "GL101" and entry["path"] == "train.py"
    assert re.fullmatch(r"[0-9a-f]{16}", entry["fingerprint"]) and entry["message"]
    assert "count" not in entry
    assert not list(project.glob(".baseline.json.*"))  # no temporary file left behind


def test_round_trip_move_add_remove(project):
    assert run("baseline", "create", "baseline.json", "--select", "GL101")[0] == 0
    code, data, err = check_json("--baseline", "baseline.json")
    assert data["findings"] == [] and data["summary"]["baselined"] == 1 and data["summary"]["stale_baseline"] == 0

    # Move the code down: still matched.
    train = project / "train.py"
    train.write_text("# a comment\n\n\n" + train.read_text(encoding="utf-8"), encoding="utf-8")
    code, data, err = check_json("--baseline", "baseline.json")
    assert data["findings"] == [] and data["summary"]["baselined"] == 1
    assert "stale" not in err

    # A new finding (a second loop): only it is reported.
    text = train.read_text(encoding="utf-8")
    train.write_text(text + "\n\n" + LOOP.format(name="train2").replace("opt.step()", "opt.step()  # new"), encoding="utf-8")
    code, data, err = check_json("--baseline", "baseline.json")
    assert [f["line"] for f in data["findings"]] == [len(text.splitlines()) + 2 + 6]
    assert data["summary"]["baselined"] == 1

    # The text summary says so.
    code, out, err = run("check", "--select", "GL101", "--baseline", "baseline.json")
    assert "1 finding baselined, 0 stale baseline entries." in out

    # Remove the baselined code: its entry is stale.
    train.write_text(HEADER + LOOP.format(name="train2").replace("opt.step()", "opt.step()  # new"), encoding="utf-8")
    code, data, err = check_json("--baseline", "baseline.json")
    assert len(data["findings"]) == 1
    assert data["summary"]["baselined"] == 0 and data["summary"]["stale_baseline"] == 1
    assert "1 stale baseline entry" in err
    code, out, err = run("check", "--select", "GL101", "--baseline", "baseline.json")
    assert "0 findings baselined, 1 stale baseline entry." in out


def test_duplicate_fingerprints_are_counted(project):
    (project / "train.py").write_text(HEADER + LOOP.format(name="a") + "\n\n" + LOOP.format(name="b"), encoding="utf-8")
    assert run("baseline", "create", "baseline.json", "--select", "GL101")[0] == 0
    [entry] = json.loads((project / "baseline.json").read_text(encoding="utf-8"))["entries"]
    assert entry["count"] == 2
    code, data, _ = check_json("--baseline", "baseline.json")
    assert data["findings"] == [] and data["summary"]["baselined"] == 2
    # A third identical loop exceeds the count: one finding is reported.
    with (project / "train.py").open("a", encoding="utf-8") as stream:
        stream.write("\n\n" + LOOP.format(name="c"))
    code, data, _ = check_json("--baseline", "baseline.json")
    assert len(data["findings"]) == 1 and data["summary"]["baselined"] == 2


def test_entries_of_files_outside_the_run_are_not_stale(project):
    (project / "other.py").write_text(HEADER + LOOP.format(name="other"), encoding="utf-8")
    assert run("baseline", "create", "baseline.json", "--select", "GL101")[0] == 0
    code, data, err = check_json("--baseline", "baseline.json", "train.py")
    assert data["summary"]["baselined"] == 1 and data["summary"]["stale_baseline"] == 0


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"version": 2, "entries": []}',
        '{"version": 1}',
        '{"version": 1, "entries": [{"code": "GL101"}]}',
        '{"version": 1, "entries": [{"code": "GL101", "path": "a.py", "fingerprint": "x", "count": 0}]}',
    ],
)
def test_a_malformed_baseline_is_an_error(project, content):
    (project / "baseline.json").write_text(content, encoding="utf-8")
    code, out, err = run("check", "--baseline", "baseline.json")
    assert code == 2 and "baseline" in err and out == ""


def test_a_missing_baseline_is_an_error(project):
    code, out, err = run("check", "--baseline", "nope.json")
    assert code == 2 and "does not exist" in err and "baseline create" in err


def test_from_dict_rejects_another_tool():
    with pytest.raises(BaselineError):
        from_dict({"version": 1, "tool": "ruff", "entries": []})


def test_without_a_baseline_the_json_summary_is_unchanged(project):
    _, data, _ = check_json()
    assert "baselined" not in data["summary"] and "stale_baseline" not in data["summary"]


def _baseline_doc_fields() -> dict[str, set[str]]:
    text = JSON_DOC.read_text(encoding="utf-8")
    section = text.split("\n## Baseline fields", 1)[1].split("\n## ", 1)[0]
    fields = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]
        if len(cells) >= 4 and re.fullmatch(r"`[^`]+`", cells[1]):
            fields[cells[1].strip("`")] = {t.strip() for t in cells[2].split("\\|")}
    return fields


def test_json_doc_documents_the_baseline_summary_fields(project):
    assert run("baseline", "create", "baseline.json", "--select", "GL101")[0] == 0
    _, data, _ = check_json("--baseline", "baseline.json")
    rendered = {f"summary.{key}" for key in data["summary"]} - {
        "summary.files_checked", "summary.findings", "summary.by_severity", "summary.suppressed"
    }
    documented = _baseline_doc_fields()
    assert set(documented) == rendered == {"summary.baselined", "summary.stale_baseline"}
    assert all(documented[path] == {"integer"} for path in documented)
