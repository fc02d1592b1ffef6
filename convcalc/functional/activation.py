"""Activations on NumPy arrays."""

from __future__ import annotations

import math

import numpy as np

from ..backend.memory import check_memory, chunked
from ..engine.layers import Activation
from ..engine.layers.kind import check_arguments
from .checks import tensor


def relu(x):
    """max(x, 0)."""
    return chunked(lambda v: np.maximum(v, 0), tensor(x, spatial=False), "this ReLU")


def relu6(x):
    """min(max(x, 0), 6)."""
    return chunked(lambda v: np.clip(v, 0, 6), tensor(x, spatial=False), "this ReLU6")


def leaky_relu(x, negative_slope=0.01):
    """x where positive, negative_slope * x elsewhere."""
    slope = float(negative_slope)
    return chunked(lambda v: np.where(v >= 0, v, v * slope), tensor(x, spatial=False), "this LeakyReLU")


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
    x = tensor(x, spatial=False)
    if check_arguments(Activation, approximate=approximate)["approximate"] == "tanh":
        return chunked(lambda v: 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v * v * v))), x,
                       "this GELU")
    return chunked(lambda v: 0.5 * v * _erfc(-v / math.sqrt(2)), x, "this GELU")


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    return chunked(_sigmoid, tensor(x, spatial=False), "this sigmoid")


def _sigmoid(v):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-v))


def silu(x):
    """x * sigmoid(x)."""
    return chunked(lambda v: v * _sigmoid(v), tensor(x, spatial=False), "this SiLU")


def tanh(x):
    """Hyperbolic tangent."""
    return chunked(np.tanh, tensor(x, spatial=False), "this tanh")


def hardswish(x):
    """x * relu6(x + 3) / 6."""
    return chunked(lambda v: v * np.clip(v + 3, 0, 6) / 6, tensor(x, spatial=False), "this hardswish")


ACTIVATIONS = {
    "ReLU": relu, "ReLU6": relu6, "LeakyReLU": leaky_relu, "GELU": gelu, "SiLU": silu, "Sigmoid": sigmoid,
    "Tanh": tanh, "Hardswish": hardswish,
}


def hardsigmoid(x):
    """relu6(x + 3) / 6."""
    return chunked(lambda v: np.clip(v + 3, 0, 6) / 6, tensor(x, spatial=False), "this hardsigmoid")


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val]."""
    low, high = float(min_val), float(max_val)
    return chunked(lambda v: np.clip(v, low, high), tensor(x, spatial=False), "this hardtanh")


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    return chunked(lambda v: _softplus(v, beta, threshold), tensor(x, spatial=False), "this softplus")


def _softplus(v, beta, threshold):
    scaled = v * beta
    with np.errstate(over="ignore"):
        soft = np.log1p(np.exp(np.minimum(scaled, threshold))) / beta
    return np.where(scaled > threshold, v, soft).astype(v.dtype, copy=False)


def mish(x):
    """x * tanh(softplus(x))."""
    return chunked(lambda v: v * np.tanh(_softplus(v, 1.0, 20.0)), tensor(x, spatial=False), "this Mish")


def elu(x, alpha=1.0):
    """x where positive, alpha (exp(x) - 1) elsewhere."""
    return chunked(lambda v: _elu(v, alpha), tensor(x, spatial=False), "this ELU")


def _elu(v, alpha):
    return np.where(v > 0, v, alpha * np.expm1(np.minimum(v, 0))).astype(v.dtype, copy=False)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(x):
    """scale * elu(x, alpha) with PyTorch's constants."""
    return chunked(lambda v: SELU_SCALE * _elu(v, SELU_ALPHA), tensor(x, spatial=False), "this SELU")


def softsign(x):
    """x / (1 + |x|)."""
    return chunked(lambda v: v / (1 + np.abs(v)), tensor(x, spatial=False), "this softsign")


def prelu(x, weight):
    """x where non-negative, weight * x elsewhere; weight has 1 value or one per channel (axis 1)."""
    x = tensor(x, spatial=False)
    weight = np.asarray(weight, dtype=x.dtype).reshape(-1)
    slope = weight.reshape((1, -1) + (1,) * (x.ndim - 2)) if weight.size > 1 else weight[0]
    check_memory("this PReLU", {"output": x.nbytes, "mask": x.size})
    y = np.multiply(x, slope)  # then the non-negative values over it: one mask, no other temporary
    np.copyto(y, x, where=x >= 0)
    return y


def softmax(x, dim):
    """exp(x) / sum(exp(x)) along ``dim``, shifted by the maximum for stability."""
    x = tensor(x, spatial=False)
    check_memory("this softmax", {"output": x.nbytes, "maxima and sums": 2 * x.nbytes // max(x.shape[dim], 1)})
    y = np.subtract(x, x.max(axis=dim, keepdims=True))  # computed in place from here: no temporaries
    np.exp(y, out=y)
    y /= y.sum(axis=dim, keepdims=True)
    return y


def log_softmax(x, dim):
    """x - log(sum(exp(x))) along ``dim``."""
    x = tensor(x, spatial=False)
    check_memory("this log-softmax", {"output": x.nbytes, "exponentials": x.nbytes,
                                      "maxima and sums": 2 * x.nbytes // max(x.shape[dim], 1)})
    y = np.subtract(x, x.max(axis=dim, keepdims=True))
    y -= np.log(np.exp(y).sum(axis=dim, keepdims=True))
    return y


def erf(x):
    """The error function."""
    return chunked(lambda v: 1 - _erfc(v), tensor(x, spatial=False), "this erf")


ACTIVATIONS.update({
    "Erf": erf,
    "Hardsigmoid": hardsigmoid, "Hardtanh": hardtanh, "Mish": mish, "ELU": elu, "SELU": selu, "Softplus": softplus,
    "Softsign": softsign,
})
