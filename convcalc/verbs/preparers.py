"""What a layer kind's ``prepare`` is given to run on the NumPy backend: the functional API and
random parameters drawn for an input like the one it will get (so repeated timings reuse them)."""

from __future__ import annotations

from math import sqrt

import numpy as np

from .. import functional
from ..engine.layers import Layer
from ..engine.layers.slices import prepare_sliced


class Runner:
    """The backend a kind's ``prepare`` executes on: ``F`` (``convcalc.functional``) and the
    parameters it draws, in the input's dtype, from one seeded generator."""

    F = functional

    def __init__(self, rng: np.random.Generator, dtype) -> None:
        self.rng, self.dtype = rng, np.dtype(dtype)

    def uniform(self, shape, fan_in: int) -> np.ndarray:
        """PyTorch's default initialisation: uniform within 1/sqrt(fan_in)."""
        # drawn in the target dtype: no float64 staging copy (the memory check counts what is really made)
        bound = 1 / sqrt(max(fan_in, 1))
        values = self.rng.random(shape, dtype=self.dtype)
        values *= 2 * bound
        values -= bound
        return values

    def between(self, low: float, high: float, shape) -> np.ndarray:
        """Uniform values in [low, high): statistics, affine scales and shifts, operands."""
        values = self.rng.random(shape, dtype=self.dtype)  # in the target dtype: no float64 staging copy
        values *= high - low
        values += low
        return values

    def affine(self, count: int, weight: bool = True, bias: bool = True):
        """An affine scale and shift of ``count`` values (None where the layer has none)."""
        w = self.between(0.5, 1.5, count) if weight else None
        b = self.between(-0.1, 0.1, count) if weight and bias else None
        return w, b

    def full(self, count: int, value: float) -> np.ndarray:
        return np.full(count, value, dtype=self.dtype)

    @staticmethod
    def concatenate(arrays, dim: int) -> np.ndarray:
        return np.concatenate(arrays, axis=dim)


def prepare_layer(layer: Layer, x: np.ndarray, rng: np.random.Generator):
    """Draw a layer's random parameters for inputs like ``x``; return the call that runs it
    (on one input, or on every branch for merges). The kind says how (its ``prepare``)."""
    runner = Runner(rng, x.dtype)
    return prepare_sliced(layer, lambda x: layer.prepare(runner, x), x)
