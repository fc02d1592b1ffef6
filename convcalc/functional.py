"""Execute layers on NumPy arrays, mirroring ``torch.nn.functional``.

Weights use PyTorch's layouts, the batch axis comes first and the rank (1d,
2d, 3d) is taken from the input. Arguments are checked by the same layer
specs the shape engine uses, so the same configurations are refused with the
same errors. float32 stays float32 and float64 stays float64.

>>> import numpy as np
>>> x = np.array([[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]], dtype=np.float32)[None, None]
>>> k = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=np.float32)[None, None]
>>> conv(x, k)[0, 0]
array([[122., 148.],
       [126., 134.]], dtype=float32)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .backend import pooling as _pooling
from .backend.convolution import convolve
from .backend.memory import memory_limit, release_scratch, set_memory_limit
from .backend.transposed import convolve_transposed
from .engine.errors import ShapeError, SpecError
from .engine.layers import (
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    AvgPool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Flatten,
    Linear,
    MaxPool,
    Upsample,
    ZeroPad,
)
from .engine.layers.base import per_axis
from .readers.values import coerce

FLOAT_TYPES = (np.float32, np.float64)
_NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

__all__ = [
    "adaptive_avg_pool", "adaptive_max_pool", "avg_pool", "batch_norm", "conv", "conv_transpose", "flatten", "gelu",
    "hardswish", "leaky_relu", "linear", "max_pool", "memory_limit", "pad", "release_scratch", "relu", "relu6",
    "set_memory_limit",
    "sigmoid", "silu", "tanh", "upsample",
]


def _tensor(x, name: str = "input", *, spatial: bool = True) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.type not in FLOAT_TYPES:
        raise SpecError(f"{name} has dtype {x.dtype}; convcalc executes float32 or float64",
                        hint=f"convert it, e.g. {name}.astype(np.float32)", field=name)
    if spatial and not 3 <= x.ndim <= 5:
        raise ShapeError(f"{name} has {x.ndim} axes; expected a batch, channels and 1 to 3 spatial axes",
                         hint="add the batch axis first, e.g. x[None]", field=name)
    return np.ascontiguousarray(x)


def _parameter(value, like: np.ndarray, name: str, shape: tuple | None = None) -> np.ndarray | None:
    if value is None:
        return None
    value = np.asarray(value)
    if value.dtype != like.dtype:
        raise SpecError(f"{name} has dtype {value.dtype} but the input has {like.dtype}",
                        hint=f"use the same dtype, e.g. {name}.astype(np.{like.dtype})", field=name)
    if shape is not None and value.shape != shape:
        raise ShapeError(f"{name} has shape {value.shape}, expected {shape}", hint=f"give {name} of shape {shape}",
                         field=name)
    return np.ascontiguousarray(value)


def _kernel_weight(weight, x: np.ndarray, layout: str) -> np.ndarray:
    """A convolution weight: same dtype as ``x``, and two axes more than its spatial rank."""
    weight = _parameter(weight, x, "weight")
    if weight.ndim != x.ndim:
        raise ShapeError(f"weight has {weight.ndim} axes; a {x.ndim - 2}d input needs a weight with {x.ndim}",
                         hint=f"give weight as {layout}", field="weight")
    return weight


@lru_cache(maxsize=512)
def _checked(spec, shape: tuple):
    """``spec.infer(shape)``, remembered: specs are immutable, and checking the
    same layer again costs tens of microseconds per call. Refusals are not kept."""
    return spec.infer(shape)


def _int_args(**values) -> dict:
    return {name: coerce(name, value) if not isinstance(value, str) else value for name, value in values.items()}


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Convolution (cross-correlation), as ``torch.nn.functional.conv1d/2d/3d``.

    ``weight`` is (out_channels, in_channels/groups, *kernel_size); ``padding``
    may also be 'same' or 'valid', and ``padding_mode`` zeros, reflect,
    replicate or circular (as the Conv modules apply them).
    """
    x = _tensor(x)
    weight = _kernel_weight(weight, x, "(out_channels, in_channels/groups, *kernel_size)")
    rank = x.ndim - 2
    args = _int_args(stride=stride, padding=padding, dilation=dilation, groups=groups)
    spec = Conv(weight.shape[0], tuple(weight.shape[2:]), args["stride"], args["padding"], args["dilation"],
                args["groups"], bias is not None, padding_mode, rank=rank)
    if weight.shape[1] * spec.groups != x.shape[1]:
        raise ShapeError(
            f"weight {weight.shape} with groups={spec.groups} expects {weight.shape[1] * spec.groups} input channels, "
            f"but the input has {x.shape[1]}",
            hint="give weight of shape (out_channels, in_channels/groups, *kernel_size)", field="weight")
    figures = _checked(spec, x.shape[1:])
    bias = _parameter(bias, x, "bias", (weight.shape[0],))
    pads = spec.pads(x.shape[2:])
    if spec.padding_mode != "zeros" and any(b or e for b, e in pads):
        x = np.pad(x, [(0, 0), (0, 0), *pads], mode=_NUMPY_PAD_MODES[spec.padding_mode])
        pads = tuple((0, 0) for _ in pads)
    # zero padding is applied tile by tile inside the kernel
    return convolve(x, weight, bias, per_axis(spec.stride, rank, "stride"), pads,
                    per_axis(spec.dilation, rank, "dilation"), spec.groups, figures.output_shape[1:])


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose1d/2d/3d``.

    ``weight`` is (in_channels, out_channels/groups, *kernel_size).
    """
    x = _tensor(x)
    weight = _kernel_weight(weight, x, "(in_channels, out_channels/groups, *kernel_size)")
    rank = x.ndim - 2
    if weight.shape[0] != x.shape[1]:
        raise ShapeError(f"weight {weight.shape} expects {weight.shape[0]} input channels, but the input has {x.shape[1]}",
                         hint="give weight of shape (in_channels, out_channels/groups, *kernel_size)", field="weight")
    args = _int_args(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    spec = ConvTranspose(weight.shape[1] * args["groups"], tuple(weight.shape[2:]), args["stride"], args["padding"],
                         args["output_padding"], args["groups"], bias is not None, args["dilation"], rank=rank)
    figures = _checked(spec, x.shape[1:])
    bias = _parameter(bias, x, "bias", (spec.out_channels,))
    axes = {name: per_axis(getattr(spec, name), rank, name) for name in ("stride", "padding", "output_padding", "dilation")}
    return convolve_transposed(x, weight, bias, axes["stride"], axes["padding"], axes["output_padding"],
                               axes["dilation"], spec.groups, figures.output_shape[1:])


def _pool_axes(spec, rank):
    kernel = per_axis(spec.kernel_size, rank, "kernel_size")
    stride = kernel if spec.stride in (None, ()) else per_axis(spec.stride, rank, "stride")
    return kernel, stride, per_axis(spec.padding, rank, "padding")


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling, as ``torch.nn.functional.max_pool1d/2d/3d``."""
    x = _tensor(x)
    rank = x.ndim - 2
    args = _int_args(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    spec = MaxPool(args["kernel_size"], args["stride"], args["padding"], args["dilation"],
                   ceil_mode=coerce("ceil_mode", ceil_mode), rank=rank)
    figures = _checked(spec, x.shape[1:])
    kernel, stride, padding = _pool_axes(spec, rank)
    return _pooling.max_pool(x, kernel, stride, padding, per_axis(spec.dilation, rank, "dilation"),
                             figures.output_shape[1:])


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Average pooling, as ``torch.nn.functional.avg_pool1d/2d/3d``."""
    x = _tensor(x)
    rank = x.ndim - 2
    args = _int_args(kernel_size=kernel_size, stride=stride, padding=padding, divisor_override=divisor_override)
    spec = AvgPool(args["kernel_size"], args["stride"], args["padding"], coerce("ceil_mode", ceil_mode),
                   coerce("count_include_pad", count_include_pad), args["divisor_override"], rank=rank)
    figures = _checked(spec, x.shape[1:])
    kernel, stride, padding = _pool_axes(spec, rank)
    return _pooling.avg_pool(x, kernel, stride, padding, spec.ceil_mode, spec.count_include_pad,
                             spec.divisor_override, figures.output_shape[1:])


def adaptive_avg_pool(x, output_size):
    """Adaptive average pooling; None in ``output_size`` keeps that axis."""
    x = _tensor(x)
    spec = AdaptiveAvgPool(coerce("output_size", output_size), rank=x.ndim - 2)
    return _pooling.adaptive_pool(x, _checked(spec, x.shape[1:]).output_shape[1:], "mean")


def adaptive_max_pool(x, output_size):
    """Adaptive max pooling; None in ``output_size`` keeps that axis."""
    x = _tensor(x)
    spec = AdaptiveMaxPool(coerce("output_size", output_size), rank=x.ndim - 2)
    return _pooling.adaptive_pool(x, _checked(spec, x.shape[1:]).output_shape[1:], "max")


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` over the last axis, as ``torch.nn.functional.linear``."""
    x = _tensor(x, spatial=False)
    weight = _parameter(weight, x, "weight")
    if weight.ndim != 2:
        raise ShapeError(f"weight has shape {weight.shape}; expected (out_features, in_features)",
                         hint="give a 2-d weight", field="weight")
    Linear(weight.shape[0], bias is not None, in_features=weight.shape[1]).infer(x.shape[1:] or x.shape)
    bias = _parameter(bias, x, "bias", (weight.shape[0],))
    y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """Inference batch normalisation with running statistics, per channel (axis 1)."""
    x = _tensor(x, spatial=False)
    channels = x.shape[1]
    BatchNorm(channels, rank=max(x.ndim - 2, 1)).infer(x.shape[1:])
    mean = _parameter(running_mean, x, "running_mean", (channels,))
    var = _parameter(running_var, x, "running_var", (channels,))
    scale = 1 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * _parameter(weight, x, "weight", (channels,))
    shape = (1, channels) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) * scale.reshape(shape)
    if bias is not None:
        y += _parameter(bias, x, "bias", (channels,)).reshape(shape)
    return y


def relu(x):
    """max(x, 0)."""
    return np.maximum(_tensor(x, spatial=False), 0)


def relu6(x):
    """min(max(x, 0), 6)."""
    return np.clip(_tensor(x, spatial=False), 0, 6)


def leaky_relu(x, negative_slope=0.01):
    """x where positive, negative_slope * x elsewhere."""
    x = _tensor(x, spatial=False)
    return np.where(x >= 0, x, x * float(negative_slope))


def _erfc(z):
    # Numerical Recipes' erfc: fractional error below 1.2e-7 everywhere, so even
    # GELU's far negative tail (where 1 + erf is tiny) keeps its relative accuracy.
    a = np.abs(z)
    t = 1 / (1 + 0.5 * a)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(-a * a + poly)
    return np.where(z >= 0, r, 2 - r)


def gelu(x, approximate="none"):
    """x * Phi(x); ``approximate='tanh'`` uses PyTorch's tanh formula."""
    x = _tensor(x, spatial=False)
    if coerce("approximate", approximate) == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
    return 0.5 * x * _erfc(-x / math.sqrt(2))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    x = _tensor(x, spatial=False)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def silu(x):
    """x * sigmoid(x)."""
    x = _tensor(x, spatial=False)
    return x * sigmoid(x)


def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(_tensor(x, spatial=False))


def hardswish(x):
    """x * relu6(x + 3) / 6."""
    x = _tensor(x, spatial=False)
    return x * np.clip(x + 3, 0, 6) / 6


def flatten(x, start_dim=1, end_dim=-1):
    """Merge axes start_dim..end_dim (counting the batch axis), as ``torch.flatten``."""
    x = _tensor(x, spatial=False)
    shape = Flatten(coerce("start_dim", start_dim), coerce("end_dim", end_dim)).infer(x.shape[1:]).output_shape
    return x.reshape((x.shape[0], *shape))


def upsample(x, scale_factor, mode="nearest"):
    """Nearest upsampling by integer factors, as ``torch.nn.functional.interpolate``."""
    x = _tensor(x)
    rank = x.ndim - 2
    spec = Upsample(scale_factor=coerce("scale_factor", scale_factor), mode=coerce("mode", mode))
    _checked(spec, x.shape[1:])
    factors = spec.scale_factor if isinstance(spec.scale_factor, tuple) else (spec.scale_factor,) * rank
    for axis, factor in enumerate(factors):
        x = np.repeat(x, int(factor), axis=axis + 2)
    return x


def pad(x, pad):
    """Zero padding, as ``torch.nn.functional.pad(x, pad)``: amounts for the last
    axis first (left, right, top, bottom, ...); negative amounts crop."""
    x = _tensor(x)
    rank = x.ndim - 2
    amounts = tuple(coerce("padding", tuple(pad)) if not isinstance(pad, int) else (pad,) * (2 * rank))
    if len(amounts) % 2 or len(amounts) > 2 * rank:
        raise SpecError(f"pad has {len(amounts)} values; give pairs for at most {rank} axes, last axis first",
                        hint="e.g. (1, 1) pads the last axis by one on each side", field="padding")
    amounts = amounts + (0,) * (2 * rank - len(amounts))
    spec = ZeroPad(amounts, rank=rank)
    _checked(spec, x.shape[1:])
    sides = spec.sides(rank)
    grow = [(0, 0), (0, 0)] + [(max(b, 0), max(e, 0)) for b, e in sides]
    y = np.pad(x, grow) if any(b or e for b, e in grow) else x
    crop = (slice(None), slice(None), *(slice(max(-b, 0), y.shape[i + 2] - max(-e, 0)) for i, (b, e) in enumerate(sides)))
    return np.ascontiguousarray(y[crop])


ACTIVATIONS = {
    "ReLU": relu, "ReLU6": relu6, "LeakyReLU": leaky_relu, "GELU": gelu, "SiLU": silu, "Sigmoid": sigmoid,
    "Tanh": tanh, "Hardswish": hardswish,
}
