"""Layers that move data without computing on it: permute, transpose, reshape, squeeze,
channel and pixel shuffles, slices (narrow, chunk, split, select), and reductions
(mean and sum over axes).

Dimensions count the batch axis, as in PyTorch (1 is the channels of a
channels-first tensor); a layer that would move, merge or reduce the batch axis
is refused, since convcalc keeps the batch apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BatchAxisError, ShapeError, SpecError
from ..windows import IDENTITY, Global, Nearest, Sliding
from ..sizes import volume
from .base import Figures, Layer, Shape, Use, format_shape, format_tuple
from .kind import arg, spell


class _Moves(Layer):
    """A layer that only moves data: autograd saves nothing for it, and permutations and selections
    are views, as in PyTorch (a later layer that needs contiguous data copies it)."""

    def storage(self, training: bool, contiguous: bool) -> str:
        return "scattered"

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        figures = self.infer(x.shape[1:])
        if figures.dims is not None and len(figures.dims) == x.ndim - 1 and None not in figures.dims:
            return lambda x: x.transpose((0, *(d + 1 for d in figures.dims)))
        return lambda x: x.reshape((x.shape[0], *figures.output_shape))


def batch_dim(dim: int, shape: Shape, name: str = "dim", *, extra: int = 0) -> int:
    """``dim`` (batch counted, negative from the end) as an axis of the per-sample shape.

    >>> batch_dim(-1, (64, 7, 7)), batch_dim(1, (64, 7, 7))
    (2, 0)
    """
    ndim = len(shape) + 1 + extra
    if not isinstance(dim, int) or isinstance(dim, bool) or not -ndim <= dim < ndim:
        raise ShapeError(
            f"{name}={dim} is out of range for a {len(shape) + 1}-dimensional batch of {format_shape(shape)} "
            f"(expected to be in range of [{-ndim}, {ndim - 1}])",
            hint=f"use a dim between {-ndim} and {ndim - 1}", field=name)
    axis = dim % ndim - 1
    if axis < 0:
        raise BatchAxisError(f"{name}={dim} is the batch axis, which convcalc keeps apart",
                         hint="use dim=1 (channels) or a later axis", field=name)
    return axis


def _windows_keeping(shape: Shape, kept) -> tuple:
    """Identity for spatial axes that survive, Global for the ones merged away."""
    return tuple(IDENTITY if axis + 1 in kept else Global(n) for axis, n in enumerate(shape[1:]))


def reshape_dims(a: Shape, b: Shape) -> tuple[int | None, ...]:
    """For each axis of ``b``, the axis of ``a`` it continues unchanged under a reshape, or None.

    >>> reshape_dims((64, 7, 7), (4, 16, 7, 7)), reshape_dims((64, 7, 7), (3136,))
    ((None, None, 1, 2), (None,))
    """
    dims: list[int | None] = [None] * len(b)
    if 0 in a or 0 in b:
        return tuple(dims)
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            dims[j] = i
            i, j = i + 1, j + 1
            continue
        if b[j] == 1:
            j += 1
            continue
        if a[i] == 1:
            i += 1
            continue
        pa, pb = a[i], b[j]
        i, j = i + 1, j + 1
        while pa != pb and i <= len(a) and j <= len(b):
            if pa < pb:
                if i == len(a):
                    break
                pa, i = pa * a[i], i + 1
            else:
                if j == len(b):
                    break
                pb, j = pb * b[j], j + 1
    return tuple(dims)


def _layout(type_name: str, shape: Shape, output: Shape, dims, summary: str = "", notes=(), flat=False) -> Figures:
    kept = {d for d in dims if d is not None}
    return Figures(type_name, tuple(output), 0, 0, 0, _windows_keeping(shape, {d for d in kept}), tuple(notes),
                   summary, dims=tuple(dims), mixes_channels=0 not in kept, flat=flat)


@dataclass(frozen=True)
class Permute(_Moves):
    """``torch.permute`` / torchvision's ``Permute``: ``dims`` reorder every axis, batch first.

    >>> Permute((0, 2, 3, 1)).infer((96, 56, 56)).output_shape
    (56, 56, 96)
    """

    spellings = (spell("permute", fields=("dims",), positional=("dims",), required=("dims",)),)

    dims: tuple[int, ...]

    def infer(self, shape: Shape) -> Figures:
        ndim = len(shape) + 1
        if len(self.dims) != ndim:
            raise ShapeError(
                f"number of dimensions in the tensor input does not match the length of the desired ordering of "
                f"dimensions i.e. input.dim() = {ndim} is not equal to len(dims) = {len(self.dims)}",
                hint=f"give {ndim} dims, the batch axis 0 first", field="dims")
        order = [d % ndim if -ndim <= d < ndim else None for d in self.dims]
        if None in order or len(set(order)) != ndim:
            raise ShapeError(f"dims={format_tuple(self.dims)} is not a permutation of 0..{ndim - 1}",
                             hint="name every axis once", field="dims")
        if order[0] != 0:
            raise BatchAxisError("permute would move the batch axis, which convcalc keeps first",
                             hint="keep 0 first, e.g. dims=0x2x3x1", field="dims")
        dims = tuple(d - 1 for d in order[1:])
        output = tuple(shape[d] for d in dims)
        return _layout("Permute", shape, output, dims, "(" + ", ".join(map(str, order)) + ")")


@dataclass(frozen=True)
class Transpose(_Moves):
    """``torch.transpose``: swaps two axes (batch counted).

    >>> Transpose(1, 2).infer((4, 16, 7)).output_shape
    (16, 4, 7)
    """

    spellings = (spell("transpose", fields=("dim0", "dim1"), positional=("dim0", "dim1"), required=("dim0", "dim1")),)

    dim0: int
    dim1: int

    def infer(self, shape: Shape) -> Figures:
        a, b = batch_dim(self.dim0, shape, "dim0"), batch_dim(self.dim1, shape, "dim1")
        dims = list(range(len(shape)))
        dims[a], dims[b] = dims[b], dims[a]
        return _layout("Transpose", shape, tuple(shape[d] for d in dims), dims, f"{self.dim0}↔{self.dim1}")


@dataclass(frozen=True)
class Reshape(_Moves):
    """``view`` / ``reshape`` of one sample to ``shape`` (without the batch); one size may be -1.

    >>> Reshape((2, 32, -1)).infer((64, 7, 7)).output_shape
    (2, 32, 49)
    """

    spellings = (spell("reshape", "view", fields=("shape",), positional=("shape",), required=("shape",)),)

    shape: tuple[int, ...]

    def infer(self, shape: Shape) -> Figures:
        wanted = tuple(self.shape)
        total = volume(shape)
        if wanted.count(-1) > 1 or any(n < -1 for n in wanted):
            raise ShapeError(f"shape={format_tuple(wanted)}: only one size may be -1, and none below it",
                             hint="give the sizes, with at most one -1", field="shape")
        if -1 in wanted:
            known = volume(n for n in wanted if n != -1)
            if known == 0 or total % known:
                raise ShapeError(f"shape '{list(wanted)}' is invalid for input of size {total} "
                                 f"({format_shape(shape)} per sample)", hint="make the sizes divide the input's",
                                 field="shape")
            wanted = tuple(total // known if n == -1 else n for n in wanted)
        if volume(wanted) != total:
            raise ShapeError(f"shape '{list(wanted)}' is invalid for input of size {total} ({format_shape(shape)} "
                             "per sample)", hint="the sizes must multiply to the input's", field="shape")
        return _layout("Reshape", shape, wanted, reshape_dims(shape, wanted), format_shape(wanted), flat=True)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if contiguous else "new"  # a view where PyTorch's view rule allows, else a copy


@dataclass(frozen=True)
class Squeeze(_Moves):
    """``torch.squeeze``: removes size-1 axes (all, or those in ``dim``).

    >>> Squeeze().infer((512, 1, 1)).output_shape
    (512,)
    """

    spellings = (spell("squeeze", fields=("dim",), positional=("dim",)),)

    dim: int | tuple[int, ...] | None = None

    def infer(self, shape: Shape) -> Figures:
        notes = ()
        if self.dim is None:
            chosen = {a for a, n in enumerate(shape) if n == 1}
            notes = ("squeeze without dim also removes a batch axis of 1; convcalc keeps the batch",)
        else:
            dims = (self.dim,) if isinstance(self.dim, int) else tuple(self.dim)
            chosen = {a for a in (batch_dim(d, shape) for d in dims) if shape[a] == 1}
        dims = tuple(a for a in range(len(shape)) if a not in chosen)
        return _layout("Squeeze", shape, tuple(shape[a] for a in dims), dims, notes=notes)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view"


@dataclass(frozen=True)
class Unsqueeze(_Moves):
    """``torch.unsqueeze``: a new size-1 axis at ``dim`` (batch counted).

    >>> Unsqueeze(-1).infer((64,)).output_shape
    (64, 1)
    """

    spellings = (spell("unsqueeze", fields=("dim",), positional=("dim",), required=("dim",)),)

    dim: int

    def infer(self, shape: Shape) -> Figures:
        axis = batch_dim(self.dim, shape, extra=1)
        dims = tuple(range(axis)) + (None,) + tuple(range(axis, len(shape)))
        return _layout("Unsqueeze", shape, shape[:axis] + (1,) + shape[axis:], dims, f"dim={self.dim}")

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view"


@dataclass(frozen=True)
class ChannelShuffle(_Moves):
    """``torch.nn.ChannelShuffle`` (ShuffleNet): interleaves the channels of ``groups`` groups.

    >>> ChannelShuffle(2).infer((116, 28, 28)).output_shape
    (116, 28, 28)
    """

    spellings = (spell("channelshuffle", "shuffle", fields=("groups",), positional=("groups",), required=("groups",)),)

    groups: int

    def infer(self, shape: Shape) -> Figures:
        if len(shape) < 2:
            raise ShapeError(f"channel_shuffle expects input to have at least 3 dimensions, but got input with "
                             f"{len(shape) + 1} dimension(s)", hint="apply it to channels x positions", field="*")
        if self.groups < 1 or shape[0] % self.groups:
            raise ShapeError(f"Number of channels ({shape[0]}) must be divisible by groups ({self.groups})",
                             hint="use a group count that divides the channels", field="groups")
        return Figures("ChannelShuffle", shape, summary=f"{self.groups} groups")

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def prepare(self, run, x):
        return lambda x: run.F.channel_shuffle(x, self.groups)


def _pixel_shuffle(shape: Shape, r: int, unshuffle: bool) -> Figures:
    name, field = ("pixel_unshuffle", "downscale_factor") if unshuffle else ("pixel_shuffle", "upscale_factor")
    if len(shape) == 2 and r == 1:
        return Figures("PixelUnshuffle" if unshuffle else "PixelShuffle", shape, summary="×1")
    if len(shape) == 2:
        raise BatchAxisError(f"{name} of {format_shape(shape)} per sample takes the batch as its channels",
                             hint="give the input a channel axis", field="*")
    if len(shape) < 3:
        raise ShapeError(f"{name} expects input to have at least 3 dimensions, but got input with "
                         f"{len(shape) + 1} dimension(s)", hint="apply it to channels x height x width", field="*")
    if r < 1:
        raise ShapeError(f"{field} must be greater than 0, but got: {r}", hint=f"e.g. {field}=2", field=field)
    c, h, w = shape[-3:]
    if unshuffle:
        for side, n in (("height", h), ("width", w)):
            if n % r:
                raise ShapeError(f"pixel_unshuffle expects {side} to be divisible by downscale_factor, but "
                                 f"input size {n} is not divisible by {r}", hint="use a size the factor divides",
                                 field=field)
        tail, mapping = (c * r * r, h // r, w // r), (Nearest(r * r), Sliding(r, r, 0), Sliding(r, r, 0))
    else:
        if c % (r * r):
            raise ShapeError(f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the "
                             f"square of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}",
                             hint="use a factor whose square divides the channels", field=field)
        tail, mapping = (c // (r * r), h * r, w * r), (Sliding(r * r, r * r, 0), Nearest(r), Nearest(r))
    first = len(shape) - 3
    windows = tuple(mapping[axis + 1 - first] if axis + 1 >= first else IDENTITY for axis in range(len(shape) - 1))
    return Figures("PixelUnshuffle" if unshuffle else "PixelShuffle", shape[:-3] + tail, windows=windows,
                   summary=f"÷{r}" if unshuffle else f"×{r}")


@dataclass(frozen=True)
class PixelShuffle(_Moves):
    """``torch.nn.PixelShuffle`` on the last three axes (C, H, W): channels into space.

    >>> PixelShuffle(2).infer((64, 8, 8)).output_shape
    (16, 16, 16)
    """

    spellings = (spell("pixelshuffle", fields=("upscale_factor",), positional=("upscale_factor",),
                       required=("upscale_factor",)),)

    upscale_factor: int

    def infer(self, shape: Shape) -> Figures:
        return _pixel_shuffle(shape, self.upscale_factor, False)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def prepare(self, run, x):
        return lambda x: run.F.pixel_shuffle(x, self.upscale_factor)


@dataclass(frozen=True)
class PixelUnshuffle(_Moves):
    """``torch.nn.PixelUnshuffle``: space into channels.

    >>> PixelUnshuffle(2).infer((16, 16, 16)).output_shape
    (64, 8, 8)
    """

    spellings = (spell("pixelunshuffle", fields=("downscale_factor",), positional=("downscale_factor",),
                       required=("downscale_factor",)),)

    downscale_factor: int

    def infer(self, shape: Shape) -> Figures:
        return _pixel_shuffle(shape, self.downscale_factor, True)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def prepare(self, run, x):
        return lambda x: run.F.pixel_unshuffle(x, self.downscale_factor)


def reduced(function: str, dim, keepdim: bool, shape: Shape) -> tuple[set[int], Shape, tuple | None, tuple]:
    """A reduction over ``dim`` (batch counted): its axes, output, kept axes (None with keepdim), windows.

    >>> reduced("sum", -1, False, (3, 64, 32))[1:3]
    ((3, 64), (0, 1))
    """
    if dim is None or dim == ():
        raise BatchAxisError(f"{function} over every axis also reduces the batch, which convcalc keeps apart",
                             hint="name the axes, e.g. dim=-1", field="dim")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = {batch_dim(d, shape) for d in dims}
    if len(axes) != len(dims):
        raise ShapeError(f"dim={format_tuple(dims)} appears multiple times in the list of dims, as PyTorch says",
                         hint="name each axis once", field="dim")
    if keepdim:
        output, kept = tuple(1 if a in axes else n for a, n in enumerate(shape)), None
    else:
        kept = tuple(a for a in range(len(shape)) if a not in axes)
        output = tuple(shape[a] for a in kept)
    windows = tuple(Global(n) if a + 1 in axes else IDENTITY for a, n in enumerate(shape[1:]))
    return axes, output, kept, windows


@dataclass(frozen=True)
class Reduce(_Moves):
    """``mean`` or ``sum`` over ``dim`` (batch counted), keeping the axes as size 1 with keepdim.

    FLOPs: sum, one addition per input element beyond the first of each output; mean, one more (a division) per output.

    >>> Reduce("mean", (2, 3)).infer((1024, 7, 7)).output_shape
    (1024,)
    """

    spellings = tuple(spell(f, fields=("dim", "keepdim"), positional=("dim",), function=f) for f in ("mean", "sum"))

    function: str = arg(internal=True)
    dim: int | tuple[int, ...] | None = None
    keepdim: bool = False

    def infer(self, shape: Shape) -> Figures:
        if self.function not in ("mean", "sum"):
            raise SpecError(f"unknown reduction {self.function!r}", hint="use mean or sum", field="*")
        axes, output, kept, windows = reduced(self.function, self.dim, self.keepdim, shape)
        flops = volume(shape) - volume(output) + (volume(output) if self.function == "mean" else 0)
        return Figures(self.function.capitalize(), output, 0, 0, flops, windows, (),
                       f"dim={format_tuple(self.dim)}" + (" keepdim" if self.keepdim else ""),
                       dims=kept, mixes_channels=0 in axes)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "new"

    def prepare(self, run, x):
        dims = (self.dim,) if isinstance(self.dim, int) else tuple(self.dim)
        axes = tuple(d % x.ndim for d in dims)
        reduce = "mean" if self.function == "mean" else "sum"
        return lambda x: getattr(x, reduce)(axis=axes, keepdims=self.keepdim).astype(x.dtype, copy=False)
