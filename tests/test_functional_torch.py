"""The NumPy backend against torch.nn.functional on identical data: float32 results
within 1e-5 of the output's scale, float64 within 1e-10, same refusals."""

import warnings
from unittest import mock
from math import prod

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcalc.functional as F
from convcalc import ConvcalcError

try:
    import torch
    import torch.nn.functional as TF
    from torch import nn
except ImportError:  # the tests that need torch say so (needs_torch)
    pass
else:
    torch.set_num_threads(1)

warnings.filterwarnings("ignore")
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-10}
MAX_SPATIAL = {1: 20, 2: 11, 3: 6}


def agree(ours, theirs, dtype):
    """Both refused, or both produced the same tensor within rounding."""
    if theirs is None or ours is None:
        assert theirs is None and ours is None, f"torch {'refused' if theirs is None else 'accepted'}"
        return
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    finite = np.isfinite(theirs)
    assert np.array_equal(ours[~finite], theirs[~finite])  # a window of padding alone is -inf in both
    scale = max(1.0, float(np.max(np.abs(theirs[finite]), initial=0)))
    assert np.max(np.abs(ours[finite] - theirs[finite]), initial=0) <= TOLERANCE[dtype] * scale


def attempt(call):
    try:
        return call()
    except (ConvcalcError, RuntimeError, ValueError, TypeError, IndexError):
        return None


def tensors(draw, *shapes, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


@st.composite
def conv_case(draw):
    rank = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    depthwise = draw(st.booleans())
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    if depthwise:
        cin, cout = groups, groups * draw(st.integers(1, 2))
    sizes = tuple(draw(st.integers(1, MAX_SPATIAL[rank])) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.tuples(*[st.integers(0, 3)] * rank)))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    batch = draw(st.integers(1, 3))
    x, w, b = tensors(draw, (batch, cin, *sizes), (cout, cin // groups, *kernel), (cout,), dtype=dtype)
    return rank, dtype, groups, x, w, b if draw(st.booleans()) else None, stride, padding, dilation, mode


@pytest.mark.needs_torch
@settings(max_examples=800)
@given(conv_case())
def test_conv_equals_torch(case):
    rank, dtype, groups, x, w, b, stride, padding, dilation, mode = case

    def reference():
        module = getattr(nn, f"Conv{rank}d")(x.shape[1], w.shape[0], w.shape[2:], stride, padding, dilation, groups,
                                            b is not None, mode, dtype=torch.float64 if dtype == np.float64 else None)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(w))
            if b is not None:
                module.bias.copy_(torch.from_numpy(b))
            return module(torch.from_numpy(x))

    agree(attempt(lambda: F.conv(x, w, b, stride, padding, dilation, groups, mode)), attempt(reference), dtype)


@st.composite
def transposed_case(draw):
    rank = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    groups = draw(st.sampled_from([1, 2, 3]))
    cin = groups * draw(st.integers(1, 3))
    cout = groups * draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, MAX_SPATIAL[rank] - 2)) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(rank))
    output_padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    x, w, b = tensors(draw, (draw(st.integers(1, 3)), cin, *sizes), (cin, cout // groups, *kernel), (cout,), dtype=dtype)
    return rank, dtype, x, w, b if draw(st.booleans()) else None, stride, padding, output_padding, groups, dilation


@pytest.mark.needs_torch
@settings(max_examples=600)
@given(transposed_case())
def test_conv_transpose_equals_torch(case):
    rank, dtype, x, w, b, stride, padding, output_padding, groups, dilation = case
    function = getattr(TF, f"conv_transpose{rank}d")
    theirs = attempt(lambda: function(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
                                      stride, padding, output_padding, groups, dilation))
    if theirs is not None and 0 in theirs.shape:
        theirs = None  # a backend's empty tensor where the reference path refuses (docs/conventions.md)
    agree(attempt(lambda: F.conv_transpose(x, w, b, stride, padding, output_padding, groups, dilation)), theirs, dtype)


@pytest.mark.needs_torch
@settings(max_examples=400)
@given(transposed_case())
def test_conv_transpose_by_phases_equals_torch(case):
    # The same random layers, each output phase computed as an ordinary
    # convolution (small layers like these go by col2im otherwise).
    import convcalc.backend.transposed as backend

    with mock.patch.object(backend, "by_phases", lambda *_: True):
        test_conv_transpose_equals_torch.hypothesis.inner_test(case)


@st.composite
def pool_case(draw):
    rank = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    (x,) = tensors(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
                          *(draw(st.integers(1, MAX_SPATIAL[rank])) for _ in range(rank))), dtype=dtype)
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3)] * rank)))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    return rank, dtype, x, kernel, stride, padding, dilation, draw(st.booleans()), draw(st.booleans())


@pytest.mark.needs_torch
@settings(max_examples=800)
@given(pool_case(), st.sampled_from(["max", "avg"]), st.one_of(st.none(), st.integers(1, 5)))
def test_pooling_equals_torch(case, kind, divisor):
    rank, dtype, x, kernel, stride, padding, dilation, ceil_mode, count_include_pad = case
    t = torch.from_numpy(x)
    if kind == "max":
        ours = attempt(lambda: F.max_pool(x, kernel, stride, padding, dilation, ceil_mode))
        theirs = attempt(lambda: getattr(TF, f"max_pool{rank}d")(t, kernel, stride, padding, dilation, ceil_mode))
    else:
        divisor = divisor if rank > 1 else None  # avg_pool1d has no divisor_override
        extra = (divisor,) if rank > 1 else ()
        ours = attempt(lambda: F.avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor))
        theirs = attempt(lambda: getattr(TF, f"avg_pool{rank}d")(t, kernel, stride, padding, ceil_mode,
                                                                 count_include_pad, *extra))
    agree(ours, theirs, dtype)


@pytest.mark.needs_torch
@settings(max_examples=300)
@given(st.integers(1, 3), st.lists(st.integers(1, 9), min_size=3, max_size=3),
       st.lists(st.one_of(st.none(), st.integers(1, 11)), min_size=3, max_size=3), st.sampled_from(["avg", "max"]),
       st.integers(0, 2**31))
def test_adaptive_pooling_equals_torch(rank, sizes, out, kind, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, *sizes[:rank])).astype(np.float32)
    output_size = tuple(out[:rank])
    ours = attempt(lambda: getattr(F, f"adaptive_{kind}_pool")(x, output_size))
    theirs = attempt(lambda: getattr(TF, f"adaptive_{kind}_pool{rank}d")(torch.from_numpy(x), output_size))
    agree(ours, theirs, np.float32)


@pytest.mark.needs_torch
def test_other_functions_equal_torch():
    rng = np.random.default_rng(4)
    x = (3 * rng.standard_normal((2, 4, 6, 5))).astype(np.float32)
    t = torch.from_numpy(x)
    w = rng.standard_normal((7, 5)).astype(np.float32)
    c = rng.standard_normal(4).astype(np.float32)
    v = np.abs(rng.standard_normal(4)).astype(np.float32) + 0.1
    T = torch.from_numpy
    agree(F.linear(x, w, w[:, 0].copy()), TF.linear(t, T(w), T(w[:, 0].copy())), np.float32)
    agree(F.batch_norm(x, c, v, c, v, eps=1e-3), TF.batch_norm(t, T(c), T(v), T(c), T(v), False, 0.1, 1e-3), np.float32)
    for name, function in F.ACTIVATIONS.items():
        reference = torch.erf if name == "Erf" else getattr(nn, name)()  # Erf is a function, not a module
        agree(function(x), reference(t), np.float32)
    agree(F.gelu(x, approximate="tanh"), TF.gelu(t, approximate="tanh"), np.float32)
    agree(F.leaky_relu(x, 0.2), TF.leaky_relu(t, 0.2), np.float32)
    agree(F.upsample(x, 3), TF.interpolate(t, scale_factor=3, mode="nearest"), np.float32)
    agree(F.upsample(x, (2, 3)), TF.interpolate(t, scale_factor=(2, 3), mode="nearest"), np.float32)
    agree(F.pad(x, (1, 2, -1, 3)), TF.pad(t, (1, 2, -1, 3)), np.float32)
    agree(F.pad(x, (2, 0)), TF.pad(t, (2, 0)), np.float32)
    agree(F.flatten(x), torch.flatten(t, 1), np.float32)


@pytest.mark.needs_torch
def test_gelu_matches_torch_in_float64():
    x = np.linspace(-9, 9, 2001)
    agree(F.gelu(x), TF.gelu(torch.from_numpy(x)), np.float32)


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank, stride, padding, dilation, bias", [
    (2, 1, 1, 1, True),         # the flat plan: one run per tap
    (2, 1, 2, 2, False),        # flat, dilated, no bias row
    (2, 2, 1, 1, True),         # strided: row by row, with zeroed bands
    (2, 1, 0, 1, True),         # valid padding: smaller output, row by row
    (1, 1, 3, 1, True),
    (3, 1, 1, 1, False),
    (3, 2, 2, 2, True),
])
def test_blocks_of_groups_equal_torch(monkeypatch, rank, stride, padding, dilation, bias):
    # Many groups split into several blocks and work items (a small tile), so every
    # block after the first reuses the column buffer: its zeroed bands must not leak.
    import convcalc.backend.convolution as backend

    monkeypatch.setattr(backend, "GROUP_TILE_BYTES", 6000)
    rng = np.random.default_rng(rank * 100 + stride * 10 + padding)
    sizes = {1: (40,), 2: (13, 12), 3: (6, 7, 5)}[rank]
    for groups, per_group in ((24, 1), (8, 2)):
        x = rng.standard_normal((3, groups * per_group, *sizes)).astype(np.float32)
        w = rng.standard_normal((groups * 2, per_group, *(3,) * rank)).astype(np.float32)
        b = rng.standard_normal(groups * 2).astype(np.float32) if bias else None
        theirs = getattr(TF, f"conv{rank}d")(torch.from_numpy(x), torch.from_numpy(w),
                                             None if b is None else torch.from_numpy(b), stride, padding, dilation, groups)
        agree(F.conv(x, w, b, stride, padding, dilation, groups), theirs, np.float32)


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank, stride, padding, groups, bias", [
    (2, 1, 1, 1, True),      # columns straight from the input
    (2, 2, 1, 1, False),     # windows
    (2, 1, 1, 2, True),      # two groups through the row tiles
    (1, 1, 0, 1, True),
    (3, 1, 1, 1, True),
])
def test_tiles_split_by_output_channels_equal_torch(monkeypatch, rank, stride, padding, groups, bias):
    # A tile with more output channels than positions is shared by output channel
    # between the workers; small thresholds make that happen on small tensors,
    # with an odd channel count so the two parts differ in size.
    import convcalc.backend.convolution as backend

    monkeypatch.setattr(backend, "MIN_PART", 1)
    monkeypatch.setattr(backend, "WORKERS", 2)
    monkeypatch.setattr(backend, "GROUP_TILE_BYTES", 0)
    sizes = {1: (3,), 2: (3, 2), 3: (2, 2, 1)}[rank]
    assert backend._tile_rows(4 * 9, sizes, 4, 1, 7)[2] == 2
    rng = np.random.default_rng(rank * 10 + stride)
    x = rng.standard_normal((1, 4, *sizes)).astype(np.float32)
    w = rng.standard_normal((7 * groups, 4 // groups, *(3,) * rank)).astype(np.float32)
    b = rng.standard_normal(7 * groups).astype(np.float32) if bias else None
    theirs = getattr(TF, f"conv{rank}d")(torch.from_numpy(x), torch.from_numpy(w),
                                         None if b is None else torch.from_numpy(b), stride, padding, 1, groups)
    agree(F.conv(x, w, b, stride, padding, 1, groups), theirs, np.float32)


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank, padding, dilation, groups, bias", [
    (2, 1, 1, 1, True),           # 3x3, same size: first, middle and last row tiles
    (2, (4, 1), 1, 1, False),     # rows of padding only: tiles that read no input
    (2, 2, 2, 1, True),           # dilated
    (2, "same", 1, 2, True),      # even kernel, unequal padding; two groups through the tiles
    (1, 1, 1, 1, True),
    (3, 1, 1, 1, False),
])
def test_columns_straight_from_the_input_equal_torch(monkeypatch, rank, padding, dilation, groups, bias):
    # Stride-1 layers whose trailing axes keep their size copy each tile's
    # columns from the input itself; one output row per tile makes every tile
    # a boundary case somewhere (reading above the input, below it, or neither).
    import convcalc.backend.convolution as backend
    from convcalc.backend.taps import runs_of_input

    monkeypatch.setattr(backend, "TILE_BYTES", 1)
    monkeypatch.setattr(backend, "GROUP_TILE_BYTES", 0)
    kernel = 4 if padding == "same" else 3
    sizes = {1: (11,), 2: (7, 6), 3: (4, 5, 3)}[rank]
    rng = np.random.default_rng(rank * 10 + dilation)
    x = rng.standard_normal((2, 4 * groups, *sizes)).astype(np.float32)
    w = rng.standard_normal((3 * groups, 4, *(kernel,) * rank)).astype(np.float32)
    b = rng.standard_normal(3 * groups).astype(np.float32) if bias else None
    theirs = getattr(TF, f"conv{rank}d")(torch.from_numpy(x), torch.from_numpy(w),
                                         None if b is None else torch.from_numpy(b), 1, padding, dilation, groups)
    assert runs_of_input(sizes, tuple(theirs.shape[2:]), (1,) * rank)
    agree(F.conv(x, w, b, 1, padding, dilation, groups), theirs, np.float32)


@pytest.mark.needs_torch
@pytest.mark.parametrize("kernel, groups, bias", [(3, 1, True), (3, 2, False), (1, 1, False), (1, 4, True)])
def test_several_samples_in_one_product_equal_torch(monkeypatch, kernel, groups, bias):
    # Layers with few positions a sample put several whole samples side by side
    # in one product and copy the result back sample by sample.
    import convcalc.backend.convolution as backend

    monkeypatch.setattr(backend, "GROUP_TILE_BYTES", 0)
    rng = np.random.default_rng(kernel * 10 + groups)
    x = rng.standard_normal((6, 8, 3, 4)).astype(np.float32)
    w = rng.standard_normal((12, 8 // groups, kernel, kernel)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32) if bias else None
    assert backend._samples_per_tile(6, 12, 8 * kernel * kernel * 12 * 4) > 1
    theirs = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), 1,
                       kernel // 2, 1, groups)
    agree(F.conv(x, w, b, 1, kernel // 2, 1, groups), theirs, np.float32)


@pytest.mark.needs_torch
@pytest.mark.parametrize("sizes, kernel, stride, padding, dilation, bias, dtype", [
    ((4, 5, 6), 3, 1, 1, 1, True, np.float32),                  # 3x3x3 'same': flat plan on each input row
    ((7, 6, 5), 3, (2, 1, 1), (0, 1, 2), (1, 2, 1), False, np.float32),  # stride 2 < 3 taps; dilated, shrinking rows
    ((5, 8, 9), (4, 3, 3), (1, 2, 2), (5, 0, 1), 1, True, np.float64),   # strided rows; output rows of padding only
    ((9, 13), 3, 1, 1, 1, True, np.float32),                    # 2-d: rows of a wide image
    ((15, 16), 7, 2, 3, 1, True, np.float32),                   # 2-d, a stem: 7x7, stride 2 on both axes
    ((3, 4, 4), (2, 1, 1), 1, 0, 1, False, np.float64),         # two first-axis taps, no others
])
@pytest.mark.parametrize("direct, rows", [(True, 1), (False, 1), (True, 2)])
def test_columns_shared_by_output_rows_equal_torch(monkeypatch, sizes, kernel, stride, padding, dilation, bias, dtype,
                                                   direct, rows):
    # Each input row's columns are copied once per tile and read by every output
    # row whose first-axis taps reach it. Tiles hold one or two output rows, so
    # every tile is a boundary case (rows above the input, below it, or padding
    # only), with the product adding into the bias or not.
    from convcalc.backend import rows as backend
    from convcalc.backend import blas

    if not direct:
        monkeypatch.setattr(blas, "_entry_points", lambda: None)
    rank = len(sizes)
    kernel = kernel if isinstance(kernel, tuple) else (kernel,) * rank
    rng = np.random.default_rng(rank + len(str(padding)))
    x = rng.standard_normal((2, 4, *sizes)).astype(dtype)
    w = rng.standard_normal((5, 4, *kernel)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype) if bias else None
    theirs = getattr(TF, f"conv{rank}d")(torch.from_numpy(x), torch.from_numpy(w),
                                         None if b is None else torch.from_numpy(b), stride, padding, dilation)
    out = tuple(theirs.shape[2:])
    def per_axis(value):
        return value if isinstance(value, tuple) else (value,) * rank

    pads = tuple((p, p) for p in per_axis(padding))
    row_bytes = 4 * prod(kernel[1:]) * prod(out[1:]) * x.itemsize
    monkeypatch.setattr(backend, "ROW_PRODUCT", 1)
    read = (rows - 1) * per_axis(stride)[0] + kernel[0]  # the input rows a tile of that many output rows reads
    monkeypatch.setattr(backend, "TILE_BYTES", -(-read * row_bytes // 4))
    assert backend.rows_per_tile(w.shape, per_axis(stride), per_axis(dilation), 1, out, x.itemsize, 2) == rows
    agree(F.conv(x, w, b, stride, padding, dilation), theirs, dtype)


def test_columns_shared_by_output_rows_only_where_they_apply():
    # Dilation or several groups would break the contiguous block of each output
    # row's columns; a stride as long as the kernel shares no rows; narrow rows
    # make products too small for BLAS, and rows of medium width only pay when
    # the weights, read once per row, are small: those layers go the other routes.
    from convcalc.backend import rows

    args = dict(weight_shape=(32, 16, 3, 3, 3), stride=(1, 1, 1), dilation=(1, 1, 1), groups=1, out_sizes=(8, 28, 28),
                itemsize=4, samples=2)
    assert rows.rows_per_tile(**args) == 8
    assert rows.rows_per_tile(**{**args, "dilation": (2, 1, 1)}) is None
    assert rows.rows_per_tile(**{**args, "groups": 2}) is None
    assert rows.rows_per_tile(**{**args, "stride": (3, 1, 1)}) is None
    assert rows.rows_per_tile(**{**args, "out_sizes": (8, 7, 7)}) is None
    assert rows.rows_per_tile(**{**args, "weight_shape": (32, 1024, 3, 3, 3)}) is None  # three input rows exceed a tile
    medium = dict(args, weight_shape=(64, 64, 3, 3), stride=(1, 1), dilation=(1, 1), out_sizes=(112, 112))
    assert rows.rows_per_tile(**medium) is not None
    assert rows.rows_per_tile(**{**medium, "weight_shape": (128, 128, 3, 3)}) is None
    assert rows.rows_per_tile(**{**medium, "weight_shape": (128, 128, 3, 3), "out_sizes": (8, 512)}) is not None


@pytest.mark.needs_torch
@pytest.mark.parametrize("dilation, bias", [(1, True), (2, False)])
def test_padded_grid_of_a_shrinking_layer_equals_torch(monkeypatch, dilation, bias):
    # Stride 1 with the trailing axes shrinking (no padding): each tile's slab is
    # multiplied over its whole grid and the outputs are cropped from it.
    import convcalc.backend.convolution as backend
    from convcalc.backend.taps import runs_of_input

    monkeypatch.setattr(backend, "TILE_BYTES", 1)
    rng = np.random.default_rng(dilation)
    x = rng.standard_normal((2, 3, 6, 40)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32) if bias else None
    theirs = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b), 1, 0,
                       dilation)
    out = tuple(theirs.shape[2:])
    assert not runs_of_input((6, 40), out, (1, 1))
    assert backend._flat_layout((1 + 2 * dilation, 40), (3, 3), (1, 1), (dilation, dilation), (1, out[1])) is not None
    agree(F.conv(x, w, b, 1, 0, dilation), theirs, np.float32)


@pytest.mark.needs_torch
@pytest.mark.parametrize("rank, stride, padding, dilation, groups, bias", [
    (2, 2, 1, 1, 1, True),
    (2, 3, 0, 2, 2, False),
    (1, 2, 1, 1, 1, True),
    (3, 2, 1, 1, 1, False),
    (2, 1, 1, 1, 1, True),     # stride 1: one phase, the products straight into the output
    (2, 4, 0, 1, 2, True),     # kernel = stride: each phase reads the input as it is
])
@pytest.mark.parametrize("phases", [False, True])
def test_transposed_in_many_tiles_equals_torch(monkeypatch, rank, stride, padding, dilation, groups, bias, phases):
    # col2im: one input row per tile and one output channel per block, so every
    # phase's accumulator is started by a tile's first tap and added to by the
    # others. By phases: one output row of a phase per work item, each copying
    # its columns from rows above the input, inside it or below it.
    import convcalc.backend.phases as by_phase
    import convcalc.backend.transposed as backend

    monkeypatch.setattr(backend, "by_phases", lambda *_: phases)
    monkeypatch.setattr(backend, "COLUMN_BYTES", 1)
    monkeypatch.setattr(backend, "BLOCK_BYTES", 1)
    monkeypatch.setattr(by_phase, "COLUMN_BYTES", 1)
    rng = np.random.default_rng(rank * 10 + stride)
    sizes = {1: (9,), 2: (5, 4), 3: (3, 4, 2)}[rank]
    for batch in (1, 2):  # one sample: thinner tiles; two: the samples shared
        x = rng.standard_normal((batch, 2 * groups, *sizes)).astype(np.float32)
        w = rng.standard_normal((2 * groups, 3, *(4,) * rank)).astype(np.float32)
        b = rng.standard_normal(3 * groups).astype(np.float32) if bias else None
        theirs = getattr(TF, f"conv_transpose{rank}d")(torch.from_numpy(x), torch.from_numpy(w),
                                                       None if b is None else torch.from_numpy(b), stride, padding, 0,
                                                       groups, dilation)
        agree(F.conv_transpose(x, w, b, stride, padding, 0, groups, dilation), theirs, np.float32)


def test_transposed_goes_by_phases_where_that_measured_faster():
    # 2-d and 3-d layers with at least 64 output channels a group, 256 positions a
    # phase over the batch, and a kernel larger than the stride; 1-d layers, fewer
    # channels, small outputs or kernels within the stride by col2im.
    from convcalc.backend.phases import by_phases

    assert by_phases((256, 128, 4, 4), (2, 2), (32, 32), 1)
    assert by_phases((64, 64, 4, 4, 4), (2, 2, 2), (16, 32, 32), 1)
    assert not by_phases((256, 128, 8), (4,), (1600,), 1)
    assert not by_phases((128, 32, 4, 4), (2, 2), (64, 64), 1)
    assert not by_phases((512, 256, 4, 4), (2, 2), (16, 16), 1)
    assert by_phases((512, 256, 4, 4), (2, 2), (16, 16), 4)
    assert not by_phases((256, 128, 2, 2), (2, 2), (64, 64), 1)  # kernel = stride: col2im adds nothing


@pytest.mark.needs_torch
@pytest.mark.parametrize("direct", [True, False])
@pytest.mark.parametrize("groups", [1, 4])
def test_bias_equals_torch_through_either_product(monkeypatch, direct, groups):
    # A layer's bias goes into BLAS's output first where BLAS can add to it, else
    # it is added after NumPy's product: both against torch.
    from convcalc.backend import blas

    if not direct:
        monkeypatch.setattr(blas, "_entry_points", lambda: None)
    elif not blas.direct_blas():
        pytest.skip("this NumPy's BLAS exports no CBLAS entry point convcalc knows")
    rng = np.random.default_rng(groups)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((3, 8, 5, 6)).astype(dtype)
        w = rng.standard_normal((12, 8 // groups, 1, 1)).astype(dtype)
        b = rng.standard_normal(12).astype(dtype)
        theirs = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), groups=groups)
        agree(F.conv(x, w, b, groups=groups), theirs, dtype)
        # a strided 3x3 layer: its columns are copied window by window, then the same product
        w3 = rng.standard_normal((12, 8 // groups, 3, 3)).astype(dtype)
        theirs = TF.conv2d(torch.from_numpy(x), torch.from_numpy(w3), torch.from_numpy(b), 2, 1, 1, groups)
        agree(F.conv(x, w3, b, 2, 1, 1, groups), theirs, dtype)
