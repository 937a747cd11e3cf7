"""GL203 long-unrolled-vanilla-rnn: A vanilla RNN is trained on long sequences, so its gradient is a product of a hundred or more Jacobians."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from gradlint.analysis.layers import Layer, VANILLA_KINDS, json_value, layers, owner_class
from gradlint.index.layer_config import resolve_layer
from gradlint.analysis.model import FileModel
from gradlint.analysis.steps import training_steps
from gradlint.analysis.values import string_value
from gradlint.findings import Severity
from gradlint.index.summary import FileSummary
from gradlint.index.values import Scope
from gradlint.rules.base import Diagnostic, Option, Rule, RuleContext

# The names a training sequence length goes by, most specific first.
_NAMES = (
    re.compile(r"^(train_|max_)?bptt(_len)?$", re.IGNORECASE),
    re.compile(r"^(train_|max_)?(seq_len|seq_length|sequence_length)$", re.IGNORECASE),
    re.compile(r"^block_size$", re.IGNORECASE),
    re.compile(r"^T$"),
    re.compile(r"^window$", re.IGNORECASE),
    re.compile(r"^(max_len|max_length)$", re.IGNORECASE),
)
_CONFIG_FILE = re.compile(
    r"^(\w+_)?(config|configs|conf|cfg|settings|hparams|hyperparams|hyperparameters|params|defaults|constants|options)"
    r"(_\w+)?$",
    re.IGNORECASE,
)
_CONFIG_FOLDER = re.compile(r"^(config|configs|conf|cfg|settings|hparams)$", re.IGNORECASE)



@dataclass
class Length:
    value: Any
    name: str
    origin: str


class LongUnrolledVanillaRnn(Rule):
    code = "GL203"
    name = "long-unrolled-vanilla-rnn"
    severity = Severity.WARNING
    summary = "A vanilla RNN is trained on long sequences, so its gradient is a product of a hundred or more Jacobians."
    options = (
        Option("min-length", 100, "Report vanilla RNNs trained on sequences at least this long."),
    )
    triggers = ("RNN",)

    def check(self, model: FileModel, ctx: RuleContext) -> Iterator[Diagnostic]:
        minimum = ctx.options["min-length"]
        path = ctx.source.path
        cells_seen: set[Any] = set()
        for layer in layers(model):
            if layer.kind not in VANILLA_KINDS:
                continue
            if layer.kind == "RNNCell":
                # One finding per model for a stack of cells.
                key = layer.owner or id(layer.function)
                if key in cells_seen:
                    continue
                cells_seen.add(key)
            length = sequence_length(ctx, model, layer)
            if length is None:
                continue
            value = length.value
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < minimum:
                continue
            config = resolve_layer(ctx.project, path, model, layer.node, layer.kind, layer.function)
            nonlinearity = config.get("nonlinearity")
            activation = f"{nonlinearity} " if isinstance(nonlinearity, str) else ""
            steps = f"{value:g}"
            yield Diagnostic(
                layer.node,
                f"This vanilla {activation}`nn.{layer.kind}` is trained on sequences of {steps} steps "
                f"(`{length.name}`: {length.origin}): backpropagation through time multiplies {steps} "
                f"recurrent Jacobians, so the gradient explodes or vanishes exponentially with the length.",
                hint=(
                    f"Use a gated `nn.LSTM`/`nn.GRU`, or truncate backpropagation to shorter chunks "
                    f"(`{length.name}` of 35-50 and detach the hidden state between chunks), and clip gradients "
                    f"with `torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`."
                ),
                data=config.data(seq_len=json_value(value), seq_len_name=length.name, seq_len_origin=length.origin),
            )


# ---------------------------------------------------------------------- where to look


def sequence_length(ctx: RuleContext, model: FileModel, layer: Layer) -> Length | None:
    """The sequence length the layer is trained on: from the training script that trains it,
    else the model's own module, else a config module of the project. The first file that
    names a sequence length decides (unresolved there: None)."""
    project = ctx.project
    path = ctx.source.path
    trainers = trained_in(project, path, model, layer, ctx.source.line_of(layer.node))
    sources: list[tuple[Path, list[str | None]]] = []
    for train_path, function in trainers:
        for known in sources:
            if known[0] == train_path:
                known[1].append(function)
                break
        else:
            sources.append((train_path, [function]))
    if not any(source[0] == path for source in sources):
        sources.append((path, []))
    anchors = [source[0] for source in sources]
    for config_path in _config_files(project, anchors):
        sources.append((config_path, []))
    for source_path, functions in sources:
        summary = project.summary(source_path)
        if summary is None:
            continue
        found = _named_length(project, source_path, summary, functions)
        if found is not None:
            return found if found.value is not None else None
    return None


def trained_in(project: Any, path: Path, model: FileModel, layer: Layer, line: int) -> list[tuple[Path, str | None]]:
    """The files (and the keys of the step functions) whose training steps train the model
    holding `layer`: the optimizer's model resolves to it, or (when no step resolves) the file
    constructs its class and has a training step."""
    table = project.deps.memo(project.lasting_table("gl203.training"), "table", lambda: _training_table(project))
    found = list(table.get((str(path), line), []))
    if found:
        return found
    info = owner_class(model, layer.function)
    symbol = project.class_symbol(path, info) if info is not None else None
    if symbol is None:
        return []
    for site_path, site in project.call_sites(symbol):
        if _has_training_steps(project, site_path):
            entry = (site_path, site.function.key if site.function is not None else None)
            if entry not in found:
                found.append(entry)
    return found


def _has_training_steps(project: Any, path: Path) -> bool:
    """Whether a file holds a training step (its libcst model is read once per run for this)."""
    memo = project.lasting_table("gl203.has_steps")
    return project.deps.memo(memo, str(path), lambda: _steps_in(project, path))


def _steps_in(project: Any, path: Path) -> bool:
    model = project.model(path)
    return model is not None and bool(training_steps(model))


def _training_table(project: Any) -> dict[tuple[str, int], list[tuple[Path, str | None]]]:
    """(file, line of a recurrent layer call) -> the files and step functions that train a model
    holding it, over the whole run. Built once per run; it holds no tree."""
    table: dict[tuple[str, int], list[tuple[Path, str | None]]] = {}
    # A training step is an optimizer step paired with a backward: both calls are in its file.
    for step_path, step_model in project.files_with(all_of=("backward", "step(")):
        for step in training_steps(step_model):
            facts = project.facts.trained_by(step, step_path)
            if facts is None:
                continue
            function = step.context.function
            entry = (step_path, function.key if function is not None else None)
            for site in facts.recurrent:
                found = table.setdefault((str(site.path), project.line_of(site.path, site.node)), [])
                if entry not in found:
                    found.append(entry)
    return table


def _config_files(project: Any, anchors: list[Path]) -> list[Path]:
    """Files of the run named like configuration (`config.py`, `configs/rnn.py`, `hparams.py`)
    in the folder of a training or model file or above it (or in a config folder there)."""
    folders = {folder for anchor in anchors for folder in (anchor.parent, *anchor.parent.parents)}
    found = []
    for candidate in project.paths():
        if candidate in anchors or candidate.suffix != ".py":
            continue
        named = _CONFIG_FILE.match(candidate.stem)
        in_config_folder = _CONFIG_FOLDER.match(candidate.parent.name) and candidate.parent.parent in folders
        if (named and candidate.parent in folders) or in_config_folder:
            found.append(candidate)
    return found


def _matches(identifier: str) -> int | None:
    for rank, pattern in enumerate(_NAMES):
        if pattern.match(identifier):
            return rank
    return None


def _named_length(project: Any, path: Path, summary: FileSummary, functions: list[str | None]) -> Length | None:
    """The best-ranked sequence-length name this file defines, resolved (value None when not)."""
    candidates: list[tuple[int, int, str, Any]] = []  # (name rank, kind rank, name, how to resolve)

    def add(identifier: str, kind: int, how: Any) -> None:
        rank = _matches(identifier)
        if rank is not None:
            candidates.append((rank, kind, identifier, how))

    for dest, argument in summary.argparse.items():
        add(dest, 0, ("argparse", argument))
    for name in summary.constants:
        add(name, 1, ("name", name))
    for name in summary.imports:
        if name not in summary.constants:
            add(name, 1, ("imported", name))
    for info in summary.classes.values():
        for name, span in info.class_values.items():
            add(name, 2, ("class", info.name, name, span))
    for constant, span in summary.constants.items():
        value = summary.expression(span)
        if isinstance(value, cst.Dict):
            for element in value.elements:
                if isinstance(element, cst.DictElement):
                    key = string_value(element.key)
                    if key:
                        add(key, 3, ("dict", constant, key, element.value))
    for key in functions:
        function = summary.function(key) if key is not None else None
        if function is None:
            continue
        for name in [*function.param_names, *function.single_targets]:
            add(name, 4, ("local", function, name))
    module_scope = Scope(path, summary)
    for _, _, identifier, how in sorted(candidates, key=lambda c: (c[0], c[1])):
        found = _resolve_length(project, path, summary, module_scope, identifier, how)
        if found is None:
            continue  # an import that is not a value of the project (`import torch as T`)
        return found
    return None


def _resolve_length(project: Any, path: Path, summary: FileSummary, module_scope: Scope, identifier: str, how: Any) -> Length | None:
    """The candidate's value and where it comes from (value None: defined but unresolved)."""
    resolver = project.resolver
    if how[0] == "argparse":
        argument = how[1]
        where = project.where(path, argument.call)
        origin = f"argparse default of {argument.option} ({where})"
        if argument.default is None:
            return Length(argument.implicit_default, identifier, origin)
        resolved = resolver.resolve(summary.expression(argument.default), module_scope)
        return Length(None if resolved is None else resolved.value, identifier, origin)
    if how[0] in ("name", "imported"):
        resolved = resolver.resolve(cst.Name(how[1]), module_scope)
        if resolved is None:
            return None if how[0] == "imported" else Length(None, identifier, "")
        return Length(resolved.value, identifier, resolved.origin or f"{identifier} in {project.display(path)}")
    if how[0] == "class":
        _, owner, name, span = how
        resolved = resolver.resolve(summary.expression(span), module_scope)
        origin = f"{owner}.{name} ({project.where(path, span)})"
        return Length(None if resolved is None else resolved.value, identifier, origin)
    if how[0] == "dict":
        _, constant, key, value = how
        resolved = resolver.resolve(value, module_scope)
        origin = f"{constant}[{key!r}] ({project.where(path, value)})"
        return Length(None if resolved is None else resolved.value, identifier, origin)
    _, function, name = how
    resolved = resolver.resolve(cst.Name(name), Scope(path, summary, function))
    if resolved is None:
        return Length(None, identifier, "")
    origin = resolved.origin or f"`{name}` in `{function.name}()` ({project.where(path, function.line)})"
    return Length(resolved.value, identifier, origin)
