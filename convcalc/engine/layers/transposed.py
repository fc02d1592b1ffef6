"""Transposed convolution (ConvTranspose1d/2d/3d)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError, SpecError
from ..windows import Scatter
from ..sizes import transposed_output_size, volume
from .base import (
    Figures,
    Layer,
    Shape,
    Use,
    axis_names,
    format_shape,
    format_tuple,
    gradient_products,
    per_axis,
    require_at_least,
    saves_input,
    short,
    spatial_rank,
    times_batch,
)
from .conv import PADDING_MODES, _check_channels, _check_geometry, _summary, _tensors, _type_name
from .kind import arg, ranked
from .rules import word

CONVT_FIELDS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias",
                "dilation", "padding_mode", "output_size")


@dataclass(frozen=True)
class ConvTranspose(Layer):
    """A transposed convolution, as ``torch.nn.ConvTranspose1d/2d/3d``.

    ``output_size``, like the argument of PyTorch's forward, picks the
    output_padding that gives that size (and refuses sizes it cannot give).

    >>> ConvTranspose(6, 4, stride=2, padding=1).infer((4, 8, 8)).macs
    24576
    """

    spellings = ranked(("convt", "convtranspose", "deconv", "tconv"), "ConvTranspose", fields=CONVT_FIELDS,
                       positional=("out_channels",), required=("out_channels", "kernel_size"))

    out_channels: int
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] = 0
    output_padding: int | tuple[int, ...] = 0
    groups: int = 1
    bias: bool = True
    dilation: int | tuple[int, ...] = 1
    padding_mode: str = arg("zeros", rule=word(*PADDING_MODES))
    output_size: tuple[int, ...] | int | None = None
    in_channels: int | None = None
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        rank = spatial_rank(shape, _type_name("ConvTranspose", self.rank), self.rank)
        type_name = f"ConvTranspose{rank}d"
        channels, sizes = shape[0], shape[1:]
        if self.padding_mode != "zeros":
            raise ShapeError(
                f'only "zeros" padding mode is supported for {type_name} (got {self.padding_mode!r})',
                hint="drop padding_mode; pad explicitly with a pad layer before it if you need another mode",
                field="padding_mode",
            )
        if isinstance(self.padding, str):
            raise SpecError(
                f"padding={self.padding!r} is not supported for transposed convolutions, which take int padding",
                hint="give an int padding, e.g. p=1",
                field="padding",
            )
        _check_channels(type_name, self.in_channels, channels, self.out_channels, self.groups, "out_channels")
        kernel = per_axis(self.kernel_size, rank, "kernel_size")
        stride = per_axis(self.stride, rank, "stride")
        dilation = per_axis(self.dilation, rank, "dilation")
        padding = per_axis(self.padding, rank, "padding")
        _check_geometry(kernel, stride, dilation)
        require_at_least(padding, 0, "padding", "non-negative")
        notes = []
        output_padding = self.resolved_output_padding(sizes)
        if self.output_size is not None:
            notes.append(f"output_size resolves output_padding to {format_tuple(output_padding)}")
        else:
            require_at_least(output_padding, 0, "output_padding", "non-negative")
            for op, s, d in zip(output_padding, stride, dilation):
                if not (op < s or op < d):
                    raise ShapeError(
                        f"output_padding must be smaller than either stride or dilation, but got "
                        f"output_padding={short(output_padding)}, stride={short(stride)}, dilation={short(dilation)}",
                        hint=f"use output_padding below {max(s, d)}",
                        field="output_padding",
                    )
        out_sizes = tuple(
            transposed_output_size(n, k, s, p, op, d)
            for n, k, s, p, op, d in zip(sizes, kernel, stride, padding, output_padding, dilation)
        )
        # PyTorch's reference path refuses sizes below 1. (Some of its backends,
        # oneDNN for grouped layers and the 3d path, return an empty tensor for
        # 0 instead: an accident of dispatch convcalc does not copy; docs/conventions.md.)
        if any(n < 1 for n in out_sizes):
            raise ShapeError(
                f"the output size {format_tuple(out_sizes)} is too small for input {format_shape(shape)}: "
                f"(n-1)s - 2p + d(k-1) + output_padding + 1 must be at least 1",
                hint="use less padding, or a larger kernel, stride or input",
                field="padding",
            )
        output = (self.out_channels, *out_sizes)
        kernel_volume = volume(kernel)
        # The real work of a transposed convolution: each input element meets
        # every tap of its group's kernels once.
        macs = volume(shape) * (self.out_channels // self.groups) * kernel_volume
        params = channels * (self.out_channels // self.groups) * kernel_volume + (self.out_channels if self.bias else 0)
        flops = 2 * macs + (volume(output) if self.bias else 0)
        windows = tuple(Scatter(k, s, p, d) for k, s, p, d in zip(kernel, stride, padding, dilation))
        padding_text = (f"p={short(padding)}" if any(padding) else "") + (
            f" op={short(output_padding)}" if any(output_padding) else "")
        summary = _summary(channels, self.out_channels, kernel, stride, dilation, self.groups, self.bias, padding_text)
        weight = channels * (self.out_channels // self.groups) * kernel_volume
        return Figures(type_name, output, params, macs, flops, windows, tuple(notes), summary, mixes_channels=True,
                       tensors=_tensors(weight, self.out_channels if self.bias else 0))

    def resolved_output_padding(self, sizes: Shape) -> tuple[int, ...]:
        """The output_padding per axis for input ``sizes``: as given, or as picked by output_size."""
        rank = len(sizes)
        if self.output_size is None:
            return per_axis(self.output_padding, rank, "output_padding")
        axes = [per_axis(getattr(self, name), rank, name) for name in ("kernel_size", "stride", "padding", "dilation")]
        return self._resolve_output_size(sizes, *axes)

    def _resolve_output_size(self, sizes, kernel, stride, padding, dilation) -> tuple[int, ...]:
        rank = len(sizes)
        wanted = (self.output_size,) * rank if isinstance(self.output_size, int) else tuple(self.output_size)
        # PyTorch accepts the spatial sizes, or the full NCHW size; convcalc's
        # own shapes (channels first, no batch) are accepted too.
        if len(wanted) in (rank + 1, rank + 2):
            wanted = wanted[-rank:]
        if len(wanted) != rank:
            raise SpecError(
                f"output_size has {len(wanted)} values but the input has {rank} spatial axes",
                hint=f"give {rank} sizes joined by x",
                field="output_size",
            )
        smallest = tuple(
            transposed_output_size(n, k, s, p, 0, d) for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation)
        )
        largest = tuple(lo + s - 1 for lo, s in zip(smallest, stride))
        if any(not lo <= w <= hi for w, lo, hi in zip(wanted, smallest, largest)):
            raise ShapeError(
                f"requested an output size of {format_tuple(wanted)}, but valid sizes range from "
                f"{format_tuple(smallest)} to {format_tuple(largest)} (for an input of {format_tuple(sizes)})",
                hint="pick a size in that range, or change stride or padding",
                field="output_size",
            )
        return tuple(w - lo for w, lo in zip(wanted, smallest))

    def saved(self, use: Use) -> list | None:
        return [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # the input's gradient is a convolution of the output's gradient, the weight's a convolution of
        # that gradient with the input: each as many MACs as the forward, and each only when needed
        return gradient_products(forward_macs, use.inputs_grad[0], use.trains("weight"))

    def prepare(self, run, x):
        kernel = per_axis(self.kernel_size, x.ndim - 2, "kernel_size")
        per_group = self.out_channels // self.groups
        fan_in = per_group * volume(kernel)  # PyTorch's fan_in for a transposed weight (dim 1)
        w = run.uniform((x.shape[1], per_group, *kernel), fan_in)
        b = run.uniform((self.out_channels,), fan_in) if self.bias else None
        output_padding = self.resolved_output_padding(x.shape[2:])
        return lambda x: run.F.conv_transpose(x, w, b, self.stride, self.padding, output_padding, self.groups,
                                              self.dilation)

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        rank = len(shape) - 1
        kernel, stride, dilation, padding = (per_axis(getattr(self, name), rank, name)
                                             for name in ("kernel_size", "stride", "dilation", "padding"))
        op = self.resolved_output_padding(shape[1:])
        return [f"{name}: ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {q} + 1 = {o}" for name, n, k, s, d, p, q, o
                in zip(axis_names(rank), shape[1:], kernel, stride, dilation, padding, op, out[1:])]

    def explain_costs(self, report, batch: int) -> list[str]:
        shape = report.input_shape
        k_text = " x ".join(map(str, per_axis(self.kernel_size, len(shape) - 1, "kernel_size")))
        per_out = self.out_channels // self.groups
        bias = f" + {self.out_channels}" if self.bias else ""
        return [f"params: {shape[0]} x {per_out} x {k_text}{bias} = {report.params:,}",
                f"MACs: {format_shape(shape)} inputs x {per_out} x {k_text} = {times_batch(report, batch)}"]
