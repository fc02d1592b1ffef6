"""Analysing a network: each layer's shapes, costs and receptive field, and the totals."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .dtypes import DTYPE_BYTES  # noqa: E402,F401 - part of this module's API
from .errors import ConvcalcError, SpecError
from .layers import Layer, Merge, Shape
from .receptive import FieldGraph, ReceptiveField
from .sizes import volume


@dataclass(frozen=True)
class Network:
    """Layers applied to a per-sample input shape (channels first): a pipeline, or a
    graph where layers name what they read (see ``analyse``)."""

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
    name: str | None = None
    inputs: tuple[str, ...] = ()
    path: tuple[str, ...] = ()


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
        """The last layer's output: the network's output."""
        if not self.layers:
            return self.network.input_shape
        return max(self.layers, key=lambda r: r.index).output_shape

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


def analyse(network: Network, *, receptive_fields: bool = True) -> Analysis:
    """Check every layer against the shape it receives and compute its figures.

    Layers run in order, each reading the one before it, unless they name the
    layers they read (``inputs``, written ``from`` in documents; the network
    input is ``input``): then the network is a graph, analysed in dependency
    order. Raises a ``ConvcalcError`` naming the layer (numbered from 1) and
    field for anything PyTorch would refuse. ``receptive_fields=False`` skips
    them (reported as zero) when only shapes and costs matter, as in searches.

    >>> from convcalc.engine.layers import Conv, MaxPool
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
    layers = network.layers
    sources = resolve_sources(layers)
    order = dependency_order(layers, sources)
    rank = len(network.input_shape) - 1
    graph = FieldGraph(rank)
    node_of = {INPUT: 0}  # layer index (or INPUT) -> FieldGraph node
    shapes = {INPUT: tuple(network.input_shape)}
    fields = {INPUT: None}
    reports = []
    for i in order:
        layer = layers[i]
        try:
            if isinstance(layer, Merge):
                figures = layer.merge(tuple(shapes[s] for s in sources[i]))
            else:
                if len(sources[i]) != 1:
                    raise SpecError(
                        f"{type(layer).__name__} reads one layer but from names {len(sources[i])}",
                        hint="only add and concat join branches; give one name in from",
                        field="from",
                    )
                figures = layer.infer(shapes[sources[i][0]])
        except ConvcalcError as err:
            raise err.located(layer=i + 1, origin=layer.origin)
        shapes[i] = figures.output_shape
        if receptive_fields:
            node = graph.add(tuple(node_of[s] for s in sources[i]), figures.windows)
            node_of[i] = node
            field = graph.measure(node, _along_input_axes(figures.output_shape, rank))
        else:
            field = ReceptiveField((0,) * rank, (None,) * rank, (Fraction(0),) * rank, (False,) * rank)
        fields[i] = field
        notes = layer.remark + figures.notes
        if len(sources[i]) > 1:
            notes += _misalignment([fields[s] for s in sources[i]], [_label(layers, s) for s in sources[i]])
        if any(field.varies):
            notes += ("receptive fields differ between output positions (size or placement); "
                      "the largest size is reported",)
        batch = network.batch
        reports.append(
            LayerReport(
                index=i + 1,
                type=figures.type,
                summary=figures.summary,
                input_shape=shapes[sources[i][0]],
                output_shape=figures.output_shape,
                params=figures.params,
                macs=batch * figures.macs,
                flops=batch * figures.flops,
                activation_bytes=batch * volume(figures.output_shape) * itemsize,
                param_bytes=figures.params * itemsize,
                receptive_field=field,
                notes=notes,
                name=layer.name,
                inputs=tuple(_label(layers, s) for s in sources[i]),
                path=layer.path,
            )
        )
    return Analysis(network, tuple(reports))


INPUT = "input"


def _label(layers, source) -> str:
    """How a source is named in reports: its name, ``input``, or ``#n`` for an unnamed layer."""
    if source == INPUT:
        return INPUT
    return layers[source].name or f"#{source + 1}"


def resolve_sources(layers) -> list[tuple]:
    """For each layer, the indices (or INPUT) of the layers it reads."""
    names: dict[str, int] = {}
    for i, layer in enumerate(layers):
        if layer.name is None:
            continue
        if layer.name == INPUT or layer.name in names:
            reason = "is the network input's name" if layer.name == INPUT else f"is taken by layer {names[layer.name] + 1}"
            raise SpecError(f"the name {layer.name!r} {reason}", hint="give each layer its own name",
                            field="name", layer=i + 1, origin=layer.origin)
        names[layer.name] = i
    sources = []
    for i, layer in enumerate(layers):
        if layer.inputs is None:
            sources.append((i - 1,) if i else (INPUT,))
            continue
        found = []
        for wanted in layer.inputs:
            if wanted == INPUT:
                found.append(INPUT)
            elif isinstance(wanted, int) and 0 <= wanted < len(layers) and wanted != i:
                found.append(wanted)  # an unnamed layer, by position (documents' blocks refer so)
            elif wanted in names:
                found.append(names[wanted])
            else:
                known = ", ".join([INPUT, *names]) or INPUT
                raise SpecError(f"from names {wanted!r}, which no layer is called",
                                hint=f"name one of: {known}", field="from", layer=i + 1, origin=layer.origin)
        sources.append(tuple(found))
    return sources


def dependency_order(layers, sources) -> list[int]:
    """Layers in an order where each comes after what it reads (document order where free).

    Refuses cycles, and layers whose output nothing reads (the last layer is the output).
    """
    readers: dict[int, list[int]] = {i: [] for i in range(len(layers))}
    waiting = {}
    for i, srcs in enumerate(sources):
        real = {s for s in srcs if s != INPUT}
        waiting[i] = len(real)
        for s in real:
            readers[s].append(i)
    ready = sorted(i for i, n in waiting.items() if n == 0)
    order = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
                ready.sort()
    if len(order) < len(layers):
        stuck = [i for i in range(len(layers)) if i not in set(order)]
        cycle = " → ".join(_label(layers, i) for i in stuck)
        first = layers[stuck[0]]
        raise SpecError(f"layers {cycle} read each other in a cycle", hint="a layer may only read layers that do not read it",
                        field="from", layer=stuck[0] + 1, origin=first.origin)
    output = len(layers) - 1
    for i in range(len(layers) - 1):
        if not readers[i] and i != output:
            raise SpecError(f"layer {_label(layers, i)!r}'s output is never used",
                            hint="read it with from in a later layer, or remove it; the last layer is the output",
                            field="name", layer=i + 1, origin=layers[i].origin)
    return order


def _misalignment(fields, labels) -> tuple[str, ...]:
    """Notes for branches whose receptive fields do not line up where they merge."""
    first, notes = fields[0], []
    if first is None or any(f is None for f in fields):
        return ()
    for field, label in zip(fields[1:], labels[1:]):
        for axis, (j0, j1, c0, c1) in enumerate(zip(first.jump, field.jump, first.centre, field.centre)):
            if j0 != j1:
                notes.append(f"branches {labels[0]!r} and {label!r} are not aligned on axis {axis}: "
                             f"jumps {j0} and {j1}")
            elif c0 != c1:
                notes.append(f"branches {labels[0]!r} and {label!r} are not aligned on axis {axis}: "
                             f"centres {c0} and {c1}")
    return tuple(notes)


def _along_input_axes(shape: Shape, rank: int) -> tuple[int, ...]:
    """How many output units lie along each input axis (1 once the axes are gone)."""
    spatial = shape[1:]
    return tuple(spatial) if len(spatial) == rank else (1,) * rank
