"""Convolution (Conv1d/2d/3d), and what it shares with the transposed convolution."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError, SpecError
from ..windows import Sliding
from ..sizes import (
    common_divisors,
    conv_output_size,
    effective_kernel,
    same_padding,
    volume,
)
from .base import (
    Figures,
    Layer,
    Shape,
    Use,
    axis_names,
    format_shape,
    gradient_products,
    per_axis,
    require_at_least,
    saves_input,
    short,
    spatial_rank,
    times_batch,
)
from .kind import arg, ranked
from .rules import conv_padding, word

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
CONV_FIELDS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
               "padding_mode")


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

    spellings = ranked(("conv", "convolution"), "Conv", fields=CONV_FIELDS, positional=("out_channels",),
                       required=("out_channels", "kernel_size"))

    out_channels: int
    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | tuple[int, ...] | str = arg(0, rule=conv_padding)
    dilation: int | tuple[int, ...] = 1
    groups: int = 1
    bias: bool = True
    padding_mode: str = arg("zeros", rule=word(*PADDING_MODES))
    in_channels: int | None = None
    rank: int | None = arg(None, internal=True)

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

    def saved(self, use: Use) -> list | None:
        return [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # the input's gradient only where the input needs one (not for a network's first layer), the
        # weight's where it is trained; each as many MACs as the forward, whatever the groups
        return gradient_products(forward_macs, use.inputs_grad[0], use.trains("weight"))

    def prepare(self, run, x):
        kernel = per_axis(self.kernel_size, x.ndim - 2, "kernel_size")
        fan_in = x.shape[1] // self.groups * volume(kernel)
        w = run.uniform((self.out_channels, x.shape[1] // self.groups, *kernel), fan_in)
        b = run.uniform((self.out_channels,), fan_in) if self.bias else None
        return lambda x: run.F.conv(x, w, b, self.stride, self.padding, self.dilation, self.groups,
                                    self.padding_mode)

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        rank = len(shape) - 1
        kernel, stride, dilation = (per_axis(getattr(self, name), rank, name)
                                    for name in ("kernel_size", "stride", "dilation"))
        pads = self.pads(shape[1:])
        lines = []
        if self.padding == "same":
            totals = [b + e for b, e in pads]
            lines.append("padding='same': total d(k-1) = " + ", ".join(map(str, totals)) + " split as (before, after) "
                         + ", ".join(f"({b}, {e})" for b, e in pads) + "; an odd total puts the extra at the end")
        if self.padding == "full":
            lines.append("padding='full' (convcalc's extension): d(k-1) on each side = "
                         + ", ".join(str(b) for b, _ in pads))
        for name, n, k, s, d, (b, e), o in zip(axis_names(rank), shape[1:], kernel, stride, dilation, pads, out[1:]):
            pad = f"2*{b}" if b == e else f"{b} + {e}"
            lines.append(f"{name}: floor(({n} + {pad} - {d}*({k}-1) - 1) / {s}) + 1 = {o}")
        return lines

    def explain_costs(self, report, batch: int) -> list[str]:
        shape, out = report.input_shape, report.output_shape
        k_text = " x ".join(map(str, per_axis(self.kernel_size, len(shape) - 1, "kernel_size")))
        per_in = shape[0] // self.groups
        bias = f" + {self.out_channels}" if self.bias else ""
        return [f"params: {self.out_channels} x {per_in} x {k_text}{bias} = {report.params:,}",
                f"MACs: {format_shape(out)} outputs x {per_in} x {k_text} = {times_batch(report, batch)}"]


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
