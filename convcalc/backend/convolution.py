"""Convolution on NumPy arrays: tiled im2col (by rows, or by blocks of groups for
grouped and depthwise layers) and a 1x1 fast path.

Zero padding is never applied to the whole input. A block of groups, and a row
tile of a stride-1 layer whose trailing axes keep their size, copy their
columns straight from the input, zeroing the entries that read padding; other
row tiles copy the slab of input they read, padding included, into a reused
buffer. Memory stays bounded by the tile, and the copies happen on the worker
threads while the data is about to be used. Late layers, with few positions a
sample, put several samples side by side in one product. Layers whose output
rows (along the first axis) are wide, such as 3-d layers, copy each input row's
columns once per tile and let every output row that reads it use them.
"""

from __future__ import annotations

from itertools import product
from math import prod

import numpy as np

from .blas import direct_blas, multiply, multiply_side_by_side
from .memory import TILE_BYTES, check_memory, scratch
from .rows import convolve_by_input_rows, rows_per_tile
from .taps import columns_from_input, copy_taps, runs_of_input, tap_plan
from .workers import WORKERS, run_parallel


def window_view(xp: np.ndarray, out_sizes, kernel, stride, dilation) -> np.ndarray:
    """A read-only (N, C, *out, *kernel) view of a padded input: no copy."""
    spatial = xp.strides[2:]
    shape = (*xp.shape[:2], *out_sizes, *kernel)
    strides = (*xp.strides[:2], *(s * st for s, st in zip(spatial, stride)), *(s * d for s, d in zip(spatial, dilation)))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def convolve(x, weight, bias, stride, pads, dilation, groups, out_sizes) -> np.ndarray:
    """Cross-correlate ``x`` (N, C, *S), zero-padded by ``pads`` ((begin, end) per
    axis), with ``weight`` (Cout, C/groups, *K)."""
    n, channels = x.shape[:2]
    cout, per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    itemsize = x.dtype.itemsize
    padded = tuple(s + b + e for s, (b, e) in zip(x.shape[2:], pads))
    output_bytes = n * cout * prod(out_sizes) * itemsize
    group_columns = per_group * prod(kernel) * prod(out_sizes) * itemsize
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not any(b or e for b, e in pads):
        positions = prod(out_sizes)
        samples = _samples_per_tile(n, positions, channels * positions * itemsize)
        check_memory("this convolution", {
            "output": output_bytes,
            "tile buffers": WORKERS * samples * (channels + cout) * positions * itemsize if samples > 1 else 0,
        })
        y = _pointwise(x, weight, bias, groups, samples)
    elif (rows := rows_per_tile(weight.shape, stride, dilation, groups, out_sizes, itemsize, n)) is not None:
        row_bytes = channels * prod(kernel[1:]) * prod(out_sizes[1:]) * itemsize
        check_memory("this convolution", {
            "output": output_bytes,
            "tile buffers": WORKERS * ((rows - 1) * stride[0] + kernel[0]) * row_bytes,
            "weights in tap order": weight.nbytes,
        })
        y = convolve_by_input_rows(x, weight, bias, stride, pads, dilation, out_sizes, rows)
    elif groups > 1 and group_columns <= GROUP_TILE_BYTES:
        block = _block_size(groups, group_columns, n)
        check_memory("this convolution", {
            "output": output_bytes,
            "tile buffers": WORKERS * block * (group_columns + prod(out_sizes) * itemsize),
        })
        y = _im2col_by_groups(x, weight, bias, groups, stride, pads, dilation, out_sizes, block)
    else:
        rows, inner, parts = _tile_rows(channels * prod(kernel), out_sizes, itemsize, n, cout // groups)
        # Columns straight from the input where each tap is one run of it: against a
        # padded slab of input rows and a product over its padded grid cropped into
        # the output, 8-19% faster on the benchmark's stride-1 layers (3x3 at 56 x 56,
        # dilated, 7 x 7, 3-d; best of 4-5 alternating processes), as fast in 1-d.
        from_input = runs_of_input(x.shape[2:], out_sizes, stride)
        slab_rows = 0 if from_input else (rows - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
        samples = 1
        if from_input and rows == out_sizes[0] and parts == 1:  # whole samples in each tile
            samples = _samples_per_tile(n, prod(out_sizes), channels * prod(kernel) * prod(out_sizes) * itemsize)
        tile = channels * (prod(kernel) * rows * inner + slab_rows * prod(padded[1:]))
        grid = cout * prod(out_sizes) if samples > 1 else 0  # the several samples' product, copied out
        check_memory("this convolution", {
            "output": output_bytes,
            "tile buffers": WORKERS * itemsize * samples * (tile + grid),
        })
        y = _im2col(x, weight, bias, groups, stride, pads, dilation, out_sizes, rows, parts, from_input, samples)
    return y


# Below this many positions per product, several samples share one: OpenBLAS
# multiplies 512 x 4608 weights by 49 columns (one 7 x 7 sample) at 82 GFLOP/s a
# thread, by 196 at 93 and by 392 at 98 (measured).
WIDE_PRODUCT = 192


def _samples_per_tile(samples: int, positions: int, column_bytes: int) -> int:
    """How many whole samples one product takes: enough for WIDE_PRODUCT columns,
    the columns within a few tiles' size, and the samples evenly shared by the
    workers (else one each)."""
    most = min(samples, -(-WIDE_PRODUCT // positions), max(1, 4 * TILE_BYTES // max(1, column_bytes)))
    for count in range(most, 1, -1):
        if samples % count == 0 and (samples // count) % WORKERS == 0:
            return count
    return 1


def _tile_rows(column_height: int, out_sizes, itemsize: int, samples: int = 1,
               channels: int = 1) -> tuple[int, int, int]:
    """How many rows of the first output axis one tile holds, the columns per
    row, and into how many parts each tile's output channels are split.

    Tiles are about TILE_BYTES, and as many in all as keeps every worker equally
    busy (an odd tile out leaves one worker idle for a whole tile). Where that
    would cut a tile whose output channels outnumber its positions (a late
    layer: 512 channels over 7 x 7), the workers share the channels instead:
    each then reads half the weights rather than all of them for half the
    positions, and keeps a product wide enough for BLAS (measured with
    benchmarks/conv_vs_torch.py).
    """
    inner = prod(out_sizes[1:])
    first = out_sizes[0]
    rows = min(first, max(1, TILE_BYTES // max(1, column_height * inner * itemsize)))
    tiles = -(-first // rows)
    if (samples * tiles) % WORKERS and channels >= WORKERS * MIN_PART and channels >= rows * inner:
        return rows, inner, WORKERS
    while (samples * tiles) % WORKERS and tiles < first:
        tiles += 1
    return -(-first // tiles), inner, 1


# The fewest output channels one part of a split tile computes.
MIN_PART = 32


# Grouped layers do little arithmetic per copied byte, so fewer, larger blocks
# (fewer Python-level steps) pay off; measured in benchmarks/conv_vs_torch.py.
GROUP_TILE_BYTES = 4 * 2**20


def _block_size(count: int, item_bytes: int, samples: int) -> int:
    """How many groups one tile holds: about GROUP_TILE_BYTES, evenly shared by the workers."""
    block = min(count, max(1, GROUP_TILE_BYTES // max(1, item_bytes)))
    tiles = -(-count // block)
    while (samples * tiles) % WORKERS and tiles < count:
        tiles += 1
    return -(-count // tiles)


def _slab(source: np.ndarray, lo: int, hi: int, pads) -> np.ndarray:
    """Rows [lo, hi) of ``source`` (C, *S) along its first spatial axis, the other
    axes padded by ``pads[1:]``, zeros wherever that falls outside the input."""
    sizes = source.shape[1:]
    inside = 0 <= lo and hi <= sizes[0] and not any(b or e for b, e in pads[1:])
    if inside:
        return source[:, lo:hi]
    shape = (source.shape[0], hi - lo, *(s + b + e for s, (b, e) in zip(sizes[1:], pads[1:])))
    slab = scratch(prod(shape), source.dtype, slot="slab").reshape(shape)
    first, last = max(lo, 0), min(hi, sizes[0])
    if first >= last:
        slab.fill(0)
        return slab
    inner = [slice(first - lo, last - lo), *(slice(b, b + s) for s, (b, _) in zip(sizes[1:], pads[1:]))]
    slab[(slice(None), *inner)] = source[:, first:last]
    # Zero only the bands around the copied block, axis by axis: the block
    # itself was just written, and filling the whole slab first would write
    # every element twice.
    for axis, band in enumerate(inner, start=1):
        before = (slice(None),) * axis
        slab[(*before, slice(0, band.start))] = 0
        slab[(*before, slice(band.stop, None))] = 0
    return slab


def _pointwise(x, weight, bias, groups, samples=1) -> np.ndarray:
    # A 1x1 convolution is one matrix product per sample, written straight into
    # the output; or, for a few positions a sample, one product over several
    # samples side by side, copied in and out.
    n, channels = x.shape[:2]
    cout = weight.shape[0]
    positions = prod(x.shape[2:])
    y = np.empty((n, cout, *x.shape[2:]), dtype=x.dtype)
    w = weight.reshape(groups, cout // groups, channels // groups)
    xs = x.reshape(n, groups, channels // groups, positions)
    ys = y.reshape(n, groups, cout // groups, positions)

    group_bias = None if bias is None else bias.reshape(groups, cout // groups)
    fused = direct_blas()  # asked here, before the workers start

    def task(i, _worker):
        if samples == 1:
            multiply(w, xs[i], group_bias, ys[i], fused)
            return
        columns = scratch(channels * samples * positions, x.dtype).reshape(groups, channels // groups, samples, positions)
        np.copyto(columns.transpose(2, 0, 1, 3), xs[i : i + samples])
        multiply_side_by_side(w, columns.reshape(groups, channels // groups, -1), group_bias, ys[i : i + samples], fused)

    run_parallel(task, range(0, n, samples))
    return y


def _im2col(x, weight, bias, groups, stride, pads, dilation, out_sizes, rows, parts=1, from_input=False,
            samples=1) -> np.ndarray:
    n, channels = x.shape[:2]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    inner = prod(out_sizes[1:])
    y = np.empty((n, cout, *out_sizes), dtype=x.dtype)
    w = weight.reshape(groups, cout // groups, channels // groups * prod(kernel))
    ys = y.reshape(n, groups, cout // groups, out_sizes[0] * inner)
    padded = tuple(s + b + e for s, (b, e) in zip(x.shape[2:], pads))
    group_bias = None if bias is None else bias.reshape(groups, cout // groups)

    share = -(-(cout // groups) // parts)
    fused = direct_blas()  # asked here, before the workers start

    def task(item, _worker):
        i, first, part = item
        if samples > 1:
            _several_samples(x[i : i + samples], w, group_bias, kernel, pads, dilation, out_sizes,
                             ys[i : i + samples], fused)
            return
        last = min(first + rows, out_sizes[0])
        count = last - first
        mine = slice(part * share, (part + 1) * share)  # this part's output channels in each group
        out = ys[i, :, mine, first * inner : last * inner]
        weights = w[:, mine]
        bias_part = None if group_bias is None else group_bias[:, mine]
        if from_input:
            columns = columns_from_input(x[i], groups, kernel, pads, dilation, first, last, out_sizes)
            multiply(weights, columns, bias_part, out, fused)
            return
        lo = first * stride[0] - pads[0][0]
        hi = lo + (count - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
        slab = _slab(x[i], lo, hi, pads)
        tile = (count, *out_sizes[1:])
        flat = _flat_layout((hi - lo, *padded[1:]), kernel, stride, dilation, tile)
        if flat is not None:
            _columns_flat(slab, weights, bias_part, kernel, dilation, tile, flat,
                          out.reshape(groups, weights.shape[1], *tile))
            return
        view = window_view(slab[None], tile, kernel, stride, dilation)[0]
        _columns_times(view.reshape(groups, channels // groups, *tile, *kernel), weights, bias_part, tile, out, fused)

    run_parallel(task, product(range(0, n, samples), range(0, out_sizes[0], rows), range(parts)))
    return y


def _several_samples(xs, w, bias, kernel, pads, dilation, out_sizes, out, fused) -> None:
    """Whole samples ``xs`` (k, C, *S) of a layer whose columns come from its input,
    in one product of k samples' columns side by side, then into ``out``
    (k, groups, cout/groups, positions)."""
    count, channels = xs.shape[:2]
    groups, _, depth = w.shape
    positions = prod(out_sizes)
    columns = scratch(groups * depth * count * positions, xs.dtype).reshape(groups, depth, count, positions)
    for s in range(count):
        columns_from_input(xs[s], groups, kernel, pads, dilation, 0, out_sizes[0], out_sizes,
                           into=columns[:, :, s].reshape(groups, channels // groups, *kernel, positions))
    multiply_side_by_side(w, columns.reshape(groups, depth, -1), bias, out, fused)


def _im2col_by_groups(x, weight, bias, groups, stride, pads, dilation, out_sizes, block) -> np.ndarray:
    # Grouped and depthwise layers: each work item copies the columns of a block
    # of whole groups and runs one batched matmul over them, straight into the
    # output. Blocking by groups rather than rows keeps each group's product
    # large (a depthwise group is a 1 x K by K x positions product) and the
    # number of BLAS calls small.
    #
    # These layers do little arithmetic per byte, so every pass over memory
    # counts: the columns are copied from the unpadded input, tap by tap, with
    # the positions a tap reads from the padding zeroed in the columns (no
    # padded copy of the input), and the bias rides in the product as a row of
    # ones against a column of biases (no pass over the output to add it).
    # Measured on the benchmark's layers against a padded copy, flat columns
    # and a cropping pass with the bias: as fast (these layers are bound by
    # the columns' nine-fold copy, which both make), with 1-1.5 MiB less
    # work memory.
    n, channels = x.shape[:2]
    cout = weight.shape[0]
    kernel = weight.shape[2:]
    per_group = channels // groups
    height = per_group * prod(kernel)
    positions = prod(out_sizes)
    y = np.empty((n, cout, *out_sizes), dtype=x.dtype)
    w = weight.reshape(groups, cout // groups, height)
    if bias is not None:
        w = np.concatenate([w, bias.reshape(groups, cout // groups, 1)], axis=2)
    ys = y.reshape(n, groups, cout // groups, positions)
    plan = tap_plan(tuple(x.shape[2:]), tuple(out_sizes), tuple(kernel), tuple(stride), tuple(map(tuple, pads)),
                    tuple(dilation))
    depth = w.shape[2]

    def task(item, _worker):
        i, first = item
        last = min(first + block, groups)
        count = last - first
        matrix = scratch(count * depth * positions, x.dtype).reshape(count, depth, positions)
        source = x[i, first * per_group : last * per_group].reshape(count, per_group, *x.shape[2:])
        copy_taps(plan, source, matrix[:, :height].reshape(count, per_group, *kernel, positions), out_sizes)
        if depth > height:
            matrix[:, height] = 1
        np.matmul(w[first:last], matrix, out=ys[i, first:last])

    run_parallel(task, product(range(n), range(0, groups, block)))
    return y


def _columns_times(source, w, bias, out_sizes, out, fused=False) -> None:
    """Copy (g, c, *out, *K) windows into columns (g, c*K, positions); their
    products into ``out`` (g, cout/g, positions), plus ``bias`` (g, cout/g)."""
    count, per_group = source.shape[:2]
    rank = len(out_sizes)
    order = (0, 1, *range(rank + 2, 2 * rank + 2), *range(2, rank + 2))
    positions = prod(out_sizes)
    height = per_group * prod(source.shape[2 + rank :])
    columns = scratch(count * height * positions, source.dtype).reshape(source.transpose(order).shape)
    np.copyto(columns, source.transpose(order))
    multiply(w, columns.reshape(count, height, positions), bias, out, fused)


# At most this share of a flat layout's columns may be padding positions.
FLAT_WASTE = 1 / 8


def _flat_layout(padded, kernel, stride, dilation, out_sizes):
    """For stride 1: the row strides of the padded input, if computing every output
    on the padded grid wastes little; else None.

    On that grid each kernel tap reads one contiguous run of the flattened input,
    so the column copy moves long runs instead of one short row at a time.
    """
    if any(s != 1 for s in stride) or len(padded) < 2:
        return None
    strides = [prod(padded[i + 1 :]) for i in range(len(padded))]
    length = sum((o - 1) * st for o, st in zip(out_sizes, strides)) + 1
    if length > prod(out_sizes) * (1 + FLAT_WASTE):
        return None
    return strides, length


def _columns_flat(slab, w, bias, kernel, dilation, out_sizes, flat, out) -> None:
    strides, length = flat
    count_channels = slab.shape[0]
    count, cout_per, height = w.shape
    flat_input = slab.reshape(count_channels, -1)
    item = flat_input.itemsize
    # The last valid output's last tap lands exactly on the slab's last element,
    # so these windows never read past it.
    taps = np.lib.stride_tricks.as_strided(
        flat_input, (count_channels, *kernel, length),
        (flat_input.strides[0], *(d * st * item for d, st in zip(dilation, strides)), item), writeable=False)
    columns = scratch(count_channels * prod(kernel) * length, slab.dtype).reshape(taps.shape)
    np.copyto(columns, taps)
    grid = scratch(count * cout_per * length, slab.dtype, slot="grid").reshape(count, cout_per, length)
    np.matmul(w, columns.reshape(count, height, length), out=grid)
    # keep the real outputs: positions on the padded grid, strided by its rows
    real = np.lib.stride_tricks.as_strided(
        grid, (count, cout_per, *out_sizes), (*grid.strides[:2], *(st * item for st in strides)), writeable=False)
    if bias is None:
        np.copyto(out, real)
    else:
        np.add(real, bias.reshape(bias.shape + (1,) * len(out_sizes)), out=out)
