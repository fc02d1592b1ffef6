"""Pooling on NumPy arrays: sliding max/average by accumulating kernel taps, and
adaptive pooling one axis at a time (a box's max or mean is separable)."""

from __future__ import annotations

from itertools import product

import numpy as np

from .convolution import window_view
from .memory import check_memory


def _padded(x, padding, extra, fill):
    widths = [(0, 0), (0, 0)] + [(p, p + e) for p, e in zip(padding, extra)]
    if not any(a or b for a, b in widths):
        return x
    return np.pad(x, widths, mode="constant", constant_values=fill)


def _extra_end(sizes, kernel, stride, padding, dilation, out_sizes):
    # ceil_mode can place a last window past the padded input; PyTorch clips it,
    # here the input is padded a little more so every window is a valid view.
    return [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + 2 * p))
            for n, k, s, p, d, o in zip(sizes, kernel, stride, padding, dilation, out_sizes)]


def _accumulate_taps(x, kernel, stride, padding, dilation, out_sizes, fill, combine, operation) -> np.ndarray:
    """Fold every kernel tap's strided view of the padded input into one array with ``combine``."""
    extra = _extra_end(x.shape[2:], kernel, stride, padding, dilation, out_sizes)
    output_bytes = x.shape[0] * x.shape[1] * int(np.prod(out_sizes, dtype=np.int64)) * x.dtype.itemsize
    check_memory(operation, {"output": output_bytes, "padded input": x.nbytes if any(padding) else 0})
    view = window_view(_padded(x, padding, extra, fill), out_sizes, kernel, stride, dilation)
    taps = product(*(range(k) for k in kernel))
    y = np.array(view[(Ellipsis, *next(taps))])
    for tap in taps:
        combine(y, view[(Ellipsis, *tap)], out=y)
    return y


def max_pool(x, kernel, stride, padding, dilation, out_sizes) -> np.ndarray:
    """Windows' maxima; padding never wins (it is -inf)."""
    return _accumulate_taps(x, kernel, stride, padding, dilation, out_sizes, -np.inf, np.maximum, "this max pooling")


def _divisor_axis(n, k, s, p, o, count_include_pad):
    start = np.arange(o) * s - p
    end = np.minimum(start + k, n + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, n) - np.maximum(start, 0)


def avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, out_sizes) -> np.ndarray:
    """Windows' means, with ATen's divisor: windows clipped at the padded input,
    and padding counted or not by ``count_include_pad``."""
    ones = (1,) * len(kernel)
    y = _accumulate_taps(x, kernel, stride, padding, ones, out_sizes, 0, np.add, "this average pooling")
    if divisor_override:
        y /= x.dtype.type(divisor_override)
        return y
    divisor = np.ones((), dtype=np.int64)
    for axis, (n, k, s, p, o) in enumerate(zip(x.shape[2:], kernel, stride, padding, out_sizes)):
        counts = _divisor_axis(n, k, s, p, o, count_include_pad)
        shape = [1] * len(kernel)
        shape[axis] = o
        divisor = divisor * counts.reshape(shape)
    y /= divisor.astype(x.dtype)
    return y


def adaptive_pool(x, out_sizes, reduce: str) -> np.ndarray:
    """Adaptive max or mean, one spatial axis at a time; each axis's gathered bins and
    output, and the previous axis's result, are checked before they are made."""
    y = x
    operation = f"this adaptive {'max' if reduce == 'max' else 'average'} pooling"
    for axis, o in enumerate(out_sizes):
        n = y.shape[axis + 2]
        if o != n and o and y.size:
            width = _bin_width(n, o)
            check_memory(operation, {"previous axis": 0 if y is x else y.nbytes,
                                     "gathered bins": y.nbytes // n * o * width, "output": y.nbytes // n * o})
        y = _adaptive_axis(y, axis + 2, o, reduce)
    return np.ascontiguousarray(y)


def _bin_width(n: int, o: int) -> int:
    """The widest of ``o`` adaptive bins over ``n`` (PyTorch's start and end indices)."""
    index = np.arange(o)
    return int((-((-(index + 1) * n) // o) - (index * n) // o).max())


def _adaptive_axis(x, axis, o, reduce):
    n = x.shape[axis]
    if o == n:
        return x
    if o == 0 or x.size == 0:  # an empty output, as PyTorch returns for output size 0
        return np.empty(x.shape[:axis] + (o,) + x.shape[axis + 1:], dtype=x.dtype)
    index = np.arange(o)
    start = (index * n) // o
    end = -((-(index + 1) * n) // o)
    width = int((end - start).max()) if o else 0
    # Gather every bin's elements at once, padding short bins by repeating their
    # last element (for max) or masking it out (for mean).
    offsets = start[:, None] + np.arange(width)[None, :]
    valid = offsets < end[:, None]
    gathered = np.take(x, np.minimum(offsets, (end - 1)[:, None]).ravel(), axis=axis)
    gathered = gathered.reshape(x.shape[:axis] + (o, width) + x.shape[axis + 1 :])
    if reduce == "max":
        return gathered.max(axis=axis + 1)
    mask = valid.reshape((o, width) + (1,) * (x.ndim - axis - 1))
    np.copyto(gathered, x.dtype.type(0), where=~mask)  # in place: no second array of the bins
    total = gathered.sum(axis=axis + 1)
    del gathered
    total /= (end - start).reshape((o,) + (1,) * (x.ndim - axis - 1)).astype(x.dtype)
    return total
