"""Reading an ONNX graph's nodes, in order, into layers and constants.

Each node is read under one guard: a ``ConvcalcError`` that does not yet name
the node is given its name, and any other exception (a case no check foresaw)
becomes one ``SpecError`` naming the node, so no file gives a traceback. Every
layer a node makes passes the engine's gate (``check_layer``: the rules a
token's arguments pass) as it is made, and its output shape is checked before
later nodes see it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...engine import layers as L
from ...engine.errors import ConvcalcError, SpecError
from ...engine.gate import check_layer
from ...engine.layers.rules import clip
from ...engine.limits import MAX_INTEGER
from ..pytorch.values import Act, Unsupported
from . import fixed, fold
from .attributes import HINT, Attributes, label
from .batch import (
    PLAIN,
    OneSlice,
    dim,
    full_shape,
    make,
    placement,
    refuse,
)
from .constant import COPIES, Const, repeated
from .control import SEQUENCES, Sequence, branch, loop, sequence
from .gather import gather, gather_nd
from .joined import split_parts, split_sizes
from .lazy import ARITHMETIC, Readers
from .node import Node
from .ops import ALIASES, MAX_RANK, OPERATORS
from .recurrent import recurrent
from .scatter import Grid, grid
from .scope import scoped


class Reader:
    """The nodes of ``model``'s graph read in order; ``values`` holds the initializers and the graph input."""

    def __init__(self, onnx, model, values: dict, batch: int) -> None:
        self.onnx, self.model, self.graph, self.values, self.batch = onnx, model, model.graph, values, batch
        self.layers: list = []
        self.names: set[str] = set()
        self._suffix: dict[str, int] = {}
        self._inferred = None
        self.ambiguous = False  # set where a reshape could put the batch in more than one axis
        self.joined = False  # set where whole batches are joined along the batch's axis
        self.unrolled = 0  # the Loop body nodes read so far (control.MAX_UNROLLED bounds them)
        self.source = next(v for v in values.values() if isinstance(v, Act))  # the graph input
        self.fixed: dict[tuple, Act] = {}  # the Constant layers of fixed tensors, by value
        self.readers = Readers(model.graph)  # what reads each value: some constants are never made whole
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)

    def read(self) -> list:
        for index, node in enumerate(self.graph.node):
            try:
                self._node(node, index)
            except ConvcalcError as err:
                where = label(node, index)
                if not err.message.startswith(where):
                    raise type(err)(f"{where}: {err.message}", hint=err.hint, field="file") from None
                raise
            except Exception as err:  # the last guard: a case no check foresaw is still one line
                raise SpecError(f"{label(node, index)} cannot be read ({type(err).__name__})", hint=HINT,
                                field="file") from err
        return self.layers

    def name(self, node, index: int, suffix: str = "", base: str | None = None) -> str:
        """A layer name for ``node`` not yet taken (``base``: in place of its scope or name), with ``suffix``."""
        if base is not None:
            base = base.replace("/", ".").strip(".")
        base = (base or scoped(node) or node.name or (node.output[0] if node.output else f"node{index}")) + suffix
        name = base
        while name in self.names or name == "input":  # a counter a base, so repeated names stay linear
            self._suffix[base] = self._suffix.get(base, 0) + 1
            name = f"{base}_{self._suffix[base]}"
        self.names.add(name)
        return name

    def read_node(self, node, index: int) -> None:
        """One node read into ``values`` (a Loop's body reads its nodes through this)."""
        self._node(node, index)

    def _node(self, node, index: int) -> None:
        attrs = Attributes(node, index)
        if not node.output or not node.output[0]:
            raise attrs.error("has no output")
        outputs = [o for o in node.output if o]
        if len(set(outputs)) != len(outputs):
            raise attrs.error("names one output twice")
        for output in outputs:
            if output in self.values:
                raise attrs.error(f"writes {clip(output, 60)!r}, which an initializer, the graph input or an "
                                  "earlier node already defines")
        inputs = [self.values.get(name) if name else None for name in node.input]
        for name, value in zip(node.input, inputs):
            if name and value is None:
                raise attrs.error(f"reads {clip(name, 60)!r}, which nothing before it makes",
                                  hint="the file is not topologically sorted or is incomplete")
        if node.op_type in SEQUENCES:
            sequence(self, node, attrs, inputs)
            return
        if node.op_type in ("Loop", "If"):
            (loop if node.op_type == "Loop" else branch)(self, node, index, attrs, inputs)
            return
        if any(isinstance(v, Sequence) for v in inputs):
            raise attrs.error("reads a sequence, which convcalc reads only through SequenceAt")
        if node.op_type != "ScatterND" and any(isinstance(v, Grid) for v in inputs):
            raise attrs.error("reads a grid of positions too large to evaluate, which convcalc reads only as "
                              "ScatterND's indices", hint="simplify the model's constant parts (onnxsim)")
        acts = [v for v in inputs if isinstance(v, Act)]
        if node.op_type == "Constant":
            self.values[node.output[0]] = Const(fold.constant(attrs))
            return
        if not acts and node.op_type in ("MatMul", "Gemm") and fixed.fixed_product(inputs):
            inputs = [fixed.constant(self, node, index, 0, inputs[0])] + inputs[1:]
            acts = inputs[:1]
        stored = None if acts else fixed.stored_product(self, node, inputs)
        if stored is not None:
            inputs = [fixed.constant(self, node, index, i, v, learned=True) if i == stored else v
                      for i, v in enumerate(inputs)]
            acts = [inputs[stored]]
        copied = inputs[:1] if node.op_type == "Conv" else inputs  # a convolution's weight stays its weight
        if node.op_type in COPIES and (acts or node.op_type == "Conv") and \
                any(repeated(v, self.batch) for v in copied):
            inputs = [fixed.copy(self, node, index, v) if i < len(copied) and repeated(v, self.batch) else v
                      for i, v in enumerate(inputs)]
            acts = [v for v in inputs if isinstance(v, Act)]
        if not acts and node.op_type == "Concat" and grid(node.op_type, inputs, attrs.int("axis")):
            self.values[node.output[0]] = grid(node.op_type, inputs, attrs.int("axis"))
            return
        if not acts:
            results = fold.evaluate(node.op_type, [None if v is None else v.array for v in inputs], attrs,
                                    self.readers.lazy(node, inputs))
            source = inputs[0].initializer if node.op_type in ALIASES and inputs and inputs[0] is not None else None
            expanded = inputs[0].expanded if source else False
            if node.op_type == "Expand" and inputs[0].initializer and len(results) == 1:
                # an initializer of one sample made as large as the batch (cls_token.expand(B, -1, -1))
                shape = np.shape(results[0])
                source, expanded = inputs[0].initializer, bool(shape) and shape[0] == self.batch
            if node.op_type == "Unsqueeze" and inputs[0].expanded and len(results) == 1 and \
                    0 not in _new_axes(attrs, inputs, np.ndim(results[0])):
                source, expanded = inputs[0].initializer, True  # a class token given its token axis: (B, 1, C)
            table = () if source else _table(node.op_type, inputs)
            sized = any(isinstance(v, Const) and v.sized for v in inputs)
            for output, result in zip(node.output, results):
                if output:
                    self.values[output] = Const(np.asarray(result), source, expanded, table, sized)
            return
        if node.op_type == "Shape":
            full = np.array(full_shape(acts[0], self.batch), dtype=np.int64)
            self.values[node.output[0]] = Const(full[attrs.int("start", 0):attrs.int("end", None)], sized=True)
            return
        if node.op_type in ALIASES or (node.op_type == "Expand" and inputs[0] is acts[0] and
                                       (self._read_by_arithmetic_only(node.output[0]) or
                                        self._expands_to_itself(acts[0], inputs))):
            # an Expand only arithmetic reads is the broadcast the arithmetic makes (F.normalize's expand_as
            # before its division); one to the shape the tensor has is nothing
            self.values[node.output[0]] = acts[0]
            return
        name = self.name(node, index)
        path = tuple(part for part in name.split("/") if part)[:-1]
        wrapped = Node(node, index, inputs, self.batch, name, self.opset, self)
        try:
            if node.op_type == "Split":
                self._split(wrapped, node.output, path)
                return
            if node.op_type in ("LSTM", "GRU", "RNN"):
                self._recurrent(wrapped, node.output, path)
                return
            if node.op_type in ("Gather", "GatherND"):
                made = (gather if node.op_type == "Gather" else gather_nd)(wrapped)
                specs = made if isinstance(made, list) else [(made, [wrapped.act(moved=True)])]
            elif node.op_type in OPERATORS:
                specs = OPERATORS[node.op_type](wrapped)
            else:
                raise Unsupported(node.op_type)
        except Unsupported:
            self._opaque(node, acts, name, path, inputs, wrapped.label)
            return
        if not specs:  # only the batch moved: the same sample, with its batch elsewhere
            self.values[node.output[0]] = make(acts[0].ref, acts[0].shape, wrapped.placed)
            return
        if wrapped.slices != 1:
            specs = [(replace(spec, slices=wrapped.slices) if spec is not None else None,
                      None if reads is None else [a.whole if isinstance(a, OneSlice) else a for a in reads])
                     for spec, reads in specs]
        elif wrapped.unbatched:  # the one sample of a batch of 1 on axis 0, taken out before the layers
            whole = next(a.whole for _, reads in specs for a in reads or () if isinstance(a, OneSlice))
            specs = [(L.Reshape(whole.shape[1:]), [whole])] + [
                (spec, None if reads is None and i else [0] if reads is None else
                 [0 if isinstance(a, OneSlice) else a + 1 if isinstance(a, int) else a for a in reads])
                for i, (spec, reads) in enumerate(specs)]
        self.emit(node.output[0], specs, name, path, wrapped.params, wrapped.label, wrapped.placed)

    def _expands_to_itself(self, act: Act, inputs) -> bool:
        target = inputs[1] if len(inputs) > 1 else None
        if not isinstance(target, Const) or target.array.ndim != 1 or target.array.dtype.kind not in "iu":
            return False
        full = full_shape(act, self.batch)
        try:
            return tuple(np.broadcast_shapes(full, tuple(int(n) for n in target.array))) == tuple(full)
        except ValueError:
            return False

    def _read_by_arithmetic_only(self, name: str) -> bool:
        readers = {op for op, _, _ in self.readers.of(name)}
        return bool(readers) and readers <= ARITHMETIC

    def emit(self, output: str, specs, name: str, path, params, where: str, placed=None) -> Act:
        previous = None
        made: list[Act] = []
        for i, (spec, reads) in enumerate(specs):
            last = i == len(specs) - 1
            layer_name = name if last else f"{name}.{type(spec).__name__.lower()}{i}"
            reads = [made[r] if isinstance(r, int) else r for r in reads] if reads is not None else [previous]
            layer = replace(spec, name=layer_name, inputs=tuple(a.ref for a in reads), path=path,
                            weights=tuple(params) if last else ())
            shapes = tuple(a.shape for a in reads)
            try:  # the rules a token's arguments pass, then convcalc's own shape rules
                check_layer(layer)
                figures = L.figures_of(layer, tuple(shapes))
            except ConvcalcError as err:
                raise SpecError(f"{where}: {err.message}", hint=err.hint, field="file") from None
            _check_shape(figures.output_shape, where)
            self.layers.append(layer)
            previous = Act(layer_name, figures.output_shape)
            made.append(previous)
        previous = make(previous.ref, previous.shape, placed or PLAIN)
        self.values[output] = previous
        return previous

    def _recurrent(self, node: Node, outputs, path) -> None:
        """An LSTM, GRU or RNN node: the recurrent layer, then each output read as the shape it has."""
        core, x, shapes = recurrent(node)
        cell = self.emit("", [(core, [x])], f"{node.name}.{node.op.lower()}", path, node.params, node.label)
        for k, output in enumerate(outputs[:3]):
            if output:
                specs, placed = shapes[k]
                chain = [(spec, [cell] if i == 0 else None) for i, spec in enumerate(specs)]
                self.emit(output, chain, node.name if k == 0 else f"{node.name}.{'yhc'[k]}", path, (), node.label,
                           placed)
        self.values.pop("", None)

    def _split(self, node: Node, outputs, path) -> None:
        """Each output of a Split as the piece of the axis it is (work linear in the outputs)."""
        x = node.act(moved=True)
        full = full_shape(x, self.batch)
        file_axis = node.int("axis", 0)
        if not -len(full) <= file_axis < len(full):
            raise node.error(f"axis {file_axis} is outside the input's {len(full)} axes")
        sizes = split_sizes(node, outputs, full[file_axis])
        pieces = split_parts(node, x, sizes) if file_axis % len(full) == 0 else None
        if pieces is not None:  # whole batches joined along the batch's axis: each piece the parts it selects
            for k, (output, (spec, where)) in enumerate(zip(outputs, pieces)):
                if output:
                    self.emit(output, [(spec, [x])], f"{node.name}.{k}", path, (), node.label, where)
            return
        axis = dim(node, x, file_axis)
        start = 0
        for k, (output, length) in enumerate(zip(outputs, sizes)):
            if output:
                self.emit(output, [(L.Narrow(axis, start, length), [x])], f"{node.name}.{k}", path, (),
                           node.label, placement(x))
            start += length

    def _opaque(self, node, acts, name, path, inputs, where: str) -> None:
        if any(placement(a) != PLAIN for a in acts):
            raise refuse(Attributes(node), "is an operation convcalc cannot read, on a tensor whose batch is not "
                                           "first")
        shape = self._inferred_shapes().get(node.output[0])
        if shape is None or not shape or shape[0] not in (self.batch, None) or None in shape[1:]:
            raise SpecError(f"{where} is an operation convcalc cannot read, and ONNX's shape inference does not "
                            "give its output shape", hint="convcalc reads the operators in its README's ONNX table",
                            field="file")
        _check_shape(shape[1:], f"{where}: ONNX's shape inference")
        params = [(f"{v.initializer}", v.initializer) for v in inputs
                  if isinstance(v, Const) and v.initializer and v.array.dtype.kind == "f"]
        count = sum(int(self.values[p].array.size) for _, p in params)
        spec = L.Opaque(node.op_type, tuple(shape[1:]), count)
        layer = replace(spec, name=name, inputs=tuple(dict.fromkeys(a.ref for a in acts)), path=path)
        self.layers.append(layer)
        self.values[node.output[0]] = Act(name, tuple(shape[1:]))

    def _inferred_shapes(self) -> dict:
        if self._inferred is None:
            from onnx import shape_inference

            try:
                inferred = shape_inference.infer_shapes(self.model).graph
            except Exception:  # noqa: BLE001 - inference may fail on unusual files: then nothing is known
                inferred = self.graph
            self._inferred = {}
            for info in list(inferred.value_info) + list(inferred.output):
                if info.type.tensor_type.HasField("shape"):  # an output declared without one says nothing
                    dims = info.type.tensor_type.shape.dim
                    self._inferred[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        return self._inferred


# Operators that only pick and move a constant's values: what they make of a float initializer is still its
# learned values (Swin's relative-position bias: a table gathered by a fixed index, reshaped and permuted;
# MViT's position embeddings, tiled and expanded over the frames).
_PICKS = {"Gather", "GatherND", "Reshape", "Transpose", "Unsqueeze", "Squeeze", "Tile", "Expand", "Flatten"}
# ... and operators that add or join learned values: the result is learned from all of them (MViT's position
# embedding, a temporal and a spatial table added, a class position joined before them)
_JOINS = {"Add", "Concat"}
# ... and operators whose every value is a function of one of the initializer's (Swin V2's clamped and
# exponentiated logit scale; its qkv bias with the key's part set to zero by ScatterND)
_ONE_TO_ONE = {"Clip", "Exp", "ScatterND"}


def _new_axes(attrs, inputs, ndim: int) -> set[int]:
    """The axes an Unsqueeze adds (its attribute, or its input 1), counted in its output's ``ndim`` axes."""
    found = attrs.ints("axes")
    if found is None and len(inputs) > 1 and isinstance(inputs[1], Const):
        found = inputs[1].array.reshape(-1).tolist()
    return {int(a) % ndim for a in found or ()} if ndim else set()


def _table(op: str, inputs) -> tuple[str, ...]:
    """The float initializers whose values a constant node's result holds, picked, moved, added or joined."""
    first = inputs[0] if inputs else None
    if op in _JOINS:
        learned = [v for v in inputs if isinstance(v, Const) and v.array.dtype.kind == "f"]
        if not learned or len(learned) != len(inputs) or not all(v.initializer or v.table for v in learned):
            return ()  # a learned table with fixed values (a mask's fill) is not learned throughout
        return tuple(dict.fromkeys(name for v in learned for name in ((v.initializer,) if v.initializer else
                                                                      v.table)))
    if op not in _PICKS | _ONE_TO_ONE or not isinstance(first, Const) or first.array.dtype.kind != "f":
        return ()
    return (first.initializer,) if first.initializer else first.table


def _check_shape(shape, where: str) -> None:
    if len(shape) > MAX_RANK - 1:
        raise SpecError(f"{where}: an output of {len(shape) + 1} axes, more than {MAX_RANK}", hint=HINT, field="file")
    for size in shape:
        if not isinstance(size, int) or not 0 <= size <= MAX_INTEGER:
            raise SpecError(f"{where}: an output size of {clip(str(size), 30)}, which is not a size below 2^62",
                            hint=HINT, field="file")
