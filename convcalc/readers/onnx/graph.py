"""Reading an ONNX file as a ``Network``, with the ``onnx`` package and no framework.

Nodes are read in the file's (topological) order (``reader``). Computations on
the graph input become layers (``ops``); everything else (initializers, Constant
nodes and the integer shape plumbing exporters emit: Shape, Gather, Unsqueeze,
Concat, Reshape, Cast, Slice, arithmetic) is evaluated with NumPy to constants
(``fold``), so no layer comes from it and no reliance on ONNX's own shape
inference is needed. Layer names are the node names (or, for torch.export's
files, the module scope in their metadata and the node's name: ``scope``);
``/``-separated scopes become each layer's path. Where an exporter moves the
batch (attention's sequence-first tensors, heads merged with the batch), each
tensor is read by its per-sample form (``batch``). A fixed batch in the file
refuses any other ``batch``, as onnxruntime would.

The file is untrusted: every stored tensor is decoded by ``tensors.decode``, the
graph input must be one float tensor of sizes PyTorch could hold, and anything
that fails outside the checks becomes one error line, never a traceback.
"""

from __future__ import annotations

import os

from ...engine.errors import ConvcalcError, SpecError
from ...engine.graph import reaching
from ...engine.layers.rules import clip
from ...engine.limits import MAX_INTEGER, max_document_bytes
from ...engine.network import Network
from ..pytorch.values import Act
from . import tensors
from .external import inline_external_data
from .ops import MAX_RANK
from .reader import Const, Reader

_HINT = "the file is damaged or was not written by an ONNX exporter; re-export the model"
# The element types convcalc analyses a graph input as (the dtype comes from --dtype).
_FLOAT_INPUTS = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}
_DISTINCT_BATCH = 1009  # a prime: the batch traced where the file's sizes leave its axis unclear
_CHECK_BATCH = (3, 5)  # a second batch for a file that joins batches (small: its fixed copies are made whole)


def import_onnx():
    try:
        import onnx
    except ImportError:
        raise SpecError("reading ONNX files needs the onnx package, which is not installed",
                        hint='install it: pip install "convcalc[onnx]"', field="file") from None
    return onnx


# The tags of the fields a ModelProto may have after its ir_version (producer_name ... graph, opset_import,
# metadata_props, and the first byte of training_info, functions and configuration).
_MODEL_TAGS = {0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2, 0xca, 0xd2}


def looks_like_onnx(data: bytes) -> bool:
    """Whether ``data`` starts as an ONNX model does: field 1 (ir_version) as a small varint, then another
    field of a model.

    >>> looks_like_onnx(b"\x08\x08\x3a" + bytes(8)), looks_like_onnx(b"layers: [conv]")
    (True, False)
    """
    return len(data) > 8 and data[0] == 0x08 and data[1] < 0x80 and data[2] in _MODEL_TAGS


def from_onnx(source, *, batch: int | None = None, input_shape=None, dtype: str = "float32",
              directory: str | None = None) -> Network:
    """An ONNX model (a path or the file's bytes) as a ``Network``.

    The input shape comes from the graph's input; a symbolic batch takes ``batch``
    (default 1) and other symbolic sizes need ``input_shape`` (per sample).
    External data is read only from files inside the model's ``directory``
    (a path's own directory; bytes have none unless it is given). Whatever the
    file holds, the result is a network or a ``ConvcalcError``.
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
    try:
        inline_external_data(onnx, model, directory)
        return _network(onnx, model, batch, input_shape, dtype)
    except ConvcalcError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever a damaged file causes is one error line, not a traceback
        raise SpecError(f"the model cannot be read ({type(err).__name__})", hint=_HINT, field="file") from None


def _network(onnx, model, batch, input_shape, dtype) -> Network:
    graph = model.graph
    values: dict = {}
    for tensor in graph.initializer:
        owner = f"initializer {clip(tensor.name, 60)!r}"
        if tensor.name in values:
            raise SpecError(f"{owner} is defined twice", hint=_HINT, field="file")
        values[tensor.name] = Const(tensors.decode(onnx, tensor, owner), tensor.name)
    inputs = [i for i in graph.input if i.name not in values]
    if len(inputs) != 1:
        names = ", ".join(repr(clip(i.name, 40)) for i in inputs[:4])
        raise SpecError(f"the graph has {len(inputs)} inputs{' (' + names + ')' if names else ''}; convcalc reads "
                        "models with one", hint="export the model with a single input tensor (an input the graph "
                        "declares must be fed, or be an initializer)", field="file")
    file_batch, shape = _input_shape(inputs[0], input_shape)
    if file_batch and batch and batch != file_batch:
        raise SpecError(f"the graph input {clip(inputs[0].name, 60)!r} has a fixed batch of {file_batch}, so "
                        f"onnxruntime would refuse a batch of {batch} too",
                        hint='export it with a dynamic batch: dynamic_axes={"x": {0: "batch"}} for '
                             'torch.onnx.export(..., dynamo=False), dynamic_shapes=({0: torch.export.Dim("batch")},) '
                             "for dynamo=True", field="batch")
    trace_batch = file_batch or batch or 1
    values[inputs[0].name] = Act("input", shape)
    values_before = dict(values)
    reader = Reader(onnx, model, dict(values), trace_batch)
    try:
        layers, failed = reader.read(), None
    except ConvcalcError as err:
        if not reader.ambiguous or file_batch:
            raise
        layers, failed = None, err
    values = reader.values
    if reader.ambiguous and not file_batch and trace_batch != _DISTINCT_BATCH:
        # a reshape could put the batch in more than one axis (a batch of 1 fits anywhere): read again with
        # a batch no size of the model is likely to share, which leaves one axis able to hold it
        retry = Reader(onnx, model, dict(values_before), _DISTINCT_BATCH)
        try:
            layers, values = retry.read(), retry.values
        except ConvcalcError:
            if failed is not None:
                raise failed from None
    if reader.joined and not file_batch:
        # whole batches joined along the batch's axis: the file's fixed sizes after the join can fit one batch
        # and mix samples at another (a batch equal to the parts joined), so every reading must hold at a
        # second batch too, or the file is refused there
        Reader(onnx, model, dict(values_before), _CHECK_BATCH[trace_batch == _CHECK_BATCH[0]]).read()
    outputs = [values.get(o.name) for o in graph.output]
    refs = list(dict.fromkeys(v.ref for v in outputs if isinstance(v, Act) and v.ref != "input"))
    if not refs:
        raise SpecError("the model's output does not depend on its input", hint="check the model", field="file")
    ordered = refs[1:] + refs[:1]
    return Network(shape, tuple(reaching(layers, ordered)), batch or file_batch or 1, dtype, outputs=tuple(ordered[:-1]))


def _read(path) -> bytes:
    limit = max_document_bytes()
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise SpecError(f"cannot read {str(path)!r}: {err.strerror}", hint="check the path", field="file") from None
    if len(data) > limit:
        raise SpecError(f"{str(path)!r} has more than {limit:,} bytes", hint="raise the limit with "
                        "CONVCALC_MAX_DOCUMENT_BYTES", field="file")
    return data


def _input_shape(value_info, given):
    name = clip(value_info.name, 60)
    if value_info.type.WhichOneof("value") != "tensor_type":
        raise SpecError(f"the graph input {name!r} is not a tensor", hint="convcalc reads models whose input is "
                        "one tensor", field="file")
    element = value_info.type.tensor_type.elem_type
    if element not in _FLOAT_INPUTS:
        from onnx import TensorProto

        kind = TensorProto.DataType.Name(element) if element in TensorProto.DataType.values() else str(element)
        raise SpecError(f"the graph input {name!r} holds {kind} elements; convcalc analyses models whose input is "
                        "floating point", hint="export the model with a float input (token ids: start the "
                        "network after the embedding)", field="file")
    dims = value_info.type.tensor_type.shape.dim
    if not dims:
        raise SpecError(f"the graph input {name!r} has no shape", hint="give --input", field="input")
    if len(dims) > MAX_RANK:
        raise SpecError(f"the graph input {name!r} has {len(dims):,} axes, more than {MAX_RANK}", hint=_HINT,
                        field="file")
    for i, dim in enumerate(dims):
        if dim.HasField("dim_value") and not (0 if i == 0 else 1) <= dim.dim_value <= MAX_INTEGER:
            raise SpecError(f"the graph input {name!r} has the size {dim.dim_value} on axis {i}, which is not a "
                            "positive size below 2^62", hint=_HINT, field="file")
    batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
    rest = []
    for i, dim in enumerate(dims[1:], start=1):
        if dim.HasField("dim_value"):
            rest.append(int(dim.dim_value))
        elif given is None:
            raise SpecError(f"the graph input's axis {i} is symbolic ({clip(dim.dim_param, 40) or '?'})",
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
