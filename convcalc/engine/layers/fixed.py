"""What a forward pass makes without its input: a fixed tensor (``Constant``), and values gathered
along an axis by a fixed index (``IndexSelect``), as Swin V2's position-bias MLP reads its table of
relative coordinates and gathers the bias it gives for each pair of positions."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..sizes import volume
from ..windows import IDENTITY, Global, Unread
from .base import Figures, Layer, Shape, Use, format_shape
from .kind import spell
from .layout import batch_dim


@dataclass(frozen=True)
class Constant(Layer):
    """A tensor of ``shape`` (per sample) that the forward pass makes without reading its input: a
    buffer, or a table of fixed values. The input is its source only so that it sits in the graph: no
    output value depends on any input value. PyTorch makes it once per forward pass; a reader marks
    it and the layers computed from it ``once``, so they are counted once, whatever the batch.
    ``learned``: its values are parameters (counted, and given a gradient in training), as the product
    of a weight and a fixed table that torch.export's ONNX files store in place of the product.
    ``buffer``: its values are a buffer the model holds (Swin V2's table of coordinates), whose
    storage is no activation, as ``learned`` values' is not.

    >>> Constant((1, 15, 15, 2)).infer((3, 256, 256)).output_shape
    (1, 15, 15, 2)
    >>> Constant((1, 15, 15, 512), learned=True).infer((3, 256, 256)).params
    115200
    """

    spellings = (spell("constant", "Constant", fields=("shape", "learned", "buffer"), positional=("shape",),
                       required=("shape",)),)

    shape: tuple[int, ...]
    learned: bool = False
    buffer: bool = False

    def infer(self, shape: Shape) -> Figures:
        wanted = tuple(self.shape)
        if any(n < 0 for n in wanted):
            raise ShapeError(f"shape={format_shape(wanted)} has a negative size", hint="give sizes of 0 or more",
                             field="shape")
        windows = (Unread(),) * (len(shape) - 1)  # what follows has empty fields until it joins the input's
        params = volume(wanted) if self.learned else 0
        return Figures("Constant", wanted, params, windows=windows, dims=(None,) * len(wanted),
                       summary=format_shape(wanted) + (", learned" if self.learned else ""),
                       tensors=(("weight", params),) if self.learned else ())

    def storage(self, training: bool, contiguous: bool) -> str:
        return "held" if self.learned or self.buffer else "new"  # the model's own storage

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.between(-1.0, 1.0, (x.shape[0], *self.shape))  # its values are the model's


@dataclass(frozen=True)
class IndexSelect(Layer):
    """``torch.index_select(x, dim, index)`` with an index of ``size`` entries (also ``x[index]``, ATen's
    ``index`` with one index tensor): the values at those positions along ``dim`` (batch counted). The
    index's values are the model's, so each output may read any position along ``dim``. No arithmetic.

    >>> IndexSelect(1, 4096).infer((225, 3)).output_shape
    (4096, 3)
    """

    spellings = (spell("indexselect", "IndexSelect", "index_select", fields=("dim", "size"), positional=("dim", "size"),
                       required=("dim", "size")),)

    dim: int
    size: int

    def _axis(self, shape: Shape) -> int:
        axis = batch_dim(self.dim, shape)
        if self.size < 0:
            raise ShapeError(f"size={self.size}: an index has 0 or more entries", hint="e.g. size=4096",
                             field="size")
        if self.size and not shape[axis]:
            raise ShapeError(f"index out of range in self: dim {self.dim} of {format_shape(shape)} is empty",
                             hint="index an axis that has positions", field="dim")
        return axis

    def infer(self, shape: Shape) -> Figures:
        axis = self._axis(shape)
        output = shape[:axis] + (self.size,) + shape[axis + 1:]
        windows = tuple(Global(n) if a + 1 == axis else IDENTITY for a, n in enumerate(shape[1:]))
        return Figures("IndexSelect", output, windows=windows, summary=f"dim={self.dim}, {self.size:,} entries",
                       mixes_channels=axis == 0)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def saved(self, use: Use) -> list | None:
        return []  # the index only, which is the model's (a buffer, as Swin's)

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        axis = self._axis(x.shape[1:]) + 1
        index = run.rng.integers(0, max(x.shape[axis], 1), self.size)  # the model's index is not known
        return lambda x: x.take(index, axis=axis)

