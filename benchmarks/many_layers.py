"""Analysis time and memory for very deep networks: layers per second and bytes per layer.

    python benchmarks/many_layers.py [--layers 200000] [--rounds 3]

Writes a document of N plain layers (a convolution, then ReLUs; with --mixed,
ReLU, BatchNorm and convolutions in turn), and times ``convcalc shape -f`` on it in a fresh process
per round, as a user runs it: reading, analysis with receptive fields, and the
table (or ``--json``). Peak memory is the process's maximum resident size.
Reports the median over the rounds and the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _document(count: int, mixed: bool) -> dict:
    conv = {"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1}
    cycle = [{"type": "relu"}, {"type": "bn"}, conv] if mixed else [{"type": "relu"}]
    layers = [conv] + [cycle[i % len(cycle)] for i in range(count - 1)]
    return {"input": [3, 32, 32], "layers": layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mixed", action="store_true", help="every third layer a convolution (else all ReLU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "deep.json")
        with open(path, "w") as handle:
            json.dump(_document(args.layers, args.mixed), handle)
        kind = "conv, ReLU and BatchNorm in turn" if args.mixed else "a conv, then ReLU"
        print(f"{args.layers:,} layers ({kind}), {args.rounds} rounds, fresh process each")
        print(f"{'output':6s} {'median s':>9s} {'spread':>7s} {'layers/s':>10s} {'peak MiB':>9s} {'bytes/layer':>12s}")
        for name, extra in (("table", []), ("json", ["--json"])):
            times, peaks = [], []
            for _ in range(args.rounds):
                before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "convcalc", "shape", "-f", path, *extra], check=True,
                               stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
                peaks.append(max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) * 1024)
            median = statistics.median(times)
            spread = (max(times) - min(times)) / median
            peak = max(peaks)
            print(f"{name:6s} {median:9.2f} {spread:6.0%} {args.layers / median:10,.0f} {peak / 2**20:9.0f} "
                  f"{peak / args.layers:12,.0f}")


if __name__ == "__main__":
    main()
