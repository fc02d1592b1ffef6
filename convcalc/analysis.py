"""Analysing a network: each layer's shapes, costs and receptive field, and the totals."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConvcalcError, SpecError
from .layers import Layer, Shape
from .receptive import ReceptiveField, measure
from .sizes import volume

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}


@dataclass(frozen=True)
class Network:
    """A straight pipeline of layers applied to a per-sample input shape (channels first)."""

    input_shape: Shape
    layers: tuple[Layer, ...]
    batch: int = 1
    dtype: str = "float32"


@dataclass(frozen=True)
class LayerReport:
    """One layer's figures for the whole batch, and its output's receptive field."""

    index: int
    type: str
    summary: str
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    flops: int
    activation_bytes: int
    param_bytes: int
    receptive_field: ReceptiveField
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Totals:
    """Sums over every layer, for the whole batch."""

    params: int
    macs: int
    flops: int
    activation_bytes: int
    param_bytes: int


@dataclass(frozen=True)
class Analysis:
    """The result of ``analyse``: a report per layer, in order."""

    network: Network
    layers: tuple[LayerReport, ...]

    @property
    def output_shape(self) -> Shape:
        return self.layers[-1].output_shape if self.layers else self.network.input_shape

    @property
    def totals(self) -> Totals:
        return Totals(
            params=sum(r.params for r in self.layers),
            macs=sum(r.macs for r in self.layers),
            flops=sum(r.flops for r in self.layers),
            activation_bytes=sum(r.activation_bytes for r in self.layers),
            param_bytes=sum(r.param_bytes for r in self.layers),
        )

    def to_dict(self) -> dict:
        """The ``convcalc.shape/1`` JSON object (see the README)."""
        from .schema import analysis_to_dict

        return analysis_to_dict(self)


def analyse(network: Network) -> Analysis:
    """Check every layer against the shape it receives and compute its figures.

    Raises a ``ConvcalcError`` naming the layer (numbered from 1) and field
    for anything PyTorch would refuse.

    >>> from convcalc.layers import Conv, MaxPool
    >>> net = Network((3, 224, 224), (Conv(64, 7, stride=2, padding=3), MaxPool(3, stride=2, padding=1)))
    >>> result = analyse(net)
    >>> result.output_shape, result.totals.params
    ((64, 56, 56), 9472)
    >>> [str(s) for s in result.layers[-1].receptive_field.size]
    ['11', '11']
    """
    if isinstance(network.batch, bool) or not isinstance(network.batch, int) or network.batch < 1:
        raise SpecError(f"batch must be a positive integer (got {network.batch!r})", hint="e.g. --batch 8", field="batch")
    if network.dtype not in DTYPE_BYTES:
        raise SpecError(
            f"unknown dtype {network.dtype!r}", hint=f"use one of {', '.join(DTYPE_BYTES)}", field="dtype"
        )
    itemsize = DTYPE_BYTES[network.dtype]
    shape = tuple(network.input_shape)
    # one chain of receptive windows per spatial axis of the network input
    chains: list[list] = [[] for _ in shape[1:]]
    reports = []
    for index, layer in enumerate(network.layers, start=1):
        try:
            figures = layer.infer(shape)
        except ConvcalcError as err:
            raise err.located(layer=index, origin=layer.origin)
        if figures.windows is not None and len(figures.windows) == len(chains):
            for chain, window in zip(chains, figures.windows):
                chain.append(window)
        # After a Flatten the tensor's axes no longer line up with the input's;
        # the chains already end in Global windows and stay as they are.
        field = measure(chains, _along_input_axes(figures.output_shape, len(chains)))
        notes = figures.notes
        if any(field.varies):
            notes += ("receptive fields differ between output positions (size or placement); "
                      "the largest size is reported",)
        batch = network.batch
        reports.append(
            LayerReport(
                index=index,
                type=figures.type,
                summary=figures.summary,
                input_shape=shape,
                output_shape=figures.output_shape,
                params=figures.params,
                macs=batch * figures.macs,
                flops=batch * figures.flops,
                activation_bytes=batch * volume(figures.output_shape) * itemsize,
                param_bytes=figures.params * itemsize,
                receptive_field=field,
                notes=notes,
            )
        )
        shape = figures.output_shape
    return Analysis(network, tuple(reports))


def _along_input_axes(shape: Shape, rank: int) -> tuple[int, ...]:
    """How many output units lie along each input axis (1 once the axes are gone)."""
    spatial = shape[1:]
    return tuple(spatial) if len(spatial) == rank else (1,) * rank
