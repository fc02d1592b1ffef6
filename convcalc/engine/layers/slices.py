"""Layers that run on several slices of each sample with the same parameters.

PyTorch sees a tensor whose batch axis is merged with another size as that many more samples:
MViT's pooling convolution runs on ``(batch * heads, channels, T, H, W)``, LeViT's BatchNorm1d on
``(batch * tokens, channels)``. Per sample, convcalc's layer then receives ``(heads, channels, T,
H, W)``: a layer with ``slices=heads`` runs its kind on each ``(channels, T, H, W)`` slice along
axis 0, with one set of parameters. Its MACs, FLOPs and activations are ``slices`` times one
slice's; its parameters are counted once. A document writes it ``slices: 8``.

>>> from convcalc.engine.layers import Conv
>>> one = Conv(96, 3, groups=96, padding=1).infer((96, 8, 8))
>>> many = figures_of(Conv(96, 3, groups=96, padding=1, slices=2), ((2, 96, 8, 8),))
>>> many.output_shape, many.params == one.params, many.macs == 2 * one.macs
((2, 96, 8, 8), True, True)
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import ShapeError, SpecError
from .base import Figures, Layer, Shape, Use, format_shape
from ..windows import IDENTITY, Global
from .merge import Merge

__all__ = ["figures_of", "one_slice", "prepare_sliced", "slice_note"]


def figures_of(layer: Layer, incoming: tuple[Shape, ...]) -> Figures:
    """The layer's figures on the shapes it receives, slices included."""
    if isinstance(layer, Merge):
        if layer.slices != 1:
            raise SpecError(f"{type(layer).__name__} cannot run on slices: it reads its tensors whole (a layer "
                            "joining branches, or one known by its output shape)",
                            hint="drop slices; only a layer reading one tensor, batch first, runs on slices",
                            field="slices")
        return layer.merge(incoming)
    if len(incoming) != 1:
        raise SpecError(
            f"{type(layer).__name__} reads one layer but from names {len(incoming)}",
            hint="only merging layers (add, mul, concat, ...) join branches; give one name in from",
            field="from",
        )
    if layer.slices == 1:
        return layer.infer(incoming[0])
    return _sliced(layer, incoming[0])


def _sliced(layer: Layer, shape: Shape) -> Figures:
    k = layer.slices
    if len(shape) < 2 or shape[0] != k:
        raise ShapeError(f"slices={k} needs an input whose axis 0 holds {k} slices, but it receives "
                         f"{format_shape(shape)}",
                         hint=f"give slices the size of the input's first axis ({shape[0] if shape else 1})",
                         field="slices")
    one = layer.infer(shape[1:])
    if one.dims is not None or one.flat or one.continues is not None or one.broadcast:
        raise SpecError(f"{one.type} cannot run on slices: it moves or merges axes",
                        hint="drop slices; write the reshape that splits the batch instead", field="slices")
    # axis 0 (the slices) is kept position for position; the slice's own axis 0 (channels) is read as
    # the kind reads it, now from axis 1
    first = one.axis0 if one.axis0 is not None else (Global(shape[1]) if one.mixes_channels else IDENTITY)
    spatial = one.windows if one.windows is not None else (IDENTITY,) * (len(shape) - 2)
    return replace(one, output_shape=(k, *one.output_shape), macs=k * one.macs, flops=k * one.flops,
                   windows=(first, *spatial), mixes_channels=False, axis0=None)


def one_slice(layer: Layer, use: Use) -> Use:
    """How one slice of the layer is used (the shapes without the slices' axis, as many more samples
    in the batch): what its kind's ``saved`` and ``backward_macs`` rules are asked about."""
    if layer.slices == 1:
        return use
    return replace(use, inputs=tuple(s[1:] for s in use.inputs), output=use.output[1:],
                   batch=use.batch * layer.slices)


def prepare_sliced(layer: Layer, prepare, x):
    """Run the kind's ``prepare`` for one slice; the call reshapes the batch to hold the slices
    (``(batch, k, ...)`` to ``(batch * k, ...)``, as PyTorch sees it) and back."""
    if layer.slices == 1:
        return prepare(x)
    merge = x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])
    call = prepare(merge)

    def run(x):
        out = call(x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]))
        return out.reshape(x.shape[0], x.shape[1], *out.shape[1:])

    return run


def slice_note(layer: Layer) -> tuple[str, ...]:
    """The report's note for a layer on slices."""
    if layer.slices == 1:
        return ()
    return (f"runs on {layer.slices} slices of each sample (its input's axis 0) with the same parameters, as "
            "PyTorch does where the batch is merged with another axis: MACs and activations are counted "
            f"{layer.slices} times, parameters once",)
