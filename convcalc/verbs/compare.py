"""A standard convolution against its cheaper variants, each built from ordinary
layer specs so every figure comes from the same engine as ``convcalc shape``.

Variants (all produce the standard layer's output shape):

- ``standard``: the layer as given;
- ``depthwise_separable``: k x k depthwise (groups = in_channels), then 1x1 pointwise (MobileNet);
- ``grouped``: the layer with groups = g (a channel shuffle after it is a free permutation);
- ``spatially_separable``: one 1-D pass per spatial axis (k x 1 then 1 x k in 2d), the
  input's channels kept until the last pass;
- ``flattened``: a 1x1 pass across channels, then a 1-D depthwise pass per axis (Jin et al., 2014);
- ``shufflenet_unit``: 1x1 group conv to a bottleneck, shuffle, k x k depthwise, 1x1 group conv.

Biases follow the given layer: every convolution of a variant has one if it does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from ..engine.analysis import analyse
from ..engine.errors import ShapeError, SpecError
from ..engine.layers import Conv, Layer, Shape
from ..engine.layers.base import per_axis, spatial_rank
from ..engine.network import Analysis, Network
from ..engine.schema import analysis_to_dict, encode_fraction
from ..engine.sizes import common_divisors, volume

VARIANTS = ("standard", "depthwise_separable", "grouped", "spatially_separable", "flattened", "shufflenet_unit")
COMPARE_SCHEMA = "convcalc.compare/1"


@dataclass(frozen=True)
class Variant:
    """One way of computing the layer: its layers, or why it cannot exist here."""

    name: str
    layers: tuple[Layer, ...] = ()
    reason: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def applicable(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class VariantResult:
    """A variant analysed, with its MACs relative to the standard layer."""

    variant: Variant
    analysis: Analysis | None
    ratio_macs: Fraction | None
    closed_form: Fraction | None = None  # depthwise separable only: 1/C_out + 1/K
    seconds: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Every variant of one convolution on one input."""

    input_shape: Shape
    layer: Conv
    groups: int | None
    results: tuple[VariantResult, ...]

    @property
    def standard(self) -> VariantResult:
        return self.results[0]

    def to_dict(self, device=None) -> dict:
        """The ``convcalc.compare/1`` JSON object (see docs/json.md); with a roofline
        ``device``, each variant's time bound."""
        return comparison_to_dict(self, device)

    def bounds(self, device) -> list[tuple[float, float] | None]:
        """Each variant's roofline time bound on ``device`` and its memory-bound share (None: not applicable)."""
        from ..engine.roofline import roofline

        results = []
        for result in self.results:
            line = None if result.analysis is None else roofline(result.analysis, device)
            results.append(None if line is None else (line.seconds, line.memory_share))
        return results


def default_groups(in_channels: int, out_channels: int) -> int | None:
    """The largest group count below in_channels dividing both channel counts, if above 1.

    >>> default_groups(32, 64), default_groups(3, 64)
    (16, None)
    """
    # the largest common divisor below in_channels, found among the common divisors (bounded work)
    below = [g for g in common_divisors(in_channels, out_channels, most=10**9) if 1 < g < in_channels]
    return max(below) if below else None


def _on_axis(value, rank: int, axis: int, other):
    """Per-axis values keeping ``value``'s entry on ``axis`` and ``other`` elsewhere."""
    values = per_axis(value, rank, "value")
    return tuple(values[a] if a == axis else other for a in range(rank))


def _axis_pass(layer: Conv, rank: int, axis: int, **changes) -> Conv:
    """The layer reduced to a 1-D pass along ``axis`` (kernel, stride, padding, dilation)."""
    padding = layer.padding if isinstance(layer.padding, str) else _on_axis(layer.padding, rank, axis, 0)
    return replace(
        layer,
        kernel_size=_on_axis(layer.kernel_size, rank, axis, 1),
        stride=_on_axis(layer.stride, rank, axis, 1),
        padding=padding,
        dilation=_on_axis(layer.dilation, rank, axis, 1),
        in_channels=None,
        origin=None,
        **changes,
    )


def build_variants(layer: Conv, input_shape: Shape, groups: int | None = None) -> tuple[Variant, ...]:
    """Every variant of ``layer`` for ``input_shape``, in the order of VARIANTS.

    >>> [v.name for v in build_variants(Conv(64, 3, padding=1), (32, 56, 56)) if v.applicable]
    ['standard', 'depthwise_separable', 'grouped', 'spatially_separable', 'flattened', 'shufflenet_unit']
    """
    if not isinstance(layer, Conv):
        raise SpecError(
            f"compare takes a convolution, not {type(layer).__name__}",
            hint="give a conv token, e.g. conv:64,k=3,p=1",
            field="*",
            origin=layer.origin,
        )
    rank = spatial_rank(input_shape, "Conv", layer.rank)
    cin, cout = input_shape[0], layer.out_channels
    base = replace(layer, in_channels=None, origin=None)
    pointwise = dict(kernel_size=1, stride=1, padding=0, dilation=1, padding_mode="zeros")
    shuffle = "a channel shuffle between group convolutions is a free permutation (no arithmetic)"
    out = [Variant("standard", (base,))]

    out.append(Variant("depthwise_separable", (
        replace(base, out_channels=cin, groups=cin),
        replace(base, groups=1, **pointwise),
    )))

    g = groups if groups is not None else default_groups(cin, cout)
    if g is None or g < 2:
        out.append(Variant("grouped", reason=f"no group count above 1 divides both {cin} and {cout} channels"))
    elif cin % g or cout % g:
        out.append(Variant("grouped", reason=f"groups={g} does not divide both {cin} and {cout} channels"))
    else:
        out.append(Variant("grouped", (replace(base, groups=g),), notes=(shuffle,)))

    if rank < 2:
        out.append(Variant("spatially_separable", reason="a 1d layer has a single spatial axis to separate"))
    elif layer.groups != 1:
        out.append(Variant("spatially_separable", reason="the layer is already grouped"))
    else:
        # every pass but the last keeps the input's channels: k x 1 then 1 x k costs
        # 2/k of a k x k layer when the channel counts agree
        passes = [_axis_pass(base, rank, a, out_channels=cout if a == rank - 1 else cin) for a in range(rank)]
        out.append(Variant("spatially_separable", tuple(passes)))

    lateral = replace(base, groups=1, **pointwise)
    axes = tuple(_axis_pass(base, rank, a, out_channels=cout, groups=cout) for a in range(rank))
    out.append(Variant("flattened", (lateral, *axes)))

    if g is None or g < 2 or cin % g or cout % g:
        out.append(Variant("shufflenet_unit", reason="needs a group count above 1 dividing both channel counts"))
    else:
        bottleneck = -(-max(cout // 4, 1) // g) * g  # a quarter of the output, a multiple of g
        out.append(Variant("shufflenet_unit", (
            replace(base, out_channels=bottleneck, groups=g, **pointwise),
            replace(base, out_channels=bottleneck, groups=bottleneck),
            replace(base, out_channels=cout, groups=g, **pointwise),
        ), notes=(shuffle, f"bottleneck of {bottleneck} channels: a quarter of {cout}, rounded up to a multiple of {g}")))
    return tuple(out)


def compare(input_shape: Shape, layer: Conv, *, groups: int | None = None, batch: int = 1,
            dtype: str = "float32") -> Comparison:
    """Analyse every variant; a variant the engine refuses stays, marked with the reason.

    >>> result = compare((32, 56, 56), Conv(64, 3, padding=1, bias=False))
    >>> separable = result.results[1]
    >>> separable.ratio_macs == separable.closed_form == Fraction(1, 64) + Fraction(1, 9)
    True
    """
    standard = analyse(Network(tuple(input_shape), (layer,), batch, dtype))
    results = []
    for variant in build_variants(layer, tuple(input_shape), groups):
        if not variant.applicable:
            results.append(VariantResult(variant, None, None))
            continue
        try:
            analysis = analyse(Network(tuple(input_shape), variant.layers, batch, dtype))
        except (ShapeError, SpecError) as err:
            results.append(VariantResult(replace(variant, layers=(), reason=err.message), None, None))
            continue
        if analysis.output_shape != standard.output_shape:
            reason = (f"it gives {'x'.join(map(str, analysis.output_shape))}, not the standard "
                      f"{'x'.join(map(str, standard.output_shape))}")
            results.append(VariantResult(replace(variant, layers=(), reason=reason), None, None))
            continue
        ratio = Fraction(analysis.totals.macs, standard.totals.macs) if standard.totals.macs else None
        closed = None
        if variant.name == "depthwise_separable":
            kernel = per_axis(layer.kernel_size, len(input_shape) - 1, "kernel_size")
            closed = Fraction(1, layer.out_channels) + Fraction(1, volume(kernel))
        results.append(VariantResult(variant, analysis, ratio, closed))
    return Comparison(tuple(input_shape), layer, groups, tuple(results))


def time_variants(comparison: Comparison, *, repeat: int | None = None, seed: int = 0) -> Comparison:
    """Run every applicable variant with the NumPy backend and record its time."""
    from .execute import check_repeat, execute

    check_repeat(repeat)  # before any variant runs
    results = []
    for result in comparison.results:
        seconds = None
        if result.analysis is not None:
            seconds = execute(result.analysis.network, seed=seed, repeat=repeat).seconds
        results.append(replace(result, seconds=seconds))
    return replace(comparison, results=tuple(results))


def describe_layers(result: VariantResult) -> str:
    """The variant's layers in one line."""
    if result.analysis is None:
        return ""
    return " → ".join(f"{r.type} {r.summary}".strip() for r in result.analysis.layers)


def describe_kernels(result: VariantResult) -> str:
    """The variant's convolutions by kernel and groups alone (strides and dilations when not 1): the
    short line a narrow terminal shows, where the full one would be cut to the same start.

    >>> from convcalc.readers import parse_layer
    >>> [describe_kernels(r) for r in compare((32, 56, 56), parse_layer("conv:64,k=3,p=1")).results][:3]
    ['3x3', '3x3 g=32 → 1x1', '3x3 g=16']
    """
    if result.analysis is None:
        return ""
    rank = len(result.analysis.network.input_shape) - 1

    def kernel(layer) -> str:
        text = _axes(layer.kernel_size, rank)
        for key, value in (("s", layer.stride), ("d", layer.dilation)):
            if _axes(value, rank) != _axes(1, rank):
                text += f" {key}={_axes(value, rank)}"
        return text + (f" g={layer.groups}" if layer.groups != 1 else "")

    return " → ".join(kernel(layer) for layer in result.variant.layers)


def _axes(value, rank: int) -> str:
    return "x".join(map(str, (value,) * rank if isinstance(value, int) else value))


__all__ = ["COMPARE_SCHEMA", "Comparison", "VARIANTS", "Variant", "VariantResult", "build_variants", "compare",
           "default_groups", "describe_kernels", "describe_layers", "time_variants"]


def comparison_to_dict(comparison, device=None) -> dict:
    """The ``convcalc.compare/1`` object: the standard layer and every variant."""
    standard = comparison.standard.analysis
    variants = []
    bounds = comparison.bounds(device) if device is not None else [None] * len(comparison.results)
    for result, bound in zip(comparison.results, bounds):
        variant = result.variant
        entry: dict = {"name": variant.name, "applicable": variant.applicable}
        if not variant.applicable:
            entry.update({"reason": variant.reason, "layers": [], "params": None, "macs": None, "flops": None,
                          "activation_bytes": None, "ratio_macs": None})
        else:
            totals = result.analysis.totals
            entry.update({
                "summary": describe_layers(result),
                "layers": analysis_to_dict(result.analysis)["layers"],
                "params": totals.params,
                "macs": totals.macs,
                "flops": totals.flops,
                "activation_bytes": totals.activation_bytes,
                "ratio_macs": None if result.ratio_macs is None else float(result.ratio_macs),
                "ratio_macs_exact": encode_fraction(result.ratio_macs),
            })
            if result.closed_form is not None:
                entry["closed_form_ratio"] = float(result.closed_form)
                entry["closed_form_ratio_exact"] = encode_fraction(result.closed_form)
        entry["notes"] = list(variant.notes)
        if bound is not None:
            entry["roofline"] = {"seconds": bound[0], "memory_bound_share": bound[1],
                                 "ratio": bound[0] / bounds[0][0] if bounds[0][0] else None}
        if result.seconds is not None:
            entry["run"] = {"seconds": result.seconds,
                            "ratio": result.seconds / comparison.standard.seconds if comparison.standard.seconds else None}
        variants.append(entry)
    return {
        "schema": COMPARE_SCHEMA,
        "input_shape": list(comparison.input_shape),
        "output_shape": list(standard.output_shape),
        "batch": standard.network.batch,
        "dtype": standard.network.dtype,
        "bias": comparison.layer.bias,
        "variants": variants,
        "device": None if device is None else device.name,
    }
