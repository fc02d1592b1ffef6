"""Each layer kind's random parameters, drawn for an input like the one it will get, and the call
that runs it (so repeated timings reuse the same weights)."""

from __future__ import annotations

from math import prod, sqrt

import numpy as np

from .. import functional as F
from ..engine import layers as L
from ..engine.errors import SpecError
from ..engine.layers import Layer
from ..engine.layers.base import per_axis


def _uniform(rng, shape, fan_in, dtype):
    # drawn in the target dtype: no float64 staging copy (the memory check counts what is really made)
    bound = 1 / sqrt(max(fan_in, 1))
    values = rng.random(shape, dtype=np.dtype(dtype))
    values *= 2 * bound
    values -= bound
    return values


# Each preparer draws a layer's parameters for an input like ``x`` and returns
# the call that runs it, so repeated timings use the same weights.

def _conv(layer: L.Conv, x, rng):
    kernel = per_axis(layer.kernel_size, x.ndim - 2, "kernel_size")
    fan_in = x.shape[1] // layer.groups * prod(kernel)
    w = _uniform(rng, (layer.out_channels, x.shape[1] // layer.groups, *kernel), fan_in, x.dtype)
    b = _uniform(rng, (layer.out_channels,), fan_in, x.dtype) if layer.bias else None
    return lambda x: F.conv(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups, layer.padding_mode)


def _conv_transpose(layer: L.ConvTranspose, x, rng):
    kernel = per_axis(layer.kernel_size, x.ndim - 2, "kernel_size")
    per_group = layer.out_channels // layer.groups
    fan_in = per_group * prod(kernel)  # PyTorch's fan_in for a transposed weight (dim 1)
    w = _uniform(rng, (x.shape[1], per_group, *kernel), fan_in, x.dtype)
    b = _uniform(rng, (layer.out_channels,), fan_in, x.dtype) if layer.bias else None
    output_padding = layer.resolved_output_padding(x.shape[2:])
    return lambda x: F.conv_transpose(x, w, b, layer.stride, layer.padding, output_padding, layer.groups,
                                      layer.dilation)


def _batch_norm(layer: L.BatchNorm, x, rng):
    c = x.shape[1]
    mean = rng.uniform(-0.1, 0.1, c).astype(x.dtype)
    var = rng.uniform(0.5, 1.5, c).astype(x.dtype)
    weight = rng.uniform(0.5, 1.5, c).astype(x.dtype) if layer.affine else None
    bias = rng.uniform(-0.1, 0.1, c).astype(x.dtype) if layer.affine and layer.bias else None
    return lambda x: F.batch_norm(x, mean, var, weight, bias, layer.eps)


def _linear(layer: L.Linear, x, rng):
    fan_in = x.shape[-1]
    w = _uniform(rng, (layer.out_features, fan_in), fan_in, x.dtype)
    b = _uniform(rng, (layer.out_features,), fan_in, x.dtype) if layer.bias else None
    return lambda x: F.linear(x, w, b)


def _activation(layer: L.Activation, x, _rng):
    if layer.function == "LeakyReLU":
        return lambda x: F.leaky_relu(x, layer.negative_slope)
    if layer.function == "GELU":
        return lambda x: F.gelu(x, layer.approximate)
    arguments = {"Hardtanh": ("min_val", "max_val"), "ELU": ("alpha",), "Softplus": ("beta", "threshold")}
    values = [getattr(layer, name) for name in arguments.get(layer.function, ())]
    return lambda x: F.ACTIVATIONS[layer.function](x, *values)


def _zero_pad(layer: L.ZeroPad, x, _rng):
    amounts = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,) * (2 * (x.ndim - 2))
    return lambda x: F.pad(x, amounts)


def _affine_parameters(rng, count, dtype, weight=True, bias=True):
    w = rng.uniform(0.5, 1.5, count).astype(dtype) if weight else None
    b = rng.uniform(-0.1, 0.1, count).astype(dtype) if weight and bias else None
    return w, b


def _layer_norm(layer: L.LayerNorm, x, rng):
    shape = (layer.normalized_shape,) if isinstance(layer.normalized_shape, int) else tuple(layer.normalized_shape)
    w, b = _affine_parameters(rng, prod(shape), x.dtype, layer.elementwise_affine, layer.bias)
    w = None if w is None else w.reshape(shape)
    b = None if b is None else b.reshape(shape)
    return lambda x: F.layer_norm(x, shape, w, b, layer.eps)


def _layer_norm2d(layer: L.LayerNorm2d, x, rng):
    w, b = _affine_parameters(rng, x.shape[1], x.dtype, layer.elementwise_affine, layer.bias)
    return lambda x: F.layer_norm2d(x, w, b, layer.eps)


def _group_norm(layer: L.GroupNorm, x, rng):
    w, b = _affine_parameters(rng, x.shape[1], x.dtype, layer.affine, layer.bias)
    return lambda x: F.group_norm(x, layer.num_groups, w, b, layer.eps)


def _instance_norm(layer: L.InstanceNorm, x, rng):
    w, b = _affine_parameters(rng, x.shape[1], x.dtype, layer.affine, layer.bias)
    if layer.track_running_stats:  # inference with running statistics: a per-channel scale and shift
        mean, var = rng.uniform(-0.1, 0.1, x.shape[1]).astype(x.dtype), rng.uniform(0.5, 1.5, x.shape[1]).astype(x.dtype)
        return lambda x: F.batch_norm(x, mean, var, w, b, layer.eps)
    return lambda x: F.instance_norm(x, w, b, layer.eps)


def _prelu(layer: L.PReLU, x, rng):
    weight = np.full(layer.num_parameters, layer.init, dtype=x.dtype)
    return lambda x: F.prelu(x, weight)


def _arithmetic(layer: L.Arithmetic, x, rng):
    operation = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[layer.operation]
    extras = [rng.uniform(0.5, 1.5, shape).astype(x.dtype) for shape in (layer.weight_shape, layer.constant_shape)
              if shape is not None]
    if layer.scalar is not None:
        extras.append(x.dtype.type(layer.scalar))

    def run(*xs):
        y = xs[0]
        for other in (*xs[1:], *extras):
            y = operation(y, other)
        return y.astype(x.dtype, copy=False)

    return run


def _slice(layer, x, _rng):
    axis, start, length, step = layer.locate(x.shape[1:])
    index = [slice(None)] * x.ndim
    index[axis + 1] = slice(start, start + (length - 1) * step + 1 if length else start, step)
    return lambda x: x[tuple(index)]  # a view, as in PyTorch


def _reshaped(layer, x, _rng):
    """Layers that only move data. Permutations and selections are views, as
    in PyTorch (a later layer that needs contiguous data copies it); a reshape
    is a view of contiguous data and a copy of any other."""
    figures = layer.infer(x.shape[1:])
    if isinstance(layer, (L.Permute, L.Transpose)):
        return lambda x: np.transpose(x, (0, *(d + 1 for d in figures.dims)))
    if isinstance(layer, L.Select):
        axis = next(a for a in range(x.ndim - 1) if a not in figures.dims)
        index = (slice(None),) * (axis + 1) + (layer.index % x.shape[axis + 1],)
        return lambda x: x[index]
    return lambda x: x.reshape((x.shape[0], *figures.output_shape))


def _reduce(layer: L.Reduce, x, _rng):
    dims = (layer.dim,) if isinstance(layer.dim, int) else tuple(layer.dim)
    axes = tuple(d % x.ndim for d in dims)
    function = np.mean if layer.function == "mean" else np.sum
    return lambda x: function(x, axis=axes, keepdims=layer.keepdim).astype(x.dtype, copy=False)


def _pad(layer: L.Pad, x, _rng):
    amounts = layer.padding if isinstance(layer.padding, tuple) else (layer.padding,) * (2 * (layer.rank or x.ndim - 2))
    return lambda x: F.pad_mode(x, amounts, layer.mode, layer.value)


def _opaque(layer: L.Opaque, _x, _rng):
    raise SpecError(f"convcalc cannot execute {layer.op}: it knows its shapes from a trace, not its computation",
                    hint="run this model with PyTorch; convcalc run executes the layers it can cost", field="*")


def _softmax(layer: L.Softmax, x, _rng):
    dim = layer.resolved_dim(x.shape[1:])
    function = F.log_softmax if layer.log else F.softmax
    return lambda x: function(x, dim)


def _identity(*_):
    return lambda x: x


PREPARERS = {
    L.Conv: _conv,
    L.ConvTranspose: _conv_transpose,
    L.MaxPool: lambda l, *_: lambda x: F.max_pool(x, l.kernel_size, l.stride, l.padding, l.dilation, l.ceil_mode),
    L.AvgPool: lambda l, *_: lambda x: F.avg_pool(x, l.kernel_size, l.stride, l.padding, l.ceil_mode,
                                                  l.count_include_pad, l.divisor_override),
    L.AdaptiveAvgPool: lambda l, *_: lambda x: F.adaptive_avg_pool(x, l.output_size),
    L.AdaptiveMaxPool: lambda l, *_: lambda x: F.adaptive_max_pool(x, l.output_size),
    L.BatchNorm: _batch_norm,
    L.LayerNorm: _layer_norm,
    L.LayerNorm2d: _layer_norm2d,
    L.GroupNorm: _group_norm,
    L.InstanceNorm: _instance_norm,
    L.LocalResponseNorm: lambda l, *_: lambda x: F.local_response_norm(x, l.size, l.alpha, l.beta, l.k),
    L.Activation: _activation,
    L.PReLU: _prelu,
    L.Softmax: _softmax,
    L.Dropout: _identity,  # the identity at inference
    L.StochasticDepth: _identity,
    L.Identity: _identity,
    L.Flatten: lambda l, *_: lambda x: F.flatten(x, l.start_dim, l.end_dim),
    L.Linear: _linear,
    L.Upsample: lambda l, *_: lambda x: F.interpolate(x, l.size, l.scale_factor, l.mode, l.align_corners,
                                                      l.recompute_scale_factor),
    L.OnnxResize: lambda l, *_: lambda x: F.onnx_resize(x, l.sizes, l.mode, l.coordinate, l.rounding, l.scales),
    L.ZeroPad: _zero_pad,
    L.Pad: _pad,
    L.Permute: _reshaped,
    L.Transpose: _reshaped,
    L.Reshape: _reshaped,
    L.Squeeze: _reshaped,
    L.Unsqueeze: _reshaped,
    L.Select: _reshaped,
    L.Slice: _slice,
    L.Narrow: _slice,
    L.Chunk: _slice,
    L.Split: _slice,
    L.Reduce: _reduce,
    L.ChannelShuffle: lambda l, *_: lambda x: F.channel_shuffle(x, l.groups),
    L.PixelShuffle: lambda l, *_: lambda x: F.pixel_shuffle(x, l.upscale_factor),
    L.PixelUnshuffle: lambda l, *_: lambda x: F.pixel_unshuffle(x, l.downscale_factor),
    L.Opaque: _opaque,
    # merges take every branch
    L.Add: _arithmetic,
    L.Sub: _arithmetic,
    L.Mul: _arithmetic,
    L.Div: _arithmetic,
    L.Concat: lambda l, *_: lambda *xs: np.concatenate(xs, axis=l.dim),
}


def prepare_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator):
    """Draw a layer's random parameters for inputs like ``x``; return the call that runs it
    (on one input, or on every branch for add and concat)."""
    return PREPARERS[type(layer)](layer, x, rng)
