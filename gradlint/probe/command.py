"""`gradlint probe TARGET`: measure the gradients of the user's own model.

This process never imports torch or the user's code: it validates the flags, runs
`gradlint.probe.target` in a subprocess (wall-clock timeout, address-space cap, one torch
thread), then prints the result (rich text or JSON) and optionally plots it with matplotlib.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

EXIT_CLEAN, EXIT_EXPLODES, EXIT_ERROR = 0, 1, 2
PLOT_HINT = "pip install 'torch-gradlint[plot]' (from a checkout: pip install -e '.[plot]')"
TARGET_FORMS = "expected `module:factory` (importable from the current directory) or `path/to/file.py:factory`"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE_RE = re.compile(rf"^{_IDENT}(\.{_IDENT})*$")
_ATTR_RE = _MODULE_RE


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(message: str) -> click.exceptions.Exit:
    _stderr().print(f"[bold red]error:[/] {escape(message)}", emoji=False)
    return click.exceptions.Exit(EXIT_ERROR)


def parse_spec(value: str, what: str) -> str:
    """Check `module:attr` / `path/to/file.py:attr`; a `click.BadParameter` otherwise."""
    module_part, sep, attr = value.rpartition(":")
    if not sep or not module_part or not _ATTR_RE.match(attr):
        raise click.BadParameter(f"{value!r}: {TARGET_FORMS}", param_hint=what)
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        if not Path(module_part).is_file():
            raise click.BadParameter(f"{value!r}: no such file {module_part!r} ({TARGET_FORMS})", param_hint=what)
    elif not _MODULE_RE.match(module_part):
        raise click.BadParameter(f"{value!r}: {module_part!r} is not a module name ({TARGET_FORMS})",
                                 param_hint=what)
    return value


def parse_shape(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        shape = [int(part) for part in value.replace("x", ",").split(",") if part.strip()]
    except ValueError:
        shape = []
    if not shape or any(n <= 0 for n in shape):
        raise click.BadParameter(f"{value!r}: expected positive integers separated by commas, e.g. 8,100,32",
                                 param_hint="--input-shape")
    return shape


def _check_matplotlib() -> None:
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        found = False
    if found:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            found = False
    if not found:
        raise _fail(f"--plot needs matplotlib: {PLOT_HINT}")


def _out_of_memory(err: str) -> bool:
    """The user's code failed because the address-space cap refused an allocation."""
    return any(marker in err for marker in ("MemoryError", "can't allocate memory", "out of memory", "std::bad_alloc"))


def run_child(request: dict, timeout: float) -> tuple[int, dict | None, str, str]:
    """Run `gradlint.probe.target`; (returncode, result or None, stdout, stderr). returncode is
    None-like -1 on timeout."""
    with tempfile.TemporaryDirectory(prefix="gradlint-probe-") as tmp:
        result_path = Path(tmp) / "result.json"
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gradlint.probe.target", json.dumps(request), str(result_path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
            text=True, errors="replace", start_new_session=hasattr(os, "setsid"),
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            out, err = proc.communicate()
            return -1, None, out, err
        result = None
        if proc.returncode == 0 and result_path.is_file():
            result = json.loads(result_path.read_text(encoding="utf-8"))
        return proc.returncode, result, out, err


def _kill(proc: subprocess.Popen) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            proc.kill()
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _num(value: Any) -> float:
    if isinstance(value, str):
        return float(value)
    return float("nan") if value is None else float(value)


def _fmt(value: Any) -> str:
    v = _num(value)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3e}"
    return f"{v:.4g}"


def print_text(result: dict) -> None:
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]gradlint probe[/] {escape(result['target'])}  "
                  f"(device {result['device']}, {result['steps']} step(s), input {escape(str(result['input_shape']))}"
                  f" from {escape(result['input'])})")
    console.print("loss per step: " + ", ".join(_fmt(v) for v in result["loss"]))
    console.print("total gradient norm per step: " + ", ".join(_fmt(v) for v in result["total_grad_norm"]))
    table = Table(title=f"Top {len(result['parameters'])} of {result['parameter_count']} parameters by gradient norm")
    table.add_column("parameter")
    table.add_column("shape")
    table.add_column("grad norm", justify="right")
    for p in result["parameters"]:
        table.add_row(escape(p["name"]), "x".join(map(str, p["shape"])) or "scalar", _fmt(p["grad_norm"]))
    console.print(table)
    ratio = result.get("max_layer_ratio")
    if ratio:
        console.print(f"largest layer-to-layer ratio: {escape(ratio['from'])} -> {escape(ratio['to'])}: "
                      f"x{_fmt(ratio['ratio'])}")
    else:
        console.print("largest layer-to-layer ratio: n/a (fewer than two layers with gradients)")
    rec = result.get("recurrent")
    if rec:
        k, growth = _num(rec["k"]), _num(rec["growth"])
        color = {"explodes": "red", "stable": "green", "vanishes": "yellow"}[rec["verdict"]]
        growth_text = (f"10^{math.log10(growth):.1f}" if growth > 0 and math.isfinite(growth) else str(growth))
        console.print(f"time steps ({escape(rec['kind'])} {escape(rec['module'])}, T={rec['seq_len']}): "
                      f"k = x{_fmt(k)}/step, G = k^(T-1) = {growth_text}: [bold {color}]{rec['verdict']}[/]")
        finite = [_num(v) for v in rec["log10_norms"] if math.isfinite(_num(v))]
        if finite:
            console.print(f"  log10 ||dL/dx_t||: t=0 {_fmt(_num(rec['log10_norms'][0]))}, "
                          f"t={rec['seq_len'] - 1} {_fmt(_num(rec['log10_norms'][-1]))}")
    elif result.get("verdict"):
        console.print(f"verdict: [bold red]{result['verdict']}[/] (non-finite loss or gradients)")
    for note in result.get("notes", []):
        console.print(f"note: {escape(note)}")


def write_plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.5))
    rec = result.get("recurrent")
    if rec:
        logs = [_num(v) for v in rec["log10_norms"]]
        points = [(t, v) for t, v in enumerate(logs) if math.isfinite(v)]
        if points and all(-300 < v < 300 for _, v in points):
            ax_t.plot([t for t, _ in points], [10.0 ** v for _, v in points], marker=".", lw=1)
            ax_t.set_yscale("log")
            ax_t.set_ylabel("||dL/dx_t||")
        else:
            ax_t.plot([t for t, _ in points], [v for _, v in points], marker=".", lw=1)
            ax_t.set_ylabel("log10 ||dL/dx_t||")
        ax_t.set_xlabel("time step t")
        ax_t.set_title(f"{rec['kind']}: x{_fmt(rec['k'])}/step, {rec['verdict']}")
    else:
        ax_t.text(0.5, 0.5, "no recurrent module", ha="center", va="center", transform=ax_t.transAxes)
        ax_t.set_axis_off()
    entries = result.get("layers") or []
    if len(entries) < 2:
        entries = [{"module": p["name"], "grad_norm": p["grad_norm"]} for p in result["parameters"]]
        ax_l.set_title("gradient norm per parameter")
    else:
        ax_l.set_title("gradient norm per layer")
    values = [_num(e["grad_norm"]) for e in entries]
    shown = [(e["module"], v) for e, v in zip(entries, values) if math.isfinite(v) and v > 0]
    if shown:
        ax_l.bar(range(len(shown)), [v for _, v in shown])
        ax_l.set_yscale("log")
        ax_l.set_xticks(range(len(shown)), [n for n, _ in shown], rotation=45, ha="right", fontsize=7)
    ax_l.set_ylabel("gradient norm")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@click.command("probe")
@click.argument("target")
@click.option("--batch", "batch", default=None, metavar="module:fn",
              help="A zero-argument function returning the batch (a tensor or a tuple of tensors).")
@click.option("--input-shape", default=None, metavar="8,100,32",
              help="Shape of a synthetic float input (randn, fixed seed) when --batch is not given "
              "[default: read from the model's first layer].")
@click.option("--steps", type=click.IntRange(1, 1000), default=3, show_default=True,
              help="Forward/backward steps.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Wall-clock limit in seconds for the subprocess that runs your code.")
@click.option("--memory-mb", type=click.IntRange(min=0), default=4096, show_default=True,
              help="Address-space cap of that subprocess in MiB (0: none).")
@click.option("--plot", "plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE.png|svg", help=f"Write a plot (needs matplotlib: {PLOT_HINT}).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when the verdict is 'explodes' (errors still exit 2).")
def probe_command(target: str, batch: str | None, input_shape: str | None, steps: int, device: str,
                  timeout: float, memory_mb: int, plot: Path | None, output_format: str,
                  exit_zero: bool = False) -> None:
    """Run your model factory TARGET in a subprocess and measure its gradients.

    TARGET is `module:factory` or `path/to/file.py:factory`, a zero-argument callable that
    returns an nn.Module. This runs your code (with a timeout and a memory cap). Without
    --batch or --input-shape, the input is read from the model's first layer (nn.Linear's
    in_features, nn.Conv2d's in_channels, an embedding's tokens, ...).

    Exit codes, as `gradlint check`: 0 the gradients do not explode (stable, vanishes, or no
    verdict); 1 the verdict is "explodes" (--exit-zero: 0); 2 a usage error, your code raised,
    a timeout or the memory cap.
    """
    parse_spec(target, "TARGET")
    if batch is not None:
        parse_spec(batch, "--batch")
    shape = parse_shape(input_shape)
    if plot is not None:
        if plot.suffix.lower() not in (".png", ".svg"):
            raise click.BadParameter(f"{str(plot)!r}: the plot must be a .png or .svg file", param_hint="--plot")
        _check_matplotlib()
    from gradlint.probe import INSTALL_HINT, torch_available

    if not torch_available():
        raise _fail(f"gradlint probe needs torch: {INSTALL_HINT}")
    request = {"target": target, "batch": batch, "input_shape": shape, "steps": steps, "device": device,
               "memory_mb": memory_mb}
    code, result, out, err = run_child(request, timeout)
    if out:
        click.echo(out, err=True, nl=not out.endswith("\n"))
    if code == -1:
        if err:
            click.echo(err, err=True, nl=not err.endswith("\n"))
        raise _fail(f"the probe of {target} timed out after {timeout:g} s (--timeout)")
    if code == 3 and _out_of_memory(err):
        raise _fail(
            f"not probed: {target} is too large for the memory cap ({memory_mb} MiB): building or running it "
            "failed to allocate memory; raise --memory-mb, or probe a smaller configuration"
        )
    if code == 3:
        click.echo(err, err=True, nl=not err.endswith("\n"))
        raise _fail(f"your code raised an exception while probing {target} (traceback above)")
    if code == 4:
        raise _fail(err.strip())
    if code != 0 or result is None:
        if err:
            click.echo(err, err=True, nl=not err.endswith("\n"))
        why = (f"killed by signal {-code}" if code < 0 else f"exit status {code}")
        hint = " (out of memory? raise --memory-mb)" if code in (-9, 137) or "MemoryError" in err else ""
        raise _fail(f"the probe subprocess failed ({why}){hint}")
    if output_format == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        print_text(result)
    if plot is not None:
        write_plot(result, plot)
        click.echo(f"plot written to {plot}", err=output_format == "json")
    raise click.exceptions.Exit(probe_exit_code(result, exit_zero))


def probe_exit_code(result: dict, exit_zero: bool = False) -> int:
    """1 when the measured gradients explode (the gate, as `check` fails on findings), else 0."""
    return EXIT_EXPLODES if result.get("verdict") == "explodes" and not exit_zero else EXIT_CLEAN
