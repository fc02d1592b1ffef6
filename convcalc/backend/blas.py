"""Matrix products that add into their output, through the BLAS NumPy ships with.

``np.matmul`` always overwrites its output, so a bias costs a second pass over
it. BLAS computes ``C = A @ B + beta * C``: with the output first filled with
the bias and beta = 1, the bias is added while each block of the product is
in registers (measured on a 1x1 layer: 5-10% faster than a product and an add).

NumPy's wheels bundle OpenBLAS and export its CBLAS entry points, under a prefix
and suffix that vary between builds; they are found by name in the library that
``threadpoolctl`` reports as loaded, and the integer width is asked of the
library itself. Where none is found (another BLAS, another build),
:func:`direct_blas` says so and :func:`accumulate` falls back to ``np.matmul``
and an add: the same result, only slower. ``CONVCALC_NO_DIRECT_BLAS=1`` forces
the fallback. :func:`multiply` is every convolution route's product with its
bias, by whichever way is available.
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache

import numpy as np

from .memory import scratch

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@lru_cache(maxsize=1)
def _library() -> tuple | None:
    """(library, name prefix, name suffix) of the OpenBLAS NumPy loaded, or None."""
    if os.environ.get("CONVCALC_NO_DIRECT_BLAS"):
        return None
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            library = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("", "")):
            if all(getattr(library, f"{prefix}{name}{suffix}", None) is not None
                   for name in ("openblas_get_config", "cblas_sgemm", "cblas_dgemm")):
                return library, prefix, suffix
    return None


@lru_cache(maxsize=1)
def _entry_points() -> dict | None:
    """{dtype: CBLAS gemm function} from NumPy's OpenBLAS, or None."""
    found = _library()
    if found is None:
        return None
    library, prefix, suffix = found
    config = getattr(library, f"{prefix}openblas_get_config{suffix}")
    config.restype = ctypes.c_char_p
    # The integer width is the build's, not the name's: ask the library.
    integer = ctypes.c_int64 if b"USE64BITINT" in (config() or b"") else ctypes.c_int32
    points = {}
    for dtype, name, real in ((np.float32, "cblas_sgemm", ctypes.c_float), (np.float64, "cblas_dgemm", ctypes.c_double)):
        function = getattr(library, f"{prefix}{name}{suffix}")
        function.restype = None
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, integer, integer, integer, real,
                             ctypes.c_void_p, integer, ctypes.c_void_p, integer, real, ctypes.c_void_p, integer]
        points[np.dtype(dtype)] = function
    return points


@lru_cache(maxsize=1)
def thread_count_calls() -> tuple | None:
    """OpenBLAS's own (set, get) of its thread count, or None where it is not found.

    A direct call takes a microsecond or two; threadpoolctl's limit, which finds
    the libraries each time, 13-36 microseconds (measured), a few percent of a
    small layer.
    """
    found = _library()
    if found is None:
        return None
    library, prefix, suffix = found
    set_count = getattr(library, f"{prefix}openblas_set_num_threads{suffix}", None)
    get_count = getattr(library, f"{prefix}openblas_get_num_threads{suffix}", None)
    if set_count is None or get_count is None:
        return None
    set_count.argtypes, set_count.restype, get_count.restype = [ctypes.c_int], None, ctypes.c_int
    return set_count, get_count


def direct_blas() -> bool:
    """Whether products add into their output inside BLAS (else via NumPy)."""
    return _entry_points() is not None


def _leading(array: np.ndarray) -> int | None:
    """The leading dimension of a 2-D view BLAS can read in row-major order
    (contiguous rows that do not overlap), else None."""
    rows, columns = array.shape
    step, unit = array.strides
    item = array.itemsize
    if rows <= 1:
        step = columns * item
    if columns <= 1:
        unit = item
    if unit != item or step % item or step < columns * item:
        return None
    return max(step // item, 1)


def accumulate(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """``c += a @ b`` for 2-D float32 or float64 views; straight through BLAS
    when each has contiguous rows that do not overlap, else by NumPy.

    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> flat = np.arange(12, dtype=np.float32)
    >>> b = flat.reshape(3, 4)[:, 1:]  # a window: rows 4 apart, 3 long
    >>> c = np.ones((2, 3), dtype=np.float32)
    >>> accumulate(a, b, c)
    >>> c.tolist()
    [[24.0, 27.0, 30.0], [69.0, 81.0, 93.0]]
    """
    (m, k), (k2, n) = a.shape, b.shape
    if c.shape != (m, n) or k2 != k or not (a.dtype == b.dtype == c.dtype) or not c.flags.writeable:
        raise ValueError(f"cannot multiply {a.shape} by {b.shape} into {c.shape}")
    points = _entry_points()
    function = None if points is None else points.get(c.dtype)
    # ``a`` may also be a transposed view (columns contiguous): BLAS reads it so
    transpose = _NO_TRANS if function is None or _leading(a) is not None else _TRANS
    leading = None if function is None else (_leading(a if transpose == _NO_TRANS else a.T), _leading(b), _leading(c))
    if leading is None or None in leading or 0 in (m, n, k):
        c += np.matmul(a, b)
        return
    lda, ldb, ldc = leading
    function(_ROW_MAJOR, transpose, _NO_TRANS, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
             1.0, c.ctypes.data, ldc)


def multiply(w, columns, bias, out, fused: bool) -> None:
    """``out`` (g, M, N) = ``w`` (g, M, K) @ ``columns`` (g, K, N) + ``bias`` (g, M).
    With ``fused`` (BLAS can add into its output), the bias is written first and
    BLAS adds each product to it: one pass less over the output, measured 5-10%
    faster on a 1x1 layer.

    >>> w = np.ones((1, 2, 3), dtype=np.float32)
    >>> out = np.empty((1, 2, 2), dtype=np.float32)
    >>> multiply(w, np.ones((1, 3, 2), dtype=np.float32), np.array([[1, 2]], dtype=np.float32), out, direct_blas())
    >>> out.tolist()
    [[[4.0, 4.0], [5.0, 5.0]]]
    """
    if bias is not None and fused:
        out[...] = bias[:, :, None]
        for g in range(len(w)):
            accumulate(w[g], columns[g], out[g])
        return
    np.matmul(w, columns, out=out)
    if bias is not None:
        out += bias[:, :, None]


def multiply_side_by_side(w, columns, bias, out, fused) -> None:
    """The product of several samples' columns side by side, (groups, depth,
    k * positions), into ``out`` (k, groups, cout/groups, positions)."""
    count, groups, per_out, positions = out.shape
    grid = scratch(groups * per_out * count * positions, columns.dtype, slot="grid").reshape(groups, per_out, -1)
    multiply(w, columns, bias, grid, fused)
    np.copyto(out.transpose(1, 2, 0, 3), grid.reshape(groups, per_out, count, positions))
