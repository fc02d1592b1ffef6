"""convcalc against PyTorch itself: accepts exactly what torch accepts, with the
same output shape and parameter count, and MACs equal to half of what
torch's own FlopCounterMode counts (it counts 2 per multiply-accumulate,
bias excluded)."""

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import AvgPool, ConvcalcError, ConvTranspose, MaxPool, parse_layer
from convcalc.engine.layers import Conv

pytestmark = pytest.mark.needs_torch  # every test here checks against torch

try:
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # (the tests skip)
    pass
else:
    torch.set_num_threads(1)

warnings.filterwarnings("ignore")
MAX_SPATIAL = {1: 14, 2: 10, 3: 6}


def run_torch(build, shape, **forward):
    """(output shape without batch, params, counted flops), or None if torch refuses."""
    try:
        module = build()
        x = torch.zeros(1, *shape)
        with FlopCounterMode(display=False) as counter:
            y = module(x, **forward)
    except (RuntimeError, ValueError, TypeError, IndexError):
        return None
    params = sum(p.numel() for p in module.parameters())
    return tuple(y.shape[1:]), params, counter.get_total_flops(), module


def run_convcalc(layer, shape):
    try:
        return layer.infer(tuple(shape))
    except ConvcalcError:
        return None


def per_axis(draw, rank, values):
    if draw(st.booleans()):
        return draw(values)
    return tuple(draw(values) for _ in range(rank))


def agree(expected, figures, shape, torch_repr_roundtrip=True):
    assert (expected is None) == (figures is None), f"torch {'refused' if expected is None else 'accepted'}"
    if expected is None:
        return
    out_shape, params, flops, module = expected
    input_shape = shape
    assert figures.output_shape == out_shape
    assert figures.params == params
    assert 2 * figures.macs == flops
    if torch_repr_roundtrip:
        # print(model)'s text for the module reads back to the same layer
        assert parse_layer(repr(module)).infer(input_shape).output_shape == out_shape


def draw_channels(draw):
    """in_channels, groups (often dividing both counts, sometimes not) and out_channels."""
    cin = draw(st.integers(1, 6))
    groups = draw(st.sampled_from([1, 1, 2, 3, cin]))
    cout = draw(st.integers(1, 6)) * (groups if draw(st.booleans()) else 1)
    return cin, groups, cout


@st.composite
def conv_case(draw):
    rank = draw(st.integers(1, 3))
    cin, groups, cout = draw_channels(draw)
    sizes = tuple(draw(st.integers(1, MAX_SPATIAL[rank])) for _ in range(rank))
    kernel = per_axis(draw, rank, st.integers(1, 5))
    stride = per_axis(draw, rank, st.integers(1, 3))
    dilation = per_axis(draw, rank, st.integers(1, 3))
    padding = draw(st.one_of(st.sampled_from(["same", "valid"]), st.integers(0, 3),
                             st.tuples(*[st.integers(0, 3)] * rank)))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    bias = draw(st.booleans())
    return rank, cin, cout, groups, sizes, kernel, stride, dilation, padding, mode, bias


@settings(max_examples=1500)
@given(conv_case())
def test_conv_matches_torch(case):
    rank, cin, cout, groups, sizes, kernel, stride, dilation, padding, mode, bias = case
    shape = (cin, *sizes)
    cls = getattr(nn, f"Conv{rank}d")
    expected = run_torch(lambda: cls(cin, cout, kernel, stride, padding, dilation, groups, bias, mode), shape)
    layer = Conv(cout, kernel, stride, padding, dilation, groups, bias, mode, in_channels=cin, rank=rank)
    agree(expected, run_convcalc(layer, shape), shape)


@st.composite
def transposed_case(draw):
    rank = draw(st.integers(1, 3))
    cin, groups, cout = draw_channels(draw)
    sizes = tuple(draw(st.integers(1, MAX_SPATIAL[rank] - 2)) for _ in range(rank))
    kernel = per_axis(draw, rank, st.integers(1, 5))
    stride = per_axis(draw, rank, st.integers(1, 3))
    dilation = per_axis(draw, rank, st.integers(1, 3))
    padding = per_axis(draw, rank, st.integers(0, 4))
    output_padding = per_axis(draw, rank, st.integers(0, 3))
    bias = draw(st.booleans())
    output_size = None
    if draw(st.integers(0, 3)) == 0:
        output_size = tuple(draw(st.integers(1, 3 * MAX_SPATIAL[rank])) for _ in range(rank))
    return rank, cin, cout, groups, sizes, kernel, stride, dilation, padding, output_padding, bias, output_size


@settings(max_examples=1200)
@given(transposed_case())
def test_transposed_matches_torch(case):
    rank, cin, cout, groups, sizes, kernel, stride, dilation, padding, output_padding, bias, output_size = case
    shape = (cin, *sizes)
    cls = getattr(nn, f"ConvTranspose{rank}d")
    forward = {"output_size": list(output_size)} if output_size else {}
    expected = run_torch(
        lambda: cls(cin, cout, kernel, stride, padding, output_padding, groups, bias, dilation), shape, **forward
    )
    layer = ConvTranspose(cout, kernel, stride, padding, output_padding, groups, bias, dilation,
                          output_size=output_size, in_channels=cin, rank=rank)
    figures = run_convcalc(layer, shape)
    if expected is not None and 0 in expected[0]:
        # Some backends (oneDNN for grouped layers, the 3d path) return an empty
        # tensor where PyTorch's reference path refuses an output size of 0;
        # convcalc refuses it (docs/conventions.md, "Differences from PyTorch").
        assert figures is None
        return
    # output_size is an argument of forward, which the printed module does not carry
    agree(expected, figures, shape, torch_repr_roundtrip=output_size is None)


@st.composite
def pool_case(draw):
    rank = draw(st.integers(1, 3))
    channels = draw(st.integers(1, 3))
    sizes = tuple(draw(st.integers(1, MAX_SPATIAL[rank])) for _ in range(rank))
    kernel = per_axis(draw, rank, st.integers(1, 5))
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank)))
    padding = per_axis(draw, rank, st.integers(0, 3))
    dilation = per_axis(draw, rank, st.integers(1, 3))
    ceil_mode = draw(st.booleans())
    kind = draw(st.sampled_from(["max", "avg"]))
    return rank, channels, sizes, kernel, stride, padding, dilation, ceil_mode, kind


@settings(max_examples=1500)
@given(pool_case())
def test_pooling_matches_torch(case):
    rank, channels, sizes, kernel, stride, padding, dilation, ceil_mode, kind = case
    shape = (channels, *sizes)
    if kind == "max":
        cls = getattr(nn, f"MaxPool{rank}d")
        build = lambda: cls(kernel, stride, padding, dilation, ceil_mode=ceil_mode)  # noqa: E731
        layer = MaxPool(kernel, stride, padding, dilation, ceil_mode=ceil_mode, rank=rank)
    else:
        cls = getattr(nn, f"AvgPool{rank}d")
        build = lambda: cls(kernel, stride, padding, ceil_mode=ceil_mode)  # noqa: E731
        layer = AvgPool(kernel, stride, padding, ceil_mode=ceil_mode, rank=rank)
    expected = run_torch(build, shape)
    figures = run_convcalc(layer, shape)
    assert (expected is None) == (figures is None), f"torch {'refused' if expected is None else 'accepted'}"
    if expected is not None:
        assert figures.output_shape == expected[0]
        if kind == "max" or not ceil_mode:  # AvgPool's printed form omits ceil_mode
            again = parse_layer(repr(expected[3]))
            assert again.infer(shape).output_shape == expected[0]


@settings(max_examples=300)
@given(
    rank=st.integers(1, 3),
    sizes=st.lists(st.integers(1, 9), min_size=3, max_size=3),
    out=st.lists(st.one_of(st.none(), st.integers(1, 12)), min_size=3, max_size=3),
    kind=st.sampled_from(["Avg", "Max"]),
)
def test_adaptive_pooling_matches_torch(rank, sizes, out, kind):
    shape = (2, *sizes[:rank])
    output_size = tuple(out[:rank])
    module = getattr(nn, f"Adaptive{kind}Pool{rank}d")(output_size)
    expected = run_torch(lambda: module, shape)
    figures = run_convcalc(parse_layer(repr(module)), shape)
    assert (expected is None) == (figures is None), f"torch {'refused' if expected is None else 'accepted'}"
    if expected is not None:
        assert figures.output_shape == expected[0]


def test_mixed_network_params_match_torch():
    from convcalc import analyse_tokens

    tokens = ["conv:16,k=3,s=2,p=1,bias=false", "bn", "relu6", "conv:16,k=3,p=1,g=16", "bn", "hardswish",
              "conv:32,k=1", "bn", "silu", "maxpool:k=3,s=2,p=1", "gap", "flatten", "dropout:0.2", "linear:10"]
    ours = analyse_tokens("3x32x32", *tokens)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.Hardswish(),
        nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.SiLU(), nn.MaxPool2d(3, 2, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 10),
    ).eval()
    x = torch.zeros(2, 3, 32, 32)
    shapes = []
    for module in model:
        x = module(x)
        shapes.append(tuple(x.shape[1:]))
    assert [r.output_shape for r in ours.layers] == shapes
    assert ours.totals.params == sum(p.numel() for p in model.parameters())
    assert [r.params for r in ours.layers] == [sum(p.numel() for p in m.parameters()) for m in model]
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32))
    # torch counts conv and linear only (2 per MAC): the same as convcalc's MACs
    assert 2 * ours.totals.macs == counter.get_total_flops()
    # and the printed model reads back, layer by layer, to the same shapes
    again = [parse_layer(repr(m)) for m in model]
    from convcalc import Network, analyse

    assert [r.output_shape for r in analyse(Network((3, 32, 32), tuple(again))).layers] == shapes


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.ZeroPad2d((1, 2, 0, 3)), (2, 5, 5)),
        (lambda: nn.ZeroPad2d((-1, -1, 0, 0)), (1, 2, 2)),
        (lambda: nn.ZeroPad1d(2), (3, 4)),
        (lambda: nn.ZeroPad3d((1, 0, 0, 1, 2, 2)), (1, 3, 3, 3)),
        (lambda: nn.Upsample(scale_factor=2), (4, 3, 5)),
        (lambda: nn.Upsample(scale_factor=3, mode="nearest"), (4, 3)),
        (lambda: nn.Flatten(2), (3, 4, 5)),
        (lambda: nn.Flatten(1, 2), (3, 4, 5)),
        (lambda: nn.Linear(5, 7), (3, 5)),
        (lambda: nn.BatchNorm1d(6), (6,)),
        (lambda: nn.BatchNorm1d(6, affine=False), (6, 9)),
        (lambda: nn.BatchNorm2d(6, bias=False), (6, 3, 3)),
        (lambda: nn.LeakyReLU(0.2), (3, 4)),
        (lambda: nn.GELU(approximate="tanh"), (3, 4)),
    ],
)
def test_other_layers_match_torch(make, shape):
    module = make()  # built here, not at collection: the module imports without torch
    expected = tuple(module.eval()(torch.zeros(1, *shape)).shape[1:])
    figures = parse_layer(repr(module)).infer(shape)
    assert figures.output_shape == expected
    assert figures.params == sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.ZeroPad2d((-2, -1, 0, 0)), (1, 2, 2)),
        (lambda: nn.BatchNorm2d(3), (3, 5)),
        (lambda: nn.Linear(6, 7), (3, 5)),
        (lambda: nn.Conv2d(3, 4, 3), (4, 8, 8)),
        (lambda: nn.Conv2d(3, 4, 3), (3, 8)),
        (lambda: nn.AdaptiveAvgPool1d(3), (2, 0)),
    ],
)
def test_other_layers_refused_like_torch(make, shape):
    module = make()
    with pytest.raises((RuntimeError, ValueError)):
        module(torch.zeros(1, *shape))
    with pytest.raises(ConvcalcError):
        parse_layer(repr(module)).infer(shape)
