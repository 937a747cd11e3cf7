"""File discovery: which files a run looks at, what it skips, and what it warns about."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gradlint import discovery
from gradlint.config import Config
from gradlint.discovery import DEFAULT_EXCLUDES, discover


def touch(root: Path, *relative: str) -> None:
    for rel in relative:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("import torch\n", encoding="utf-8")


def found(tmp_path: Path, paths=None, **settings) -> list[str]:
    config = Config(root=tmp_path, **settings)
    result = discover(paths if paths is not None else [tmp_path], config)
    return [p.relative_to(tmp_path).as_posix() for p in result.files]


# --- the basics --------------------------------------------------------------------------------


def test_a_directory_is_walked_for_python_files_at_any_depth(tmp_path):
    touch(tmp_path, "train.py", "pkg/model.py", "pkg/sub/data.py", "README.md", "pkg/notes.txt", "pkg/stub.pyi")
    assert found(tmp_path) == ["pkg/model.py", "pkg/sub/data.py", "train.py"]


def test_files_are_absolute_sorted_and_de_duplicated(tmp_path):
    touch(tmp_path, "b.py", "a/z.py", "a/b.py")
    result = discover([tmp_path / "a", tmp_path, tmp_path / "b.py", tmp_path / "a" / "z.py"], Config(root=tmp_path))
    assert all(p.is_absolute() for p in result.files)
    assert result.files == sorted(result.files)
    assert [p.relative_to(tmp_path).as_posix() for p in result.files] == ["a/b.py", "a/z.py", "b.py"]


def test_relative_paths_are_resolved_against_the_working_directory(tmp_path, monkeypatch):
    touch(tmp_path, "src/train.py")
    monkeypatch.chdir(tmp_path)
    result = discover([Path("src")], Config(root=tmp_path))
    assert result.files == [tmp_path / "src" / "train.py"]


def test_paths_that_do_not_exist_are_reported_as_missing_and_the_rest_is_still_found(tmp_path):
    touch(tmp_path, "train.py")
    result = discover([tmp_path / "nope.py", tmp_path / "train.py", Path("also/missing")], Config(root=tmp_path))
    assert result.missing == [str(tmp_path / "nope.py"), "also/missing"]
    assert result.files == [tmp_path / "train.py"]


def test_an_empty_directory_gives_no_files_and_no_warnings(tmp_path):
    result = discover([tmp_path], Config(root=tmp_path))
    assert (result.files, result.warnings, result.missing) == ([], [], [])


# --- explicit files ----------------------------------------------------------------------------


def test_a_file_given_explicitly_is_included_even_when_an_exclude_pattern_matches_it(tmp_path):
    touch(tmp_path, "generated/model_pb2.py")
    (tmp_path / ".gitignore").write_text("generated/\n")
    path = tmp_path / "generated" / "model_pb2.py"
    assert found(tmp_path, [path], exclude=("*_pb2.py",)) == ["generated/model_pb2.py"]


def test_a_non_python_file_given_explicitly_is_included(tmp_path):
    touch(tmp_path, "train.ipynb")
    assert found(tmp_path, [tmp_path / "train.ipynb"]) == ["train.ipynb"]


def test_a_file_inside_a_default_excluded_directory_given_explicitly_is_included(tmp_path):
    touch(tmp_path, "build/lib/train.py")
    assert found(tmp_path, [tmp_path / "build" / "lib" / "train.py"]) == ["build/lib/train.py"]


# --- default excludes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "directory",
    [".git", ".venv", "venv", "__pycache__", "build", "dist", "node_modules", "site-packages", ".tox",
     ".mypy_cache", ".ipynb_checkpoints", "demo.egg-info", ".eggs"],
)
def test_default_excluded_directories_are_skipped_at_any_depth(tmp_path, directory):
    touch(tmp_path, "train.py", f"{directory}/x.py", f"pkg/{directory}/y.py")
    assert found(tmp_path) == ["train.py"]


def test_default_excludes_include_the_usual_tool_directories():
    for name in (".git", ".venv", "__pycache__", "build", "dist", "node_modules", "*.egg-info", ".ruff_cache"):
        assert name in DEFAULT_EXCLUDES


def test_any_directory_holding_pyvenv_cfg_is_a_virtual_environment_and_skipped(tmp_path):
    touch(tmp_path, "train.py", "env/lib/python3.11/site/torch.py", "myenv/bin/activate_this.py")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert found(tmp_path) == ["train.py"]


def test_a_directory_named_env_without_pyvenv_cfg_is_walked(tmp_path):
    touch(tmp_path, "env/rl_env.py")
    assert found(tmp_path) == ["env/rl_env.py"]


def test_an_excluded_directory_given_explicitly_is_walked(tmp_path):
    touch(tmp_path, "build/gen.py", "build/__pycache__/gen.py")
    assert found(tmp_path, [tmp_path / "build"]) == ["build/gen.py"]


# --- configured excludes -----------------------------------------------------------------------


def test_exclude_patterns_are_gitignore_style_and_relative_to_the_config_root(tmp_path):
    touch(tmp_path, "train.py", "generated/a.py", "src/generated/b.py", "legacy/old.py", "src/legacy/new.py")
    files = found(tmp_path, exclude=("generated", "/legacy/"))
    assert files == ["src/legacy/new.py", "train.py"]


def test_extend_exclude_adds_to_exclude(tmp_path):
    touch(tmp_path, "train.py", "proto/model_pb2.py", "scratch/try.py")
    assert found(tmp_path, exclude=("scratch/",), extend_exclude=("*_pb2.py",)) == ["train.py"]


def test_exclude_patterns_stay_anchored_at_the_root_when_a_subdirectory_is_walked(tmp_path):
    touch(tmp_path, "src/experiments/a.py", "src/model.py", "experiments/b.py")
    assert found(tmp_path, [tmp_path / "src"], exclude=("/src/experiments/",)) == ["src/model.py"]


def test_a_directory_excluded_by_pattern_is_walked_when_given_explicitly(tmp_path):
    touch(tmp_path, "scratch/try.py")
    assert found(tmp_path, [tmp_path / "scratch"], exclude=("scratch/",)) == ["scratch/try.py"]


# --- .gitignore --------------------------------------------------------------------------------


def test_the_root_gitignore_is_respected(tmp_path):
    touch(tmp_path, "train.py", "outputs/run1/model.py", "wandb/x.py", "tmp_debug.py")
    (tmp_path / ".gitignore").write_text("# runs\noutputs/\nwandb\ntmp_*.py\n")
    assert found(tmp_path) == ["train.py"]


def test_respect_gitignore_false_ignores_gitignore_files(tmp_path):
    touch(tmp_path, "train.py", "outputs/model.py")
    (tmp_path / ".gitignore").write_text("outputs/\n")
    assert found(tmp_path, respect_gitignore=False) == ["outputs/model.py", "train.py"]


def test_a_nested_gitignore_applies_only_to_its_subtree(tmp_path):
    touch(tmp_path, "a/cache.py", "a/keep.py", "b/cache.py")
    (tmp_path / "a" / ".gitignore").write_text("cache.py\n")
    assert found(tmp_path) == ["a/keep.py", "b/cache.py"]


def test_a_nested_gitignore_pattern_is_relative_to_its_own_directory(tmp_path):
    touch(tmp_path, "pkg/data/load.py", "data/load.py")
    (tmp_path / "pkg" / ".gitignore").write_text("/data/\n")
    assert found(tmp_path) == ["data/load.py"]


def test_a_deeper_gitignore_can_re_include_a_file_a_higher_one_ignores(tmp_path):
    touch(tmp_path, "scripts/gen_a.py", "scripts/gen_keep.py")
    (tmp_path / ".gitignore").write_text("gen_*.py\n")
    (tmp_path / "scripts" / ".gitignore").write_text("!gen_keep.py\n")
    assert found(tmp_path) == ["scripts/gen_keep.py"]


def test_negation_within_one_gitignore_re_includes_a_file(tmp_path):
    touch(tmp_path, "exp/a.py", "exp/b.py")
    (tmp_path / ".gitignore").write_text("exp/*\n!exp/b.py\n")
    assert found(tmp_path) == ["exp/b.py"]


def test_git_info_exclude_is_honoured(tmp_path):
    touch(tmp_path, "train.py", "private/notes.py")
    (tmp_path / ".git" / "info").mkdir(parents=True)
    (tmp_path / ".git" / "info" / "exclude").write_text("private/\n")
    assert found(tmp_path) == ["train.py"]


def test_the_repository_gitignore_applies_when_a_subdirectory_is_walked(tmp_path):
    touch(tmp_path, "src/train.py", "src/outputs/copy.py")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("outputs/\n")
    config = Config(root=tmp_path / "src")  # the configuration lives elsewhere than the repo top
    result = discover([tmp_path / "src"], config)
    assert result.files == [tmp_path / "src" / "train.py"]


def test_a_gitignore_above_the_repository_top_does_not_apply(tmp_path):
    touch(tmp_path, "repo/train.py")
    (tmp_path / ".gitignore").write_text("*.py\n")
    (tmp_path / "repo" / ".git").mkdir()
    result = discover([tmp_path / "repo"], Config(root=tmp_path / "repo"))
    assert result.files == [tmp_path / "repo" / "train.py"]


def test_a_gitignored_directory_given_explicitly_is_walked(tmp_path):
    touch(tmp_path, "outputs/model.py", "outputs/sub/data.py")
    (tmp_path / ".gitignore").write_text("outputs/\n*.log\n")
    assert found(tmp_path, [tmp_path / "outputs"]) == ["outputs/model.py", "outputs/sub/data.py"]


# --- pruning and speed ------------------------------------------------------------------------


def test_excluded_directories_are_pruned_before_descending(tmp_path, monkeypatch):
    touch(tmp_path, "train.py", "node_modules/a/b.py", "outputs/deep/er/x.py", "generated/y/z.py")
    (tmp_path / ".gitignore").write_text("outputs/\n")
    scanned: list[str] = []
    real_scandir = os.scandir

    def recording_scandir(path):
        scanned.append(Path(path).relative_to(tmp_path).as_posix())
        return real_scandir(path)

    monkeypatch.setattr(discovery.os, "scandir", recording_scandir)
    assert found(tmp_path, exclude=("generated/",)) == ["train.py"]
    assert scanned == ["."]


def test_a_five_thousand_file_tree_is_discovered_quickly(tmp_path):
    for d in range(50):
        directory = tmp_path / "pkg" / f"mod{d:02d}"
        directory.mkdir(parents=True)
        for f in range(100):
            (directory / f"f{f:03d}.py").write_text("")
    (tmp_path / ".gitignore").write_text("*.log\n/outputs/\ncheckpoints/\n*_tmp.py\n!keep_tmp.py\n")
    start = time.perf_counter()
    result = discover([tmp_path], Config(root=tmp_path, exclude=("legacy/", "*_pb2.py")))
    elapsed = time.perf_counter() - start
    assert len(result.files) == 5000
    assert elapsed < 3.0, f"discovery took {elapsed:.2f}s"


# --- symlinks and unreadable directories -------------------------------------------------------


def symlinks_supported(tmp_path: Path) -> bool:
    try:
        (tmp_path / ".probe").symlink_to(tmp_path)
    except (OSError, NotImplementedError):
        return False
    (tmp_path / ".probe").unlink()
    return True


def test_a_symlink_loop_is_a_warning_not_a_crash(tmp_path):
    if not symlinks_supported(tmp_path):
        pytest.skip("no symlinks here")
    touch(tmp_path, "pkg/train.py")
    (tmp_path / "pkg" / "again").symlink_to(tmp_path / "pkg", target_is_directory=True)
    result = discover([tmp_path], Config(root=tmp_path))
    assert result.files == [tmp_path / "pkg" / "train.py"]
    assert [(Path(p).name, "loop" in reason) for p, reason in result.warnings] == [("again", True)]


def test_a_self_referencing_symlink_is_a_warning(tmp_path):
    if not symlinks_supported(tmp_path):
        pytest.skip("no symlinks here")
    touch(tmp_path, "train.py")
    (tmp_path / "self").symlink_to(tmp_path / "self")
    result = discover([tmp_path], Config(root=tmp_path))
    assert result.files == [tmp_path / "train.py"]
    assert len(result.warnings) == 1 and "loop" in result.warnings[0][1]


def test_a_broken_symlink_to_a_python_file_is_a_warning(tmp_path):
    if not symlinks_supported(tmp_path):
        pytest.skip("no symlinks here")
    touch(tmp_path, "train.py")
    (tmp_path / "gone.py").symlink_to(tmp_path / "deleted.py")
    result = discover([tmp_path], Config(root=tmp_path))
    assert result.files == [tmp_path / "train.py"]
    assert result.warnings == [(str(tmp_path / "gone.py"), "broken symbolic link: its target does not exist")]


def test_a_symlinked_directory_outside_the_tree_is_followed(tmp_path):
    if not symlinks_supported(tmp_path):
        pytest.skip("no symlinks here")
    touch(tmp_path, "shared/common.py", "project/train.py")
    (tmp_path / "project" / "common").symlink_to(tmp_path / "shared", target_is_directory=True)
    result = discover([tmp_path / "project"], Config(root=tmp_path / "project"))
    assert result.files == [tmp_path / "project" / "common" / "common.py", tmp_path / "project" / "train.py"]
    assert result.warnings == []


def test_a_file_reachable_through_a_symlink_is_listed_once_under_its_real_name(tmp_path):
    if not symlinks_supported(tmp_path):
        pytest.skip("no symlinks here")
    touch(tmp_path, "src/model.py")
    (tmp_path / "alias").symlink_to(tmp_path / "src", target_is_directory=True)
    (tmp_path / "a_link.py").symlink_to(tmp_path / "src" / "model.py")
    result = discover([tmp_path], Config(root=tmp_path))
    assert result.files == [tmp_path / "src" / "model.py"]
    assert result.warnings == []


def test_an_unreadable_directory_is_a_warning_and_the_rest_is_still_found(tmp_path, monkeypatch):
    touch(tmp_path, "train.py", "secret/x.py")
    real_scandir = os.scandir

    def guarded_scandir(path):
        if Path(path) == tmp_path / "secret":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discovery.os, "scandir", guarded_scandir)
    result = discover([tmp_path], Config(root=tmp_path))
    assert result.files == [tmp_path / "train.py"]
    assert len(result.warnings) == 1
    path, reason = result.warnings[0]
    assert path == str(tmp_path / "secret")
    assert "permission denied" in reason
