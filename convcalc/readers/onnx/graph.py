"""Reading an ONNX file as a ``Network``, with the ``onnx`` package and no framework.

Nodes are read in the file's (topological) order. Computations on the graph
input become layers (``ops``); everything else (initializers, Constant nodes
and the integer shape plumbing exporters emit: Shape, Gather, Unsqueeze, Concat,
Reshape, Cast, Slice, arithmetic) is evaluated here with NumPy to constants, so
no layer comes from it and no reliance on ONNX's own shape inference is needed.
Layer names are the node names; ``/``-separated scopes become each layer's path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from ...engine import layers as L
from ...engine.errors import ConvcalcError, SpecError
from ...engine.graph import reaching
from ...engine.limits import MAX_CONSTANT_ELEMENTS
from ...engine.network import Network
from ...engine.sizes import volume
from ..pytorch.values import Act, Unsupported
from .external import inline_external_data
from .node import Node
from .ops import ALIASES, OPERATORS


@dataclass(frozen=True)
class Const:
    """A value known without the input: an array, and the initializer it is (for parameters)."""

    array: np.ndarray
    initializer: str | None = None


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise SpecError("reading ONNX files needs the onnx package, which is not installed",
                        hint='install it: pip install "convcalc[onnx]"', field="file") from None
    return onnx


def looks_like_onnx(data: bytes) -> bool:
    """Whether ``data`` starts as an ONNX model does (protobuf field 1, ir_version, a small varint)."""
    return len(data) > 8 and data[0] == 0x08 and data[1] < 0x80 and data.find(b"\x12") < 64


def from_onnx(source, *, batch: int | None = None, input_shape=None, dtype: str = "float32",
              directory: str | None = None) -> Network:
    """An ONNX model (a path or the file's bytes) as a ``Network``.

    The input shape comes from the graph's input; a symbolic batch takes ``batch``
    (default 1) and other symbolic sizes need ``input_shape`` (per sample).
    External data is read only from files inside the model's ``directory``
    (a path's own directory; bytes have none unless it is given).
    """
    onnx = import_onnx()
    if isinstance(source, (bytes, bytearray)):
        data = source
    else:
        data = _read(source)
        directory = os.path.dirname(os.path.abspath(source))
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as err:  # noqa: BLE001 - protobuf's decode errors have no common base
        raise SpecError(f"not a readable ONNX model: {type(err).__name__}", hint="give a .onnx file", field="file") \
            from None
    inline_external_data(onnx, model, directory)
    graph = model.graph
    from onnx import numpy_helper

    values: dict = {}
    for tensor in graph.initializer:
        values[tensor.name] = Const(numpy_helper.to_array(tensor), tensor.name)
    inputs = [i for i in graph.input if i.name not in values]
    if len(inputs) != 1:
        raise SpecError(f"the graph has {len(inputs)} inputs; convcalc reads models with one",
                        hint="export the model with a single input tensor", field="file")
    file_batch, shape = _input_shape(inputs[0], input_shape)
    trace_batch = file_batch or batch or 1
    values[inputs[0].name] = Act("input", shape)
    reader = _Reader(onnx, numpy_helper, graph, values, trace_batch)
    layers = reader.read()
    outputs = [values.get(o.name) for o in graph.output]
    refs = list(dict.fromkeys(v.ref for v in outputs if isinstance(v, Act) and v.ref != "input"))
    if not refs:
        raise SpecError("the model's output does not depend on its input", hint="check the model", field="file")
    ordered = refs[1:] + refs[:1]
    return Network(shape, tuple(reaching(layers, ordered)), batch or file_batch or 1, dtype, outputs=tuple(ordered[:-1]))


def _read(path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as err:
        raise SpecError(f"cannot read {str(path)!r}: {err.strerror}", hint="check the path", field="file") from None


def _input_shape(value_info, given):
    dims = value_info.type.tensor_type.shape.dim
    if not dims:
        raise SpecError(f"the graph input {value_info.name!r} has no shape", hint="give --input", field="input")
    batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    rest = []
    for i, dim in enumerate(dims[1:], start=1):
        if dim.HasField("dim_value"):
            rest.append(int(dim.dim_value))
        elif given is None:
            raise SpecError(f"the graph input's axis {i} is symbolic ({dim.dim_param or '?'})",
                            hint="give the input shape without the batch, e.g. --input 3x224x224", field="input")
        else:
            rest.append(None)
    if given is not None:
        given = tuple(given)
        if len(given) != len(rest):
            raise SpecError(f"--input has {len(given)} sizes but the graph input has {len(rest)} after the batch",
                            hint="give the sizes without the batch", field="input")
        rest = [g if r is None or r == g else None for r, g in zip(rest, given)]
        if None in rest:
            raise SpecError(f"--input {'x'.join(map(str, given))} disagrees with the graph input's fixed sizes",
                            hint="give the sizes the model was exported with", field="input")
    return batch, tuple(rest)


class _Reader:
    def __init__(self, onnx, numpy_helper, graph, values, batch) -> None:
        self.onnx, self.numpy_helper, self.graph, self.values, self.batch = onnx, numpy_helper, graph, values, batch
        self.layers: list = []
        self.names: set[str] = set()
        self._inferred = None

    def read(self) -> list:
        for index, node in enumerate(self.graph.node):
            self._node(node, index)
        return self.layers

    def _attrs(self, node) -> dict:
        helper = self.onnx.helper
        out = {}
        for a in node.attribute:
            value = helper.get_attribute_value(a)
            if isinstance(value, self.onnx.TensorProto):
                value = self.numpy_helper.to_array(value)
            elif isinstance(value, bytes):
                value = value.decode()
            out[a.name] = value
        return out

    def _name(self, node, index: int) -> str:
        name = node.name or (node.output[0] if node.output else f"node{index}")
        while name in self.names or name == "input":
            name += "_"
        self.names.add(name)
        return name

    def _node(self, node, index: int) -> None:
        inputs = [self.values.get(name) if name else None for name in node.input]
        for name, value in zip(node.input, inputs):
            if name and value is None:
                raise SpecError(f"node {node.name or node.op_type!r} reads {name!r}, which nothing before it makes",
                                hint="the file is not topologically sorted or is incomplete", field="file")
        attrs = self._attrs(node)
        acts = [v for v in inputs if isinstance(v, Act)]
        if node.op_type == "Constant":
            self.values[node.output[0]] = Const(np.asarray(_constant(attrs)))
            return
        if not acts:
            self._evaluate(node, inputs, attrs)
            return
        if node.op_type == "Shape":
            full = np.array((self.batch, *acts[0].shape), dtype=np.int64)
            start, end = attrs.get("start", 0), attrs.get("end", None)
            self.values[node.output[0]] = Const(full[start:end])
            return
        if node.op_type in ALIASES:
            self.values[node.output[0]] = acts[0]
            return
        name = self._name(node, index)
        path = tuple(part for part in name.split("/") if part)[:-1]
        try:
            if node.op_type == "Split":
                self._split(node, inputs, attrs, name, path)
                return
            if node.op_type == "Gather":
                specs = [(_gather(node, inputs, attrs), [acts[0]])]
            else:
                if node.op_type not in OPERATORS:
                    raise Unsupported(node.op_type)
                wrapped = Node(node.op_type, name, inputs, attrs, self.batch)
                specs = OPERATORS[node.op_type](wrapped)
                params = wrapped.params
        except Unsupported:
            self._opaque(node, acts, name, path, inputs)
            return
        if node.op_type == "Gather":
            params = []
        self._emit(node.output[0], specs, name, path, params)

    def _emit(self, output: str, specs, name: str, path, params) -> Act:
        previous = None
        for i, (spec, reads) in enumerate(specs):
            last = i == len(specs) - 1
            layer_name = name if last else f"{name}.{type(spec).__name__.lower()}{i}"
            reads = reads if reads is not None else [previous]
            layer = replace(spec, name=layer_name, inputs=tuple(a.ref for a in reads), path=path,
                            weights=tuple(params) if last else ())
            shapes = tuple(a.shape for a in reads)
            try:  # convcalc's own rules give each output's shape, which later nodes need
                figures = layer.merge(shapes) if isinstance(layer, L.Merge) else layer.infer(shapes[0])
            except ConvcalcError as err:
                raise SpecError(f"node {name!r}: {err.message}", hint=err.hint, field="file") from None
            self.layers.append(layer)
            previous = Act(layer_name, figures.output_shape)
        self.values[output] = previous
        return previous

    def _split(self, node, inputs, attrs, name, path) -> None:
        x = inputs[0]
        axis = int(attrs.get("axis", 0))
        sizes = attrs.get("split")
        if sizes is None and len(inputs) > 1 and inputs[1] is not None:
            sizes = [int(n) for n in inputs[1].array]
        pieces = len(node.output)
        for k, output in enumerate(node.output):
            if sizes is not None:
                spec = L.Split(tuple(int(n) for n in sizes), axis, k)
            else:
                spec = L.Chunk(pieces, axis, k)
            self._emit(output, [(spec, [x])], f"{name}.{k}", path, ())

    def _opaque(self, node, acts, name, path, inputs) -> None:
        shapes = self._inferred_shapes()
        shape = shapes.get(node.output[0])
        if shape is None or not shape or shape[0] not in (self.batch, None) or None in shape[1:]:
            raise SpecError(f"node {node.name or node.output[0]!r} ({node.op_type}) is an operation convcalc cannot "
                            "read, and ONNX's shape inference does not give its output shape",
                            hint="convcalc reads the operators in its README's ONNX table", field="file")
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

            model = self.onnx.helper.make_model(self.graph)
            try:
                inferred = shape_inference.infer_shapes(model).graph
            except Exception:  # noqa: BLE001 - inference may fail on unusual files: then nothing is known
                inferred = self.graph
            self._inferred = {}
            for info in list(inferred.value_info) + list(inferred.output):
                dims = info.type.tensor_type.shape.dim
                self._inferred[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
        return self._inferred

    def _evaluate(self, node, inputs, attrs) -> None:
        arrays = [None if v is None else v.array for v in inputs]
        made = _made_elements(node.op_type, arrays)
        if made > MAX_CONSTANT_ELEMENTS:  # checked before NumPy allocates it
            raise SpecError(f"node {node.name or node.output[0]!r} ({node.op_type}) would make a constant of "
                            f"{made:,} elements, over the limit of {MAX_CONSTANT_ELEMENTS:,}",
                            hint="check the input shape (--input)", field="file")
        try:
            results = _FOLD[node.op_type](arrays, attrs)
        except KeyError:
            raise SpecError(f"node {node.name or node.output[0]!r}: {node.op_type} on constants is not something "
                            "convcalc evaluates", hint="simplify the model's constant parts (onnxsim)",
                            field="file") from None
        except (ValueError, IndexError, TypeError) as err:
            raise SpecError(f"node {node.name or node.output[0]!r} ({node.op_type}) cannot be evaluated: {err}",
                            hint="check the file", field="file") from None
        if not isinstance(results, tuple):
            results = (results,)
        source = inputs[0].initializer if node.op_type in ALIASES and inputs and inputs[0] is not None else None
        for output, result in zip(node.output, results):
            self.values[output] = Const(np.asarray(result), source)


def _made_elements(op: str, arrays) -> int:
    """How many elements an operator that builds a tensor from numbers would make."""
    try:
        if op in ("ConstantOfShape", "Expand") and arrays[-1] is not None:
            return volume(max(int(n), 1) for n in np.asarray(arrays[-1]).reshape(-1))
        if op == "Range":
            start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays[:3])
            return int(abs((limit - start) / delta)) + 1 if delta else 0
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0
    return 0


def _constant(attrs):
    for key in ("value", "value_float", "value_int", "value_floats", "value_ints"):
        if key in attrs:
            return attrs[key]
    raise SpecError("a Constant node without a value", hint="check the file", field="file")


def _gather(node, inputs, attrs):
    index = inputs[1]
    if isinstance(index, Act) or index.array.ndim != 0:
        raise Unsupported("Gather with computed or several indices")
    return L.Select(int(attrs.get("axis", 0)), int(index.array))


def _slice(arrays, attrs):
    data, starts, ends = arrays[0], arrays[1], arrays[2]
    axes = arrays[3] if len(arrays) > 3 and arrays[3] is not None else range(len(starts))
    steps = arrays[4] if len(arrays) > 4 and arrays[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, t in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(t))
    return data[tuple(index)]


def _axes_of(arrays, attrs):
    axes = attrs.get("axes")
    if axes is None and len(arrays) > 1 and arrays[1] is not None:
        axes = arrays[1]
    return None if axes is None else tuple(int(a) for a in axes)


def _unsqueeze(arrays, attrs):
    out = arrays[0]
    axes = _axes_of(arrays, attrs)
    for a in sorted(a % (out.ndim + len(axes)) for a in axes):
        out = np.expand_dims(out, a)
    return out


def _reshape(arrays, attrs):
    data, shape = arrays
    shape = [data.shape[i] if n == 0 and not attrs.get("allowzero", 0) else int(n) for i, n in enumerate(shape)]
    return data.reshape(shape)


# NumPy evaluation of the operators exporters use on constants (shape plumbing).
_FOLD = {
    "Identity": lambda a, t: a[0], "Cast": lambda a, t: a[0], "CastLike": lambda a, t: a[0].astype(a[1].dtype),
    "Gather": lambda a, t: np.take(a[0], a[1], axis=int(t.get("axis", 0))),
    "Unsqueeze": _unsqueeze, "Squeeze": lambda a, t: np.squeeze(a[0], _axes_of(a, t)),
    "Concat": lambda a, t: np.concatenate([np.atleast_1d(x) for x in a], axis=int(t["axis"])),
    "Reshape": _reshape, "Slice": _slice, "Transpose": lambda a, t: np.transpose(a[0], t.get("perm")),
    "Add": lambda a, t: a[0] + a[1], "Sub": lambda a, t: a[0] - a[1], "Mul": lambda a, t: a[0] * a[1],
    "Div": lambda a, t: a[0] // a[1] if a[0].dtype.kind in "iu" and a[1].dtype.kind in "iu" else a[0] / a[1],
    "Floor": lambda a, t: np.floor(a[0]), "Ceil": lambda a, t: np.ceil(a[0]), "Sqrt": lambda a, t: np.sqrt(a[0]),
    "Neg": lambda a, t: -a[0], "Abs": lambda a, t: np.abs(a[0]), "Min": lambda a, t: np.minimum.reduce(a),
    "Max": lambda a, t: np.maximum.reduce(a), "Equal": lambda a, t: a[0] == a[1], "Less": lambda a, t: a[0] < a[1],
    "Greater": lambda a, t: a[0] > a[1], "Not": lambda a, t: ~a[0], "Where": lambda a, t: np.where(a[0], a[1], a[2]),
    "Mod": lambda a, t: np.mod(a[0], a[1]), "Range": lambda a, t: np.arange(a[0], a[1], a[2]),
    "ConstantOfShape": lambda a, t: np.full(tuple(int(n) for n in a[0]),
                                            np.asarray(t.get("value", np.zeros(1, np.float32))).reshape(-1)[0]),
    "Expand": lambda a, t: a[0] * np.ones(tuple(int(n) for n in a[1]), dtype=a[0].dtype),
    "Shape": lambda a, t: np.array(a[0].shape, dtype=np.int64)[t.get("start", 0):t.get("end", None)],
    "ReduceProd": lambda a, t: np.prod(a[0], keepdims=bool(t.get("keepdims", 1))),
    "Size": lambda a, t: np.array(a[0].size, dtype=np.int64),
}
