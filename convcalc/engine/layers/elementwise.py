"""Layers that keep every position: activations, BatchNorm, Dropout."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ShapeError, SpecError
from ..sizes import volume
from .base import Figures, Layer, Shape, format_shape

INTERNAL = {"internal": True}

# Floating-point operations per element, counting exp, erf and tanh's
# exponential as one each (the README's conventions table repeats these).
ACTIVATION_FLOPS = {
    "ReLU": 1,  # max(x, 0)
    "ReLU6": 2,  # min(max(x, 0), 6)
    "LeakyReLU": 2,  # compare, multiply
    "GELU": 5,  # x/sqrt(2), erf, +1, *x, *0.5
    "SiLU": 5,  # x * sigmoid(x)
    "Sigmoid": 4,  # negate, exp, +1, divide
    "Tanh": 5,  # (e^2x - 1)/(e^2x + 1): multiply, exp, subtract, add, divide
    "Hardswish": 5,  # x * min(max(x + 3, 0), 6) / 6
}
GELU_TANH_FLOPS = 13  # x^3 (2), two scalings, add, tanh (5), +1, *x, *0.5


@dataclass(frozen=True)
class Activation(Layer):
    """An elementwise activation such as ``torch.nn.ReLU``.

    >>> fig = Activation("ReLU").infer((64, 112, 112))
    >>> fig.output_shape, fig.flops
    ((64, 112, 112), 802816)
    """

    function: str
    negative_slope: float = 0.01
    approximate: str = "none"
    inplace: bool = False

    def infer(self, shape: Shape) -> Figures:
        if self.function not in ACTIVATION_FLOPS:
            raise SpecError(
                f"unknown activation {self.function!r}",
                hint=f"use one of {', '.join(ACTIVATION_FLOPS)}",
                field="*",
            )
        per_element = ACTIVATION_FLOPS[self.function]
        summary = ""
        if self.function == "GELU":
            if self.approximate not in ("none", "tanh"):
                raise SpecError(
                    f"approximate={self.approximate!r} is not 'none' or 'tanh'",
                    hint="use approximate=none or approximate=tanh",
                    field="approximate",
                )
            if self.approximate == "tanh":
                per_element, summary = GELU_TANH_FLOPS, "tanh"
        if self.function == "LeakyReLU" and self.negative_slope != 0.01:
            summary = f"slope={self.negative_slope:g}"
        return Figures(self.function, shape, 0, 0, per_element * volume(shape), None, (), summary)


@dataclass(frozen=True)
class BatchNorm(Layer):
    """``torch.nn.BatchNorm1d/2d/3d`` in inference: a per-channel scale and shift.

    Parameters: the affine weight and (unless bias=False) bias, C each.

    >>> BatchNorm().infer((64, 56, 56)).params
    128
    """

    num_features: int | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    bias: bool = True  # PyTorch 2.13's keyword: affine weight without the bias
    rank: int | None = field(default=None, metadata=INTERNAL)

    def infer(self, shape: Shape) -> Figures:
        spatial = len(shape) - 1
        rank = self.rank or max(spatial, 1)
        type_name = f"BatchNorm{rank}d"
        accepted = (0, 1) if rank == 1 else (rank,)
        if spatial not in accepted:
            wanted = "channels or channels x length" if rank == 1 else f"channels x {rank} spatial sizes"
            raise ShapeError(
                f"{type_name} needs {wanted} but receives {format_shape(shape)}",
                hint="drop the rank from the layer name (bn) so it follows the input",
                field="*",
            )
        channels = shape[0]
        if self.num_features is not None and self.num_features != channels:
            raise ShapeError(
                f"num_features={self.num_features} but the incoming tensor has {channels} channels",
                hint="omit num_features to take it from the input, or fix the layer before",
                field="num_features",
            )
        params = (channels + (channels if self.bias else 0)) if self.affine else 0
        # inference folds mean, variance, weight and bias into x*a + b
        tensors = ((("weight", channels),) + ((("bias", channels),) if self.bias else ())) if self.affine else ()
        return Figures(type_name, shape, params, 0, 2 * volume(shape), None, (), "", tensors=tensors)


@dataclass(frozen=True)
class Dropout(Layer):
    """``torch.nn.Dropout``: the identity at inference, so no cost.

    >>> Dropout(0.5).infer((4096,)).output_shape
    (4096,)
    """

    p: float = 0.5
    inplace: bool = False

    def infer(self, shape: Shape) -> Figures:
        if not 0 <= self.p <= 1:
            raise ShapeError(
                f"dropout probability has to be between 0 and 1, but got {self.p}",
                hint="use p between 0 and 1, e.g. dropout:0.5",
                field="p",
            )
        return Figures("Dropout", shape, 0, 0, 0, None, (), f"p={self.p:g}")
