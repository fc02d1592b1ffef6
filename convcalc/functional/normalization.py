"""Normalization on NumPy arrays."""

from __future__ import annotations

import numpy as np

from ..backend.memory import check_memory
from ..engine.layers import BatchNorm, GroupNorm, LayerNorm, LocalResponseNorm
from .checks import parameter, tensor


def batch_norm(x, running_mean, running_var, weight=None, bias=None, eps=1e-5):
    """Inference batch normalisation with running statistics, per channel (axis 1)."""
    x = tensor(x, spatial=False)
    channels = x.shape[1]
    BatchNorm(channels, rank=max(x.ndim - 2, 1)).infer(x.shape[1:])
    mean = parameter(running_mean, x, "running_mean", (channels,))
    var = parameter(running_var, x, "running_var", (channels,))
    scale = 1 / np.sqrt(var + eps)
    if weight is not None:
        scale = scale * parameter(weight, x, "weight", (channels,))
    shape = (1, channels) + (1,) * (x.ndim - 2)
    check_memory("this batch normalization", {"output": x.nbytes})
    y = np.subtract(x, mean.reshape(shape))  # then in place: the output is the only full-size array
    y *= scale.reshape(shape)
    if bias is not None:
        y += parameter(bias, x, "bias", (channels,)).reshape(shape)
    return y


def _affine(y, weight, bias, shape):
    # in place: y is the new array _standardize made
    if weight is not None:
        y *= np.asarray(weight, dtype=y.dtype).reshape(shape)
    if bias is not None:
        y += np.asarray(bias, dtype=y.dtype).reshape(shape)
    return y


def _standardize(x, axes, eps, operation="this normalization"):
    """(x - mean) / sqrt(var + eps) over ``axes``: the output and one array of squares, checked first."""
    statistics = 2 * x.nbytes // max(int(np.prod([x.shape[a] for a in axes])), 1)
    check_memory(operation, {"output": x.nbytes, "squares": x.nbytes, "statistics": statistics})
    y = np.subtract(x, x.mean(axis=axes, keepdims=True))
    var = np.square(y).mean(axis=axes, keepdims=True)
    var += eps
    y /= np.sqrt(var)
    return y


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` axes, as ``torch.nn.functional.layer_norm``."""
    x = tensor(x, spatial=False)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    LayerNorm(shape).infer(x.shape[1:])
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    return _affine(_standardize(x, axes, eps), weight, bias, shape).astype(x.dtype, copy=False)


def layer_norm2d(x, weight=None, bias=None, eps=1e-6):
    """ConvNeXt's channels-first LayerNorm: normalize the channels (axis 1) at every position."""
    x = tensor(x, spatial=False)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return _affine(_standardize(x, (1,), eps), weight, bias, shape).astype(x.dtype, copy=False)


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize each group of channels over it and every position, as ``torch.nn.functional.group_norm``."""
    x = tensor(x, spatial=False)
    GroupNorm(num_groups, affine=False).infer(x.shape[1:])
    grouped = x.reshape((x.shape[0], num_groups, -1))
    y = _standardize(grouped, (2,), eps).reshape(x.shape)
    return _affine(y, weight, bias, (1, x.shape[1]) + (1,) * (x.ndim - 2)).astype(x.dtype, copy=False)


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalize each channel of each sample over its positions, as ``torch.nn.functional.instance_norm``."""
    x = tensor(x)
    y = _standardize(x, tuple(range(2, x.ndim)), eps)
    return _affine(y, weight, bias, (1, x.shape[1]) + (1,) * (x.ndim - 2)).astype(x.dtype, copy=False)


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha * mean of x^2 over ``size`` channels around)^beta, as PyTorch (zeros beyond the edges)."""
    x = tensor(x, spatial=False)
    LocalResponseNorm(size).infer(x.shape[1:])
    before, channels = size // 2, x.shape[1]
    padded = (x.shape[0], channels + size - 1, *x.shape[2:])
    check_memory("this local response normalization", {"output": x.nbytes, "padded squares": x.nbytes // max(
        channels, 1) * padded[1], "window sums": x.nbytes})
    squares = np.zeros(padded, dtype=x.dtype)
    np.multiply(x, x, out=squares[:, before:before + channels])
    window = squares[:, :channels].copy()  # the sums in place: no array per term
    for c in range(1, size):
        window += squares[:, c:c + channels]
    del squares
    window /= size
    window *= alpha
    window += k
    window **= beta
    return np.divide(x, window, out=window)
