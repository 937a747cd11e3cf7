"""Training configs beside the code: LightningCLI YAML files and Hydra `conf/` trees.

A Lightning `Trainer` is often not written in Python at all: `LightningCLI(Model, Data)` builds it
from a YAML file given with `--config` (and from `trainer_defaults=` and `default_config_files`),
and a Hydra app builds it from `conf/config.yaml` and its `trainer/<option>.yaml` group. This
module finds those files and reads the keys gradlint needs (`trainer.gradient_clip_val`, the
model's `class_path` or `_target_`, Hydra's `defaults` list) with `yamlish`, and says where each
value comes from (`configs/lstm.yaml:7`).

Which YAML files count, for a `LightningCLI` in `main.py`:

- the `default_config_files` of its `parser_kwargs` (relative to the script's folder or a project
  root);
- the `*.yaml`/`*.yml` files in the script's folder and in `config/`, `configs/`, `conf/` under it
  (two levels deep), that have a top-level `trainer:` mapping (or `fit: trainer:`), the shape of a
  LightningCLI config. A YAML without one says nothing about the Trainer and is ignored.

For Hydra, `@hydra.main(config_path=..., config_name=...)` names the primary config; its
`defaults` list picks `trainer: <option>` from `<config_path>/trainer/<option>.yaml`, and the
primary's own `trainer:` section is merged over it (or under it, when `_self_` comes first). Values
set on the command line (`trainer.gradient_clip_val=1.0`) cannot be seen.

Files are read from the run's sources first, then from disk; what is read or listed is noted as a
dependency for the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradlint.index.frameworks.records import ABSENT, UNRESOLVED, Setting
from gradlint.index.frameworks.yamlish import UNKNOWN, YamlMap, load

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

YAML_LIMIT = 1_000_000
"""Bytes: a larger YAML file is not read."""
CONFIG_FOLDERS = ("config", "configs", "conf")
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Located:
    """A config value and where it is written."""

    value: Any
    path: Path
    line: int


@dataclass(eq=False)
class TrainerConfig:
    """The Trainer section a config gives, key by key, and the model it names."""

    label: str
    """For messages: `configs/lstm.yaml`, or `conf/config.yaml + conf/trainer/default.yaml`."""
    keys: dict[str, Located] = field(default_factory=dict)
    known: bool = True
    """False when part of the section could not be read (an alias, a tag): absent keys are then unknown."""
    model_target: Located | None = None
    """The model's `class_path` (LightningCLI) or `_target_` (Hydra), when the config names one."""
    paths: tuple[Path, ...] = ()


# ------------------------------------------------------------------------------ files


def read_yaml(project: "ProjectIndex", path: Path) -> YamlMap | None:
    """A YAML mapping from the run's sources or from disk (None when missing, too large or unread)."""
    project.deps.note(("file", str(path)))
    table = project.lasting_table("frameworks.yaml")
    if path not in table:
        table[path] = _read(project, path)
    return table[path]


def _read(project: "ProjectIndex", path: Path) -> YamlMap | None:
    source = project.sources.get(path)
    text = source.text if source is not None else None
    if text is None:
        try:
            if not path.is_file() or path.stat().st_size > YAML_LIMIT:
                return None
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    data = load(text)
    return data if isinstance(data, YamlMap) else None


def entries(project: "ProjectIndex", folder: Path) -> list[str]:
    """The names in a folder: files of the run there, and what is on disk."""
    project.deps.note(("listing", str(folder)))
    names = {path.name for path in project.sources if path.parent == folder}
    names |= {path.relative_to(folder).parts[0] for path in project.sources if folder in path.parents}
    try:
        names |= {entry.name for entry in folder.iterdir()}
    except OSError:
        pass
    return sorted(names)


def _is_dir(project: "ProjectIndex", folder: Path) -> bool:
    if any(folder in path.parents for path in project.sources):
        return True
    try:
        return folder.is_dir()
    except OSError:
        return False


def display(project: "ProjectIndex", path: Path) -> str:
    return project.display(path)


def setting_from(project: "ProjectIndex", config: TrainerConfig, key: str) -> Setting:
    """A key of a config's Trainer section as a `Setting` whose origin is its file and line."""
    located = config.keys.get(key)
    if located is None:
        return ABSENT if config.known else UNRESOLVED
    return Setting("value", None, located.value, where(project, located))


def where(project: "ProjectIndex", located: Located) -> str:
    return f"{display(project, located.path)}:{located.line}"


# ------------------------------------------------------------------------ LightningCLI


def cli_configs(project: "ProjectIndex", script: Path, explicit: list[str]) -> list[TrainerConfig]:
    """The LightningCLI configs beside a script: its default config files, then the YAML files of
    its folder and config folders that have a `trainer:` section."""
    found: list[TrainerConfig] = []
    seen: set[Path] = set()
    candidates: list[Path] = []
    for written in explicit:
        relative = Path(written)
        options = [relative] if relative.is_absolute() else [script.parent / relative, *(root / relative for root in project.roots)]
        options = [Path(os.path.normpath(option)) for option in options]
        candidates.extend(option for option in options if option.suffix in _SUFFIXES)
    candidates.extend(_yaml_files(project, script.parent, depth=0))
    for path in candidates:
        if path in seen:
            continue
        seen.add(path)
        data = read_yaml(project, path)
        config = _cli_config(project, path, data) if data is not None else None
        if config is not None:
            found.append(config)
    return found


def _yaml_files(project: "ProjectIndex", folder: Path, depth: int) -> list[Path]:
    files: list[Path] = []
    names = entries(project, folder)
    for name in names:
        if name.endswith(_SUFFIXES):
            files.append(folder / name)
    for name in names:
        inner = folder / name
        if depth == 0 and name not in CONFIG_FOLDERS:
            continue
        if depth < 2 and not name.endswith(_SUFFIXES) and "." not in name and _is_dir(project, inner):
            files.extend(_yaml_files(project, inner, depth + 1))
    return files


def _cli_config(project: "ProjectIndex", path: Path, data: YamlMap) -> TrainerConfig | None:
    section, holder = data.get("trainer"), data
    if "trainer" not in data and isinstance(data.get("fit"), YamlMap) and "trainer" in data["fit"]:
        holder = data["fit"]
        section = holder.get("trainer")
    if "trainer" not in holder or not (section is None or isinstance(section, YamlMap)):
        return None
    config = TrainerConfig(display(project, path), paths=(path,))
    if section is not None:
        _take(config, section, path)
    model = holder.get("model", data.get("model"))
    if isinstance(model, YamlMap) and isinstance(model.get("class_path"), str):
        config.model_target = Located(model["class_path"], path, model.lines.get("class_path", 0))
    elif isinstance(model, str) and "." in model:
        config.model_target = Located(model, path, holder.lines.get("model", 0))
    return config


def _take(config: TrainerConfig, section: YamlMap, path: Path) -> None:
    for key, value in section.items():
        if value is UNKNOWN:
            config.known = False
            continue
        config.keys[key] = Located(value, path, section.lines.get(key, 0))


# ------------------------------------------------------------------------------ Hydra


@dataclass(eq=False)
class HydraApp:
    """A Hydra app's composed config: each top-level group the trainer and model need."""

    folder: Path
    primary: Path
    groups: dict[str, TrainerConfig] = field(default_factory=dict)


def hydra_app(project: "ProjectIndex", script: Path, config_path: str, config_name: str) -> HydraApp | None:
    folder = Path(os.path.normpath(script.parent / config_path))
    name = config_name[: -len(".yaml")] if config_name.endswith(".yaml") else config_name
    primary = folder / f"{name}.yaml"
    data = read_yaml(project, primary)
    if data is None:
        return None
    app = HydraApp(folder, primary)
    for group in ("trainer", "model"):
        composed = _compose(project, app, data, group)
        if composed is not None:
            app.groups[group] = composed
    return app


def _compose(project: "ProjectIndex", app: HydraApp, data: YamlMap, group: str) -> TrainerConfig | None:
    """`cfg.<group>`: the option the defaults list picks for the group, merged with the primary's
    own `<group>:` section in the defaults list's order (`_self_` last unless listed)."""
    defaults = data.get("defaults")
    chosen: tuple[Path, YamlMap] | None = None
    self_first = False
    unknown = False
    if isinstance(defaults, list):
        seen_self = False
        for item in defaults:
            if item == "_self_":
                seen_self = True
                continue
            if not isinstance(item, YamlMap) or len(item) != 1:
                continue
            key, option = next(iter(item.items()))
            key = key.removeprefix("optional ").strip().lstrip("/")
            if key.startswith("override "):
                continue
            if key != group:
                continue
            if not isinstance(option, str):
                unknown = option is not None
                continue
            path = app.folder / group / f"{option}.yaml"
            loaded = read_yaml(project, path)
            if loaded is None:
                unknown = True
                continue
            chosen = (path, loaded)
            self_first = seen_self
    own = data.get(group)
    if chosen is None and not isinstance(own, YamlMap):
        if unknown:
            return TrainerConfig(display(project, app.primary), known=False, paths=(app.primary,))
        return None
    paths = ([chosen[0]] if chosen else []) + ([app.primary] if isinstance(own, YamlMap) else [])
    config = TrainerConfig(" + ".join(display(project, path) for path in paths), paths=tuple(paths), known=not unknown)
    layers: list[tuple[Path, YamlMap]] = []
    if chosen is not None:
        layers.append(chosen)
    if isinstance(own, YamlMap):
        layers.insert(0 if self_first else len(layers), (app.primary, own))
    for path, section in layers:
        if "defaults" in section and path != app.primary:
            config.known = False  # a group file with its own defaults list: not composed here
        _take(config, section, path)
    target = config.keys.get("_target_")
    if target is not None and isinstance(target.value, str):
        config.model_target = target
    return config
