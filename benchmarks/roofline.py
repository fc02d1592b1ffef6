"""Is the roofline a lower bound on this machine? Each layer's bound with --device measure
against its measured time, for convcalc's NumPy backend and for PyTorch on CPU.

    python benchmarks/roofline.py [--batch 1] [--rounds 5]

For the ResNet-50 and MobileNetV2 presets (torchvision's models, layer for layer):

- convcalc: ``convcalc run``'s warm median per layer, the best over the rounds;
- PyTorch: every leaf module's time in a forward pass (a pre- and a post-hook
  read the clock around it), warm median per round, the best over the rounds;

then, per layer category, the median of measured / bound and how many layers
ran faster than their bound (a layer faster than its bound would prove the
bound wrong: the script lists each one). The machine is measured before and
after; if the two measurements differ by more than 15%, the machine was busy
and the script says its verdict is not to be trusted (a disturbed measurement
gives a low peak, and bounds that a quiet layer beats). Layers whose output is a view
(flatten, dropout at inference) have a bound of 0 and are left out. Needs torch
and torchvision for the PyTorch half; without them it measures convcalc only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict

from convcalc import analyse
from convcalc.backend.machine import measure_machine
from convcalc.engine.devices import Device
from convcalc.engine.roofline import roofline
from convcalc.presets import load_preset
from convcalc.verbs.execute import execute

PRESETS = ("resnet50", "mobilenet_v2")


def category(layer, report) -> str:
    if report.type.startswith("Conv"):
        if layer.groups > 1 and layer.groups == report.input_shape[0]:
            return "depthwise conv"
        kernel = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,)
        return "1x1 conv" if all(k == 1 for k in kernel) else "conv"
    return report.type


def convcalc_times(network, rounds: int) -> dict[int, float]:
    best: dict[int, float] = {}
    for _ in range(rounds):
        for run in execute(network).runs:
            best[run.index] = min(best.get(run.index, float("inf")), run.seconds)
    return best


def torch_times(name: str, network, batch: int, rounds: int) -> dict[int, float] | None:
    try:
        import torch
        sys.path.insert(0, "tests")
        from torchvision_models import build  # torchvision without its compiled operators (see that file)
    except ImportError:
        return None
    torch.set_num_threads(2)
    model = build(name)
    by_name = {layer.name: i + 1 for i, layer in enumerate(network.layers) if layer.name}
    spent: dict[str, list[float]] = defaultdict(list)
    starts: dict[str, float] = {}
    hooks = []
    for module_name, module in model.named_modules():
        if module_name and not any(True for _ in module.children()):
            hooks.append(module.register_forward_pre_hook(
                lambda m, a, n=module_name: starts.__setitem__(n, time.perf_counter())))
            hooks.append(module.register_forward_hook(
                lambda m, a, o, n=module_name: spent[n].append(time.perf_counter() - starts[n])))
    x = torch.randn(batch, 3, 224, 224)
    best: dict[int, float] = {}
    with torch.no_grad():
        for _ in range(rounds):
            spent.clear()
            for _ in range(6):
                model(x)
            for module_name, times in spent.items():
                index = by_name.get(module_name)
                if index is not None:
                    best[index] = min(best.get(index, float("inf")), statistics.median(times[1:]))
    for hook in hooks:
        hook.remove()
    return best


def _network(name: str, batch: int):
    """The model as torchvision's graph (layers named after its modules), or the preset without torch."""
    try:
        from convcalc import from_torch
        sys.path.insert(0, "tests")
        from torchvision_models import build

        return from_torch(build(name), (3, 224, 224), batch=batch)
    except Exception:  # noqa: BLE001 - without torch and torchvision: the preset, convcalc only
        network = load_preset(name)
        return type(network)(network.input_shape, network.layers, batch, network.dtype, network.frozen,
                             network.outputs)


def _report(analysis, bounds, engine: str, times) -> None:
    if not times:
        print(f"  {engine}: not measured (needs torch and torchvision)")
        return
    ratios: dict[str, list[float]] = defaultdict(list)
    faster = []
    for report, bound in zip(analysis.layers, bounds):
        if report.index not in times or not bound.seconds:
            continue
        ratio = times[report.index] / bound.seconds
        ratios[category(analysis.network.layers[report.index - 1], report)].append(ratio)
        if ratio < 1:
            faster.append(f"layer {report.index} {report.type} {report.summary}: {ratio:.2f}")
    summary = ", ".join(f"{kind} {statistics.median(r):.1f} ({len(r)})" for kind, r in sorted(ratios.items()))
    print(f"  {engine}: {summary}")
    print(f"  {engine}: {len(faster)} of {sum(len(r) for r in ratios.values())} layers faster than their bound")
    for line in faster:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    before, _ = measure_machine.__wrapped__()
    measured = {}
    for name in PRESETS:
        network = _network(name, args.batch)
        measured[name] = (network, convcalc_times(network, args.rounds),
                          torch_times(name, network, args.batch, args.rounds))
    after, largest = measure_machine.__wrapped__()
    # the best of the two measurements: what this machine can do (a bound needs the top)
    device = Device("this machine (measured)", {d: max(before.peak[d], after.peak[d]) for d in before.peak},
                    max(before.bandwidth, after.bandwidth))
    change = max(abs(after.peak["float32"] / before.peak["float32"] - 1), abs(after.bandwidth / before.bandwidth - 1))
    print(f"--device measure, before and after: peak {before.peak['float32'] / 1e9:.0f} and "
          f"{after.peak['float32'] / 1e9:.0f} GFLOP/s float32, bandwidth {before.bandwidth / 1e9:.0f} and "
          f"{after.bandwidth / 1e9:.0f} GB/s ({largest / 1e9:.0f} GB/s far beyond the caches); the bounds use the "
          "best of each")
    print("the two measurements agree within 15%: a quiet machine" if change <= 0.15 else
          f"the two measurements differ by {change:.0%}: the machine was busy, do not trust this verdict; re-run "
          "when it is quiet")
    for name, (network, ours, theirs) in measured.items():
        analysis = analyse(network)
        bounds = roofline(analysis, device).layers
        print(f"\n{name}, batch {args.batch}: measured / bound per layer category (median, and layers faster "
              "than their bound)")
        _report(analysis, bounds, "convcalc", ours)
        _report(analysis, bounds, "torch", theirs)


if __name__ == "__main__":
    main()
