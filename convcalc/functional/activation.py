"""Activations on NumPy arrays."""

from __future__ import annotations

import math

import numpy as np

from ..engine.layers import Activation
from ..engine.layers.kind import check_arguments
from .checks import tensor


def relu(x):
    """max(x, 0)."""
    return np.maximum(tensor(x, spatial=False), 0)


def relu6(x):
    """min(max(x, 0), 6)."""
    return np.clip(tensor(x, spatial=False), 0, 6)


def leaky_relu(x, negative_slope=0.01):
    """x where positive, negative_slope * x elsewhere."""
    x = tensor(x, spatial=False)
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
    x = tensor(x, spatial=False)
    if check_arguments(Activation, approximate=approximate)["approximate"] == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
    return 0.5 * x * _erfc(-x / math.sqrt(2))


def sigmoid(x):
    """1 / (1 + exp(-x))."""
    x = tensor(x, spatial=False)
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def silu(x):
    """x * sigmoid(x)."""
    x = tensor(x, spatial=False)
    return x * sigmoid(x)


def tanh(x):
    """Hyperbolic tangent."""
    return np.tanh(tensor(x, spatial=False))


def hardswish(x):
    """x * relu6(x + 3) / 6."""
    x = tensor(x, spatial=False)
    return x * np.clip(x + 3, 0, 6) / 6


ACTIVATIONS = {
    "ReLU": relu, "ReLU6": relu6, "LeakyReLU": leaky_relu, "GELU": gelu, "SiLU": silu, "Sigmoid": sigmoid,
    "Tanh": tanh, "Hardswish": hardswish,
}


def hardsigmoid(x):
    """relu6(x + 3) / 6."""
    x = tensor(x, spatial=False)
    return np.clip(x + 3, 0, 6) / 6


def hardtanh(x, min_val=-1.0, max_val=1.0):
    """x clamped to [min_val, max_val]."""
    return np.clip(tensor(x, spatial=False), float(min_val), float(max_val))


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    x = tensor(x, spatial=False)
    scaled = x * beta
    with np.errstate(over="ignore"):
        soft = np.log1p(np.exp(np.minimum(scaled, threshold))) / beta
    return np.where(scaled > threshold, x, soft).astype(x.dtype, copy=False)


def mish(x):
    """x * tanh(softplus(x))."""
    x = tensor(x, spatial=False)
    return x * np.tanh(softplus(x))


def elu(x, alpha=1.0):
    """x where positive, alpha (exp(x) - 1) elsewhere."""
    x = tensor(x, spatial=False)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def selu(x):
    """scale * elu(x, alpha) with PyTorch's constants."""
    return (SELU_SCALE * elu(x, SELU_ALPHA)).astype(np.asarray(x).dtype, copy=False)


def softsign(x):
    """x / (1 + |x|)."""
    x = tensor(x, spatial=False)
    return x / (1 + np.abs(x))


def prelu(x, weight):
    """x where non-negative, weight * x elsewhere; weight has 1 value or one per channel (axis 1)."""
    x = tensor(x, spatial=False)
    weight = np.asarray(weight, dtype=x.dtype).reshape(-1)
    slope = weight.reshape((1, -1) + (1,) * (x.ndim - 2)) if weight.size > 1 else weight[0]
    return np.where(x >= 0, x, x * slope)


def softmax(x, dim):
    """exp(x) / sum(exp(x)) along ``dim``, shifted by the maximum for stability."""
    x = tensor(x, spatial=False)
    shifted = x - x.max(axis=dim, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim):
    """x - log(sum(exp(x))) along ``dim``."""
    x = tensor(x, spatial=False)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


def erf(x):
    """The error function."""
    x = tensor(x, spatial=False)
    return (1 - _erfc(x)).astype(x.dtype, copy=False)


ACTIVATIONS.update({
    "Erf": erf,
    "Hardsigmoid": hardsigmoid, "Hardtanh": hardtanh, "Mish": mish, "ELU": elu, "SELU": selu, "Softplus": softplus,
    "Softsign": softsign,
})
