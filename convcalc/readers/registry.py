"""Every layer kind convcalc knows, by every name it answers to.

One table serves the three ways of writing a layer (shell tokens, PyTorch
constructor text, JSON documents), so they accept and refuse the same things.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from ..engine.layers import (
    ACTIVATION_FLOPS,
    Activation,
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    Add,
    AvgPool,
    BatchNorm,
    Concat,
    Conv,
    ConvTranspose,
    Dropout,
    Flatten,
    Layer,
    Linear,
    MaxPool,
    Upsample,
    ZeroPad,
)


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

    def make(self, arguments: dict, origin) -> Layer:
        if self.rank is not None and "rank" in _internal(self.build):
            arguments = {**arguments, "rank": self.rank}
        return self.build(**self.extra, **arguments, origin=origin)


def _internal(build) -> tuple[str, ...]:
    cls = build.func if isinstance(build, partial) else build
    return tuple(f for f in getattr(cls, "__dataclass_fields__", {}) if f == "rank")


CONV_FIELDS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
               "padding_mode")
CONVT_FIELDS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "groups", "bias",
                "dilation", "padding_mode", "output_size")
MAXPOOL_FIELDS = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
AVGPOOL_FIELDS = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
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
}
ACTIVATION_TOKEN_POSITIONAL = {"LeakyReLU": ("negative_slope",), "GELU": ("approximate",)}

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

    family(("conv", "convolution"), "Conv", Conv, CONV_FIELDS, ("out_channels",), ("out_channels", "kernel_size"))
    family(("convt", "convtranspose", "deconv", "tconv"), "ConvTranspose", ConvTranspose, CONVT_FIELDS,
           ("out_channels",), ("out_channels", "kernel_size"))
    family(("maxpool", "mp"), "MaxPool", MaxPool, MAXPOOL_FIELDS, ("kernel_size",), ("kernel_size",))
    family(("avgpool", "ap"), "AvgPool", AvgPool, AVGPOOL_FIELDS, ("kernel_size",), ("kernel_size",))
    family(("adaptiveavgpool", "aap"), "AdaptiveAvgPool", AdaptiveAvgPool, ("output_size",), ("output_size",),
           ("output_size",))
    family(("adaptivemaxpool", "amp"), "AdaptiveMaxPool", AdaptiveMaxPool, ("output_size", "return_indices"),
           ("output_size",), ("output_size",))
    family(("bn", "batchnorm"), "BatchNorm", BatchNorm, BN_FIELDS, ("num_features",), ())
    family(("pad", "zeropad"), "ZeroPad", ZeroPad, ("padding",), ("padding",), ("padding",))
    add(Kind("gap", partial(AdaptiveAvgPool, 1), (), ()), "gap", "globalavgpool")
    add(Kind("linear", Linear, ("in_features", "out_features", "bias"), ("out_features",), None, ("out_features",)),
        "linear", "fc", "dense")
    add(Kind("flatten", Flatten, ("start_dim", "end_dim")), "flatten")
    add(Kind("dropout", Dropout, ("p", "inplace"), ("p",)), "dropout", "dropout1d", "dropout2d", "dropout3d")
    add(Kind("upsample", Upsample, ("size", "scale_factor", "mode", "align_corners"), ("scale_factor",)),
        "upsample", "up", "upsamplingnearest2d")
    for function in ACTIVATION_FLOPS:
        add(
            Kind(function.lower(), Activation, ACTIVATION_FIELDS[function],
                 ACTIVATION_TOKEN_POSITIONAL.get(function, ()), extra={"function": function}),
            function,
        )
    add(Kind("add", Add, ()), "add")
    add(Kind("concat", Concat, ("dim",), ("dim",)), "concat", "cat")
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
