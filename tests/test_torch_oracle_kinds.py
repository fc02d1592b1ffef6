"""The layer kinds real networks need, against PyTorch: convcalc accepts exactly what torch
accepts, with the same output shape and parameters; print(model)'s text reads back; the
NumPy backend computes the same values; interpolation reads exactly the inputs torch reads."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convcalc.functional as F
from convcalc import ConvcalcError, parse_layer
from convcalc.engine import layers as L
from convcalc.engine.errors import BatchAxisError
from convcalc.engine.windows import Resample

pytestmark = pytest.mark.needs_torch  # every test here checks against torch

try:
    import torch
    from torch import nn
    from torch.nn import functional as TF
except ImportError:  # (the tests skip)
    pass
else:
    torch.set_num_threads(1)

warnings.filterwarnings("ignore")


def torch_result(function, shape, module=None):
    """(output shape without batch, params), or None when torch refuses."""
    try:
        with torch.no_grad():
            y = function(torch.zeros(2, *shape))
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError):
        return None
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    return tuple(y.shape[1:]), params


def convcalc_result(layer, shape):
    try:
        figures = layer.merge((shape,)) if isinstance(layer, L.Merge) else layer.infer(shape)
    except BatchAxisError:
        return "batch"  # an operation on the batch axis, which convcalc keeps apart: refused on purpose
    except ConvcalcError:
        return None
    return figures.output_shape, figures.params


def agree(expected, got, context):
    """convcalc accepts what torch accepts, with the same figures; it may refuse only batch-axis operations."""
    if got == "batch":
        return
    assert (expected is None) == (got is None), (context, expected, got)
    if expected is not None:
        assert got == expected, context


def shapes(draw, low=1, high=3, size=6):
    rank = draw(st.integers(low, high))
    return tuple(draw(st.integers(1, size)) for _ in range(rank))


@st.composite
def module_case(draw):
    """A torch module with its convcalc layer (read from the module's own repr, as print(model) shows it)."""
    shape = shapes(draw, 1, 4)
    c = shape[0]
    kind = draw(st.sampled_from(["layernorm", "groupnorm", "instancenorm", "lrn", "prelu", "softmax", "logsoftmax",
                                 "hardtanh", "elu", "softplus", "act", "shuffle", "pixelshuffle", "pixelunshuffle",
                                 "upsample", "pad", "identity", "flatten_unflatten"]))
    n = draw(st.integers(1, 4))
    if kind == "layernorm":
        k = draw(st.integers(1, len(shape)))
        normalized = shape[-k:] if draw(st.booleans()) else tuple(draw(st.integers(1, 6)) for _ in range(k))
        module = nn.LayerNorm(normalized, elementwise_affine=draw(st.booleans()), bias=draw(st.booleans()))
    elif kind == "groupnorm":
        groups = draw(st.sampled_from([1, 2, 3, c]))
        channels = c if draw(st.booleans()) else groups * n
        if channels % groups:  # the constructor refuses it; so does convcalc
            with pytest.raises(ConvcalcError):
                L.GroupNorm(groups, channels).infer((channels, 4))
            channels = groups * n
        module = nn.GroupNorm(groups, channels, affine=draw(st.booleans()))
    elif kind == "instancenorm":
        rank = draw(st.integers(1, 3))
        cls = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[rank]
        module = cls(c if draw(st.booleans()) else n, affine=draw(st.booleans()),
                     track_running_stats=draw(st.booleans()))
    elif kind == "lrn":
        module = nn.LocalResponseNorm(draw(st.integers(1, 5)))
    elif kind == "prelu":
        module = nn.PReLU(draw(st.sampled_from([1, c, n])))
    elif kind in ("softmax", "logsoftmax"):
        cls = nn.Softmax if kind == "softmax" else nn.LogSoftmax
        module = cls(dim=draw(st.integers(-len(shape) - 1, len(shape))))
    elif kind == "hardtanh":
        module = nn.Hardtanh(draw(st.sampled_from([-1.0, 0.0])), draw(st.sampled_from([1.0, 6.0])))
    elif kind == "elu":
        module = nn.ELU(draw(st.sampled_from([0.5, 1.0])))
    elif kind == "softplus":
        module = nn.Softplus(draw(st.sampled_from([1.0, 2.0])), draw(st.sampled_from([10.0, 20.0])))
    elif kind == "act":
        module = draw(st.sampled_from([nn.Hardsigmoid, nn.Mish, nn.SELU, nn.Softsign, nn.Hardswish, nn.SiLU]))()
    elif kind == "shuffle":
        module = nn.ChannelShuffle(draw(st.integers(1, 4)))
    elif kind == "pixelshuffle":
        module = nn.PixelShuffle(draw(st.integers(1, 3)))
    elif kind == "pixelunshuffle":
        module = nn.PixelUnshuffle(draw(st.integers(1, 3)))
    elif kind == "upsample":
        mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear",
                                     "area"]))
        align = draw(st.sampled_from([None, True, False])) if mode in ("linear", "bilinear", "bicubic",
                                                                       "trilinear") else None
        if draw(st.booleans()):
            module = nn.Upsample(size=draw(st.integers(1, 9)), mode=mode, align_corners=align)
        else:
            module = nn.Upsample(scale_factor=draw(st.sampled_from([0.5, 1.5, 2.0, 3.0, 2.5])), mode=mode,
                                 align_corners=align)
    elif kind == "pad":
        rank = draw(st.integers(1, 3))
        cls = draw(st.sampled_from(["ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad", "ZeroPad"]))
        padding = tuple(draw(st.integers(-1 if cls in ("ConstantPad", "ZeroPad") else 0, 3)) for _ in range(2 * rank))
        module = getattr(nn, f"{cls}{rank}d")(padding, *([0.5] if cls == "ConstantPad" else []))
    elif kind == "identity":
        module = nn.Identity()
    else:
        module = nn.Flatten(draw(st.integers(0, 2)), draw(st.integers(-1, 3)))
    return module.eval(), shape  # inference, as convcalc models it


@settings(max_examples=400)
@given(module_case())
def test_module_kinds_match_pytorch(case):
    module, shape = case
    expected = torch_result(module, shape, module)
    layer = parse_layer(repr(module))  # print(model)'s text, read back
    agree(expected, convcalc_result(layer, shape), (repr(module), shape))


@pytest.mark.parametrize("mode", ["area", "nearest", "bilinear"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 3), (1, 3, 3)])
def test_an_upsampling_to_nothing_is_what_pytorch_makes_of_it(mode, shape):
    """A scale of 0.5 on a size of 1: area (an adaptive average pool) makes an empty axis, the
    interpolating modes refuse it."""
    from torch import nn

    module = nn.Upsample(scale_factor=0.5, mode=mode)
    agree(torch_result(module, shape, module), convcalc_result(parse_layer(repr(module)), shape), (mode, shape))


@st.composite
def functional_case(draw):
    """A functional call (view, permute, slicing, reductions, arithmetic) with its convcalc layer."""
    shape = shapes(draw, 1, 4)
    ndim = len(shape) + 1
    dim = draw(st.integers(-ndim, ndim - 1))
    kind = draw(st.sampled_from(["permute", "transpose", "reshape", "squeeze", "unsqueeze", "slice", "narrow",
                                 "chunk", "split", "sections", "select", "mean", "sum", "mul", "add_param", "cat"]))
    if kind == "permute":
        order = [0] + draw(st.permutations(range(1, ndim)))
        if draw(st.integers(0, 5)) == 0:
            order = draw(st.permutations(range(ndim)))
        return (lambda x: x.permute(*order)), L.Permute(tuple(order)), shape
    if kind == "transpose":
        other = draw(st.integers(-ndim, ndim - 1))
        return (lambda x: x.transpose(dim, other)), L.Transpose(dim, other), shape
    if kind == "reshape":
        total = math.prod(shape)
        target = draw(st.sampled_from([(total,), (-1,), (shape[0], -1), shape[::-1], (total, 1), (2, -1)]))
        return (lambda x: x.reshape(x.shape[0], *target)), L.Reshape(tuple(target)), shape
    if kind == "squeeze":
        which = draw(st.sampled_from([None, dim]))
        return ((lambda x: x.squeeze(which)) if which is not None else (lambda x: x.squeeze())), L.Squeeze(which), shape
    if kind == "unsqueeze":
        at = draw(st.integers(-ndim - 1, ndim))
        return (lambda x: x.unsqueeze(at)), L.Unsqueeze(at), shape
    if kind == "slice":
        start = draw(st.one_of(st.none(), st.integers(-7, 7)))
        end = draw(st.one_of(st.none(), st.integers(-7, 7)))
        step = draw(st.integers(1, 3))
        def sliced(x):
            index = [slice(None)] * x.ndim
            index[dim] = slice(start, end, step)
            return x[tuple(index)]
        return sliced, L.Slice(dim, start, end, step), shape
    if kind == "narrow":
        start, length = draw(st.integers(-7, 7)), draw(st.integers(-1, 7))
        return (lambda x: x.narrow(dim, start, length)), L.Narrow(dim, start, length), shape
    if kind == "chunk":
        chunks, index = draw(st.integers(0, 5)), draw(st.integers(0, 4))
        return (lambda x: x.chunk(chunks, dim)[index]), L.Chunk(chunks, dim, index), shape
    if kind == "split":
        size, index = draw(st.integers(1, 4)), draw(st.integers(0, 4))
        return (lambda x: x.split(size, dim)[index]), L.Split(size, dim, index), shape
    if kind == "sections":
        sections = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
        index = draw(st.integers(0, 2))
        return (lambda x: x.split(list(sections), dim)[index]), L.Split(sections, dim, index), shape
    if kind == "select":
        index = draw(st.integers(-7, 7))
        return (lambda x: x.select(dim, index)), L.Select(dim, index), shape
    if kind in ("mean", "sum"):
        dims = tuple(sorted(set(draw(st.lists(st.integers(-ndim, ndim - 1), min_size=1, max_size=2)))))
        keep = draw(st.booleans())
        function = torch.mean if kind == "mean" else torch.sum
        return (lambda x: function(x, dims, keepdim=keep)), L.Reduce(kind, dims, keep), shape
    if kind == "mul":
        other = tuple(draw(st.sampled_from([1, n])) for n in shape)
        return (lambda x: x * torch.zeros(2, *other)), L.Mul(), (shape, other)
    if kind == "add_param":
        other = tuple(draw(st.sampled_from([1, n, 2])) for n in shape[draw(st.integers(0, len(shape) - 1)):])
        return (lambda x: x + torch.zeros(*other)), L.Add(weight_shape=other), shape
    other = tuple(n if i != dim % ndim - 1 else draw(st.integers(1, 4)) for i, n in enumerate(shape))
    return (lambda x: torch.cat([x, torch.zeros(2, *other)], dim)), L.Concat(dim), (shape, other)


@settings(max_examples=600)
@given(functional_case())
def test_functional_kinds_match_pytorch(case):
    function, layer, shape = case
    if isinstance(shape[0], tuple):  # two branches
        first, second = shape
        try:
            with torch.no_grad():
                expected = tuple(function(torch.zeros(2, *first)).shape[1:])
        except (RuntimeError, ValueError, IndexError):
            expected = None
        try:
            got = layer.merge((first, second)).output_shape
        except ConvcalcError:
            got = None
        if isinstance(layer, L.Concat) and (layer.dim % (len(first) + 1)) == 0:
            expected = None  # concatenating along the batch changes the batch: convcalc refuses it
        assert got == expected, (layer, shape)
        return
    expected = torch_result(function, shape)
    got = convcalc_result(layer, shape)
    if isinstance(layer, L.Add) and expected is not None and len(layer.weight_shape) > len(shape):
        return  # a tensor operand with more axes than one sample: torch broadcasts it against the batch
    agree(None if expected is None else expected[0], got if got in (None, "batch") else got[0], (layer, shape))


@st.composite
def resample_case(draw):
    n = draw(st.integers(1, 12))
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bicubic"]))
    align = draw(st.booleans()) if mode in ("linear", "bicubic") else None
    if draw(st.booleans()):
        return n, mode, align, dict(size=draw(st.integers(1, 30)))
    scale = draw(st.sampled_from([0.3, 0.5, 0.7, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 1 / 3, 4.1]))
    return n, mode, align, dict(scale_factor=scale, recompute_scale_factor=draw(st.booleans()))


@settings(max_examples=300)
@given(resample_case())
def test_interpolation_reads_exactly_the_inputs_torch_reads(case):
    n, mode, align, how = case
    mode_1d = "linear" if mode == "linear" else mode
    rank = 2 if mode == "bicubic" else 1
    x = torch.zeros(n, 1, n, *([1] * (rank - 1)))
    for i in range(n):
        x[i, 0, i] = float("nan")
    try:
        y = TF.interpolate(x, mode=mode_1d, align_corners=align, **how)
    except (RuntimeError, ValueError):
        return
    depends = torch.isnan(y).reshape(n, y.shape[2], -1).any(dim=2)
    out = y.shape[2]
    scale = how.get("scale_factor") if not how.get("recompute_scale_factor") else None
    window = Resample(n, out, mode, bool(align), scale)
    for o in range(out):
        seen = torch.nonzero(depends[:, o]).flatten().tolist()
        reads = window.reads(o)
        assert (min(seen), max(seen)) == (min(reads), max(reads)), (o, seen, reads)


@st.composite
def numeric_case(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)) * 2, draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    kind = draw(st.sampled_from(["layer_norm", "group_norm", "instance_norm", "lrn", "interpolate", "pad",
                                 "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "softmax", "prelu", "acts"]))
    return kind, shape, draw(st.integers(0, 2**31 - 1)), draw(st.data())


@settings(max_examples=300)
@given(numeric_case())
def test_the_backend_computes_what_torch_computes(case):
    kind, shape, seed, data = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float64)
    t = torch.from_numpy(x)
    c = shape[1]
    if kind == "layer_norm":
        w, b = rng.standard_normal(shape[-2:]), rng.standard_normal(shape[-2:])
        ours, theirs = F.layer_norm(x, shape[-2:], w, b), TF.layer_norm(t, shape[-2:], torch.from_numpy(w),
                                                                        torch.from_numpy(b))
    elif kind == "group_norm":
        groups = data.draw(st.sampled_from([1, 2, c]))
        w, b = rng.standard_normal(c), rng.standard_normal(c)
        ours, theirs = F.group_norm(x, groups, w, b), TF.group_norm(t, groups, torch.from_numpy(w), torch.from_numpy(b))
    elif kind == "instance_norm":
        ours, theirs = F.instance_norm(x), TF.instance_norm(t)
    elif kind == "lrn":
        size = data.draw(st.integers(1, 5))
        ours, theirs = F.local_response_norm(x, size, 0.1, 0.75, 2.0), TF.local_response_norm(t, size, 0.1, 0.75, 2.0)
    elif kind == "interpolate":
        mode = data.draw(st.sampled_from(["nearest", "nearest-exact", "bilinear", "bicubic", "area"]))
        align = data.draw(st.booleans()) if mode in ("bilinear", "bicubic") else None
        how = data.draw(st.sampled_from([dict(size=(7, 3)), dict(scale_factor=1.5), dict(scale_factor=(2.0, 0.5)),
                                         dict(scale_factor=2.5, recompute_scale_factor=True)]))
        if mode == "area" and "scale_factor" in how:
            how = dict(size=(3, 4))
        ours = F.interpolate(x, mode=mode, align_corners=align, **how)
        theirs = TF.interpolate(t, mode=mode, align_corners=align, **how)
    elif kind == "pad":
        mode = data.draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
        amounts = (data.draw(st.integers(0, shape[3] - 1)), data.draw(st.integers(0, shape[3] - 1)),
                   data.draw(st.integers(0, shape[2] - 1)), data.draw(st.integers(0, shape[2] - 1)))
        ours, theirs = F.pad_mode(x, amounts, mode, 0.5), TF.pad(t, amounts, mode, 0.5 if mode == "constant" else None)
    elif kind == "pixel_shuffle":
        x = rng.standard_normal((1, 8, 3, 2))
        ours, theirs = F.pixel_shuffle(x, 2), TF.pixel_shuffle(torch.from_numpy(x), 2)
    elif kind == "pixel_unshuffle":
        x = rng.standard_normal((1, 2, 4, 6))
        ours, theirs = F.pixel_unshuffle(x, 2), TF.pixel_unshuffle(torch.from_numpy(x), 2)
    elif kind == "channel_shuffle":
        ours, theirs = F.channel_shuffle(x, 2), TF.channel_shuffle(t, 2)
    elif kind == "softmax":
        dim = data.draw(st.integers(1, 3))
        ours, theirs = F.log_softmax(x, dim), TF.log_softmax(t, dim)
    elif kind == "prelu":
        w = rng.uniform(0, 1, c)
        ours, theirs = F.prelu(x, w), TF.prelu(t, torch.from_numpy(w))
    else:
        name = data.draw(st.sampled_from(["hardsigmoid", "mish", "elu", "selu", "softplus", "softsign", "hardtanh"]))
        x = x * 10
        t = torch.from_numpy(x)
        ours, theirs = getattr(F, name)(x), getattr(TF, name)(t)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-9)
