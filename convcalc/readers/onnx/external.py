"""External data of an ONNX model, read as untrusted input.

An ONNX tensor may keep its bytes in another file, named by its ``location``.
onnx's own loader resolves that name against whatever directory it is given
(the working directory when a model is parsed from bytes) and follows symlinks,
so a downloaded model could make convcalc read, and print, files beside it.
Here the rule is the one a model file can be trusted with: external data is
read only from regular files inside the model's own directory, resolved against
that directory; absolute paths, ``..``, symlinks that leave the directory and
device files are refused, and a model with no directory (bytes, stdin) may not
use external data at all. Every external tensor is inlined before anything else
reads the model, so no other code path can reach a file.
"""

from __future__ import annotations

import os
import stat

from ...engine.errors import SpecError
from ...engine.limits import max_external_bytes

# The most elements a tensor may declare, whatever the budget: beyond any file a machine holds
MAX_ELEMENTS = 2**34

_HINT = "keep external data files next to the model, named by a relative path inside its directory"


def inline_external_data(onnx, model, base_dir: str | None) -> None:
    """Replace every external tensor of ``model`` (initializers, attributes, subgraphs) by its bytes, read safely.

    ``base_dir`` is the model file's directory, or None when the model has none.
    """
    budget = [max_external_bytes()]
    for tensor, owner in _tensors(onnx, model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            _inline(onnx, tensor, owner, base_dir, budget)


def _tensors(onnx, graph):
    """Every TensorProto a graph holds, with a name for messages, subgraphs included."""
    for tensor in graph.initializer:
        yield tensor, f"initializer {tensor.name!r}"
    for sparse in graph.sparse_initializer:
        for tensor in (sparse.values, sparse.indices):
            yield tensor, f"sparse initializer {sparse.values.name!r}"
    kinds = onnx.AttributeProto
    for node in graph.node:
        where = f"node {node.name or node.op_type!r}"
        for attribute in node.attribute:
            owner = f"{where}, attribute {attribute.name!r}"
            if attribute.type == kinds.TENSOR:
                yield attribute.t, owner
            elif attribute.type == kinds.TENSORS:
                for tensor in attribute.tensors:
                    yield tensor, owner
            elif attribute.type == kinds.SPARSE_TENSOR:
                yield attribute.sparse_tensor.values, owner
                yield attribute.sparse_tensor.indices, owner
            elif attribute.type == kinds.GRAPH:
                yield from _tensors(onnx, attribute.g)
            elif attribute.type == kinds.GRAPHS:
                for sub in attribute.graphs:
                    yield from _tensors(onnx, sub)


def _inline(onnx, tensor, owner: str, base_dir: str | None, budget: list[int]) -> None:
    entries = {entry.key: entry.value for entry in tensor.external_data}
    location = entries.get("location", "")
    shown = repr(location[:200])
    if base_dir is None:
        raise SpecError(f"{owner} keeps its data in the external file {shown}, and a model read from bytes or stdin "
                        "has no directory to read it from", hint="give the model's path instead, with its data "
                        "files beside it", field="file")
    if not location or "\0" in location:
        raise SpecError(f"{owner} keeps its data externally but names no file", hint=_HINT, field="file")
    parts = location.replace("\\", "/").split("/")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        raise SpecError(f"{owner}: the external data location {shown} leaves the model's directory",
                        hint=_HINT, field="file")
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, path]) != root:
        raise SpecError(f"{owner}: the external data location {shown} leads out of the model's directory "
                        "(through a symbolic link)", hint=_HINT, field="file")
    offset = _entry_int(entries, "offset", owner)
    expected = _stored_bytes(onnx, tensor, owner)
    length = _entry_int(entries, "length", owner) if "length" in entries else None
    if length is not None and length != expected:
        raise SpecError(f"{owner}: the external data length {length:,} disagrees with the tensor's "
                        f"{expected:,} bytes", hint="re-export the model", field="file")
    if expected > budget[0]:
        raise SpecError(f"{owner}: the external data adds up to more than {max_external_bytes():,} bytes",
                        hint="raise CONVCALC_MAX_EXTERNAL_BYTES (the files are read into memory)", field="file")
    budget[0] -= expected
    tensor.raw_data = _read_regular(path, offset, expected, owner, shown)
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]


def _entry_int(entries: dict, key: str, owner: str) -> int:
    text = entries.get(key, "0")
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise SpecError(f"{owner}: the external data {key} {text[:40]!r} is not a byte count",
                        hint="re-export the model", field="file")
    return int(text)


def _stored_bytes(onnx, tensor, owner: str) -> int:
    """The bytes the tensor's dims and element type take in raw storage."""
    kinds = onnx.TensorProto
    count = 1
    for dim in tensor.dims:
        if dim < 0:
            raise SpecError(f"{owner} has a negative size {dim}", hint="re-export the model", field="file")
        count *= dim
        if count > MAX_ELEMENTS:
            raise SpecError(f"{owner} has more elements than convcalc reads", hint="re-export the model",
                            field="file")
    if tensor.data_type == kinds.STRING:
        raise SpecError(f"{owner} is a string tensor kept in an external file, which ONNX does not allow",
                        hint="re-export the model", field="file")
    packed = {getattr(kinds, name) for name in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2") if hasattr(kinds, name)}
    if tensor.data_type in packed:
        bits = 2 if kinds.DataType.Name(tensor.data_type).endswith("INT2") else 4
        return (count * bits + 7) // 8
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, ValueError, TypeError):
        raise SpecError(f"{owner} has the unknown element type {tensor.data_type}", hint="re-export the model",
                        field="file") from None
    return count * itemsize


def _read_regular(path: str, offset: int, size: int, owner: str, shown: str) -> bytes:
    """``size`` bytes at ``offset`` of a regular file; never blocks on a pipe or reads a device."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise SpecError(f"{owner}: cannot read the external data file {shown}: {err.strerror}",
                        hint=_HINT, field="file") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(f"{owner}: the external data location {shown} is not a regular file",
                            hint=_HINT, field="file")
        if offset + size > info.st_size:
            raise SpecError(f"{owner}: the external data file {shown} has {info.st_size:,} bytes, fewer than the "
                            f"{offset + size:,} the tensor needs", hint="re-export the model", field="file")
        data = os.pread(fd, size, offset) if size else b""
    finally:
        os.close(fd)
    if len(data) != size:
        raise SpecError(f"{owner}: the external data file {shown} ended early", hint="re-export the model",
                        field="file")
    return data
