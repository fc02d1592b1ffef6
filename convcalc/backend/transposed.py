"""Transposed convolution: matrix products, then an add of each kernel tap's
products into the output (col2im); or, where that measured faster, one
ordinary convolution per output phase (backend/phases.py). No zero insertion:
it would cost several times the time and tens of times the memory.

The taps are added by output phase. Along an axis with stride s, tap t lands
on the outputs whose (position + padding) = t * dilation (mod s), shifted by
t * dilation // s. Each phase gets its own dense accumulator, so a tap's add is
one contiguous run per channel (the trailing axes are laid out with room for
the largest shift, and the zeros that pad them make the runs' wrap-around
harmless) instead of a strided add one short row at a time: measured, the
adds take a third of the time. Each phase is then copied, cropped and biased,
into its interleaved place in the output once.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from math import prod

import numpy as np

from .memory import check_memory, scratch
from .phases import by_phases, convolve_by_phases
from .workers import WORKERS, run_parallel

# Each work item accumulates a block of output channels in reused buffers of
# about this size: small enough to stay in cache while the taps are added;
# freshly allocated accumulators page-fault on every call (measured: the adds
# took three times as long into a new array).
BLOCK_BYTES = 2 * 2**20


# The products of one row tile: a few MiB, so that BLAS gets a wide product
# (measured: 2 MiB tiles cut the benchmark's 16-row layer into 15 rows and 1,
# and ran 7% slower at batch 8 than whole 16-row tiles).
COLUMN_BYTES = 4 * 2**20


def _axis_plan(size, out, kernel, stride, padding, dilation):
    """One axis: each tap's (phase, shift); each phase's (first output, first
    accumulator index, count) or None when no output has that phase; and the
    accumulator's extent."""
    taps = [((t * dilation) % stride, (t * dilation) // stride) for t in range(kernel)]
    phases = []
    for q in range(stride):
        first = -(-(padding - q) // stride)
        count = (padding + out - 1 - q) // stride - first + 1
        phases.append((q + stride * first - padding, first, count) if count > 0 else None)
    extent = max([size + max(shift for _, shift in taps)] + [p[1] + p[2] for p in phases if p])
    return taps, phases, extent


@lru_cache(maxsize=256)  # a few tens of microseconds, a measurable share of a small layer
def _layout(sizes, out_sizes, kernel, stride, padding, dilation):
    """Each axis's plan; the accumulator's extents and strides; the output
    phases; and each kernel tap's (index, phase number, shift in the accumulator)."""
    plans = [_axis_plan(*a) for a in zip(sizes, out_sizes, kernel, stride, padding, dilation)]
    extents = tuple(p[2] for p in plans)
    strides = [prod(extents[i + 1:]) for i in range(len(kernel))]
    phases = list(product(*(range(s) for s in stride)))
    taps = [(index, phases.index(tuple(p[0][t][0] for p, t in zip(plans, tap))),
             sum(p[0][t][1] * st for p, t, st in zip(plans, tap, strides)))
            for index, tap in enumerate(product(*(range(k) for k in kernel)))]
    return tuple(plans), extents, tuple(strides), tuple(phases), tuple(taps)  # cached: immutable


def convolve_transposed(x, weight, bias, stride, padding, output_padding, dilation, groups, out_sizes) -> np.ndarray:
    """``x`` (N, Cin, *S) with ``weight`` (Cin, Cout/groups, *K) to (N, Cout, *out_sizes)."""
    if by_phases(weight.shape, stride, out_sizes, x.shape[0]):
        return convolve_by_phases(x, weight, bias, stride, padding, dilation, groups, out_sizes)
    n, cin = x.shape[:2]
    per_group_out = weight.shape[1]
    kernel = weight.shape[2:]
    cout = per_group_out * groups
    sizes = x.shape[2:]
    rank = len(kernel)
    itemsize = x.dtype.itemsize
    plans, extents, strides, phases, taps = _layout(tuple(sizes), tuple(out_sizes), tuple(kernel), tuple(stride),
                                                    tuple(padding), tuple(dilation))
    # one spare first-axis row of the accumulator takes the zeros that
    # overhang the end when the last tap's run wraps
    grid = prod(extents) + strides[0]
    row = strides[0]  # one first-axis step of a tile, trailing axes padded
    block = _channel_block(per_group_out, groups * n, prod(stride) * grid * itemsize)
    rows = min(sizes[0], max(1, COLUMN_BYTES // max(1, block * prod(kernel) * row * itemsize)))
    rows = -(-sizes[0] // -(-sizes[0] // rows))  # tiles of equal height: no thin last tile
    padded_tile = cin // groups * rows * row * itemsize if extents[1:] != sizes[1:] else 0
    check_memory("this transposed convolution", {
        "output": n * cout * prod(out_sizes) * itemsize,
        "accumulators": WORKERS * block * prod(stride) * grid * itemsize,
        "tile buffers": WORKERS * (block * prod(kernel) * rows * row * itemsize + padded_tile),
    })
    y = np.empty((n, cout, *out_sizes), dtype=x.dtype)
    # (G, Cout/G * K, Cin/G): the weight read transposed, without a copy; its
    # rows are ordered by output channel, so a block of channels is a block of rows
    w = weight.reshape(groups, cin // groups, per_group_out * prod(kernel)).transpose(0, 2, 1)
    xs = x.reshape(n, groups, cin // groups, *sizes)
    reached = {number for _, number, _ in taps}

    def task(item, _worker):
        i, g, first_channel = item
        channels = min(block, per_group_out - first_channel)
        height = channels * prod(kernel)
        sums = scratch(len(phases) * channels * grid, x.dtype, slot="accumulator").reshape(len(phases), channels, grid)
        started = set()  # phases whose accumulator holds data
        weights = w[g, first_channel * prod(kernel) : first_channel * prod(kernel) + height]
        for first in range(0, sizes[0], rows):
            count = min(first + rows, sizes[0]) - first
            source = _padded_rows(xs[i, g], first, count, extents[1:])
            columns = scratch(height * count * row, x.dtype).reshape(height, count * row)
            np.matmul(weights, source.reshape(source.shape[0], -1), out=columns)
            columns = columns.reshape(channels, len(taps), count * row)
            for index, number, shift in taps:
                start = shift + first * row
                if number in started:
                    sums[number, :, start : start + count * row] += columns[:, index]
                    continue
                # A phase's first tap is copied, not added, with zeros around it:
                # no pass to clear the accumulator first.
                started.add(number)
                sums[number, :, :start] = 0
                sums[number, :, start : start + count * row] = columns[:, index]
                sums[number, :, start + count * row :] = 0
        channel = g * per_group_out + first_channel
        block_bias = None if bias is None else bias[channel : channel + channels].reshape((-1,) + (1,) * rank)
        for number, phase in enumerate(phases):
            spans = [p[1][q] for p, q in zip(plans, phase)]
            if None in spans:
                continue
            target = y[(i, slice(channel, channel + channels),
                        *(slice(o, o + (c - 1) * s + 1, s) for (o, _, c), s in zip(spans, stride)))]
            if number not in reached:
                target[...] = 0 if block_bias is None else block_bias
                continue
            whole = sums[number, :, : prod(extents)].reshape(channels, *extents)
            source = whole[(slice(None), *(slice(f, f + c) for _, f, c in spans))]
            if block_bias is None:
                np.copyto(target, source)
            else:
                np.add(source, block_bias, out=target)

    run_parallel(task, product(range(n), range(groups), range(0, per_group_out, block)))
    return y


def _padded_rows(source: np.ndarray, first: int, count: int, extents) -> np.ndarray:
    """Rows [first, first + count) of ``source`` (C, *S), its trailing axes
    zero-padded at the end to ``extents``."""
    rows = source[:, first : first + count]
    if tuple(extents) == rows.shape[2:]:
        return rows
    padded = scratch(rows.shape[0] * count * prod(extents), source.dtype, slot="slab").reshape(
        rows.shape[0], count, *extents)
    padded.fill(0)
    padded[(slice(None), slice(None), *(slice(0, s) for s in rows.shape[2:]))] = rows
    return padded


def _channel_block(channels: int, items: int, channel_bytes: int) -> int:
    """How many output channels of one group a work item accumulates: about
    BLOCK_BYTES, and enough items in all to keep every worker busy."""
    block = min(channels, max(1, BLOCK_BYTES // max(1, channel_bytes)))
    blocks = -(-channels // block)
    while (items * blocks) % WORKERS and blocks < channels:
        blocks += 1
    return -(-channels // blocks)
