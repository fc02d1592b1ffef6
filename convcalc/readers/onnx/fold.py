"""The constant parts of an ONNX graph (shape plumbing: Shape, Gather, Concat, Reshape, Cast, arithmetic),
evaluated with NumPy.

Every result's element count is worked out from its operands' shapes before
NumPy allocates it (broadcasting included), and refused past
``MAX_CONSTANT_ELEMENTS``; only numbers are evaluated (strings are refused), so
the work stays bounded by the file, whatever sizes it writes.
"""

from __future__ import annotations

import numpy as np

from ...engine.errors import SpecError
from ...engine.limits import MAX_CONSTANT_ELEMENTS
from ...engine.sizes import volume
from .attributes import Attributes
from .ops import MAX_RANK

_BROADCASTING = {"Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater", "Where", "Mod", "Min", "Max", "Pow"}


def evaluate(op: str, arrays: list, attrs: Attributes, lazy: bool = False) -> tuple:
    """The outputs of node ``op`` on constant ``arrays`` (None for an absent input). ``lazy``, where the
    reader knows what reads the result: arithmetic read only for its shape gives an array of that shape
    and no values, and an Expand or Unsqueeze a read-only view, neither allocating (the TorchScript
    exporter's index grids for a slice assignment span every position written: billions at a large
    batch)."""
    if op not in _FOLD:
        raise attrs.error(f"{op} on constants is not something convcalc evaluates",
                          hint="simplify the model's constant parts (onnxsim)")
    for i, array in enumerate(arrays):
        if array is not None and array.dtype.kind not in "biuf":
            raise attrs.error(f"input {i} holds {array.dtype.name} values; convcalc evaluates only numbers on "
                              "constants", hint="simplify the model's constant parts (onnxsim)")
    if lazy and op in _LAZY:
        try:
            return (_LAZY[op](arrays, attrs),)
        except (ValueError, IndexError, TypeError) as err:
            raise attrs.error(f"cannot be evaluated: {str(err)[:200]}", hint="check the file") from None
    made = _made_elements(op, arrays, attrs)
    if made > MAX_CONSTANT_ELEMENTS:  # checked before NumPy allocates it
        raise attrs.error(f"would make a constant of {made:,} elements, over the limit of "
                          f"{MAX_CONSTANT_ELEMENTS:,}", hint="check the input shape (--input)")
    try:
        with np.errstate(all="ignore"):
            results = _FOLD[op](arrays, attrs)
    except SpecError:
        raise
    except (ValueError, IndexError, TypeError, ArithmeticError, AttributeError) as err:
        raise attrs.error(f"cannot be evaluated: {str(err)[:200]}", hint="check the file") from None
    return results if isinstance(results, tuple) else (results,)


def _shape_of(values) -> tuple[int, ...]:
    sizes = tuple(int(n) for n in np.asarray(values).reshape(-1).tolist())
    if len(sizes) > MAX_RANK or any(n < 0 for n in sizes):
        raise ValueError(f"{list(sizes[:8])} is not a shape")
    return sizes


def _made_elements(op: str, arrays, attrs: Attributes) -> int:
    """How many elements the operator's result has, from its operands' shapes alone."""
    present = [a for a in arrays if a is not None]
    try:
        if op in _BROADCASTING:
            return volume(np.broadcast_shapes(*(a.shape for a in present)))
        if op == "Expand":
            return volume(np.broadcast_shapes(arrays[0].shape, _shape_of(arrays[1])))
        if op in ("Shape", "Size"):  # of an array read only for its shape, which holds no values
            return max(arrays[0].ndim, 1)
        if op == "Tile":
            repeats = _shape_of(arrays[1])
            return arrays[0].size * volume(repeats)
        if op == "ConstantOfShape":
            return volume(_shape_of(arrays[0]))
        if op == "Concat":
            return sum(max(a.size, 1) for a in present)
        if op == "Gather":
            data, axis = arrays[0], attrs.int("axis", 0)
            if not -data.ndim <= axis < data.ndim:
                raise ValueError(f"axis {axis} is outside the data's {data.ndim} axes")
            return arrays[1].size * (data.size // data.shape[axis] if data.shape[axis] else 0)
        if op == "GatherND":
            data, index = arrays[0], arrays[1]
            depth = index.shape[-1] if index.ndim else 0
            if attrs.int("batch_dims", 0) or not 1 <= depth <= data.ndim:
                raise ValueError(f"indices of depth {depth} (batch_dims {attrs.int('batch_dims', 0)}) for data of "
                                 f"{data.ndim} axes")
            return volume(index.shape[:-1]) * volume(data.shape[depth:])
        if op == "Range":
            start, limit, delta = (float(np.asarray(a).reshape(-1)[0]) for a in arrays[:3])
            span = (limit - start) / delta if delta else 0.0
            if not np.isfinite(span):
                raise ValueError("a Range without an end")
            return max(int(span), 0) + 1
    except (TypeError, ValueError, IndexError, AttributeError) as err:
        raise attrs.error(f"cannot be evaluated: {str(err)[:200]}", hint="check the file") from None
    return max((a.size for a in present), default=1)  # the others make at most as much as they read


def constant(attrs: Attributes):
    """The value a Constant node holds, decoded and checked."""
    for key, read in (("value", attrs.tensor), ("value_float", attrs.float), ("value_int", attrs.int),
                      ("value_floats", attrs.floats), ("value_ints", attrs.ints)):
        if key in attrs:
            value = read(key)
            return np.asarray(value, dtype=np.float32 if key in ("value_float", "value_floats") else None)
    raise attrs.error("is a Constant without a numeric value")


def _slice(arrays, attrs):
    data, starts, ends = arrays[0], arrays[1], arrays[2]
    axes = arrays[3] if len(arrays) > 3 and arrays[3] is not None else range(len(starts))
    steps = arrays[4] if len(arrays) > 4 and arrays[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, t in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(t))
    return data[tuple(index)]


def _axes_of(arrays, attrs):
    axes = attrs.ints("axes")
    if axes is None and len(arrays) > 1 and arrays[1] is not None:
        axes = arrays[1].reshape(-1).tolist()
    return None if axes is None else tuple(int(a) for a in axes)


def _unsqueeze(arrays, attrs):
    out = arrays[0]
    axes = _axes_of(arrays, attrs) or ()
    ndim = out.ndim + len(axes)
    if ndim > MAX_RANK:
        raise ValueError(f"{ndim} axes, more than {MAX_RANK}")
    for a in sorted(a % ndim for a in axes):
        out = np.expand_dims(out, a)
    return out


def _reshape(arrays, attrs):
    data, shape = arrays
    allowzero = attrs.int("allowzero", 0)
    shape = [data.shape[i] if n == 0 and not allowzero and i < data.ndim else int(n)
             for i, n in enumerate(shape.reshape(-1).tolist())]
    return data.reshape(shape)


def _cast(arrays, attrs):
    import onnx

    to = attrs.int("to", required=True)
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))
    except (KeyError, TypeError, ValueError):
        raise attrs.error(f"casts to the unknown element type {to}") from None
    if dtype.kind not in "biuf":
        raise attrs.error(f"casts to {dtype.name}; convcalc evaluates only numbers on constants")
    data = arrays[0]
    if dtype.kind in "biu" and data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise attrs.error("casts a non-finite number to an integer")
    return data.astype(dtype)


def _constant_of_shape(arrays, attrs):
    value = attrs.tensor("value", np.zeros(1, np.float32)).reshape(-1)
    if value.size != 1 or value.dtype.kind not in "biuf":
        raise attrs.error("attribute 'value' is not one number")
    return np.full(_shape_of(arrays[0]), value[0])


def _expand(arrays, attrs):
    shape = np.broadcast_shapes(arrays[0].shape, _shape_of(arrays[1]))
    return np.broadcast_to(arrays[0], shape).copy()


def _clip(arrays, attrs):
    """Clip's bounds from its inputs 1 and 2 (opset 11 on) or its attributes, each optional."""
    low = arrays[1] if len(arrays) > 1 and arrays[1] is not None else attrs.float("min")
    high = arrays[2] if len(arrays) > 2 and arrays[2] is not None else attrs.float("max")
    return np.clip(arrays[0], low, high)


def _gather_nd(arrays, attrs):
    """ONNX's GatherND (batch_dims 0, checked with the size): the slices of ``data`` the last axis of
    ``indices`` names (torch.export's ``table[index]``)."""
    data, index = arrays[0], arrays[1].astype(np.int64)
    return data[tuple(np.moveaxis(index, -1, 0))]


def _reduce_prod(arrays, attrs):
    axes = _axes_of(arrays, attrs)
    return np.prod(arrays[0], axis=axes or None, keepdims=bool(attrs.int("keepdims", 1)))


def _scatter_nd(arrays, attrs):
    """ONNX's ScatterND: ``updates`` written (or added, multiplied) into a copy of ``data`` at ``indices``."""
    data, indices, updates = arrays[0].copy(), arrays[1].astype(np.int64), arrays[2]
    reduction = attrs.string("reduction", "none", choices=("none", "add", "mul", "max", "min"))
    depth = indices.shape[-1] if indices.ndim else 0
    if not 1 <= depth <= data.ndim:
        raise ValueError(f"indices of depth {depth} for data of {data.ndim} axes")
    rows = indices.reshape(-1, depth)
    pieces = updates.reshape(rows.shape[0], *data.shape[depth:])
    where = tuple(rows.T)
    if reduction == "none":
        data[where] = pieces
    else:
        {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[reduction].at(data, where, pieces)
    return data


def _split(arrays, attrs):
    """ONNX's Split: the pieces its sizes (input 1 or the attribute) or 'num_outputs' equal pieces (the
    last smaller) cut along 'axis'."""
    data, axis = arrays[0], attrs.int("axis", 0)
    if not -data.ndim <= axis < data.ndim:
        raise ValueError(f"axis {axis} is outside the data's {data.ndim} axes")
    n = data.shape[axis]
    sizes = arrays[1].reshape(-1).tolist() if len(arrays) > 1 and arrays[1] is not None else attrs.ints("split")
    if sizes is None:
        count = attrs.int("num_outputs", minimum=1)
        if count is None:
            raise attrs.error("is a Split of constants without its sizes or 'num_outputs'",
                              hint="simplify the model's constant parts (onnxsim)")
        size = -(-n // count)
        sizes = [max(0, min(size, n - k * size)) for k in range(count)]
    if sum(int(k) for k in sizes) != n or min(sizes, default=0) < 0:
        raise ValueError(f"sizes {list(sizes)[:8]} do not cut an axis of {n}")
    edges = np.cumsum([int(k) for k in sizes])[:-1]
    return tuple(np.split(data, edges, axis=axis))


def _tile(arrays, attrs):
    repeats = _shape_of(arrays[1])
    if len(repeats) != arrays[0].ndim:
        raise ValueError(f"{len(repeats)} repeats for data of {arrays[0].ndim} axes")
    return np.tile(arrays[0], repeats)


def _flatten(arrays, attrs):
    data = arrays[0]
    axis = attrs.int("axis", 1)
    if not -data.ndim <= axis <= data.ndim:
        raise ValueError(f"axis {axis} is outside the data's {data.ndim} axes")
    axis += data.ndim if axis < 0 else 0
    return data.reshape(volume(data.shape[:axis]), volume(data.shape[axis:]))


def _shape_only(arrays, attrs):
    shape = np.broadcast_shapes(*(a.shape for a in arrays[:2]))
    return np.broadcast_to(np.zeros((), np.result_type(arrays[0], arrays[1])), shape)


def _view(arrays, attrs):
    return np.broadcast_to(arrays[0], np.broadcast_shapes(arrays[0].shape, _shape_of(arrays[1])))


# What the reader may evaluate lazily (``evaluate``'s ``lazy``)
_LAZY = {"Add": _shape_only, "Sub": _shape_only, "Mul": _shape_only, "Div": _shape_only,
         "Expand": _view, "Unsqueeze": _unsqueeze}


# NumPy evaluation of the operators exporters use on constants (shape plumbing).
_FOLD = {
    "Identity": lambda a, t: a[0], "Cast": _cast, "CastLike": lambda a, t: a[0].astype(a[1].dtype),
    "Gather": lambda a, t: np.take(a[0], a[1], axis=t.int("axis", 0)),
    "Unsqueeze": _unsqueeze, "Squeeze": lambda a, t: np.squeeze(a[0], _axes_of(a, t)),
    "Concat": lambda a, t: np.concatenate([np.atleast_1d(x) for x in a], axis=t.int("axis", required=True)),
    "Reshape": _reshape, "Slice": _slice, "Transpose": lambda a, t: np.transpose(a[0], t.ints("perm")),
    "Add": lambda a, t: a[0] + a[1], "Sub": lambda a, t: a[0] - a[1], "Mul": lambda a, t: a[0] * a[1],
    "Div": lambda a, t: a[0] // a[1] if a[0].dtype.kind in "iu" and a[1].dtype.kind in "iu" else a[0] / a[1],
    "Floor": lambda a, t: np.floor(a[0]), "Ceil": lambda a, t: np.ceil(a[0]), "Sqrt": lambda a, t: np.sqrt(a[0]),
    "Neg": lambda a, t: -a[0], "Abs": lambda a, t: np.abs(a[0]), "Min": lambda a, t: np.minimum.reduce(a),
    "Max": lambda a, t: np.maximum.reduce(a), "Equal": lambda a, t: a[0] == a[1], "Less": lambda a, t: a[0] < a[1],
    "Greater": lambda a, t: a[0] > a[1], "Not": lambda a, t: ~a[0], "Where": lambda a, t: np.where(a[0], a[1], a[2]),
    "Mod": lambda a, t: np.mod(a[0], a[1]), "Range": lambda a, t: np.arange(a[0], a[1], a[2]),
    "ConstantOfShape": _constant_of_shape, "Expand": _expand,
    "Shape": lambda a, t: np.array(a[0].shape, dtype=np.int64)[t.int("start", 0):t.int("end", None)],
    "Clip": _clip, "Exp": lambda a, t: np.exp(a[0]), "GatherND": _gather_nd,
    "ReduceProd": _reduce_prod, "ScatterND": _scatter_nd, "Pow": lambda a, t: np.power(a[0], a[1]), "Size": lambda a, t: np.array(a[0].size, dtype=np.int64),
    "Tile": _tile, "Flatten": _flatten, "Split": _split,
}
FOLDED = frozenset(_FOLD)  # the operators convcalc evaluates on constants
