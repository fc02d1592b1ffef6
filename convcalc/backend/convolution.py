"""Convolution on NumPy arrays: tiled im2col (by rows, or by blocks of groups for
grouped and depthwise layers) and a 1x1 fast path. Inputs arrive already
padded; shapes already checked."""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from .memory import TILE_BYTES, check_memory, scratch
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
    elif groups > 1 and per_group * prod(kernel) * prod(out_sizes) * itemsize <= TILE_BYTES:
        block = _block_size(groups, per_group * prod(kernel) * prod(out_sizes) * itemsize, n)
        tile = block * per_group * prod(kernel) * prod(out_sizes) * itemsize
        check_memory("this convolution", {"output": output_bytes, "tile buffers": tile * WORKERS})
        y = _im2col_by_groups(xp, weight, groups, stride, dilation, out_sizes)
    else:
        rows, _ = _tile_rows(channels * prod(kernel), out_sizes, itemsize, n)
        tile = channels * prod(kernel) * rows * prod(out_sizes[1:]) * itemsize
        check_memory("this convolution", {"output": output_bytes, "tile buffers": tile * WORKERS})
        y = _im2col(xp, weight, groups, stride, dilation, out_sizes)
    if bias is not None:
        y += bias.reshape((1, cout) + (1,) * len(out_sizes))
    return y


def _tile_rows(column_height: int, out_sizes, itemsize: int, samples: int = 1) -> tuple[int, int]:
    """How many rows of the first output axis one tile holds, and the columns per row.

    Tiles are about TILE_BYTES, and as many in all as keeps every worker equally
    busy (an odd tile out leaves one worker idle for a whole tile)."""
    inner = prod(out_sizes[1:])
    first = out_sizes[0]
    rows = min(first, max(1, TILE_BYTES // max(1, column_height * inner * itemsize)))
    tiles = -(-first // rows)
    while (samples * tiles) % WORKERS and tiles < first:
        tiles += 1
    rows = -(-first // tiles)
    return rows, inner


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
    rows, inner = _tile_rows(height, out_sizes, xp.dtype.itemsize, n)
    view = window_view(xp, out_sizes, kernel, stride, dilation)
    # (C, *out, *K) -> (C, *K, *out): the column order of the weight's rows
    order = (0, *range(rank + 1, 2 * rank + 1), *range(1, rank + 1))
    y = np.empty((n, cout, *out_sizes), dtype=xp.dtype)
    w = weight.reshape(groups, cout // groups, height // groups)
    ys = y.reshape(n, groups, cout // groups, out_sizes[0] * inner)

    def task(item, worker):
        i, first = item
        last = min(first + rows, out_sizes[0])
        count = last - first
        columns = scratch(height * count * inner, xp.dtype).reshape(channels, *kernel, count, *out_sizes[1:])
        np.copyto(columns, view[i, :, first:last].transpose(order))
        np.matmul(w, columns.reshape(groups, height // groups, count * inner),
                  out=ys[i, :, :, first * inner : last * inner])

    run_parallel(task, product(range(n), range(0, out_sizes[0], rows)))
    return y


def _im2col_by_groups(xp, weight, groups, stride, dilation, out_sizes) -> np.ndarray:
    # Grouped and depthwise layers: each work item copies the columns of a block
    # of whole groups and runs one batched matmul over them. Blocking by groups
    # rather than rows keeps each group's product large (a depthwise group is a
    # 1 x K by K x positions product) and the number of BLAS calls small.
    n, channels = xp.shape[:2]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    rank = len(kernel)
    per_group = channels // groups
    height = per_group * prod(kernel)
    positions = prod(out_sizes)
    block = _block_size(groups, height * positions * xp.dtype.itemsize, n)
    view = window_view(xp, out_sizes, kernel, stride, dilation)
    # (g, c, *out, *K) -> (g, c, *K, *out)
    order = (0, 1, *range(rank + 2, 2 * rank + 2), *range(2, rank + 2))
    y = np.empty((n, cout, *out_sizes), dtype=xp.dtype)
    w = weight.reshape(groups, cout // groups, height)
    ys = y.reshape(n, groups, cout // groups, positions)

    def task(item, worker):
        i, first = item
        last = min(first + block, groups)
        count = last - first
        source = view[i, first * per_group : last * per_group].reshape(count, per_group, *out_sizes, *kernel)
        columns = scratch(count * height * positions, xp.dtype).reshape(count, per_group, *kernel, *out_sizes)
        np.copyto(columns, source.transpose(order))
        np.matmul(w[first:last], columns.reshape(count, height, positions), out=ys[i, first:last])

    run_parallel(task, product(range(n), range(0, groups, block)))
    return y


def _block_size(count: int, item_bytes: int, samples: int) -> int:
    """How many groups one tile holds: about TILE_BYTES, and evenly shared by the workers."""
    block = min(count, max(1, TILE_BYTES // max(1, item_bytes)))
    tiles = -(-count // block)
    while (samples * tiles) % WORKERS and tiles < count:
        tiles += 1
    return -(-count // tiles)
