"""Pooling: MaxPool, AvgPool and the adaptive pools, 1d/2d/3d."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError
from ..windows import IDENTITY, Adaptive, Sliding
from ..sizes import adaptive_bin_total, effective_kernel, pool_output_size, volume
from .base import (
    Figures,
    Layer,
    Shape,
    Use,
    axis_names,
    format_shape,
    format_tuple,
    per_axis,
    require_at_least,
    saves_input,
    saves_new,
    short,
    spatial_rank,
)
from .kind import arg, ranked, spell

MAXPOOL_FIELDS = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
AVGPOOL_FIELDS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
_INDEX_BYTES = 8  # int64 indices


def _explain_sliding(layer, shape: Shape, out: Shape) -> list[str]:
    rank = len(shape) - 1
    kernel = per_axis(layer.kernel_size, rank, "kernel_size")
    stride = kernel if layer.stride in (None, ()) else per_axis(layer.stride, rank, "stride")
    dilation = per_axis(getattr(layer, "dilation", 1), rank, "dilation")
    padding = per_axis(layer.padding, rank, "padding")
    lines = []
    for name, n, k, s, d, p, o in zip(axis_names(rank), shape[1:], kernel, stride, dilation, padding, out[1:]):
        core = f"{n} + 2*{p} - {d}*({k}-1) - 1"
        if not layer.ceil_mode:
            lines.append(f"{name}: floor(({core}) / {s}) + 1 = {o}")
            continue
        up = -(-(n + 2 * p - effective_kernel(k, d)) // s) + 1
        start = (up - 1) * s
        verdict = (f"starts at ({up}-1)*{s} = {start} >= {n} + {p} = {n + p}, inside the right padding: dropped"
                   if up != o else f"starts at ({up}-1)*{s} = {start} < {n} + {p} = {n + p}: kept")
        lines.append(f"{name}: ceil(({core}) / {s}) + 1 = {up}; the last window {verdict} -> {o}")
    return lines


def _explain_adaptive(shape: Shape, out: Shape) -> list[str]:
    return [f"{name}: {o} bins over {n}: bin i is [floor(i*{n}/{o}), ceil((i+1)*{n}/{o}))"
            for name, n, o in zip(axis_names(len(shape) - 1), shape[1:], out[1:])]


def _sliding_pool(layer, shape: Shape, base: str, dilation_value) -> tuple:
    rank = spatial_rank(shape, f"{base}{layer.rank}d" if layer.rank else base, layer.rank)
    sizes = shape[1:]
    kernel = per_axis(layer.kernel_size, rank, "kernel_size")
    # stride None (or empty, as PyTorch also allows) means "the kernel size"
    stride = kernel if layer.stride in (None, ()) else per_axis(layer.stride, rank, "stride")
    padding = per_axis(layer.padding, rank, "padding")
    dilation = per_axis(dilation_value, rank, "dilation")
    require_at_least(kernel, 1, "kernel_size", "positive")
    require_at_least(stride, 1, "stride", "positive")
    require_at_least(dilation, 1, "dilation", "positive")
    require_at_least(padding, 0, "padding", "non-negative")
    for k, p in zip(kernel, padding):
        if p > k // 2:
            raise ShapeError(
                f"padding must be at most half of kernel_size, but got padding={short(padding)} "
                f"and kernel_size={short(kernel)}",
                hint=f"use padding of at most {k // 2}, or a larger kernel",
                field="padding",
            )
    if base == "AvgPool" and rank == 3 and any(n < k for n, k in zip(sizes, kernel)):
        # avg_pool3d alone also wants the unpadded input to hold the kernel
        raise ShapeError(
            f"AvgPool3d needs each input size to be at least the kernel size, before padding: "
            f"input {format_shape(shape)}, kernel_size={short(kernel)}",
            hint="use a smaller kernel_size or a larger input",
            field="kernel_size",
        )
    out_sizes = tuple(
        pool_output_size(n, k, s, p, d, layer.ceil_mode) for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation)
    )
    if any(n < 1 for n in out_sizes):
        raise ShapeError(
            f"the output size {format_tuple(out_sizes)} is too small for input {format_shape(shape)}: "
            f"the pooling window does not fit",
            hint="use a smaller kernel_size or stride, padding, ceil_mode=true, or a larger input",
            field="kernel_size",
        )
    windows = tuple(Sliding(k, s, p, d) for k, d, s, p in zip(kernel, dilation, stride, padding))
    output = (shape[0], *out_sizes)
    summary = f"k={short(kernel)}"
    if stride != kernel:
        summary += f" s={short(stride)}"
    if any(padding):
        summary += f" p={short(padding)}"
    if any(d != 1 for d in dilation):
        summary += f" d={short(dilation)}"
    if layer.ceil_mode:
        summary += " ceil"
    return f"{base}{rank}d", output, volume(kernel), windows, summary


@dataclass(frozen=True)
class MaxPool(Layer):
    """``torch.nn.MaxPool1d/2d/3d``: stride defaults to the kernel size.

    >>> MaxPool(2, stride=2, padding=1, ceil_mode=True).infer((1, 5, 5)).output_shape
    (1, 3, 3)
    """

    spellings = ranked(("maxpool", "mp"), "MaxPool", fields=MAXPOOL_FIELDS, positional=("kernel_size",),
                       required=("kernel_size",))

    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None
    padding: int | tuple[int, ...] = 0
    dilation: int | tuple[int, ...] = 1
    return_indices: bool = False
    ceil_mode: bool = False
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        type_name, output, window, windows, summary = _sliding_pool(self, shape, "MaxPool", self.dilation)
        # window-1 comparisons per output element
        return Figures(type_name, output, 0, 0, volume(output) * (window - 1), windows, (), summary)

    def saved(self, use: Use) -> list | None:
        return [saves_input(), saves_new(use.batch * volume(use.output) * _INDEX_BYTES)]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.max_pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                        self.ceil_mode)

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        return _explain_sliding(self, shape, out)


@dataclass(frozen=True)
class AvgPool(Layer):
    """``torch.nn.AvgPool1d/2d/3d``.

    >>> AvgPool(3, stride=2, padding=1, ceil_mode=True).infer((8, 6, 6)).output_shape
    (8, 4, 4)
    """

    spellings = ranked(("avgpool", "ap"), "AvgPool", fields=AVGPOOL_FIELDS, positional=("kernel_size",),
                       required=("kernel_size",))

    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None
    padding: int | tuple[int, ...] = 0
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        if self.divisor_override is not None and self.divisor_override == 0:
            raise ShapeError("divisor_override must be non-zero", hint="omit divisor_override", field="divisor_override")
        type_name, output, window, windows, summary = _sliding_pool(self, shape, "AvgPool", 1)
        # window-1 additions and one division per output element
        return Figures(type_name, output, 0, 0, volume(output) * window, windows, (), summary)

    def saved(self, use: Use) -> list | None:
        return [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.avg_pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                        self.count_include_pad, self.divisor_override)

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        return _explain_sliding(self, shape, out)


def _adaptive(layer, shape: Shape, base: str, is_max: bool) -> Figures:
    rank = spatial_rank(shape, f"{base}{layer.rank}d" if layer.rank else base, layer.rank)
    sizes = shape[1:]
    wanted = layer.output_size
    if wanted is None or (rank == 1 and not isinstance(wanted, int) and None in wanted):
        raise ShapeError(
            f"{base}{rank}d needs output sizes" + (" (None keeps an axis only in 2d and 3d)" if rank == 1 else ""),
            hint="give an output size such as 1 or 7",
            field="output_size",
        )
    if isinstance(wanted, int):
        wanted = (wanted,) * rank
    elif len(wanted) != rank:
        per_axis(tuple(wanted), rank, "output_size")  # raises the usual message
    out_sizes = tuple(n if w is None else w for n, w in zip(sizes, wanted))
    if any(n < 0 for n in out_sizes):
        raise ShapeError(
            f"output_size must be non-negative (got {format_tuple(out_sizes)})",
            hint="give output sizes of at least 1, or None to keep an axis",
            field="output_size",
        )
    if any(n < 1 for n in sizes):
        raise ShapeError(
            f"{base}{rank}d needs a non-empty input, but receives {format_shape(shape)}",
            hint="fix the layer before so that every spatial size is at least 1",
            field="*",
        )
    windows = tuple(Adaptive(n, o) if o else IDENTITY for n, o in zip(sizes, out_sizes))
    bin_sums = [adaptive_bin_total(n, o) for n, o in zip(sizes, out_sizes)]
    output = (shape[0], *out_sizes)
    # Summed over outputs, the bins' volumes factor into per-axis sums.
    window_elements = shape[0] * volume(bin_sums)
    flops = window_elements - volume(output) if is_max else window_elements
    return Figures(f"{base}{rank}d", output, 0, 0, flops, windows, (), f"→{short(out_sizes)}")


@dataclass(frozen=True)
class AdaptiveAvgPool(Layer):
    """``torch.nn.AdaptiveAvgPool1d/2d/3d``; None in output_size keeps that axis.

    >>> AdaptiveAvgPool(1).infer((512, 7, 7)).output_shape
    (512, 1, 1)
    """

    spellings = (*ranked(("adaptiveavgpool", "aap"), "AdaptiveAvgPool", fields=("output_size",),
                         positional=("output_size",), required=("output_size",)),
                 spell("gap", "globalavgpool", output_size=1))

    output_size: int | tuple[int | None, ...] | None
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        return _adaptive(self, shape, "AdaptiveAvgPool", is_max=False)

    def saved(self, use: Use) -> list | None:
        # an output of one position per channel is a mean, which saves nothing
        return [] if all(n == 1 for n in use.output[1:]) else [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.adaptive_avg_pool(x, self.output_size)

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        return _explain_adaptive(shape, out)


@dataclass(frozen=True)
class AdaptiveMaxPool(Layer):
    """``torch.nn.AdaptiveMaxPool1d/2d/3d``.

    >>> AdaptiveMaxPool((None, 2)).infer((1, 4, 5)).output_shape
    (1, 4, 2)
    """

    spellings = ranked(("adaptivemaxpool", "amp"), "AdaptiveMaxPool", fields=("output_size", "return_indices"),
                       positional=("output_size",), required=("output_size",))

    output_size: int | tuple[int | None, ...] | None
    return_indices: bool = False
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        return _adaptive(self, shape, "AdaptiveMaxPool", is_max=True)

    def saved(self, use: Use) -> list | None:
        return [saves_input(), saves_new(use.batch * volume(use.output) * _INDEX_BYTES)]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.adaptive_max_pool(x, self.output_size)

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        return _explain_adaptive(shape, out)
