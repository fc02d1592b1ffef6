"""Whole batches joined along the batch's axis, and split back.

RAFT runs both frames through one feature encoder: ``torch.cat([image1, image2], dim=0)`` makes a
batch of ``2 * batch``, whose features are split back into the two frames. Both exporters write a
Concat along axis 0 and a Split of it. Per sample, convcalc reads the join as the parts stacked on a
new axis (``Unsqueeze`` each, then ``Concat``), as the PyTorch reader does: the file's axis 0 holds the
batch with the parts outside it (``outer``: part i of sample b at ``i * batch + b``), so the layers
between run on slices, and a reshape that moves that axis knows its order (``batch.reshaped``). Each
piece of the split is the part it selects (one part: the batch alone on axis 0 again) or the parts.
"""

from __future__ import annotations

from ...engine import layers as L
from .batch import PLAIN, placement, rank, refuse


def _parts(act) -> int | None:
    """How many whole batches ``act``'s axis 0 holds, one after another: 1 with the batch alone there,
    the parts of a join, None where the batch sits otherwise."""
    where = placement(act)
    if where == PLAIN:
        return 1
    axis, outer, inner = where
    return outer if axis == 0 and inner == 1 else None


def joins_batches(node, acts, axis: int) -> bool:
    """Whether a Concat of ``acts`` along ``axis`` joins whole batches along the batch's axis."""
    return bool(acts) and len({rank(a) for a in acts}) == 1 and axis % rank(acts[0]) == 0 and \
        all(_parts(a) is not None for a in acts)


def join(node, acts):
    """The layers of a join of whole batches: each sample's parts stacked on a new axis 0 (a part that
    already joins several keeps them), the batch then on the file's axis 0 with the parts outside it."""
    specs, reads = [], []
    for act in acts:
        if placement(act) == PLAIN:
            specs.append((L.Unsqueeze(1), [act]))
            reads.append(len(specs) - 1)
        else:
            reads.append(act)
    specs.append((L.Concat(1), reads))
    node.placed = (0, sum(_parts(a) for a in acts), 1)
    node.reader.joined = True  # its later reshapes may fit this batch only: the graph is read at another
    return specs


def split_parts(node, x, sizes):
    """Each piece of a split of a join along the batch's axis (``sizes``: the file's lengths, whole
    batches each): the part it selects, the batch alone on axis 0 again (``Select``), or the parts
    (``Slice``); as (spec, placement) per piece. None where ``x`` joins no batches along axis 0."""
    parts = _parts(x)
    if parts is None or parts == 1:
        return None
    batch = node.batch
    if any(n <= 0 or n % batch for n in sizes) or sum(sizes) != parts * batch:
        raise refuse(node, f"splits an axis of {parts} joined batches of {batch} into pieces of "
                           f"{', '.join(map(str, sizes[:8]))}, which are not whole batches")
    pieces, start = [], 0
    for n in sizes:
        count = n // batch
        if count == 1:
            pieces.append((L.Select(1, start), PLAIN))
        else:
            pieces.append((L.Slice(1, start, start + count), (0, count, 1)))
        start += count
    return pieces


def slice_parts(node, x, axes, starts, ends, steps):
    """A Slice of a join along the batch's axis that keeps whole batches (RAFT's chunk back into the two
    frames, as the TorchScript exporter writes it): (spec, placement) as for a split's piece. None where
    ``x`` joins no batches along axis 0."""
    parts = _parts(x)
    if parts is None or parts == 1:
        return None
    if len(axes) != 1 or steps[0] != 1:
        raise refuse(node, "slices a join of whole batches along other axes too, or with a step")
    total = parts * node.batch
    start, end = (max(0, min(n + total if n < 0 else n, total)) for n in (starts[0], ends[0]))
    if start % node.batch or end % node.batch or end <= start:
        raise refuse(node, f"slices {starts[0]}:{ends[0]} of an axis of {parts} joined batches of {node.batch}, "
                           "which is not whole batches")
    return split_parts(node, x, [n for n in (start, end - start, total - end) if n])[1 if start else 0]


def split_sizes(node, outputs, n: int) -> list[int]:
    """The lengths a Split cuts an axis of ``n`` into: its 'split' attribute or input, else equal pieces,
    the last smaller (torch.chunk's and ONNX's rule)."""
    sizes = node.ints("split", minimum=0)
    if sizes is None:
        sizes = node.const_ints(1, "split")
    if sizes is None:
        size = -(-n // len(outputs))
        return [max(0, min(size, n - k * size)) for k in range(len(outputs))]
    if len(sizes) != len(outputs) or sum(sizes) != n or min(sizes, default=0) < 0:
        raise node.error(f"splits an axis of {n} into {len(sizes):,} sizes adding up to {sum(sizes):,} "
                         f"for {len(outputs):,} outputs")
    return list(sizes)
