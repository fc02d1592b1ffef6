"""Reading a graph captured by ``torch.export`` as convcalc's layers.

Every ATen call becomes a layer named after the module that made it (``layer1.0.conv1``; a
functional call inside a block is ``layer1.0.add``), with the module hierarchy as its ``path``.
The traced per-sample shape of every layer is kept as ``expect``: the analysis computes its own
and fails loudly if they differ. The batch is traced as a symbol where the model allows it, so
each size says where the batch is (``Layout``): transformers move it and merge it with heads
and windows.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace

from ...engine import layers as L
from ...engine.errors import BatchAxisError, ConsistencyError, ConvcalcError, SpecError
from ...engine.graph import reaching
from ...engine.sizes import volume
from .aten import ALIASES, ARITHMETIC, BATCH_FIRST, EXPANDS, FIRST_OF_TUPLE, FRESH, OPERATORS, PIECES, RECURRENT
from .moves import piece
from .names import Namer, in_place, op_name
from .fixed import COPIED, FixedLayers
from .joined import joins_batches, keep_order, piece_of_join, stack, stacks
from .sliced import one_slice, slices_read, with_slices
from .collapse import collapse_opaque_modules
from .unreturned import unreturned
from .unused import unused_parameters
from .writes import Writes
from .values import Act, Call, Const, Layout, Param, Unsupported, layout_of, made_by

# Traced with two samples, so the batch axis is told apart from a size-1 axis.
TRACE_BATCH = 2

# Modules that drop whole residual branches in training and are the identity
# in evaluation, where export records nothing for them (torchvision's
# StochasticDepth; timm's DropPath); their drop probability's attribute.
DROP_PATHS = {"StochasticDepth": "p", "DropPath": "drop_prob"}


def _drop_paths(module) -> dict:
    """The stochastic-depth modules of ``module`` by name, with their (p, mode)."""
    found = {}
    for name, sub in module.named_modules():
        attribute = DROP_PATHS.get(type(sub).__name__)
        if attribute is not None and isinstance(getattr(sub, attribute, None), (int, float)):
            found[name] = (float(getattr(sub, attribute)), getattr(sub, "mode", "row"))
    return found


def _attention_dropout(module) -> dict:
    """``nn.MultiheadAttention`` modules that drop attention weights in training, by name, with their p:
    evaluation, which the capture runs, drops nothing, so export records no dropout for them."""
    return {name: float(sub.dropout) for name, sub in module.named_modules()
            if type(sub).__name__ == "MultiheadAttention" and isinstance(getattr(sub, "dropout", None), float)
            and sub.dropout > 0}


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


def read_program(torch, module, exported, shape):
    program, trace_batch = exported
    specs = {spec.arg.name: spec for spec in program.graph_signature.input_specs if hasattr(spec.arg, "name")}
    trainable = {name: p.requires_grad for name, p in module.named_parameters(remove_duplicate=False)}
    names = Namer(module, program.graph)
    drop_paths, attention_dropout = _drop_paths(module), _attention_dropout(module)
    values: dict = {}
    layers: list = []
    frozen: set[str] = set()

    def resolve(value):
        if isinstance(value, torch.fx.Node):
            return values.get(value.name)
        if isinstance(value, (list, tuple)):
            return type(value)(resolve(v) for v in value)
        return value

    def per_sample(val, where: str) -> tuple[tuple[int, ...], Layout]:
        return layout_of(torch, val, where, batch)

    def add(spec, node, call_reads, weights, expect, layout, name=None, path=None):
        name = name or names.name(node)
        path = names.path(node) if path is None else path
        layers.append(replace(spec, name=name, inputs=tuple(call_reads), path=path, expect=expect,
                              weights=tuple(weights), once=layout.fixed))
        return Act(name, expect, layout)

    fixed = FixedLayers(add, names)
    secondary: set[str] = set()  # the layers for the further results of an operation (an LSTM's last states)

    def _parts(val) -> int:  # how many whole batches a piece of a join along the batch's axis holds
        shape, layout = per_sample(val, "")
        return shape[layout.axis] if layout.merged else 1

    batch = trace_batch
    def read_node(node) -> None:  # one node of the graph: its value (a layer, a view, a fixed tensor)
        nonlocal batch
        if node.op == "placeholder":
            spec = specs.get(node.name)
            val = node.meta.get("val")
            kind = spec.kind.name if spec is not None else "USER_INPUT"
            if kind == "USER_INPUT":
                first = val.shape[0]
                if isinstance(first, torch.SymInt) and not first.node.expr.is_number:
                    batch = first.node.expr  # the symbol every batch-sized axis is a multiple of
                values[node.name] = Act("input", shape, Layout(0, len(shape) + 1))
            elif kind == "PARAMETER":
                values[node.name] = Param(spec.target, tuple(val.shape))
                if not trainable.get(spec.target, True):
                    frozen.add(spec.target)
            elif kind == "BUFFER":
                values[node.name] = Param(spec.target, tuple(val.shape), buffer=True)
            else:
                values[node.name] = Const(_fixed_shape(torch, val))
            return
        if node.op != "call_function":
            return
        val = node.meta.get("val")
        if node.target is operator.getitem:
            source, index = values.get(node.args[0].name), node.args[1]
            if isinstance(source, _Pieces):
                try:
                    expect, layout = per_sample(val, node.name)
                    spec = piece_of_join(source.source, [_parts(p) for p in node.args[0].meta["val"]], index,
                                         int(source.args.get("dim", 0)))
                    if spec is not None:  # a part of whole batches joined along the batch's axis
                        layout = replace(layout, inner=layout.merged)
                    else:
                        spec = piece(source.op, source.args, source.source, index)
                    _check(spec, node, [source.source.shape])  # a piece along the batch axis: not read
                    values[node.name] = add(spec, node, [source.source.ref], (), expect, layout,
                                            name=f"{source.name}.{index}", path=source.path)
                except Unsupported:
                    values[node.name] = _opaque(torch, node, f"aten.{source.op}", {}, [source.source], val, batch,
                                                add, name=f"{source.name}.{index}", path=source.path)
            elif isinstance(source, tuple) and index == 0:
                values[node.name] = source[0]
            elif isinstance(source, (Param, Const)):  # a piece of a parameter (a split weight) or of fixed values
                values[node.name] = _fixed(torch, {"self": source}, val, batch, "split")
            elif isinstance(source, _Several):  # a result of an operation convcalc does not read
                if index != 0:
                    secondary.add(f"{source.first.ref}.{index}")
                values[node.name] = source.first if index == 0 else _opaque(
                    torch, node, source.kind, {}, source.reads, val, batch, add, name=f"{source.first.ref}.{index}",
                    path=names.path(node.args[0]))
            return
        if not hasattr(node.target, "_schema"):
            if not isinstance(val, torch.Tensor):
                values[node.name] = val if isinstance(val, (int, float)) else None
                return
            op, args = op_name(node.target), {f"arg{i}": resolve(a) for i, a in enumerate(node.args)}
        else:
            op, args = op_name(node.target), _arguments(node, resolve)
        tensor_val = val[0] if isinstance(val, (tuple, list)) and val else val
        if not isinstance(tensor_val, torch.Tensor):
            values[node.name] = val if isinstance(val, (int, float)) else None
            return
        if op == "einsum":
            args = fixed.einsum_operands(node, args)
        acts = [a for a in _flat(args.values()) if isinstance(a, Act)]
        started = fixed.start(node, op, args) if not acts else None
        if started is not None:  # a learned product of fixed values (Swin V2's position-bias MLP): layers
            args = started
            acts = [a for a in _flat(args.values()) if isinstance(a, Act)]
        if op in COPIED:
            args = fixed.copies(node, op, args)
        if not acts or op in FRESH:  # made inside forward from constants and parameters only
            product = None if acts else fixed.learned_product(node, op, args, _fixed_shape(torch, tensor_val))
            values[node.name] = product or _fixed(torch, args, tensor_val, batch, op)
            return
        try:
            expect, layout, args = fixed.place(node, op, args, acts, lambda: _fixed_shape(torch, tensor_val),
                                               lambda: per_sample(tensor_val, node.name))
            if joins_batches(op, args, layout) or stacks(op, args):
                joined = replace(layout, inner=True) if op != "stack" else layout
                values[node.name] = stack(node, args["tensors"], int(args.get("dim", 0)), expect, joined, add,
                                          names.name(node))
                return
            if op in PIECES:
                values[node.name] = _Pieces(op, args, acts[0], names.name(node), names.path(node))
                return
            layout = keep_order(op, acts, layout)
            if op in ALIASES:
                values[node.name] = Act(acts[0].ref, expect, layout)
                return
            if op in EXPANDS and isinstance(args.get("self"), Act) and node.users and all(
                    op_name(user.target) in ARITHMETIC for user in node.users):
                values[node.name] = args["self"]  # the arithmetic reading it broadcasts it the same way
                return
            k = slices_read(acts, layout) if op in BATCH_FIRST else 1  # the batch merged with heads: slices
            if op not in OPERATORS or (op in BATCH_FIRST and k == 1 and not all(a.layout.leading for a in acts)):
                raise Unsupported(op)
            call = Call(op, args, trace_batch, out=expect, out_layout=layout)
            call = one_slice(call, k) if k != 1 else call
            spec = OPERATORS[op](call)
            spec = replace(spec, slices=k) if spec is not None and k != 1 else spec
            if spec is None:  # only the batch moved, or the per-sample shape is unchanged: a view
                values[node.name] = Act(call.reads[0].ref, expect, layout)
                return
            if op == "dropout" and names.module_of(node) in drop_paths:
                spec = L.StochasticDepth(*drop_paths[names.module_of(node)])
            dropped = attention_dropout.get(names.module_of(node))  # what training drops in attention
            if dropped and op == "scaled_dot_product_attention":
                spec = replace(spec, dropout_p=dropped)
            if in_place(node.target) and hasattr(spec, "inplace"):
                spec = replace(spec, inplace=True)  # autograd saves differently for in-place activations
            _check(spec, node, [with_slices(a.shape, k) for a in call.reads])
            result = add(spec, node, [a.ref for a in call.reads], call.weights, expect, layout)
            if dropped and op in ("softmax", "_softmax"):  # the attention weights, dropped in training
                result = add(L.Dropout(dropped), node, [result.ref], (), expect, layout,
                             name=names.name(node) + ".dropout")
            if op in RECURRENT:  # its last states (read with getitem) are not layers convcalc can cost
                result = _Several(_kind(node, op), result, tuple(acts))
        except Unsupported:
            result = _opaque(torch, node, _kind(node, op), args, acts, tensor_val, batch, add)
            if isinstance(val, (tuple, list)):  # its other results are read with getitem
                result = _Several(_kind(node, op), result, tuple(acts))
        values[node.name] = (result,) if op in FIRST_OF_TUPLE else result

    def written(spec, node, reads, expect, layout, suffix):  # a layer a write adds
        made = add(spec, node, [a.ref for a in reads], (), expect, layout, name=names.name(node) + suffix)
        secondary.add(made.ref)  # where nothing reads it, the tensor written is not read again
        return made

    def unfollowed(node, reads, shaped):  # a write convcalc does not follow
        made = _opaque(torch, node, f"aten.{node.target.overloadpacket.__name__}", {}, reads, shaped.meta.get("val"),
                       batch, add, name=names.name(node) + ".write")
        secondary.add(made.ref)
        return made

    writes = Writes(values, layers, written, unfollowed)
    for node in program.graph.nodes:
        made = len(layers)
        read_node(node)
        if node.op == "call_function":  # an in-place write changes what later reads of its tensors see
            if in_place(node.target):  # its own result, where nothing reads it, is the write's
                secondary.update(layer.name for layer in layers[made:])
            writes.after(node, op_name(node.target))
    output = next(n for n in program.graph.nodes if n.op == "output")
    results = [values.get(n.name) for n in _flat(output.args) if isinstance(n, torch.fx.Node)]
    # a dict, tuple or list of results arrives flat, in its order: each tensor made from the input is an output
    results = [r for r in results if isinstance(r, Act) and r.ref != "input"]
    if not results:
        raise SpecError("the model's output does not depend on its input (it returns no tensor computed from it)",
                        hint="check the model's forward", field="model")
    # the first result is the network's output (the last layer); the others are further outputs
    outputs = list(dict.fromkeys(r.ref for r in results if r.ref != "input"))
    layers, ends = unreturned(layers, outputs, secondary)
    outputs += ends
    layers = collapse_opaque_modules(reaching(layers, outputs), outputs, module)  # results no one reads go first
    ends = outputs[len(outputs) - len(ends):]  # as the collapse renamed them
    outputs = outputs[1:] + outputs[:1]
    layers = reaching(layers, outputs)
    used = {node.name for node in program.graph.nodes if node.op == "placeholder" and node.users}
    read = {spec.target for name, spec in specs.items() if spec.kind.name == "PARAMETER" and name in used}
    return layers, frozen, tuple(outputs[:-1]), unused_parameters(module, layers, read), tuple(ends)


def _check(spec, node, shapes) -> None:
    """convcalc's rules on the traced input shapes: an operation on the batch axis cannot be
    described per sample (so it is not counted); any other refusal of what PyTorch ran is a bug."""
    try:
        L.figures_of(spec, tuple(shapes))
    except BatchAxisError as err:
        raise Unsupported(str(err)) from None
    except ConvcalcError as err:
        raise ConsistencyError(f"{node.name} ({node.target}): PyTorch ran it, but convcalc's rules refuse it: "
                               f"{err.message}: this is a bug in convcalc", hint="please report it with the model",
                               field="model") from None


def _kind(node, op) -> str:
    return f"aten.{op}" if hasattr(node.target, "_schema") else op


def _opaque(torch, node, kind, args, acts, val, batch, add, name=None, path=None):
    try:
        output, layout = layout_of(torch, val, node.name, batch)
    except Unsupported:  # the batch is gone or split: the elements per sample, flat
        output, layout = (volume(_fixed_shape(torch, val)) // (batch if isinstance(batch, int) else TRACE_BATCH),), \
            Layout(0, 2)
    # the parameters it reads, each once with every parameter it was made from: the layer holds them
    made: dict[str, int] = {}
    for a in _flat(args.values()):
        if isinstance(a, Param) and not a.buffer:
            for part, count in a.parts or ((a.name, a.table or volume(a.shape)),):
                made.setdefault(part, count)
    spec = L.Opaque(kind, output, sum(made.values()))
    weights = tuple((f"operand{k}", part) for k, part in enumerate(made))
    return add(spec, node, [a.ref for a in dict.fromkeys(acts)], weights, output, layout, name=name, path=path)


def _fixed_shape(torch, val) -> tuple[int, ...]:
    """A traced tensor's sizes, a symbolic batch taken as the traced one."""
    dims = getattr(val, "shape", ())
    return tuple(int(d.node.hint) if isinstance(d, torch.SymInt) and d.node.hint is not None else int(d) for d in dims)


def _fixed(torch, args, val, batch, op=""):
    """What a tensor made without the input is: a parameter reshaped, gathered or expanded (a class
    token expanded to the batch, a relative-position bias gathered from its table), or fixed values."""
    learned = [a for a in _flat(args.values()) if isinstance(a, Param) and not a.buffer]
    if not learned and isinstance(batch, int) and _repeats_over(args, val, batch, op):
        return Const((1, *_fixed_shape(torch, val)[1:]), repeated=True)
    if not learned:
        if not isinstance(batch, int):  # fixed values repeated over the batch (RAFT's coordinate grid)
            try:
                shape, layout = layout_of(torch, val, "", batch)
                if layout.leading:  # they broadcast over the samples as a leading 1 does
                    return Const((1, *shape), repeated=True, shared=_batch_stride(val) == 0)
                if layout.merged and layout.axis == 0:
                    return Const(_fixed_shape(torch, val), per_sample=shape, layout=layout)
            except Unsupported:
                pass
        return Const(_fixed_shape(torch, val))
    source = learned[0]
    try:
        shape, layout = layout_of(torch, val, "", batch)
        batched = True
        if not layout.leading:
            return Const(_fixed_shape(torch, val))
    except Unsupported:
        shape, batched = _fixed_shape(torch, val), False
    # made from several parameters (BEiT's query-key-value bias: its query and value biases around fixed
    # zeros): their values together are what a layer using it holds
    made: dict[str, int] = {}  # every parameter it is made from, through earlier such tensors, once
    for p in learned:
        for name, count in p.parts or ((p.name, p.table or volume(p.shape)),):
            made.setdefault(name, count)
    parts = tuple(made.items()) if len(made) > 1 else ()
    table = sum(made.values())
    return Param(source.name, shape, parts=parts,
                 table=None if table == volume(shape) and not source.table and not parts else table,
                 batched=batched, made=made_by(op, learned))


def _batch_stride(val):
    """The traced tensor's stride along its batch axis (0 where every sample views one sample's values)."""
    try:
        return int(val.stride()[0])
    except (AttributeError, IndexError, TypeError, RuntimeError):
        return None


def _repeats_over(args, val, batch: int, op: str) -> bool:
    """Whether fixed values are repeated over a fixed traced batch (RAFT's coordinate grid,
    ``grid[None].repeat(batch, 1, 1, 1)``), or computed from values that are, keeping it first."""
    shape = tuple(getattr(val, "shape", ()))
    if not shape or shape[0] != batch:
        return False
    source = args.get("self")
    if op == "repeat" and isinstance(source, Const) and source.shape[:1] == (1,):
        return [int(r) for r in args["repeats"]] == [batch] + [1] * (len(shape) - 1)
    return any(isinstance(a, Const) and a.repeated for a in _flat(args.values()))


def _flat(values):
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _flat(value)
        else:
            yield value
