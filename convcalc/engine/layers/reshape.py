"""Layers that change the layout: Flatten, Linear, Upsample and zero padding."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ShapeError, SpecError
from ..receptive import IDENTITY, Global, Nearest, Shift
from ..sizes import volume
from .base import Figures, Layer, Shape, format_shape, format_tuple, short, spatial_rank

INTERNAL = {"internal": True}


@dataclass(frozen=True)
class Flatten(Layer):
    """``torch.nn.Flatten``; dims count the batch axis, as in PyTorch.

    >>> Flatten().infer((512, 7, 7)).output_shape
    (25088,)
    """

    start_dim: int = 1
    end_dim: int = -1

    def infer(self, shape: Shape) -> Figures:
        ndim = len(shape) + 1  # with the batch axis
        dims = []
        for name, dim in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -ndim <= dim < ndim:
                raise ShapeError(
                    f"{name}={dim} is out of range for a {ndim}-dimensional batch of {format_shape(shape)}",
                    hint=f"use a dim between {-ndim} and {ndim - 1}",
                    field=name,
                )
            dims.append(dim % ndim)
        start, end = dims
        if start > end:
            raise ShapeError(
                f"start_dim={self.start_dim} comes after end_dim={self.end_dim}",
                hint="swap them, or use the defaults start_dim=1, end_dim=-1",
                field="start_dim",
            )
        if start == 0:
            raise ShapeError(
                "flattening the batch axis (start_dim=0) changes the batch, which convcalc keeps separate",
                hint="use start_dim=1",
                field="start_dim",
            )
        first, last = start - 1, end - 1  # axes of the per-sample shape
        output = shape[:first] + (volume(shape[first : last + 1]),) + shape[last + 1 :]
        merged = last > first
        windows = tuple(
            Global(n) if merged and first <= axis + 1 <= last else IDENTITY for axis, n in enumerate(shape[1:])
        )
        dims = tuple(range(first)) + ((first if not merged else None),) + tuple(range(last + 1, len(shape)))
        return Figures("Flatten", output, 0, 0, 0, windows, (), "", dims=dims, mixes_channels=merged and first == 0)


@dataclass(frozen=True)
class Linear(Layer):
    """``torch.nn.Linear`` over the last axis, as PyTorch applies it.

    >>> fig = Linear(1000).infer((512,))
    >>> fig.params, fig.macs
    (513000, 512000)
    """

    out_features: int
    bias: bool = True
    in_features: int | None = None

    def infer(self, shape: Shape) -> Figures:
        features = shape[-1]
        if self.in_features is not None and self.in_features != features:
            hint = "omit in_features to take it from the input, or fix the layer before"
            if len(shape) > 1 and volume(shape) == self.in_features:
                hint = f"put a flatten layer before it: the input {format_shape(shape)} flattens to {self.in_features}"
            raise ShapeError(
                f"in_features={self.in_features} but the last axis of the input {format_shape(shape)} has {features}",
                hint=hint,
                field="in_features",
            )
        if self.out_features < 1:
            raise ShapeError(
                f"out_features must be positive (got {self.out_features})", hint="give at least 1", field="out_features"
            )
        output = shape[:-1] + (self.out_features,)
        macs = volume(shape[:-1]) * features * self.out_features
        params = features * self.out_features + (self.out_features if self.bias else 0)
        flops = 2 * macs + (volume(output) if self.bias else 0)
        notes, windows = (), ()
        if len(shape) > 1:
            notes = (f"Linear acts on the last axis ({features}) of {format_shape(shape)}, as PyTorch does; "
                     "put flatten before it to use every feature",)
            windows = (IDENTITY,) * (len(shape) - 2) + (Global(features),)
        summary = f"{features}→{self.out_features}" + ("" if self.bias else " bias=False")
        tensors = (("weight", features * self.out_features),) + ((("bias", self.out_features),) if self.bias else ())
        return Figures("Linear", output, params, macs, flops, windows, notes, summary, mixes_channels=len(shape) == 1,
                       tensors=tensors)


@dataclass(frozen=True)
class Upsample(Layer):
    """``torch.nn.Upsample`` in nearest mode with an integer scale factor.

    >>> Upsample(scale_factor=2).infer((16, 8, 8)).output_shape
    (16, 16, 16)
    """

    size: int | tuple[int, ...] | None = None
    scale_factor: int | float | tuple[int, ...] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None

    def infer(self, shape: Shape) -> Figures:
        rank = spatial_rank(shape, "Upsample", None)
        if self.mode != "nearest":
            raise SpecError(
                f"mode={self.mode!r} is not supported; convcalc models nearest upsampling",
                hint="use mode=nearest",
                field="mode",
            )
        if self.size is not None or self.scale_factor is None:
            raise SpecError(
                "give scale_factor (an integer), not size",
                hint="e.g. up:2 or upsample:scale_factor=2",
                field="size" if self.size is not None else "scale_factor",
            )
        factors = self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * rank
        if len(factors) != rank or any(float(f) != int(f) or int(f) < 1 for f in factors):
            raise SpecError(
                f"scale_factor={format_tuple(factors)} must be {rank} positive integer(s)",
                hint="use an integer scale factor such as 2",
                field="scale_factor",
            )
        factors = tuple(int(f) for f in factors)
        output = (shape[0], *(n * f for n, f in zip(shape[1:], factors)))
        windows = tuple(Nearest(f) for f in factors)
        return Figures("Upsample", output, 0, 0, 0, windows, (), f"×{short(factors)} nearest")


@dataclass(frozen=True)
class ZeroPad(Layer):
    """``torch.nn.ZeroPad1d/2d/3d``: per-side amounts, last axis first, as PyTorch orders them.

    >>> ZeroPad((0, 1, 0, 1)).infer((3, 224, 224)).output_shape
    (3, 225, 225)
    """

    padding: int | tuple[int, ...]
    rank: int | None = field(default=None, metadata=INTERNAL)

    def sides(self, rank: int) -> tuple[tuple[int, int], ...]:
        """(begin, end) per spatial axis, first axis first."""
        if isinstance(self.padding, int):
            return ((self.padding, self.padding),) * rank
        if len(self.padding) != 2 * rank:
            raise SpecError(
                f"padding has {len(self.padding)} values but a {rank}d input needs 1 or {2 * rank} "
                "(begin and end of each axis, last axis first)",
                hint="e.g. pad:1 or pad:" + "x".join(["1"] * (2 * rank)),
                field="padding",
            )
        pairs = [(self.padding[2 * i], self.padding[2 * i + 1]) for i in range(rank)]
        return tuple(reversed(pairs))

    def infer(self, shape: Shape) -> Figures:
        rank = spatial_rank(shape, f"ZeroPad{self.rank}d" if self.rank else "ZeroPad", self.rank)
        sides = self.sides(rank)
        out_sizes = tuple(n + b + e for n, (b, e) in zip(shape[1:], sides))
        if any(n < 0 for n in out_sizes):
            raise ShapeError(
                f"negative padding crops more than the input {format_shape(shape)} has",
                hint="use smaller negative amounts",
                field="padding",
            )
        windows = tuple(Shift(b) for b, _ in sides)
        summary = " ".join(f"{b}+{e}" for b, e in sides)
        return Figures(f"ZeroPad{rank}d", (shape[0], *out_sizes), 0, 0, 0, windows, (), summary)
