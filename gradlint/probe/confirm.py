"""`gradlint check --probe`: probe the findings of a Report and attach what the probe found.

This module is torch-free at import: torch comes in through `gradlint.probe.load_measure()`,
once per run, and only when `confirm_report` is called. When torch is missing or cannot be
imported, `confirm_report` raises `ProbeUnavailable` before touching any finding, so the
static report is printed unchanged.

Which findings
    GL201, GL202, GL203, GL204, GL301, GL302 are probed from their `data` (the resolved
    configuration; GL204 and a GL301/GL302 on a square weight as the stack, loop or cell the code
    builds). GL101 and GL401 are probed only when their `data` describes a recurrent
    layer; otherwise (and for an eligible finding without `data`, or with a layer the probe
    cannot rebuild) they carry a `not-probed` object with a `reason`. Other rules get no probe
    object.

One layer, one configuration
    The model rules describe a layer and the init rules describe what the code does to its
    weights, as separate findings. Before probing, the findings on the same layer are pooled:
    a GL301 whose `data.layer.where` is the `path:line` of a GL201-GL203 finding, or a GL302
    whose target weight is the `weight` of a GL202 in the same file, contributes its init;
    a GL203 contributes its sequence length. Every finding of the group is probed with the
    pooled configuration (once: identical configurations share one measurement) and the probe
    object's `notes` say what was pooled from where.

Status and severity (documented in README.md, "Dynamic probe")
    confirmed      the probe's verdict is `explodes` (G >= the explode threshold, or inf/nan).
                   The severity is raised to error when the explosion is large:
                   G >= threshold * 10**5 (10**6 with the default threshold 10) or non-finite;
                   otherwise it is kept.
    not-confirmed  the verdict is `stable` or `vanishes`: the severity is lowered to info (so
                   the default `--fail-on warning` no longer fails on it).
    not-probed     unchanged severity; `reason` says why.
    GL101 and GL401 keep their severity whatever the verdict: their finding is the missing clip
    (one bad batch blows up the weights of any model), and the probe only adds the numbers of the
    trained model's recurrent layer and of the clip the fix would add.
    Probed findings get `[probe: ...]` appended to their message, e.g.
    `[probe: not confirmed (vanishes, x0.41/step)]`.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from gradlint.findings import Finding, Report, Severity
from gradlint.probe import ProbeUnavailable, load_measure
from gradlint.probe.config import ProbeConfig, UnsupportedModule
from gradlint.probe.growth import log10_total_growth
from gradlint.probe.jsonsafe import jsonable
from gradlint.probe.names import init_spec
from gradlint.probe.options import ProbeOptions
from gradlint.probe.result import ProbeResult

ELIGIBLE = ("GL201", "GL202", "GL203", "GL204", "GL301", "GL302")
"""Rules whose findings describe a recurrent layer or its init: always probed (or not-probed)."""
CONDITIONAL = ("GL101", "GL401")
"""Probed only when their data resolves the trained model to recurrent layers."""
LAYER_RULES = ("GL201", "GL202", "GL203")
INIT_RULES = ("GL301", "GL302")

CONFIRMED, NOT_CONFIRMED, NOT_PROBED = "confirmed", "not-confirmed", "not-probed"
ESCALATE_DECADES = 5.0
"""Confirmed findings become errors when log10 G >= log10(explode threshold) + this."""

PROBE_KEYS = (
    "status", "reason", "verdict", "growth_per_step", "total_growth", "log10_total_growth", "steps", "steps_origin",
    "steps_to_threshold", "window", "regime", "regimes", "compare", "per_layer", "norms", "module",
    "defaults_applied", "caps_applied", "notes", "static_severity",
)
"""Every probe object has exactly these keys, in this order (null / [] / {} when not probed)."""


@dataclass
class ConfirmSummary:
    """What one `confirm_report` call did (the CLI prints it on stderr)."""

    probed: int = 0
    """Findings with a probe measurement (confirmed or not-confirmed)."""
    measurements: int = 0
    """Distinct configurations measured (pooled findings share one)."""
    not_probed: int = 0
    confirmed: int = 0
    not_confirmed: int = 0
    import_seconds: float = 0.0
    probe_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


# -- grouping findings on the same layer ---------------------------------------------------


def _last(name: Any) -> str | None:
    return str(name).rsplit(".", 1)[-1] if isinstance(name, str) and name else None


def _layer_key(finding: Finding) -> str | None:
    data = finding.data or {}
    layer = data.get("layer")
    if isinstance(layer, dict) and isinstance(layer.get("where"), str):
        return layer["where"]
    if finding.code in LAYER_RULES and isinstance(layer, str):
        return f"{finding.display_path}:{finding.line}"
    return None


def _weight_key(finding: Finding) -> tuple[str, str] | None:
    data = finding.data or {}
    if finding.code == "GL302":
        name = _last(data.get("target"))
    elif finding.code == "GL301" and isinstance(data.get("target"), str) and data["target"].endswith(".weight"):
        name = _last(data["target"][: -len(".weight")])  # `step.weight` of a square nn.Linear `self.step`
    elif finding.code in LAYER_RULES:
        name = _last(data.get("weight"))
    else:
        name = None
    return (finding.display_path, name) if name else None


def _groups(findings: list[Finding]) -> dict[int, list[Finding]]:
    """id(finding) -> the findings on the same layer (itself included), in report order."""
    parent: dict[int, int] = {id(f): id(f) for f in findings}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_by_key: dict[Any, int] = {}
    for finding in findings:
        for key in (("layer", _layer_key(finding)), ("weight", _weight_key(finding))):
            if key[1] is None:
                continue
            if key in first_by_key:
                parent[find(id(finding))] = find(first_by_key[key])
            else:
                first_by_key[key] = id(finding)
    members: dict[int, list[Finding]] = {}
    for finding in findings:
        members.setdefault(find(id(finding)), []).append(finding)
    return {id(f): members[find(id(f))] for f in findings}


def _program(data: dict) -> tuple[list | None, list]:
    """The layer's init program (and its unresolved steps) in a finding's data, top level or in
    its nested `layer`."""
    for holder in (data, data.get("layer")):
        if isinstance(holder, dict) and isinstance(holder.get("init_program"), list):
            return holder["init_program"], list(holder.get("init_unresolved") or ())
    for holder in (data, data.get("layer")):
        if isinstance(holder, dict) and holder.get("init_unresolved"):
            return None, list(holder["init_unresolved"])
    return None, []


def _length(data: dict) -> dict | None:
    """The sequence length a finding's data states; a weight applied in a loop a known number of
    times (`tied`, GL301 on a square layer) states it too: the loop is the recurrence."""
    for holder in (data, data.get("layer")):
        if isinstance(holder, dict) and isinstance(holder.get("seq_len"), int) and not isinstance(holder["seq_len"], bool):
            return {key: holder[key] for key in ("seq_len", "seq_len_name", "seq_len_origin") if key in holder}
    for holder in (data, data.get("layer")):
        if isinstance(holder, dict) and holder.get("tied") is True and isinstance(holder.get("depth"), int):
            return {"seq_len": holder["depth"], "seq_len_name": "loop", "seq_len_origin": holder.get("depth_origin")}
    return None


def pooled_data(finding: Finding, group: list[Finding]) -> tuple[dict, list[str]]:
    """The finding's data with the group's layer, init and sequence length pooled in.

    The layer's init program (every init the code applies to it, gradlint.index.init_program)
    is the base; a GL301/GL302 on the same layer adds its init only when the program does not
    already hold it (an init in another file, on a layer of a model class)."""
    data = dict(finding.data or {})
    notes: list[str] = []
    others = [f for f in group if f is not finding and isinstance(f.data, dict)]
    if finding.code == "GL302" and not isinstance(data.get("layer"), str):
        for other in others:
            if other.code in LAYER_RULES and isinstance(other.data.get("layer"), str):
                layer = {k: v for k, v in other.data.items() if k not in ("init",)}
                unresolved = list(layer.pop("unresolved", None) or ())
                data["layer"] = dict(layer, unresolved=unresolved)
                notes.append(f"layer from {other.code} at line {other.line}")
                break
    program, program_unresolved = _program(data)
    if program is None:
        for other in others:
            found, unresolved = _program(other.data)
            if found is not None:
                program, program_unresolved = found, unresolved
                notes.append(f"init program from {other.code} at line {other.line}")
                break
    covered = {step.get("at") for step in program or () if isinstance(step, dict)}
    inits: list[dict] = []
    for member in sorted(group, key=lambda f: (f.line, f.column)):
        if member.code not in INIT_RULES or not isinstance(member.data, dict):
            continue
        spec = init_spec(member.data)  # the init a GL301/GL302 finding describes
        if spec is None:
            continue
        spec["at"] = f"{member.display_path}:{member.line}"
        if spec not in inits and spec["at"] not in covered:
            inits.append(spec)  # in source order: the code applies them in this order
            if member is not finding:
                notes.append(f"init {spec['init']} from {member.code} at line {member.line}")
    if inits:
        data["init"] = inits
    else:
        data.pop("init", None)
    if program is not None:
        data["init_program"] = program
    if program_unresolved:
        data["init_unresolved"] = program_unresolved
    if _length(data) is None:
        for other in others:
            length = _length(other.data)
            if length is not None:
                data.update(length)
                notes.append(f"seq_len={length['seq_len']} from {other.code} at line {other.line}")
                break
    return data, notes


# -- the probe object ------------------------------------------------------------------------


def _number(value: Any, digits: int = 6) -> Any:
    """Finite floats to `digits` significant digits (stable, readable JSON); others via jsonable."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    return jsonable(value)


def _growth_fields(entry: dict, steps: int) -> dict:
    k = entry.get("growth_per_step", float("nan"))
    return {
        "growth_per_step": _number(k),
        "total_growth": _number(entry.get("total_growth", float("nan"))),
        "log10_total_growth": _number(log10_total_growth(k, steps)),
        "verdict": entry.get("verdict"),
    }


def probe_object(result: ProbeResult, status: str, static_severity: str, notes: list[str] = ()) -> dict:
    """The JSON-safe `probe` object of a probed finding (keys: PROBE_KEYS)."""
    steps = result.steps
    regimes = [
        {
            "regime": r.regime,
            **_growth_fields({"growth_per_step": r.growth_per_step, "total_growth": r.total_growth,
                              "verdict": r.verdict}, r.steps),
            "steps": r.steps,
            "window": r.window,
            "input_scale": _number(r.input_scale),
            "nonfinite": bool(r.nonfinite),
            "linear": r.linear,
        }
        for r in result.regimes
    ]
    compare: dict[str, dict] = {}
    for key in ("lstm", "gru"):
        entry = result.compare.get(key)
        if entry:
            compare[key] = {**_growth_fields(entry, steps), "regime": entry.get("regime"),
                            "window": entry.get("window"), "same_as_probed": bool(entry.get("same_as_probed"))}
    clipped = result.compare.get("rnn_clipped")
    if clipped:
        compare["rnn_clipped"] = {**_growth_fields(clipped, steps), "max_norm": _number(clipped.get("max_norm")),
                                  "note": clipped.get("note")}
        for key in ("update_norm", "clipped_update_norm"):
            if key in clipped:
                compare["rnn_clipped"][key] = _number(clipped[key])
    per_layer = [
        {"layer": entry.get("layer"), **_growth_fields(entry, steps)}
        for entry in result.per_layer if "growth_per_step" in entry
    ]
    config = result.config or {}
    module = {key: jsonable(config.get(key)) for key in (
        "kind", "input_size", "hidden_size", "num_layers", "nonlinearity", "bias", "batch_first", "seq_len", "window")}
    module["init"] = jsonable(config.get("init") or [])
    obj = {
        "steps_origin": result.steps_origin,
        "steps_to_threshold": result.steps_to_threshold,
        "status": status,
        "reason": None,
        **_growth_fields({"growth_per_step": result.growth_per_step, "total_growth": result.total_growth,
                          "verdict": result.verdict}, steps),
        "steps": steps,
        "window": result.window,
        "regime": result.regime,
        "regimes": regimes,
        "compare": compare,
        "per_layer": per_layer,
        "norms": [_number(n, 4) for n in result.norms],
        "module": module,
        "defaults_applied": list(result.defaults_applied),
        "caps_applied": list(result.caps_applied),
        "notes": list(notes) + list(result.notes),
        "static_severity": static_severity,
    }
    return {key: obj[key] for key in PROBE_KEYS}


def _threshold_words(probe: dict, unit: str) -> str:
    """`10x after 7 steps` (growth) / `0.1x after 12 steps` (decay): where G crosses the threshold."""
    crossing = probe.get("steps_to_threshold")
    if not isinstance(crossing, int):
        return ""
    k = probe.get("growth_per_step")
    word = "grows 10x" if isinstance(k, (int, float)) and k > 1 else "shrinks 10x"
    return f"{word} in {crossing} {unit}"


def not_probed(reason: str, static_severity: str, notes: list[str] = ()) -> dict:
    obj: dict[str, Any] = {key: None for key in PROBE_KEYS}
    obj.update(status=NOT_PROBED, reason=reason, regimes=[], compare={}, per_layer=[], norms=[],
               defaults_applied=[], caps_applied=[], notes=list(notes), static_severity=static_severity)
    return obj


# -- wording ---------------------------------------------------------------------------------


def format_k(value: Any) -> str:
    return f"x{value:.2f}" if isinstance(value, (int, float)) else f"x{value}"


def format_total(probe: dict) -> str:
    """`10^17.4`, `10^-21.0`, `inf` or `nan` for the total growth G."""
    log10 = probe.get("log10_total_growth")
    if isinstance(log10, (int, float)):
        return f"10^{log10:.1f}"
    return {"inf": "inf", "-inf": "0"}.get(log10, "nan") if isinstance(log10, str) else "nan"


def message_suffix(probe: dict) -> str:
    """`[probe: not confirmed (vanishes, x0.41/step)]`, appended to a probed finding's message.

    When the code does not state the sequence length, the suffix says so and gives the length at
    which the gradient crosses the threshold, which needs no guess: `[probe: confirmed (explodes,
    x1.50/step, grows 10x in 7 steps; T not in the code: 10^17.4 over the default 100 steps)]`."""
    status = "confirmed" if probe["status"] == CONFIRMED else "not confirmed"
    mlp = (probe.get("module") or {}).get("kind") == "MLP"
    unit, per = ("layers", "layer") if mlp else ("steps", "step")
    head = f"{probe['verdict']}, {format_k(probe['growth_per_step'])}/{per}"
    if probe.get("steps_origin") is None:
        crossing = _threshold_words(probe, unit)
        what = "depth" if mlp else "T"
        crossing = f", {crossing}" if crossing else ""
        return (f"[probe: {status} ({head}{crossing}; {what} not in the code: {format_total(probe)} over the default "
                f"{probe['steps']} {unit}){_clip_words(probe)}]")
    extra = f", {format_total(probe)} over {probe['steps']} {unit}" if probe["status"] == CONFIRMED else ""
    return f"[probe: {status} ({head}{extra}){_clip_words(probe)}]"


def _clip_words(probe: dict) -> str:
    """GL101/GL401: what the clip their fix adds does to the update of one probed sequence."""
    clipped = (probe.get("compare") or {}).get("rnn_clipped") or {}
    norm, after = clipped.get("update_norm"), clipped.get("clipped_update_norm")
    if not isinstance(norm, (int, float)) or not isinstance(after, (int, float)):
        return ""
    return (f"; with clip_grad_norm_(max_norm={clipped.get('max_norm')}) the update of one sequence goes from "
            f"{norm:.3g} to {after:.3g}, the per-step factor stays {format_k(probe.get('growth_per_step'))}")


# -- the seam --------------------------------------------------------------------------------


def _new_severity(severity: Severity, probe: dict, options: ProbeOptions) -> Severity:
    if probe["status"] == NOT_CONFIRMED:
        return Severity.INFO
    if probe["status"] != CONFIRMED:
        return severity
    log10 = probe.get("log10_total_growth")
    nonfinite = log10 == "inf" or any(r.get("nonfinite") for r in probe["regimes"])
    margin = math.log10(options.explode_threshold) + ESCALATE_DECADES
    if nonfinite or (isinstance(log10, (int, float)) and log10 >= margin):
        return max(severity, Severity.ERROR)
    return severity


_NAMED_LAYER = re.compile(r"\b(nn\.\w+) at ([^\s(),;]+:\d+)")


def unprobed_reason(finding: Finding) -> str:
    """Why a finding without a layer configuration is not probed, in plain words that agree with
    its message: a message naming `nn.RNN at model.py:18` is not told that it has no layer."""
    named = _NAMED_LAYER.search(finding.message)
    if named is not None:
        layer, where = named.groups()
        return (f"{finding.code} does not record the sizes and init of {layer} at {where}, so the probe cannot "
                f"rebuild it; `gradlint probe FILE:factory` measures your model itself")
    if finding.code in CONDITIONAL:
        return f"{finding.code} names no layer the probe can rebuild"
    return f"{finding.code} could not resolve the layer's sizes, so the probe has nothing to rebuild"


def _owner(data: dict) -> dict | None:
    for holder in (data, data.get("layer")):
        if isinstance(holder, dict) and isinstance(holder.get("owner"), dict):
            return holder["owner"]
    return None


def _measure_owned(candidates: list[Finding], groups: dict[int, list[Finding]], options: ProbeOptions) -> dict[int, dict]:
    """`--probe-import`: id(finding) -> the child's answer for the module holding its layer (one
    sandboxed subprocess for the whole report; identical requests are built once)."""
    from gradlint.probe.real import measure_owned, request_for

    keys: dict[int, str] = {}
    requests: dict[str, dict] = {}
    for finding in candidates:
        if not isinstance(finding.data, dict):
            continue
        data, _ = pooled_data(finding, groups[id(finding)])
        owner = _owner(data)
        request = request_for(owner, {**data, **(_length(data) or {})}) if owner is not None else None
        if request is None:
            continue
        key = json.dumps(request, sort_keys=True, default=repr)
        keys[id(finding)] = key
        requests.setdefault(key, request)
    ordered = list(requests)
    answers = measure_owned([requests[k] for k in ordered], replace(options, import_project=False),
                            options.import_timeout, options.import_memory_mb)
    by_key = dict(zip(ordered, answers))
    return {finding_id: by_key[key] for finding_id, key in keys.items() if key in by_key}


def _eligible(finding: Finding) -> bool:
    return finding.code in ELIGIBLE or finding.code in CONDITIONAL


def confirm_report(report: Report, options: ProbeOptions | None = None, progress: Any = None) -> ConfirmSummary:
    """Probe every eligible finding of `report` in place: set `finding.probe`, adjust the
    severity and append the probe's word to the message. Raises `ProbeUnavailable` (before
    changing anything) when torch cannot be imported."""
    options = options or ProbeOptions()
    summary = ConfirmSummary()
    start = time.perf_counter()
    measure = load_measure()  # torch, once per run
    summary.import_seconds = time.perf_counter() - start
    start = time.perf_counter()
    candidates = [f for f in report.findings if _eligible(f)]
    groups = _groups([f for f in candidates if isinstance(f.data, dict)])
    cache: dict[str, ProbeResult | Exception] = {}
    owned = _measure_owned(candidates, groups, options) if options.import_project else {}
    counted: set[int] = set()
    if progress is not None:
        progress.start(len(candidates))
    for finding in candidates:
        if progress is not None:
            progress.advance(1)
        static = finding.severity.label
        if not isinstance(finding.data, dict):
            finding.probe = not_probed(unprobed_reason(finding), static)
            summary.not_probed += 1
            continue
        data, notes = pooled_data(finding, groups[id(finding)])
        answer = owned.get(id(finding))
        if answer is not None and "result" in answer:
            result = ProbeResult.from_json(answer["result"])
            status = CONFIRMED if result.verdict == "explodes" else NOT_CONFIRMED
            finding.probe = probe_object(result, status, static, notes)
            finding.severity = _new_severity(finding.severity, finding.probe, options)
            finding.message = f"{finding.message.rstrip()} {message_suffix(finding.probe)}"
            summary.probed += 1
            if id(answer) not in counted:
                counted.add(id(answer))
                summary.measurements += 1
            summary.confirmed += status == CONFIRMED
            summary.not_confirmed += status != CONFIRMED
            continue
        if answer is not None:
            notes.append(f"--probe-import could not build the code's own module ({answer.get('error')}): "
                         "measured the rebuild instead")
        try:
            config = ProbeConfig.from_data(data)
        except UnsupportedModule as error:
            finding.probe = not_probed(str(error), static, notes)
            summary.not_probed += 1
            continue
        if finding.code in CONDITIONAL and not config.recurrent:
            finding.probe = not_probed(f"{finding.code} names no recurrent layer the probe can rebuild", static, notes)
            summary.not_probed += 1
            continue
        clip = finding.code in CONDITIONAL
        key = json.dumps([config.to_dict(), clip], sort_keys=True, default=repr)
        if key not in cache:
            try:
                cache[key] = measure.probe(config, replace(options, clip_update=True) if clip else options)
                summary.measurements += 1
            except Exception as error:  # a probe failure is reported on the finding, never a crash
                cache[key] = error
        result = cache[key]
        if isinstance(result, Exception):
            message = f"the probe failed: {type(result).__name__}: {result}"
            finding.probe = not_probed(message, static, notes)
            summary.not_probed += 1
            summary.errors.append(f"{finding.display_path}:{finding.line}: {finding.code}: {message}")
            continue
        status = CONFIRMED if result.verdict == "explodes" else NOT_CONFIRMED
        finding.probe = probe_object(result, status, static, notes)
        if finding.code not in CONDITIONAL:
            finding.severity = _new_severity(finding.severity, finding.probe, options)
        finding.message = f"{finding.message.rstrip()} {message_suffix(finding.probe)}"
        summary.probed += 1
        if status == CONFIRMED:
            summary.confirmed += 1
        else:
            summary.not_confirmed += 1
    summary.probe_seconds = time.perf_counter() - start
    return summary


__all__ = [
    "CONDITIONAL", "CONFIRMED", "ELIGIBLE", "ESCALATE_DECADES", "NOT_CONFIRMED", "NOT_PROBED", "PROBE_KEYS",
    "ConfirmSummary", "ProbeUnavailable", "confirm_report", "format_k", "format_total", "message_suffix",
    "not_probed", "pooled_data", "probe_object", "unprobed_reason",
]
