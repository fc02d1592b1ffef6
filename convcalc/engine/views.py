"""Which layers' outputs are views of their input, and where a view's elements sit (strides, batch axis
first): a reshape where PyTorch's rule finds strides for it, a permutation, a slice, a selection; a layer
that keeps its input's shape in place keeps its layout."""

from __future__ import annotations

from .layers import (Chunk, Contiguous, Flatten, Narrow, Permute, Reshape, Select, Slice, Split, Squeeze, Transpose,
                     Unsqueeze)
from .layers.layout import batch_dim
from .strides import Shape, Strides, contiguous, laid_as, view


def after(layer, shape: Shape, strides: Strides, out: Shape, batch: int) -> Strides | None:
    """The strides of ``layer``'s output when it is a view of its (first) input of per-sample ``shape``
    and full ``strides``; None where PyTorch copies (a reshape that is no view)."""
    full, wanted = (batch, *shape), (batch, *out)
    if isinstance(layer, (Reshape, Flatten, Squeeze, Unsqueeze)):
        return view(full, strides, wanted)
    if isinstance(layer, (Permute, Transpose)):
        order = layer.infer(shape).dims
        if order is not None and None not in order:
            return (strides[0], *(strides[d + 1] for d in order))
    if isinstance(layer, (Slice, Narrow, Chunk, Split)):
        axis, _, _, step = layer.locate(shape)
        return tuple(s * step if a == axis + 1 else s for a, s in enumerate(strides))
    if isinstance(layer, Select):
        axis = batch_dim(layer.dim, shape) + 1
        return strides[:axis] + strides[axis + 1:]
    if isinstance(layer, Contiguous):  # the input itself where it is laid out row by row already
        return strides if laid_as(full, strides, layer.output_strides(full, (), ())) else None
    if tuple(out) == tuple(shape):  # an identity, an in-place activation or write: the same layout
        return strides
    return contiguous(wanted)
