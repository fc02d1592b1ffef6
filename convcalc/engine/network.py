"""The data of an analysis: a network as given, each layer's report and the totals."""

from __future__ import annotations

from dataclasses import dataclass, field

from .dtypes import DTYPE_BYTES
from .layers import Layer, Shape
from .receptive import ReceptiveField


@dataclass(frozen=True)
class Network:
    """Layers applied to a per-sample input shape (channels first): a pipeline, or a
    graph where layers name what they read (see ``analyse``).

    >>> from convcalc.engine.layers import Conv
    >>> net = Network((3, 32, 32), (Conv(16, 3),), batch=8)
    >>> net.input_shape, len(net.layers), net.batch
    ((3, 32, 32), 1, 8)

    ``frozen`` names the parameter tensors that are not trained (PyTorch's
    ``requires_grad=False``), by the names layers give in ``weights``. The last
    layer is the output; ``outputs`` names further layers whose results the
    network also returns (a segmentation model's auxiliary head).

    ``unused`` lists the parameters of a model that no layer reads, so that totals still
    add up to the model's: (module, parameters, trainable ones, whether the forward pass
    reads them at all). An auxiliary head that runs only in training is not read; a table
    turned into fixed tensors before the first layer (a bias computed by a small network of
    its own) is read, but by no per-sample layer.
    """

    input_shape: Shape
    layers: tuple[Layer, ...]
    batch: int = 1
    dtype: str = "float32"
    frozen: frozenset[str] = frozenset()
    outputs: tuple[str, ...] = ()
    unused: tuple[tuple[str, int, int, bool], ...] = ()
    # Of ``outputs``, the results the forward pass computes and returns nowhere (a reader keeps them, as
    # PyTorch runs them): no loss reads them, so no gradient flows back from them in a training step.
    unreturned: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)  # slots: a deep network makes one per layer
class LayerReport:
    """One layer's figures for the whole batch, and its output's receptive field.

    ``params`` leaves out tensors an earlier layer already counted (tied
    weights); ``counted`` is False for an operation whose MACs and FLOPs
    convcalc cannot compute (they are reported as 0 and left out of the totals).

    >>> from convcalc import analyse_tokens
    >>> report = analyse_tokens("3x32x32", "conv:16,k=3").layers[0]
    >>> report.type, report.output_shape, report.params, report.receptive_field.size
    ('Conv2d', (16, 30, 30), 448, (3, 3))
    """

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
    name: str | None = None
    inputs: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    counted: bool = True
    trainable_params: int | None = None  # None: all of params

    @property
    def trainable(self) -> int:
        return self.params if self.trainable_params is None else self.trainable_params


@dataclass(frozen=True)
class Totals:
    """Sums over every layer, for the whole batch (MACs and FLOPs of counted layers only).

    >>> from convcalc import analyse_tokens
    >>> totals = analyse_tokens("3x32x32", "conv:16,k=3", "relu", batch=2).totals
    >>> totals.params, totals.macs, totals.uncounted_layers
    (448, 777600, 0)
    """

    params: int
    macs: int
    flops: int
    activation_bytes: int
    param_bytes: int
    trainable_params: int = 0
    uncounted_layers: int = 0
    unused_params: int = 0  # in params: the model's parameters its forward pass does not use


@dataclass(frozen=True, repr=False)  # its own repr: one line, not every report
class Analysis:
    """The result of ``analyse``: a report per layer, in order.

    >>> from convcalc import analyse_tokens
    >>> analyse_tokens("3x32x32", "conv:16,k=3", "maxpool:2")
    <Analysis 3x32x32 -> 16x15x15: 2 layers, 448 params, 388,800 MACs>
    """

    network: Network
    layers: tuple[LayerReport, ...]
    # the receptive-field graph and each layer's node in it, for field_of
    graph: object = field(default=None, compare=False, repr=False)
    nodes: dict = field(default_factory=dict, compare=False, repr=False)
    # what each layer reads and the order they run in, as analysed (the memory and time figures walk them)
    sources: tuple = field(default=(), compare=False, repr=False)
    order: tuple = field(default=(), compare=False, repr=False)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.network.input_shape))
        out = "x".join(map(str, self.output_shape))
        totals = self.totals
        uncounted = f", {totals.uncounted_layers} not counted" if totals.uncounted_layers else ""
        return (f"<Analysis {shape} -> {out}: {len(self.layers)} layers, {totals.params:,} params, "
                f"{totals.macs:,} MACs{uncounted}>")

    def field_of(self, layer: int, unit: int, axis: int) -> tuple[int, int] | None:
        """The first and last network-input positions along input ``axis`` that output unit ``unit`` of
        layer ``layer`` (numbered from 1) reads, padding counted as positions; None if it reads none.

        >>> from convcalc import analyse_tokens
        >>> analyse_tokens("1x16", "conv:1,k=3,p=1", "conv:1,k=3,s=2").field_of(2, 1, 0)
        (1, 5)
        """
        if self.graph is None or layer - 1 not in self.nodes:
            raise ValueError(f"no receptive fields for layer {layer} (analysed without them?)")
        return self.graph.bounds(self.nodes[layer - 1], unit, axis)

    @property
    def output_shape(self) -> Shape:
        """The last layer's output: the network's output."""
        if not self.layers:
            return self.network.input_shape
        return max(self.layers, key=lambda r: r.index).output_shape

    @property
    def totals(self) -> Totals:
        cache = self.__dict__.setdefault("_figures", {})  # computed once: a frozen dataclass keeps a __dict__
        if "totals" not in cache:
            cache["totals"] = self._sum()
        return cache["totals"]

    def _sum(self) -> Totals:
        outside = sum(count for _, count, _, _ in self.network.unused)  # parameters no layer holds
        return Totals(
            params=sum(r.params for r in self.layers) + outside,
            macs=sum(r.macs for r in self.layers),
            flops=sum(r.flops for r in self.layers),
            activation_bytes=sum(r.activation_bytes for r in self.layers),
            param_bytes=sum(r.param_bytes for r in self.layers) + outside * DTYPE_BYTES[self.network.dtype],
            trainable_params=sum(r.trainable for r in self.layers) + sum(t for _, _, t, _ in self.network.unused),
            uncounted_layers=sum(not r.counted for r in self.layers),
            unused_params=sum(count for _, count, _, read in self.network.unused if not read),
        )

    def to_dict(self, optimizer: str = "adam", device=None) -> dict:
        """The ``convcalc.shape/1`` JSON object (see docs/json.md); the training
        figures assume ``optimizer`` (sgd, momentum, adam, adamw), and the
        roofline bounds are on ``device`` (an ``engine.devices.Device``, or None)."""
        from .schema import analysis_to_dict

        return analysis_to_dict(self, optimizer, device)
