"""Median time to probe one finding (not a test; prints a table).

    python benchmarks/probe_speed.py [--repeat 5] [--device cpu|cuda]

torch is imported (and warmed up by one probe) before any timing, so the figures exclude the
import, as the speed target does. `cpu s` is the process CPU time (median): on a shared
machine it is closer to what an idle machine would show than the wall time. Each probe runs on one torch thread (the probe sets it), in
float64, with everything a `--probe` finding gets: both regimes, per-layer for stacks, the
LSTM/GRU comparison and the clipped update. The target is a median <= 0.5 s per finding for
hidden <= 512 and window <= 200 (the caps).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS: list[tuple[str, dict]] = [
    ("RNN tanh  h128  T100  L1 default (all defaults)", {"layer": "RNN"}),
    ("RNN tanh  h256  T100  L1 default", {"layer": "RNN", "hidden_size": 256, "seq_len": 100}),
    ("RNN relu  h256  T100  L1 std 2/sqrt(n)", {"layer": "RNN", "hidden_size": 256, "seq_len": 100,
                                                 "nonlinearity": "relu", "init": {"init": "normal_", "gain": 2.0}}),
    ("RNN tanh  h256  T100  L4 orthogonal 1.5", {"layer": "RNN", "hidden_size": 256, "seq_len": 100, "num_layers": 4,
                                                  "init": {"init": "orthogonal_", "gain": 1.5}}),
    ("RNN relu  h512  T200  L1 default", {"layer": "RNN", "hidden_size": 512, "seq_len": 200, "nonlinearity": "relu"}),
    ("RNN tanh  h512  T1000 L1 orthogonal 1.2 (window cap 200)", {"layer": "RNN", "hidden_size": 512, "seq_len": 1000,
                                                                  "init": {"init": "orthogonal_", "gain": 1.2}}),
    ("RNN relu  h512  T200  L2 default", {"layer": "RNN", "hidden_size": 512, "seq_len": 200, "nonlinearity": "relu",
                                          "num_layers": 2}),
    ("RNN tanh  h512  T200  L8 default (all caps)", {"layer": "RNN", "hidden_size": 512, "seq_len": 200, "num_layers": 8}),
    ("LSTM      h256  T100  L1 default", {"layer": "LSTM", "hidden_size": 256, "seq_len": 100}),
    ("LSTM      h512  T200  L1 default", {"layer": "LSTM", "hidden_size": 512, "seq_len": 200}),
    ("GRU       h512  T200  L2 default", {"layer": "GRU", "hidden_size": 512, "seq_len": 200, "num_layers": 2}),
    ("MLP relu  w256  depth50 default", {"layer": "MLP", "width": 256, "depth": 50}),
    ("MLP relu  w512  depth64 kaiming", {"layer": "MLP", "width": 512, "depth": 64,
                                         "init": {"init": "kaiming_normal_", "nonlinearity": "relu"}}),
    # This round: the code's init program, tied stacks, cells, GL101's clip.
    ("RNN relu  h256  T50   L1 init program (5 steps)", {
        "layer": "RNN", "hidden_size": 256, "seq_len": 50, "nonlinearity": "relu", "seq_len_origin": "bench",
        "init_program": [{"init": "normal_", "std": 0.001, "param": "weight_ih_l0"},
                         {"init": "zeros_", "param": "bias_ih_l0"}, {"init": "zeros_", "param": "bias_hh_l0"},
                         {"init": "eye_", "param": "weight_hh_l0"},
                         {"init": "multiply", "factor": 1.5, "param": "weight_hh_l0"}]}),
    ("LSTM      h128  T60   L1 per-gate program", {
        "layer": "LSTM", "hidden_size": 128, "seq_len": 60,
        "init_program": [{"init": "orthogonal_", "gain_argument": 4.0, "param": "weight_hh_l0",
                          "rows": [g * 128, (g + 1) * 128], "row_unit": 128} for g in range(4)]
        + [{"init": "zeros_", "param": "bias_ih_l0"}, {"init": "zeros_", "param": "bias_hh_l0"}]}),
    ("MLP relu  w256  depth12 tied (square Linear in a loop)", {
        "layer": "MLP", "width": 256, "depth": 12, "tied": True, "nonlinearity": "relu",
        "init": {"init": "normal_", "std": 0.125}}),
    ("RNNCell   h256  T?    a cell (T unknown: T* reported)", {
        "layer": "RNNCell", "hidden_size": 256, "input_size": 256, "nonlinearity": "tanh",
        "init": {"init": "normal_", "std": 0.1}}),
]
CLIPPED = ("RNN relu  h256  T100  GL101 with the clip's update norm", {
    "layer": "RNN", "hidden_size": 256, "seq_len": 100, "nonlinearity": "relu", "clip_max_norm": 1.0,
    "init": {"init": "normal_", "gain": 2.0}})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch  # imported before timing

    from gradlint.probe import ProbeOptions, probe

    options = ProbeOptions(device=args.device)
    probe({"layer": "RNN", "hidden_size": 64, "seq_len": 20}, options)  # warm-up
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, device {args.device}, cpus {os.cpu_count()}, load average {load}; "
          f"median of {args.repeat} probes, one torch thread, float64")
    print(f"{'configuration':58s} {'median s':>9s} {'min s':>7s} {'cpu s':>7s}  verdict   k")
    medians = []
    clipped = ProbeOptions(device=args.device, clip_update=True)
    for name, data, opts in [(n, d, options) for n, d in CONFIGS] + [(CLIPPED[0], CLIPPED[1], clipped)]:
        times, cpu = [], []
        result = None
        for _ in range(args.repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = probe(data, opts)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        median = statistics.median(times)
        medians.append(median)
        print(f"{name:58s} {median:9.3f} {min(times):7.3f} {statistics.median(cpu):7.3f}  "
              f"{result.verdict:9s} {result.growth_per_step:.3f}")
    print(f"{'median over the configurations':58s} {statistics.median(medians):9.3f}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end: {load} (other processes on the machine inflate every figure)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
