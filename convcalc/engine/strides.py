"""Where a tensor's elements sit in its storage (strides, in elements, batch axis first), as PyTorch
lays them out: what decides whether a reshape is a view or a copy, and what a linear layer saves.

A layer that makes new storage makes it contiguous; a permutation or a slice is a view with the
strides moved or stepped; a reshape is a view when PyTorch's rule (``computeStride``) finds strides
for the new shape, else a copy. A linear layer (and ``x @ W``) on more than two axes folds its input
to rows, ``input.reshape(-1, features)``, and autograd saves that: the input's storage when the fold
is a view, a copy of the input otherwise (measured with ``saved_tensors_hooks``, torch 2.13).

>>> contiguous((2, 3, 4))
(12, 4, 1)
>>> view((2, 3, 4), (12, 4, 1), (6, 4)), view((2, 2, 4), (12, 4, 1), (4, 4))
((4, 1), None)
"""

from __future__ import annotations

from .layers import Chunk, Flatten, Narrow, Permute, Reshape, Select, Slice, Split, Squeeze, Transpose, Unsqueeze
from .layers.base import Shape
from .layers.layout import batch_dim
from .sizes import volume

Strides = tuple[int, ...]


def contiguous(shape: Shape) -> Strides:
    """The strides of a tensor laid out row by row."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def view(shape: Shape, strides: Strides, wanted: Shape) -> Strides | None:
    """The strides of ``wanted`` as a view of a tensor of ``shape`` and ``strides``, or None where it
    needs a copy: PyTorch's rule, which merges or splits only axes that are contiguous between them."""
    if volume(shape) == 0:
        return contiguous(wanted)
    result = [0] * len(wanted)
    at = len(wanted) - 1
    base = strides[-1] if strides else 1
    held = kept = 1
    for d in range(len(shape) - 1, -1, -1):
        held *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != held * base):
            while at >= 0 and (kept < held or wanted[at] == 1):
                result[at] = kept * base
                kept *= wanted[at]
                at -= 1
            if kept != held:
                return None
            if d > 0:
                base, held, kept = strides[d - 1], 1, 1
    return tuple(result) if at == -1 else None


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
    if tuple(out) == tuple(shape):  # an identity, an in-place activation or write: the same layout
        return strides
    return contiguous(wanted)


def batched_operand(full: Shape, strides: Strides, other: Shape) -> tuple[bool, int]:
    """How ``torch.matmul`` reads an operand of ``full`` shape (batch axis included) and ``strides``
    beside another of ``other`` full shape, both of three axes or more: expanded to the leading axes
    both broadcast to, then reshaped to (their product, n, m) for ``bmm``, which saves that. Whether
    it is a view of the operand's storage (else a copy), and its element count.

    >>> batched_operand((1, 4, 2, 8, 16), (1536, 768, 8, 1, 48), (1, 4, 2, 16, 8))  # k transposed: a copy
    (False, 1024)
    >>> batched_operand((1, 4, 2, 16, 8), (1024, 256, 128, 8, 1), (1, 4, 2, 8, 16))
    (True, 1024)
    """
    rank = max(len(full), len(other)) - 2
    lead_a = (1,) * (rank - len(full) + 2) + tuple(full[:-2])
    lead_b = (1,) * (rank - len(other) + 2) + tuple(other[:-2])
    lead = tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(lead_a, lead_b))
    own = (0,) * (rank - len(full) + 2) + tuple(strides[:-2])
    expanded = tuple(st if n == size else 0 for n, size, st in zip(lead_a, lead, own))
    wanted = (volume(lead), *full[-2:])
    return view((*lead, *full[-2:]), (*expanded, *strides[-2:]), wanted) is not None, volume(wanted)


def folds_to_a_view(shape: Shape, strides: Strides, batch: int) -> bool:
    """Whether a tensor of per-sample ``shape`` folds to rows of its last axis without a copy."""
    full = (batch, *shape)
    return len(full) <= 2 or view(full, strides, (volume(full[:-1]), full[-1])) is not None
