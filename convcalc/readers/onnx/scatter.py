"""ScatterND into an activation: a write of a rectangular block, as PyTorch's in-place writes into views
(``attn[:, :, 1:, 1:] += rel``, MViT's relative positions) are exported.

torch.export writes ``slice_scatter`` as ScatterND along axis 0 (the sliced axis moved first by a
Transpose) with a list of positions; the TorchScript exporter writes an index assignment as ScatterND
with the full grid of positions, the concatenation of one broadcast range an axis. That grid is held
unevaluated (``Grid``: a broadcast view an axis, no memory), as it may have billions of entries. Each
is read where its positions are one range an axis (a block): the SliceScatter kinds that write it.
Any other pattern of positions is refused naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine import layers as L
from ...engine.limits import MAX_CONSTANT_ELEMENTS
from ...engine.sizes import volume
from ..pytorch.values import Act, Unsupported
from .batch import dim, full_shape, refuse, same_placement
from .node import Node


@dataclass(frozen=True)
class Grid:
    """The positions a ScatterND writes, unevaluated: ``parts[j]`` (a broadcast view of ``shape``) holds
    the position along axis j of each element written."""

    parts: tuple
    shape: tuple[int, ...]


def grid(op: str, inputs, axis: int | None):
    """A Concat along the last axis of broadcast views too large to evaluate, held as a ``Grid``; else None."""
    arrays = [getattr(v, "array", None) for v in inputs]
    if op != "Concat" or not arrays or any(a is None or a.ndim < 1 or a.shape[-1] != 1 or a.dtype.kind not in "iu"
                                           for a in arrays):
        return None
    shape = arrays[0].shape
    if axis not in (-1, len(shape) - 1) or any(a.shape != shape for a in arrays) or \
            volume(shape) * len(arrays) <= MAX_CONSTANT_ELEMENTS or not all(0 in a.strides for a in arrays):
        return None
    return Grid(tuple(a[..., 0] for a in arrays), tuple(int(n) for n in shape[:-1]))


def _range(values, n: int, node: Node, what: str) -> tuple[int, int]:
    """(start, length) of positions that are consecutive along an axis of ``n`` (negative counted from the
    end, as ScatterND does), or refused."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    values = np.where(values < 0, values + n, values)
    if values.size == 0 or values.min() < 0 or values.max() >= n or \
            not np.array_equal(values, np.arange(values[0], values[0] + values.size)):
        raise refuse(node, f"writes {what} that are not one block of consecutive positions; convcalc reads "
                           "ScatterND into an activation only as a slice written back")
    return int(values[0]), int(values.size)


def scatter_nd(node: Node):
    if node.string("reduction", "none") != "none":
        raise Unsupported("ScatterND that accumulates")
    data, updates = node.act(0, moved=True), node.act(2, moved=True)
    node.placed = same_placement(node, [data, updates])
    full = full_shape(data, node.batch)
    index = node.inputs[1] if len(node.inputs) > 1 else None
    if isinstance(index, Grid):
        blocks = _grid_blocks(node, index, full)
    elif index is not None and not isinstance(index, Act) and index.array.ndim == 2 and index.array.shape[1] == 1:
        blocks = [(0, *_range(index.array[:, 0], full[0], node, "positions"))]
    elif index is not None and not isinstance(index, Act) and index.array.ndim == len(full) + 1 and \
            index.array.shape[-1] == len(full):  # a grid small enough to have been evaluated
        array = index.array
        blocks = _grid_blocks(node, Grid(tuple(array[..., j] for j in range(len(full))), array.shape[:-1]), full)
    else:
        raise Unsupported("ScatterND with other indices")
    blocks = [(dim(node, data, axis, "the axis written"), start, length) for axis, start, length in blocks
              if (start, length) != (0, full[axis])]
    if not blocks:  # every position written: the updates are the result
        return [(L.Reshape(updates.shape), [updates])]
    # the views down to the block written, then each written back into the one it was taken from
    specs = []
    for k, (axis, start, length) in enumerate(blocks[:-1]):
        specs.append((L.Slice(axis, start, start + length), [data if k == 0 else k - 1]))
    for k in range(len(blocks) - 1, -1, -1):
        axis, start, length = blocks[k]
        into = data if k == 0 else k - 1
        src = updates if k == len(blocks) - 1 else len(specs) - 1
        specs.append((L.SliceScatter(axis, start, start + length), [into, src]))
    return specs


def _grid_blocks(node: Node, index: Grid, full) -> list[tuple[int, int, int]]:
    """(file axis, start, length) of the block a full grid of positions writes, each part varying along its
    own axis only."""
    if len(index.parts) != len(full) or len(index.shape) != len(full):
        raise Unsupported("ScatterND writing slices")
    if max(index.shape, default=0) > MAX_CONSTANT_ELEMENTS:
        raise node.error(f"writes a grid of positions with an axis of {max(index.shape):,}, over the limit of "
                         f"{MAX_CONSTANT_ELEMENTS:,}", hint="check the input shape (--input)")
    blocks = []
    for j, part in enumerate(index.parts):
        line = part[tuple(slice(None) if a == j else slice(0, 1) for a in range(part.ndim))]
        viewed = all(stride == 0 for a, stride in enumerate(part.strides) if a != j and part.shape[a] > 1)
        if not viewed and (part.size > MAX_CONSTANT_ELEMENTS or
                           not np.array_equal(part, np.broadcast_to(line, part.shape))):
            raise refuse(node, f"writes positions along axis {j} that vary along another axis; convcalc reads "
                               "ScatterND into an activation only as a slice written back")
        blocks.append((j, *_range(line, full[j], node, f"positions along axis {j}")))
    return blocks

