"""Configuration: where it is found, what it may say, and how mistakes are reported."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from gradlint.config import Config, ConfigError, apply_overrides, load_config
from gradlint.findings import Severity
from gradlint.rules import RULES_BY_CODE


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def pyproject(directory: Path, body: str) -> Path:
    return write(directory / "pyproject.toml", "[tool.gradlint]\n" + textwrap.dedent(body))


def load(directory: Path, body: str) -> Config:
    pyproject(directory, body)
    return load_config([directory], cwd=directory)


ALL_CODES = frozenset(RULES_BY_CODE)


# --- defaults ----------------------------------------------------------------------------------


def test_without_any_configuration_every_rule_is_enabled_and_root_is_the_working_directory(tmp_path):
    config = load_config([tmp_path / "train.py"], cwd=tmp_path)
    assert config.config_path is None
    assert config.root == tmp_path
    assert config.enabled_codes() == ALL_CODES
    assert config.fail_on is Severity.WARNING
    assert config.respect_gitignore is True


def test_an_empty_tool_gradlint_table_gives_the_defaults(tmp_path):
    config = load(tmp_path, "")
    assert config.config_path == tmp_path / "pyproject.toml"
    assert config.enabled_codes() == ALL_CODES


# --- discovery of the file ---------------------------------------------------------------------


def test_the_nearest_pyproject_with_a_gradlint_table_wins_and_sets_the_root(tmp_path):
    pyproject(tmp_path, 'select = ["GL1"]\n')
    project = tmp_path / "project"
    pyproject(project, 'select = ["GL104"]\n')
    (project / "src").mkdir()
    config = load_config([project / "src"], cwd=tmp_path)
    assert config.config_path == project / "pyproject.toml"
    assert config.root == project
    assert config.enabled_codes() == {"GL104"}


def test_a_pyproject_without_a_gradlint_table_is_skipped(tmp_path):
    pyproject(tmp_path, 'ignore = ["GL109"]\n')
    project = tmp_path / "project"
    write(project / "pyproject.toml", '[project]\nname = "demo"\n')
    config = load_config([project], cwd=project)
    assert config.config_path == tmp_path / "pyproject.toml"
    assert "GL109" not in config.enabled_codes()


def test_an_unrelated_broken_pyproject_on_the_way_up_does_not_stop_the_search(tmp_path):
    pyproject(tmp_path, 'ignore = ["GL109"]\n')
    write(tmp_path / "pkg" / "pyproject.toml", "[project\nname = \n")
    config = load_config([tmp_path / "pkg"], cwd=tmp_path)
    assert config.config_path == tmp_path / "pyproject.toml"


def test_gradlint_toml_wins_over_the_pyproject_in_the_same_directory(tmp_path):
    pyproject(tmp_path, 'select = ["GL101"]\n')
    write(tmp_path / "gradlint.toml", 'select = ["GL104"]\n')
    config = load_config([tmp_path], cwd=tmp_path)
    assert config.config_path == tmp_path / "gradlint.toml"
    assert config.enabled_codes() == {"GL104"}


def test_dot_gradlint_toml_is_found_too(tmp_path):
    write(tmp_path / ".gradlint.toml", 'ignore = ["GL1"]\n')
    config = load_config([tmp_path / "a.py"], cwd=tmp_path)
    assert config.config_path == tmp_path / ".gradlint.toml"
    assert not any(code.startswith("GL1") for code in config.enabled_codes())


def test_the_search_starts_from_the_common_parent_of_the_paths(tmp_path):
    pyproject(tmp_path / "repo", 'ignore = ["GL101"]\n')
    (tmp_path / "repo" / "a").mkdir()
    (tmp_path / "repo" / "b").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = load_config([tmp_path / "repo" / "a" / "x.py", tmp_path / "repo" / "b"], cwd=elsewhere)
    assert config.root == tmp_path / "repo"


def test_relative_paths_are_taken_from_cwd(tmp_path):
    pyproject(tmp_path / "repo", 'ignore = ["GL101"]\n')
    config = load_config([Path("repo/train.py")], cwd=tmp_path)
    assert config.root == tmp_path / "repo"


def test_an_explicit_config_file_is_used_even_when_another_is_nearer(tmp_path):
    pyproject(tmp_path, 'select = ["GL101"]\n')
    explicit = write(tmp_path / "ci" / "strict.toml", 'select = ["GL103"]\nfail-on = "info"\n')
    config = load_config([tmp_path], config_file=explicit, cwd=tmp_path)
    assert config.config_path == explicit
    assert config.root == tmp_path / "ci"
    assert config.enabled_codes() == {"GL103"}
    assert config.fail_on is Severity.INFO


def test_in_gradlint_toml_rule_tables_sit_at_the_top_level(tmp_path):
    write(tmp_path / "gradlint.toml", '[GL104]\nmax-norm-limit = 5.0\nseverity = "error"\n')
    config = load_config([tmp_path], cwd=tmp_path)
    assert config.options_for("GL104") == {"max-norm-limit": 5.0}
    assert config.severity_for("GL104", Severity.WARNING) is Severity.ERROR


def test_an_explicit_pyproject_is_read_from_its_tool_gradlint_table(tmp_path):
    explicit = pyproject(tmp_path / "other", 'select = ["GL105"]\n')
    config = load_config([tmp_path], config_file=explicit, cwd=tmp_path)
    assert config.enabled_codes() == {"GL105"}


def test_an_explicit_pyproject_without_a_gradlint_table_is_a_configuration_error(tmp_path):
    explicit = write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"no \[tool.gradlint\] table"):
        load_config([tmp_path], config_file=explicit, cwd=tmp_path)


def test_a_missing_explicit_config_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="not found") as info:
        load_config([tmp_path], config_file=Path("nope.toml"), cwd=tmp_path)
    assert str(tmp_path / "nope.toml") in str(info.value)


# --- syntax and validation errors --------------------------------------------------------------


def test_a_toml_syntax_error_names_the_file_and_the_line(tmp_path):
    path = write(tmp_path / "pyproject.toml", '[tool.gradlint]\nselect = ["GL101"\nignore = []\n')
    with pytest.raises(ConfigError) as info:
        load_config([tmp_path], cwd=tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert info.value.path == path


def test_a_toml_error_at_the_end_of_the_file_names_the_last_line(tmp_path):
    path = write(tmp_path / "gradlint.toml", 'select = ["GL101"]\nignore = ["GL109"\n')
    with pytest.raises(ConfigError) as info:
        load_config([tmp_path], cwd=tmp_path)
    assert str(info.value).startswith(f"{path}:2")
    assert "line 2" in str(info.value)


def test_an_unknown_key_is_a_configuration_error_that_suggests_the_closest_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, 'selct = ["GL101"]\n')
    message = str(info.value)
    assert str(tmp_path / "pyproject.toml") in message
    assert "'selct'" in message
    assert "did you mean 'select'" in message
    assert "extend-select" in message  # lists what is allowed
    assert info.value.key == "selct"


def test_a_snake_case_key_suggests_its_kebab_case_spelling(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'extend-select'"):
        load(tmp_path, 'extend_select = ["GL101"]\n')


@pytest.mark.parametrize("selector", ["GL999", "XYZ", "GL9", ""])
def test_an_unknown_rule_selector_is_a_configuration_error(tmp_path, selector):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f'select = ["{selector}"]\n')
    message = str(info.value)
    assert "unknown rule selector" in message
    assert "'select'" in message
    assert "GL101" in message  # what is allowed


def test_a_near_miss_selector_gets_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'GL104'"):
        load(tmp_path, 'ignore = ["GL1O4"]\n')


def test_unknown_rule_id_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "[tool.gradlint.GL999]\nseverity = 'error'\n")
    assert "unknown rule id 'GL999'" in str(info.value)


def test_an_unknown_option_of_a_rule_is_a_configuration_error_naming_the_rule_and_its_options(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, "[tool.gradlint.GL104]\nmax-norm-limt = 10\n")
    message = str(info.value)
    assert "[tool.gradlint.GL104]" in message
    assert "GL104" in message and "ineffective-clip-threshold" in message
    assert "did you mean 'max-norm-limit'" in message
    assert "severity" in message


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('select = "GL101"\n', "select"),
        ("ignore = [101]\n", "ignore"),
        ('exclude = "build"\n', "exclude"),
        ('respect-gitignore = "yes"\n', "respect-gitignore"),
        ("fail-on = 2\n", "fail-on"),
        ('per-file-ignores = ["tests/*"]\n', "per-file-ignores"),
        ('per-file-ignores = { "tests/*" = "GL101" }\n', "tests/*"),
        ("GL104 = 5\n", "GL104"),
        ('[tool.gradlint.GL104]\nmax-norm-limit = "big"\n', "max-norm-limit"),
        ("[tool.gradlint.GL104]\nmax-norm-limit = true\n", "max-norm-limit"),
        ('[tool.gradlint.GL104]\nseverity = "fatal"\n', "severity"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_configuration_error_naming_the_key(tmp_path, body, key):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, body)
    assert f"'{key}'" in str(info.value)
    assert str(tmp_path / "pyproject.toml") in str(info.value)


def test_fail_on_rejects_an_unknown_level_and_lists_the_allowed_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, 'fail-on = "warn"\n')
    assert "info, warning, error, never" in str(info.value)
    assert "did you mean 'warning'" in str(info.value)


def test_tool_gradlint_that_is_not_a_table_is_a_configuration_error(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool]\ngradlint = "on"\n')
    with pytest.raises(ConfigError, match="expected a table"):
        load_config([tmp_path], cwd=tmp_path)


def test_a_tool_gradlint_table_inside_gradlint_toml_is_explained(tmp_path):
    write(tmp_path / "gradlint.toml", '[tool.gradlint]\nselect = ["GL101"]\n')
    with pytest.raises(ConfigError, match="top level"):
        load_config([tmp_path], cwd=tmp_path)


# --- selection ---------------------------------------------------------------------------------


def test_select_takes_prefixes_and_ignore_removes_codes(tmp_path):
    config = load(tmp_path, 'select = ["GL1"]\nignore = ["GL109", "GL110"]\n')
    expected = {c for c in ALL_CODES if c.startswith("GL1")} - {"GL109", "GL110"}
    assert config.enabled_codes() == expected


def test_extend_select_adds_to_select(tmp_path):
    config = load(tmp_path, 'select = ["GL104"]\nextend-select = ["GL000"]\n')
    assert config.enabled_codes() == {"GL104", "GL000"}


def test_a_more_specific_selector_wins_over_a_broader_one(tmp_path):
    config = load(tmp_path, 'ignore = ["GL1"]\nextend-select = ["GL104"]\n')
    assert "GL104" in config.enabled_codes()
    assert "GL101" not in config.enabled_codes()


def test_ignore_wins_over_select_at_the_same_specificity(tmp_path):
    config = load(tmp_path, 'select = ["GL101"]\nignore = ["GL101"]\n')
    assert config.enabled_codes() == frozenset()


def test_selectors_are_case_insensitive_and_rule_names_work_too(tmp_path):
    config = load(tmp_path, 'select = ["gl104", "missing-gradient-clipping"]\n')
    assert config.enabled_codes() == {"GL104", "GL101"}


# --- per-file-ignores --------------------------------------------------------------------------


def test_per_file_ignores_match_paths_relative_to_the_root(tmp_path):
    config = load(
        tmp_path,
        """
        [tool.gradlint.per-file-ignores]
        "tests/*" = ["GL101"]
        "scripts/legacy_*.py" = ["ALL"]
        """,
    )
    assert config.ignored_codes_for(tmp_path / "tests" / "test_train.py") == {"GL101"}
    assert config.ignored_codes_for(tmp_path / "scripts" / "legacy_rnn.py") == ALL_CODES
    assert config.ignored_codes_for(tmp_path / "scripts" / "train.py") == frozenset()
    assert config.ignored_codes_for(tmp_path / "src" / "tests.py") == frozenset()


def test_per_file_ignores_patterns_without_a_slash_match_at_any_depth(tmp_path):
    config = load(tmp_path, '[tool.gradlint.per-file-ignores]\n"conftest.py" = ["GL1"]\n')
    assert "GL101" in config.ignored_codes_for(tmp_path / "a" / "b" / "conftest.py")


def test_per_file_ignores_of_several_matching_patterns_add_up(tmp_path):
    config = load(
        tmp_path,
        '[tool.gradlint.per-file-ignores]\n"tests/*" = ["GL101"]\n"*_rnn.py" = ["GL108"]\n',
    )
    assert config.ignored_codes_for(tmp_path / "tests" / "test_rnn.py") == {"GL101", "GL108"}


def test_a_negated_per_file_ignores_pattern_applies_to_files_not_matching_it(tmp_path):
    config = load(tmp_path, '[tool.gradlint.per-file-ignores]\n"!src/**" = ["GL109"]\n')
    assert config.ignored_codes_for(tmp_path / "notebooks" / "x.py") == {"GL109"}
    assert config.ignored_codes_for(tmp_path / "src" / "x.py") == frozenset()


def test_per_file_ignores_selectors_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="unknown rule selector 'GL998'"):
        load(tmp_path, '[tool.gradlint.per-file-ignores]\n"tests/*" = ["GL998"]\n')


# --- rule options and severities ---------------------------------------------------------------


def test_rule_options_are_the_defaults_overlaid_with_the_configured_values(tmp_path):
    config = load(tmp_path, "[tool.gradlint.GL104]\nmax-norm-limit = 50\n")
    assert config.options_for("GL104") == {"max-norm-limit": 50.0}
    assert isinstance(config.options_for("GL104")["max-norm-limit"], float)  # coerced
    assert config.options_for("GL101") == RULES_BY_CODE["GL101"].default_options()


def test_options_for_an_unconfigured_rule_are_its_defaults(tmp_path):
    config = load_config([tmp_path], cwd=tmp_path)
    assert config.options_for("GL104") == {"max-norm-limit": 1000.0}


def test_a_rule_table_may_override_the_severity(tmp_path):
    config = load(tmp_path, '[tool.gradlint.GL109]\nseverity = "error"\n')
    assert config.severity_for("GL109", Severity.INFO) is Severity.ERROR
    assert config.severity_for("GL101", Severity.WARNING) is Severity.WARNING


def test_a_rule_table_may_be_named_by_the_rule_name(tmp_path):
    config = load(tmp_path, '[tool.gradlint.ineffective-clip-threshold]\nmax-norm-limit = 10.0\nseverity = "info"\n')
    assert config.options_for("GL104")["max-norm-limit"] == 10.0
    assert config.severity_for("GL104", Severity.WARNING) is Severity.INFO


@pytest.mark.parametrize(
    ("value", "expected"),
    [("info", Severity.INFO), ("warning", Severity.WARNING), ("ERROR", Severity.ERROR), ("never", None)],
)
def test_fail_on_accepts_the_severities_and_never(tmp_path, value, expected):
    assert load(tmp_path, f'fail-on = "{value}"\n').fail_on == expected


def test_all_documented_settings_are_read(tmp_path):
    config = load(
        tmp_path,
        """
        exclude = ["generated/"]
        extend-exclude = ["*_pb2.py"]
        respect-gitignore = false
        """,
    )
    assert config.exclude == ("generated/",)
    assert config.extend_exclude == ("*_pb2.py",)
    assert config.respect_gitignore is False


def test_a_config_can_be_sent_to_worker_processes(tmp_path):
    config = load(tmp_path, '[tool.gradlint.per-file-ignores]\n"tests/*" = ["GL101"]\n')
    config.ignored_codes_for(tmp_path / "tests" / "a.py")
    assert pickle.loads(pickle.dumps(config)) == config


# --- command-line overrides --------------------------------------------------------------------


def test_cli_select_replaces_the_file_selection_including_its_ignores(tmp_path):
    config = load(tmp_path, 'select = ["GL1"]\nignore = ["GL104"]\n')
    assert apply_overrides(config, select=["GL104"]).enabled_codes() == {"GL104"}


def test_cli_ignore_adds_to_the_file_selection(tmp_path):
    config = load(tmp_path, 'ignore = ["GL109"]\n')
    enabled = apply_overrides(config, ignore=["GL101"]).enabled_codes()
    assert enabled == ALL_CODES - {"GL109", "GL101"}


def test_cli_extend_select_re_enables_a_rule_the_file_ignores(tmp_path):
    config = load(tmp_path, 'ignore = ["GL1"]\n')
    enabled = apply_overrides(config, extend_select=["GL104"]).enabled_codes()
    assert "GL104" in enabled
    assert "GL101" not in enabled


def test_cli_ignore_of_a_prefix_wins_over_the_file_selection(tmp_path):
    config = load(tmp_path, 'select = ["GL101", "GL104"]\n')
    assert apply_overrides(config, ignore=["GL1"]).enabled_codes() == frozenset()


def test_cli_selectors_are_validated_like_the_file(tmp_path):
    config = load_config([tmp_path], cwd=tmp_path)
    with pytest.raises(ConfigError) as info:
        apply_overrides(config, select=["GL1O1"])
    assert "--select" in str(info.value)
    assert "unknown rule selector 'GL1O1'" in str(info.value)


def test_cli_exclude_replaces_and_extend_exclude_adds(tmp_path):
    config = load(tmp_path, 'exclude = ["a/"]\nextend-exclude = ["b/"]\n')
    changed = apply_overrides(config, exclude=["c/"], extend_exclude=["d/"])
    assert changed.exclude == ("c/",)
    assert changed.extend_exclude == ("b/", "d/")


@pytest.mark.parametrize(
    ("flag", "expected"), [("never", None), ("error", Severity.ERROR), (Severity.INFO, Severity.INFO)]
)
def test_cli_fail_on_replaces_the_file_value(tmp_path, flag, expected):
    config = load(tmp_path, 'fail-on = "warning"\n')
    assert apply_overrides(config, fail_on=flag).fail_on == expected


def test_cli_fail_on_rejects_unknown_levels(tmp_path):
    with pytest.raises(ConfigError, match="--fail-on"):
        apply_overrides(load_config([tmp_path], cwd=tmp_path), fail_on="sometimes")


def test_overrides_without_flags_leave_the_config_unchanged(tmp_path):
    config = load(tmp_path, 'ignore = ["GL101"]\nfail-on = "never"\n')
    assert apply_overrides(config) == config


# --- functions gradlint cannot read ---------------------------------------------------------------


def test_clip_and_detach_functions_name_what_code_that_cannot_be_read_does(tmp_path):
    config = load(
        tmp_path,
        """\
        clip-functions = ["mylib.train.clip_grads", "mylib.Trainer.rescale"]
        detach-functions = ["mylib.rnn.cut_history"]
        """,
    )
    assert config.clip_functions == ("mylib.train.clip_grads", "mylib.Trainer.rescale")
    assert config.detach_functions == ("mylib.rnn.cut_history",)
    assert config.declared_functions == {
        "mylib.train.clip_grads": "clip",
        "mylib.Trainer.rescale": "clip",
        "mylib.rnn.cut_history": "detach",
    }


@pytest.mark.parametrize(
    "body, problem",
    [
        ('clip-functions = "mylib.train.clip_grads"', "expected an array of strings"),
        ("detach-functions = [1, 2]", "expected an array of strings"),
        ('clip-functions = ["clip_grads"]', "expected qualified function names"),
        ('detach-functions = ["mylib.rnn.cut history"]', "expected qualified function names"),
    ],
)
def test_a_malformed_function_list_is_a_configuration_error(tmp_path, body, problem):
    with pytest.raises(ConfigError, match=problem):
        load(tmp_path, body)


def test_a_declared_clip_function_silences_gl101_through_the_cli_configuration(tmp_path):
    from gradlint.api import lint_paths

    write(
        tmp_path / "train.py",
        """\
        from mylib.train import tame_gradients


        def train(model, optimizer, loader, criterion):
            for x, y in loader:
                optimizer.zero_grad()
                criterion(model(x), y).backward()
                tame_gradients(model)
                optimizer.step()
        """,
    )
    plain = lint_paths([tmp_path], load(tmp_path, ""), cwd=tmp_path)
    declared = lint_paths([tmp_path], load(tmp_path, 'clip-functions = ["mylib.train.tame_gradients"]'), cwd=tmp_path)
    assert [f.code for f in plain.findings] == ["GL101"]
    assert declared.findings == []
