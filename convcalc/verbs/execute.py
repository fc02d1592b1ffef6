"""Running a network on random data with the NumPy backend, layer by layer.

Weights and input are drawn from a seeded generator (PyTorch's default
initialisation bounds, 1/sqrt(fan_in)), so a run is reproducible. Every
layer's output shape is checked against the analysis: a disagreement is a
bug in convcalc and is reported as one.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..backend.memory import check_memory, holding, release_scratch
from ..engine.analysis import analyse
from ..engine.errors import ConsistencyError, ConvcalcError, SpecError
from ..engine.graph import INPUT
from ..engine.layers.base import format_shape
from ..engine.memory import inference_memory, view_layers
from ..engine.network import Analysis, Network
from .preparers import prepare_layer

RUN_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class LayerRun:
    """What executing one layer measured."""

    index: int
    seconds: float
    gflops: float | None  # 2 x MACs per second, for layers that multiply-accumulate
    mean: float
    std: float
    minimum: float
    maximum: float
    runs: int = 1  # timed runs after the warm-up
    spread: float = 0.0  # interquartile range / median of the timed runs


@dataclass(frozen=True)
class Execution:
    """An analysis with the measurements of running it.

    ``live_bytes`` has, per layer in execution order, the activation memory
    measured while its first call ran: the arrays the run still held (each
    storage once) plus what the call allocated at its peak (its output and
    its work buffers, traced by ``tracemalloc``, to which NumPy reports).
    """

    analysis: Analysis
    runs: tuple[LayerRun, ...]
    seed: int
    repeat: int | None = None  # None: automatic
    live_bytes: tuple[int, ...] = ()
    held_bytes: tuple[int, ...] = ()  # of live_bytes: the arrays held before the call

    @property
    def peak_bytes(self) -> int:
        """The measured peak of activation memory, work buffers included."""
        return max(self.live_bytes, default=0)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for r in self.runs)

    def to_dict(self, optimizer: str = "adam", device=None) -> dict:
        """The ``convcalc.shape/1`` object with a ``run`` entry per layer and overall."""
        data = self.analysis.to_dict(optimizer, device)
        for layer, run in zip(data["layers"], self.runs):
            layer["run"] = {
                "seconds": run.seconds,
                "runs": run.runs,
                "spread": run.spread,
                "gflops": run.gflops,
                "output": {"mean": run.mean, "std": run.std, "min": run.minimum, "max": run.maximum},
            }
        for layer, live in zip(data["layers"], self.live_bytes):
            layer["run"]["live_bytes"] = live
        data["run"] = {"seed": self.seed, "repeat": self.repeat, "dtype": self.analysis.network.dtype,
                       "seconds": self.seconds, "peak_bytes": self.peak_bytes}
        return data


def _reader_counts(sources) -> dict:
    counts: dict = {}
    for srcs in sources:
        for s in set(srcs):
            counts[s] = counts.get(s, 0) + 1
    return counts


# Automatic repeats, as timeit chooses them: at least MIN_RUNS warm runs, more until a layer has run
# for MIN_SECONDS, never more than MAX_RUNS.
MIN_RUNS, MAX_RUNS, MIN_SECONDS = 3, 50, 0.05
# A repeat asked for: at most MAX_REPEAT (more is refused), and a layer stops repeating once its timed
# runs have taken REPEAT_SECONDS, as benchmark tools bound a round's time; each layer's "runs" says how
# many were made.
MAX_REPEAT, REPEAT_SECONDS = 10_000, 10.0


def _spread(times: list[float], median: float) -> float:
    """How much the runs vary, relative to their median: the interquartile range (the range, for
    fewer than 5 runs), so one run disturbed by the machine does not dominate."""
    if median <= 0 or len(times) < 2:
        return 0.0
    if len(times) < 5:
        return (max(times) - min(times)) / median
    quartiles = statistics.quantiles(times, n=4)
    return (quartiles[2] - quartiles[0]) / median


def _timed(call, inputs, repeat: int | None) -> list[float]:
    """The times of ``repeat`` warm runs (fewer once they have taken REPEAT_SECONDS), or of an
    automatic number of them (repeat None)."""
    times: list[float] = []
    while True:
        start = time.perf_counter()
        call(*inputs)
        times.append(time.perf_counter() - start)
        if repeat is not None:
            if len(times) >= repeat or sum(times) >= REPEAT_SECONDS:
                return times
        elif len(times) >= MAX_RUNS or (len(times) >= MIN_RUNS and sum(times) >= MIN_SECONDS):
            return times


def check_repeat(repeat: int | None) -> None:
    """Refuse a repeat that is not a count from 1 to MAX_REPEAT (None: automatic)."""
    if repeat is None:
        return
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise SpecError(f"repeat must be a positive integer (got {repeat!r})", hint="e.g. --repeat 5", field="repeat")
    if repeat > MAX_REPEAT:
        raise SpecError(f"--repeat {repeat:,} is more than {MAX_REPEAT:,} runs a layer",
                        hint=f"give at most {MAX_REPEAT:,}, or leave --repeat out to choose automatically",
                        field="repeat")


def execute(network: Network, *, seed: int = 0, repeat: int | None = None, progress=None) -> Execution:
    """Analyse ``network``, then run it on random data, timing every layer.

    Each layer runs once to warm up, then ``repeat`` times (at most MAX_REPEAT, and fewer once
    they have taken REPEAT_SECONDS; None: automatically, as timeit chooses, until the time is
    stable) on the same input and weights; its time is the median. ``progress``, if given, is called with (layers done, layers in all).

    >>> from convcalc import Network, parse_layer
    >>> net = Network((3, 16, 16), (parse_layer("conv:8,k=3,p=1"), parse_layer("relu")), batch=2)
    >>> result = execute(net, seed=1)
    >>> [r.index for r in result.runs], result.runs[1].minimum >= 0
    ([1, 2], True)
    """
    check_repeat(repeat)
    if network.dtype not in RUN_DTYPES:
        raise SpecError(f"convcalc runs float32 or float64, not {network.dtype}", hint="use --dtype float32",
                        field="dtype")
    analysis = analyse(network)
    dtype = np.dtype(network.dtype)
    sources, order = analysis.sources, analysis.order
    reports = {r.index - 1: r for r in analysis.layers}
    # what is alive at once: the activations still to be read (the analysis's peak), and one layer's parameters
    check_memory("this run", {
        "activations": inference_memory(analysis).peak_bytes,
        "parameters of the largest layer": max((r.params * dtype.itemsize for r in analysis.layers), default=0),
    })
    rng = np.random.default_rng(seed)
    outputs = {INPUT: rng.standard_normal((network.batch, *network.input_shape), dtype=dtype)}
    readers = _reader_counts(sources)
    views = view_layers(analysis)
    runs, live, holds = [], [], []
    for i in order:
        layer, report = network.layers[i], reports[i]
        inputs = [outputs[s] for s in sources[i]]
        try:
            held = _held_bytes(outputs.values())
            # every check while the layer runs counts what is held beside it: the live activations and
            # its parameters; the kernels' own checks add their output and work buffers
            kept = {"activations held": held, "parameters": report.params * dtype.itemsize}
            check_memory("this layer", {**kept, "output": 0 if i in views else report.activation_bytes})
            with holding(kept):
                call = prepare_layer(layer, inputs[0], rng)
                with _allocations() as allocated:
                    y = call(*inputs)  # the warm-up: first calls pay for page faults and caches
                live.append(held + allocated())
                holds.append(held)
                times = _timed(call, inputs, repeat)
            release_scratch()  # work buffers are kept between a layer's runs, not beside the next layer
        except ConvcalcError as err:
            raise err.located(layer=report.index, origin=layer.origin)
        seconds = statistics.median(times)
        if y.shape[1:] != tuple(report.output_shape) or y.dtype != dtype:
            raise ConsistencyError(
                f"the backend produced {format_shape(y.shape[1:])} ({y.dtype}) where the analysis says "
                f"{format_shape(report.output_shape)} ({dtype}): this is a bug in convcalc",
                hint="please report it with the command line that shows it",
                layer=report.index,
                origin=layer.origin,
            )
        stats = y.astype(np.float64, copy=False) if y.size else np.zeros(1)
        runs.append(LayerRun(
            index=report.index,
            seconds=seconds,
            gflops=2 * report.macs / seconds / 1e9 if report.macs and seconds > 0 else None,
            mean=float(stats.mean()), std=float(stats.std()), minimum=float(stats.min()), maximum=float(stats.max()),
            runs=len(times), spread=_spread(times, seconds),
        ))
        outputs[i] = y
        for s in set(sources[i]):  # drop what nothing reads any more
            readers[s] -= 1
            if readers[s] == 0:
                del outputs[s]
        if progress is not None:
            progress(len(runs), len(network.layers))
    return Execution(analysis, tuple(runs), seed, repeat, tuple(live), tuple(holds))


def _held_bytes(arrays) -> int:
    """The bytes of the storages behind ``arrays``, each counted once (views share one)."""
    owners = {}
    for array in arrays:
        while isinstance(array.base, np.ndarray):
            array = array.base
        owners[id(array)] = array.nbytes
    return sum(owners.values())


@contextmanager
def _allocations():
    """Trace allocations inside the block; yields a function giving the peak
    bytes allocated above the start. Timed runs happen outside it: tracing
    slows every allocation."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    else:
        tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    peak = [0]
    try:
        yield lambda: peak[0]
    finally:
        peak[0] = max(0, tracemalloc.get_traced_memory()[1] - base)
        if started:
            tracemalloc.stop()
