"""Reading a PyTorch model: convcalc's capture and analysis against torchinfo and fvcore, side by side.

    python benchmarks/model_capture.py [--model resnet50] [--rounds 7]

In one process, on the same model instance (torchvision's, random weights),
the three tools run in turn, round after round: convcalc's ``from_torch`` plus
``analyse`` (with receptive fields), ``torchinfo.summary`` and fvcore's
``FlopCountAnalysis(...).total()`` with ``parameter_count``. Each tool's time is
its median over the rounds; the spread is (slowest - fastest) / median. Ratios
are convcalc's time over the other tool's: below 1 means convcalc is faster.
Tools that are not installed are left out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")


def _tools(model, shape):
    import torch

    from convcalc import analyse, from_torch

    tools = {"convcalc": lambda: analyse(from_torch(model, shape)).totals.macs}
    try:
        from torchinfo import summary

        tools["torchinfo"] = lambda: summary(model, input_size=(1, *shape), verbose=0).total_mult_adds
    except ImportError:
        pass
    try:
        from fvcore.nn import FlopCountAnalysis, parameter_count

        def fvcore_run():
            x = torch.zeros(1, *shape)
            analysis = FlopCountAnalysis(model, x)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            return analysis.total(), parameter_count(model)[""]

        tools["fvcore"] = fvcore_run
    except ImportError:
        pass
    return tools


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    from tests.torchvision_models import build

    model = build(args.model)
    shape = (3, args.size, args.size)
    tools = _tools(model, shape)
    for run in tools.values():  # warm up: first calls load code and caches
        run()
    times: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(args.rounds):
        for name, run in tools.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    ours = statistics.median(times["convcalc"])
    print(f"{args.model} at {'x'.join(map(str, shape))}, {args.rounds} interleaved rounds, medians:")
    print(f"{'tool':10s} {'median s':>9s} {'spread':>7s} {'convcalc / tool':>16s}")
    for name, values in times.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / median
        print(f"{name:10s} {median:9.3f} {spread:6.0%} {ours / median:16.2f}")
    noisy = [name for name, values in times.items()
             if (max(values) - min(values)) / statistics.median(values) > 0.15]
    if noisy:
        print(f"spread above 15% for {', '.join(noisy)}: the machine was busy; re-run before trusting the ratios")


if __name__ == "__main__":
    main()
