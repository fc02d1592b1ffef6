"""convcalc's NumPy backend against PyTorch on CPU, layer by layer, measured so a re-run agrees.

    python benchmarks/conv_vs_torch.py [--rounds 7] [--quick] [--markdown] [--only CATEGORY] [--save FILE]
                                       [--system-allocator]

The two engines run interleaved, round after round (torch, convcalc, convcalc,
torch, ... : the order alternates), each round in a fresh process of its own
(their thread pools fight when mixed in one). Each process times every layer:
a warm-up, then the median of repeated calls. Each engine's figure for a layer
is its best median over the rounds; its spread is (worst - best) / best over the
rounds. Where an engine's spread exceeds 15% the machine was too noisy and the
script says the ratios are not to be trusted.

Both engines' processes run with glibc told to keep freed memory for reuse
(MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ raised): the effect of the
caching allocator (jemalloc, TCMalloc) that PyTorch's performance tuning guide
recommends for CPU work. With glibc's defaults PyTorch takes 12,000 to 16,000
page faults per call on the layers whose buffers exceed glibc's thresholds
(measured: the 7x7 stem at batch 8 runs in 26 ms instead of 11-12 ms, and its
rounds alternate between the two), while convcalc, which reuses its own work
buffers, takes none; the ratios would then credit convcalc with PyTorch's page
faults. --system-allocator measures with the environment as it is.

Prints per layer and batch: GFLOP/s of each (2 x MACs / time), the ratio
convcalc/torch (above 1: convcalc is faster), both spreads, convcalc's
throughput as a fraction of NumPy's own float32 GEMM measured in the same run
(a 2048 x 2048 matmul: the machine's practical limit, so progress can be judged
without torch), and convcalc's peak temporary memory beyond the output; then the
geometric mean of the ratio per category against its target. Needs torch.

Two more columns say what a backend built on NumPy's matmul can reach: "of
product" is convcalc's throughput over that of the layer's bare matrix product
(one sample's im2col product, or col2im for a transposed layer, by NumPy's own
batched matmul on its own threads, times the batch: the arithmetic without any
copying), and "product ratio" is the ratio that bare product alone would get
against torch, the ceiling for such a backend.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

# name, category, input (C, *spatial), conv arguments
SUITE = [
    ("resnet50 64->64 3x3 @56", "dense", (64, 56, 56), dict(out=64, k=3, p=1)),
    ("resnet50 256->64 1x1 @56", "1x1", (256, 56, 56), dict(out=64, k=1)),
    ("resnet50 128->128 3x3 s2 @56", "dense", (128, 56, 56), dict(out=128, k=3, s=2, p=1)),
    ("resnet50 512->512 3x3 @7", "dense", (512, 7, 7), dict(out=512, k=3, p=1)),
    ("stem 3->64 7x7 s2 @224", "dense", (3, 224, 224), dict(out=64, k=7, s=2, p=3)),
    ("depthwise 144 3x3 @56", "depthwise", (144, 56, 56), dict(out=144, k=3, p=1, g=144)),
    ("grouped 128 3x3 g32 @56", "grouped", (128, 56, 56), dict(out=128, k=3, p=1, g=32)),
    ("dilated 256->256 3x3 d2 @28", "dense", (256, 28, 28), dict(out=256, k=3, p=2, d=2)),
    ("transposed 256->128 k4 s2 @16", "transposed", (256, 16, 16), dict(out=128, k=4, s=2, p=1, t=True)),
    ("conv1d 64->64 k3 @16000", "dense", (64, 16000), dict(out=64, k=3, p=1)),
    ("conv3d 16->32 k3 @8x28x28", "dense", (16, 8, 28, 28), dict(out=32, k=3, p=1)),
]
ALLOCATOR_WARMUP = 16 * 2**20  # below glibc's largest dynamic mmap threshold (32 MiB on 64-bit systems)
# glibc keeps freed blocks up to this size in its heap instead of unmapping them,
# and returns no memory to the system until this much is free at the top of it
KEEP_FREED = {"MALLOC_MMAP_THRESHOLD_": str(256 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)}
TARGETS = {"dense": 0.75, "1x1": 1.0, "transposed": 0.7, "grouped": 0.5, "depthwise": 0.3}


def _arrays(shape, spec, batch, np):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    rank = len(shape) - 1
    g = spec.get("g", 1)
    kernel = (spec["k"],) * rank
    if spec.get("t"):
        w = rng.standard_normal((shape[0], spec["out"] // g, *kernel), dtype=np.float32)
    else:
        w = rng.standard_normal((spec["out"], shape[0] // g, *kernel), dtype=np.float32)
    b = rng.standard_normal(spec["out"], dtype=np.float32)
    return x, w, b


def _time(call, budget: float) -> float:
    call()  # warm up: first-touch of buffers, thread pools
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < 50):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(backend: str, batches, budget: float, only: str | None = None) -> dict:
    import numpy as np

    results = {}
    # Both engines start with the C allocator alike. glibc serves a block above its mmap threshold
    # with fresh pages (a page fault per 4 KiB on first touch, about 2 ms for a 1.8 MB output) until
    # freeing such a block raises the threshold to its size; one 16 MiB block freed up front makes a
    # layer's figure the same whether the suite runs whole or with --only (measured: PyTorch's
    # depthwise layer took 2.1 ms cold and 0.25 ms once a large convolution had run before it).
    if backend == "torch":
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(2)
        torch.set_grad_enabled(False)
        del_after = torch.ones(ALLOCATOR_WARMUP // 4)
    else:
        import tracemalloc

        import convcalc.functional as F

        del_after = np.ones(ALLOCATOR_WARMUP // 4, dtype=np.float32)
    del del_after
    for name, _, shape, spec in _suite(only):
        for batch in batches:
            x, w, b = _arrays(shape, spec, batch, np)
            s, p, d, g = spec.get("s", 1), spec.get("p", 0), spec.get("d", 1), spec.get("g", 1)
            rank = len(shape) - 1
            if backend == "torch":
                tx, tw, tb = map(torch.from_numpy, (x, w, b))
                fn = getattr(F, f"conv_transpose{rank}d" if spec.get("t") else f"conv{rank}d")
                call = (lambda: fn(tx, tw, tb, s, p, 0, g, d)) if spec.get("t") else (lambda: fn(tx, tw, tb, s, p, d, g))
                peak = None
            else:
                call = (lambda: F.conv_transpose(x, w, b, s, p, 0, g, d)) if spec.get("t") else (
                    lambda: F.conv(x, w, b, s, p, d, g))
                # a first call with no work buffers kept: everything it allocates
                # beyond its output counts, the buffers it keeps for reuse included
                F.release_scratch()
                tracemalloc.start()
                base = tracemalloc.get_traced_memory()[0]
                out = call()
                peak = tracemalloc.get_traced_memory()[1] - base - out.nbytes
                tracemalloc.stop()
                del out
            results[f"{name}|{batch}"] = {"seconds": _time(call, budget), "peak": peak}
    # The bare products come last: their large arrays change the C allocator's
    # state (its mmap and trim thresholds) for whatever runs after them, and the
    # two engines' processes must have run the same things before each layer.
    for name, _, shape, spec in _suite(only) if backend == "numpy" else ():
        for batch in batches:
            results[f"{name}|{batch}"]["product"] = batch * _time(_product(shape, spec, np), budget / 2)
    return results


def _product(shape, spec, np):
    """One sample's matrix product as an im2col (or, transposed, col2im) engine
    runs it: NumPy's own batched matmul over the groups, on its own threads. The
    layer's arithmetic without any of the copying around it."""
    from convcalc import Conv

    rank = len(shape) - 1
    g, k = spec.get("g", 1), spec["k"] ** rank
    if spec.get("t"):
        rows, depth, columns = spec["out"] // g * k, shape[0] // g, math.prod(shape[1:])
    else:
        out = Conv(spec["out"], spec["k"], spec.get("s", 1), spec.get("p", 0), dilation=spec.get("d", 1),
                   groups=g, rank=rank).infer(shape).output_shape
        rows, depth, columns = spec["out"] // g, shape[0] // g * k, math.prod(out[1:])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((g, rows, depth), dtype=np.float32)
    b = rng.standard_normal((g, depth, columns), dtype=np.float32)
    c = np.empty((g, rows, columns), dtype=np.float32)
    return lambda: np.matmul(a, b, out=c)


def _suite(only: str | None):
    return [entry for entry in SUITE if only is None or entry[1] == only]


def macs(shape, spec, batch) -> int:
    from convcalc import ConvTranspose, Conv

    rank = len(shape) - 1
    layer = (ConvTranspose if spec.get("t") else Conv)(
        spec["out"], spec["k"], spec.get("s", 1), spec.get("p", 0), **({"dilation": spec.get("d", 1)}),
        groups=spec.get("g", 1), rank=rank)
    return batch * layer.infer(shape).macs


NOISE = 0.15  # an engine's spread over the rounds above this: the ratios are not to be trusted
GEMM_SIZE = 2048


def gemm_gflops(np) -> float:
    """NumPy's float32 matrix multiply throughput on this machine, best of a few."""
    a = np.random.default_rng(0).standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32)
    a @ a
    best = min(_once(lambda: a @ a) for _ in range(5))
    return 2 * GEMM_SIZE**3 / best / 1e9


def _once(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _round(backend: str, batches: str, quick: bool, only: str | None, keep_freed: bool) -> dict:
    command = [sys.executable, __file__, "--backend", backend, "--batches", batches] + (["--quick"] if quick else [])
    command += ["--only", only] if only else []
    environment = {**os.environ, **KEEP_FREED} if keep_freed else None
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode:
        sys.exit(f"the {backend} round failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="shorter timing budget per layer")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--batches", default="1,8")
    # On a shared machine a burst of load can slow all five rounds of one engine
    # on a layer (seen: every convcalc round of one layer 12-35% above its quiet
    # figure); seven give each engine more chances at a quiet moment.
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds of each engine (at least 5)")
    parser.add_argument("--only", choices=sorted(TARGETS), help="measure one category's layers only")
    parser.add_argument("--save", metavar="FILE", help="also write every round's raw figures to FILE (JSON)")
    parser.add_argument("--system-allocator", action="store_true",
                        help="run both engines with glibc's default thresholds (PyTorch then pays page faults)")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    budget = 0.3 if args.quick else 1.0
    if args.backend:
        results = measure(args.backend, batches, budget, args.only)
        if args.backend == "numpy":
            import numpy as np
            from threadpoolctl import threadpool_info

            results["_gemm"] = gemm_gflops(np)
            results["_blas"] = ", ".join(f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info())
        print(json.dumps(results))
        return
    rounds: dict[str, list[dict]] = {"numpy": [], "torch": []}
    args.rounds = max(args.rounds, 5)  # fewer rounds cannot tell noise from a difference
    for r in range(args.rounds):
        for backend in (("torch", "numpy") if r % 2 == 0 else ("numpy", "torch")):
            rounds[backend].append(_round(backend, args.batches, args.quick, args.only, not args.system_allocator))
            print(f"round {r + 1}/{args.rounds}: {backend} done", file=sys.stderr)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as handle:
            json.dump(rounds, handle)
    gemm = max(run["_gemm"] for run in rounds["numpy"])
    rows, ratios, noisy = [], {}, []
    for name, category, shape, spec in _suite(args.only):
        for batch in batches:
            key = f"{name}|{batch}"
            flops = 2 * macs(shape, spec, batch)
            best, spread = {}, {}
            for backend, runs in rounds.items():
                times = [run[key]["seconds"] for run in runs]
                best[backend], spread[backend] = min(times), (max(times) - min(times)) / min(times)
                if spread[backend] > NOISE:
                    noisy.append(f"{backend} {name} batch {batch} ({spread[backend]:.0%})")
            ratio = best["torch"] / best["numpy"]
            ratios.setdefault(category, []).append(ratio)
            ours = flops / best["numpy"] / 1e9
            product = min(run[key]["product"] for run in rounds["numpy"])
            rows.append((name, str(batch), f"{ours:.1f}", f"{flops / best['torch'] / 1e9:.1f}", f"{ratio:.2f}",
                         f"{spread['numpy']:.0%}", f"{spread['torch']:.0%}", f"{ours / gemm:.0%}",
                         f"{product / best['numpy']:.0%}", f"{best['torch'] / product:.2f}",
                         f"{rounds['numpy'][0][key]['peak'] / 2**20:.1f}"))
    header = ("layer", "batch", "convcalc GFLOP/s", "torch GFLOP/s", "ratio", "spread convcalc", "spread torch",
              "of GEMM", "of product", "product ratio", "peak temp MiB")
    means = {category: math.exp(statistics.fmean(math.log(r) for r in values)) for category, values in ratios.items()}
    # three decimals: at two, a mean of 0.749 would print as its 0.75 target, "not met"
    summary = [(category, f"{mean:.3f}", f">= {TARGETS[category]}", "met" if mean >= TARGETS[category] else "not met")
               for category, mean in means.items()]
    allocator = "glibc's defaults" if args.system_allocator else "glibc keeping freed memory"
    machine = (f"{args.rounds} interleaved rounds per engine, best median of each, {allocator}; NumPy float32 GEMM "
               f"{GEMM_SIZE}x{GEMM_SIZE}: {gemm:.0f} GFLOP/s ({rounds['numpy'][0]['_blas']})")
    verdict = (f"spread above {NOISE:.0%} for {len(noisy)} measurement(s): the machine was too noisy, do not trust "
               "these ratios; re-run when it is quiet" if noisy else f"every spread within {NOISE:.0%}")
    if args.markdown:
        print(machine + "\n")
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        print("\n".join("| " + " | ".join(r) + " |" for r in rows))
        print("\n| category | geometric mean ratio | target | |\n|---|---|---|---|")
        print("\n".join("| " + " | ".join(r) + " |" for r in summary))
        print("\n" + verdict)
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(machine)
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print()
    for category, mean, target, met in summary:
        print(f"{category:11s} geometric mean convcalc/torch = {mean}  (target {target}: {met})")
    print(verdict)
    for item in noisy:
        print(f"  noisy: {item}")


if __name__ == "__main__":
    main()
