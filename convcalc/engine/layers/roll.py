"""``torch.roll``: a cyclic shift of some axes (Swin's shifted windows)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..windows import IDENTITY, Cyclic
from .base import Figures, Layer, Shape, Use, format_tuple
from .kind import spell
from .layout import batch_dim


@dataclass(frozen=True)
class Roll(Layer):
    """``torch.roll(x, shifts, dims)``: each axis in ``dims`` (batch counted) shifted cyclically by
    its shift, so output position i holds input position (i - shift) mod n. No arithmetic; a new
    tensor, as PyTorch makes one.

    >>> fig = Roll((-3, -3), (1, 2)).infer((56, 56, 96))
    >>> fig.output_shape, fig.flops
    ((56, 56, 96), 0)
    """

    spellings = (spell("roll", fields=("shifts", "dims"), positional=("shifts", "dims"), required=("shifts", "dims")),)

    shifts: tuple[int, ...]
    dims: tuple[int, ...]

    def _axes(self, shape: Shape) -> dict[int, int]:
        shifts, dims = tuple(self.shifts), tuple(self.dims)
        if len(shifts) != len(dims) or not dims:
            raise ShapeError(f"roll needs one shift per dim: shifts={format_tuple(shifts)}, dims={format_tuple(dims)}",
                             hint="e.g. roll:-3x-3,1x2 (rolling the flattened tensor mixes the samples)", field="dims")
        axes: dict[int, int] = {}
        for dim, shift in zip(dims, shifts):
            axis = batch_dim(dim, shape, "dims")
            axes[axis] = (axes.get(axis, 0) + shift) % max(shape[axis], 1)
        return axes

    def infer(self, shape: Shape) -> Figures:
        axes = self._axes(shape)
        windows = tuple(Cyclic(shape[a + 1], axes[a + 1]) if a + 1 in axes else IDENTITY for a in range(len(shape) - 1))
        return Figures("Roll", tuple(shape), windows=windows, axis0=Cyclic(shape[0], axes[0]) if 0 in axes else None,
                       summary="shift " + ", ".join(f"dim {d} by {s}" for d, s in zip(self.dims, self.shifts)))

    def saved(self, use: Use) -> list | None:
        return []  # its gradient is the opposite roll

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.roll(x, tuple(self.shifts), tuple(self.dims))
