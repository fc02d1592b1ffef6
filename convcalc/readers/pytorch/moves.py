"""Captured operators that move, reshape, slice or join tensors, wherever the batch sits.

Transformers move the batch: ``nn.MultiheadAttention`` puts the sequence first, heads are
flattened into the batch as (B*heads, N, d), Swin partitions the image into windows as
(B*windows, 7, 7, C). convcalc's layers see one sample, batch first, so each traced tensor is
read as its per-sample shape (``Layout``): a permutation becomes the permutation of the
per-sample axes (nothing at all when it only moves the batch), a reshape the per-sample
reshape, and a dim is the per-sample axis it names. Where the traced tensors keep the batch
first, the layers are the ones PyTorch's call names (``Flatten``, ``Squeeze``, ...).
"""

from __future__ import annotations

from ...engine import layers as L
from ...engine.sizes import volume
from .values import Act, Call, Const, Param, Unsupported


def ints(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _permuted(call: Call, order) -> L.Layer | None:
    """The per-sample permutation a traced permutation ``order`` makes (None: the identity)."""
    x = call.reads[0]
    rank = x.layout.rank or len(x.shape) + 1
    order = [int(d) % rank for d in order]
    if call.leading:
        return L.Permute(tuple(order))
    kept = {axis: i for i, axis in enumerate(x.layout.per_sample_axes())}
    dims = (0, *(kept[d] + 1 for d in order if d in kept))
    return None if dims == tuple(range(len(dims))) else L.Permute(dims)


def permute(call: Call):
    call.act()
    if call.leading:
        return L.Permute(ints(call.args["dims"]))
    return _permuted(call, ints(call.args["dims"]))


def transpose(call: Call):
    """transpose, and swapaxes (its other name, with axis0 and axis1)."""
    x = call.act()
    first, second = (call.args["dim0"], call.args["dim1"]) if "dim0" in call.args else \
        (call.args["axis0"], call.args["axis1"])
    if call.leading:
        return L.Transpose(int(first), int(second))
    rank = x.layout.rank
    order = list(range(rank))
    a, b = int(first) % rank, int(second) % rank
    order[a], order[b] = order[b], order[a]
    return _permuted(call, order)


def reshaped(call: Call):
    """Any reshape where the batch is not first and alone: the per-sample reshape (None: no change)."""
    x = call.reads[0]
    return None if tuple(x.shape) == tuple(call.out) else L.Reshape(tuple(call.out))


def reshape(call: Call):
    """view / reshape: the per-sample shape the trace gives (its sizes name the batch, however written)."""
    call.act()
    if not call.leading:
        return reshaped(call)
    return L.Reshape(tuple(call.out))


def unflatten(call: Call):
    """unflatten(dim, sizes): a reshape of one axis, which must not be the batch's."""
    x = call.act()
    if not call.leading:
        return reshaped(call)
    dim, sizes = int(call.args["dim"]), ints(call.args["sizes"])
    rank = len(x.shape) + 1
    dim = dim % rank
    if dim == 0:
        raise Unsupported("an unflatten of the batch axis")
    shape = list(x.shape)
    known = volume([n for n in sizes if n != -1])
    sizes = [shape[dim - 1] // known if n == -1 else n for n in sizes]
    return L.Reshape(tuple(shape[: dim - 1] + sizes + shape[dim:]))


def flatten(call: Call):
    call.act()
    if not call.leading:
        return reshaped(call)
    return L.Flatten(int(call.args["start_dim"]), int(call.args["end_dim"]))


def squeeze(call: Call):
    call.act()
    if not call.leading:
        return reshaped(call)
    dim = call.args.get("dim")
    return L.Squeeze(None if dim is None else ints(dim) if isinstance(dim, (list, tuple)) else int(dim))


def unsqueeze(call: Call):
    call.act()
    if not call.leading:
        return reshaped(call)
    return L.Unsqueeze(int(call.args["dim"]))


def slice_(call: Call):
    x = call.act()
    start, end = call.args.get("start"), call.args.get("end")
    if tuple(call.out) == tuple(x.shape) and call.out_layout == x.layout and int(call.args["step"]) == 1:
        return None  # the whole tensor (x[:, 0] slices the batch axis whole first)
    dim = call.dim(call.args["dim"])
    if end is not None and 0 < dim <= len(x.shape):  # torch clamps an end past the axis (x[:, 1:] ends at 2^63-1)
        end = min(int(end), x.shape[dim - 1])
    return L.Slice(dim, None if start is None else int(start), None if end is None else int(end),
                   int(call.args["step"]))


def slice_scatter(call: Call):
    """``torch.slice_scatter(input, src, dim, start, end, step)`` of two activations kept alike."""
    x, src = call.act("self"), call.act("src")
    if x.layout != src.layout:
        raise Unsupported("slice_scatter of activations that keep the batch on different axes")
    start, end, dim = call.args.get("start"), call.args.get("end"), call.dim(call.args.get("dim", 0))
    if end is not None and 0 < dim <= len(x.shape):
        end = min(int(end), x.shape[dim - 1])
    return L.SliceScatter(dim, None if start is None else int(start), None if end is None else int(end),
                          int(call.args.get("step", 1)))


def narrow(call: Call):
    call.act()
    return L.Narrow(call.dim(call.args["dim"]), int(call.args["start"]), int(call.args["length"]))


def select(call: Call):
    call.act()
    return L.Select(call.dim(call.args["dim"]), int(call.args["index"]))


def roll(call: Call):
    call.act()
    dims = call.args.get("dims") or ()
    if not dims:
        raise Unsupported("roll of the flattened tensor (it moves values between samples)")
    return L.Roll(ints(call.args["shifts"]), tuple(call.dim(d) for d in dims))


def cat(call: Call):
    """torch.cat of activations, with learned tensors expanded to the batch among them (class tokens)."""
    tensors = call.args["tensors"]
    learned = [t for t in tensors if not isinstance(t, Act)]
    acts = [t for t in tensors if isinstance(t, Act)]
    if not acts:
        raise Unsupported("cat of tensors that do not depend on the input")
    if learned:
        if tuple(tensors[:len(learned)]) != tuple(learned) or not all(
                getattr(t, "batched", False) and not t.buffer for t in learned):
            raise Unsupported("cat of fixed tensors, or of learned ones after the activations")
        for index, tensor in enumerate(learned):  # a class token, then a distillation token, ...
            call.weights.append(("weight" if index == 0 else f"weight.{index}", tensor.name))
    call.reads.extend(acts)
    if len({a.layout for a in acts}) > 1:
        raise Unsupported("cat of tensors that keep the batch on different axes")
    dim = call.dim(call.args["dim"])
    if learned:
        axis = dim % (len(acts[0].shape) + 1) - 1  # the learned tensors join along the same per-sample axis
        shape = list(learned[0].shape)
        if axis < 0 or any(len(t.shape) != len(shape) for t in learned):
            raise Unsupported("cat of learned tensors along the batch")
        shape[axis] = sum(t.shape[axis] for t in learned)
        return L.Concat(dim, weight_shape=tuple(shape))
    return L.Concat(dim)


def piece(op: str, args: dict, source: Act, index: int):
    """Item ``index`` of chunk, split or unbind, on its per-sample axis."""
    dim = source.layout.dim(int(args.get("dim", 0)))
    if op == "chunk":
        return L.Chunk(int(args["chunks"]), dim, index)
    if op == "split":
        size = args["split_size"]
        return L.Split(int(size) if isinstance(size, int) else ints(size), dim, index)
    if op == "split_with_sizes":
        return L.Split(ints(args["split_sizes"]), dim, index)
    if op == "unbind":
        return L.Select(dim, index)
    if op == "tensor_split":  # pieces between the given indices, or n near-equal sections (the first larger)
        if "indices" in args:
            bounds = [0, *(int(i) for i in args["indices"]), None]
            return L.Slice(dim, bounds[index], bounds[index + 1])
        sections, size = int(args["sections"]), source.shape[dim - 1] if 0 < dim <= len(source.shape) else None
        if size is None or sections < 1:
            raise Unsupported("tensor_split along the batch")
        small, extra = divmod(size, sections)
        start = index * small + min(index, extra)
        return L.Slice(dim, start, start + small + (index < extra))
    raise Unsupported(f"piece {index} of {op}")


def index(call: Call):
    """``x[index]`` (ATen's index with one index tensor, the other axes whole) and index_select, with a
    fixed one-dimensional index: an IndexSelect of as many entries."""
    call.act()
    if call.op == "index_select":
        dim, index_ = call.args["dim"], call.args["index"]
    else:
        indices = list(call.args["indices"])
        used = [i for i, t in enumerate(indices) if t is not None]
        if len(used) != 1:
            raise Unsupported("an index with several index tensors")
        dim, index_ = used[0], indices[used[0]]
    if not isinstance(index_, (Param, Const)) or len(index_.shape) != 1:
        raise Unsupported(f"{call.op} with an index that is not a fixed list of positions")
    return L.IndexSelect(call.dim(dim), index_.shape[0])


def repeat(call: Call):
    """A fixed tensor made once (its traced batch axis of 1) repeated over the batch: each sample's
    values are its own (XCiT's position encoding), with no new layer."""
    x = call.act()
    if x.layout.unit and call.out_layout.leading and tuple(call.out) == tuple(x.shape):
        return None
    raise Unsupported("repeat")


def contiguous(call: Call) -> L.Layer | None:
    """``.contiguous()``: the activation itself where it is laid out row by row in the traced order, else a
    copy that is (engine/views.py decides). Where the batch is merged with other sizes it is read as the
    activation itself, as convcalc read every ``.contiguous()`` before it followed the copies."""
    x = call.act()
    if x.layout.merged or x.layout.absent:
        return None
    return L.Contiguous(batch_axis=x.layout.axis)


OPERATORS = {
    "contiguous": contiguous,
    "view": reshape, "reshape": reshape, "_unsafe_view": reshape, "_reshape_alias": reshape, "view_as": reshape,
    "reshape_as": reshape,
    "unflatten": unflatten, "flatten": flatten, "permute": permute, "transpose": transpose, "swapaxes": transpose,
    "squeeze": squeeze, "unsqueeze": unsqueeze, "slice": slice_, "narrow": narrow, "select": select,
    "slice_scatter": slice_scatter,
    "cat": cat, "concat": cat, "roll": roll, "index": index, "index_select": index,
    "repeat": repeat,
}
