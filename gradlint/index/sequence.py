"""The sequence length a recurrent layer is trained on, and where the code says so.

GL203 reports vanilla RNNs trained on long sequences, and the dynamic probe extrapolates the
gradient's growth to the length the code runs: both ask `sequence_length(...)`. The training
files that train the layer come from the project's model facts (the model whose parameters reach
an optimizer step holds the layer), else from the files that construct the layer's class and hold
a training step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from gradlint.analysis.calls import kwarg_value
from gradlint.analysis.layers import owner_class
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.analysis.steps import training_steps
from gradlint.analysis.tensors import tensor_shape, unwrap_tensor
from gradlint.analysis.values import string_value
from gradlint.index.summary import FileSummary
from gradlint.index.values import Scope
from gradlint.index.weights import bind_name, unwrap_module

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
    """The length (None: named but unresolved)."""
    name: str
    """The name it goes by (`bptt`), or `input shape`."""
    origin: str
    """Where it comes from: `argparse default of --bptt (train.py:20)`."""


def sequence_length(project: Any, path: Path, model: FileModel, call: cst.Call, function: Function | None) -> Length | None:
    """The sequence length the layer built by `call` is trained on, and where it comes from.

    In order: the shape of a tensor the training code feeds to the model holding the layer (or
    to the layer), `model(torch.randn(T, B, F))`; then a sequence-length name (`bptt`,
    `seq_len`, `block_size`, `window`, `max_len`, ...) defined by the training script that trains
    it (argparse options, constants, config dicts, the step function's locals), else by the
    model's own module, else by a config module of the project. The first file that names a
    sequence length decides (unresolved there: a Length whose value is None)."""
    table = project.table("sequence.lengths")
    return project.deps.memo(table, id(call), lambda: _sequence_length(project, path, model, call, function))


def _sequence_length(project: Any, path: Path, model: FileModel, call: cst.Call, function: Function | None) -> Length | None:
    line = project.line_of(path, call)
    trainers = trained_in(project, path, model, call, function, line)
    shaped = _fed_shape(project, path, model, call, function, trainers)
    if shaped is not None:
        return shaped
    sources: list[tuple[Path, list[str | None]]] = []
    for train_path, key in trainers:
        for known in sources:
            if known[0] == train_path:
                known[1].append(key)
                break
        else:
            sources.append((train_path, [key]))
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
            return found
    return None


def trained_in(project: Any, path: Path, model: FileModel, call: cst.Call, function: Function | None, line: int) -> list[tuple[Path, str | None]]:
    """The files (and the keys of the step functions) whose training steps train the model
    holding `layer`: the optimizer's model resolves to it, or (when no step resolves) the file
    constructs its class and has a training step."""
    table = project.deps.memo(project.lasting_table("gl203.training"), "table", lambda: _training_table(project))
    found = list(table.get((str(path), line), []))
    if found:
        return found
    info = owner_class(model, function)
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


# ---------------------------------------------------------------------- tensor shapes


def _fed_shape(project: Any, path: Path, model: FileModel, call: cst.Call, function: Function | None,
               trainers: list[tuple[Path, str | None]]) -> Length | None:
    """`model(torch.randn(T, B, F))` in a training file (or the layer's own file): T, read along
    the layer's `batch_first`."""
    info = owner_class(model, function)
    symbol = project.class_symbol(path, info) if info is not None else None
    batch_first = _batch_first(project, path, call, function)
    files = list(dict.fromkeys([train_path for train_path, _ in trainers] + [path]))
    for file in files:
        other = project.model(file)
        if other is None:
            continue
        for site in other.calls:
            func = site.node.func
            if not isinstance(func, cst.Name) or not site.node.args:
                continue
            scope = project.scope(file, site.function)
            bound = bind_name(func.value, scope)
            if bound is None:
                continue
            built = unwrap_module(bound)
            target = built.value
            if not isinstance(target, cst.Call):
                continue
            if file == path and target is call:
                pass
            elif symbol is not None:
                callee = dotted_name(target.func)
                resolved = project.resolve_callee(built.path, callee) if callee else None
                if resolved is None or resolved.target is not symbol.target:
                    continue
            else:
                continue
            found = _shape_length(project, built.scope if file != path else scope, site.node.args[0].value, scope,
                                  batch_first)
            if found is not None:
                where = project.where(file, site.node)
                value, text = found
                return Length(value, "input shape", f"`{text}` fed to the model at {where}")
    return None


def _shape_length(project: Any, _unused: Any, node: cst.BaseExpression, scope: Scope, batch_first: bool | None):
    """(T, the tensor's code) for the tensor fed to the model: a 3-d float factory call
    (`torch.randn(T, B, F)`) or a 2-d token tensor (`torch.randint(0, V, (T, B))`, read before the
    embedding), directly or through a name bound to one; T along the layer's `batch_first`."""
    value: cst.BaseExpression | None = node
    for _ in range(3):
        if isinstance(value, cst.Name):
            bound = bind_name(value.value, scope)
            if bound is None:
                return None
            value, scope = bound.value, bound.scope
            continue
        break
    if not isinstance(value, cst.Call) or batch_first is None:
        return None
    tensor = unwrap_tensor(value)
    if not isinstance(tensor, cst.Call):
        return None
    dims = _token_dims(scope, tensor)
    if dims is None:
        shape = tensor_shape(scope.summary, tensor)
        if shape is None or shape[0] not in ("randn", "rand", "zeros", "ones", "empty", "full") or len(shape[1]) != 3:
            return None
        dims = shape[1]
    dim = dims[1] if batch_first else dims[0]
    resolved = project.resolver.resolve(dim, scope)
    if resolved is None or isinstance(resolved.value, bool) or not isinstance(resolved.value, int) or resolved.value < 1:
        return None
    text = " ".join(cst.Module([]).code_for_node(tensor).split())
    return resolved.value, text


def _token_dims(scope: Scope, call: cst.Call) -> list[cst.BaseExpression] | None:
    """The 2 dims of `torch.randint(low, high, (a, b))` / `torch.randint(high, size=(a, b))`."""
    name = scope.summary.qualify_expr(call.func)
    if name != "torch.randint":
        return None
    size = kwarg_value(call, "size")
    if size is None:
        positional = [arg.value for arg in call.args if arg.keyword is None]
        size = positional[-1] if len(positional) >= 2 else None
    if not isinstance(size, (cst.Tuple, cst.List)) or len(size.elements) != 2:
        return None
    return [element.value for element in size.elements]


def _batch_first(project: Any, path: Path, call: cst.Call, function: Function | None) -> bool | None:
    node = kwarg_value(call, "batch_first")
    if node is None:
        return False
    resolved = project.resolver.resolve(node, project.scope(path, function))
    return resolved.value if resolved is not None and isinstance(resolved.value, bool) else None
