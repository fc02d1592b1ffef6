"""Convolution whose output rows share their input rows' columns.

Along the first spatial axis, output row r reads input rows r * stride - pad + t,
one per first-axis kernel tap t, so neighbouring output rows read mostly the
same input rows. Where each output row is a wide enough product on its own (a
3-d layer's planes, a wide image's rows), a tile copies the columns of the
trailing axes once per input row it reads, and every output row takes its
columns as one contiguous block of them: a kernel three taps deep copies each
input row once per tile instead of three times.
"""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from .blas import multiply
from .memory import TILE_BYTES, scratch
from .taps import copy_taps, tap_plan
from .workers import WORKERS, run_parallel

# Each output row is one product that reads all the weights. Rows this wide
# or wider are worth it whatever the weights' size (a 3-d layer's 28 x 28
# planes, 64 channels in and out: 6% faster), rows of at least ROW_PRODUCT
# positions when the weights stay in a core's cache (the 7x7 stem, 112 wide:
# 15% faster; 3x3 layers 112-256 wide with 3 to 64 channels: 4-24%); rows of 56
# were 4-8% slower, and 3x3 layers of 96 and 128 channels 112-128 wide 2-3%
# slower (best of 3-4 alternating processes).
WIDE_ROW = 512
ROW_PRODUCT = 96
ROW_WEIGHT_BYTES = 256 * 2**10


def rows_per_tile(weight_shape, stride, dilation, groups, out_sizes, itemsize, samples) -> int | None:
    """How many output rows (along the first axis) one tile of the input-row
    route holds, or None where that route does not apply: it needs several
    first-axis taps reading overlapping rows (stride below the kernel, no
    dilation), one group, rows whose products are wide enough, and the
    kernel's input rows within a tile's budget.

    >>> rows_per_tile((64, 3, 7, 7), (2, 2), (1, 1), 1, (112, 112), 4, 1)  # ResNet's stem
    56
    >>> rows_per_tile((64, 64, 3, 3), (1, 1), (1, 1), 1, (56, 56), 4, 1) is None  # rows too narrow
    True
    """
    cout, channels, *kernel = weight_shape
    positions = prod(out_sizes[1:])
    if (len(kernel) < 2 or groups != 1 or dilation[0] != 1 or stride[0] >= kernel[0]
            or positions < ROW_PRODUCT
            or (positions < WIDE_ROW and cout * channels * prod(kernel) * itemsize > ROW_WEIGHT_BYTES)):
        return None
    row_bytes = channels * prod(kernel[1:]) * positions * itemsize
    budget = 4 * TILE_BYTES // max(1, row_bytes)  # input rows a tile may hold
    if budget < kernel[0]:
        return None
    first = out_sizes[0]
    rows = min(first, (budget - kernel[0]) // stride[0] + 1)
    tiles = -(-first // rows)
    while (samples * tiles) % WORKERS and tiles < first:
        tiles += 1
    return -(-first // tiles)


def convolve_by_input_rows(x, weight, bias, stride, pads, dilation, out_sizes, rows) -> np.ndarray:
    """Cross-correlate ``x`` (N, C, *S) with ``weight`` (Cout, C, *K), tiles of
    ``rows`` output rows each (see rows_per_tile).

    The weights are put in the columns' order (first-axis tap, channel, other
    taps), so output row r's product reads kernel[0] input rows' columns from
    row r * stride - pad on. Measured on the benchmark's 3-d layer (3x3x3 over
    16 x 8 x 28 x 28): 1.79 to 1.38 ms at batch 1 and 12.0 to 10.7 ms at batch 8;
    its 7x7 stem: 2.06 to 1.76 ms at batch 1; 2-d layers over rows 512 and 1024
    wide: 5-6% faster (best of 3-4 alternating processes).
    """
    n, channels = x.shape[:2]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    sizes = x.shape[2:]
    positions = prod(out_sizes[1:])
    height = channels * prod(kernel[1:])  # one input row's columns
    y = np.empty((n, cout, *out_sizes), dtype=x.dtype)
    w = np.ascontiguousarray(np.moveaxis(weight, 2, 1)).reshape(cout, kernel[0] * height)
    plan = tap_plan(tuple(sizes[1:]), tuple(out_sizes[1:]), tuple(kernel[1:]), tuple(stride[1:]),
                    tuple(map(tuple, pads[1:])), tuple(dilation[1:]))

    def task(item, _worker):
        i, first = item
        last = min(first + rows, out_sizes[0])
        lo = first * stride[0] - pads[0][0]  # the input rows this tile reads: [lo, hi)
        hi = (last - 1) * stride[0] - pads[0][0] + kernel[0]
        columns = scratch((hi - lo) * height * positions, x.dtype).reshape(hi - lo, height, positions)
        start, stop = min(max(lo, 0), hi), max(min(hi, sizes[0]), lo)
        columns[: start - lo] = 0  # rows of padding
        columns[stop - lo :] = 0
        if start < stop:
            source = x[i, :, start:stop].swapaxes(0, 1)  # (rows, channels, *trailing): a view
            copy_taps(plan, source, columns[start - lo : stop - lo].reshape(
                stop - start, channels, *kernel[1:], positions), out_sizes[1:])
        flat = columns.reshape(-1, positions)
        count = last - first
        # output row r's columns: kernel[0] input rows from (r * stride - pad) on
        blocks = np.lib.stride_tricks.as_strided(
            flat, (count, kernel[0] * height, positions),
            (stride[0] * flat.strides[0] * height, *flat.strides), writeable=False)
        out = y[i, :, first:last].reshape(cout, count, positions).swapaxes(0, 1)
        # One NumPy call multiplies every row of the tile, then the bias is added:
        # BLAS adding each row into its bias would take a call from Python per
        # row, 5-10 us each (measured: the 7x7 stem, 56 rows a tile, 13% slower).
        multiply(np.broadcast_to(w, (count, *w.shape)), blocks,
                 None if bias is None else np.broadcast_to(bias, (count, cout)), out, fused=False)

    run_parallel(task, product(range(n), range(0, out_sizes[0], rows)))
    return y
