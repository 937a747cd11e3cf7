"""`gradlint check --probe --probe-import`: measure the code's own modules, in a sandbox.

The static rules describe a layer; the rebuild (gradlint.probe.build) makes torch's module of
that shape with the init program the index read. With `--probe-import` the probe instead builds
the user's own class (or factory) that holds the flagged layer, with the constructor arguments
the index resolved from a call site (or the class's defaults), and measures the actual submodule
with the weights the user's code gave it. That imports and runs project code, so:

- it is opt-in and never the default (the README and `--help` say it must not run on untrusted
  pull requests);
- it runs in one subprocess per `gradlint check` (`python -m gradlint.probe.real REQUEST RESULT`),
  as `gradlint probe` does: a wall-clock timeout enforced by the parent, an address-space cap
  (`RLIMIT_AS`, applied before torch or user code is imported), one torch thread;
- a module that cannot be built (an import error, an argument that did not resolve, an exception
  in the constructor, a timeout) is reported on the finding, which falls back to the rebuild.

`measure_owned(requests, options, timeout, memory_mb)` is the parent's side (torch-free); the
child's side is `main`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gradlint.probe.config import ProbeConfig
from gradlint.probe.options import ProbeOptions

RECURRENT = ("RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")


# -- the parent --------------------------------------------------------------------------------


def request_for(owner: dict, data: dict) -> dict | None:
    """What the child needs to build and measure one owner (None: nothing to build)."""
    if not isinstance(owner, dict) or not owner.get("file") or not (owner.get("class") or owner.get("factory")):
        return None
    return {
        "file": owner["file"], "class": owner.get("class"), "factory": owner.get("factory"),
        "attribute": owner.get("attribute") or "", "args": owner.get("args") or [], "kwargs": owner.get("kwargs") or {},
        "unresolved": owner.get("unresolved") or [], "call": owner.get("call"),
        "data": {k: v for k, v in data.items() if k in ("seq_len", "seq_len_origin", "seq_len_name", "clip_max_norm")},
    }


def measure_owned(requests: list[dict], options: ProbeOptions, timeout: float, memory_mb: int) -> list[dict]:
    """Run the child on every request; one answer per request: `{"result": ProbeResult.to_json()}`
    or `{"error": why}`."""
    if not requests:
        return []
    payload = {"requests": requests, "options": asdict(options), "memory_mb": memory_mb}
    with tempfile.TemporaryDirectory(prefix="gradlint-probe-import-") as tmp:
        request_path = Path(tmp) / "request.json"
        result_path = Path(tmp) / "result.json"
        request_path.write_text(json.dumps(payload), encoding="utf-8")
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "gradlint.probe.real", str(request_path), str(result_path)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True,
                errors="replace", timeout=timeout, start_new_session=hasattr(os, "setsid"), check=False,
            )
        except subprocess.TimeoutExpired:
            why = f"building the code's own module timed out after {timeout:g} s"
            return [{"error": why} for _ in requests]
        if proc.returncode != 0 or not result_path.is_file():
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            return [{"error": f"the sandboxed subprocess failed: {tail[0]}"} for _ in requests]
        answers = json.loads(result_path.read_text(encoding="utf-8"))
    return answers if isinstance(answers, list) and len(answers) == len(requests) else [
        {"error": "the sandboxed subprocess returned no result"} for _ in requests]


# -- the child ---------------------------------------------------------------------------------


def _import_file(path: Path):
    """Import a project file as the project would: as `pkg.module` from the folder above its
    package (so relative imports work), else by its stem with its folder on sys.path."""
    import importlib

    path = path.resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    for entry in (str(folder), str(path.parent)):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if len(parts) > 1:
        return importlib.import_module(".".join(parts))
    # A script: under a name of its own (two folders' `train.py` must not share one module).
    import importlib.util

    name = f"_gradlint_import_{len(sys.modules)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _build(request: dict, torch: Any, nn: Any) -> tuple[Any, str]:
    """The submodule holding the layer, built from the user's class or factory (user code)."""
    if request.get("unresolved"):
        raise LookupError("constructor argument(s) did not resolve: " + ", ".join(request["unresolved"]))
    module = _import_file(Path(request["file"]))
    name = request.get("class") or request.get("factory")
    target = getattr(module, name, None)
    if target is None:
        raise LookupError(f"{Path(request['file']).name} has no attribute {name!r}")
    torch.manual_seed(0)
    built = target(*request["args"], **request["kwargs"])
    part = built
    for attribute in filter(None, str(request.get("attribute") or "").split(".")):
        part = getattr(part, attribute)
    if not isinstance(part, nn.Module) or type(part).__name__ not in RECURRENT:
        raise TypeError(f"{name}{'.' + request['attribute'] if request.get('attribute') else ''} is a "
                        f"{type(part).__name__}, not a recurrent layer")
    args = ", ".join([repr(a) for a in request["args"]] + [f"{k}={v!r}" for k, v in request["kwargs"].items()])
    what = f"{name}({args})" + (f".{request['attribute']}" if request.get("attribute") else "")
    return part, what


def _config_of(layer: Any, data: dict) -> ProbeConfig:
    kind = type(layer).__name__
    values = {
        "layer": kind, "input_size": layer.input_size, "hidden_size": layer.hidden_size,
        "num_layers": getattr(layer, "num_layers", 1), "bias": bool(layer.bias),
        "batch_first": bool(getattr(layer, "batch_first", False)),
        "nonlinearity": getattr(layer, "nonlinearity", "tanh"), "unresolved": [],
    }
    values.update(data)
    return ProbeConfig.from_data(values)


def main(argv: list[str]) -> int:
    payload = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    from gradlint.probe.target import apply_memory_cap

    note = apply_memory_cap(int(payload.get("memory_mb") or 0), "cpu")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
        from torch import nn

        from gradlint.probe import measure
    torch.set_num_threads(1)
    options = ProbeOptions(**{k: (tuple(v) if k == "regimes" else v) for k, v in payload["options"].items()})
    options.device = "cpu" if options.device == "auto" and not torch.cuda.is_available() else options.device
    answers: list[dict] = []
    for request in payload["requests"]:
        try:
            layer, what = _build(request, torch, nn)
            config = _config_of(layer, request.get("data") or {})
            notes = [f"measured the code's own module: {what} from {request['file']} (the weights its code gave it)"]
            if note:
                notes.append(note)
            result = measure.probe_module(layer, config, options, notes)
            answers.append({"result": result.to_json()})
        except MemoryError:
            answers.append({"error": f"out of memory under the {payload.get('memory_mb')} MiB cap"})
        except BaseException as error:  # noqa: BLE001 - the user's code may raise anything (SystemExit too)
            if isinstance(error, KeyboardInterrupt):
                raise
            frames = traceback.extract_tb(error.__traceback__)
            place = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
            answers.append({"error": f"{type(error).__name__}: {error}{place}"})
    Path(argv[1]).write_text(json.dumps(answers), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
