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
