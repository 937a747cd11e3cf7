"""The bad input inventory: every kind of file or path a linter meets in the wild, through the
real command line. Each one ends with a clear exit code and message, never a traceback.

Deeply nested code runs in a subprocess: libcst's native parser recurses on the C stack, so a
failure there would kill the process (a segfault), not raise.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradlint.cli import main

TRAINING_LOOP = textwrap.dedent(
    """\
    import torch
    import torch.nn as nn

    model = nn.LSTM(8, 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)

    def train(loader):
        for x, y in loader:
            optimizer.zero_grad()
            out, _ = model(x)
            loss = (out - y).pow(2).mean()
            loss.backward()
            optimizer.step()
    """
)
STEP_LINE = TRAINING_LOOP.splitlines().index("        optimizer.step()") + 1


def run(*args: str, cwd: Path) -> tuple[int, str, str]:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def run_process(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "gradlint", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode >= 0, f"killed by signal {-completed.returncode}: {completed.stderr[-2000:]}"
    assert "Traceback" not in completed.stdout + completed.stderr
    return completed.returncode, completed.stdout, completed.stderr


def gl101_lines(out: str, name: str) -> list[int]:
    return [int(line.split(":")[1]) for line in out.splitlines() if line.startswith(f"{name}:") and " GL101 " in line]


# ----------------------------------------------------------------------------- file contents


def test_an_empty_file_is_checked_and_clean(tmp_path: Path):
    (tmp_path / "empty.py").write_text("")
    code, out, err = run("check", "empty.py", cwd=tmp_path)
    assert (code, err) == (0, "") and "1 file" in out


def test_a_file_of_only_comments_is_checked_and_clean(tmp_path: Path):
    (tmp_path / "notes.py").write_text("# loss.backward() then optimizer.step()\n# clip_grad_norm_ later\n")
    code, out, err = run("check", "notes.py", cwd=tmp_path)
    assert (code, err) == (0, "") and "1 file" in out


def test_a_utf8_bom_does_not_shift_lines_or_columns(tmp_path: Path):
    (tmp_path / "train.py").write_bytes(b"\xef\xbb\xbf" + TRAINING_LOOP.encode())
    code, out, _ = run("check", "train.py", "--format", "concise", cwd=tmp_path)
    assert code == 1 and f"train.py:{STEP_LINE}:9: GL101" in out


def test_crlf_line_endings_give_the_same_locations(tmp_path: Path):
    (tmp_path / "train.py").write_bytes(TRAINING_LOOP.replace("\n", "\r\n").encode())
    code, out, _ = run("check", "train.py", "--format", "concise", cwd=tmp_path)
    assert code == 1 and f"train.py:{STEP_LINE}:9: GL101" in out


def test_tab_indentation_is_understood(tmp_path: Path):
    tabbed = "\n".join(line.replace("    ", "\t") for line in TRAINING_LOOP.splitlines()) + "\n"
    (tmp_path / "train.py").write_text(tabbed)
    code, out, _ = run("check", "train.py", "--format", "concise", cwd=tmp_path)
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE]


def test_a_200k_character_line_does_not_stop_the_check(tmp_path: Path):
    vocabulary = "VOCAB = [" + ", ".join(f'"{i:05d}{"subword" * 6}"' for i in range(4_000)) + "]\n"
    assert len(vocabulary) > 200_000
    (tmp_path / "train.py").write_text(vocabulary + TRAINING_LOOP)
    code, out, _ = run("check", "train.py", "--format", "concise", cwd=tmp_path)
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE + 1]


def test_a_5_mb_generated_file_is_checked_in_bounded_time(tmp_path: Path):
    # Generated modules embed data. A string blob keeps libcst's work linear; a 5 MB numeric
    # table with a finding costs minutes in libcst's position metadata (a known limit).
    blob = 'ASSETS = """\n' + "".join(f"{i:08d}{'QUJD' * 17}\n" for i in range(66_000)) + '"""\n'
    (tmp_path / "generated.py").write_text(TRAINING_LOOP + blob)
    assert (tmp_path / "generated.py").stat().st_size > 5_000_000
    code, out, _ = run("check", "generated.py", "--format", "concise", cwd=tmp_path)
    assert code == 1 and gl101_lines(out, "generated.py") == [STEP_LINE]


DEEP_NESTING = {
    "5000 nested parentheses": "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
    "5000 nested lists": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    # CPython refuses it (recursion limit); libcst takes minutes (4,000 terms: 30 s) unless guarded.
    "a 60000-term sum": "x = " + " + ".join(["a"] * 60_000) + "\n",
    "a 20000-term boolean chain": "ok = " + " and ".join(["a"] * 20_000) + "\n",
}


@pytest.mark.parametrize("shape", list(DEEP_NESTING))
def test_deeply_nested_code_is_reported_or_skipped_never_a_crash(tmp_path: Path, shape: str):
    (tmp_path / "deep.py").write_text("loss.backward()\n" + DEEP_NESTING[shape])
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, err = run_process("check", ".", "--format", "concise", cwd=tmp_path, timeout=10)
    deep_reported = any(line.startswith("deep.py:") and " GL000 " in line for line in out.splitlines())
    deep_skipped = "skipped deep.py" in err and "nested" in err
    assert deep_reported or deep_skipped or "deep.py" not in out + err  # a valid file may be clean
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE]  # the other file is still checked


def test_nesting_beyond_cpythons_limit_is_a_gl000_finding(tmp_path: Path):
    (tmp_path / "deep.py").write_text("loss.backward()\nx = " + "(" * 250 + "1" + ")" * 250 + "\n")
    code, out, _ = run_process("check", "deep.py", "--format", "concise", cwd=tmp_path)
    assert code == 1 and "deep.py:2:" in out and "GL000" in out and "too many nested parentheses" in out


def test_valid_python_that_libcst_cannot_parse_is_not_called_a_syntax_error(tmp_path: Path):
    table = "HELP = (\n" + "".join(f'    "line {i}\\n"\n' for i in range(6_000)) + ")\n"
    compile(table, "help.py", "exec")
    (tmp_path / "help.py").write_text("loss.backward()\n" + table)
    code, out, err = run("check", "help.py", "--format", "concise", cwd=tmp_path)
    assert "GL000" not in out and "help.py" in err and "skipped" in err


@pytest.mark.parametrize(
    "content, reason",
    [
        ("# caf\xe9\nloss.backward()\n".encode("latin-1"), "not valid utf-8"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8, "binary"),
        (b"loss.backward()\n\x00\x00\x00", "binary"),
    ],
    ids=["latin-1 without a coding cookie", "an ELF binary named x.py", "text with NUL bytes"],
)
def test_a_file_that_is_not_python_text_is_skipped_with_a_warning(tmp_path: Path, content: bytes, reason: str):
    (tmp_path / "x.py").write_bytes(content)
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, err = run("check", ".", "--format", "concise", cwd=tmp_path)
    assert "warning: skipped x.py" in err and reason in err.lower()
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE]


# ----------------------------------------------------------------------------- the file system


def test_an_unreadable_file_is_skipped_with_a_warning(tmp_path: Path, monkeypatch):
    (tmp_path / "secret.py").write_text(TRAINING_LOOP)
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    if os.geteuid() == 0:  # root reads anything: let the OS refuse through read_bytes instead
        real_read_bytes = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == "secret.py":
                raise PermissionError(13, "Permission denied", str(self))
            return real_read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    else:
        (tmp_path / "secret.py").chmod(0)
    code, out, err = run("check", ".", "--format", "concise", "--no-cache", cwd=tmp_path)
    assert "warning: skipped secret.py" in err and "Permission denied" in err
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE] and "secret.py" not in out


def test_a_broken_symlink_found_in_a_walk_is_a_warning(tmp_path: Path):
    (tmp_path / "old_train.py").symlink_to(tmp_path / "moved_away.py")
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, err = run("check", ".", "--format", "concise", cwd=tmp_path)
    assert "old_train.py" in err and "broken symbolic link" in err
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE]


def test_a_broken_symlink_named_on_the_command_line_is_an_error(tmp_path: Path):
    (tmp_path / "old_train.py").symlink_to(tmp_path / "moved_away.py")
    code, _, err = run("check", "old_train.py", cwd=tmp_path)
    assert code == 2 and "old_train.py" in err and "broken symbolic link" in err


def test_a_symlink_loop_in_a_walk_is_a_warning(tmp_path: Path):
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "parent").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, err = run("check", ".", "--format", "concise", cwd=tmp_path)
    assert "loop.py" in err and "models/parent" in err and err.count("symlink loop") == 2
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE]


def test_a_symlink_loop_named_on_the_command_line_is_an_error_that_says_so(tmp_path: Path):
    (tmp_path / "loop.py").symlink_to(tmp_path / "loop.py")
    code, _, err = run("check", "loop.py", cwd=tmp_path)
    assert code == 2 and "loop.py" in err and "symlink loop" in err


def test_a_directory_named_like_a_python_file_is_walked_not_read(tmp_path: Path):
    (tmp_path / "x.py").mkdir()
    (tmp_path / "x.py" / "train.py").write_text(TRAINING_LOOP)
    for target in (".", "x.py"):
        code, out, err = run("check", target, "--format", "concise", cwd=tmp_path)
        assert err == "" and code == 1 and gl101_lines(out, "x.py/train.py") == [STEP_LINE]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_never_opened(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.py")  # reading it would block forever
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, _ = run("check", ".", "--format", "concise", cwd=tmp_path)
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE]
    code, _, err = run("check", "pipe.py", cwd=tmp_path)
    assert code == 0 and "pipe.py" in err and "not a regular file" in err


def test_a_path_that_does_not_exist_is_an_error_and_the_rest_is_checked(tmp_path: Path):
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, err = run("check", "train.py", "trian.py", "--format", "concise", cwd=tmp_path)
    assert code == 2 and "trian.py: no such file or directory" in err
    assert gl101_lines(out, "train.py") == [STEP_LINE]


@pytest.mark.parametrize("spellings", [["train.py", "train.py"], ["./train.py", "train.py"],
                                       ["train.py", "{cwd}/train.py"], ["train.py", "."]])
def test_a_file_given_twice_or_by_two_paths_is_checked_once(tmp_path: Path, spellings: list[str]):
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    paths = [spelling.format(cwd=tmp_path) for spelling in spellings]
    code, out, _ = run("check", *paths, "--format", "concise", cwd=tmp_path)
    assert code == 1 and gl101_lines(out, "train.py") == [STEP_LINE] and "in 1 file" in out


# ----------------------------------------------------------------------------- configuration


def test_a_malformed_pyproject_is_a_configuration_error_naming_the_file_and_line(tmp_path: Path):
    (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nselect = ["GL1"\nignore = []\n')
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    code, out, err = run("check", "train.py", cwd=tmp_path)
    assert code == 2 and out == ""
    assert re.search(r"pyproject\.toml:\d+:\d+: invalid TOML at line \d+", err)


@pytest.mark.parametrize("where", ["pyproject", "command line"])
def test_an_unknown_rule_in_select_is_a_configuration_error_with_a_suggestion(tmp_path: Path, where: str):
    (tmp_path / "train.py").write_text(TRAINING_LOOP)
    args = ["check", "train.py"]
    if where == "pyproject":
        (tmp_path / "pyproject.toml").write_text('[tool.gradlint]\nselect = ["GL1O1"]\n')
    else:
        args += ["--select", "GL1O1"]
    code, out, err = run(*args, cwd=tmp_path)
    assert code == 2 and out == ""
    assert "unknown rule selector 'GL1O1'" in err and "did you mean 'GL101'" in err


def test_pythons_warnings_about_the_checked_code_are_not_printed(tmp_path: Path):
    """CPython warns about `x is 1` or `1j(2)` when it parses them; those are the user's
    linter's business, not noise on gradlint's stderr."""
    (tmp_path / "warns.py").write_text("x = 1j(2)\nif x is 1:\n    pass\nloss.backward()\n")
    code, out, err = run_process("check", "warns.py", "--no-cache", cwd=tmp_path)
    assert code == 0
    assert "SyntaxWarning" not in err and "is not callable" not in err


def test_code_for_a_newer_python_is_checked_not_called_a_syntax_error(tmp_path: Path):
    """`def f[T]` (PEP 695) is Python 3.12 syntax: a gradlint running on 3.11 must still check it."""
    (tmp_path / "generic.py").write_text(
        "import torch\n\n\ndef first[T](items: list[T]) -> T:\n    return items[0]\n\n\n"
        "def train(model, optimizer, loader):\n    for x, y in loader:\n        optimizer.zero_grad()\n"
        "        loss = (model(x) - y).pow(2).mean()\n        loss.backward()\n        optimizer.step()\n"
    )
    code, out, err = run_process("check", "generic.py", "--no-cache", "--format", "concise", "--fail-on", "info", cwd=tmp_path)
    assert "GL000" not in out and "skipped" not in err
    assert code == 1 and "generic.py:13:9: GL101" in out


def test_newer_python_syntax_in_a_file_no_rule_reads_is_not_a_syntax_error(tmp_path: Path):
    (tmp_path / "aliases.py").write_text("type Vector = list[float]\n\n\ndef first[T](items: list[T]) -> T:\n    return items[0]\n")
    (tmp_path / "broken.py").write_text("def oops(:\n    pass\n")
    code, out, err = run_process("check", ".", "--no-cache", "--format", "concise", cwd=tmp_path)
    assert "aliases.py" not in out and "skipped" not in err
    assert code == 1 and "broken.py:1:10: GL000" in out
