"""DeepSpeed: `deepspeed.initialize(model=..., config=...)` and its config, a dict (followed through
names and later mutations) or a JSON file beside the script or under the project roots, whose
`"gradient_clipping"` is 0 (no clipping) unless set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import libcst as cst

from gradlint.analysis.calls import arg_value, kwarg_value
from gradlint.analysis.model import CallSite
from gradlint.analysis.names import dotted_name
from gradlint.analysis.walk import walk
from gradlint.index.frameworks.places import bound_value, context_of, index_of
from gradlint.index.frameworks.reader import SettingReader
from gradlint.index.frameworks.records import (
    ABSENT,
    DEEPSPEED_INITIALIZE,
    UNRESOLVED,
    DeepSpeedConfig,
    DeepSpeedEngine,
    Setting,
)
from gradlint.index.values import Scope

if TYPE_CHECKING:
    from gradlint.index.project import ProjectIndex

JSON_LIMIT = 4_000_000
"""Bytes: a DeepSpeed config larger than this is not read (stay quiet)."""


def find_engines(reader: SettingReader) -> list[DeepSpeedEngine]:
    engines = []
    for site in reader.model.calls:
        if site.qualified not in DEEPSPEED_INITIALIZE:
            continue
        argument = kwarg_value(site.node, "config")
        if argument is None:
            argument = kwarg_value(site.node, "config_params")
        config = deepspeed_config(reader, argument, site) if argument is not None else None
        context = context_of(reader.model, site.function)
        before = index_of(context, site.node) if context is not None else 0
        facts = None
        engine_model = arg_value(site.node, 1, "model")
        if engine_model is not None:
            facts = reader.project.facts.of_expression(
                engine_model, reader.path, reader.model, context, before, site.function
            )
        engines.append(DeepSpeedEngine(site.node, site, config, facts))
    return engines

def deepspeed_config(reader: SettingReader, expression: cst.BaseExpression, site: CallSite) -> DeepSpeedConfig | None:
    """The config an expression stands for: a dict literal (followed through names) or a JSON path."""
    context = context_of(reader.model, site.function)
    before = index_of(context, site.node) if context is not None else 0
    bound = bound_value(expression, reader.model, context, before)
    is_dict_call = isinstance(bound, cst.Call) and dotted_name(bound.func) == "dict"
    if isinstance(bound, cst.Dict) or is_dict_call:
        clipping = _dict_clipping(reader, bound, reader.project.scope(reader.path, site.function))
        if clipping is None:
            return None
        if isinstance(expression, cst.Name):
            clipping = _mutated(reader, expression.value, clipping, site)
        label = "the config dict" + (f" `{expression.value}`" if isinstance(expression, cst.Name) else "")
        return DeepSpeedConfig("dict", label, clipping, inline=bound)
    resolved = reader.project.resolver.resolve(expression, reader.project.scope(reader.path, site.function))
    if resolved is None:
        return None
    if isinstance(resolved.value, dict):
        # A dict defined in another module (`from ds_configs import ZERO2`).
        symbol = reader.project.resolve(reader.path, expression.value) if isinstance(expression, cst.Name) else None
        span = symbol.target if symbol is not None and symbol.kind == "value" else None
        target = symbol.summary.expression(span) if symbol is not None and isinstance(span, tuple) else None
        if not isinstance(target, (cst.Dict, cst.Call)) or symbol is None:
            return None
        clipping = _dict_clipping(reader, target, Scope(symbol.path, symbol.summary))
        if clipping is None:
            return None
        if clipping.node is not None:
            where = reader.project.where(symbol.path, clipping.node)
            clipping = Setting(clipping.state, None, clipping.value, clipping.origin or where)
        label = f"the config dict `{symbol.name}` ({reader.project.where(symbol.path, target)})"
        return DeepSpeedConfig("dict", label, clipping)
    if isinstance(resolved.value, str) and resolved.value.endswith(".json"):
        data, file = _json(reader, resolved.value)
        if data is None:
            return None
        if "gradient_clipping" in data:
            clipping = Setting("value", None, data["gradient_clipping"])
        else:
            clipping = ABSENT
        return DeepSpeedConfig("json", f"`{resolved.value}`", clipping, path=file)
    return None

def _dict_clipping(reader: SettingReader, node: cst.BaseExpression, scope: Scope) -> Setting | None:
    """`"gradient_clipping"` of a dict literal or `dict(...)` call; None when the keys cannot be read."""
    unknown_keys = False
    if isinstance(node, cst.Dict):
        for element in node.elements:
            if not isinstance(element, cst.DictElement):
                unknown_keys = True  # `**base`
                continue
            key = reader.project.resolver.resolve(element.key, scope)
            if key is None:
                unknown_keys = True
                continue
            if key.value == "gradient_clipping":
                return reader.value(element, element.value, scope)
    elif isinstance(node, cst.Call):
        for arg in node.args:
            if arg.keyword is None:
                unknown_keys = True
            elif arg.keyword.value == "gradient_clipping":
                return reader.value(arg, arg.value, scope)
    else:
        return None
    return UNRESOLVED if unknown_keys else ABSENT

def _mutated(reader: SettingReader, name: str, clipping: Setting, site: CallSite) -> Setting:
    """`config["gradient_clipping"] = x` or `config.update(...)` after the literal: the later value wins."""
    where = site.function.node if site.function is not None else reader.model.module
    if name in reader.model.constants and site.function is not None:
        where = reader.model.module
    scope = reader.project.scope(reader.path, site.function)
    for node in walk(where):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                subscript = target.target
                if not (isinstance(subscript, cst.Subscript) and dotted_name(subscript.value) == name):
                    continue
                if len(subscript.slice) != 1 or not isinstance(subscript.slice[0].slice, cst.Index):
                    clipping = UNRESOLVED
                    continue
                key = reader.project.resolver.resolve(subscript.slice[0].slice.value, scope)
                if key is None:
                    clipping = UNRESOLVED
                elif key.value == "gradient_clipping":
                    clipping = reader.value(node, node.value, scope)
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if dotted_name(node.func.value) == name and node.func.attr.value in ("update", "setdefault", "pop"):
                clipping = UNRESOLVED
        elif isinstance(node, cst.AugAssign) and dotted_name(node.target) == name:
            clipping = UNRESOLVED
    return clipping

def json_config(reader: SettingReader, written: str, folders: tuple[Path, ...] = ()) -> DeepSpeedConfig | None:
    """A DeepSpeed JSON config named by a path (beside the script, in `folders`, under the roots)."""
    data, file = _json(reader, written, folders)
    if data is None:
        return None
    clipping = Setting("value", None, data["gradient_clipping"]) if "gradient_clipping" in data else ABSENT
    return DeepSpeedConfig("json", f"`{written}`", clipping, path=file)


def _json(reader: SettingReader, written: str, folders: tuple[Path, ...] = ()) -> tuple[dict | None, Path | None]:
    """The JSON object at `written`: beside the script (or in `folders`), then under the project roots."""
    relative = Path(written)
    candidates = [relative] if relative.is_absolute() else [reader.path.parent / relative] + [
        folder / relative for folder in folders
    ] + [root / relative for root in reader.project.roots]
    cache = reader.project.table("frameworks.json")
    for candidate in candidates:
        reader.project.deps.note(("file", str(candidate)))
        if candidate not in cache:
            cache[candidate] = _read_json(reader.project, candidate)
        if cache[candidate] is not None:
            return cache[candidate], candidate
    return None, None


def _read_json(project: "ProjectIndex", path: Path) -> dict | None:
    """A JSON object from an in-memory source of the run or from disk; None when missing or invalid."""
    source = project.sources.get(path)
    text = source.text if source is not None else None
    if text is None:
        try:
            if not path.is_file() or path.stat().st_size > JSON_LIMIT:
                return None
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
