"""Tensors stored in an ONNX file (initializers, Constant values, tensor attributes), decoded as untrusted data.

Every stored tensor reaches the reader through ``decode``: its element type must
be one ONNX defines, its sizes non-negative, and the values it stores exactly as
many as its sizes say (raw bytes: their product times the element's size), so
no array is ever larger than the bytes the file holds. The numbers a node reads
from a constant input (shapes, axes, pads, scales, bounds) are taken with
``integers`` and ``floats``, which refuse strings, non-finite and fractional values.
"""

from __future__ import annotations

import math

import numpy as np

from ...engine.errors import SpecError

_HINT = "the file is damaged or was not written by an ONNX exporter; re-export the model"
# Elements packed below a byte in raw storage (bits per element), by the name onnx gives their type.
_PACKED_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2, "FLOAT6E2M3": 6, "FLOAT6E3M2": 6}
_TWO_VALUES = {"COMPLEX64", "COMPLEX128"}  # stored as two numbers an element in the typed fields


def decode(onnx, tensor, owner: str) -> np.ndarray:
    """The array a TensorProto holds, checked against what it declares; ``owner`` names it in errors
    (``initializer 'w'``, ``node 'conv', attribute 'value'``)."""
    from onnx import numpy_helper

    kinds = onnx.TensorProto
    type_name = kinds.DataType.Name(tensor.data_type) if tensor.data_type in kinds.DataType.values() else None
    if type_name is None or tensor.data_type == kinds.UNDEFINED:
        raise SpecError(f"{owner} has the unknown element type {tensor.data_type}", hint=_HINT, field="file")
    count = 1
    for dim in tensor.dims:
        if dim < 0:
            raise SpecError(f"{owner} has the negative size {dim}", hint=_HINT, field="file")
        count *= dim
    if tensor.data_location == kinds.EXTERNAL or len(tensor.external_data):
        raise SpecError(f"{owner} keeps its data externally", hint=_HINT, field="file")  # inlined before, or refused
    stored, expected = _stored(onnx, tensor, type_name, count)
    if stored not in expected:
        shape = "x".join(str(d) for d in tensor.dims) or "a scalar"
        unit = "bytes" if tensor.raw_data else "values"
        raise SpecError(f"{owner} stores {stored:,} {unit} for its sizes ({shape}), which need {expected[0]:,}",
                        hint=_HINT, field="file")
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as err:  # noqa: BLE001 - onnx's decoding raises what NumPy raises
        raise SpecError(f"{owner} cannot be decoded ({type(err).__name__})", hint=_HINT, field="file") from None
    if array.size != count:
        raise SpecError(f"{owner} decodes to {array.size:,} values, not {count:,}", hint=_HINT, field="file")
    return array


def _stored(onnx, tensor, type_name: str, count: int) -> tuple[int, tuple[int, ...]]:
    """How much the tensor stores, and the amounts that would be right for ``count`` elements."""
    bits = _PACKED_BITS.get(type_name)
    if tensor.raw_data:
        if type_name == "STRING":
            return len(tensor.raw_data), (0,)  # ONNX keeps strings in string_data only
        if bits is None:
            bits = 8 * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        return len(tensor.raw_data), ((count * bits + 7) // 8,)
    field = onnx.helper.tensor_dtype_to_field(tensor.data_type)
    stored = len(getattr(tensor, field))
    if type_name in _TWO_VALUES:
        return stored, (2 * count,)
    if bits is not None:
        return stored, ((count * bits + 7) // 8, count)
    return stored, (count,)


def _numeric(array, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise SpecError(f"{what} holds {array.dtype.name} values, not numbers", hint=_HINT, field="file")
    return array


def integers(array, what: str) -> tuple[int, ...]:
    """The values of an integer constant (a shape, axes, pads) as Python ints; floats only when whole.

    >>> integers(np.array([1, 2], np.int64), "shape")
    (1, 2)
    >>> integers(np.array([np.inf]), "input 1 (shape)")
    Traceback (most recent call last):
    ...
    convcalc.engine.errors.SpecError: input 1 (shape) holds [inf], which are not whole numbers
    """
    array = _numeric(array, what).reshape(-1)
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.floor(array)) if array.size else array
        if not np.all(whole):
            shown = np.array2string(array[:4], threshold=4)
            raise SpecError(f"{what} holds {shown}, which are not whole numbers", hint=_HINT, field="file")
    return tuple(int(v) for v in array.tolist())


def floats(array, what: str) -> tuple[float, ...]:
    """The values of a numeric constant (scales, bounds) as finite Python floats."""
    values = tuple(float(v) for v in _numeric(array, what).reshape(-1).tolist())
    for value in values:
        if not math.isfinite(value):
            raise SpecError(f"{what} holds {value}, which is not a finite number", hint=_HINT, field="file")
    return values


def scalar(array, what: str) -> float:
    """The one finite number a constant holds (a clip bound, a pad value)."""
    values = floats(array, what)
    if len(values) != 1:
        raise SpecError(f"{what} holds {len(values):,} values, not one", hint=_HINT, field="file")
    return values[0]
