"""Pieces of an axis: slice, narrow, chunk, split and select, and a slice written back (dims count the
batch axis)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..windows import IDENTITY, Global, Shift, Sliding
from .base import Figures, Layer, Shape, Use, format_shape, format_tuple
from .kind import spell
from .layout import batch_dim
from .merge import Merge


class _Piece(Layer):
    """A piece of an axis: a view of the input (no longer contiguous), for which autograd saves nothing."""

    def storage(self, training: bool, contiguous: bool) -> str:
        return "scattered"

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        axis, start, length, step = self.locate(x.shape[1:])
        index = [slice(None)] * x.ndim
        index[axis + 1] = slice(start, start + (length - 1) * step + 1 if length else start, step)
        return lambda x: x[tuple(index)]  # a view, as in PyTorch


@dataclass(frozen=True)
class Slice(_Piece):
    """One piece of an axis: ``x[..., start:end:step]`` (``narrow``, ``chunk``, ``split`` and
    ``select`` are written in its terms by their own kinds).

    >>> Slice(1, 0, 58).infer((116, 28, 28)).output_shape
    (58, 28, 28)
    """

    spellings = (spell("slice", fields=("dim", "start", "end", "step"), positional=("dim", "start", "end", "step"),
                       required=("dim",)),)

    dim: int
    start: int | None = None
    end: int | None = None
    step: int = 1

    def piece(self, n: int) -> tuple[int, int, int]:
        """(start, length, step) of the slice on an axis of ``n``, clamped as Python slices are."""
        if self.step < 1:
            raise ShapeError(f"slice step must be positive (got {self.step})", hint="use step=1 or more",
                             field="step")
        start, end, step = slice(self.start, self.end, self.step).indices(n)
        return start, max(0, -(-(end - start) // step)), step

    def locate(self, shape: Shape) -> tuple[int, int, int, int]:
        """(axis, start, length, step) of the piece in a per-sample ``shape``."""
        axis = batch_dim(self.dim, shape)
        return (axis, *self.piece(shape[axis]))

    def infer(self, shape: Shape) -> Figures:
        axis, start, length, step = self.locate(shape)
        return _piece("Slice", shape, axis, start, length, step, f"dim {self.dim}: {start}+{length}")


def _piece(type_name: str, shape: Shape, axis: int, start: int, length: int, step: int = 1,
           summary: str = "") -> Figures:
    output = shape[:axis] + (length,) + shape[axis + 1:]
    windows = tuple(Sliding(1, step, -start) if a + 1 == axis else IDENTITY for a in range(len(shape) - 1))
    return Figures(type_name, output, windows=windows, summary=summary,
                   axis0=Sliding(1, step, -start) if axis == 0 else None)


@dataclass(frozen=True)
class Narrow(_Piece):
    """``torch.narrow``: ``length`` units from ``start`` along ``dim``.

    >>> Narrow(2, 1, 5).infer((3, 8, 8)).output_shape
    (3, 5, 8)
    """

    spellings = (spell("narrow", fields=("dim", "start", "length"), positional=("dim", "start", "length"),
                       required=("dim", "start", "length")),)

    dim: int
    start: int
    length: int

    def locate(self, shape: Shape) -> tuple[int, int, int, int]:
        """(axis, start, length, step) of the piece in a per-sample ``shape``."""
        axis = batch_dim(self.dim, shape)
        n = shape[axis]
        if not -n <= self.start <= n:
            raise ShapeError(f"start ({self.start}) out of range for an axis of {n}", hint=f"use 0..{n}",
                             field="start")
        start = self.start % n if n and self.start < 0 else self.start
        if self.length < 0 or start + self.length > n:
            raise ShapeError(f"start ({start}) + length ({self.length}) exceeds dimension size ({n})",
                             hint="use a shorter length or an earlier start", field="length")
        return axis, start, self.length, 1

    def infer(self, shape: Shape) -> Figures:
        axis, start, length, _ = self.locate(shape)
        return _piece("Narrow", shape, axis, start, length, 1, f"dim {self.dim}: {start}+{length}")


@dataclass(frozen=True)
class Chunk(_Piece):
    """Piece ``index`` of ``torch.chunk(x, chunks, dim)``: chunks of ceil(n / chunks) units.

    >>> Chunk(2, 1, 1).infer((116, 28, 28)).output_shape
    (58, 28, 28)
    """

    spellings = (spell("chunk", fields=("chunks", "dim", "index"), positional=("chunks", "dim", "index"),
                       required=("chunks",)),)

    chunks: int
    dim: int = 0
    index: int = 0

    def locate(self, shape: Shape) -> tuple[int, int, int, int]:
        """(axis, start, length, step) of the piece in a per-sample ``shape``."""
        if self.chunks < 1:
            raise ShapeError(f"chunk expects `chunks` to be greater than 0, got: {self.chunks}",
                             hint="e.g. chunks=2", field="chunks")
        axis = batch_dim(self.dim, shape)
        n = shape[axis]
        size = -(-n // self.chunks)
        # an empty axis gives `chunks` empty pieces, as ATen's chunk does
        return _indexed(shape, axis, _regular(n, size, None if n else self.chunks), self.index)

    def infer(self, shape: Shape) -> Figures:
        axis, start, length, _ = self.locate(shape)
        return _piece("Chunk", shape, axis, start, length, 1, f"{self.chunks} chunks [{self.index}]")


@dataclass(frozen=True)
class Split(_Piece):
    """Piece ``index`` of ``torch.split(x, split_size_or_sections, dim)``.

    >>> Split((16, 48), 1, 1).infer((64, 8, 8)).output_shape
    (48, 8, 8)
    """

    spellings = (spell("split", fields=("split_size_or_sections", "dim", "index"),
                       positional=("split_size_or_sections", "dim", "index"), required=("split_size_or_sections",)),)

    split_size_or_sections: int | tuple[int, ...]
    dim: int = 0
    index: int = 0

    def locate(self, shape: Shape) -> tuple[int, int, int, int]:
        """(axis, start, length, step) of the piece in a per-sample ``shape``."""
        axis = batch_dim(self.dim, shape)
        n = shape[axis]
        sizes = self.split_size_or_sections
        if isinstance(sizes, int):
            if sizes < 1:
                raise ShapeError(f"split expects split_size be non-negative, but got split_size={sizes}",
                                 hint="give a positive size", field="split_size_or_sections")
            pieces = _regular(n, sizes)
        else:
            if sum(sizes) != n or any(s < 0 for s in sizes):
                raise ShapeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                                 f"at dimension {self.dim}), but got split_sizes={list(sizes)}",
                                 hint="make the sections add up to the axis", field="split_size_or_sections")
            pieces = _Sections(sizes)
        return _indexed(shape, axis, pieces, self.index)

    def infer(self, shape: Shape) -> Figures:
        axis, start, length, _ = self.locate(shape)
        return _piece("Split", shape, axis, start, length, 1,
                      f"{format_tuple(self.split_size_or_sections)} [{self.index}]")


class _regular:
    """The pieces of ``size`` units an axis of ``n`` splits into (the last may be shorter), as a
    sequence computed piece by piece: an axis of 2^62 units in pieces of one is not a list."""

    def __init__(self, n: int, size: int, count: int | None = None) -> None:
        self.n, self.size = n, size
        self.count = count if count is not None else -(-n // size) if size and n else 1

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> tuple[int, int]:
        start = k * self.size
        return start, max(min(self.size, self.n - start), 0)


class _Sections:
    """Given sections (which add up to the axis): piece k starts after the ones before it."""

    def __init__(self, sizes) -> None:
        self.sizes = sizes

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, k: int) -> tuple[int, int]:
        return sum(self.sizes[:k]), self.sizes[k]


def _indexed(shape: Shape, axis: int, pieces, index: int) -> tuple[int, int, int, int]:
    if not 0 <= index < len(pieces):
        raise ShapeError(f"the axis of {shape[axis]} gives {len(pieces)} piece(s); index {index} is out of range",
                         hint=f"use index 0..{len(pieces) - 1}", field="index")
    start, length = pieces[index]
    return axis, start, length, 1


@dataclass(frozen=True)
class Select(_Piece):
    """``x.select(dim, index)`` (``x[:, i]``): one unit of an axis, which disappears.

    >>> Select(1, 0).infer((3, 8, 8)).output_shape
    (8, 8)
    """

    spellings = (spell("select", fields=("dim", "index"), positional=("dim", "index"), required=("dim", "index")),)

    dim: int
    index: int

    def infer(self, shape: Shape) -> Figures:
        axis = batch_dim(self.dim, shape)
        n = shape[axis]
        if not -n <= self.index < n:
            raise ShapeError(f"select(): index {self.index} out of range for tensor of size {n} at dimension "
                             f"{self.dim}", hint=f"use an index in {-n}..{n - 1}", field="index")
        index = self.index % n
        dims = tuple(a for a in range(len(shape)) if a != axis)
        windows = tuple(Shift(-index) if a + 1 == axis else IDENTITY for a in range(len(shape) - 1))
        return Figures("Select", tuple(shape[a] for a in dims), windows=windows, summary=f"dim {self.dim}[{index}]",
                       dims=dims, axis0=Shift(-index) if axis == 0 else None)

    def prepare(self, run, x):
        axis = batch_dim(self.dim, x.shape[1:])
        index = (slice(None),) * (axis + 1) + (self.index % x.shape[axis + 1],)
        return lambda x: x[index]


@dataclass(frozen=True)
class SliceScatter(Merge):
    """``torch.slice_scatter(input, src, dim, start, end, step)``: the first branch with the slice
    ``[start:end:step]`` along ``dim`` replaced by the second (of the slice's shape), as PyTorch
    writes ``attn[:, :, 1:, 1:] += bias`` (MViT's relative positions) into a view of ``attn``.
    ``inplace``: that write, into the first branch's storage. Copies only: no FLOPs.

    >>> SliceScatter(2, 1).merge(((2, 9, 9), (2, 8, 9))).output_shape
    (2, 9, 9)
    """

    spellings = (spell("slice_scatter", fields=("dim", "start", "end", "step", "inplace"),
                       positional=("dim", "start", "end", "step"), required=("dim",)),)

    dim: int
    start: int | None = None
    end: int | None = None
    step: int = 1
    inplace: bool = False

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        if len(shapes) != 2:
            raise ShapeError(f"slice_scatter reads two branches, the tensor and the slice written into it, but "
                             f"receives {len(shapes)}", hint='name both, e.g. "from": ["attn", "bias"]', field="from")
        first, src = shapes
        axis, start, length, step = Slice(self.dim, self.start, self.end, self.step).locate(first)
        piece = first[:axis] + (length,) + first[axis + 1:]
        if tuple(src) != piece:
            raise ShapeError(f"slice_scatter writes {format_shape(src)} where the slice along dim {self.dim} is "
                             f"{format_shape(piece)}", hint="give a second branch of the slice's shape", field="from")
        # the written axis is read whole (an upper bound, as concat along a spatial axis)
        windows = tuple(Global(first[a + 1]) if a + 1 == axis else IDENTITY for a in range(len(first) - 1))
        return Figures("SliceScatter", tuple(first), windows=windows if axis else None,
                       axis0=Global(first[0]) if axis == 0 else None,
                       summary=f"dim {self.dim}: {start}+{length}" + (f" step {step}" if step != 1 else ""))

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if self.inplace else "new"

    def saved(self, use: Use) -> list | None:
        return []  # the gradients are a slice of the output's and the rest of it

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0

    def prepare(self, run, x):
        axis, start, length, step = Slice(self.dim, self.start, self.end, self.step).locate(x.shape[1:])
        index = [slice(None)] * x.ndim
        index[axis + 1] = slice(start, start + (length - 1) * step + 1 if length else start, step)

        def write(base, src):
            out = base if self.inplace else base.copy()
            out[tuple(index)] = src
            return out

        return write
