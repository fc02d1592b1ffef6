"""Whole batches joined along the batch's axis, and split back.

RAFT runs both frames through one feature encoder: ``torch.cat([image1, image2], dim=0)`` makes a
batch of ``2 * batch``, whose features are chunked back into the two frames. Per sample, convcalc reads
the join as the two frames stacked on a new axis 0 (``Unsqueeze`` each, then ``Concat``), which the
layers between run on as slices, and each piece of the split as the frame it selects. The merged axis
holds the batch as its inner factor (``Layout.inner``): operations that reshape, move or index that
axis would read it in another order, so they are not read (not counted) rather than guessed.
"""

from __future__ import annotations

from dataclasses import replace

from ...engine import layers as L
from .values import Act, Layout, Unsupported

# operations that rearrange or index the axis holding the batch: on a join along it they would need
# its order (the moves' reader assumes the batch-major one a reshape makes)
_REARRANGING = {"view", "reshape", "_unsafe_view", "_reshape_alias", "view_as", "reshape_as", "unflatten", "flatten",
                "permute", "transpose", "swapaxes", "roll", "index", "index_select", "repeat", "expand", "expand_as",
                "slice", "narrow", "select", "slice_scatter", "cat", "concat", "einsum", "matmul", "bmm"}


def joins_batches(op: str, args: dict, layout: Layout) -> bool:
    """Whether ``cat`` joins whole batches along the batch's axis (its result holds several)."""
    if op not in ("cat", "concat") or not layout.merged or layout.axis != 0:
        return False
    tensors = args.get("tensors") or ()
    return bool(tensors) and all(isinstance(t, Act) and t.layout.leading and len(t.layout.per_sample_axes()) ==
                                 layout.rank - 1 for t in tensors) and int(args.get("dim", 0)) % layout.rank == 0


def stack(node, tensors, dim: int, expect, layout: Layout, add, name: str) -> Act:
    """The layers of ``torch.stack(tensors, dim)`` of batch-first tensors, or of a join of whole batches
    (``dim`` 0 of a cat): each sample's parts on a new axis (``Unsqueeze`` each, then ``Concat``). A
    stack along the batch's own axis puts theirs first, the batch after it: per sample, axis 0 too."""
    rank = len(tensors[0].shape) + 1
    axis = max(dim % (rank + 1), 1)  # the new axis, batch first
    parts = []
    for index, tensor in enumerate(tensors):
        shape = tensor.shape[:axis - 1] + (1,) + tensor.shape[axis - 1:]
        parts.append(add(L.Unsqueeze(axis), node, [tensor.ref], (), shape, Layout(0, len(shape) + 1),
                         name=f"{name}.{index}"))
    return add(L.Concat(axis), node, [p.ref for p in parts], (), expect, layout)


def stacks(op: str, args: dict) -> bool:
    """Whether ``op`` is a stack of batch-first tensors of one shape."""
    tensors = args.get("tensors") or ()
    return op == "stack" and bool(tensors) and all(isinstance(t, Act) and t.layout.leading for t in tensors) and \
        len({t.shape for t in tensors}) == 1


def keep_order(op: str, acts: list, layout: Layout) -> Layout:
    """The result's layout with the order of its merged axis: a join's when it reads one (refused where
    the operation would rearrange that axis), else as traced."""
    joins = [a for a in acts if a.layout.inner]
    if not joins:
        return layout
    others = [a for a in acts if a.layout.merged and not a.layout.inner and not a.layout.fixed]
    if op in _REARRANGING or others or not layout.merged or layout.axis != 0:
        raise Unsupported(f"{op} of a tensor whose batch axis joins several batches")
    return replace(layout, inner=True)


def piece_of_join(source: Act, sizes: list[int], index: int, dim: int):
    """Piece ``index`` of a split of a join along the batch's axis, given every piece's size per sample
    (``sizes``): the part it selects (size 1, the batch's axis alone again) or the parts (several)."""
    if not source.layout.inner or dim % source.layout.rank != source.layout.axis:
        return None
    start = sum(sizes[:index])
    if sizes[index] == 1:
        return L.Select(1, start)
    return L.Slice(1, start, start + sizes[index])

