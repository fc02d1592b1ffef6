"""``torch.nn.Unfold`` (im2col): every sliding block of a (C, H, W) sample laid out as one column,
as RAFT upsamples its flow (``F.unfold(8 * flow, 3, padding=1)``); and ``torch.nn.Fold`` (col2im), which
sums such columns back into an image.

The block counts follow ATen's ``im2col_shape_check`` and ``col2im_shape_check``
(``floor((n + 2p - d(k-1) - 1) / s) + 1`` per axis), and the arguments' checks come in their order.
Neither multiplies: no MACs, as FlopCounterMode counts none. Unfolding copies values (no FLOPs); folding
adds each value that lands inside the output into it. Autograd saves no tensor for either (each one's
backward is the other, which needs only sizes).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BatchAxisError, ShapeError
from ..sizes import conv_output_size, volume
from ..windows import Global
from .base import Figures, Layer, Shape, Use, format_shape, format_tuple, short
from .kind import spell

# ATen's im2col_shape_check, in its order: the argument, how it must be, its least value.
_CHECKS = (("kernel_size", "greater than zero", 1), ("dilation", "greater than zero", 1),
           ("padding", "non-negative", 0), ("stride", "greater than zero", 1))
# ATen's col2im_shape_check takes them in another order.
_FOLD_CHECKS = (("kernel_size", "greater than zero", 1), ("stride", "greater than zero", 1),
                ("dilation", "greater than zero", 1), ("padding", "non-negative", 0))
_NOTE = ("unfold merges height and width into its blocks axis: from here on the receptive field is taken as the "
         "whole input, as after a flatten (each block reads one kernel-sized window)")
_FOLD_NOTE = ("fold spreads its blocks axis over height and width: from here on the receptive field is taken as the "
              "whole input, as after a flatten")


def _pair(value, name: str) -> tuple[int, int]:
    """An int for both axes, or a pair (``torch.nn.modules.utils._pair``); PyTorch refuses other lengths."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ShapeError(f"It is expected {name} equals to 2, but got size {len(value)}",
                         hint=f"give one value or two joined by x, e.g. {name}=3x3", field=name)
    return tuple(value)


def _checked(layer, names: tuple[str, ...], checks) -> tuple[tuple[int, int], ...]:
    """The arguments ``names``, each per axis (height, width): their lengths in the order they are passed,
    then their values in the order ATen's shape check takes them."""
    pairs = {name: _pair(getattr(layer, name), name) for name in names}
    for name, what, low in checks:
        if min(pairs[name]) < low:
            raise ShapeError(f"{name} should be {what}, but got {name}={short(pairs[name])}",
                             hint=f"use {name} values of at least {low}", field=name)
    return tuple(pairs.values())


def _sample_input(shape: Shape, op: str, rank: int, taken: str, missing: str, layout: str, example: str) -> None:
    """The sample shapes im2col (``rank`` 3: channels, height, width) and col2im (2: rows, blocks) take,
    none of their sizes empty; one axis fewer is a batched call's shape without its batch."""
    if len(shape) == rank - 1:
        raise BatchAxisError(f"{op} of {format_shape(shape)} per sample would take the batch as its {taken}",
                             hint=f"give the input {missing}: {layout}", field="*")
    if len(shape) != rank or 0 in shape:
        raise ShapeError(f"{op} expects {rank}D or {rank + 1}D (batch mode) input with non-zero dimensions, as "
                         f"PyTorch does, but receives {format_shape(shape) or 'a scalar'} per sample",
                         hint=f"give one sample as {layout}, e.g. {example}", field="*")


def _blocks_input(shape: Shape) -> None:
    _sample_input(shape, "unfold", 3, "channels", "a channel axis", "channels x height x width", "2x8x8")


@dataclass(frozen=True)
class Unfold(Layer):
    """``torch.nn.Unfold`` / ``F.unfold`` (not ``Tensor.unfold``): (C, H, W) to (C x kh x kw, L), each of
    the L = oh x ow sliding blocks one column, its rows channel-major then kernel row, kernel column.

    >>> fig = Unfold(3, padding=1).infer((2, 46, 62))
    >>> fig.output_shape, fig.macs, fig.flops
    ((18, 2852), 0, 0)
    """

    spellings = (spell("unfold", fields=("kernel_size", "dilation", "padding", "stride"),
                       positional=("kernel_size",), required=("kernel_size",)),)

    kernel_size: int | tuple[int, ...]
    dilation: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] = 0
    stride: int | tuple[int, ...] = 1

    def arguments(self) -> tuple[tuple[int, int], ...]:
        """(kernel, dilation, padding, stride), each per axis (height, width), checked as ATen checks them."""
        return _checked(self, tuple(name for name, _, _ in _CHECKS), _CHECKS)

    def blocks(self, shape: Shape) -> tuple[int, int]:
        """The number of sliding blocks along height and width (refused below one, as PyTorch)."""
        kernel, dilation, padding, stride = self.arguments()
        _blocks_input(shape)
        counts = tuple(conv_output_size(n, k, s, p, p, d)
                       for n, k, d, p, s in zip(shape[1:], kernel, dilation, padding, stride))
        if min(counts) < 1:
            raise ShapeError(
                f"Given input with spatial size {format_tuple(shape[1:])}, kernel_size={format_tuple(kernel)}, "
                f"dilation={format_tuple(dilation)}, padding={format_tuple(padding)}, calculated shape of the array "
                f"of sliding blocks as {format_tuple(counts)}, but its components must be at least one",
                hint="use a smaller kernel_size or dilation, more padding, or a larger input", field="kernel_size")
        return counts

    def infer(self, shape: Shape) -> Figures:
        counts = self.blocks(shape)
        kernel, dilation, padding, stride = self.arguments()
        output = (shape[0] * volume(kernel), volume(counts))
        summary = f"k={short(kernel)}" + "".join(
            f" {key}={short(value)}" for key, value, usual in (("d", dilation, 1), ("p", padding, 0), ("s", stride, 1))
            if value != (usual, usual))
        # Each column reads one window of each axis, but both axes merge into one: fields are not followed
        # through that, so they are taken as whole from here, as Flatten's are.
        return Figures("Unfold", output, windows=(Global(shape[1]), Global(shape[2])), notes=(_NOTE,),
                       summary=summary, dims=(None, None), mixes_channels=True)

    def saved(self, use: Use) -> list | None:
        return []  # col2im needs only the input's sizes

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        kernel, dilation, padding, stride = self.arguments()
        blocks = self.blocks(x.shape[1:])
        taps = _taps(x.shape[2:], blocks, kernel, dilation, padding, stride)

        def unfold(x):
            n, c = x.shape[:2]
            out = run.full(n * c * volume(kernel) * volume(blocks), 0.0).reshape(n, c, *kernel, *blocks)
            for i, j, inside, source in taps:  # a strided copy per tap; positions in the padding stay zero
                out[(slice(None), slice(None), i, j, *inside)] = x[(slice(None), slice(None), *source)]
            return out.reshape(n, c * volume(kernel), volume(blocks))

        return unfold

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        kernel, dilation, padding, stride = self.arguments()
        counts = self.blocks(shape)
        lines = [f"{name} blocks: floor(({n} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {o}"
                 for name, n, k, d, p, s, o in zip(("H", "W"), shape[1:], kernel, dilation, padding, stride, counts)]
        lines.append(f"rows: {shape[0]} channels x {kernel[0]} x {kernel[1]} = {out[0]}; "
                     f"columns: {counts[0]} x {counts[1]} = {out[1]}")
        return lines


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """sum of floor((a*i + b) / m) for i in [0, n), a and b non-negative, in O(log) steps.

    >>> _floor_sum(5, 3, 2, 1) == sum((2 * i + 1) // 3 for i in range(5))
    True
    """
    total = 0
    while n > 0:
        if a >= m:
            total += n * (n - 1) // 2 * (a // m)
            a %= m
        if b >= m:
            total += n * (b // m)
            b %= m
        top = a * n + b
        if top < m:
            break
        n, b, m, a = top // m, top % m, a, m
    return total


def _taps_up_to(x: int, blocks: int, k: int, s: int, d: int) -> int:
    """How many (block o, tap t) pairs reach o*s + t*d <= x (in padded coordinates), without listing them."""
    if x < 0:
        return 0
    reach = x - (blocks - 1) * s
    full = min(k, reach // d + 1) if reach >= 0 else 0  # taps every block's copy of reaches
    last = min(k - 1, x // d)  # the last tap block 0 reaches
    middle = last - full + 1  # taps that some blocks reach: floor((x - t*d) / s) + 1 blocks each
    return full * blocks + (_floor_sum(middle, s, d, x - d * last) + middle if middle > 0 else 0)


def _landing(n: int, blocks: int, k: int, s: int, d: int, p: int) -> int:
    """The (block, tap) pairs along one axis whose position o*s + t*d - p falls inside [0, n)."""
    if n < 1:
        return 0
    return _taps_up_to(p + n - 1, blocks, k, s, d) - _taps_up_to(p - 1, blocks, k, s, d)


def _span(n: int, blocks: int, s: int, offset: int) -> tuple[slice, slice] | None:
    """For one tap at ``offset`` (t*d - p) along an axis of ``n``: the blocks whose position o*s + offset
    falls inside [0, n), and those positions, as slices; None if no block's does."""
    first = max(0, -(offset // s))  # the least o with o*s + offset >= 0
    last = min(blocks, (n - 1 - offset) // s + 1)  # one past the greatest o with o*s + offset <= n - 1
    if last <= first:
        return None
    return slice(first, last), slice(first * s + offset, (last - 1) * s + offset + 1, s)


def _taps(sizes, blocks, kernel, dilation, padding, stride) -> list[tuple]:
    """Each kernel tap (i, j) that reaches inside an image of ``sizes``: (i, j, the blocks it reaches along
    height and width, the image positions it reads there), in col2im's order (row-major over the kernel)."""
    spans = [[_span(n, b, s, t * d - p) for t in range(k)]
             for n, b, k, d, p, s in zip(sizes, blocks, kernel, dilation, padding, stride)]
    return [(i, j, (rows[0], cols[0]), (rows[1], cols[1]))
            for i, rows in enumerate(spans[0]) if rows for j, cols in enumerate(spans[1]) if cols]


def _fold_input(shape: Shape) -> None:
    _sample_input(shape, "fold", 2, "rows", "its rows", "(channels x kernel) x blocks", "18x64")


@dataclass(frozen=True)
class Fold(Layer):
    """``torch.nn.Fold`` / ``F.fold``: (C x kh x kw, L) to (C, H, W) with (H, W) the ``output_size``, each
    column added back where its block lies (values in the padding are dropped).

    FLOPs: one addition per value that lands inside the output (col2im adds each into a zeroed output).

    >>> fig = Fold((8, 8), 3, padding=1, stride=2).infer((18, 16))
    >>> fig.output_shape, fig.macs, fig.flops
    ((2, 8, 8), 0, 242)
    """

    spellings = (spell("fold", fields=("output_size", "kernel_size", "dilation", "padding", "stride"),
                       positional=("output_size", "kernel_size"), required=("output_size", "kernel_size")),)

    output_size: int | tuple[int, ...]
    kernel_size: int | tuple[int, ...]
    dilation: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] = 0
    stride: int | tuple[int, ...] = 1

    def arguments(self) -> tuple[tuple[int, int], ...]:
        """(output_size, kernel, dilation, padding, stride), each per axis, checked as ATen checks them."""
        return _checked(self, ("output_size", "kernel_size", "dilation", "padding", "stride"), _FOLD_CHECKS)

    def blocks(self, shape: Shape) -> tuple[int, int]:
        """The sliding blocks along height and width the output size gives; the input must hold them all."""
        size, kernel, dilation, padding, stride = self.arguments()
        _fold_input(shape)
        rows, length = shape
        if rows % volume(kernel):
            raise ShapeError(f"the input's rows ({rows} per sample) must be divisible by the product of "
                             f"kernel_size={format_tuple(kernel)}, as PyTorch requires",
                             hint="give the kernel_size the blocks were unfolded with", field="kernel_size")
        counts = tuple(conv_output_size(n, k, s, p, p, d)
                       for n, k, d, p, s in zip(size, kernel, dilation, padding, stride))
        given = (f"output_size={format_tuple(size)}, kernel_size={format_tuple(kernel)}, "
                 f"dilation={format_tuple(dilation)}, padding={format_tuple(padding)}, stride={format_tuple(stride)}")
        if counts[0] * counts[1] != length:
            raise ShapeError(f"Given {given}, the input's {length} blocks per sample do not match the calculated "
                             f"number of sliding blocks {counts[0]} * {counts[1]} = {counts[0] * counts[1]}",
                             hint="give the output_size the blocks were unfolded from", field="output_size")
        if min(counts) < 1:
            raise ShapeError(f"Given {given}, calculated shape of the array of sliding blocks as "
                             f"{format_tuple(counts)}, which is too small (non-positive)",
                             hint="give the output_size the blocks were unfolded from", field="output_size")
        if min(size) < 1:
            raise ShapeError(f"Expected output spatial size to be positive, but got: output_size={format_tuple(size)}",
                             hint="give an output_size of at least 1", field="output_size")
        return counts

    def infer(self, shape: Shape) -> Figures:
        counts = self.blocks(shape)
        size, kernel, dilation, padding, stride = self.arguments()
        channels = shape[0] // volume(kernel)
        added = channels * volume(self._landing(counts))
        summary = f"→{short(size)} k={short(kernel)}" + "".join(
            f" {key}={short(value)}" for key, value, usual in (("d", dilation, 1), ("p", padding, 0), ("s", stride, 1))
            if value != (usual, usual))
        return Figures("Fold", (channels, *size), flops=added, windows=(Global(shape[1]),), notes=(_FOLD_NOTE,),
                       summary=summary, dims=(None, None, None), mixes_channels=True)

    def _landing(self, counts) -> tuple[int, int]:
        """Per axis, the (block, tap) pairs whose position lands inside the output."""
        size, kernel, dilation, padding, stride = self.arguments()
        return tuple(_landing(n, b, k, s, d, p)
                     for n, b, k, d, p, s in zip(size, counts, kernel, dilation, padding, stride))

    def saved(self, use: Use) -> list | None:
        return []  # im2col needs only the sizes

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        size, kernel, dilation, padding, stride = self.arguments()
        blocks = self.blocks(x.shape[1:])
        taps = _taps(size, blocks, kernel, dilation, padding, stride)

        def fold(x):
            n, c = x.shape[0], x.shape[1] // volume(kernel)
            columns = x.reshape(n, c, *kernel, *blocks)
            out = run.full(n * c * volume(size), 0.0).reshape(n, c, *size)
            for i, j, inside, source in taps:  # tap by tap, as col2im adds them: each position sums in its order
                out[(slice(None), slice(None), *source)] += columns[(slice(None), slice(None), i, j, *inside)]
            return out

        return fold

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        size, kernel, dilation, padding, stride = self.arguments()
        counts = self.blocks(shape)
        lines = [f"{name} blocks: floor(({n} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {o}"
                 for name, n, k, d, p, s, o in zip(("H", "W"), size, kernel, dilation, padding, stride, counts)]
        lines.append(f"blocks: {counts[0]} x {counts[1]} = {shape[1]}; channels: {shape[0]} rows / "
                     f"({kernel[0]} x {kernel[1]}) = {out[0]}")
        return lines

    def explain_costs(self, report, batch: int) -> list[str]:
        (rows, length), channels = report.input_shape, report.output_shape[0]
        height, width = self._landing(self.blocks((rows, length)))
        per_sample = report.flops // batch
        return [f"FLOPs: {channels} channels x {height} x {width} (block, tap) pairs landing inside the output "
                f"(height x width), one addition each = {per_sample:,}"
                + (f", x batch {batch} = {report.flops:,}" if batch > 1 else "")]
