"""Output-size arithmetic, one spatial dimension at a time, exactly as ATen does it.

These are the bare formulas, on Python ints or NumPy integer arrays alike (the
solver evaluates whole grids of candidates at once); the layer modules decide
which configurations are allowed and say why not.
"""

from __future__ import annotations

from math import gcd, prod


def effective_kernel(kernel: int, dilation: int) -> int:
    """The extent a dilated kernel covers: d(k-1)+1.

    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


def conv_output_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int) -> int:
    """floor((n + p_begin + p_end - d(k-1) - 1) / s) + 1.

    >>> conv_output_size(5, 3, 2, 1, 1, 1)   # Dumoulin & Visin, i=5 k=3 s=2 p=1
    3
    >>> conv_output_size(7, 3, 1, 0, 0, 2)   # dilated, i=7 k=3 d=2
    3
    """
    return (size + pad_begin + pad_end - effective_kernel(kernel, dilation)) // stride + 1


def transposed_output_size(size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int) -> int:
    """(n-1)s - 2p + d(k-1) + output_padding + 1.

    >>> transposed_output_size(3, 3, 2, 1, 1, 1)   # Dumoulin & Visin, i=3 k=3 s=2 p=1 op=1
    6
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """ATen's pooling_output_shape, including the rule that drops a last window
    that would start inside the right padding in ceil mode.

    >>> pool_output_size(5, 2, 2, 1, 1, ceil_mode=True)   # 4 by the docs' formula, 3 in fact
    3
    """
    numerator = size + 2 * padding - effective_kernel(kernel, dilation) + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # floor division: ATen's div_rtn
    if ceil_mode:
        # written without a branch on the sizes so NumPy arrays of candidates work too
        out = out - ((out - 1) * stride >= size + padding) * 1
    return out


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """The (begin, end) padding of padding='same': the odd element goes at the end.

    >>> same_padding(4, 1)
    (1, 2)
    """
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def adaptive_bins(size: int, out: int) -> list[tuple[int, int]]:
    """The [start, end) input range pooled into each adaptive-pooling output.

    >>> adaptive_bins(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def volume(sizes) -> int:
    """The product of sizes (1 for none).

    >>> volume((3, 7, 7))
    147
    """
    return prod(sizes)


def adaptive_bin_total(size: int, out: int) -> int:
    """The sizes of all ``out`` adaptive-pooling bins over ``size`` inputs, added up, in closed form:
    size + out - gcd(size, out) (the bins overlap where a boundary falls inside an input).

    >>> adaptive_bin_total(5, 3), sum(end - start for start, end in adaptive_bins(5, 3))
    (7, 7)
    """
    return size + out - gcd(size, out) if out else 0


def common_divisors(a: int, b: int, most: int = 12) -> list[int]:
    """The common divisors of ``a`` and ``b``, at most ``most`` of them, found in O(sqrt(gcd)).

    >>> common_divisors(32, 48), common_divisors(10**12, 10**12 + 2)
    ([1, 2, 4, 8, 16], [1, 2])
    """
    g = gcd(a, b)
    small, large, d = [], [], 1
    while d * d <= g and d <= 10**6:  # the search itself stays bounded for any size
        if g % d == 0:
            small.append(d)
            if d != g // d:
                large.append(g // d)
        d += 1
    found = small + large[::-1]
    return found if len(found) <= most else found[: most // 2] + found[-(most // 2):]
