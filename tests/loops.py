"""Slow, obviously correct loop implementations: the oracle when torch is absent."""

from itertools import product

import numpy as np


def conv_loop(x, w, bias, stride, pads, dilation, groups):
    """Direct cross-correlation; ``pads`` are (begin, end) per axis, zeros outside."""
    n, c = x.shape[:2]
    cout, cg = w.shape[:2]
    kernel = w.shape[2:]
    sizes = x.shape[2:]
    out_sizes = [(s + b + e - d * (k - 1) - 1) // st + 1 for s, (b, e), d, k, st in zip(sizes, pads, dilation, kernel, stride)]
    y = np.zeros((n, cout, *out_sizes))
    per_out = cout // groups
    for i, o in product(range(n), range(cout)):
        g = o // per_out
        for pos in product(*(range(s) for s in out_sizes)):
            total = 0.0 if bias is None else float(bias[o])
            for ci, tap in product(range(cg), product(*(range(k) for k in kernel))):
                src = [p * st - b + t * d for p, st, (b, _), t, d in zip(pos, stride, pads, tap, dilation)]
                if all(0 <= q < s for q, s in zip(src, sizes)):
                    total += float(x[(i, g * cg + ci, *src)]) * float(w[(o, ci, *tap)])
            y[(i, o, *pos)] = total
    return y


def conv_transpose_loop(x, w, bias, stride, padding, output_padding, dilation, groups):
    """Scatter every input element through every tap, then crop the padding."""
    n, cin = x.shape[:2]
    per_out = w.shape[1]
    kernel = w.shape[2:]
    sizes = x.shape[2:]
    full = [(s - 1) * st + d * (k - 1) + 1 + op for s, st, d, k, op in zip(sizes, stride, dilation, kernel, output_padding)]
    y = np.zeros((n, per_out * groups, *full))
    per_in = cin // groups
    for i, ci in product(range(n), range(cin)):
        g = ci // per_in
        for pos in product(*(range(s) for s in sizes)):
            for co, tap in product(range(per_out), product(*(range(k) for k in kernel))):
                dst = [p * st + t * d for p, st, t, d in zip(pos, stride, tap, dilation)]
                y[(i, g * per_out + co, *dst)] += float(x[(i, ci, *pos)]) * float(w[(ci, co, *tap)])
    out = [f - 2 * p for f, p in zip(full, padding)]
    y = y[(slice(None), slice(None), *(slice(p, p + o) for p, o in zip(padding, out)))]
    if bias is not None:
        y = y + bias.reshape((1, -1) + (1,) * len(kernel))
    return y


def pool_loop(x, kernel, stride, padding, dilation, out_sizes, kind, count_include_pad=True):
    """Max or average over each window, with ATen's clipping and divisor."""
    n, c = x.shape[:2]
    sizes = x.shape[2:]
    y = np.zeros((n, c, *out_sizes))
    for i, ch in product(range(n), range(c)):
        for pos in product(*(range(o) for o in out_sizes)):
            values, box, real = [], 1, 1
            for axis, (p_, s, pad, k, d, size) in enumerate(zip(pos, stride, padding, kernel, dilation, sizes)):
                start = p_ * s - pad
                end = min(start + (k - 1) * d + 1, size + pad)
                box *= end - start
                real *= min(end, size) - max(start, 0)
            for tap in product(*(range(k) for k in kernel)):
                src = [p_ * s - pad + t * d for p_, s, pad, t, d in zip(pos, stride, padding, tap, dilation)]
                if all(0 <= q < size for q, size in zip(src, sizes)):
                    values.append(float(x[(i, ch, *src)]))
            if kind == "max":
                y[(i, ch, *pos)] = max(values)
            else:
                y[(i, ch, *pos)] = sum(values) / (box if count_include_pad else real)
    return y
