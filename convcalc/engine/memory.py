"""Where the memory goes: the peak of an inference, and what training keeps.

Both follow tensors to their storage, as PyTorch does. A layer that only
reinterprets its input (reshape, flatten, squeeze, a slice, a permutation)
makes a view of its input's storage, not a new tensor; a reshape of a
permuted or sliced tensor copies. An inference keeps each storage until the
last layer that reads it (or to the end, for the network's outputs): the
peak of those live bytes is the least memory the activations need.

Training keeps what autograd saves for the backward pass. The rules are
PyTorch's (``tools/autograd/derivatives.yaml`` and the CPU kernels of
torch 2.13): a convolution saves its input, ReLU its output, BatchNorm its
input and two statistics per channel, max pooling its input and its int64
indices, an add nothing; an in-place activation saves its output where the
out-of-place one saves its input. Saved tensors that share a storage count
once. Nothing is saved before the first layer whose input or parameters need
a gradient. A layer whose rule convcalc does not know (an opaque operation)
leaves the figure marked as not exact.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from . import strides, views
from .dtypes import DTYPE_BYTES
from .errors import SpecError
from .graph import INPUT, dependency_order, resolve_sources, result_layers
from .layers.base import Use
from .layers.slices import figures_of, one_slice
from .sizes import volume

__all__ = ["OPTIMIZERS", "InferenceMemory", "TrainingMemory", "inference_memory", "memo", "training_memory",
           "training_uses", "view_layers", "wiring"]

@dataclass(frozen=True)
class InferenceMemory:
    """Live activation bytes (the input included) while each layer runs, in
    execution order, and their peak: ``curve[k]`` is the k-th layer's
    inputs, its new output and everything still to be read."""

    peak_bytes: int
    peak_layer: int  # numbered from 1; 0 for a network without layers
    curve: tuple[int, ...]
    layers: tuple[int, ...]  # the layer index of each point of the curve


def memo(analysis, key, compute):
    """``compute()``, once per analysis and key: a table and its footer both need the
    figures, and a deep network makes them cost. The figures are kept beside the (frozen,
    immutable) analysis, not on it, and dropped with it."""
    cache = _FIGURES.get(id(analysis))
    if cache is None:
        cache = _FIGURES[id(analysis)] = {}
        weakref.finalize(analysis, _FIGURES.pop, id(analysis), None)
    if key not in cache:
        cache[key] = compute()
    return cache[key]


# Each live analysis's computed figures, by id (an analysis is not hashed: its network may be large).
_FIGURES: dict[int, dict] = {}


def wiring(analysis) -> tuple:
    """What each layer reads, and the order the layers run in."""
    if analysis.order or not analysis.network.layers:
        return analysis.sources, analysis.order
    network = analysis.network
    sources = resolve_sources(network.layers)
    return sources, dependency_order(network.layers, sources, network.outputs)


def _storages(analysis, training: bool) -> tuple[dict, dict]:
    """Each tensor's storage (a layer index or INPUT) and each storage's bytes."""
    return memo(analysis, ("storages", training), lambda: _find_storages(analysis, training))[:2]


def _layouts(analysis, training: bool) -> tuple[dict, dict, dict]:
    """Each tensor's per-sample shape, its batch, and its strides in its storage (``strides.py``)."""
    return memo(analysis, ("storages", training), lambda: _find_storages(analysis, training))[2:]


def _find_storages(analysis, training: bool) -> tuple[dict, dict, dict, dict, dict]:
    network = analysis.network
    sources, order = wiring(analysis)
    outputs = {r.index - 1: r.activation_bytes for r in analysis.layers}
    shapes = {r.index - 1: r.output_shape for r in analysis.layers}
    shapes[INPUT] = tuple(network.input_shape)
    batches = {i: 1 if layer.once else network.batch for i, layer in enumerate(network.layers)}
    batches[INPUT] = network.batch
    storage, size = {INPUT: INPUT}, {INPUT: network.batch * volume(network.input_shape) * DTYPE_BYTES[network.dtype]}
    laid = {INPUT: strides.contiguous((network.batch, *network.input_shape))}
    for i in order:
        layer = network.layers[i]
        first = sources[i][0] if sources[i] else INPUT
        batch, shape = batches[i], shapes[first]
        fresh = strides.contiguous((batch, *shapes[i]))
        # where the output's elements would sit as a view of the input's (None: PyTorch copies)
        candidate = views.after(layer, shape, laid[first], shapes[i], batch) \
            if batches[first] == batch and len(laid[first]) == len(shape) + 1 else fresh
        kept = layer.storage(training, candidate is not None)
        if kept == "held":  # a parameter's own storage: param_bytes counts it
            storage[i], size[i], laid[i] = i, 0, fresh
        elif kept != "new":
            storage[i], laid[i] = storage[first], candidate if candidate is not None else fresh
        else:
            written = layer.output_strides((batch, *shapes[i]), tuple(shapes[s] for s in sources[i]),
                                           tuple(laid[s] for s in sources[i]))
            if written is None and layer.writes_like_input and shapes[i] == shape and batches[first] == batch:
                written = strides.elementwise((batch, *shape), laid[first])
            storage[i], size[i], laid[i] = i, outputs[i], written or fresh
    return storage, size, shapes, batches, laid


def view_layers(analysis) -> set[int]:
    """The layers (indices from 0) whose output is a view of their input at inference."""
    storage, _ = _storages(analysis, training=False)
    return {i for i in wiring(analysis)[1] if storage[i] != i}


def inference_memory(analysis) -> InferenceMemory:
    """The peak of live activation bytes over an inference, and where it is.

    >>> from convcalc import analyse_tokens
    >>> memory = inference_memory(analyse_tokens("3x32x32", "conv:8,k=3,p=1", "relu", "flatten"))
    >>> memory.curve, memory.peak_layer
    ((45056, 65536, 32768), 2)
    """
    return memo(analysis, "inference", lambda: _inference(analysis))


def _inference(analysis) -> InferenceMemory:
    network = analysis.network
    sources, order = wiring(analysis)
    storage, size = _storages(analysis, training=False)
    last_read = {INPUT: -1}
    for step, i in enumerate(order):
        last_read[storage[i]] = max(last_read.get(storage[i], -1), step)
        for s in sources[i]:
            last_read[storage[s]] = step
    for kept in result_layers(network.layers, network.outputs):
        last_read[storage[kept]] = len(order)  # the network's results are kept to the end
    live = size[INPUT]
    curve = []
    for step, i in enumerate(order):
        if storage[i] == i:
            live += size[i]
        curve.append(live)
        for s in {storage[s] for s in sources[i]} | {storage[i]}:
            if last_read.get(s) == step:
                live -= size[s]
    if not curve:
        return InferenceMemory(size[INPUT], 0, (), ())
    peak = max(range(len(curve)), key=curve.__getitem__)
    return InferenceMemory(curve[peak], order[peak] + 1, tuple(curve), tuple(i + 1 for i in order))


# Optimizer state per trainable parameter, in parameters' worth (PyTorch's
# torch.optim; Adam's per-tensor step counters, 4 bytes each, are left out).
OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True)
class TrainingMemory:
    """What one training step holds at once, before the backward pass frees
    anything: parameters, their gradients, the optimizer's state and the
    tensors autograd saved in the forward pass. ``exact`` is False when some
    layer's saved tensors are unknown (they are then left out); ``saved`` has
    each layer's share (None where unknown), each storage counted at the
    first layer that saves it."""

    optimizer: str
    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    saved_bytes: int
    saved: tuple[int | None, ...]
    exact: bool

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.gradient_bytes + self.optimizer_bytes + self.saved_bytes


def training_memory(analysis, optimizer: str = "adam") -> TrainingMemory:
    """The memory of a training step with ``optimizer`` (sgd, momentum, adam, adamw).

    >>> from convcalc import analyse_tokens
    >>> t = training_memory(analyse_tokens("3x8x8", "conv:4,k=3,p=1", "bn", "relu", "maxpool:k=2"), "sgd")
    >>> t.saved  # conv: its input; bn: its input, 2 x 4 statistics; relu: its output; maxpool: int64 indices
    (768, 1056, 1024, 512)
    """
    if optimizer not in OPTIMIZERS:
        raise SpecError(f"unknown optimizer {optimizer[:40]!r}", hint=f"use one of {', '.join(OPTIMIZERS)}",
                        field="optimizer")
    saved, exact = memo(analysis, "saved", lambda: _saved(analysis))
    totals = analysis.totals
    itemsize = DTYPE_BYTES[analysis.network.dtype]
    trainable = totals.trainable_params * itemsize
    return TrainingMemory(
        optimizer=optimizer,
        parameter_bytes=totals.param_bytes,
        gradient_bytes=trainable,
        optimizer_bytes=OPTIMIZERS[optimizer] * trainable,
        saved_bytes=sum(v for v in saved if v),
        saved=saved,
        exact=exact,
    )


def training_uses(analysis) -> dict:
    """How a training step uses each layer (by index from 0): a ``Use`` (its inputs' and output's
    shapes, whether each input needs a gradient, whether it has trainable parameters), or None where
    autograd leaves the layer out: neither its inputs nor its parameters need a gradient.

    As autograd decides ``requires_grad``: the network's input needs none, and a layer's output
    needs one when the layer has trainable parameters or any input needs one, so when anything
    before it, on any path, is trained (frozen parameters, ``network.frozen``, are not).

    >>> from convcalc import analyse_tokens
    >>> uses = training_uses(analyse_tokens("3x8x8", "relu", "conv:4,k=3", "relu"))
    >>> uses[0], [(u.inputs_grad, u.trainable) for u in (uses[1], uses[2])]
    (None, [((False,), True), ((True,), False)])
    """
    return memo(analysis, "uses", lambda: _uses(analysis))


def _uses(analysis) -> dict:
    network = analysis.network
    itemsize = DTYPE_BYTES[network.dtype]
    sources, order = wiring(analysis)
    reports = {r.index - 1: r for r in analysis.layers}
    shapes = {i: r.output_shape for i, r in reports.items()}
    shapes[INPUT] = tuple(network.input_shape)
    needs_grad = {INPUT: False}
    uses = {}
    for i in order:
        inputs_grad = tuple(needs_grad[s] for s in sources[i])
        incoming = tuple(shapes[s] for s in sources[i])
        trainable = reports[i].trainable > 0 or _trains_shared(network.layers[i], i, incoming, network.frozen)
        needs_grad[i] = (trainable or any(inputs_grad)) and network.layers[i].passes_gradient()
        if not needs_grad[i]:
            uses[i] = None
            continue
        partly = reports[i].trainable < reports[i].params  # some of its tensors are frozen
        frozen = _frozen_roles(network.layers[i], i, incoming, network.frozen) if partly else ()
        batch = 1 if network.layers[i].once else network.batch  # run once per pass: saved once
        same = tuple(sources[i].index(s) for s in sources[i])
        use = Use(incoming, shapes[i], batch, itemsize, inputs_grad, trainable, frozenset(frozen), same)
        uses[i] = one_slice(network.layers[i], use)  # a layer on slices: its kind sees one slice a sample
    return uses


def gradient_reached(analysis) -> set[int]:
    """The layers (by index from 0) a gradient reaches in a training step's backward pass: the
    returned results (the loss reads them), and every layer a reached one passes its gradient back to
    (``detach`` passes none). A layer that needs a gradient but is not reached saves its tensors in
    the forward pass, as autograd does, yet computes no backward.

    >>> from convcalc import analyse_tokens
    >>> sorted(gradient_reached(analyse_tokens("3x8x8", "conv:4,k=3", "detach", "relu")))
    [1, 2]
    """
    return memo(analysis, "reached", lambda: _reached(analysis))


def _reached(analysis) -> set[int]:
    network = analysis.network
    sources, order = wiring(analysis)
    unreturned = set(network.unreturned)
    reached = {i for i in result_layers(network.layers, network.outputs) if network.layers[i].name not in unreturned}
    for i in reversed(order):
        if i in reached and network.layers[i].passes_gradient():
            reached.update(s for s in sources[i] if s != INPUT)
    return reached


def _trains_shared(layer, index: int, incoming, frozen) -> bool:
    """Whether a layer without trainable parameters of its own uses a trained tensor an earlier layer
    counts (a module called twice): autograd gives each use of it a gradient."""
    if not layer.weights:  # no tensor of the model's: nothing shared
        return False
    figures = figures_of(layer, incoming)
    named = dict(layer.weights)
    tensors = figures.tensors or ((("", figures.params),) if figures.params else ())
    return any(named.get(role, f"#{index + 1}.{role}") not in frozen for role, count in tensors if count)


def _frozen_roles(layer, index: int, incoming, frozen) -> set[str]:
    """The roles of a layer's parameter tensors that ``frozen`` names, by the names the analysis gives
    them (the model's, or ``#<layer>.<role>``)."""
    named = dict(layer.weights)
    roles = {*named, "weight", "bias", *(role for role, _ in figures_of(layer, incoming).tensors)}
    return {role for role in roles if named.get(role, f"#{index + 1}.{role}") in frozen}


def _saved(analysis) -> tuple[tuple, bool]:
    """Each layer's share of the saved bytes (None where unknown), and whether all are known."""
    sources, order = wiring(analysis)
    storage, size = _storages(analysis, training=True)
    shapes, batches, laid = _layouts(analysis, training=True)
    uses = training_uses(analysis)
    counted = {r.index - 1: r.counted for r in analysis.layers}
    itemsize = DTYPE_BYTES[analysis.network.dtype]
    seen: set = set()
    saved, exact = {}, True
    unsure: set = set()  # storages a sequence may share with what it folds to (see "steps")
    for i in order:
        use = uses[i]
        if use is None:
            saved[i] = 0
            continue
        items = analysis.network.layers[i].saved(use)
        if items is None:
            saved[i], exact = None, False
            continue
        if any(item[0] == "flash" for item in items) and any(laid[s][-1] != 1 for s in sources[i]):
            items = analysis.network.layers[i].math_saved(use)  # PyTorch runs its math backend instead
            if items is None:
                saved[i], exact = None, False
                continue
        total = 0
        for item in items:
            if item[0] == "new":  # a tensor of that many bytes (statistics, indices, noise)
                total += item[1]
                continue
            if item[0] == "folded":  # the input folded to rows: a view of it, or a copy
                s = sources[i][item[1]]
                if not strides.folds_to_a_view(shapes[s], laid[s], batches[s], item[2]):
                    total += batches[s] * volume(shapes[s]) * itemsize
                    continue
            if item[0] == "steps":  # a sequence folded steps first: a view of it, or a copy for each reader
                s = sources[i][item[1]]
                if not strides.steps_fold_to_a_view(shapes[s], laid[s], batches[s], item[4]):
                    total += item[3] * batches[s] * volume(shapes[s]) * itemsize
                    if not item[2]:  # its batch was moved: PyTorch may hold it steps first already (a layer's
                        # result on the moved tensor), one storage every reader views
                        unsure.add(storage[s])
                        exact = exact and item[3] == 1
                    continue
            if item[0] == "einsum":  # torch.einsum's product: each operand its storage, a copy, or a sum
                grads = (*use.inputs_grad, use.trains("weight"))
                plan = analysis.network.layers[i].plan(tuple((batches[s], *shapes[s]) for s in sources[i]),
                                                       tuple(laid[s] for s in sources[i]), grads)
                if plan is None:
                    total, exact = None, False
                    break
                for k, viewed, count in plan[0]:
                    key = storage[sources[i][k]] if viewed and k < len(sources[i]) else None
                    if not viewed:
                        total += count * itemsize
                    elif key is not None and key not in seen:  # (a learned operand: the parameter itself)
                        seen.add(key)
                        total += size[key]
                continue
            if item[0] == "once":  # a tensor made from a parameter in forward, by its name: once
                if item[:2] not in seen:
                    seen.add(item[:2])
                    total += item[2]
                continue
            if item[0] == "flash":  # flash attention: its inputs as given, its output, the logsumexp
                # (an input convcalc cannot follow: not followed)
                if any(s != INPUT and not counted[s] for s in sources[i]):
                    total, exact = None, False
                    break
                for key in [storage[s] for s in sources[i]] + [storage[i]]:
                    if key not in seen:
                        seen.add(key)
                        total += size[key]
                total += item[1]
                continue
            if item[0] == "batched":  # a matmul operand as bmm reads it: a view of it, or a copy
                s, o = sources[i][item[1]], sources[i][item[2]]
                viewed, count = strides.batched_operand((batches[s], *shapes[s]), laid[s], (batches[o], *shapes[o]))
                if not viewed:
                    total += count * itemsize
                    continue
            key = storage[i] if item[0] == "output" else storage[sources[i][item[1]]]
            if key not in seen:
                seen.add(key)
                total += size[key]
        saved[i] = total
    # A copy or a view holds the same bytes; they differ only where another tensor saved shares the storage
    exact = exact and not unsure & seen
    return tuple(saved[r.index - 1] for r in analysis.layers), exact
