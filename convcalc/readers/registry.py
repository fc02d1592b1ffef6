"""Every layer kind convcalc knows, by every name it answers to.

One table serves the three ways of writing a layer (shell tokens, PyTorch
constructor text, JSON documents), so they accept and refuse the same things.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

from ..engine import layers as L
from ..engine.layers import ACTIVATION_FLOPS, Layer


@dataclass(frozen=True)
class Kind:
    """A layer kind: how to build it, which arguments it takes and in what order.

    ``fields`` follow PyTorch's positional order (used for constructor text);
    ``token_positional`` is what bare values in a shell token mean.
    """

    name: str
    build: Callable[..., Layer]
    fields: tuple[str, ...]
    token_positional: tuple[str, ...] = ()
    rank: int | None = None
    required: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)  # fixed arguments, e.g. the activation function

    def make(self, arguments: dict, origin, **wiring) -> Layer:
        """The layer spec; ``wiring`` sets what the base Layer holds (name, inputs, path, ...)."""
        if self.rank is not None and "rank" in _internal(self.build):
            arguments = {**arguments, "rank": self.rank}
        return self.build(**self.extra, **arguments, origin=origin, **wiring)


@lru_cache(maxsize=None)
def _internal(build) -> tuple[str, ...]:
    cls = build.func if isinstance(build, partial) else build
    return tuple(f for f in getattr(cls, "__dataclass_fields__", {}) if f == "rank")


CONV_FIELDS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
               "padding_mode")
CONVT_FIELDS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias",
                "dilation", "padding_mode", "output_size")
# "onnx" (last: it is no PyTorch argument) selects ONNX's pooling rules, which allow any padding
MAXPOOL_FIELDS = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode", "onnx")
AVGPOOL_FIELDS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override", "onnx")
BN_FIELDS = ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias")
ACTIVATION_FIELDS = {
    "ReLU": ("inplace",),
    "ReLU6": ("inplace",),
    "LeakyReLU": ("negative_slope", "inplace"),
    "GELU": ("approximate",),
    "SiLU": ("inplace",),
    "Sigmoid": (),
    "Tanh": (),
    "Hardswish": ("inplace",),
    "Hardsigmoid": ("inplace",),
    "Hardtanh": ("min_val", "max_val", "inplace"),
    "Mish": ("inplace",),
    "ELU": ("alpha", "inplace"),
    "SELU": ("inplace",),
    "Softplus": ("beta", "threshold"),
    "Softsign": (),
    "Erf": (),
}
ACTIVATION_TOKEN_POSITIONAL = {"LeakyReLU": ("negative_slope",), "GELU": ("approximate",), "ELU": ("alpha",),
                               "Hardtanh": ("min_val", "max_val")}
NORM_FIELDS = ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias")
LAYERNORM_FIELDS = ("normalized_shape", "eps", "elementwise_affine", "bias")
ARITHMETIC_FIELDS = ("scalar", "weight_shape", "constant_shape")
UPSAMPLE_FIELDS = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")

# Short keys accepted everywhere, mapped to PyTorch's argument names.
SHORT_KEYS = {
    "k": "kernel_size", "s": "stride", "p": "padding", "d": "dilation", "g": "groups", "op": "output_padding",
    "scale": "scale_factor", "slope": "negative_slope", "ceil": "ceil_mode",
}
# Keys whose PyTorch name depends on the kind.
CONTEXT_KEYS = {"in": ("in_channels", "in_features", "num_features"), "out": ("out_channels", "out_features")}


def _build_kinds() -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}

    def add(kind: Kind, *names: str) -> None:
        for name in names:
            kinds[name.lower()] = kind

    def family(short_names, torch_base, build, fields, positional, required, ranks=(1, 2, 3)):
        add(Kind(short_names[0], build, fields, positional, None, required), *short_names)
        for rank in ranks:
            add(Kind(f"{torch_base}{rank}d", build, fields, positional, rank, required), f"{torch_base}{rank}d")

    family(("conv", "convolution"), "Conv", L.Conv, CONV_FIELDS, ("out_channels",), ("out_channels", "kernel_size"))
    family(("convt", "convtranspose", "deconv", "tconv"), "ConvTranspose", L.ConvTranspose, CONVT_FIELDS,
           ("out_channels",), ("out_channels", "kernel_size"))
    family(("maxpool", "mp"), "MaxPool", L.MaxPool, MAXPOOL_FIELDS, ("kernel_size",), ("kernel_size",))
    family(("avgpool", "ap"), "AvgPool", L.AvgPool, AVGPOOL_FIELDS, ("kernel_size",), ("kernel_size",))
    family(("adaptiveavgpool", "aap"), "AdaptiveAvgPool", L.AdaptiveAvgPool, ("output_size",), ("output_size",),
           ("output_size",))
    family(("adaptivemaxpool", "amp"), "AdaptiveMaxPool", L.AdaptiveMaxPool, ("output_size", "return_indices"),
           ("output_size",), ("output_size",))
    family(("bn", "batchnorm"), "BatchNorm", L.BatchNorm, BN_FIELDS, ("num_features",), ())
    family(("instancenorm", "inorm"), "InstanceNorm", L.InstanceNorm, NORM_FIELDS, ("num_features",), ())
    family(("pad", "zeropad"), "ZeroPad", L.ZeroPad, ("padding",), ("padding",), ("padding",))
    for mode, base in (("constant", "ConstantPad"), ("reflect", "ReflectionPad"), ("replicate", "ReplicationPad"),
                       ("circular", "CircularPad")):
        fields = ("padding", "value") if mode == "constant" else ("padding",)
        for rank in (None, 1, 2, 3):
            name = base + (f"{rank}d" if rank else "")
            add(Kind(name if rank else base.lower(), L.Pad, fields, ("padding",), rank, ("padding",),
                     {"mode": mode}), name)
    add(Kind("gap", partial(L.AdaptiveAvgPool, 1), (), ()), "gap", "globalavgpool")
    add(Kind("linear", L.Linear, ("in_features", "out_features", "bias"), ("out_features",), None, ("out_features",)),
        "linear", "fc", "dense")
    add(Kind("flatten", L.Flatten, ("start_dim", "end_dim")), "flatten")
    add(Kind("dropout", L.Dropout, ("p", "inplace", "variant"), ("p",)), "dropout")
    for rank in (1, 2, 3):
        add(Kind(f"Dropout{rank}d", L.Dropout, ("p", "inplace"), ("p",), None, (), {"variant": "feature"}),
            f"dropout{rank}d")
    add(Kind("AlphaDropout", L.Dropout, ("p", "inplace"), ("p",), None, (), {"variant": "alpha"}), "alphadropout")
    add(Kind("FeatureAlphaDropout", L.Dropout, ("p", "inplace"), ("p",), None, (), {"variant": "feature_alpha"}),
        "featurealphadropout")
    add(Kind("stochasticdepth", L.StochasticDepth, ("p", "mode"), ("p",)), "stochasticdepth")
    add(Kind("identity", L.Identity, ()), "identity")
    add(Kind("upsample", L.Upsample, UPSAMPLE_FIELDS, ("scale_factor",)), "upsample", "up", "interpolate")
    add(Kind("upsamplingnearest2d", L.Upsample, ("size", "scale_factor"), ("size", "scale_factor"), None, (),
             {"mode": "nearest"}), "upsamplingnearest2d")
    add(Kind("upsamplingbilinear2d", L.Upsample, ("size", "scale_factor"), ("size", "scale_factor"), None, (),
             {"mode": "bilinear", "align_corners": True}), "upsamplingbilinear2d")
    for function in ACTIVATION_FLOPS:
        add(
            Kind(function.lower(), L.Activation, ACTIVATION_FIELDS[function],
                 ACTIVATION_TOKEN_POSITIONAL.get(function, ()), extra={"function": function}),
            function,
        )
    add(Kind("prelu", L.PReLU, ("num_parameters", "init"), ("num_parameters",)), "prelu")
    add(Kind("softmax", L.Softmax, ("dim",), ("dim",)), "softmax")
    add(Kind("logsoftmax", L.Softmax, ("dim",), ("dim",), extra={"log": True}), "logsoftmax")
    add(Kind("layernorm", L.LayerNorm, LAYERNORM_FIELDS, ("normalized_shape",), None, ("normalized_shape",)),
        "layernorm", "ln")
    add(Kind("layernorm2d", L.LayerNorm2d, LAYERNORM_FIELDS, ("normalized_shape",)), "layernorm2d")
    add(Kind("groupnorm", L.GroupNorm, ("num_groups", "num_channels", "eps", "affine", "bias"), ("num_groups",), None,
             ("num_groups",)), "groupnorm", "gn")
    add(Kind("localresponsenorm", L.LocalResponseNorm, ("size", "alpha", "beta", "k"), ("size",), None, ("size",)),
        "localresponsenorm", "lrn")
    for cls, names in ((L.Add, ("add",)), (L.Sub, ("sub", "subtract")), (L.Mul, ("mul", "multiply")),
                       (L.Div, ("div", "divide"))):
        add(Kind(names[0], cls, ARITHMETIC_FIELDS, ("scalar",)), *names)
    add(Kind("concat", L.Concat, ("dim",), ("dim",)), "concat", "cat")
    add(Kind("permute", L.Permute, ("dims",), ("dims",), None, ("dims",)), "permute")
    add(Kind("transpose", L.Transpose, ("dim0", "dim1"), ("dim0", "dim1"), None, ("dim0", "dim1")), "transpose")
    add(Kind("reshape", L.Reshape, ("shape",), ("shape",), None, ("shape",)), "reshape", "view")
    add(Kind("squeeze", L.Squeeze, ("dim",), ("dim",)), "squeeze")
    add(Kind("unsqueeze", L.Unsqueeze, ("dim",), ("dim",), None, ("dim",)), "unsqueeze")
    add(Kind("channelshuffle", L.ChannelShuffle, ("groups",), ("groups",), None, ("groups",)), "channelshuffle",
        "shuffle")
    add(Kind("pixelshuffle", L.PixelShuffle, ("upscale_factor",), ("upscale_factor",), None, ("upscale_factor",)),
        "pixelshuffle")
    add(Kind("pixelunshuffle", L.PixelUnshuffle, ("downscale_factor",), ("downscale_factor",), None,
             ("downscale_factor",)), "pixelunshuffle")
    add(Kind("slice", L.Slice, ("dim", "start", "end", "step"), ("dim", "start", "end", "step"), None, ("dim",)),
        "slice")
    add(Kind("narrow", L.Narrow, ("dim", "start", "length"), ("dim", "start", "length"), None,
             ("dim", "start", "length")), "narrow")
    add(Kind("chunk", L.Chunk, ("chunks", "dim", "index"), ("chunks", "dim", "index"), None, ("chunks",)), "chunk")
    add(Kind("split", L.Split, ("split_size_or_sections", "dim", "index"), ("split_size_or_sections", "dim", "index"),
             None, ("split_size_or_sections",)), "split")
    add(Kind("select", L.Select, ("dim", "index"), ("dim", "index"), None, ("dim", "index")), "select")
    for function in ("mean", "sum"):
        add(Kind(function, L.Reduce, ("dim", "keepdim"), ("dim",), extra={"function": function}), function)
    add(Kind("resize", L.OnnxResize, ("sizes", "mode", "coordinate", "rounding", "scales"), ("sizes",), None,
             ("sizes",)), "resize")
    add(Kind("opaque", L.Opaque, ("op", "output", "params"), ("op",), None, ("op", "output")), "opaque")
    add(kinds["silu"], "swish")
    add(kinds["hardswish"], "hswish")
    return kinds


KINDS = _build_kinds()


def find_kind(name: str) -> Kind | None:
    """The kind a (case-insensitive) name stands for, or None.

    >>> find_kind("Conv2d").rank, find_kind("conv").rank
    (2, None)
    """
    return KINDS.get(name.lower())


def canonical_key(kind: Kind, key: str) -> str:
    """PyTorch's argument name for a key as written (short keys resolved).

    >>> canonical_key(find_kind("conv"), "k"), canonical_key(find_kind("linear"), "in")
    ('kernel_size', 'in_features')
    """
    if key in kind.fields:  # a kind's own argument wins over a short key (Dropout's p)
        return key
    if key in CONTEXT_KEYS:
        for name in CONTEXT_KEYS[key]:
            if name in kind.fields:
                return name
    return SHORT_KEYS.get(key, key)


def token_names() -> list[str]:
    """Every kind name a token may start with (for help and completion)."""
    return sorted(KINDS)
