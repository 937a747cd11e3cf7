"""The child process of `gradlint probe TARGET`: import the user's model factory, run it, measure.

This module runs user code, so `gradlint probe` only ever runs it as
`sys.executable -m gradlint.probe.target REQUEST_JSON RESULT_FILE` in a subprocess, with a
wall-clock timeout enforced by the parent. Here, before torch or any user code is imported, the
address space is capped (`RLIMIT_AS`, where the platform supports it; not with CUDA, whose driver
reserves huge virtual ranges) and torch is limited to one thread.

Exit codes (read by `gradlint.probe.command`):
    0  the result JSON was written to RESULT_FILE
    3  the user's code raised: its traceback (gradlint frames left out) is on stderr
    4  a usage problem found here (no CUDA, no usable input shape ...): the message is on stderr
    anything else: an internal error of gradlint (or the process was killed, e.g. out of memory)

The measurement (all in the user's dtype, on the chosen device, with the model in train mode):
    steps: N times zero the gradients, forward the batch, loss = sum of the output (its first
        element when the model returns a tuple/list), backward. Parameter gradient norms are those
        of the last step; the loss and total gradient norm of every step are reported.
    layers: every module that owns parameters directly, in registration order; its gradient norm
        is the norm of all its direct parameters' gradients. The largest layer-to-layer ratio is
        the consecutive pair whose ratio (later / earlier) is furthest from 1 in either direction.
    input: `--batch`, `--input-shape`, or inferred from the first layer before anything runs
        (`gradlint.probe.inputs`; a layer it cannot read stops the probe with "pass --input-shape");
        a forward that fails on an inferred input is reported as such, without a traceback.
    time steps (the model's first nn.RNN/LSTM/GRU, itself or a submodule): a float64 copy of
        that module is run on the input it received in the first step, x (float64, requires grad); the loss is the
        sum of its last time step's output; ||dL/dx_t|| for every step t; k = least-squares
        factor per step (`growth.fit_window`, leaving out the 2 steps nearest the loss when
        T >= 10); G = k^(T-1); verdict by `growth.verdict_for` (explodes when G >= 10 or anything
        non-finite, vanishes when G <= 0.1).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from gradlint.probe.inputs import ASK, NoInput, infer_input
from gradlint.probe.jsonsafe import jsonable

EXIT_OK, EXIT_USER, EXIT_USAGE = 0, 3, 4
TOP_PARAMETERS = 20
SEED = 0


class UsageProblem(Exception):
    """A problem with the request (not with the user's code): message to stderr, exit 4."""


class UserCodeError(Exception):
    """The user's code raised; `__cause__` is their exception."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


# --------------------------------------------------------------------------------------------
# Sandbox
# --------------------------------------------------------------------------------------------

def apply_memory_cap(memory_mb: int, device: str) -> str | None:
    """Cap the address space; returns a note when the cap could not be applied."""
    if memory_mb <= 0:
        return "memory cap disabled (--memory-mb 0)"
    if device in ("cuda", "auto"):
        # decided after torch is imported (auto may still pick the CPU); see _late_memory_cap
        return None
    return _set_rlimit(memory_mb)


def _set_rlimit(memory_mb: int) -> str | None:
    try:
        import resource
    except ImportError:
        return "memory cap not applied: the resource module is not available on this platform"
    if not hasattr(resource, "RLIMIT_AS"):
        return "memory cap not applied: RLIMIT_AS is not supported on this platform"
    limit = int(memory_mb) << 20
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY and hard < limit:
            limit = hard
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as error:
        return f"memory cap not applied: {error}"
    return None


# --------------------------------------------------------------------------------------------
# Loading user code
# --------------------------------------------------------------------------------------------

def is_file_spec(module_part: str) -> bool:
    return module_part.endswith(".py") or "/" in module_part or os.sep in module_part


def load_callable(spec: str, what: str):
    """`module:attr` or `path/to/file.py:attr` -> the attribute. Import errors are user errors."""
    module_part, _, attr = spec.rpartition(":")
    try:
        if is_file_spec(module_part):
            path = Path(module_part).resolve()
            if not path.is_file():
                raise UsageProblem(f"{what} {spec!r}: no such file {module_part!r}")
            # siblings of the file are importable, as when running `python file.py`
            sys.path.insert(0, str(path.parent))
            name = f"_gradlint_probe_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise UsageProblem(f"{what} {spec!r}: cannot load {module_part!r} as a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_part)
    except UsageProblem:
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - anything the user's module does (SystemExit too)
        raise UserCodeError(f"importing {module_part!r} for {what} {spec!r} raised") from error
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageProblem(f"{what} {spec!r}: {module_part!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageProblem(f"{what} {spec!r}: {attr!r} is not callable")
    return obj


def call_user(fn, what: str, *args):
    try:
        return fn(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001
        raise UserCodeError(what) from error


def format_user_traceback(error: BaseException) -> str:
    """The user's traceback without the frames of this module (which only called their code)."""
    here = os.path.abspath(__file__)
    lines: list[str] = []
    for exc in _chain(error):
        tb = exc.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == here:
            tb = tb.tb_next
        frames = traceback.extract_tb(tb)
        frames = [f for f in frames if not f.filename.startswith("<frozen importlib")]
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(frames))
        lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


def _chain(error: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    exc: BaseException | None = error
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return list(reversed(chain))


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

def _recurrent(model, nn) -> tuple[str, Any] | None:
    """The model's first nn.RNN/LSTM/GRU (the model itself, or any submodule in registration
    order): its time steps are measured on the input it receives in the model's forward."""
    kinds = (nn.RNN, nn.LSTM, nn.GRU)
    for name, module in model.named_modules():
        if isinstance(module, kinds):
            return name, module
    return None


def _norm(tensors, torch) -> float:
    total = 0.0
    for t in tensors:
        total += float(t.detach().double().pow(2).sum())
    return math.sqrt(total) if math.isfinite(total) else float("inf") if not math.isnan(total) else float("nan")


def _first_output(out):
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    return out


def _to_device(batch, device):
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def measure(request: dict, notes: list[str], capped: list[bool]) -> dict:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
        from torch import nn

        from gradlint.probe.growth import fit_window, log10_norms, power_growth, verdict_for
        from gradlint.probe.options import ProbeOptions

    torch.set_num_threads(1)
    requested = request["device"]
    cuda = torch.cuda.is_available()
    if requested == "cuda" and not cuda:
        raise UsageProblem("--device cuda was requested but CUDA is not available "
                           "(torch.cuda.is_available() is False); use --device cpu or auto")
    device_name = "cuda" if requested == "cuda" or (requested == "auto" and cuda) else "cpu"
    if request["memory_mb"] > 0 and requested != "cpu":
        if device_name == "cpu":
            note = _set_rlimit(request["memory_mb"])
            if note:
                notes.append(note)
            capped[0] = note is None
        else:
            notes.append("memory cap not applied: CUDA reserves large virtual address ranges "
                         "(RLIMIT_AS would break it)")
    device = torch.device(device_name)

    factory = load_callable(request["target"], "TARGET")
    torch.manual_seed(SEED)
    model = call_user(factory, f"the factory {request['target']!r}")
    if not isinstance(model, nn.Module):
        raise UsageProblem(f"TARGET {request['target']!r} returned {type(model).__name__}, not an nn.Module")
    model = model.to(device)
    model.train()
    rec = _recurrent(model, nn)

    # ---- the batch
    if request.get("batch"):
        batch_fn = load_callable(request["batch"], "--batch")
        torch.manual_seed(SEED)
        batch = call_user(batch_fn, f"the batch function {request['batch']!r}")
        if not isinstance(batch, (torch.Tensor, tuple, list)):
            raise UsageProblem(f"--batch {request['batch']!r} returned {type(batch).__name__}; "
                               "expected a tensor or a tuple of tensors")
        batch = _to_device(batch, device)
        args = tuple(batch) if isinstance(batch, (tuple, list)) else (batch,)
        source, guessed = f"--batch {request['batch']}", False
    else:
        shape = request.get("input_shape")
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
        generator = torch.Generator().manual_seed(SEED)
        if shape is None:
            try:
                inferred = infer_input(model, nn)
            except NoInput as error:
                raise UsageProblem(str(error)) from None
            shape, source, guessed = inferred.shape, f"the first layer, {inferred.source}", True
            if inferred.tokens is not None:
                x = torch.randint(0, inferred.tokens, shape, generator=generator).to(device)
            else:
                x = torch.randn(*shape, generator=generator, dtype=dtype).to(device)
        else:
            source, guessed = "--input-shape", False
            x = torch.randn(*shape, generator=generator, dtype=dtype).to(device)
        args = (x,)

    x0 = args[0] if args and isinstance(args[0], torch.Tensor) else None
    result: dict[str, Any] = {
        "target": request["target"],
        "device": device_name,
        "steps": request["steps"],
        "input": source,
        "input_shape": list(x0.shape) if x0 is not None else None,
        "memory_cap_mb": request["memory_mb"] if capped[0] else None,
    }

    # ---- N forward/backward steps
    losses, totals = [], []
    nonfinite = False
    captured: dict[str, Any] = {}
    hook = None
    if rec is not None:
        def _capture(module, inputs):  # the recurrent module's own input, at the first step
            if "x" not in captured and inputs:
                captured["x"] = inputs[0].detach() if isinstance(inputs[0], torch.Tensor) else None
        hook = rec[1].register_forward_pre_hook(_capture)
    for _ in range(request["steps"]):
        model.zero_grad(set_to_none=True)
        try:
            out = call_user(model, "the model's forward", *args)
        except UserCodeError as error:
            if not guessed:
                raise
            cause = error.__cause__ or error
            raise UsageProblem(
                f"the model's forward failed on the input inferred from {source}, shape {list(x0.shape) if x0 is not None else '?'}: "
                f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}\n"
                f"That input is a guess: {ASK}"
            ) from None
        out = _first_output(out)
        if not isinstance(out, torch.Tensor):
            raise UsageProblem(f"the model returned {type(out).__name__}; expected a tensor (or a tuple "
                               "whose first element is one)")
        loss = out.sum()
        try:
            loss.backward()
        except RuntimeError as error:
            raise UserCodeError("backward through the model's output") from error
        losses.append(float(loss.detach()))
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        totals.append(_norm(grads, torch))
        if not all(math.isfinite(v) for v in (losses[-1], totals[-1])):
            nonfinite = True

    params = []
    no_grad = []
    for name, p in model.named_parameters():
        if p.grad is None:
            no_grad.append(name)
            continue
        params.append({"name": name, "shape": list(p.shape), "grad_norm": _norm([p.grad], torch)})
    if no_grad:
        notes.append(f"{len(no_grad)} parameter(s) got no gradient: {', '.join(no_grad[:5])}"
                     + (" ..." if len(no_grad) > 5 else ""))

    layers = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.grad is not None]
        if own:
            layers.append({"module": name or "(model)", "type": type(module).__name__,
                           "grad_norm": _norm([p.grad for p in own], torch)})
    ratio = None
    for a, b in zip(layers, layers[1:]):
        if a["grad_norm"] > 0 and math.isfinite(a["grad_norm"]) and math.isfinite(b["grad_norm"]):
            r = b["grad_norm"] / a["grad_norm"]
            if r > 0 and (ratio is None or abs(math.log(r)) > abs(math.log(ratio["ratio"]))):
                ratio = {"from": a["module"], "to": b["module"], "ratio": r}

    def _key(entry):
        v = entry["grad_norm"]
        return float("inf") if math.isnan(v) else v

    result.update({
        "loss": losses,
        "total_grad_norm": totals,
        "parameter_count": len(params),
        "parameters": sorted(params, key=_key, reverse=True)[:TOP_PARAMETERS],
        "layers": layers,
        "max_layer_ratio": ratio,
        "nonfinite": nonfinite,
    })

    # ---- growth across time steps
    if hook is not None:
        hook.remove()
    recurrent = None
    if rec is not None:
        name, layer = rec
        xr = captured.get("x")
        what = f"nn.{type(layer).__name__} `{name}`" if name else f"nn.{type(layer).__name__}"
        if xr is None or not xr.is_floating_point() or xr.dim() != 3:
            notes.append(f"time-step growth not measured: the input {what} receives is not a float tensor of "
                         "shape (batch, seq, features) / (seq, batch, features)")
        elif xr.shape[-1] != layer.input_size:
            notes.append(f"time-step growth not measured: the input has {xr.shape[-1]} features, "
                         f"{what} expects {layer.input_size}")
        else:
            import copy

            options = ProbeOptions()
            copy_layer = copy.deepcopy(layer).double()
            xd = xr.detach().double().requires_grad_(True)
            torch.set_flush_denormal(True)
            try:
                out = copy_layer(xd)[0]
                time_dim = 1 if layer.batch_first else 0
                last = out.select(time_dim, out.shape[time_dim] - 1)
                (grad,) = torch.autograd.grad(last.sum(), xd)
            finally:
                torch.set_flush_denormal(False)
            steps_first = grad.transpose(0, 1) if layer.batch_first else grad
            T = steps_first.shape[0]
            log_norms = []
            for t in range(T):
                g = steps_first[t]
                m = float(g.abs().max())
                if not math.isfinite(m):
                    log_norms.append(float("nan"))
                elif m == 0.0:
                    log_norms.append(float("-inf"))
                else:
                    log_norms.append(math.log(m) + math.log(float((g / m).norm())))
            bad = (not bool(torch.isfinite(out).all())) or any(math.isnan(v) for v in log_norms)
            k, points = fit_window(log_norms, options)
            growth = power_growth(k, T)
            verdict = verdict_for(growth, bad, options)
            recurrent = {
                "module": name or "(model)",
                "kind": type(layer).__name__,
                "seq_len": T,
                "batch_first": bool(layer.batch_first),
                "log10_norms": log10_norms(log_norms),
                "k": k,
                "growth": growth,
                "points": points,
                "nonfinite": bad,
                "verdict": verdict,
                "loss": "sum of the recurrent module's last output step (float64 copy)",
            }
    result["recurrent"] = recurrent
    result["verdict"] = (recurrent["verdict"] if recurrent is not None
                         else "explodes" if nonfinite else None)
    return result


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    result_path = argv[1]
    notes: list[str] = []
    note = apply_memory_cap(int(request["memory_mb"]), request["device"])
    if note:
        notes.append(note)
    capped = [request["device"] == "cpu" and request["memory_mb"] > 0 and note is None]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        result = measure(request, notes, capped)
    except UserCodeError as error:
        cause = error.__cause__ or error
        sys.stderr.write(f"gradlint probe: {error.what} raised {type(cause).__name__}: {cause}\n")
        sys.stderr.write(format_user_traceback(cause))
        sys.stderr.flush()
        return EXIT_USER
    except UsageProblem as error:
        sys.stderr.write(f"{error}\n")
        return EXIT_USAGE
    except MemoryError:
        sys.stderr.write(f"out of memory under the {request['memory_mb']} MiB cap (--memory-mb)\n")
        return EXIT_USAGE
    result["notes"] = notes
    Path(result_path).write_text(json.dumps(jsonable(result)), encoding="utf-8")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
