"""Convolution and transposed convolution (Conv1d/2d/3d, ConvTranspose1d/2d/3d)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ShapeError, SpecError
from ..receptive import Scatter, Sliding
from ..sizes import (
    common_divisors,
    conv_output_size,
    effective_kernel,
    same_padding,
    transposed_output_size,
    volume,
)
from .base import (
    Figures,
    Layer,
    Shape,
    format_shape,
    format_tuple,
    per_axis,
    require_at_least,
    short,
    spatial_rank,
)

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
INTERNAL = {"internal": True}


def _check_channels(type_name: str, given: int | None, incoming: int, out: int, groups: int, out_name: str) -> None:
    if given is not None and given != incoming:
        raise ShapeError(
            f"in_channels={given} but the incoming tensor has {incoming} channels",
            hint="omit in_channels to take it from the input, or fix the layer before",
            field="in_channels",
        )
    if out < 1:
        raise ShapeError(f"{out_name} must be positive (got {out})", hint=f"give {out_name} of at least 1", field=out_name)
    if groups < 1:
        raise ShapeError(f"groups must be a positive integer (got {groups})", hint="use g=1 for a dense convolution", field="groups")
    for name, count in (("in_channels", incoming), (out_name, out)):
        if count % groups:
            divisors = common_divisors(incoming, out)
            raise ShapeError(
                f"groups={groups} does not divide {name}={count}",
                hint=f"groups must divide both {incoming} input and {out} output channels: one of {divisors}",
                field="groups",
            )


def _check_geometry(kernel, stride, dilation) -> None:
    require_at_least(kernel, 1, "kernel_size", "positive")
    require_at_least(stride, 1, "stride", "positive")
    require_at_least(dilation, 1, "dilation", "positive")


@dataclass(frozen=True)
class Conv(Layer):
    """A convolution, as ``torch.nn.Conv1d/2d/3d`` (rank None: follow the input).

    >>> fig = Conv(64, 7, stride=2, padding=3, bias=False).infer((3, 224, 224))
    >>> fig.type, fig.output_shape, fig.params, fig.macs
    ('Conv2d', (64, 112, 112), 9408, 118013952)
    """

    out_channels: int
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] | str = 0
    dilation: int | tuple[int, ...] = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = "zeros"
    in_channels: int | None = None
    rank: int | None = field(default=None, metadata=INTERNAL)

    def pads(self, sizes: Shape) -> tuple[tuple[int, int], ...]:
        """(begin, end) padding per axis, resolving 'same' and 'valid'."""
        rank = len(sizes)
        kernel = per_axis(self.kernel_size, rank, "kernel_size")
        dilation = per_axis(self.dilation, rank, "dilation")
        if self.padding == "valid":
            return ((0, 0),) * rank
        if self.padding == "full":  # convcalc's extension: every tap meets every input
            return tuple((d * (k - 1), d * (k - 1)) for k, d in zip(kernel, dilation))
        if self.padding == "same":
            return tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
        padding = per_axis(self.padding, rank, "padding")
        return tuple((p, p) for p in padding)

    def infer(self, shape: Shape) -> Figures:
        rank = spatial_rank(shape, _type_name("Conv", self.rank), self.rank)
        type_name = f"Conv{rank}d"
        channels, sizes = shape[0], shape[1:]
        _check_channels(type_name, self.in_channels, channels, self.out_channels, self.groups, "out_channels")
        kernel = per_axis(self.kernel_size, rank, "kernel_size")
        stride = per_axis(self.stride, rank, "stride")
        dilation = per_axis(self.dilation, rank, "dilation")
        _check_geometry(kernel, stride, dilation)
        if self.padding == "same" and any(s != 1 for s in stride):
            raise ShapeError(
                f"padding='same' needs stride 1 (got stride {short(stride)})",
                hint="give an explicit padding, e.g. p=1, or use stride 1",
                field="padding",
            )
        if isinstance(self.padding, str) and self.padding not in ("same", "valid", "full"):
            raise SpecError(
                f"padding={self.padding!r} is not a padding",
                hint="give an int, per-axis ints joined by x, 'same', 'valid' or 'full'",
                field="padding",
            )
        if not isinstance(self.padding, str):
            require_at_least(per_axis(self.padding, rank, "padding"), 0, "padding", "non-negative")
        if self.padding_mode not in PADDING_MODES:
            raise SpecError(
                f"padding_mode={self.padding_mode!r} is not one of {', '.join(PADDING_MODES)}",
                hint="use padding_mode=zeros (the default), reflect, replicate or circular",
                field="padding_mode",
            )
        pads = self.pads(sizes)
        _check_padding_mode(self.padding_mode, pads, sizes)
        out_sizes = []
        for n, k, s, d, (begin, end) in zip(sizes, kernel, stride, dilation, pads):
            if n + begin + end < effective_kernel(k, d):
                raise ShapeError(
                    f"the effective kernel d(k-1)+1 = {effective_kernel(k, d)} is larger than the padded input "
                    f"{n}+{begin}+{end} = {n + begin + end} (input {format_shape(shape)})",
                    hint="use a smaller kernel_size or dilation, more padding, or a larger input",
                    field="kernel_size",
                )
            out_sizes.append(conv_output_size(n, k, s, begin, end, d))
        output = (self.out_channels, *out_sizes)
        kernel_volume = volume(kernel)
        macs = volume(output) * (channels // self.groups) * kernel_volume
        params = self.out_channels * (channels // self.groups) * kernel_volume + (self.out_channels if self.bias else 0)
        flops = 2 * macs + (volume(output) if self.bias else 0)
        windows = tuple(Sliding(k, s, b, d) for k, d, s, (b, _) in zip(kernel, dilation, stride, pads))
        notes = []
        if self.padding == "full":
            notes.append("padding='full' is convcalc's extension, not a PyTorch padding string: d(k-1) on each side, "
                         "as numpy.convolve(mode='full'); in PyTorch write the numbers, "
                         f"padding={short(tuple(b for b, _ in pads))}")
        if self.padding == "same" and any(b != e for b, e in pads):
            notes.append("padding='same' with an even effective kernel pads one more at the end, as PyTorch does")
        padding_text = ""
        if isinstance(self.padding, str):
            padding_text = f"p={self.padding}"
        elif any(b for b, _ in pads):
            padding_text = f"p={short(tuple(b for b, _ in pads))}"
        if self.padding_mode != "zeros":
            padding_text += f" {self.padding_mode}"
        summary = _summary(channels, self.out_channels, kernel, stride, dilation, self.groups, self.bias, padding_text)
        weight = self.out_channels * (channels // self.groups) * kernel_volume
        return Figures(type_name, output, params, macs, flops, windows, tuple(notes), summary, mixes_channels=True,
                       tensors=_tensors(weight, self.out_channels if self.bias else 0))


@dataclass(frozen=True)
class ConvTranspose(Layer):
    """A transposed convolution, as ``torch.nn.ConvTranspose1d/2d/3d``.

    ``output_size``, like the argument of PyTorch's forward, picks the
    output_padding that gives that size (and refuses sizes it cannot give).

    >>> ConvTranspose(6, 4, stride=2, padding=1).infer((4, 8, 8)).macs
    24576
    """

    out_channels: int
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] = 0
    output_padding: int | tuple[int, ...] = 0
    groups: int = 1
    bias: bool = True
    dilation: int | tuple[int, ...] = 1
    padding_mode: str = "zeros"
    output_size: tuple[int, ...] | int | None = None
    in_channels: int | None = None
    rank: int | None = field(default=None, metadata=INTERNAL)

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
        # 0 instead: an accident of dispatch convcalc does not copy; README.)
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


def _tensors(weight: int, bias: int) -> tuple[tuple[str, int], ...]:
    """A layer's parameter tensors by role, a bias only when there is one."""
    return (("weight", weight),) + ((("bias", bias),) if bias else ())


def _type_name(base: str, rank: int | None) -> str:
    return f"{base}{rank}d" if rank else base


def _summary(cin, cout, kernel, stride, dilation, groups, bias, padding_text) -> str:
    text = f"{cin}→{cout} k={short(kernel)}"
    if any(s != 1 for s in stride):
        text += f" s={short(stride)}"
    if padding_text:
        text += " " + padding_text.strip()
    if any(d != 1 for d in dilation):
        text += f" d={short(dilation)}"
    if groups != 1:
        text += f" g={groups}"
    if not bias:
        text += " bias=False"
    return text


def _check_padding_mode(mode: str, pads, sizes) -> None:
    if mode == "reflect":
        limit, relation = (lambda p, n: p < n), "smaller than"
    elif mode == "circular":
        limit, relation = (lambda p, n: p <= n), "at most"
    else:
        return
    for axis, ((begin, end), n) in enumerate(zip(pads, sizes)):
        if not (limit(begin, n) and limit(end, n)):
            raise ShapeError(
                f"{mode} padding must be {relation} the input size: padding ({begin}, {end}) on spatial axis "
                f"{axis} of size {n}",
                hint="use less padding, padding_mode=zeros or replicate, or a larger input",
                field="padding",
            )
