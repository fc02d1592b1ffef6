"""Kernel taps' columns copied straight from an unpadded input.

A convolution's columns hold, for each kernel tap, the input each output reads
through it. Copying them from the input itself, rather than from a zero-padded
copy of it, saves a pass over the input; the column entries that read padding
are zeroed instead, one band per axis and kernel index. At stride 1, when the
trailing axes keep their size, each tap is one contiguous run per channel.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import product
from math import prod

import numpy as np

from .memory import scratch


@lru_cache(maxsize=256)  # planning costs more than a small layer's copies; networks repeat shapes
def tap_plan(sizes, out_sizes, kernel, stride, pads, dilation):
    """Index tuples into (groups, channels, *kernel, *out) columns and
    (groups, channels, *sizes) input: for each kernel tap, where its valid
    outputs go and which inputs they read; the column regions that read
    padding only, one per axis and kernel index rather than per tap; and
    whether the copies index flattened planes, (groups, channels, *kernel,
    positions) and (groups, channels, input positions), instead."""
    rank = len(kernel)
    spans = []  # per axis, per kernel index: (first valid output, end, first input read)
    for size, out, k, s, (begin, _), d in zip(sizes, out_sizes, kernel, stride, pads, dilation):
        axis = []
        for t in range(k):
            low = max(0, -(-(begin - t * d) // s))
            high = min(out, (size - 1 + begin - t * d) // s + 1)
            axis.append((low, max(low, high), low * s + t * d - begin))
        spans.append(axis)
    everything = (slice(None), slice(None))
    copies = []
    # With stride 1 and the trailing axes keeping their size, an output and the
    # input it reads through a tap are a fixed distance apart in the flattened
    # planes, so each tap is one long run per channel (fast to copy) instead of
    # one short row at a time; the positions where that run wraps round a row
    # edge are exactly those reading padding, zeroed below like the others.
    flat = runs_of_input(sizes, out_sizes, stride)
    plane, reach = prod(out_sizes), prod(sizes)
    for tap in product(*(range(k) for k in kernel)):
        if flat:
            shift = sum((t * d - begin) * prod(sizes[a + 1 :])
                        for a, (t, d, (begin, _)) in enumerate(zip(tap, dilation, pads)))
            low, high = max(0, -shift), min(plane, reach - shift)
            if low < high:
                copies.append(((*everything, *tap, slice(low, high)), (*everything, slice(low + shift, high + shift))))
            continue
        parts = [spans[a][t] for a, t in enumerate(tap)]
        if all(low < high for low, high, _ in parts):
            copies.append((
                (*everything, *tap, *(slice(low, high) for low, high, _ in parts)),
                (*everything, *(slice(start, start + (high - low - 1) * s + 1, s)
                                for (low, high, start), s in zip(parts, stride))),
            ))
    zeros = []
    for a in range(rank):
        for t, (low, high, _) in enumerate(spans[a]):
            for band in (slice(0, low), slice(high, out_sizes[a])) if low < high else (slice(0, out_sizes[a]),):
                if band.start < band.stop:
                    index = [slice(None)] * (2 + 2 * rank)
                    index[2 + a] = t
                    index[2 + rank + a] = band
                    zeros.append(tuple(index))
    return copies, zeros, flat


def runs_of_input(sizes, out_sizes, stride) -> bool:
    """Whether each kernel tap reads one contiguous run of every input channel:
    stride 1, and the trailing axes keeping their size.

    >>> runs_of_input((56, 56), (56, 56), (1, 1)), runs_of_input((56, 56), (28, 28), (2, 2))
    (True, False)
    """
    return all(s == 1 for s in stride) and tuple(out_sizes[1:]) == tuple(sizes[1:])


def columns_from_input(source, groups, kernel, pads, dilation, first, last, out_sizes, into=None) -> np.ndarray:
    """Columns (groups, C/groups * K, positions) of output rows [first, last) of a
    stride-1 layer, copied from ``source`` (C, *S), zeros where a tap reads
    padding (a negative padding crops); one run per tap and channel where the
    trailing axes keep their size; into ``into`` (groups, C/groups, *K,
    positions) if given, else a work buffer.

    >>> x = np.arange(1.0, 5.0, dtype=np.float32).reshape(1, 4)
    >>> columns_from_input(x, 1, (3,), ((1, 1),), (1,), 0, 4, (4,))[0].tolist()
    [[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 0.0]]
    """
    sizes = source.shape[1:]
    (begin, _), reach = pads[0], dilation[0] * (kernel[0] - 1)
    # the input rows these outputs read, and how far they overhang the input
    low, high = first - begin, last - 1 - begin + reach + 1
    start, stop = max(low, 0), max(min(high, sizes[0]), max(low, 0))
    rows = (stop - start, *sizes[1:])
    tile = (last - first, *out_sizes[1:])
    copies, zeros, flat = tap_plan(rows, tile, tuple(kernel), (1,) * len(kernel),
                                   ((start - low, high - stop), *map(tuple, pads[1:])), tuple(dilation))
    channels = source.shape[0]
    columns = into if into is not None else scratch(channels * prod(kernel) * prod(tile), source.dtype).reshape(
        groups, channels // groups, *kernel, prod(tile))
    copy_taps((copies, zeros, flat), source[:, start:stop].reshape(groups, channels // groups, *rows), columns, tile)
    return columns.reshape(groups, -1, prod(tile))


def copy_taps(plan, source, columns, out_sizes) -> None:
    """Fill ``columns`` (groups, C/groups, *K, positions) from ``source``
    (groups, C/groups, *S) as ``plan`` (a tap_plan) says: the copies, then zeros
    where a tap reads padding."""
    copies, zeros, flat = plan
    shaped = columns.reshape(*columns.shape[:-1], *out_sizes)  # a view: the last axis split
    into, origin = (columns, source.reshape(*source.shape[:2], prod(source.shape[2:]))) if flat else (shaped, source)
    for target, where in copies:
        into[target] = origin[where]
    for target in zeros:
        shaped[target] = 0
