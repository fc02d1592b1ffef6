"""Batch-first operators on a tensor whose batch is merged with another size (MViT's pooling
convolution on ``(batch * heads, C, T, H, W)``): convcalc's layer runs on slices (``slices.py``)."""

from __future__ import annotations

from dataclasses import replace

from .values import LEADING, Act, Call, Layout


def slices_read(acts: list[Act], out: Layout) -> int:
    """How many slices of each sample a batch-first operator reading ``acts`` runs on: the size merged
    with the batch on axis 0, read and made alike; 1 where the batch leads alone (or is elsewhere)."""
    if len(acts) != 1:
        return 1
    layout = acts[0].layout
    if layout.axis == 0 and layout.merged and not layout.fixed and out.axis == 0 and out.merged:
        return acts[0].shape[0]
    return 1


def one_slice(call: Call, slices: int) -> Call:
    """The call as one slice sees it: every activation without its axis 0, batch first alone."""
    args = {name: Act(v.ref, v.shape[1:]) if isinstance(v, Act) else v for name, v in call.args.items()}
    return replace(call, args=args, out=call.out[1:], out_layout=LEADING)


def with_slices(shape: tuple[int, ...], slices: int) -> tuple[int, ...]:
    """A slice's shape back as the layer receives it."""
    return (slices, *shape) if slices != 1 else shape
