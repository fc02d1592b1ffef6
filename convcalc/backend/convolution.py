"""Convolution on NumPy arrays: tiled im2col, a 1x1 fast path, and tap accumulation
for depthwise layers. Inputs arrive already padded; shapes already checked."""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from .memory import TILE_BYTES, check_memory
from .workers import WORKERS, run_parallel


def window_view(xp: np.ndarray, out_sizes, kernel, stride, dilation) -> np.ndarray:
    """A read-only (N, C, *out, *kernel) view of the padded input: no copy."""
    spatial = xp.strides[2:]
    shape = (*xp.shape[:2], *out_sizes, *kernel)
    strides = (*xp.strides[:2], *(s * st for s, st in zip(spatial, stride)), *(s * d for s, d in zip(spatial, dilation)))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def convolve(xp, weight, bias, stride, dilation, groups, out_sizes) -> np.ndarray:
    """Cross-correlate the padded input ``xp`` (N, C, *S) with ``weight`` (Cout, C/groups, *K)."""
    n, channels = xp.shape[:2]
    cout, per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    itemsize = xp.dtype.itemsize
    output_bytes = n * cout * prod(out_sizes) * itemsize
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and tuple(out_sizes) == xp.shape[2:]:
        check_memory("this convolution", {"output": output_bytes})
        y = _pointwise(xp, weight, groups)
    elif per_group == 1:
        check_memory("this convolution", {"output": output_bytes, "temporaries": output_bytes // max(n, 1) * WORKERS})
        y = _depthwise(xp, weight, groups, stride, dilation, out_sizes)
    else:
        rows, _ = _tile_rows(channels * prod(kernel), out_sizes, itemsize)
        tile = channels * prod(kernel) * rows * prod(out_sizes[1:]) * itemsize
        check_memory("this convolution", {"output": output_bytes, "tile buffers": tile * WORKERS})
        y = _im2col(xp, weight, groups, stride, dilation, out_sizes)
    if bias is not None:
        y += bias.reshape((1, cout) + (1,) * len(out_sizes))
    return y


def _tile_rows(column_height: int, out_sizes, itemsize: int) -> tuple[int, int]:
    """How many rows of the first output axis one tile holds, and the columns per row."""
    inner = prod(out_sizes[1:])
    rows = max(1, TILE_BYTES // max(1, column_height * inner * itemsize))
    return min(rows, out_sizes[0]), inner


def _pointwise(x, weight, groups) -> np.ndarray:
    # A 1x1 convolution is one matrix product per sample, written straight into the output.
    n, channels = x.shape[:2]
    cout = weight.shape[0]
    positions = prod(x.shape[2:])
    y = np.empty((n, cout, *x.shape[2:]), dtype=x.dtype)
    w = weight.reshape(groups, cout // groups, channels // groups)
    xs = x.reshape(n, groups, channels // groups, positions)
    ys = y.reshape(n, groups, cout // groups, positions)

    def task(i, _worker):
        np.matmul(w, xs[i], out=ys[i])

    run_parallel(task, range(n))
    return y


def _im2col(xp, weight, groups, stride, dilation, out_sizes) -> np.ndarray:
    n, channels = xp.shape[:2]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    rank = len(kernel)
    height = channels * prod(kernel)
    rows, inner = _tile_rows(height, out_sizes, xp.dtype.itemsize)
    view = window_view(xp, out_sizes, kernel, stride, dilation)
    # (C, *out, *K) -> (C, *K, *out): the column order of the weight's rows
    order = (0, *range(rank + 1, 2 * rank + 1), *range(1, rank + 1))
    y = np.empty((n, cout, *out_sizes), dtype=xp.dtype)
    w = weight.reshape(groups, cout // groups, height // groups)
    ys = y.reshape(n, groups, cout // groups, out_sizes[0] * inner)
    buffers = [np.empty(height * rows * inner, dtype=xp.dtype) for _ in range(WORKERS)]

    def task(item, worker):
        i, first = item
        last = min(first + rows, out_sizes[0])
        count = last - first
        columns = buffers[worker][: height * count * inner].reshape(channels, *kernel, count, *out_sizes[1:])
        np.copyto(columns, view[i, :, first:last].transpose(order))
        np.matmul(w, columns.reshape(groups, height // groups, count * inner),
                  out=ys[i, :, :, first * inner : last * inner])

    run_parallel(task, product(range(n), range(0, out_sizes[0], rows)))
    return y


def _depthwise(xp, weight, groups, stride, dilation, out_sizes) -> np.ndarray:
    # One input channel per group: a matrix product would have a single row, so
    # accumulating the kernel taps as scaled shifted views is faster.
    n = xp.shape[0]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    multiplier = cout // groups
    view = window_view(xp, out_sizes, kernel, stride, dilation)
    y = np.empty((n, cout, *out_sizes), dtype=xp.dtype)
    ys = y.reshape(n, groups, multiplier, *out_sizes)
    taps = weight.reshape(groups, multiplier, *kernel)
    spatial = (1,) * len(out_sizes)
    chunk = max(1, -(-groups // WORKERS))
    scratch = [np.empty((chunk, multiplier, *out_sizes), dtype=xp.dtype) for _ in range(WORKERS)]

    def task(item, worker):
        i, first = item
        last = min(first + chunk, groups)
        out = ys[i, first:last]
        tmp = scratch[worker][: last - first]
        for index, tap in enumerate(product(*(range(k) for k in kernel))):
            source = view[(i, slice(first, last), Ellipsis, *tap)][:, None]
            scale = taps[(slice(first, last), slice(None), *tap)].reshape(last - first, multiplier, *spatial)
            if index == 0:
                np.multiply(source, scale, out=out)
            else:
                np.multiply(source, scale, out=tmp)
                out += tmp

    run_parallel(task, product(range(n), range(0, groups, chunk)))
    return y
