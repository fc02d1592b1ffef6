"""A value of an ONNX graph known without the input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Const:
    """A value known without the input: an array, and the initializer it is (for parameters)."""

    array: np.ndarray
    initializer: str | None = None
    expanded: bool = False  # an initializer of one sample, expanded over the batch (a class token)
    # the float initializers these values are computed from by picking, moving, adding and joining (a gathered
    # bias; MViT's position embedding, summed and joined from three): their values are the learned ones
    table: tuple[str, ...] = ()
    sized: bool = False  # computed from the graph input's shape (a zero state of the batch's size)


# Operators that read a fixed tensor repeated over the batch as a copy per sample (a Constant layer):
# RAFT's first flow (zero: its coordinate grid less itself), joined to the motion features, convolved,
# and added to the flow's updates
COPIES = {"Conv", "Concat", "Add", "Sub", "Mul", "Div"}


def repeated(value, batch: int) -> bool:
    """Whether ``value`` is a fixed float tensor the file repeats over the batch: computed from the input's
    shape, its axis 0 the batch's, each sample's copy the same (RAFT's coordinate grids, and its first
    flow, their difference)."""
    if not isinstance(value, Const) or not value.sized or value.expanded or value.initializer or \
            value.array.dtype.kind != "f" or value.array.ndim < 2 or value.array.shape[0] != batch:
        return False
    return bool((value.array == value.array[:1]).all())
