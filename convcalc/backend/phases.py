"""Transposed convolution as one ordinary convolution per output phase.

Output o of a transposed convolution sums x[i] * w[t] over the input positions i
and kernel taps t with i * stride + t * dilation = o + padding. Along an axis
with stride s, the outputs whose (o + padding) leave the same remainder r when
divided by s (a phase) are reached only by the taps with t * dilation = r
(mod s), and each reads input (o + padding - t * dilation) / s: within a phase,
a stride-1 cross-correlation of the input with those taps in reverse order. So
each phase is computed as an ordinary convolution, one matrix product of the
phase's weights by columns copied from the input, and written with the bias
into its interleaved place in the output.

Against col2im (backend/transposed.py) this multiplies no padded grid and adds
no tap's products into an accumulator, but gathers each phase's weights from
the whole kernel and copies each phase's columns. Measured (best of 2-6
alternating processes), it is faster on 2-d and 3-d layers with at least 64
output channels a group and, per phase, at least 256 positions over the batch:
the benchmark's layer (256 to 128 channels, 4x4, stride 2, 16 x 16) 5.5-6%,
3x3 stride-1 layers 10%, 4x4x4 3-d 17%, 4 samples of a 64-channel layer 7%.
It was slower elsewhere: 32 output channels 41%, 8 x 8 inputs 17%, 1-d layers
7-18% (col2im's adds are single runs there), and kernels no larger than the
stride 3-13% (col2im then adds nothing: each output is one tap's product).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from math import gcd, prod

import numpy as np

from .blas import direct_blas, multiply
from .memory import check_memory, scratch
from .taps import columns_from_input
from .workers import WORKERS, run_parallel

# Where phases beat col2im (see above).
MIN_PHASE_CHANNELS = 64
MIN_PHASE_POSITIONS = 256


def by_phases(weight_shape, stride, out_sizes, samples) -> bool:
    """Whether a transposed convolution goes by phases rather than col2im.

    >>> by_phases((256, 128, 4, 4), (2, 2), (32, 32), 1)  # 16 x 16 positions a phase
    True
    >>> by_phases((256, 128, 4), (2,), (4000,), 1)  # 1-d: col2im
    False
    """
    return (len(out_sizes) >= 2 and weight_shape[1] >= MIN_PHASE_CHANNELS
            and prod(out_sizes) // prod(stride) * samples >= MIN_PHASE_POSITIONS
            and any(k > s for k, s in zip(weight_shape[2:], stride)))  # else col2im adds nothing


# A row tile's columns (the input copied once per tap of its phase): a few MiB,
# so that BLAS gets a wide product.
COLUMN_BYTES = 4 * 2**20


def _axis_phases(out, kernel, stride, padding, dilation):
    """One axis's phases: for each remainder with outputs, (first output, output
    count, its taps as a slice of the kernel axis in correlation order or None,
    their number, their spacing in the input, the padding before the input)."""
    step = stride // gcd(dilation, stride)  # consecutive taps of one phase are this far apart
    phases = []
    for remainder in range(stride):
        first = (remainder - padding) % stride
        count = -(-(out - first) // stride) if out > first else 0
        if count == 0:
            continue
        taps = [t for t in range(kernel) if t * dilation % stride == remainder]
        if not taps:
            phases.append((first, count, None, 0, 1, 0))
            continue
        # output first + stride * n reads input n + m0 - (t * dilation - remainder) / stride
        m0 = (first + padding - remainder) // stride
        reach = (taps[-1] * dilation - remainder) // stride
        reverse = slice(taps[-1], taps[0] - 1 if taps[0] else None, -step)
        phases.append((first, count, reverse, len(taps), dilation // gcd(dilation, stride), reach - m0))
    return phases


@lru_cache(maxsize=256)  # a few tens of microseconds, a measurable share of a small layer
def _phases(out_sizes, kernel, stride, padding, dilation):
    """Every output phase: one axis phase per axis (see _axis_phases)."""
    return tuple(product(*(_axis_phases(*a) for a in zip(out_sizes, kernel, stride, padding, dilation))))


def convolve_by_phases(x, weight, bias, stride, padding, dilation, groups, out_sizes) -> np.ndarray:
    """``x`` (N, Cin, *S) with ``weight`` (Cin, Cout/groups, *K) to (N, Cout, *out_sizes)."""
    n, cin = x.shape[:2]
    per_group_in, per_group_out = cin // groups, weight.shape[1]
    cout = per_group_out * groups
    rank = len(out_sizes)
    itemsize = x.dtype.itemsize
    phases = _phases(tuple(out_sizes), tuple(weight.shape[2:]), tuple(stride), tuple(padding), tuple(dilation))
    widest = max(prod(p[3] for p in phase) for phase in phases)  # the most taps of any phase
    inner = max(prod(p[1] for p in phase[1:]) for phase in phases)  # outputs in one row of a phase
    rows = max(1, COLUMN_BYTES // max(1, cin * widest * inner * itemsize))
    items, rows = _pieces(phases, rows, n)
    check_memory("this transposed convolution", {
        "output": n * cout * prod(out_sizes) * itemsize,
        "tile buffers": WORKERS * (rows * inner * itemsize * (cin * widest + cout) + weight.nbytes),
    })
    y = np.empty((n, cout, *out_sizes), dtype=x.dtype)
    grouped = weight.reshape(groups, per_group_in, per_group_out, *weight.shape[2:])
    fused = direct_blas()  # asked here, before the workers start
    whole = all(s == 1 for s in stride)  # one phase, the output itself: products straight into it
    shaped_bias = None if bias is None else bias.reshape((-1,) + (1,) * rank)

    def task(item, _worker):
        phase, first, last, samples = item
        counts = [p[1] for p in phase]
        # where this piece's outputs go: every stride-th output from the phase's first
        target = (slice(phase[0][0] + first * stride[0], phase[0][0] + (last - 1) * stride[0] + 1, stride[0]),
                  *(slice(p[0], p[0] + (p[1] - 1) * s + 1, s) for p, s in zip(phase[1:], stride[1:])))
        taps = tuple(p[3] for p in phase)
        if 0 in taps:  # no tap reaches these outputs
            for i in samples:
                y[(i, slice(None), *target)] = 0 if bias is None else shaped_bias
            return
        # this phase's weights, (groups, Cin/groups * taps, Cout/groups): a reversed,
        # strided selection of the kernel, read transposed by the product
        depth = per_group_in * prod(taps)
        w = scratch(groups * depth * per_group_out, x.dtype, slot="weights").reshape(
            groups, per_group_in, *taps, per_group_out)
        np.copyto(w, np.moveaxis(grouped[(slice(None), slice(None), slice(None), *(p[2] for p in phase))], 2, -1))
        w = w.reshape(groups, depth, per_group_out).transpose(0, 2, 1)
        pads = tuple((p[5], 0) for p in phase)
        spacing = tuple(p[4] for p in phase)
        positions = (last - first) * prod(counts[1:])
        # one tap a phase reading the input as it is (kernel = stride): no copy
        as_is = all(t == 1 for t in taps) and not any(b for b, _ in pads) and tuple(counts) == x.shape[2:]
        for i in samples:
            if as_is:
                columns = x[i, :, first:last].reshape(groups, per_group_in, positions)
            else:
                columns = columns_from_input(x[i], groups, taps, pads, spacing, first, last, counts)
            if whole:
                out = y[i, :, first:last].reshape(groups, per_group_out, positions)
                multiply(w, columns, None if bias is None else bias.reshape(groups, -1), out, fused)
                continue
            grid = scratch(cout * positions, x.dtype, slot="grid").reshape(groups, per_group_out, positions)
            multiply(w, columns, None, grid, fused)
            grid = grid.reshape(cout, last - first, *counts[1:])
            if bias is None:
                np.copyto(y[(i, slice(None), *target)], grid)
            else:
                np.add(grid, shaped_bias, out=y[(i, slice(None), *target)])

    run_parallel(task, items)
    return y


def _pieces(phases, rows, samples):
    """Work items (phase, first row, end row, samples): tiles of at most ``rows``
    rows of each phase, and where their number would leave a worker idle at the
    end, the samples split between the workers, or (one sample) thinner tiles.
    The costliest come first: each worker takes the next as it finishes one."""
    longest = max(phase[0][1] for phase in phases)
    rows = min(rows, longest)
    chunks = 1
    if len(phases) * -(-longest // rows) % WORKERS:
        if samples >= WORKERS:
            chunks = WORKERS
        elif rows > 1:
            rows = -(-longest // (-(-longest // rows) + 1))
    share = -(-samples // chunks)
    items = [(phase, first, min(first + rows, phase[0][1]), range(start, min(start + share, samples)))
             for phase in phases for first in range(0, phase[0][1], rows) for start in range(0, samples, share)]
    items.sort(key=lambda item: -prod(p[3] for p in item[0]) * (item[2] - item[1]) * len(item[3]))
    return items, rows
