"""Configuration: find it, read it, validate it, and answer questions about it.

Settings live in `[tool.gradlint]` of a `pyproject.toml`, or at the top level of a `gradlint.toml`
/ `.gradlint.toml`. Keys are kebab-case, as in ruff. Every mistake is a `ConfigError` that names the
file, the key, what is wrong and what is allowed.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from gradlint.findings import Severity
from gradlint.rules import RULES_BY_CODE, expand_selector, get_rule

if TYPE_CHECKING:
    import pathspec

CONFIG_FILENAMES: tuple[str, ...] = (".gradlint.toml", "gradlint.toml")
"""Dedicated configuration files, in order of precedence; both win over `pyproject.toml`."""

FAIL_ON_CHOICES: tuple[str, ...] = ("info", "warning", "error", "never")

SETTING_KEYS: tuple[str, ...] = (
    "select",
    "extend-select",
    "ignore",
    "per-file-ignores",
    "exclude",
    "extend-exclude",
    "respect-gitignore",
    "fail-on",
    "clip-functions",
    "detach-functions",
)

RULE_SEVERITY_KEY = "severity"


class ConfigError(Exception):
    """A configuration problem the user has to fix; the message says where, what and what is allowed."""

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.key = key


@dataclass(frozen=True)
class Config:
    root: Path
    """Directory of the configuration file used, else the working directory."""
    config_path: Path | None = None
    select: tuple[str, ...] = ("ALL",)
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Gitignore-style pattern (relative to `root`; a leading `!` negates) -> selectors."""
    exclude: tuple[str, ...] = ()
    """Gitignore-style patterns relative to `root`, on top of the built-in default excludes."""
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    fail_on: Severity | None = Severity.WARNING
    """Lowest severity that makes the run fail; None means nothing does ("never")."""
    rule_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Rule code -> configured (validated, coerced) options; defaults are not repeated here."""
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    clip_functions: tuple[str, ...] = ()
    """Qualified names of functions that clip gradients, for code gradlint cannot read (a package
    that is not installed): `["mylib.train.clip_grads"]`."""
    detach_functions: tuple[str, ...] = ()
    """Qualified names of functions that detach a recurrent state (`["mylib.rnn.repackage"]`)."""

    @property
    def declared_functions(self) -> dict[str, str]:
        """Qualified name -> 'clip' / 'detach', as the project index takes them."""
        declared = {name: "detach" for name in self.detach_functions}
        declared.update({name: "clip" for name in self.clip_functions})
        return declared

    def enabled_codes(self) -> frozenset[str]:
        """select + extend-select minus ignore; the most specific selector wins, ignore wins ties."""
        return _resolve_selection(self.select + self.extend_select, self.ignore)

    def ignored_codes_for(self, path: Path) -> frozenset[str]:
        """Codes that `per-file-ignores` turns off for `path` (relative paths are taken from `root`)."""
        if not self.per_file_ignores:
            return frozenset()
        relative = _relative_posix(path, self.root)
        codes: set[str] = set()
        for pattern, selectors in self.per_file_ignores.items():
            negated = pattern.startswith("!")
            matched = _compile_patterns((pattern[1:] if negated else pattern,)).match_file(relative)
            if matched != negated:
                for selector in selectors:
                    codes |= _expand(selector)
        return frozenset(codes)

    def options_for(self, code: str) -> dict[str, Any]:
        """The rule's default options, overlaid with the configured ones."""
        rule = RULES_BY_CODE.get(code.upper())
        if rule is None:
            raise KeyError(f"unknown rule code {code!r}")
        options = rule.default_options()
        options.update(self.rule_options.get(rule.code, {}))
        return options

    def severity_for(self, code: str, default: Severity) -> Severity:
        return self.severity_overrides.get(code.upper(), default)


# --------------------------------------------------------------------------------------------
# Selectors


def _expand(selector: str) -> set[str]:
    """A selector is `ALL`, a code (`GL101`), a code prefix (`GL1`) or a rule name."""
    codes = expand_selector(selector)
    if not codes:
        rule = get_rule(selector)
        if rule is not None:
            codes = {rule.code}
    return codes


def _specificity(selector: str) -> int:
    key = selector.strip().upper()
    if key == "ALL":
        return 0
    if key.startswith("GL"):
        return len(key)
    return 99  # a rule name names exactly one rule


def _winning(code: str, selectors: Iterable[str]) -> int:
    """Specificity of the most specific selector naming `code`, -1 when none does."""
    return max((_specificity(s) for s in selectors if code in _expand(s)), default=-1)


@functools.lru_cache(maxsize=64)
def _resolve_selection(enable: tuple[str, ...], disable: tuple[str, ...]) -> frozenset[str]:
    enabled = set()
    for code in RULES_BY_CODE:
        on, off = _winning(code, enable), _winning(code, disable)
        if on > off:
            enabled.add(code)
    return frozenset(enabled)


def _selector_choices() -> list[str]:
    return ["ALL", *RULES_BY_CODE, *(rule.name for rule in RULES_BY_CODE.values())]


def _check_selector(value: Any, where: str, *, path: Path | None, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}: expected a rule selector string, got {type(value).__name__} {value!r}",
            path=path,
            key=key,
        )
    if not _expand(value):
        raise ConfigError(
            f"{where}: unknown rule selector {value!r}{_did_you_mean(value.strip().upper(), _selector_choices())}; "
            f"expected ALL, a rule code ({', '.join(RULES_BY_CODE)}), a code prefix such as GL1, or a rule name",
            path=path,
            key=key,
        )
    value = value.strip()
    return value.upper() if expand_selector(value) else value.lower()


# --------------------------------------------------------------------------------------------
# Paths


def _relative_posix(path: Path, root: Path) -> str:
    absolute = path if path.is_absolute() else root / path
    absolute = Path(os.path.normpath(absolute))
    try:
        return absolute.relative_to(root).as_posix()
    except ValueError:
        # Outside the root: anchored patterns cannot match, unanchored ones still match by name.
        return absolute.as_posix().lstrip("/")


@functools.lru_cache(maxsize=256)
def _compile_patterns(patterns: tuple[str, ...]) -> "pathspec.PathSpec":
    import pathspec  # here: most runs compile no pattern

    return pathspec.GitIgnoreSpec.from_lines(patterns)


# --------------------------------------------------------------------------------------------
# Messages


_DIGIT_LOOKALIKES = str.maketrans("OILS", "0115")


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    normalised = {c.lower().replace("_", "-"): c for c in choices}
    direct = normalised.get(word.lower().replace("_", "-"))
    if direct is not None and direct != word:
        return f" (did you mean {direct!r}?)"
    if word[:2].upper() == "GL":  # a letter typed for a digit ('GL1O1') is closer than any edit distance says
        lookalike = "GL" + word[2:].upper().translate(_DIGIT_LOOKALIKES)
        if lookalike in choices:
            return f" (did you mean {lookalike!r}?)"
    import difflib  # only for a mistake

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], n=1, cutoff=0.6)
        close = [normalised.get(c, c) for c in close]
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Source:
    """Where settings come from, for messages: the file and the table inside it."""

    def __init__(self, path: Path | None, table: str) -> None:
        self.path = path
        self.table = table

    def where(self, key: str, table: str | None = None) -> str:
        table = self.table if table is None else table
        prefix = f"{self.path}: " if self.path is not None else ""
        location = f"[{table}] " if table else ""
        return f"{prefix}{location}key {key!r}"

    def error(self, key: str, problem: str, table: str | None = None) -> ConfigError:
        return ConfigError(f"{self.where(key, table)}: {problem}", path=self.path, key=key)


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _string_list(source: _Source, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise source.error(key, f"expected an array of strings, got {_type_name(value)} {value!r}")
    return tuple(value)


_QUALIFIED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _qualified_names(source: _Source, key: str, value: Any) -> tuple[str, ...]:
    """`clip-functions = ["mylib.train.clip_grads"]`: dotted names as they are imported (a module
    and a function; a class's method as `module.Class.method`)."""
    names = _string_list(source, key, value)
    for name in names:
        if not _QUALIFIED_NAME.fullmatch(name):
            raise source.error(
                key,
                f"expected qualified function names like \"mylib.train.clip_grads\" (the module, a dot, "
                f"the function), got {name!r}",
            )
    return names


def _selector_list(source: _Source, key: str, value: Any, table: str | None = None) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise source.error(key, f"expected an array of rule selectors, got {_type_name(value)} {value!r}", table)
    where = source.where(key, table)
    return tuple(_check_selector(item, where, path=source.path, key=key) for item in value)


def _parse_fail_on(value: Any, complain) -> Severity | None:
    if isinstance(value, Severity):
        return value
    if not isinstance(value, str) or value.strip().lower() not in FAIL_ON_CHOICES:
        shown = value if not isinstance(value, str) else value.strip().lower()
        hint = _did_you_mean(shown, FAIL_ON_CHOICES) if isinstance(value, str) else ""
        raise complain(f"expected one of {', '.join(FAIL_ON_CHOICES)}, got {value!r}{hint}")
    text = value.strip().lower()
    return None if text == "never" else Severity.parse(text)


# --------------------------------------------------------------------------------------------
# Reading settings


def _settings_from_table(table: Mapping[str, Any], source: _Source, root: Path) -> Config:
    values: dict[str, Any] = {}
    rule_options: dict[str, dict[str, Any]] = {}
    severity_overrides: dict[str, Severity] = {}

    for key, value in table.items():
        if key in ("select", "extend-select", "ignore"):
            values[key.replace("-", "_")] = _selector_list(source, key, value)
        elif key in ("exclude", "extend-exclude"):
            values[key.replace("-", "_")] = _string_list(source, key, value)
        elif key == "respect-gitignore":
            if not isinstance(value, bool):
                raise source.error(key, f"expected a boolean (true or false), got {_type_name(value)} {value!r}")
            values["respect_gitignore"] = value
        elif key == "fail-on":
            values["fail_on"] = _parse_fail_on(value, lambda problem, key=key: source.error(key, problem))
        elif key == "per-file-ignores":
            values["per_file_ignores"] = _per_file_ignores(source, value)
        elif key in ("clip-functions", "detach-functions"):
            values[key.replace("-", "_")] = _qualified_names(source, key, value)
        elif get_rule(key) is not None:
            rule = get_rule(key)
            options, severity = _rule_table(source, key, rule, value)
            if options:
                rule_options[rule.code] = options
            if severity is not None:
                severity_overrides[rule.code] = severity
        else:
            raise _unknown_key(source, key)

    return Config(
        root=root,
        config_path=source.path,
        rule_options=rule_options,
        severity_overrides=severity_overrides,
        **values,
    )


def _unknown_key(source: _Source, key: str) -> ConfigError:
    allowed = f"allowed keys: {', '.join(SETTING_KEYS)}, or a per-rule table named by a rule code ({', '.join(RULES_BY_CODE)})"
    if re.fullmatch(r"(?i)gl\d+", key):
        hint = _did_you_mean(key.upper(), RULES_BY_CODE)
        return source.error(key, f"unknown rule id {key!r}{hint}; {allowed}")
    if key == "tool" and source.path is not None and source.path.name != "pyproject.toml":
        return source.error(
            key,
            f"unknown key; in {source.path.name} the settings live at the top level, not under "
            f"[tool.gradlint]; {allowed}",
        )
    hint = _did_you_mean(key, [*SETTING_KEYS, *RULES_BY_CODE])
    return source.error(key, f"unknown setting{hint}; {allowed}")


def _per_file_ignores(source: _Source, value: Any) -> dict[str, tuple[str, ...]]:
    key = "per-file-ignores"
    if not isinstance(value, dict):
        raise source.error(
            key, f'expected a table of glob pattern = ["GL101", ...], got {_type_name(value)} {value!r}'
        )
    result: dict[str, tuple[str, ...]] = {}
    table = f"{source.table}.{key}" if source.table else key
    for pattern, selectors in value.items():
        result[pattern] = _selector_list(source, pattern, selectors, table)
    return result


def _rule_table(source: _Source, key: str, rule, value: Any) -> tuple[dict[str, Any], Severity | None]:
    if not isinstance(value, dict):
        raise source.error(
            key,
            f"expected a table of options for rule {rule.code} ({rule.name}), got {_type_name(value)} {value!r}",
        )
    table = f"{source.table}.{key}" if source.table else key
    by_name = {option.name: option for option in rule.options}
    allowed_names = [*by_name, RULE_SEVERITY_KEY]
    options: dict[str, Any] = {}
    severity: Severity | None = None
    for name, raw in value.items():
        if name == RULE_SEVERITY_KEY:
            choices = [s.label for s in Severity]
            if not isinstance(raw, str) or raw.strip().lower() not in choices:
                hint = _did_you_mean(raw.strip().lower(), choices) if isinstance(raw, str) else ""
                raise source.error(name, f"expected one of {', '.join(choices)}, got {raw!r}{hint}", table)
            severity = Severity.parse(raw)
        elif name in by_name:
            try:
                coerced = by_name[name].coerce(raw)
            except ValueError as exc:
                raise source.error(name, str(exc), table) from None
            if coerced != by_name[name].default:
                options[name] = coerced
        else:
            hint = _did_you_mean(name, allowed_names)
            raise source.error(
                name,
                f"unknown option for rule {rule.code} ({rule.name}){hint}; allowed: {', '.join(allowed_names)}",
                table,
            )
    return options, severity


# --------------------------------------------------------------------------------------------
# Finding and loading the file


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}", path=path) from None
    return _parse_toml(text, path)


def _parse_toml(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
        if position:
            line, column = position.group(1), position.group(2)
        elif "end of document" in message:
            line, column = str(max(1, len(text.splitlines()))), None
        else:
            raise ConfigError(f"{path}: invalid TOML: {message}", path=path) from None
        reason = re.sub(r"\s*\(at [^)]*\)", "", message).strip()
        location = f"{line}:{column}" if column else line
        at = f"line {line}, column {column}" if column else f"line {line} (end of file)"
        raise ConfigError(f"{path}:{location}: invalid TOML at {at}: {reason}", path=path) from None


def _gradlint_table_of_pyproject(path: Path, document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tool = document.get("tool")
    if not isinstance(tool, dict) or "gradlint" not in tool:
        return None
    table = tool["gradlint"]
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path}: key 'tool.gradlint': expected a table ([tool.gradlint]), got {_type_name(table)} {table!r}",
            path=path,
            key="tool.gradlint",
        )
    return table


def _config_from_file(path: Path) -> Config:
    document = _read_toml(path)
    if path.name == "pyproject.toml":
        table = _gradlint_table_of_pyproject(path, document)
        if table is None:
            raise ConfigError(
                f"{path}: no [tool.gradlint] table; add one, or name a gradlint.toml whose top level holds "
                f"the settings",
                path=path,
            )
        return _settings_from_table(table, _Source(path, "tool.gradlint"), path.parent)
    return _settings_from_table(document, _Source(path, ""), path.parent)


def find_config_file(start: Path) -> Path | None:
    """Walk up from `start`: `.gradlint.toml` > `gradlint.toml` > a `pyproject.toml` with [tool.gradlint]."""
    for directory in (start, *start.parents):
        for name in CONFIG_FILENAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _pyproject_has_gradlint(pyproject):
            return pyproject
    return None


def _pyproject_has_gradlint(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if "gradlint" not in text:
        return False  # cheap, and an unrelated broken pyproject.toml never stops a run
    return _gradlint_table_of_pyproject(path, _parse_toml(text, path)) is not None


def _common_parent(paths: Sequence[Path], cwd: Path) -> Path:
    if not paths:
        return cwd
    directories = []
    for path in paths:
        absolute = Path(os.path.normpath(cwd / path))
        directories.append(str(absolute if absolute.is_dir() else absolute.parent))
    try:
        return Path(os.path.commonpath(directories))
    except ValueError:
        return cwd


def load_config(paths: Sequence[Path], config_file: Path | None = None, cwd: Path | None = None) -> Config:
    cwd = Path(os.path.abspath(cwd if cwd is not None else Path.cwd()))
    if config_file is not None:
        return _config_from_file(Path(os.path.normpath(cwd / config_file)))
    found = find_config_file(_common_parent(paths, cwd))
    if found is None:
        return Config(root=cwd)
    return _config_from_file(found)


# --------------------------------------------------------------------------------------------
# Command-line overrides


def apply_overrides(
    config: Config,
    *,
    select: Sequence[str] | None = None,
    extend_select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    extend_exclude: Sequence[str] | None = None,
    fail_on: Severity | str | None = None,
) -> Config:
    """Layer command-line flags over the file's settings, the way ruff does.

    `--select` starts a fresh selection (the file's select, extend-select and ignore are dropped);
    otherwise `--extend-select` and `--ignore` adjust the file's resolved selection, and win over it.
    `--exclude` replaces the file's `exclude`; `--extend-exclude` adds to `extend-exclude`.
    `fail_on` accepts a Severity or "info"/"warning"/"error"/"never"; None leaves it unchanged.
    """
    source = _Source(None, "")

    def flag_selectors(flag: str, values: Sequence[str] | None) -> tuple[str, ...] | None:
        if values is None:
            return None
        return tuple(_check_selector(value, f"--{flag}", path=None, key=flag) for value in values)

    cli_select = flag_selectors("select", select)
    cli_extend = flag_selectors("extend-select", extend_select)
    cli_ignore = flag_selectors("ignore", ignore)
    changes: dict[str, Any] = {}

    if cli_select is not None:
        changes.update(select=cli_select, extend_select=cli_extend or (), ignore=cli_ignore or ())
    elif cli_extend is not None or cli_ignore is not None:
        base = config.enabled_codes()
        extend, drop = cli_extend or (), cli_ignore or ()
        enabled = set()
        for code in RULES_BY_CODE:
            on, off = _winning(code, extend), _winning(code, drop)
            if on > off or (on == off == -1 and code in base):
                enabled.add(code)
        changes.update(select=tuple(sorted(enabled)), extend_select=(), ignore=())

    if exclude is not None:
        changes["exclude"] = _string_list(source, "--exclude", list(exclude))
    if extend_exclude is not None:
        changes["extend_exclude"] = config.extend_exclude + _string_list(
            source, "--extend-exclude", list(extend_exclude)
        )
    if fail_on is not None:
        changes["fail_on"] = _parse_fail_on(
            fail_on, lambda problem: ConfigError(f"--fail-on: {problem}", key="fail-on")
        )
    return replace(config, **changes) if changes else config


__all__ = [
    "CONFIG_FILENAMES",
    "Config",
    "ConfigError",
    "apply_overrides",
    "find_config_file",
    "load_config",
]
