"""The command line as a user and a CI job meet it: formats, exit codes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.cli import main
from gradlint.rules import ALL_RULES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

NO_CLIP = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn

    model = nn.LSTM(8, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)

    def train(loader):
        for x, y in loader:
            optimizer.zero_grad()
            out, _ = model(x)
            loss = (out - y).pow(2).mean()
            loss.backward()
            optimizer.step()
    """
)

CLEAN = NO_CLIP.replace(
    "loss.backward()\n", "loss.backward()\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
)


def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(main, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "train.py").write_text(NO_CLIP)
    return tmp_path


def test_findings_exit_1_and_print_location_code_and_severity(project: Path):
    code, out, _ = run("check", ".", cwd=project)
    assert code == 1
    assert "train.py:13:9: GL101 [warning]" in out
    assert "Found 1 problem" in out


def test_clean_code_exits_0(tmp_path: Path):
    (tmp_path / "train.py").write_text(CLEAN)
    code, out, _ = run("check", str(tmp_path))
    assert code == 0
    assert "no problems" in out


def test_fail_on_error_lets_warnings_pass(project: Path):
    assert run("check", str(project), "--fail-on", "error")[0] == 0


def test_fail_on_info_fails_on_info_findings(tmp_path: Path):
    (tmp_path / "train.py").write_text(NO_CLIP.replace("nn.LSTM(8, 16)", "nn.Linear(8, 16)"))
    assert run("check", str(tmp_path))[0] == 0  # GL101 is info without a risk factor
    assert run("check", str(tmp_path), "--fail-on", "info")[0] == 1


def test_exit_zero_reports_but_exits_0(project: Path):
    code, out, _ = run("check", str(project), "--exit-zero")
    assert code == 0 and "GL101" in out


def test_select_and_ignore_flags(project: Path):
    assert run("check", str(project), "--ignore", "GL101")[0] == 0
    assert run("check", str(project), "--select", "GL102,GL103")[0] == 0
    assert run("check", str(project), "--select", "GL1")[0] == 1


def test_unknown_rule_in_flag_is_a_usage_error(project: Path):
    code, _, err = run("check", str(project), "--select", "GL999")
    assert code == 2
    assert "GL999" in err


def test_unknown_config_key_is_a_configuration_error(project: Path):
    (project / "pyproject.toml").write_text("[tool.gradlint]\nselekt = ['GL101']\n")
    code, _, err = run("check", str(project))
    assert code == 2
    assert "selekt" in err and "select" in err


def test_pyproject_configuration_is_applied(project: Path):
    (project / "pyproject.toml").write_text('[tool.gradlint]\nignore = ["GL101"]\n')
    assert run("check", ".", cwd=project)[0] == 0


def test_per_rule_severity_from_config(project: Path):
    (project / "pyproject.toml").write_text('[tool.gradlint.GL101]\nseverity = "error"\n')
    code, out, _ = run("check", ".", cwd=project)
    assert code == 1 and "GL101 [error]" in out


def test_json_output_is_versioned_and_machine_readable(project: Path):
    code, out, _ = run("check", str(project), "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["version"] == 1
    (finding,) = data["findings"]
    assert finding["code"] == "GL101" and finding["line"] == 13 and finding["severity"] == "warning"
    assert data["summary"]["files_checked"] == 1


def test_sarif_output_names_rules_and_relative_locations(project: Path):
    code, out, _ = run("check", ".", "--format", "sarif", cwd=project)
    sarif = json.loads(out)
    run_ = sarif["runs"][0]
    assert {rule["id"] for rule in run_["tool"]["driver"]["rules"]} == {rule.code for rule in ALL_RULES}
    (result,) = run_["results"]
    assert result["ruleId"] == "GL101"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "train.py"


def test_sarif_locations_are_relative_to_the_git_repository(tmp_path: Path):
    (tmp_path / ".git").mkdir()
    package = tmp_path / "research" / "lm"
    package.mkdir(parents=True)
    (package / "train.py").write_text(NO_CLIP)
    _, out, _ = run("check", ".", "--format", "sarif", cwd=package)
    location = json.loads(out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "research/lm/train.py"


def test_github_output_is_workflow_commands(project: Path):
    _, out, _ = run("check", ".", "--format", "github", cwd=project)
    assert out.startswith("::warning file=train.py,line=13,")
    assert "title=GL101" in out


def test_output_file_receives_the_report(project: Path, tmp_path: Path):
    target = tmp_path / "report.json"
    code, out, _ = run("check", str(project), "--format", "json", "--output", str(target))
    assert code == 1 and out == ""
    assert json.loads(target.read_text())["findings"][0]["code"] == "GL101"


def test_output_into_missing_directory_is_a_clear_error(project: Path, tmp_path: Path):
    code, _, err = run("check", str(project), "--output", str(tmp_path / "nope" / "r.json"))
    assert code == 2 and "cannot write the report" in err


def test_suppression_comment_silences_the_line(project: Path):
    source = NO_CLIP.replace("optimizer.step()", "optimizer.step()  # gradlint: ignore[GL101]")
    (project / "train.py").write_text(source)
    code, out, _ = run("check", str(project))
    assert code == 0 and "1 suppressed" in out


def test_noqa_comment_silences_the_line(project: Path):
    (project / "train.py").write_text(NO_CLIP.replace("optimizer.step()", "optimizer.step()  # noqa: GL101"))
    assert run("check", str(project))[0] == 0


def test_unused_suppression_is_reported_on_request(project: Path):
    source = CLEAN.replace("optimizer.step()", "optimizer.step()  # gradlint: ignore[GL101]")
    (project / "train.py").write_text(source)
    assert run("check", str(project))[0] == 0
    code, out, _ = run("check", str(project), "--report-unused-ignores")
    assert code == 1 and "GL001" in out


def test_file_level_ignore_skips_the_file(project: Path):
    (project / "train.py").write_text("# gradlint: ignore-file\n" + NO_CLIP)
    assert run("check", str(project))[0] == 0


def test_quiet_and_statistics(project: Path):
    _, quiet, _ = run("check", str(project), "--quiet")
    assert quiet.count("\n") == 1 and "GL101" in quiet
    _, stats, _ = run("check", str(project), "--statistics")
    assert "GL101" in stats and "missing-gradient-clipping" in stats


# ----------------------------------------------------------------------------- bad input


def test_syntax_error_is_a_gl000_finding_and_other_files_are_still_checked(project: Path):
    (project / "broken.py").write_text("import torch\ndef train(:\n    loss.backward()\n")
    code, out, _ = run("check", ".", "--format", "concise", cwd=project)
    assert code == 1
    assert "broken.py:2:" in out and "GL000" in out
    assert "train.py:13:9: GL101" in out


def test_binary_file_is_skipped_with_a_warning(project: Path):
    (project / "blob.py").write_bytes(b"\x00\x01backward\x02" * 10)
    code, _, err = run("check", str(project))
    assert code == 1  # the other file's finding
    assert "warning" in err and "blob.py" in err and "binary" in err


def test_latin1_file_without_coding_cookie_is_skipped_with_a_warning(project: Path):
    (project / "legacy.py").write_bytes("# caf\xe9\nloss.backward()\n".encode("latin-1"))
    _, _, err = run("check", str(project))
    assert "legacy.py" in err and "utf-8" in err.lower()


def test_latin1_file_with_coding_cookie_is_checked(tmp_path: Path):
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + NO_CLIP
    (tmp_path / "legacy.py").write_bytes(source.encode("latin-1"))
    code, out, err = run("check", str(tmp_path))
    assert code == 1 and "GL101" in out and err == ""


def test_empty_file_is_fine(tmp_path: Path):
    (tmp_path / "empty.py").write_text("")
    code, out, _ = run("check", str(tmp_path))
    assert code == 0 and "1 file" in out


def test_nonexistent_path_is_an_error_exit_2(project: Path):
    code, out, err = run("check", str(project), str(project / "missing.py"))
    assert code == 2
    assert "missing.py" in err and "no such file" in err
    assert "GL101" in out  # the existing path was still checked


def test_unreadable_file_is_skipped_with_a_warning(project: Path, monkeypatch):
    # CI runs as root, who can read anything: simulate the OS refusing one file.
    secret = project / "secret.py"
    secret.write_text(NO_CLIP)
    real_read_bytes = Path.read_bytes

    def read_bytes(self):
        if self.name == "secret.py":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    code, out, err = run("check", str(project))
    assert "secret.py" in err and "Permission denied" in err and "warning" in err
    assert code == 1 and out.count("GL101 [") == 1  # train.py is still checked


def test_unreadable_directory_is_skipped_with_a_warning(project: Path, monkeypatch):
    # Root can read anything, so simulate the OS refusing one directory.
    locked = project / "locked"
    locked.mkdir()
    (locked / "train.py").write_text(NO_CLIP)
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).resolve() == locked.resolve():
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, err = run("check", str(project))
    assert "locked" in err and "warning" in err
    assert code == 1 and out.count("GL101") == 1


def test_symlink_loop_does_not_hang_or_crash(project: Path):
    (project / "loop").symlink_to(project, target_is_directory=True)
    code, out, _ = run("check", str(project))
    assert code == 1 and out.count("GL101 [") == 1


def test_crashing_rule_is_reported_with_file_and_rule_and_the_run_goes_on(project: Path, monkeypatch):
    from gradlint.rules.clipping_misplaced import ClippingMisplaced

    def boom(self, model, ctx):
        raise ValueError("kaboom")

    monkeypatch.setattr(ClippingMisplaced, "check", boom)
    (project / "clip.py").write_text(CLEAN)
    code, out, err = run("check", str(project))
    assert code == 2
    assert "GL102" in err and "kaboom" in err and "clip.py" in err
    assert "GL101" in out  # the other rules still ran


# ----------------------------------------------------------------------------- rules, explain


def test_rules_lists_every_rule():
    code, out, _ = run("rules")
    assert code == 0
    for rule in ALL_RULES:
        assert rule.code in out and rule.name in out


def test_rules_json():
    rows = json.loads(run("rules", "--format", "json")[1])
    assert [row["code"] for row in rows] == [rule.code for rule in ALL_RULES]


@pytest.mark.parametrize("command", ["explain", "rule"])
def test_explain_prints_the_rule_document(command: str):
    code, out, _ = run(command, "GL103")
    assert code == 0
    assert "clipping-before-unscale" in out and "unscale_" in out


def test_explain_accepts_a_rule_name():
    code, out, _ = run("explain", "missing-gradient-clipping")
    assert code == 0 and "GL101" in out


def test_explain_unknown_rule_is_an_error():
    code, _, err = run("explain", "GL999")
    assert code == 2 and "GL999" in err


def test_version():
    code, out, _ = run("--version")
    assert code == 0 and "gradlint" in out


# ----------------------------------------------------------------------------- process level


def test_static_path_never_imports_torch(tmp_path: Path):
    """Run the real console entry point with torch made unimportable."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('gradlint must not import torch')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", str(FIXTURES), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["findings"]
    assert "must not import torch" not in result.stderr


def test_check_of_a_missing_path_prints_the_error_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", "nonexist/"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "error: nonexist: no such file or directory"


def test_an_incomplete_check_is_never_called_all_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clean.py").write_text("x = 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "clean.py", "nonexist/", "--no-cache"])
    assert result.exit_code == 2
    assert "All checked" not in result.stdout
    assert "No problems found in 1 file, but the check is incomplete: 1 error" in result.stdout


def test_rules_piped_prints_one_line_per_rule_with_its_whole_summary():
    from gradlint.rules import ALL_RULES

    result = CliRunner().invoke(main, ["rules"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(ALL_RULES)
    for line, rule in zip(lines, ALL_RULES):
        assert line.split()[:3] == [rule.code, rule.name, rule.severity.label]
        assert line.endswith(rule.summary)


def test_the_console_script_writes_its_whole_report_and_exit_status_before_leaving(tmp_path):
    # `gradlint` (gradlint.launch:run, then gradlint.cli:run) leaves with os._exit, skipping the interpreter's teardown:
    # the report on a pipe must still arrive whole, with the status `main` chose.
    import json
    import subprocess
    import sys

    from snippets import CLIP_AFTER_STEP

    script = tmp_path / "train.py"
    script.write_text(CLIP_AFTER_STEP, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", "--format", "json", str(script)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [finding["code"] for finding in report["findings"]] == ["GL102"]
    clean = subprocess.run(
        [sys.executable, "-m", "gradlint", "check", "--no-cache", "--select", "GL204", str(script)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert clean.returncode == 0 and "no problems" in clean.stdout
    bad = subprocess.run([sys.executable, "-m", "gradlint", "check", "--select", "GL999", str(script)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "GL999" in bad.stderr
