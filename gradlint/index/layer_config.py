"""A layer call's configuration, resolved across the project.

Each argument of `nn.RNN(ninp, nhid, nlayers)` is resolved through the project index in the
scope of the function the call sits in, so `nlayers` in `__init__` comes from the constructor's
call sites (`RNNModel(ntokens, args.nlayers)`) and from there from argparse. Parameters the call
leaves out take torch's defaults; those it passes but that cannot be resolved are `None` and
listed as unresolved. Rules report the result as their finding's `data`, so it holds only JSON
values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst

from gradlint.analysis.layers import JSONValue, REQUIRED, SIGNATURES, bound_arguments, json_value

_INT = "int"
_SIZE = "int or ints"
_EXPECTED: dict[str, str] = {
    "input_size": _INT, "hidden_size": _INT, "num_layers": _INT, "proj_size": _INT,
    "in_features": _INT, "out_features": _INT, "in_channels": _INT, "out_channels": _INT, "groups": _INT,
    "kernel_size": _SIZE, "stride": _SIZE, "dilation": _SIZE, "padding": "int, ints or str",
    "nonlinearity": "str", "padding_mode": "str",
    "bias": "bool", "batch_first": "bool", "bidirectional": "bool", "dropout": "number",
}
"""What each parameter holds: a resolved value of another type (`width, d = 256, 32` read as a
tuple) is treated as unresolved rather than passed on."""


_RECURRENT = frozenset({"RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"})


def _plausible(name: str, value: Any) -> bool:
    expected = _EXPECTED.get(name)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ints = isinstance(value, list) and bool(value) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if expected == _INT:
        return is_int
    if expected == _SIZE:
        return is_int or ints
    if expected == "int, ints or str":
        return is_int or ints or isinstance(value, str)
    if expected == "str":
        return isinstance(value, str)
    if expected == "bool":
        return isinstance(value, bool) or value in (0, 1)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True




@dataclass
class LayerConfig:
    """A layer call's resolved configuration: every parameter by torch's name."""

    kind: str
    values: dict[str, JSONValue] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    """Where each passed value came from (`argparse default of --nlayers (train.py:30)`)."""
    unresolved: list[str] = field(default_factory=list)
    passed: set[str] = field(default_factory=set)
    """The parameters the call gives explicitly (the others are torch's defaults)."""
    site: tuple | None = field(default=None, repr=False, compare=False)
    """(project, path, call, function) of a recurrent layer: `data()` adds what the dynamic probe
    needs to rebuild it as the code runs it (gradlint.index.probe_data)."""

    def get(self, name: str) -> JSONValue:
        return self.values.get(name)

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def describe(self, name: str) -> str:
        """`num_layers=4 (argparse default of --nlayers (train.py:30))` for messages."""
        value = self.values.get(name)
        shown = f"'{value}'" if isinstance(value, str) else "unresolved" if name in self.unresolved else f"{value}"
        origin = self.origins.get(name)
        if name not in self.passed and name not in self.unresolved:
            origin = "torch's default"
        return f"{name}={shown}" + (f" ({origin})" if origin else "")

    def data(self, **extra: JSONValue) -> dict:
        """The JSON `data` of a finding: `{"layer": "RNN", "input_size": 64, ..., "unresolved": [...]}`."""
        result: dict[str, JSONValue] = {"layer": self.kind, **self.values}
        result.update(self.probe_data())
        unresolved = list(self.unresolved)
        for key, value in extra.items():
            if key == "unresolved":
                unresolved.extend(name for name in value if name not in unresolved)
            else:
                result[key] = json_value(value)
        result["unresolved"] = unresolved
        return result


    def probe_data(self) -> dict:
        """The init program, sequence length and owner of a recurrent layer (see
        gradlint.index.probe_data), memoised per call with the dependencies it read."""
        if self.site is None:
            return {}
        from gradlint.index.probe_data import layer_probe_data  # probe_data resolves layers too

        project, path, call, function = self.site
        table = project.table("layer_config.probe_data")
        return dict(project.deps.memo(
            table, id(call), lambda: layer_probe_data(project, path, call, self.kind, function, self)))


def resolve_layer(project: Any, path: Path, model: Any, call: cst.Call, kind: str, function: Any) -> LayerConfig:
    """Every parameter of a layer call, resolved in the scope of the function it sits in (a
    function of the checked file's model, or of a file summary)."""
    cache = project.table("layers.configs")
    entry = cache.get(id(call))
    if entry is not None and entry[0][0] is call:
        project.deps.note_all(entry[1])
        return entry[0][1]
    with project.deps.recording() as dependencies:
        config = _resolve_layer(project, path, call, kind, function)
    cache[id(call)] = ((call, config), dependencies)
    return config


def _resolve_layer(project: Any, path: Path, call: Any, kind: str, function: Any) -> LayerConfig:
    scope = project.scope(path, function)
    passed, opaque = bound_arguments(call, kind)
    config = LayerConfig(kind, passed=set(passed))
    if kind in _RECURRENT:
        config.site = (project, path, call, function)
    for name, default in SIGNATURES[kind]:
        if name in passed:
            resolved = project.resolver.resolve(passed[name], scope)
            value = json_value(resolved.value) if resolved is not None else None
            if resolved is None or (value is None and resolved.value is not None) or not _plausible(name, value):
                config.values[name] = None
                config.unresolved.append(name)
                continue
            config.values[name] = value
            if resolved.origin:
                config.origins[name] = resolved.origin
        elif name in opaque or default is REQUIRED:
            config.values[name] = None
            config.unresolved.append(name)
        else:
            config.values[name] = default
    return config
