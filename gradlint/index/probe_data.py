"""What the dynamic probe needs to rebuild a layer the way the code runs it.

A finding's `data` names the layer's configuration (gradlint.index.layer_config); for a recurrent
layer this module adds what the code does around it, so the probe (gradlint.probe, which never
reads code) can rebuild exactly that:

- `init_program` / `init_unresolved`: every initialisation applied to its parameters, in order
  (gradlint.index.init_program);
- `seq_len`, `seq_len_name`, `seq_len_origin`: the sequence length it is trained on and where the
  code says so (gradlint.index.sequence); absent when the code does not say;
- `owner`: the class that holds it and how to construct it (file, class, attribute path,
  constructor arguments resolved from a call site, else the parameters' defaults), for
  `gradlint check --probe --probe-import`, which builds the user's own module.

`model_probe_data(project, facts)` is the same for the model a training step trains (GL101,
GL401): the configuration of its first recurrent layer with all of the above.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import libcst as cst

from gradlint.analysis.layers import json_value, layer_kind, owner_class
from gradlint.analysis.model import FileModel, Function
from gradlint.analysis.names import dotted_name
from gradlint.analysis.tensors import assigned_to
from gradlint.index.init_program import init_program
from gradlint.index.sequence import sequence_length, trained_in

if TYPE_CHECKING:
    from gradlint.index.facts import ModelFacts
    from gradlint.index.project import ProjectIndex

RECURRENT = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")


def layer_probe_data(project: ProjectIndex, path: Path, call: cst.Call, kind: str, function: Any, config: Any) -> dict:
    """The init program, sequence length and owner of a recurrent layer (empty for other layers,
    or when the file cannot be read with libcst)."""
    if kind not in RECURRENT:
        return {}
    found = model_call(project, path, call)
    if found is None:
        return {}
    model, node, where = found
    out: dict[str, Any] = {}
    out.update(init_program(project, path, node, kind, config).data())
    length = sequence_length(project, path, model, node, where)
    if length is not None and isinstance(length.value, int) and not isinstance(length.value, bool) and length.value > 0:
        out.update(seq_len=length.value, seq_len_name=length.name, seq_len_origin=length.origin)
    owner = owner_data(project, path, model, node, where)
    if owner is not None:
        out["owner"] = owner
    return out


def model_call(project: ProjectIndex, path: Path, call: cst.Call) -> tuple[FileModel, cst.Call, Function | None] | None:
    """The layer call as a node of the file's libcst model (a call a summary parsed from a span
    is found by its position), with the function it sits in."""
    model = project.model(path)
    if model is None:
        return None
    for site in model.calls:
        if site.node is call:
            return model, call, site.function
    span = project.span_of(path, call)
    if span is None:
        return None
    parsed = project.parsed(path)
    callee = dotted_name(call.func)
    positions = getattr(parsed, "positions", None)
    if positions is None:
        return None
    for site in model.calls:
        if site.callee == callee and positions.start(site.node) == span[0]:
            return model, site.node, site.function
    return None


def owner_data(project: ProjectIndex, path: Path, model: FileModel, call: cst.Call, function: Function | None) -> dict | None:
    """`{"file", "display", "class", "attribute", "args", "kwargs", "unresolved"}`: how to build
    the user's module holding the layer (`self.<attribute> = nn.LSTM(...)` in a method of
    `class`). Constructor arguments come from a call site of the class in the run (a training
    file's first), resolved to JSON values; those that do not resolve are listed by name (the
    module's own defaults apply to those not passed)."""
    target = assigned_to(model, call, function)
    info = owner_class(model, function)
    if target is None:
        return None
    if info is not None and target.startswith("self.") and target.count(".") == 1:
        data: dict[str, Any] = {
            "file": str(path), "display": project.display(path), "class": info.name, "attribute": target[5:],
            "args": [], "kwargs": {}, "unresolved": [], "call": None,
        }
        symbol = project.class_symbol(path, info)
    elif "." not in target and _factory_returns(function, target):
        # A factory: a module-level function that builds the layer and returns it.
        assert function is not None
        data = {"file": str(path), "display": project.display(path), "factory": function.name, "attribute": "",
                "args": [], "kwargs": {}, "unresolved": [], "call": None}
        symbol = project.resolve(path, function.name)
    else:
        return None
    if symbol is None:
        return data
    sites = project.call_sites(symbol)
    line = project.line_of(path, call)
    trainers = {train for train, _ in trained_in(project, path, model, call, function, line)}
    sites = sorted(sites, key=lambda item: (item[0] not in trainers, str(item[0]), item[1].span))
    for site_path, site in sites:
        summary = project.summary(site_path)
        node = summary.expression(site.span) if summary is not None else None
        if not isinstance(node, cst.Call):
            continue
        scope = project.scope(site_path, site.function)
        for arg in node.args:
            if arg.star:
                data["unresolved"].append("*" + (dotted_name(arg.value) or "args") if arg.star == "*" else "**kwargs")
                continue
            resolved = project.resolver.resolve(arg.value, scope)
            value = json_value(resolved.value) if resolved is not None else None
            if resolved is None or (value is None and resolved.value is not None):
                label = arg.keyword.value if arg.keyword is not None else f"argument {len(data['args']) + 1}"
                data["unresolved"].append(label)
                value = None
            if arg.keyword is not None:
                data["kwargs"][arg.keyword.value] = value
            else:
                data["args"].append(value)
        data["call"] = project.where(site_path, node)
        break
    return data


def _factory_returns(function: Function | None, name: str) -> bool:
    if function is None or function.parent is not None or function.class_name is not None:
        return False
    from gradlint.analysis.walk import walk

    return any(
        isinstance(node, cst.Return) and isinstance(node.value, cst.Name) and node.value.value == name
        for node in walk(function.node.body)
    )


def model_probe_data(project: ProjectIndex, facts: ModelFacts | None, clip_max_norm: float | None = None) -> dict | None:
    """The probe `data` of the model a training step trains: its first recurrent layer's
    configuration, init program, sequence length and owner, and `clip_max_norm` (the threshold of
    the clip the finding's fix would add); None without a recurrent layer (or when the layer
    cannot be read)."""
    from gradlint.index.layer_config import resolve_layer

    site = next((layer for layer in facts.recurrent if layer.layer in RECURRENT), None) if facts else None
    if site is None:
        return None  # no torch recurrent layer (a hand-written cell is not rebuilt from a call)
    summary = project.summary(site.path)
    if summary is None:
        return None
    node = site.node if isinstance(site.node, cst.Call) else summary.expression(site.node)
    if not isinstance(node, cst.Call):
        return None
    found = model_call(project, site.path, node)
    if found is None:
        return None
    model, call, function = found
    kind = layer_kind(model.qualify_call(call)) or site.layer
    config = resolve_layer(project, site.path, model, call, kind, function)
    data = config.data()
    data["where"] = project.where(site.path, call)
    data["model"] = facts.name
    if clip_max_norm is not None:
        data["clip_max_norm"] = clip_max_norm
    return data


__all__ = ["layer_probe_data", "model_call", "model_probe_data", "owner_data"]
