"""ONNX's Gather on an activation: one position (a Select), a list of positions along an axis (an
IndexSelect), a table of positions along an axis (an IndexSelect of them all, reshaped: both exporters
write ``F.unfold`` so, a Gather of each axis's sliding windows), or torch.export's ``as_strided`` written
as a Gather of flat positions (a Reshape)."""

from __future__ import annotations

import numpy as np

from ...engine import layers as L
from ..pytorch.values import Unsupported
from .batch import FREE, PLAIN, dim, placement, refuse, shifted
from .node import Node


def gather(node: Node):
    """The layer a Gather on an activation is."""
    x = node.act(moved=True)
    index = node.const(1, what="indices", required=True)
    if np.asarray(index).ndim == 1 and placement(x) in (PLAIN, FREE):
        return _index_select(node, x, np.asarray(index))
    if np.asarray(index).ndim != 0:
        try:
            return _strided(node, x, np.asarray(index))
        except Unsupported:
            return _blocks(node, x, np.asarray(index))
    (position,) = node.const_ints(1, "indices")
    axis = node.int("axis", 0)
    where = placement(x)
    if node.batch == 1 and where == PLAIN and axis % (len(x.shape) + 1) == 0 and position in (0, -1):
        node.placed = FREE  # the one sample of a batch of 1 (x[0]): the batch is held by no axis
        return L.Reshape(x.shape)
    if where == PLAIN:
        return L.Select(axis, position)
    selected = dim(node, x, axis)
    node.placed = shifted(where, removed=[axis % (len(x.shape) + (where[1] * where[2] == 1))])
    return L.Select(selected, position)


def gather_nd(node: Node):
    """The layer a GatherND on an activation is, where it picks whole entries of the first axis (indices
    of one coordinate, ``batch_dims`` 0): torch.export's ``table[index]`` of Swin V2's position bias, an
    IndexSelect along that axis, which the batch may not be (``FREE``: a batch of 1 no axis holds)."""
    x = node.act(moved=True)
    index = np.asarray(node.const(1, what="indices", required=True))
    if node.int("batch_dims", 0) != 0 or index.ndim != 2 or index.shape[-1] != 1 or index.dtype.kind not in "iu":
        if placement(x) == PLAIN:  # batch first: one layer convcalc cannot cost, as any operator it does not read
            raise Unsupported("GatherND other than of entries of the first axis")
        raise refuse(node, f"gathers with {index.dtype.name} indices of shape {'x'.join(map(str, index.shape)) or '()'} "
                           f"(batch_dims {node.int('batch_dims', 0)}); convcalc reads GatherND on a tensor whose "
                           "batch is not first only as whole entries of its first axis (indices of shape n x 1)")
    if placement(x) != FREE:
        raise refuse(node, "gathers along the axis that holds the batch")
    if not x.shape or index.size and not (-x.shape[0] <= index.min() and index.max() < x.shape[0]):
        raise node.error(f"gathers positions outside the {x.shape[0] if x.shape else 0:,} of axis 0")
    node.placed = FREE
    return L.IndexSelect(1, int(index.shape[0]))


def _strided(node: Node, x, index: np.ndarray):
    """torch.export's ``as_strided`` as its exporter writes it: the tensor flattened to one axis, batch
    included, and a Gather of flat positions computed from the batch size (ConvNeXt's head, after its
    LayerNorm2d's permutes). Read where each sample's positions are its own values in their order, so the
    gather only views the sample in a new shape: a reshape. Any other order is refused."""
    where = placement(x)
    per_sample = int(np.prod(x.shape, dtype=np.int64))
    flat = len(x.shape) == 1 and (where == FREE or (where[0] == 0 and where[1] == 1 and where[2] == per_sample))
    if not flat or node.int("axis", 0) not in (0, -1) or index.ndim < 2 or index.dtype.kind not in "iu":
        raise Unsupported("Gather with several indices")
    if index.shape[0] != node.batch or int(np.prod(index.shape[1:], dtype=np.int64)) != per_sample:
        raise refuse(node, f"gathers {'x'.join(map(str, index.shape))} flat positions from a tensor of "
                           f"{node.batch} x {per_sample:,} values, not one sample's values for each sample")
    offsets = np.arange(node.batch, dtype=np.int64).reshape(-1, *[1] * (index.ndim - 1)) * per_sample
    if not np.array_equal(index - offsets, np.broadcast_to(np.arange(per_sample).reshape(index.shape[1:]),
                                                           index.shape)):
        raise refuse(node, "gathers flat positions that reorder a sample's values (an as_strided that is no "
                           "view of the sample in a new shape); convcalc reads such a Gather only as a reshape")
    node.placed = PLAIN
    return L.Reshape(tuple(int(n) for n in index.shape[1:]))


def _index_select(node: Node, x, index: np.ndarray):
    """A Gather of a list of positions along one axis (Swin V2's bias gathered by its relative-position index):
    torch.index_select along that axis, which the batch may not be."""
    where = placement(x)
    axis = node.int("axis", 0)
    ndim = len(x.shape) + (where == PLAIN)
    if not -ndim <= axis < ndim:
        raise node.error(f"gathers along axis {axis} of a tensor of {ndim} axes")
    at = axis % ndim - (where == PLAIN)  # the per-sample axis
    if at < 0:
        raise refuse(node, "gathers along the axis that holds the batch")
    if index.dtype.kind not in "iu" or index.size and not (-x.shape[at] <= index.min() and
                                                           index.max() < x.shape[at]):
        raise node.error(f"gathers positions outside the {x.shape[at]:,} of axis {axis}")
    node.placed = where
    return L.IndexSelect(at + 1, int(index.size))


def _blocks(node: Node, x, index: np.ndarray):
    """A Gather of a table of positions along one axis that is not the batch's: the positions it names, in
    the table's shape. Both exporters write ``F.unfold`` (im2col) as a Pad, a Gather of the height's
    sliding windows (kernel x blocks positions), one of the width's, a Transpose and a Reshape; each Gather
    is an IndexSelect of all its positions, reshaped to the table's axes (no arithmetic, as im2col has
    none)."""
    where = placement(x)
    ndim = len(x.shape) + (where[1] * where[2] == 1 and where != FREE)
    axis = node.int("axis", 0)
    if not -ndim <= axis < ndim:
        raise node.error(f"gathers along axis {axis} of a tensor of {ndim} axes")
    axis %= ndim
    at = dim(node, x, axis) - 1  # the per-sample axis; the batch's is refused
    if index.dtype.kind not in "iu" or index.size and not (-x.shape[at] <= index.min() and index.max() < x.shape[at]):
        raise node.error(f"gathers positions outside the {x.shape[at]:,} of axis {axis}")
    node.placed = where if where in (PLAIN, FREE) or where[0] < axis else \
        shifted(where, added=range(axis + 1, axis + index.ndim))
    shape = (*x.shape[:at], *(int(n) for n in index.shape), *x.shape[at + 1:])
    return [(L.IndexSelect(at + 1, int(index.size)), [x]), (L.Reshape(shape), None)]
