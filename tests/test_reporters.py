"""The reporters, read as a specification of every output format.

Reports are built by hand from `Finding` objects with real rule codes: no engine, no files
read. Each format's exact shape is pinned here; SARIF is validated against the official
schema (vendored in tests/data/, a copy of shared/schemas/).
"""

from __future__ import annotations

import io
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import gradlint
from gradlint.findings import Finding, InternalError, Related, Report, Severity, SkippedFile
from gradlint.report import FORMATS, write_report
from gradlint.rules import ALL_RULES, RULES_BY_CODE

REPO = Path(__file__).resolve().parents[1]
# The official OASIS schema, vendored so SARIF is always validated (a copy of shared/schemas/).
SARIF_SCHEMA = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
JSON_DOC = REPO / "docs" / "json-schema.md"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- building reports by hand -----------------------------------------------------------------


def make_finding(root: Path, code: str = "GL103", rel: str = "train.py", **fields: Any) -> Finding:
    """A finding of rule `code` in `root / rel`, shown to the user as `rel`."""
    rule = RULES_BY_CODE[code]
    values: dict[str, Any] = {
        "code": code,
        "name": rule.name,
        "severity": rule.severity,
        "message": f"{rule.name} here",
        "path": root / rel,
        "display_path": rel,
        "line": 1,
        "column": 1,
        "end_line": 1,
        "end_column": 2,
    }
    values.update(fields)
    return Finding(**values)


def clip_before_unscale(root: Path) -> Finding:
    return make_finding(
        root,
        "GL103",
        "train.py",
        message="clip_grad_norm_() runs before scaler.unscale_(optimizer).",
        hint="Call scaler.unscale_(optimizer) before clipping.",
        line=42,
        column=9,
        end_line=42,
        end_column=63,
        source_line="        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
        related=(Related(40, 9, "scaler.scale(loss).backward() is here"), Related(44, 9, "scaler.step() is here")),
    )


def missing_clipping(root: Path, rel: str = "models/rnn.py", line: int = 7) -> Finding:
    return make_finding(
        root,
        "GL101",
        rel,
        message="optimizer.step() runs with no gradient clipping after backward().",
        line=line,
        column=5,
        end_line=line,
        end_column=21,
        source_line="    optimizer.step()",
    )


def sum_reduction(root: Path) -> Finding:
    return make_finding(
        root,
        "GL109",
        "models/rnn.py",
        message="CrossEntropyLoss(reduction='sum') is backpropagated without normalization.",
        line=3,
        column=12,
        end_line=3,
        end_column=51,
        source_line="criterion = nn.CrossEntropyLoss(reduction='sum')",
    )


def full_report(root: Path) -> Report:
    """Three findings of three severities, related sites, a skipped file and an internal error."""
    return Report(
        findings=[missing_clipping(root), clip_before_unscale(root), sum_reduction(root)],
        files_checked=12,
        skipped=[SkippedFile(str(root / "data" / "blob.py"), "not UTF-8")],
        errors=[InternalError(str(root / "broken.py"), "RecursionError: maximum recursion depth exceeded", "GL108")],
        suppressed=2,
        root=root,
    )


def render(report: Report, fmt: str, **options: Any) -> str:
    stream = io.StringIO()
    write_report(report, fmt, stream, **options)
    return stream.getvalue()


# -- the format table -------------------------------------------------------------------------


def test_formats_are_listed_default_first():
    assert FORMATS == ("text", "concise", "json", "sarif", "github")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_empty_and_full_reports(fmt, tmp_path):
    for report in (Report(root=tmp_path), full_report(tmp_path)):
        assert isinstance(render(report, fmt), str)


def test_unknown_format_is_rejected_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"unknown output format 'xml'.*text, concise, json, sarif, github"):
        render(Report(root=tmp_path), "xml")


# -- text -------------------------------------------------------------------------------------


def test_text_shows_headline_code_frame_help_and_notes(tmp_path):
    report = Report(findings=[clip_before_unscale(tmp_path)], files_checked=1, root=tmp_path)
    assert render(report, "text") == (
        "train.py:42:9: GL103 [error] clip_grad_norm_() runs before scaler.unscale_(optimizer).\n"
        " 42 |         torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "    |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "  help: Call scaler.unscale_(optimizer) before clipping.\n"
        "  note: train.py:40: scaler.scale(loss).backward() is here\n"
        "  note: train.py:44: scaler.step() is here\n"
        "\n"
        "Found 1 problem (1 error, 0 warnings, 0 info) in 1 file.\n"
    )


def test_text_carets_sit_under_the_reported_columns(tmp_path):
    finding = make_finding(tmp_path, line=3, column=5, end_line=3, end_column=10, source_line="x = clip(a)")
    frame = render(Report(findings=[finding], root=tmp_path), "text").splitlines()[1:3]
    assert frame == [" 3 | x = clip(a)", "   |     ^^^^^"]
    source, carets = (line.split(" | ", 1)[1] for line in frame)
    assert source[carets.index("^") :][: carets.count("^")] == "clip("


def test_text_caret_alignment_survives_tabs_and_wide_characters(tmp_path):
    finding = make_finding(tmp_path, column=7, end_column=10, source_line="\t名前 = foo(x)")
    _, code, carets = render(Report(findings=[finding], root=tmp_path), "text").splitlines()[:3]
    assert code == " 1 |     名前 = foo(x)"
    # Column 7 is "foo": the tab takes 4 cells, each CJK character 2, then " = " 3.
    assert carets == "   | " + " " * 11 + "^^^"


def test_text_multiline_finding_is_underlined_to_the_end_of_its_first_line(tmp_path):
    finding = make_finding(tmp_path, line=10, column=5, end_line=14, end_column=2, source_line="    for x in y:   ")
    lines = render(Report(findings=[finding], root=tmp_path), "text").splitlines()
    assert lines[1:3] == [" 10 |     for x in y:", "    |     ^^^^^^^^^^^"]


def test_text_without_source_line_or_hint_prints_only_the_headline(tmp_path):
    finding = make_finding(tmp_path, "GL000", "bad.py", message="invalid syntax", line=2, column=1)
    assert render(Report(findings=[finding], files_checked=1, root=tmp_path), "text") == (
        "bad.py:2:1: GL000 [error] invalid syntax\n\nFound 1 problem (1 error, 0 warnings, 0 info) in 1 file.\n"
    )


def test_text_findings_are_sorted_by_path_line_column_code(tmp_path):
    report = full_report(tmp_path)
    report.findings.append(missing_clipping(tmp_path, rel="a.py", line=99))
    headlines = [line for line in render(report, "text").splitlines() if ": GL" in line and "note:" not in line]
    assert [line.split(" GL")[0] for line in headlines] == [
        "a.py:99:5:",
        "models/rnn.py:3:12:",
        "models/rnn.py:7:5:",
        "train.py:42:9:",
    ]


def test_text_summary_for_no_findings(tmp_path):
    assert render(Report(files_checked=12, root=tmp_path), "text") == "All checked: no problems found in 12 files.\n"
    assert render(Report(files_checked=1, root=tmp_path), "text") == "All checked: no problems found in 1 file.\n"
    assert (
        render(Report(files_checked=12, suppressed=2, root=tmp_path), "text")
        == "All checked: no problems found in 12 files (2 suppressed).\n"
    )


def test_text_summary_for_several_findings(tmp_path):
    output = render(full_report(tmp_path), "text")
    assert output.endswith("\n\nFound 3 problems (1 error, 1 warning, 1 info) in 12 files (2 suppressed).\n")
    report = Report(findings=[missing_clipping(tmp_path), missing_clipping(tmp_path, line=9)], files_checked=3)
    report.root = tmp_path
    assert render(report, "text").splitlines()[-1] == "Found 2 problems (0 errors, 2 warnings, 0 info) in 3 files."


def test_text_does_not_print_skipped_files_or_internal_errors(tmp_path):
    output = render(full_report(tmp_path), "text")
    assert "blob.py" not in output and "not UTF-8" not in output
    assert "broken.py" not in output and "RecursionError" not in output


def test_text_without_color_has_no_ansi_escapes_even_when_the_environment_asks(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    for fmt in ("text", "concise"):
        for options in ({}, {"statistics": True}, {"quiet": True}):
            assert "\x1b" not in render(full_report(tmp_path), fmt, color=False, **options)


def test_text_with_color_styles_severity_and_code_whatever_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    plain = render(full_report(tmp_path), "text")
    colored = render(full_report(tmp_path), "text", color=True)
    assert "\x1b[" in colored
    assert "\x1b[31m[error]\x1b[0m" in colored
    assert "\x1b[33m[warning]\x1b[0m" in colored
    assert "\x1b[34m[info]\x1b[0m" in colored
    assert "\x1b[1mGL103\x1b[0m" in colored
    # Colour changes nothing but the styling.
    assert ANSI.sub("", colored) == plain


@pytest.mark.parametrize("color", [False, True])
def test_markup_like_text_is_printed_literally(tmp_path, color):
    finding = make_finding(
        tmp_path,
        message="[error] use [bold]model[/bold] :fire: [red]",
        hint="see [link=https://x]docs[/link]",
        related=(Related(1, 1, "[/] here"),),
        source_line="loss[mask] = x[:, [0]]",
        display_path="dir[1]/train.py",
    )
    output = ANSI.sub("", render(Report(findings=[finding], root=tmp_path), "text", color=color))
    assert "dir[1]/train.py:1:1: GL103 [error] [error] use [bold]model[/bold] :fire: [red]\n" in output
    assert " 1 | loss[mask] = x[:, [0]]\n" in output
    assert "  help: see [link=https://x]docs[/link]\n" in output
    assert "  note: dir[1]/train.py:1: [/] here\n" in output


def test_terminal_control_characters_in_findings_are_neutralised(tmp_path):
    finding = make_finding(tmp_path, message="evil\x1b[2J message\nsecond line", source_line="s = '\x1b]0;x\x07'")
    output = render(Report(findings=[finding], root=tmp_path), "text")
    assert "\x1b" not in output and "\x07" not in output
    assert "GL103 [error] evil\\x1b[2J message second line\n" in output


def test_text_statistics_counts_per_code_most_frequent_first(tmp_path):
    report = full_report(tmp_path)
    report.findings += [missing_clipping(tmp_path, line=20), missing_clipping(tmp_path, line=30), sum_reduction(tmp_path)]
    assert render(report, "text", statistics=True) == (
        "3  GL101  missing-gradient-clipping\n"
        "2  GL109  sum-reduction-loss\n"
        "1  GL103  clipping-before-unscale\n"
        "\n"
        "Found 6 problems (1 error, 3 warnings, 2 info) in 12 files (2 suppressed).\n"
    )


def test_text_statistics_aligns_columns_and_is_quiet_when_asked(tmp_path):
    findings = [missing_clipping(tmp_path, line=n) for n in range(1, 11)] + [clip_before_unscale(tmp_path)]
    report = Report(findings=findings, files_checked=2, root=tmp_path)
    assert render(report, "text", statistics=True, quiet=True) == (
        "10  GL101  missing-gradient-clipping\n 1  GL103  clipping-before-unscale\n"
    )
    assert render(Report(files_checked=2, root=tmp_path), "text", statistics=True) == (
        "All checked: no problems found in 2 files.\n"
    )


def test_text_quiet_prints_concise_findings_and_no_summary(tmp_path):
    assert render(full_report(tmp_path), "text", quiet=True) == (
        "models/rnn.py:3:12: GL109 [info] CrossEntropyLoss(reduction='sum') is backpropagated without normalization.\n"
        "models/rnn.py:7:5: GL101 [warning] optimizer.step() runs with no gradient clipping after backward().\n"
        "train.py:42:9: GL103 [error] clip_grad_norm_() runs before scaler.unscale_(optimizer).\n"
    )
    assert render(Report(files_checked=5, root=tmp_path), "text", quiet=True) == ""


# -- concise ----------------------------------------------------------------------------------


def test_concise_is_one_line_per_finding_then_the_summary(tmp_path):
    assert render(full_report(tmp_path), "concise") == (
        "models/rnn.py:3:12: GL109 [info] CrossEntropyLoss(reduction='sum') is backpropagated without normalization.\n"
        "models/rnn.py:7:5: GL101 [warning] optimizer.step() runs with no gradient clipping after backward().\n"
        "train.py:42:9: GL103 [error] clip_grad_norm_() runs before scaler.unscale_(optimizer).\n"
        "Found 3 problems (1 error, 1 warning, 1 info) in 12 files (2 suppressed).\n"
    )
    assert render(Report(files_checked=4, root=tmp_path), "concise") == "All checked: no problems found in 4 files.\n"


def test_concise_quiet_drops_the_summary(tmp_path):
    output = render(full_report(tmp_path), "concise", quiet=True)
    assert len(output.splitlines()) == 3 and "Found" not in output


# -- json -------------------------------------------------------------------------------------


def test_json_has_the_documented_shape_and_key_order(tmp_path):
    output = render(full_report(tmp_path), "json")
    assert output.endswith("}\n") and output.startswith('{\n  "version": 1,\n  "tool": {\n    "name"')
    data = json.loads(output)
    assert list(data) == ["version", "tool", "findings", "summary", "skipped", "errors"]
    assert data["version"] == 1
    assert data["tool"] == {"name": "gradlint", "version": gradlint.__version__}
    assert [f["code"] for f in data["findings"]] == ["GL109", "GL101", "GL103"]
    finding = data["findings"][2]
    assert list(finding) == [
        "code", "name", "severity", "message", "hint", "path", "line", "column",
        "end_line", "end_column", "related", "fix_safety", "fingerprint", "data", "cell", "cell_line",
    ]  # fmt: skip
    assert finding == {
        "code": "GL103",
        "name": "clipping-before-unscale",
        "severity": "error",
        "message": "clip_grad_norm_() runs before scaler.unscale_(optimizer).",
        "hint": "Call scaler.unscale_(optimizer) before clipping.",
        "path": "train.py",
        "line": 42,
        "column": 9,
        "end_line": 42,
        "end_column": 63,
        "related": [
            {"line": 40, "column": 9, "message": "scaler.scale(loss).backward() is here", "cell": None, "cell_line": None},
            {"line": 44, "column": 9, "message": "scaler.step() is here", "cell": None, "cell_line": None},
        ],
        "fix_safety": None,
        "fingerprint": clip_before_unscale(tmp_path).fingerprint(),
        "data": None,
        "cell": None,
        "cell_line": None,
    }
    assert data["findings"][0]["hint"] is None and data["findings"][0]["related"] == []
    assert data["summary"] == {
        "files_checked": 12,
        "findings": 3,
        "by_severity": {"error": 1, "warning": 1, "info": 1},
        "suppressed": 2,
    }
    assert list(data["summary"]["by_severity"]) == ["error", "warning", "info"]
    assert data["skipped"] == [{"path": str(tmp_path / "data" / "blob.py"), "reason": "not UTF-8"}]
    assert data["errors"] == [
        {"path": str(tmp_path / "broken.py"), "code": "GL108", "message": "RecursionError: maximum recursion depth exceeded"}
    ]


def test_json_is_indented_by_two_and_ignores_human_options(tmp_path):
    report = full_report(tmp_path)
    output = render(report, "json")
    assert output == json.dumps(json.loads(output), indent=2) + "\n"
    assert render(report, "json", color=True, statistics=True, quiet=True) == output


def test_json_for_an_empty_report(tmp_path):
    data = json.loads(render(Report(files_checked=3, root=tmp_path), "json"))
    assert data["findings"] == [] and data["skipped"] == [] and data["errors"] == []
    assert data["summary"] == {
        "files_checked": 3,
        "findings": 0,
        "by_severity": {"error": 0, "warning": 0, "info": 0},
        "suppressed": 0,
    }


def test_json_keeps_fix_safety_and_null_error_code(tmp_path):
    report = Report(
        findings=[make_finding(tmp_path, fix_safety="safe", message="naïve — ünïcode")],
        errors=[InternalError("x.py", "parser crashed")],
        root=tmp_path,
    )
    output = render(report, "json")
    assert output.isascii()
    data = json.loads(output)
    assert data["findings"][0]["fix_safety"] == "safe"
    assert data["findings"][0]["message"] == "naïve — ünïcode"
    assert data["errors"] == [{"path": "x.py", "code": None, "message": "parser crashed"}]


def _documented_fields() -> dict[str, set[str]]:
    """Field path -> allowed JSON types, read from the table under '## Fields' in the doc."""
    text = JSON_DOC.read_text(encoding="utf-8")
    section = text.split("\n## Fields", 1)[1]
    fields: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)]
        if len(cells) >= 4 and re.fullmatch(r"`[^`]+`", cells[1]):
            fields[cells[1].strip("`")] = {t.strip() for t in cells[2].split("\\|")}
    return fields


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "integer", float: "number", str: "string", list: "array", dict: "object"}[type(value)]


def _rendered_fields(value: Any, prefix: str = "", out: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Every field path in a rendering, with the JSON types seen at it (`a[].b` for list items)."""
    out = {} if out is None else out
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.setdefault(path, set()).add(_json_type(child))
            _rendered_fields(child, path, out)
    elif isinstance(value, list):
        for item in value:
            _rendered_fields(item, f"{prefix}[]", out)
    return out


def test_json_doc_and_output_name_the_same_fields_with_the_same_types(tmp_path):
    report = full_report(tmp_path)
    report.findings.append(make_finding(tmp_path, fix_safety="unsafe"))
    report.errors.append(InternalError("y.py", "no rule to blame"))
    rendered = _rendered_fields(json.loads(render(report, "json")))
    documented = _documented_fields()
    assert documented, "no field table found under '## Fields' in docs/json-schema.md"
    assert set(rendered) == set(documented), (
        f"undocumented: {sorted(set(rendered) - set(documented))}; "
        f"documented but absent: {sorted(set(documented) - set(rendered))}"
    )
    for path, seen in rendered.items():
        assert seen <= documented[path], f"{path}: rendered as {sorted(seen)}, documented as {sorted(documented[path])}"


def test_json_doc_states_the_stability_promise():
    text = JSON_DOC.read_text(encoding="utf-8")
    assert "## Stability promise" in text
    assert "only ever added" in text


# -- sarif ------------------------------------------------------------------------------------


def _sarif_validator():
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SARIF_SCHEMA} (the shared/ folder beside the repository)")
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    # The official schema declares draft-04; make sure we validate with exactly that dialect.
    assert schema["$schema"].rstrip("#") == validator_cls.META_SCHEMA["$schema"].rstrip("#")
    validator_cls.check_schema(schema)
    return validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)


def assert_valid_sarif(document: dict[str, Any]) -> None:
    validator = _sarif_validator()
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def sarif(report: Report) -> dict[str, Any]:
    return json.loads(render(report, "sarif"))


@pytest.mark.parametrize(
    "build",
    [
        lambda root: Report(root=root),
        full_report,
        lambda root: Report(findings=[make_finding(root, "GL000", "a b/ü#1.py", line=0, column=0, end_column=0)], root=root),
    ],
    ids=["empty", "related-errors-skipped", "odd-path-and-positions"],
)
def test_sarif_validates_against_the_official_schema(tmp_path, build):
    assert_valid_sarif(sarif(build(tmp_path)))


def test_sarif_run_header_and_tool(tmp_path):
    document = sarif(full_report(tmp_path))
    assert document["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("gradlint", gradlint.__version__)
    assert driver["informationUri"] == "https://github.com/gradlint/gradlint"
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": tmp_path.as_uri() + "/"}}


def test_sarif_describes_every_registered_rule(tmp_path):
    rules = sarif(Report(root=tmp_path))["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.code for rule in ALL_RULES]
    levels = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    for descriptor, rule in zip(rules, ALL_RULES):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"] == {"text": rule.summary}
        assert descriptor["fullDescription"]["text"]
        assert descriptor["help"]["text"] and descriptor["help"]["markdown"]
        assert descriptor["helpUri"] == f"https://github.com/gradlint/gradlint/blob/main/rules/{rule.code}-{rule.name}.md"
        assert descriptor["defaultConfiguration"] == {"level": levels[rule.severity]}
        assert descriptor["properties"]["tags"]
    gl101 = rules[[r.code for r in ALL_RULES].index("GL101")]
    assert gl101["helpUri"] == "https://github.com/gradlint/gradlint/blob/main/rules/GL101-missing-gradient-clipping.md"


def test_sarif_help_is_the_rule_document_when_available(tmp_path, monkeypatch):
    docs = types.ModuleType("gradlint.docs")
    docs.rule_markdown = lambda code: f"# {code}\n\nThe document for {code}." if code == "GL103" else None
    monkeypatch.setitem(sys.modules, "gradlint.docs", docs)
    rules = {r["id"]: r for r in sarif(Report(root=tmp_path))["runs"][0]["tool"]["driver"]["rules"]}
    document = "# GL103\n\nThe document for GL103."
    assert rules["GL103"]["help"] == {"text": document, "markdown": document}
    summary = RULES_BY_CODE["GL101"].summary
    assert rules["GL101"]["help"] == {"text": summary, "markdown": summary}


def test_sarif_help_falls_back_to_the_summary_without_gradlint_docs(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradlint.docs", None)  # makes `import gradlint.docs` fail
    rules = sarif(Report(root=tmp_path))["runs"][0]["tool"]["driver"]["rules"]
    for descriptor, rule in zip(rules, ALL_RULES):
        assert descriptor["help"] == {"text": rule.summary, "markdown": rule.summary}


def test_sarif_results(tmp_path):
    run = sarif(full_report(tmp_path))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["GL109", "GL101", "GL103"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert [r["level"] for r in results] == ["note", "warning", "error"]
    result = results[2]
    assert result["message"] == {
        "text": "clip_grad_norm_() runs before scaler.unscale_(optimizer).\n"
        "help: Call scaler.unscale_(optimizer) before clipping.\n"
        "note: [train.py:40](1): scaler.scale(loss).backward() is here\n"
        "note: [train.py:44](2): scaler.step() is here"
    }
    assert results[1]["message"] == {"text": "optimizer.step() runs with no gradient clipping after backward()."}
    assert result["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "train.py", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 42, "startColumn": 9, "endLine": 42, "endColumn": 63},
            }
        }
    ]
    assert result["relatedLocations"] == [
        {
            "id": 1,
            "physicalLocation": {
                "artifactLocation": {"uri": "train.py", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 40, "startColumn": 9},
            },
            "message": {"text": "scaler.scale(loss).backward() is here"},
        },
        {
            "id": 2,
            "physicalLocation": {
                "artifactLocation": {"uri": "train.py", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 44, "startColumn": 9},
            },
            "message": {"text": "scaler.step() is here"},
        },
    ]
    assert "relatedLocations" not in results[0]
    assert result["partialFingerprints"] == {"gradlint/v1": clip_before_unscale(tmp_path).fingerprint()}


def test_sarif_uris_are_relative_to_the_root_posix_and_quoted(tmp_path):
    nested = tmp_path / "project"
    report = Report(
        findings=[
            make_finding(tmp_path, rel="project/src dir/mödel#1.py", display_path="src dir/mödel#1.py"),
            make_finding(tmp_path, rel="elsewhere.py"),
        ],
        root=nested,
    )
    results = sarif(report)["runs"][0]["results"]
    outside, inside = (r["locations"][0]["physicalLocation"]["artifactLocation"] for r in results)
    assert inside == {"uri": "src%20dir/m%C3%B6del%231.py", "uriBaseId": "%SRCROOT%"}
    # A file outside the root keeps an absolute file URI and no base.
    assert outside == {"uri": (tmp_path / "elsewhere.py").as_uri()}
    assert_valid_sarif(sarif(report))


def test_sarif_invocation_reports_errors_and_skipped_files(tmp_path):
    run = sarif(full_report(tmp_path))["runs"][0]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    error, skipped = invocation["toolExecutionNotifications"]
    assert error["level"] == "error"
    assert "RecursionError: maximum recursion depth exceeded" in error["message"]["text"]
    assert error["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "broken.py", "uriBaseId": "%SRCROOT%"}
    rules = run["tool"]["driver"]["rules"]
    assert rules[error["associatedRule"]["index"]]["id"] == error["associatedRule"]["id"] == "GL108"
    assert skipped["level"] == "warning"
    assert "not UTF-8" in skipped["message"]["text"]
    assert skipped["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "data/blob.py",
        "uriBaseId": "%SRCROOT%",
    }


def test_sarif_clean_run_is_successful_without_notifications(tmp_path):
    (invocation,) = sarif(Report(files_checked=3, root=tmp_path))["runs"][0]["invocations"]
    assert invocation == {"executionSuccessful": True}
    skipped_only = Report(skipped=[SkippedFile(str(tmp_path / "x.py"), "too large")], root=tmp_path)
    (invocation,) = sarif(skipped_only)["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True
    assert [n["level"] for n in invocation["toolExecutionNotifications"]] == ["warning"]


def test_sarif_is_deterministic_and_ignores_human_options(tmp_path):
    report = full_report(tmp_path)
    assert render(report, "sarif") == render(report, "sarif", color=True, statistics=True, quiet=True)
    assert render(report, "sarif").endswith("}\n")


# -- github -----------------------------------------------------------------------------------


def test_github_writes_one_workflow_command_per_finding(tmp_path):
    assert render(full_report(tmp_path), "github") == (
        "::notice file=models/rnn.py,line=3,col=12,endLine=3,endColumn=51,title=GL109 sum-reduction-loss::"
        "CrossEntropyLoss(reduction='sum') is backpropagated without normalization.\n"
        "::warning file=models/rnn.py,line=7,col=5,endLine=7,endColumn=21,title=GL101 missing-gradient-clipping::"
        "optimizer.step() runs with no gradient clipping after backward().\n"
        "::error file=train.py,line=42,col=9,endLine=42,endColumn=63,title=GL103 clipping-before-unscale::"
        "clip_grad_norm_() runs before scaler.unscale_(optimizer).%0Ahelp: Call scaler.unscale_(optimizer) before clipping."
        "%0Anote: train.py:40: scaler.scale(loss).backward() is here%0Anote: train.py:44: scaler.step() is here\n"
    )
    assert render(Report(files_checked=3, root=tmp_path), "github") == ""


def test_github_escapes_data_and_property_values(tmp_path):
    finding = make_finding(
        tmp_path,
        rel="weird,dir/a:b%.py",
        display_path="ignored-for-github.py",
        message="100% of steps\r\nunclipped: a, b",
    )
    line = render(Report(findings=[finding], root=tmp_path), "github")
    assert line == (
        "::error file=weird%2Cdir/a%3Ab%25.py,line=1,col=1,endLine=1,endColumn=2,"
        "title=GL103 clipping-before-unscale::100%25 of steps%0D%0Aunclipped: a, b\n"
    )
    assert line.count("\n") == 1


def test_github_paths_are_relative_to_the_report_root_not_the_display_path(tmp_path):
    finding = make_finding(tmp_path, rel="pkg/train.py", display_path="../somewhere/pkg/train.py")
    assert render(Report(findings=[finding], root=tmp_path), "github").startswith("::error file=pkg/train.py,")


def test_github_multiline_annotation_has_no_columns(tmp_path):
    finding = make_finding(tmp_path, "GL101", line=3, column=5, end_line=9, end_column=2)
    assert render(Report(findings=[finding], root=tmp_path), "github") == (
        "::warning file=train.py,line=3,endLine=9,title=GL101 missing-gradient-clipping::missing-gradient-clipping here\n"
    )


# -- the same related sites in every format ----------------------------------------------------


def _notes_of_text(output: str) -> list[str]:
    return [line.strip()[len("note: "):] for line in output.splitlines() if line.strip().startswith("note: ")]


def test_github_and_sarif_show_the_related_locations_the_text_format_shows(tmp_path):
    finding = clip_before_unscale(tmp_path)
    report = Report(findings=[finding], files_checked=1, root=tmp_path)
    text_notes = _notes_of_text(render(report, "text"))
    assert text_notes == ["train.py:40: scaler.scale(loss).backward() is here", "train.py:44: scaler.step() is here"]
    github = render(report, "github").rstrip("\n").split("::", 2)[2].split("%0A")
    assert [line[len("note: "):] for line in github if line.startswith("note: ")] == text_notes
    (result,) = sarif(report)["runs"][0]["results"]
    sarif_notes = [line[len("note: "):] for line in result["message"]["text"].splitlines() if line.startswith("note: ")]
    assert [re.sub(r"^\[(.*?)\]\((\d+)\)", r"\1", note) for note in sarif_notes] == text_notes
    linked = [int(m) for m in re.findall(r"\]\((\d+)\):", result["message"]["text"])]
    locations = {location["id"]: location for location in result["relatedLocations"]}
    assert linked == sorted(locations) == [1, 2]
    assert [locations[n]["physicalLocation"]["region"]["startLine"] for n in linked] == [40, 44]


def test_github_and_sarif_name_a_related_notebook_site_by_its_cell(tmp_path):
    finding = make_finding(
        tmp_path, "GL101", "nb.ipynb", message="no clip", cell=4, cell_line=3,
        related=(Related(12, 5, "gradients are computed here", cell=4, cell_line=2),),
    )
    report = Report(findings=[finding], root=tmp_path)
    assert "note: nb.ipynb:cell 4:line 2: gradients are computed here" in render(report, "text")
    assert "%0Anote: nb.ipynb:cell 4:line 2: gradients are computed here" in render(report, "github")
    (result,) = sarif(report)["runs"][0]["results"]
    assert result["message"]["text"].endswith("\nnote: [nb.ipynb:cell 4:line 2](1): gradients are computed here")


def test_sarif_escapes_literal_brackets_in_a_message_with_links(tmp_path):
    finding = make_finding(tmp_path, message="`out[-1]` is clipped", related=(Related(2, 1, "see `x[0]`"),))
    (result,) = sarif(Report(findings=[finding], root=tmp_path))["runs"][0]["results"]
    assert result["message"]["text"] == "`out\\[-1\\]` is clipped\nnote: [train.py:2](1): see `x\\[0\\]`"


# -- fingerprints do not depend on the working directory --------------------------------------


def test_the_same_finding_has_the_same_fingerprints_from_the_repository_root_a_subfolder_and_outside(
    tmp_path, monkeypatch
):
    """SARIF partialFingerprints, the json fingerprint and the baseline hash the
    repository-relative path and the code, never the directory gradlint runs from."""
    from click.testing import CliRunner

    from gradlint.cli import main

    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "src" / "pkg").mkdir(parents=True)
    (repo / "src" / "pkg" / "train.py").write_text(
        "import torch\n\nfor x in loader:\n    opt.zero_grad()\n    model(x).sum().backward()\n    opt.step()\n",
        encoding="utf-8",
    )

    def outputs(cwd: Path, target: str) -> tuple[dict, str, str, dict]:
        monkeypatch.chdir(cwd)
        run = CliRunner()
        common = ["check", target, "--select", "GL101", "--no-cache", "--exit-zero"]
        sarif_out = json.loads(run.invoke(main, [*common, "--format", "sarif"]).stdout)
        (result,) = sarif_out["runs"][0]["results"]
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        (finding,) = json.loads(run.invoke(main, [*common, "--format", "json"]).stdout)["findings"]
        baseline = tmp_path / "baseline.json"
        created = run.invoke(main, ["baseline", "create", str(baseline), target, "--select", "GL101"])
        assert created.exit_code == 0, created.output
        (entry,) = json.loads(baseline.read_text(encoding="utf-8"))["entries"]
        return result["partialFingerprints"], location, finding["fingerprint"], entry

    from_root = outputs(repo, "src/pkg")
    from_subfolder = outputs(repo / "src" / "pkg", ".")
    from_outside = outputs(tmp_path, "repo/src/pkg")
    assert from_root == from_subfolder == from_outside
    fingerprints, uri, fingerprint, entry = from_root
    assert uri == "src/pkg/train.py" and entry["path"] == "src/pkg/train.py"
    assert fingerprints == {"gradlint/v1": fingerprint} and entry["fingerprint"] == fingerprint
