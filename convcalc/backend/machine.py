"""This machine as a roofline device: NumPy's matrix-multiply throughput and the
memory bandwidth its copies reach, measured in 8-10 s on a 2-core machine.

Both are best figures, so the roofline stays a lower bound: the peak is the
fastest of a few float32 and float64 matrix products, and the bandwidth the
fastest stream (an in-place scaling or a copy) over working sets from
cache-sized to far larger than any cache, on one thread or on every worker
thread at once: a layer whose data sits in cache moves it at cache speed. The
bandwidth of the largest working set, what a layer far larger than the caches
gets, is kept beside it.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from ..engine.devices import Device
from .workers import WORKERS, run_parallel

GEMM_SIZES = (1024, 2048)
STREAM_KIB = (256, 1024, 4096, 8192, 32768, 131072)
STREAM_BYTES = 64 * 2**20  # moved per timing at the small sizes (repeats amortize the threads' start)


def _best(call, rounds: int = 3) -> float:
    call()  # first touch
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _matmul_flops(dtype) -> int:
    best = 0.0
    for n in GEMM_SIZES:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
        best = max(best, 2 * n**3 / _best(lambda: a @ a, 7))  # the best of several: a bound needs the top
    return int(best)


def _stream_bandwidth() -> tuple[int, int]:
    """The best rate (bytes read + written per second) of an in-place scaling and of a copy, over
    working sets from cache-sized to far larger than the caches, on one thread or on every worker;
    and the largest working set's best.

    In place, a layer reads and writes the same cache lines, which a copy cannot do (it must fetch
    its destination first): measured, an in-place scaling moves data faster than any copy.
    """
    one = np.float32(1)
    kernels = (lambda a, b: np.multiply(a, one, out=a), lambda a, b: np.copyto(b, a))
    best, largest = 0.0, 0.0
    for kib in STREAM_KIB:
        source = np.ones(kib * 256, dtype=np.float32)
        target = np.empty_like(source)
        repeats = max(1, STREAM_BYTES // source.nbytes)
        pieces = list(zip(np.array_split(source, WORKERS), np.array_split(target, WORKERS)))
        for kernel in kernels:
            def alone(kernel=kernel):
                for _ in range(repeats):
                    kernel(source, target)

            def shared(kernel=kernel):
                def task(piece, _worker):
                    for _ in range(repeats):
                        kernel(*piece)
                run_parallel(task, pieces)

            rate = 2 * source.nbytes * repeats / min(_best(alone), _best(shared))
            best = max(best, rate)
            if kib == STREAM_KIB[-1]:
                largest = max(largest, rate)
    return int(best), int(largest)


@lru_cache(maxsize=1)
def measure_machine() -> tuple[Device, int]:
    """This machine as a ``Device``, and the bandwidth of copies far larger than its caches."""
    bandwidth, largest = _stream_bandwidth()
    peak = {"float32": _matmul_flops(np.float32), "float64": _matmul_flops(np.float64)}
    return Device("this machine (measured)", peak, bandwidth,
                  "measured: best NumPy matrix product of 1024 and 2048 square; best in-place scaling or copy over 256 KiB "
                  "to 128 MiB"), largest
