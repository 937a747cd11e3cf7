"""LightningCLI: a Trainer built from YAML configs and `trainer_defaults`.

`LightningCLI(Model, DataModule, trainer_defaults={...}, parser_kwargs={...})` builds its Trainer
from, in order of precedence, the command line, the `--config` files, the `default_config_files`
and `trainer_defaults`. gradlint cannot see the command line; it reads the YAML configs beside the
script (configs.cli_configs) and reports one Trainer per config: its `trainer.gradient_clip_val`,
else `trainer_defaults["gradient_clip_val"]`, else nothing (no clipping). The model is the config's
`model.class_path` when it names one, else the CLI's `model_class`. With no config file beside the
script, only an explicit `trainer_defaults` entry is judged.
"""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.calls import arg_value
from gradlint.analysis.names import dotted_name
from gradlint.analysis.values import string_value
from gradlint.analysis.walk import walk
from gradlint.index.frameworks.configs import cli_configs, setting_from
from gradlint.index.frameworks.hydra import class_facts
from gradlint.index.frameworks.places import bound_value, context_of, index_of
from gradlint.index.frameworks.reader import SettingReader, keyword_arg
from gradlint.index.frameworks.records import ABSENT, LIGHTNING_CLI, UNRESOLVED, LightningFit, LightningTrainer, Setting

_KEYS = ("gradient_clip_val", "gradient_clip_algorithm")


def find_cli(reader: SettingReader) -> list[LightningTrainer]:
    found: list[LightningTrainer] = []
    for site in reader.model.calls:
        if site.qualified not in LIGHTNING_CLI:
            continue
        context = context_of(reader.model, site.function)
        before = index_of(context, site.node) if context is not None else 0
        model_class = arg_value(site.node, 0, "model_class")
        base = None
        if isinstance(model_class, (cst.Name, cst.Attribute)):
            symbol = reader.project.resolve_callee(reader.path, dotted_name(model_class) or "")
            if symbol is not None and symbol.kind == "class":
                base = reader.project.facts.of_class(symbol)
        defaults = _trainer_defaults(reader, site, context, before)
        configs = cli_configs(reader.project, reader.path, _config_files(reader, site, context, before))
        if not configs:
            clip = defaults.get("gradient_clip_val", ABSENT)
            if clip.state != "absent":
                found.append(
                    LightningTrainer(
                        site.node, site, clip, defaults.get("gradient_clip_algorithm", ABSENT),
                        [LightningFit(site.node, base)], source="`trainer_defaults`",
                    )
                )
            continue
        for config in configs:
            settings = []
            for key in _KEYS:
                setting = setting_from(reader.project, config, key)
                if setting.state == "absent":
                    setting = defaults.get(key, ABSENT)
                settings.append(setting)
            module = base
            if config.model_target is not None:
                module = class_facts(reader, config.model_target.value)
            found.append(
                LightningTrainer(
                    site.node, site, settings[0], settings[1], [LightningFit(site.node, module)],
                    source=f"`{config.label}`", config=config,
                )
            )
    return found


def _trainer_defaults(reader: SettingReader, site, context, before) -> dict[str, Setting]:
    """`trainer_defaults={...}` (a dict literal or `dict(...)`, also through a name): each clip key."""
    written = keyword_arg(site.node, "trainer_defaults")
    if written is None:
        return {}
    value = bound_value(written.value, reader.model, context, before)
    scope = reader.project.scope(reader.path, site.function)
    unknown = {key: UNRESOLVED for key in _KEYS}
    found: dict[str, Setting] = {}
    if isinstance(value, cst.Dict):
        for element in value.elements:
            if not isinstance(element, cst.DictElement):
                return unknown  # `**base`
            key = string_value(element.key)
            if key is None:
                return unknown
            if key in _KEYS:
                found[key] = reader.value(element, element.value, scope)
        return found
    if isinstance(value, cst.Call) and dotted_name(value.func) == "dict":
        for arg in value.args:
            if arg.keyword is None:
                return unknown
            if arg.keyword.value in _KEYS:
                found[arg.keyword.value] = reader.value(arg, arg.value, scope)
        return found
    return unknown


def _config_files(reader: SettingReader, site, context, before) -> list[str]:
    """`parser_kwargs={"default_config_files": [...]}` (also per subcommand) and `args=["--config", ...]`."""
    files: list[str] = []
    parser_kwargs = keyword_arg(site.node, "parser_kwargs")
    if parser_kwargs is not None:
        value = bound_value(parser_kwargs.value, reader.model, context, before)
        for node in walk(value) if value is not None else ():
            if isinstance(node, cst.DictElement) and string_value(node.key) == "default_config_files":
                files.extend(_strings(node.value))
            elif isinstance(node, cst.Arg) and node.keyword is not None and node.keyword.value == "default_config_files":
                files.extend(_strings(node.value))
    args = keyword_arg(site.node, "args")
    if args is not None:
        value = bound_value(args.value, reader.model, context, before)
        strings = _strings(value) if value is not None else []
        for position, text in enumerate(strings):
            if text in ("--config", "-c") and position + 1 < len(strings):
                files.append(strings[position + 1])
            elif text.startswith("--config="):
                files.append(text.split("=", 1)[1])
    return files


def _strings(node: cst.BaseExpression) -> list[str]:
    if isinstance(node, (cst.List, cst.Tuple)):
        return [text for text in (string_value(e.value) for e in node.elements) if text is not None]
    text = string_value(node)
    return [text] if text is not None else []
