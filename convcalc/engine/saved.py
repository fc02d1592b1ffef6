"""What autograd saves for the backward pass, layer kind by layer kind.

Each rule gives PyTorch's choice (``tools/autograd/derivatives.yaml`` and the
CPU kernels of torch 2.13, in training mode) as a list of items:
``("input", k)`` (the k-th input's storage is saved), ``("output",)`` (the
result's storage), or ``("new", bytes)`` for a tensor only the backward pass
reads (statistics, indices, dropout's noise). Parameters are left out: they are counted as
parameters. None: convcalc does not know the rule.
"""

from __future__ import annotations

from . import layers as L
from .sizes import volume

# Activations whose backward reads the result rather than the input.
_FROM_RESULT = {"ReLU", "Sigmoid", "Tanh"}
# Activations whose in-place form saves the result (leaky_relu_, elu_); the
# out-of-place form saves the input. (hardtanh_ saves a copy of its input.)
_INPLACE_FROM_RESULT = {"LeakyReLU", "ELU", "SELU"}
# Activations whose backward reads the input (and that PyTorch has as one operator).
_FROM_INPUT = {"ReLU6", "Hardtanh", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Mish",
               "Softplus"}

# Kinds that save nothing: their backward needs only shapes (views, copies,
# sums, padding with a constant, resampling by fixed weights).
_NOTHING = (L.Identity, L.Flatten, L.Reshape, L.Squeeze, L.Unsqueeze, L.Permute, L.Transpose, L.Slice, L.Narrow,
            L.Chunk, L.Split, L.Select, L.Concat, L.ChannelShuffle, L.PixelShuffle, L.PixelUnshuffle, L.Reduce,
            L.ZeroPad, L.Upsample)
_INDEX_BYTES = 8  # int64 indices
OUTPUT = ("output",)


def _input(k: int) -> tuple:
    return ("input", k)


def _new(nbytes: int) -> tuple:
    return ("new", nbytes)


def saved_by(layer, inputs, output, batch: int, itemsize: int, inputs_grad, trainable: bool):
    """The items ``layer`` saves, given its inputs' and output's per-sample
    shapes, whether each input needs a gradient and whether it has trainable
    parameters; None if unknown."""
    statistic = max(itemsize, 4)  # saved means and inverse deviations are at least float32
    if isinstance(layer, _NOTHING):
        return []
    if isinstance(layer, (L.Conv, L.ConvTranspose)):
        return [_input(0)]
    if isinstance(layer, L.Linear):
        return [_input(0)] if trainable else []
    if isinstance(layer, L.BatchNorm):
        return [_input(0), _new(2 * output[0] * statistic)]
    if isinstance(layer, L.GroupNorm):
        return [_input(0), _new(2 * batch * layer.num_groups * statistic)]
    if isinstance(layer, L.InstanceNorm) and not layer.track_running_stats:
        # batch norm over the input viewed as one sample of N x C channels
        return [_input(0), _new(2 * batch * output[0] * statistic)]
    if isinstance(layer, L.LayerNorm):
        normalized = (layer.normalized_shape,) if isinstance(layer.normalized_shape, int) else layer.normalized_shape
        return [_input(0), _new(2 * batch * volume(output) // volume(normalized) * statistic)]
    if isinstance(layer, L.Activation):
        if layer.function in _FROM_RESULT or (layer.inplace and layer.function in _INPLACE_FROM_RESULT):
            return [OUTPUT]
        if layer.function == "Softsign":  # x / (1 + |x|): the input and the denominator
            return [_input(0), _new(batch * volume(output) * itemsize)]
        if layer.function not in _FROM_INPUT:
            return None
        # in place, the input is overwritten: autograd saves a copy of it first
        return [_new(batch * volume(inputs[0]) * itemsize)] if layer.inplace else [_input(0)]
    if isinstance(layer, L.PReLU):
        return [_input(0)]
    if isinstance(layer, L.Softmax):
        return [OUTPUT]
    if isinstance(layer, L.Dropout):  # the noise it multiplies by: per element, or per channel
        per_sample = output[0] if layer.variant.startswith("feature") else volume(output)
        return [] if layer.p == 0 else [_new(batch * per_sample * itemsize)]
    if isinstance(layer, L.StochasticDepth):
        return [] if layer.p == 0 else [_new(batch * itemsize)]  # one noise value per sample ("row" mode)
    if isinstance(layer, L.MaxPool):
        return [_input(0), _new(batch * volume(output) * _INDEX_BYTES)]
    if isinstance(layer, L.AdaptiveMaxPool):
        return [_input(0), _new(batch * volume(output) * _INDEX_BYTES)]
    if isinstance(layer, L.AvgPool):
        return [_input(0)]
    if isinstance(layer, L.AdaptiveAvgPool):
        # an output of one position per channel is a mean, which saves nothing
        return [] if all(n == 1 for n in output[1:]) else [_input(0)]
    if isinstance(layer, L.Pad):
        return [] if layer.mode in ("constant", "circular") else [_input(0)]
    if isinstance(layer, (L.Add, L.Sub)):
        return []
    if isinstance(layer, L.Mul):
        return _product(layer, inputs_grad, trainable)
    if isinstance(layer, L.Div):
        return _quotient(layer, inputs_grad, trainable)
    return None


def _product(layer, inputs_grad, trainable):
    # each factor's gradient needs the other factor: saved when the other one needs a gradient
    if layer.scalar is not None or layer.constant_shape is not None:
        return None if len(inputs_grad) > 1 else []
    if layer.weight_shape is not None:
        return [_input(0)] if trainable else []
    first, second = inputs_grad[0], inputs_grad[1]
    return ([_input(1)] if first else []) + ([_input(0)] if second else [])


def _quotient(layer, inputs_grad, trainable):
    # a / b: a's gradient needs b; b's needs a and b
    if layer.scalar is not None and len(inputs_grad) == 1:
        return []
    if len(inputs_grad) != 2 or layer.weight_shape is not None or layer.constant_shape is not None:
        return None
    return [_input(1)] + ([_input(0)] if inputs_grad[1] else [])
