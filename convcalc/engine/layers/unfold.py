"""``torch.nn.Unfold`` (im2col): every sliding block of a (C, H, W) sample laid out as one column,
as RAFT upsamples its flow (``F.unfold(8 * flow, 3, padding=1)``).

The block counts follow ATen's ``im2col_shape_check`` (``floor((n + 2p - d(k-1) - 1) / s) + 1`` per
axis, refused below one), and the arguments' checks come in its order. Unfolding copies values and
computes nothing: no MACs or FLOPs, as FlopCounterMode counts none; autograd saves no tensor for it
(its backward, col2im, needs only the input's sizes).
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
_NOTE = ("unfold merges height and width into its blocks axis: from here on the receptive field is taken as the "
         "whole input, as after a flatten (each block reads one kernel-sized window)")


def _pair(value, name: str) -> tuple[int, int]:
    """An int for both axes, or a pair (``torch.nn.modules.utils._pair``); PyTorch refuses other lengths."""
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ShapeError(f"It is expected {name} equals to 2, but got size {len(value)}",
                         hint=f"give one value or two joined by x, e.g. {name}=3x3", field=name)
    return tuple(value)


def _blocks_input(shape: Shape) -> None:
    """The sample shapes im2col takes: channels, height and width, none of them empty."""
    if len(shape) == 2:
        raise BatchAxisError(f"unfold of {format_shape(shape)} per sample would take the batch as its channels",
                             hint="give the input a channel axis: channels x height x width", field="*")
    if len(shape) != 3 or 0 in shape:
        raise ShapeError(f"unfold expects 3D or 4D (batch mode) input with non-zero dimensions, as PyTorch does, "
                         f"but receives {format_shape(shape) or 'a scalar'} per sample",
                         hint="give one sample as channels x height x width, e.g. 2x8x8", field="*")


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
        pairs = tuple(_pair(getattr(self, name), name) for name, _, _ in _CHECKS)  # lengths first, as read
        for (name, what, low), pair in zip(_CHECKS, pairs):
            if min(pair) < low:
                raise ShapeError(f"{name} should be {what}, but got {name}={short(pair)}",
                                 hint=f"use {name} values of at least {low}", field=name)
        return pairs

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
        (oh, ow), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = self.blocks(x.shape[1:]), kernel, dilation, padding, stride
        # index arrays (as nested lists) that broadcast to (kh, kw, oh, ow): one gather gives the columns
        rows = [[[[i * dh + o * sh] for o in range(oh)]] for i in range(kh)]
        cols = [[[[j * dw + o * sw for o in range(ow)]] for j in range(kw)]]

        def unfold(x):
            padded = run.F.pad(x, (pw, pw, ph, ph)) if ph or pw else x
            return padded[:, :, rows, cols].reshape(x.shape[0], x.shape[1] * kh * kw, oh * ow)

        return unfold

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        kernel, dilation, padding, stride = self.arguments()
        counts = self.blocks(shape)
        lines = [f"{name} blocks: floor(({n} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {o}"
                 for name, n, k, d, p, s, o in zip(("H", "W"), shape[1:], kernel, dilation, padding, stride, counts)]
        lines.append(f"rows: {shape[0]} channels x {kernel[0]} x {kernel[1]} = {out[0]}; "
                     f"columns: {counts[0]} x {counts[1]} = {out[1]}")
        return lines
