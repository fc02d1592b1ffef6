"""Products that add into their output: against NumPy's own a @ b + c, straight
through BLAS and through the fallback, for the layouts BLAS takes and those it
does not."""

import numpy as np
import pytest

from convcalc.backend import blas


@pytest.fixture(params=["direct", "fallback"])
def mode(request, monkeypatch):
    if request.param == "fallback":
        monkeypatch.setattr(blas, "_entry_points", lambda: None)
    elif not blas.direct_blas():
        pytest.skip("this NumPy's BLAS exports no CBLAS entry point convcalc knows")
    return request.param


def layouts(rng, dtype):
    """(a, b) pairs: plain, windows of a wider array, a transposed view, rows that
    overlap, a broadcast row, and empty."""
    wide = rng.standard_normal((40, 70)).astype(dtype)
    flat = rng.standard_normal(500).astype(dtype)
    yield rng.standard_normal((5, 7)).astype(dtype), rng.standard_normal((7, 9)).astype(dtype)
    yield wide[:5, 3:10], wide[10:17, 20:49]
    yield wide[:7, :5].T, wide[7:14, :9]
    yield wide[:3, :4], np.lib.stride_tricks.as_strided(flat[2:], (4, 30), (flat.itemsize,) * 2)
    yield wide[:1, :6], np.broadcast_to(flat[:11], (6, 11))
    yield wide[:4, :0], wide[:0, :5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accumulate_equals_numpy(mode, dtype):
    rng = np.random.default_rng(7)
    for a, b in layouts(rng, dtype):
        start = rng.standard_normal((a.shape[0], b.shape[1])).astype(dtype)
        c = start.copy()
        blas.accumulate(a, b, c)
        expected = start + a.astype(np.float64) @ b.astype(np.float64)
        tolerance = 1e-5 if dtype == np.float32 else 1e-12
        assert np.allclose(c, expected, rtol=tolerance, atol=tolerance * 10)


def test_accumulate_into_a_window_leaves_the_rest(mode):
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 5)).astype(np.float32)
    big = rng.standard_normal((6, 9)).astype(np.float32)
    before = big.copy()
    blas.accumulate(a, b, big[2:5, 3:8])
    expected = before.copy()
    expected[2:5, 3:8] += a @ b
    assert np.allclose(big, expected, atol=1e-5)


def test_mismatched_operands_are_refused(mode):
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError):
        blas.accumulate(a, np.ones((4, 2), np.float32), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError):
        blas.accumulate(a, np.ones((3, 2), np.float64), np.ones((2, 2), np.float32))
    with pytest.raises(ValueError):
        blas.accumulate(a, np.ones((3, 2), np.float32), np.broadcast_to(np.ones(2, np.float32), (2, 2)))  # read-only


def _clear_caches():
    for cached in (blas._library, blas._entry_points, blas.thread_count_calls):
        cached.cache_clear()


def test_the_environment_turns_direct_blas_off(monkeypatch):
    _clear_caches()
    monkeypatch.setenv("CONVCALC_NO_DIRECT_BLAS", "1")
    try:
        assert not blas.direct_blas()
        assert blas.thread_count_calls() is None
    finally:
        monkeypatch.delenv("CONVCALC_NO_DIRECT_BLAS")
        _clear_caches()

