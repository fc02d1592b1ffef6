"""What every functional call shares: checking arrays, parameters and arguments."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..engine.errors import ShapeError, SpecError
from ..engine.layers.kind import check_arguments

FLOAT_TYPES = (np.float32, np.float64)


def tensor(x, name: str = "input", *, spatial: bool = True, contiguous: bool = True) -> np.ndarray:
    """``x`` as a float array, checked; laid out row by row unless ``contiguous`` is False (a reshape
    then stays a view wherever NumPy's rule, which is PyTorch's, finds one)."""
    x = np.asarray(x)
    if x.dtype.type not in FLOAT_TYPES:
        raise SpecError(f"{name} has dtype {x.dtype}; convcalc executes float32 or float64",
                        hint=f"convert it, e.g. {name}.astype(np.float32)", field=name)
    if spatial and not 3 <= x.ndim <= 5:
        raise ShapeError(f"{name} has {x.ndim} axes; expected a batch, channels and 1 to 3 spatial axes",
                         hint="add the batch axis first, e.g. x[None]", field=name)
    return np.ascontiguousarray(x) if contiguous else x


def parameter(value, like: np.ndarray, name: str, shape: tuple | None = None) -> np.ndarray | None:
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


def kernel_weight(weight, x: np.ndarray, layout: str) -> np.ndarray:
    """A convolution weight: same dtype as ``x``, and two axes more than its spatial rank."""
    weight = parameter(weight, x, "weight")
    if weight.ndim != x.ndim:
        raise ShapeError(f"weight has {weight.ndim} axes; a {x.ndim - 2}d input needs a weight with {x.ndim}",
                         hint=f"give weight as {layout}", field="weight")
    return weight


@lru_cache(maxsize=512)
def checked(spec, shape: tuple):
    """``spec.infer(shape)``, remembered: specs are immutable, and checking the
    same layer again costs tens of microseconds per call. Refusals are not kept."""
    return spec.infer(shape)


def arguments_for(cls, **values) -> dict:
    """The arguments, each checked by the rule of the layer class's argument of that name."""
    return check_arguments(cls, **values)
