"""Convolution, transposed convolution and linear layers on NumPy arrays."""

from __future__ import annotations

import numpy as np

from math import prod

from ..backend.convolution import convolve
from ..backend.memory import holding
from ..backend.transposed import convolve_transposed
from ..engine.errors import ShapeError
from ..engine.layers import Conv, ConvTranspose, Linear
from ..engine.layers.base import per_axis
from .checks import checked, arguments_for, kernel_weight, parameter, tensor
from .layout import padded


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Convolution (cross-correlation), as ``torch.nn.functional.conv1d/2d/3d``.

    ``weight`` is (out_channels, in_channels/groups, *kernel_size); ``padding``
    may also be 'same' or 'valid', and ``padding_mode`` zeros, reflect,
    replicate or circular (as the Conv modules apply them).
    """
    x = tensor(x)
    weight = kernel_weight(weight, x, "(out_channels, in_channels/groups, *kernel_size)")
    rank = x.ndim - 2
    args = arguments_for(Conv, stride=stride, padding=padding, dilation=dilation, groups=groups)
    spec = Conv(weight.shape[0], tuple(weight.shape[2:]), args["stride"], args["padding"], args["dilation"],
                args["groups"], bias is not None, padding_mode, rank=rank)
    if weight.shape[1] * spec.groups != x.shape[1]:
        raise ShapeError(
            f"weight {weight.shape} with groups={spec.groups} expects {weight.shape[1] * spec.groups} input channels, "
            f"but the input has {x.shape[1]}",
            hint="give weight of shape (out_channels, in_channels/groups, *kernel_size)", field="weight")
    figures = checked(spec, x.shape[1:])
    bias = parameter(bias, x, "bias", (weight.shape[0],))
    pads = spec.pads(x.shape[2:])
    if spec.padding_mode != "zeros" and any(b or e for b, e in pads):
        padded_bytes = x.itemsize * x.shape[0] * x.shape[1] * prod(n + b + e for n, (b, e) in zip(x.shape[2:], pads))
        x = padded(x, [(0, 0), (0, 0), *pads], spec.padding_mode)
        with holding({"padded input": padded_bytes}):  # held while the kernel runs: its checks count it
            return convolve(x, weight, bias, per_axis(spec.stride, rank, "stride"), tuple((0, 0) for _ in pads),
                            per_axis(spec.dilation, rank, "dilation"), spec.groups, figures.output_shape[1:])
    # zero padding is applied tile by tile inside the kernel
    return convolve(x, weight, bias, per_axis(spec.stride, rank, "stride"), pads,
                    per_axis(spec.dilation, rank, "dilation"), spec.groups, figures.output_shape[1:])


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose1d/2d/3d``.

    ``weight`` is (in_channels, out_channels/groups, *kernel_size).
    """
    x = tensor(x)
    weight = kernel_weight(weight, x, "(in_channels, out_channels/groups, *kernel_size)")
    rank = x.ndim - 2
    if weight.shape[0] != x.shape[1]:
        raise ShapeError(f"weight {weight.shape} expects {weight.shape[0]} input channels, but the input has {x.shape[1]}",
                         hint="give weight of shape (in_channels, out_channels/groups, *kernel_size)", field="weight")
    args = arguments_for(ConvTranspose, stride=stride, padding=padding, output_padding=output_padding,
                         dilation=dilation, groups=groups)
    spec = ConvTranspose(weight.shape[1] * args["groups"], tuple(weight.shape[2:]), args["stride"], args["padding"],
                         args["output_padding"], args["groups"], bias is not None, args["dilation"], rank=rank)
    figures = checked(spec, x.shape[1:])
    bias = parameter(bias, x, "bias", (spec.out_channels,))
    axes = {name: per_axis(getattr(spec, name), rank, name) for name in ("stride", "padding", "output_padding", "dilation")}
    return convolve_transposed(x, weight, bias, axes["stride"], axes["padding"], axes["output_padding"],
                               axes["dilation"], spec.groups, figures.output_shape[1:])


def linear(x, weight, bias=None):
    """``x @ weight.T + bias`` over the last axis, as ``torch.nn.functional.linear``."""
    x = tensor(x, spatial=False)
    weight = parameter(weight, x, "weight")
    if weight.ndim != 2:
        raise ShapeError(f"weight has shape {weight.shape}; expected (out_features, in_features)",
                         hint="give a 2-d weight", field="weight")
    Linear(weight.shape[0], bias is not None, in_features=weight.shape[1]).infer(x.shape[1:] or x.shape)
    bias = parameter(bias, x, "bias", (weight.shape[0],))
    y = np.matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y
