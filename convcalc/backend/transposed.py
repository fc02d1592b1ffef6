"""Transposed convolution: one matrix product, then a strided scatter-add of the
kernel taps (col2im). No zero insertion: it would cost several times the time
and tens of times the memory."""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from .memory import TILE_BYTES, check_memory, scratch
from .workers import WORKERS, run_parallel


def convolve_transposed(x, weight, bias, stride, padding, output_padding, dilation, groups, out_sizes) -> np.ndarray:
    """``x`` (N, Cin, *S) with ``weight`` (Cin, Cout/groups, *K) to (N, Cout, *out_sizes)."""
    n, cin = x.shape[:2]
    per_group_out = weight.shape[1]
    kernel = weight.shape[2:]
    cout = per_group_out * groups
    sizes = x.shape[2:]
    rank = len(kernel)
    full = tuple((s - 1) * st + d * (k - 1) + 1 + op for s, st, d, k, op in zip(sizes, stride, dilation, kernel, output_padding))
    height = cout * prod(kernel)
    inner = prod(sizes[1:])
    itemsize = x.dtype.itemsize
    rows = min(sizes[0], max(1, TILE_BYTES // max(1, height * inner * itemsize)))
    check_memory(
        "this transposed convolution",
        {
            "output": n * cout * prod(out_sizes) * itemsize,
            "uncropped output": n * cout * prod(full) * itemsize,
            "tile buffers": height * rows * inner * itemsize * WORKERS,
        },
    )
    whole = np.zeros((n, cout, *full), dtype=x.dtype)
    # (G, Cout/G * K, Cin/G): the weight read transposed, without a copy
    w = weight.reshape(groups, cin // groups, per_group_out * prod(kernel)).transpose(0, 2, 1)
    xs = x.reshape(n, groups, cin // groups, sizes[0] * inner)
    taps = list(product(*(range(k) for k in kernel)))

    def task(i, worker):
        # Tiles of one sample overlap in the output, so a sample is one worker's.
        for first in range(0, sizes[0], rows):
            last = min(first + rows, sizes[0])
            count = last - first
            columns = scratch(height * count * inner, x.dtype).reshape(groups, height // groups, count * inner)
            np.matmul(w, xs[i, :, :, first * inner : last * inner], out=columns)
            columns = columns.reshape(cout, *kernel, count, *sizes[1:])
            for tap in taps:
                start = [t * d for t, d in zip(tap, dilation)]
                start[0] += first * stride[0]
                counts = (count, *sizes[1:])
                target = whole[(i, slice(None), *(slice(b, b + (c - 1) * s + 1, s) for b, c, s in zip(start, counts, stride)))]
                target += columns[(slice(None), *tap)]

    run_parallel(task, range(n))
    crop = (slice(None), slice(None), *(slice(p, p + o) for p, o in zip(padding, out_sizes)))
    y = np.ascontiguousarray(whole[crop])
    if bias is not None:
        y += bias.reshape((1, cout) + (1,) * rank)
    return y
