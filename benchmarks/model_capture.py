"""Reading a PyTorch model: convcalc's capture and analysis against torchinfo and fvcore, side by side.

    python benchmarks/model_capture.py [--model resnet50 vit_b_16 swin_t] [--rounds 7] [--size 224]

For each model, in one process, on the same model instance (torchvision's,
random weights), the tools run in turn, round after round: convcalc's
``from_torch`` plus ``analyse`` (with receptive fields), ``torchinfo.summary(model,
(1, 3, 224, 224), verbose=0)`` and fvcore's ``FlopCountAnalysis(...).total()``
with ``parameter_count``. Each tool's time is its median over the rounds; the
spread is (slowest - fastest) / median. The ratio is convcalc's time over the
other tool's in the same round (below 1: convcalc is faster): its median over
the rounds, and its lowest and highest. Tools that are not installed are left out.
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

        tools["torchinfo"] = lambda: summary(model, (1, *shape), verbose=0).total_mult_adds
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


def measure(name: str, size: int, rounds: int) -> None:
    from tests.torchvision_models import build

    model = build(name)
    shape = (3, size, size)
    tools = _tools(model, shape)
    for run in tools.values():  # warm up: first calls load code and caches
        run()
    times: dict[str, list[float]] = {tool: [] for tool in tools}
    for _ in range(rounds):
        for tool, run in tools.items():
            start = time.perf_counter()
            run()
            times[tool].append(time.perf_counter() - start)
    ours = times["convcalc"]
    print(f"{name} at {'x'.join(map(str, shape))}, {rounds} interleaved rounds:")
    print(f"  {'tool':10s} {'median s':>9s} {'spread':>7s} {'convcalc / tool: median (min-max)':>34s}")
    for tool, values in times.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / median
        ratios = [a / b for a, b in zip(ours, values)]
        ratio = f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(f"  {tool:10s} {median:9.3f} {spread:6.0%} {ratio:>34s}")
    noisy = [tool for tool, values in times.items()
             if (max(values) - min(values)) / statistics.median(values) > 0.15]
    if noisy:
        print(f"  spread above 15% for {', '.join(noisy)}: the machine was busy; re-run before trusting the ratios")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["resnet50", "vit_b_16", "swin_t"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    for name in args.model:
        measure(name, args.size, args.rounds)


if __name__ == "__main__":
    main()
