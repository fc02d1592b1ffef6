"""Analysing a network: each layer's shapes, costs and receptive field, and the totals."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

from .dtypes import DTYPE_BYTES
from .errors import ConsistencyError, ConvcalcError
from .gate import check_network
from .graph import INPUT, dependency_order, label, resolve_sources
from .layers import Figures, Shape
from .layers.base import format_shape
from .layers.slices import figures_of, slice_note
from .network import Analysis, LayerReport, Network
from .places import extent, follow, whole
from .receptive import FieldGraph, ReceptiveField
from .sizes import volume
from .windows import IDENTITY, Broadcast

__all__ = ["analyse"]


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
    check_network(network)  # whatever reader built it: every number passes the same checks
    itemsize = DTYPE_BYTES[network.dtype]
    layers = network.layers
    sources = resolve_sources(layers)
    order = dependency_order(layers, sources, network.outputs)
    rank = len(network.input_shape) - 1
    graph = FieldGraph(rank)
    node_of = {INPUT: 0}  # layer index (or INPUT) -> FieldGraph node
    shapes = {INPUT: tuple(network.input_shape)}
    # where each network-input axis sits in each tensor (None: merged away)
    places = {INPUT: tuple(whole(axis, n) for axis, n in enumerate(network.input_shape) if axis)}
    fields = {INPUT: None}
    owners: dict[str, int] = {}  # parameter tensor -> the layer that counted it
    reports = []
    for i in order:
        layer = layers[i]
        incoming = tuple(shapes[s] for s in sources[i])
        try:
            figures = figures_of(layer, incoming)
        except ConvcalcError as err:
            raise err.located(layer=i + 1, origin=layer.origin)
        if layer.expect is not None and tuple(layer.expect) != figures.output_shape:
            raise ConsistencyError(
                f"{label(layers, i)} ({figures.type}): convcalc's rules give {format_shape(figures.output_shape)} "
                f"but the traced model gives {format_shape(layer.expect)}: this is a bug in convcalc",
                hint="please report it with the model that shows it", layer=i + 1, origin=layer.origin)
        shapes[i] = figures.output_shape
        per_source, passes_through = [], False
        if receptive_fields:  # where the input's axes went, and each source's windows along them
            per_source, places[i] = follow(figures, [places[s] for s in sources[i]], [shapes[s] for s in sources[i]])
            passes_through = (len(sources[i]) == 1 and figures.output_shape == shapes[sources[i][0]]
                              and places[i] == places[sources[i][0]] and all(w is IDENTITY for w in per_source[0]))
        try:
            if passes_through:
                # position for position (activations, normalization by running statistics, dropout): the
                # same field, without a node of its own; most layers of a deep network are such layers
                node_of[i] = node_of[sources[i][0]]
                field = fields[sources[i][0]] or graph.measure(node_of[i], _units(figures.output_shape, places[i]))
            elif receptive_fields:
                node_of[i] = graph.add(tuple(node_of[s] for s in sources[i]), per_source)
                field = graph.measure(node_of[i], _units(figures.output_shape, places[i]))
            else:
                field = ReceptiveField((0,) * rank, (None,) * rank, (Fraction(0),) * rank, (False,) * rank)
        except ConvcalcError as err:  # a receptive field past the work limit: named at its layer
            raise err.located(layer=i + 1, origin=layer.origin)
        fields[i] = field
        notes = layer.remark + slice_note(layer) + figures.notes
        if not reports:
            notes = input_hints(network.input_shape) + notes
        if len(sources[i]) > 1 and receptive_fields:
            notes += _misalignment([fields[s] for s in sources[i]], [label(layers, s) for s in sources[i]],
                                   per_source)
        if any(field.varies):
            notes += ("receptive fields differ between output positions (size or placement); "
                      "the largest size is reported",)
        params, trainable, shared = _own_parameters(layer, figures, i, owners, network.frozen)
        notes += tuple(f"parameter {name!r} is shared with layer {owners[name] + 1}, which counts it"
                       for name in shared)
        if not figures.counted:
            notes += (f"{figures.type} is not counted: convcalc cannot compute its MACs and FLOPs (its shapes are "
                      "the traced ones, its receptive field is taken as the whole input; the totals leave it out)",)
        batch = 1 if layer.once else network.batch
        if layer.once and (figures.macs or figures.flops):
            notes += (ONCE_PER_PASS,)
        reports.append(
            LayerReport(
                index=i + 1,
                type=figures.type,
                summary=figures.summary,
                input_shape=shapes[sources[i][0]],
                output_shape=figures.output_shape,
                params=params,
                macs=batch * figures.macs,
                flops=batch * figures.flops,
                activation_bytes=batch * volume(figures.output_shape) * itemsize,
                param_bytes=params * itemsize,
                receptive_field=field,
                notes=notes,
                name=layer.name,
                inputs=tuple(label(layers, s) for s in sources[i]),
                path=layer.path,
                counted=figures.counted,
                trainable_params=None if trainable == params else trainable,
            )
        )
    if network.unused and reports:  # said once, at the output
        last = max(range(len(reports)), key=lambda i: reports[i].index)
        reports[last] = replace(reports[last], notes=reports[last].notes + unused_notes(network.unused))
    nodes = {i: node for i, node in node_of.items() if i != INPUT}
    return Analysis(network, tuple(reports), graph if receptive_fields else None, nodes, tuple(sources), tuple(order))


ONCE_PER_PASS = ("computed from parameters and fixed values, not the input: PyTorch runs it once per forward pass, "
                 "and convcalc counts it once, whatever the batch")


def unused_notes(unused) -> tuple[str, ...]:
    """What the totals count that no layer holds: parameters the forward pass does not use, and
    parameters it turns into fixed tensors before any layer reads them.

    >>> unused_notes((("AuxLogits", 3326696, 3326696, False),))[0][:72]
    'the forward pass does not use 3,326,696 parameters for this input: AuxLo'
    """
    notes = []
    for read, text in ((False, "the forward pass does not use {} parameters for this input"),
                       (True, "{} parameters make fixed tensors before any layer reads them")):
        group = [(name, count) for name, count, _, was_read in unused if was_read is read]
        if group:
            listed = ", ".join(f"{name or 'the model'} ({count:,})" for name, count in group)
            notes.append(text.format(f"{sum(c for _, c in group):,}") + f": {listed}; the totals count them, "
                         "no layer does")
    return tuple(notes)


def input_hints(shape: Shape) -> tuple[str, ...]:
    """Notes for input shapes that look channels-last or batch-included (the analysis still takes
    them as written: they may be right).

    >>> input_hints((224, 224, 3))[0].split("; ")[1]
    'did you mean 3x224x224? (channels come first, as in PyTorch)'
    >>> input_hints((1, 3, 224, 224))[0].split("; ")[1]
    "did you mean 3x224x224 with --batch 1? (convcalc takes one sample's shape)"
    >>> input_hints((3, 224, 224))
    ()
    """
    text = "x".join(map(str, shape))
    if len(shape) == 3 and shape[-1] in (1, 3, 4) and shape[0] > 4 and shape[1] > 4:
        fixed = "x".join(map(str, (shape[-1], *shape[:-1])))
        return (f"the input {text} looks channels-last; did you mean {fixed}? (channels come first, as in PyTorch)",)
    if len(shape) == 4 and shape[1] in (1, 3, 4) and shape[0] <= 256 and min(shape[2:]) > 4:
        fixed = "x".join(map(str, shape[1:]))
        return (f"the input {text} looks like it includes the batch; did you mean {fixed} with --batch {shape[0]}? "
                "(convcalc takes one sample's shape)",)
    return ()


def _units(shape: Shape, places: tuple) -> tuple[int, ...]:
    """How many output units lie along each network-input axis (1 once an axis is gone)."""
    return tuple(1 if p is None else extent(p) for p in places)


def _own_parameters(layer, figures: Figures, index: int, owners: dict, frozen) -> tuple[int, int, list[str]]:
    """This layer's parameters not counted by an earlier layer, the trainable part, and the shared names."""
    tensors = figures.tensors or ((("", figures.params),) if figures.params else ())
    named = dict(layer.weights)
    params = trainable = 0
    shared = []
    for role, count in tensors:
        name = named.get(role, f"#{index + 1}.{role}")
        if name in owners:
            shared.append(name)
            continue
        owners[name] = index
        params += count
        trainable += 0 if name in frozen else count
    return params, trainable, shared


def _misalignment(fields, labels, per_source) -> tuple[str, ...]:
    """Notes for branches whose receptive fields do not line up where they merge
    (a branch broadcast along an axis is read whole there, so it is left out)."""
    notes = []
    first = fields[0]
    if first is None or any(f is None for f in fields):
        return ()
    for axis in range(len(first.jump)):
        spread = [(f, name) for f, name, ws in zip(fields, labels, per_source) if not isinstance(ws[axis], Broadcast)]
        if len(spread) < 2:
            continue
        (base, base_name), rest = spread[0], spread[1:]
        for field, name in rest:
            if base.jump[axis] != field.jump[axis]:
                notes.append(f"branches {base_name!r} and {name!r} are not aligned on axis {axis}: "
                             f"jumps {base.jump[axis]} and {field.jump[axis]}")
            elif base.centre[axis] != field.centre[axis]:
                notes.append(f"branches {base_name!r} and {name!r} are not aligned on axis {axis}: "
                             f"centres {base.centre[axis]} and {field.centre[axis]}")
    return tuple(notes)
