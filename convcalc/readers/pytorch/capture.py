"""Capturing a PyTorch module's real graph with ``torch.export`` and reading it as a ``Network``.

The module is exported in evaluation mode, non-strict, on an input of zeros
(the export runs it on fake tensors: no real forward pass). Every ATen call
becomes a layer named after the module that made it (``layer1.0.conv1``; a
functional call inside a block is ``layer1.0.add``), with the module
hierarchy as its ``path``. The traced output shape of every layer is kept as
``expect``: the analysis computes its own and fails loudly if they differ.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace

from ...engine import layers as L
from ...engine.errors import (
    BatchAxisError,
    ConsistencyError,
    ConvcalcError,
    ResourceError,
    SpecError,
)
from ...engine.graph import reaching
from ...engine.limits import max_trace_bytes
from ...engine.network import Network
from ...engine.sizes import volume
from .aten import (
    ALIASES,
    FIRST_OF_TUPLE,
    OPERATORS,
    PIECES,
    RECURRENT,
    Act,
    Call,
    Const,
    Param,
    Unsupported,
)
from .guard import describe, model_label, user_code
from .names import Namer, in_place, op_name

# Traced with two samples, so the batch axis is told apart from a size-1 axis.
TRACE_BATCH = 2


def import_torch():
    """torch, or a usage error saying how to get it."""
    try:
        import torch
    except ImportError:
        raise SpecError("reading a PyTorch model needs PyTorch, which is not installed",
                        hint="install it, e.g. pip install torch (convcalc itself does not need it)",
                        field="model") from None
    return torch


def from_torch(module, input_shape, *, batch: int = 1, dtype: str = "float32") -> Network:
    """A PyTorch module's graph as a ``Network``, for an input of ``input_shape`` per sample.

    >>> import torch
    >>> net = from_torch(torch.nn.Conv2d(3, 8, 3), (3, 32, 32))
    >>> net.layers[0].name                    # a lone module: named after its operation
    'conv2d'
    """
    torch = import_torch()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"expected a torch.nn.Module, got {type(module).__name__}",
                        hint="pass the model instance (or a class or factory with --model)", field="model")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise SpecError(f"input shape {shape!r} must be positive sizes, channels first, without the batch",
                        hint="e.g. (3, 224, 224)", field="input")
    needed = TRACE_BATCH * volume(shape) * 4
    if needed > max_trace_bytes():  # refused before anything is allocated
        raise ResourceError(f"capturing the model needs an example input of {needed:,} bytes for "
                            f"{'x'.join(map(str, shape))}, over the limit of {max_trace_bytes():,}",
                            hint="use a smaller input (shapes scale), or raise CONVCALC_MAX_TRACE_BYTES",
                            field="input")
    label = model_label(module)
    with user_code(f"capturing {label}", hint=_HINT, held=True):
        program = _export(torch, module, shape, label)
    with user_code(f"reading the captured graph of {label}", hint="if the model's attributes did not raise this, "
                   "it is a bug in convcalc: please report it with the model"):
        layers, frozen, outputs = _read(torch, module, program, shape)
    return Network(shape, tuple(layers), batch, dtype, frozenset(frozen), outputs)


_HINT = ("check the input shape (channels first, no batch) and that the model's forward runs on it; "
         "a model whose forward branches on values cannot be captured")


# Modules that drop whole residual branches in training and are the identity
# in evaluation, where export records nothing for them (torchvision's
# StochasticDepth; timm's DropPath); their drop probability's attribute.
_DROP_PATHS = {"StochasticDepth": "p", "DropPath": "drop_prob"}


def _drop_paths(module) -> dict:
    """The stochastic-depth modules of ``module`` by name, with their (p, mode)."""
    found = {}
    for name, sub in module.named_modules():
        attribute = _DROP_PATHS.get(type(sub).__name__)
        if attribute is not None and isinstance(getattr(sub, attribute, None), (int, float)):
            found[name] = (float(getattr(sub, attribute)), getattr(sub, "mode", "row"))
    return found


def _mark_drop_paths(torch, module):
    """Hooks that make each stochastic-depth module record an evaluation-mode
    dropout (the identity) at its output, so it becomes a layer: what it does
    is invisible at inference, but autograd saves its noise in training."""
    def mark(_module, _args, output):
        return torch.ops.aten.dropout(output, 0.0, False)

    return [sub.register_forward_hook(mark) for sub in module.modules() if type(sub).__name__ in _DROP_PATHS]


def _export(torch, module, shape, label):
    was_training = module.training
    module.eval()
    errors = []
    hooks = _mark_drop_paths(torch, module)
    try:
        for trace_batch in (TRACE_BATCH, 1):
            example = torch.zeros((trace_batch, *shape))  # export runs on fake copies of it
            try:
                program = torch.export.export(module, (example,), strict=False)
                return program, trace_batch
            except Exception as err:  # noqa: BLE001 - the user's model may raise anything while traced
                errors.append(describe(err))
    finally:
        module.train(was_training)
        for hook in hooks:
            hook.remove()
    raise SpecError(f"torch.export could not capture {label} for an input of {'x'.join(map(str, shape))}: "
                    f"{errors[0]}", hint=_HINT, field="model")


@dataclass
class _Pieces:
    """The result of chunk, split or unbind: layers are made when its pieces are read."""

    op: str
    args: dict
    source: Act
    name: str
    path: tuple[str, ...]


@dataclass
class _Several:
    """The tuple result of an operation convcalc does not read (``torch.sort``): its first item is
    the layer made for it, any other item read becomes another not-counted layer."""

    kind: str
    first: Act
    reads: tuple[Act, ...]


def _sizes(val, where: str) -> tuple[int, ...]:
    """A traced tensor's sizes, which must not depend on the input's values (``nonzero``, ``unique``)."""
    dims = tuple(val.shape)
    if not all(isinstance(n, int) for n in dims):
        raise SpecError(f"the size of {where} depends on the values of the input, not only its shape",
                        hint="convcalc analyses shapes; a model with data-dependent sizes (nonzero, unique, "
                        "masking) cannot be analysed", field="model")
    return dims


def _arguments(node, resolve) -> dict:
    schema = node.target._schema
    values = {}
    for i, argument in enumerate(schema.arguments):
        if i < len(node.args):
            value = node.args[i]
        elif argument.name in node.kwargs:
            value = node.kwargs[argument.name]
        elif argument.has_default_value():
            value = argument.default_value
        else:
            value = None
        values[argument.name] = resolve(value)
    return values


def _read(torch, module, exported, shape):
    program, trace_batch = exported
    specs = {spec.arg.name: spec for spec in program.graph_signature.input_specs if hasattr(spec.arg, "name")}
    trainable = {name: p.requires_grad for name, p in module.named_parameters(remove_duplicate=False)}
    names = Namer(module, program.graph)
    drop_paths = _drop_paths(module)
    values: dict = {}
    layers: list = []
    frozen: set[str] = set()

    def resolve(value):
        if isinstance(value, torch.fx.Node):
            return values.get(value.name)
        if isinstance(value, (list, tuple)):
            return type(value)(resolve(v) for v in value)
        return value

    def per_sample(val, where: str) -> tuple[int, ...]:
        dims = _sizes(val, where)
        if not dims or dims[0] != trace_batch:
            raise Unsupported(f"{where} does not keep the batch first")
        return dims[1:]

    def add(spec, node, call_reads, weights, expect, name=None, path=None):
        name = name or names.name(node)
        path = names.path(node) if path is None else path
        layers.append(replace(spec, name=name, inputs=tuple(call_reads), path=path, expect=expect,
                              weights=tuple(weights)))
        return Act(name, expect)

    for node in program.graph.nodes:
        if node.op == "placeholder":
            spec = specs.get(node.name)
            val = node.meta.get("val")
            kind = spec.kind.name if spec is not None else "USER_INPUT"
            if kind == "USER_INPUT":
                values[node.name] = Act("input", shape)
            elif kind == "PARAMETER":
                values[node.name] = Param(spec.target, tuple(val.shape))
                if not trainable.get(spec.target, True):
                    frozen.add(spec.target)
            elif kind == "BUFFER":
                values[node.name] = Param(spec.target, tuple(val.shape), buffer=True)
            else:
                values[node.name] = Const(tuple(getattr(val, "shape", ())))
            continue
        if node.op != "call_function":
            continue
        val = node.meta.get("val")
        if node.target is operator.getitem:
            source, index = values.get(node.args[0].name), node.args[1]
            if isinstance(source, _Pieces):
                spec = _piece(source, index)
                values[node.name] = add(spec, node, [source.source.ref], (), per_sample(val, node.name),
                                        name=f"{source.name}.{index}", path=source.path)
            elif isinstance(source, tuple) and index == 0:
                values[node.name] = source[0]
            elif isinstance(source, _Several):  # a result of an operation convcalc does not read
                values[node.name] = source.first if index == 0 else _opaque(
                    node, source.kind, {}, source.reads, val, trace_batch, add, name=f"{source.first.ref}.{index}",
                    path=names.path(node.args[0]))
            continue
        if not hasattr(node.target, "_schema"):
            if not isinstance(val, torch.Tensor):
                values[node.name] = val if isinstance(val, (int, float)) else None
                continue
            op, args = op_name(node.target), {f"arg{i}": resolve(a) for i, a in enumerate(node.args)}
        else:
            op, args = op_name(node.target), _arguments(node, resolve)
        tensor_val = val[0] if isinstance(val, (tuple, list)) and val else val
        if not isinstance(tensor_val, torch.Tensor):
            values[node.name] = val if isinstance(val, (int, float)) else None
            continue
        acts = [a for a in _flat(args.values()) if isinstance(a, Act)]
        if not acts:  # made inside forward from constants (zeros, arange): a fixed tensor
            values[node.name] = Const(tuple(tensor_val.shape))
            continue
        try:
            expect = per_sample(tensor_val, node.name)
            if op in ALIASES:
                values[node.name] = Act(acts[0].ref, expect)
                continue
            if op in PIECES:
                values[node.name] = _Pieces(op, args, acts[0], names.name(node), names.path(node))
                continue
            if op in RECURRENT:
                where = names.module_of(node)
                raise SpecError(f"{where or 'the model'} calls aten.{op}: convcalc does not yet read recurrent layers "
                                f"(LSTM, GRU, RNN)", hint="analyse the layers before and after it on their own",
                                field="model")
            if op not in OPERATORS:
                raise Unsupported(op)
            call = Call(op, args, trace_batch)
            spec = OPERATORS[op](call)
            if op == "dropout" and names.module_of(node) in drop_paths:
                spec = L.StochasticDepth(*drop_paths[names.module_of(node)])
            if in_place(node.target) and hasattr(spec, "inplace"):
                spec = replace(spec, inplace=True)  # autograd saves differently for in-place activations
            _check(spec, node, [a.shape for a in call.reads])
            result = add(spec, node, [a.ref for a in call.reads], call.weights, expect)
        except Unsupported:
            result = _opaque(node, _kind(node, op), args, acts, tensor_val, trace_batch, add)
            if isinstance(val, (tuple, list)):  # its other results are read with getitem
                result = _Several(_kind(node, op), result, tuple(acts))
        values[node.name] = (result,) if op in FIRST_OF_TUPLE else result
    output = next(n for n in program.graph.nodes if n.op == "output")
    results = [values.get(n.name) for n in _flat(output.args) if isinstance(n, torch.fx.Node)]
    # a dict, tuple or list of results arrives flat, in its order: each tensor made from the input is an output
    results = [r for r in results if isinstance(r, Act) and r.ref != "input"]
    if not results:
        raise SpecError("the model's output does not depend on its input (it returns no tensor computed from it)",
                        hint="check the model's forward", field="model")
    # the first result is the network's output (the last layer); the others are further outputs
    outputs = list(dict.fromkeys(r.ref for r in results if r.ref != "input"))
    layers = _collapse_opaque_modules(layers, outputs, module)
    outputs = outputs[1:] + outputs[:1]
    return reaching(layers, outputs), frozen, tuple(outputs[:-1])


def _check(spec, node, shapes) -> None:
    """convcalc's rules on the traced input shapes: an operation on the batch axis cannot be
    described per sample (so it is not counted); any other refusal of what PyTorch ran is a bug."""
    try:
        spec.merge(tuple(shapes)) if isinstance(spec, L.Merge) else spec.infer(shapes[0])
    except BatchAxisError as err:
        raise Unsupported(str(err)) from None
    except ConvcalcError as err:
        raise ConsistencyError(f"{node.name} ({node.target}): PyTorch ran it, but convcalc's rules refuse it: "
                               f"{err.message}: this is a bug in convcalc", hint="please report it with the model",
                               field="model") from None


def _kind(node, op) -> str:
    return f"aten.{op}" if hasattr(node.target, "_schema") else op


def _opaque(node, kind, args, acts, val, trace_batch, add, name=None, path=None):
    dims = _sizes(val, node.name)
    if dims and dims[0] == trace_batch:
        output = dims[1:]
    else:  # the batch is no longer first: keep the elements per sample, flat
        output = (volume(dims) // trace_batch,)
    count = sum(volume(a.shape) for a in _flat(args.values()) if isinstance(a, Param) and not a.buffer)
    spec = L.Opaque(kind, output, count)
    return add(spec, node, [a.ref for a in dict.fromkeys(acts)], (), output, name=name, path=path)


def _collapse_opaque_modules(layers, outputs, module):
    """A leaf module with an operation convcalc cannot cost (attention) becomes one not-counted layer,
    named after the module, rather than a run of its internal operations."""
    owners = {}
    for layer in layers:
        if isinstance(layer, L.Opaque) and layer.path:
            owners.setdefault(layer.path[-1], None)  # the module whose forward made the operation
    for owner in owners:
        group = [layer for layer in layers if owner in layer.path]
        names = {layer.name for layer in group}
        read_outside = {ref for layer in layers if layer.name not in names for ref in (layer.inputs or ())}
        ends = [layer for layer in group if layer.name in read_outside or layer.name in outputs]
        if len(ends) != 1:
            continue  # several results leave the module: keep its operations
        end = ends[0]
        inputs = tuple(dict.fromkeys(ref for layer in group for ref in (layer.inputs or ()) if ref not in names))
        params = sum(p.numel() for p in module.get_submodule(owner).parameters())
        kind = type(module.get_submodule(owner)).__name__
        merged = L.Opaque(kind, end.expect, params, name=owner, inputs=inputs,
                          path=end.path[:end.path.index(owner)], expect=end.expect)
        rename = {end.name: owner}
        rebuilt = []
        for layer in layers:
            if layer.name in names:
                if layer is end:
                    rebuilt.append(merged)
                continue
            if layer.inputs and any(ref in rename for ref in layer.inputs):
                layer = replace(layer, inputs=tuple(rename.get(ref, ref) for ref in layer.inputs))
            rebuilt.append(layer)
        layers = rebuilt
        outputs[:] = [rename.get(ref, ref) for ref in outputs]
    return layers


def _piece(pieces: _Pieces, index: int):
    args, dim = pieces.args, int(pieces.args.get("dim", 0))
    if pieces.op == "chunk":
        return L.Chunk(int(args["chunks"]), dim, index)
    if pieces.op == "split":
        size = args["split_size"]
        return L.Split(int(size) if isinstance(size, int) else tuple(int(s) for s in size), dim, index)
    if pieces.op == "split_with_sizes":
        return L.Split(tuple(int(s) for s in args["split_sizes"]), dim, index)
    if pieces.op == "unbind":
        return L.Select(dim, index)
    raise SpecError(f"cannot read piece {index} of {pieces.op}", hint="report the model", field="model")


def _flat(values):
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flat(value)
        else:
            yield value
