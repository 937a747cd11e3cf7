"""Hydra: a Lightning Trainer and model built from a `conf/` tree.

`@hydra.main(config_path="conf", config_name="config")` in the checked file names the config
(configs.hydra_app composes its `trainer` and `model` groups). In that file, a Trainer built from
the config, `Trainer(**cfg.trainer)` or `hydra.utils.instantiate(cfg.trainer)` (whose `_target_` is
Lightning's Trainer), takes its settings from the composed `trainer` group (keywords written in the
call win), and a model `hydra.utils.instantiate(cfg.model)` is the class its `_target_` names. The
config object is recognised by its attribute (`cfg.trainer`, `config["trainer"]`,
`OmegaConf.to_container(cfg.trainer)`), whatever the parameter is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis.calls import arg_value
from gradlint.analysis.values import string_value
from gradlint.index.frameworks.configs import HydraApp, TrainerConfig, hydra_app, setting_from
from gradlint.index.frameworks.places import bound_value
from gradlint.index.frameworks.reader import SettingReader, keyword_arg
from gradlint.index.frameworks.records import HYDRA_INSTANTIATE, HYDRA_MAIN, LIGHTNING_TRAINERS, LightningTrainer

if TYPE_CHECKING:
    from gradlint.index.facts import ModelFacts


def app_of(reader: SettingReader) -> HydraApp | None:
    """The Hydra app of the file: its `@hydra.main(...)` function's composed config."""
    derived = reader.model.derived
    if "frameworks.hydra" in derived:
        return derived["frameworks.hydra"]
    app = None
    for function in reader.model.all_functions:
        for decorator in function.node.decorators:
            call = decorator.decorator
            if not isinstance(call, cst.Call) or reader.model.qualify_call(call) not in HYDRA_MAIN:
                continue
            scope = reader.project.scope(reader.path, None)
            values = []
            for position, keyword in ((0, "config_path"), (1, "config_name")):
                written = arg_value(call, position, keyword)
                resolved = reader.project.resolver.resolve(written, scope) if written is not None else None
                values.append(resolved.value if resolved is not None and isinstance(resolved.value, str) else None)
            if values[0] is not None and values[1] is not None:
                app = hydra_app(reader.project, reader.path, values[0], values[1])
            break
        if app is not None:
            break
    derived["frameworks.hydra"] = app
    return app


def config_key(expression: cst.BaseExpression | None) -> str | None:
    """`trainer` for `cfg.trainer`, `config["trainer"]`, `OmegaConf.to_container(cfg.trainer, ...)`."""
    if isinstance(expression, cst.Call) and expression.args and (
        isinstance(expression.func, cst.Attribute) and expression.func.attr.value in ("to_container", "to_object")
    ):
        expression = expression.args[0].value
    if isinstance(expression, cst.Attribute) and isinstance(expression.value, cst.Name):
        return expression.attr.value
    if isinstance(expression, cst.Subscript) and isinstance(expression.value, cst.Name) and len(expression.slice) == 1:
        index = expression.slice[0].slice
        if isinstance(index, cst.Index):
            return string_value(index.value)
    return None


def unpacked_trainer(reader: SettingReader, site, app: HydraApp) -> TrainerConfig | None:
    """`Trainer(**cfg.trainer, ...)`: the composed group it unpacks."""
    for arg in site.node.args:
        if arg.star == "**":
            key = config_key(arg.value)
            if key is not None and key in app.groups:
                return app.groups[key]
    return None


def instantiated_trainer(reader: SettingReader, site, app: HydraApp) -> LightningTrainer | None:
    """`hydra.utils.instantiate(cfg.trainer, ...)` whose `_target_` is Lightning's Trainer."""
    config = app.groups.get(config_key(arg_value(site.node, 0, "config")) or "")
    if config is None:
        return None
    target = config.keys.get("_target_")
    if target is None or target.value not in LIGHTNING_TRAINERS:
        return None
    settings = []
    for key in ("gradient_clip_val", "gradient_clip_algorithm"):
        written = keyword_arg(site.node, key)
        settings.append(reader.setting(site.node, key, site.function) if written is not None else setting_from(reader.project, config, key))
    return LightningTrainer(site.node, site, settings[0], settings[1], source=f"`{config.label}`", config=config)


def instantiated_model(reader: SettingReader, app: HydraApp, argument, context, before) -> "ModelFacts | None":
    """The model of `model = hydra.utils.instantiate(cfg.model)`: the class its `_target_` names."""
    bound = bound_value(argument, reader.model, context, before)
    if not isinstance(bound, cst.Call) or reader.model.qualify_call(bound) not in HYDRA_INSTANTIATE:
        return None
    config = app.groups.get(config_key(arg_value(bound, 0, "config")) or "")
    if config is None or config.model_target is None:
        return None
    return class_facts(reader, config.model_target.value)


def class_facts(reader: SettingReader, qualified: str) -> "ModelFacts | None":
    """The facts of a class named by its import path (`models.lstm.Forecaster`)."""
    symbol = reader.project.resolve_qualified(reader.path, qualified)
    if symbol is None or symbol.kind != "class":
        return None
    return reader.project.facts.of_class(symbol)
