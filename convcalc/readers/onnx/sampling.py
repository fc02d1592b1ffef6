"""ONNX's GridSample (opset 16 on) as convcalc's ``GridSample`` kind.

Opset 16 names the modes as PyTorch does (bilinear, nearest, bicubic) for 4-D inputs; opset 20
renames them linear, nearest and cubic and allows any number of spatial axes. Each maps onto
PyTorch's ``F.grid_sample``: linear is bilinear (trilinear on 3 spatial axes, as PyTorch's bilinear
is on a 5-D input), cubic is bicubic with the same a = -0.75 and per-tap padding, and nearest picks
one input value (ONNX and PyTorch both round halves to even). padding_mode and align_corners mean
the same in both. What PyTorch cannot run (cubic on 3 spatial axes, other than 2 or 3 spatial axes)
is refused by the kind, naming the node.

RAFT samples its correlation volume ``(batch * h * w, 1, H, W)`` at a grid ``(batch * h * w, 9, 9,
2)``: both with the batch merged with the h * w positions on axis 0, which the kind reads as leading
axes, per sample. Its first lookup's grid is fixed (the coordinate grid, repeated over the batch):
a ``Constant`` layer of one sample's grid, as the PyTorch reader reads it.
"""

from __future__ import annotations

from ...engine import layers as L
from ..pytorch.values import Act
from .batch import FREE, PLAIN, alone, per_sample, placement, rank, refuse, same_placement

# ONNX's mode names, by the opset that defines them, as PyTorch's
_MODES_16 = {"bilinear": "bilinear", "nearest": "nearest", "bicubic": "bicubic"}
_MODES_20 = {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"}
_PADDING = ("zeros", "border", "reflection")


def grid_sample(node):
    if node.opset < 16:
        raise node.error(f"is not an operator of opset {node.opset}: GridSample is defined from opset 16",
                         hint="export with opset_version=16 or later")
    modes = _MODES_20 if node.opset >= 20 else _MODES_16
    mode = node.string("mode", "linear" if node.opset >= 20 else "bilinear", choices=tuple(modes))
    padding = node.string("padding_mode", "zeros", choices=_PADDING)
    align = node.int("align_corners", 0)
    if align not in (0, 1):
        raise node.error(f"attribute 'align_corners' is {align}, not 0 or 1")
    spec = L.GridSample(mode=modes[mode], padding_mode=padding, align_corners=bool(align))
    x = node.act(0, moved=True)
    grid = node.inputs[1] if len(node.inputs) > 1 else None
    if grid is None:
        raise node.error("has no input 1 (grid), which the operator requires")
    if node.opset < 20 and rank(x) != 4:  # opset 16 defines 4-D tensors only
        raise node.error("reads an input that is not 4-D, which opset 16's GridSample does not define "
                         "(opset 20 allows any number of spatial axes)", hint="export with opset_version=20")
    if isinstance(grid, Act):
        acts = [x, node.act(1, moved=True)]
        node.placed = _leading(node, same_placement(node, acts))
        return [(spec, acts)]
    where = node.placed = _leading(node, placement(x))
    shape = _fixed_grid(node, grid.array, where)
    return [(L.Constant(shape), [node.reader.source]), (spec, [x, 0])]


def _leading(node, where):
    """The inputs' placement, where the kind can read it: the batch alone first, or merged with other
    sizes on axis 0 (those sizes then lead both inputs, per sample)."""
    if where == PLAIN or (where[0] == 0 and not alone(where)):
        return where
    if where == FREE:
        return where
    raise refuse(node, f"reads tensors whose batch is on axis {where[0]}; GridSample reads it on axis 0")


def _fixed_grid(node, array, where) -> tuple[int, ...]:
    """One sample's shape of a grid of fixed values the file repeats over the batch (RAFT's first lookup,
    at the coordinate grid): refused where the copies differ, as then the grid is no one sample's."""
    if array.dtype.kind != "f" or array.ndim < 3:
        raise node.error(f"input 1 (grid) is a fixed tensor of shape {'x'.join(map(str, array.shape))}, "
                         "not a grid of coordinates")
    if where == FREE:
        return tuple(int(n) for n in array.shape)
    _, outer, inner = where
    batch = node.batch
    if array.shape[0] != outer * batch * inner:
        raise refuse(node, f"reads a fixed grid of {array.shape[0]} along axis 0, where the input holds "
                           f"{outer * batch * inner}")
    copies = array.reshape(outer, batch, inner, *array.shape[1:])
    if batch > 1 and not (copies == copies[:, :1]).all():
        raise refuse(node, "reads a fixed grid whose values differ between samples")
    return per_sample(array.shape, where, batch)
