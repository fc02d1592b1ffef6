"""The NumPy backend without torch: a loop reference, the seeds' tensors, dtypes,
memory refusal, and errors shared with the shape engine."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcalc.functional as F
from convcalc import ConvcalcError, ResourceError, ShapeError
from convcalc.engine.layers import Conv

from .loops import conv_loop, conv_transpose_loop, pool_loop


def close(a, b, tol=1e-10):
    assert a.shape == b.shape
    assert np.max(np.abs(a - b), initial=0) <= tol * max(1.0, np.max(np.abs(b), initial=0))


# Seed 000: the convolution-matrix example
def test_seed_000_convolution():
    x = np.array([[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]], dtype=np.float32)[None, None]
    k = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=np.float32)[None, None]
    assert F.conv(x, k)[0, 0].tolist() == [[122, 148], [126, 134]]


def test_seed_000_transposed_convolution_matrix():
    # The seed multiplies the transposed convolution matrix by a 2x2 input; its
    # printed result [[2, 9, 6, 1], [6, 29, 30, 7], ...] is that of the input
    # [[2, 1], [4, 4]] (the vector shown beside it is the forward result instead).
    y = np.array([[2, 1], [4, 4]], dtype=np.float32)[None, None]
    k = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=np.float32)[None, None]
    assert F.conv_transpose(y, k)[0, 0].tolist() == [[2, 9, 6, 1], [6, 29, 30, 7], [10, 29, 33, 13], [12, 24, 16, 4]]


# Seed 003: PyTorch's outputs, printed in the article
X2 = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
X3 = np.arange(9, dtype=np.float32).reshape(3, 3)
K2 = np.arange(4, dtype=np.float32).reshape(2, 2)


def test_seed_003_basic():
    out = F.conv_transpose(X2[None, None], X2[None, None])
    assert out[0, 0].tolist() == [[0, 0, 1], [0, 4, 6], [4, 12, 9]]


def test_seed_003_stride():
    out = F.conv_transpose(X3[None, None], K2[None, None], stride=2)
    assert out[0, 0].tolist() == [
        [0, 0, 0, 1, 0, 2], [0, 0, 2, 3, 4, 6], [0, 3, 0, 4, 0, 5],
        [6, 9, 8, 12, 10, 15], [0, 6, 0, 7, 0, 8], [12, 18, 14, 21, 16, 24],
    ]


def test_seed_003_padding():
    out = F.conv_transpose(X3[None, None], K2[None, None], stride=2, padding=1)
    assert out[0, 0].tolist() == [[0, 2, 3, 4], [3, 0, 4, 0], [9, 8, 12, 10], [6, 0, 7, 0]]


def test_seed_003_dilation():
    out = F.conv_transpose(X3[None, None], K2[None, None], stride=2, dilation=2)
    assert out[0, 0].tolist() == [
        [0, 0, 0, 0, 1, 0, 2], [0] * 7, [0, 0, 5, 0, 11, 0, 11], [0] * 7,
        [6, 0, 23, 0, 29, 0, 23], [0] * 7, [12, 0, 32, 0, 37, 0, 24],
    ]


def test_seed_003_channels():
    x = np.stack([X2, X2])[None]
    k = np.stack([X2, X2])[:, None]
    assert F.conv_transpose(x, k)[0, 0].tolist() == [[0, 0, 2], [0, 8, 12], [8, 24, 18]]


@st.composite
def conv_case(draw):
    rank = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 2]))
    cin = groups * draw(st.integers(1, 2))
    cout = groups * draw(st.integers(1, 2))
    sizes = tuple(draw(st.integers(3, 7)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    return rank, groups, cin, cout, sizes, kernel, stride, dilation, padding, draw(st.integers(0, 2**31))


@settings(max_examples=60)
@given(conv_case())
def test_conv_equals_loop_reference(case):
    rank, groups, cin, cout, sizes, kernel, stride, dilation, padding, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin, *sizes))
    w = rng.standard_normal((cout, cin // groups, *kernel))
    b = rng.standard_normal(cout)
    try:
        got = F.conv(x, w, b, stride, padding, dilation, groups)
    except ShapeError:
        return
    close(got, conv_loop(x, w, b, stride, [(p, p) for p in padding], dilation, groups))


@settings(max_examples=60)
@given(conv_case(), st.integers(0, 1))
def test_conv_transpose_equals_loop_reference(case, output_padding):
    rank, groups, cin, cout, sizes, kernel, stride, dilation, padding, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin, *sizes))
    w = rng.standard_normal((cin, cout // groups, *kernel))
    try:
        got = F.conv_transpose(x, w, None, stride, padding, output_padding, groups, dilation)
    except ShapeError:
        return
    expected = conv_transpose_loop(x, w, None, stride, padding, (output_padding,) * rank, dilation, groups)
    close(got, expected)


@settings(max_examples=60)
@given(conv_case(), st.booleans(), st.booleans(), st.sampled_from(["max", "avg"]))
def test_pooling_equals_loop_reference(case, ceil_mode, count_include_pad, kind):
    rank, _, channels, _, sizes, kernel, stride, dilation, padding, seed = case
    x = np.random.default_rng(seed).standard_normal((1, channels, *sizes))
    padding = tuple(min(p, k // 2) for p, k in zip(padding, kernel))
    try:
        if kind == "max":
            got = F.max_pool(x, kernel, stride, padding, dilation, ceil_mode)
        else:
            dilation = (1,) * rank
            got = F.avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad)
    except ShapeError:
        return
    close(got, pool_loop(x, kernel, stride, padding, dilation, got.shape[2:], kind, count_include_pad))


def test_same_padding_and_padding_modes_equal_explicit_padding():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2, 6, 7))
    w = rng.standard_normal((3, 2, 4, 3))
    pads = Conv(3, (4, 3), padding="same").pads((6, 7))  # ((1, 2), (1, 1)): the extra at the end
    close(F.conv(x, w, padding="same"), conv_loop(x, w, None, (1, 1), pads, (1, 1), 1))
    for mode, numpy_mode in (("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")):
        padded = np.pad(x, [(0, 0), (0, 0), (2, 2), (1, 1)], mode=numpy_mode)
        close(F.conv(x, w, padding=(2, 1), padding_mode=mode), conv_loop(padded, w, None, (1, 1), [(0, 0)] * 2, (1, 1), 1))


def test_adaptive_pools_equal_bin_by_bin():
    x = np.random.default_rng(2).standard_normal((1, 2, 7, 5))
    got_avg, got_max = F.adaptive_avg_pool(x, (3, 4)), F.adaptive_max_pool(x, (3, 4))
    for i in range(3):
        for j in range(4):
            rows = slice((i * 7) // 3, -((-(i + 1) * 7) // 3))
            cols = slice((j * 5) // 4, -((-(j + 1) * 5) // 4))
            close(got_avg[0, :, i, j], x[0, :, rows, cols].mean(axis=(1, 2)))
            close(got_max[0, :, i, j], x[0, :, rows, cols].max(axis=(1, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 9)).astype(dtype)
    w = rng.standard_normal((4, 4, 3, 3)).astype(dtype)
    c = rng.standard_normal(4).astype(dtype)
    outputs = [
        F.conv(x, w, c, padding=1), F.conv(x, w[:, :1], groups=4), F.conv(x, w[:, :, :1, :1]),
        F.conv_transpose(x, w, c, stride=2), F.max_pool(x, 2), F.avg_pool(x, 3, 2, 1, ceil_mode=True),
        F.adaptive_avg_pool(x, 2), F.adaptive_max_pool(x, 2), F.batch_norm(x, c, np.abs(c), c, c),
        F.linear(x, rng.standard_normal((4, 9)).astype(dtype), c), F.upsample(x, 2), F.pad(x, (1, 1)),
        F.flatten(x), *(f(x) for f in F.ACTIVATIONS.values()), F.gelu(x, approximate="tanh"),
    ]
    assert all(o.dtype == dtype for o in outputs)


def test_activations_cover_every_kind_the_engine_knows():
    from convcalc.engine.layers import ACTIVATION_FLOPS

    assert set(F.ACTIVATIONS) == set(ACTIVATION_FLOPS)


def test_same_errors_as_the_shape_engine():
    x = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ShapeError, match="padding='same' needs stride 1"):
        F.conv(x, np.zeros((4, 4, 3, 3), np.float32), stride=2, padding="same")
    with pytest.raises(ShapeError, match="output_padding must be smaller"):
        F.conv_transpose(x, np.zeros((4, 4, 3, 3), np.float32), stride=2, output_padding=2)
    with pytest.raises(ShapeError, match="padding must be at most half"):
        F.max_pool(x, 3, padding=2)
    with pytest.raises(ShapeError, match="expects 2 input channels, but the input has 4"):
        F.conv(x, np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ConvcalcError, match="dtype float64 but the input has float32"):
        F.conv(x, np.zeros((4, 4, 3, 3)))


def test_memory_limit_refuses_before_allocating():
    x = np.zeros((8, 64, 56, 56), np.float32)
    w = np.zeros((64, 64, 3, 3), np.float32)
    F.set_memory_limit(2**20)
    try:
        with pytest.raises(ResourceError, match=r"would need .*MiB.*over the limit of 1.00 MiB") as info:
            F.conv(x, w, padding=1)
        assert "smaller batch or input" in info.value.hint
    finally:
        F.set_memory_limit(None)


@pytest.mark.parametrize("sizes, kernel, stride", [
    ((8, 28, 28), 3, 1),     # input rows sharing their columns, each tap one run
    ((224, 224), 7, 2),      # the same for a stem, strided
    ((6, 40), 3, 1),         # im2col
    ((20,), 3, 1),
])
def test_no_input_channels_leave_the_bias(sizes, kernel, stride):
    # An empty sum is zero: each output is its bias, on every route (a plan of
    # empty runs once failed to reshape, on the input-row route).
    b = np.arange(1, 5, dtype=np.float32)
    x = np.zeros((2, 0, *sizes), np.float32)
    y = F.conv(x, np.zeros((4, 0, *(kernel,) * len(sizes)), np.float32), b, stride, kernel // 2)
    assert y.shape[:2] == (2, 4)
    assert np.array_equal(y, np.broadcast_to(b.reshape(1, 4, *(1,) * len(sizes)), y.shape))


@pytest.mark.parametrize("layer", ["3-d, rows sharing columns", "transposed, by phases"])
def test_memory_limit_covers_every_route(layer):
    # The input-row route and the phase route count their buffers before any allocation too.
    from convcalc.backend.phases import by_phases
    from convcalc.backend.rows import rows_per_tile

    if layer.startswith("3-d"):
        x, w = np.zeros((1, 16, 8, 28, 28), np.float32), np.zeros((32, 16, 3, 3, 3), np.float32)
        assert rows_per_tile(w.shape, (1, 1, 1), (1, 1, 1), 1, (8, 28, 28), 4, 1) is not None

        def call():
            return F.conv(x, w, padding=1)
    else:
        x, w = np.zeros((1, 256, 16, 16), np.float32), np.zeros((256, 128, 4, 4), np.float32)
        assert by_phases(w.shape, (2, 2), (32, 32), 1)

        def call():
            return F.conv_transpose(x, w, stride=2, padding=1)
    F.set_memory_limit(2**20)
    try:
        with pytest.raises(ResourceError, match=r"would need .*tile buffers.*over the limit of 1.00 MiB"):
            call()
    finally:
        F.set_memory_limit(None)
    assert call().shape[1] == (w.shape[0] if layer.startswith("3-d") else w.shape[1])  # within the default limit


def test_gelu_relative_accuracy_everywhere():
    # against math.erfc, exact to double precision; GELU's far negative tail is
    # tiny, and computing it as 1 + erf would leave only rounding noise there
    import math

    x = np.linspace(-12, 12, 4001)
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    nonzero = exact != 0
    assert np.max(np.abs(F.gelu(x)[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])) < 1e-6
