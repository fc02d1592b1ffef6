"""Pooling on NumPy arrays: max, average and the adaptive pools."""

from __future__ import annotations

from ..backend import pooling as _pooling
from ..engine.layers import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool
from ..engine.layers.base import per_axis
from .checks import checked, arguments_for, tensor


def _pool_axes(spec, rank):
    kernel = per_axis(spec.kernel_size, rank, "kernel_size")
    stride = kernel if spec.stride in (None, ()) else per_axis(spec.stride, rank, "stride")
    return kernel, stride, per_axis(spec.padding, rank, "padding")


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling, as ``torch.nn.functional.max_pool1d/2d/3d``."""
    x = tensor(x)
    rank = x.ndim - 2
    args = arguments_for(MaxPool, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                    ceil_mode=ceil_mode)
    spec = MaxPool(args["kernel_size"], args["stride"], args["padding"], args["dilation"],
                   ceil_mode=args["ceil_mode"], rank=rank)
    figures = checked(spec, x.shape[1:])
    kernel, stride, padding = _pool_axes(spec, rank)
    return _pooling.max_pool(x, kernel, stride, padding, per_axis(spec.dilation, rank, "dilation"),
                             figures.output_shape[1:])


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Average pooling, as ``torch.nn.functional.avg_pool1d/2d/3d``."""
    x = tensor(x)
    rank = x.ndim - 2
    args = arguments_for(AvgPool, kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                    count_include_pad=count_include_pad, divisor_override=divisor_override)
    spec = AvgPool(args["kernel_size"], args["stride"], args["padding"], args["ceil_mode"],
                   args["count_include_pad"], args["divisor_override"], rank=rank)
    figures = checked(spec, x.shape[1:])
    kernel, stride, padding = _pool_axes(spec, rank)
    return _pooling.avg_pool(x, kernel, stride, padding, spec.ceil_mode, spec.count_include_pad,
                             spec.divisor_override, figures.output_shape[1:])


def adaptive_avg_pool(x, output_size):
    """Adaptive average pooling; None in ``output_size`` keeps that axis."""
    x = tensor(x)
    spec = AdaptiveAvgPool(arguments_for(AdaptiveAvgPool, output_size=output_size)["output_size"], rank=x.ndim - 2)
    return _pooling.adaptive_pool(x, checked(spec, x.shape[1:]).output_shape[1:], "mean")


def adaptive_max_pool(x, output_size):
    """Adaptive max pooling; None in ``output_size`` keeps that axis."""
    x = tensor(x)
    spec = AdaptiveMaxPool(arguments_for(AdaptiveMaxPool, output_size=output_size)["output_size"], rank=x.ndim - 2)
    return _pooling.adaptive_pool(x, checked(spec, x.shape[1:]).output_shape[1:], "max")
