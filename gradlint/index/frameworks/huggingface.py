"""Hugging Face: `TrainingArguments(max_grad_norm=..., deepspeed=...)` and the `Trainer(model=...,
args=...)` calls that use them."""

from __future__ import annotations

import libcst as cst

from gradlint.analysis.calls import arg_value
from gradlint.index.frameworks.deepspeed import deepspeed_config
from gradlint.index.frameworks.places import bound_value, context_of, index_of
from gradlint.index.frameworks.reader import SettingReader, keyword_arg
from gradlint.index.frameworks.records import HF_TRAINERS, HF_TRAINING_ARGUMENTS, HfArguments


def find_training_arguments(reader: SettingReader) -> list[HfArguments]:
    found = []
    for site in reader.model.calls:
        if site.qualified not in HF_TRAINING_ARGUMENTS:
            continue
        deepspeed = keyword_arg(site.node, "deepspeed")
        config = None
        if deepspeed is not None:
            config = deepspeed_config(reader, deepspeed.value, site)
        found.append(
            HfArguments(
                site.node,
                site,
                reader.setting(site.node, "max_grad_norm", site.function),
                reader.setting(site.node, "deepspeed", site.function),
                config,
            )
        )
    if not found:
        return []
    by_call = {id(arguments.call): arguments for arguments in found}
    for site in reader.model.calls:
        if site.qualified not in HF_TRAINERS:
            continue
        context = context_of(reader.model, site.function)
        before = index_of(context, site.node) if context is not None else 0
        bound = bound_value(arg_value(site.node, 1, "args"), reader.model, context, before)
        arguments = by_call.get(id(bound)) if isinstance(bound, cst.Call) else None
        if arguments is None:
            continue
        argument = arg_value(site.node, 0, "model")
        facts = None
        if argument is not None:
            facts = reader.project.facts.of_expression(
                argument, reader.path, reader.model, context, before, site.function
            )
        arguments.models.append((site.node, facts))
    return found
