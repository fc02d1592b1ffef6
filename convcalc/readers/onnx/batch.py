"""Where the batch is in a tensor an exporter moved it in, and each operator's axes on the per-sample form.

convcalc's layers work on one sample, with the batch as axis 0. Attention exports move the batch:
``nn.MultiheadAttention`` puts the sequence first, and heads are merged with the batch as
(B*heads, N, d). Such a tensor is held by its *per-sample* shape: the batch factor taken out of the
axis that holds it (the axis dropped when it held the batch alone), every other axis in order. A
``Placed`` activation says where that was: the file's axis holding the batch, and the sizes beside
the batch inside that axis (the axis is ``outer * batch * inner``). A plain ``Act`` has the batch
alone at axis 0, as before.

An operator's axes (the file's, batch counted) become the per-sample form's with ``dim``, which
refuses an axis holding the batch; a reshape finds the axis the batch factor lands in with
``reshaped``, and refuses one that would split it over two axes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...engine.errors import SpecError
from ...engine.sizes import volume
from ..pytorch.values import Act

PLAIN = (0, 1, 1)  # the batch alone at axis 0
FREE = (-1, 0, 0)  # a batch of 1 merged into no axis in particular: the per-sample shape is the file's
_HINT = ("convcalc keeps the samples of a batch apart: an operation that mixes them has no per-sample "
         "figures")


@dataclass(frozen=True)
class Placed(Act):
    """An activation whose batch is not alone at axis 0: in the file's axis ``axis``, which is
    ``outer * batch * inner`` (1 and 1: the batch alone there, and the axis left out of ``shape``)."""

    axis: int = 0
    outer: int = 1
    inner: int = 1


@dataclass(frozen=True)
class OneSlice(Act):
    """One slice of ``whole``, an activation whose batch is merged with other sizes on axis 0: what a
    batch-first operator's builder reads, its layers then running on every slice (``slices``)."""

    whole: Act | None = None


def placement(act: Act) -> tuple[int, int, int]:
    """(axis, outer, inner) of where ``act``'s batch is in the file's tensor."""
    return (act.axis, act.outer, act.inner) if isinstance(act, Placed) else PLAIN


def make(ref: str, shape, where) -> Act:
    if tuple(where) == PLAIN:
        return Act(ref, tuple(shape))
    axis, outer, inner = where
    return Placed(ref, tuple(shape), axis=axis, outer=outer, inner=inner)


def alone(where) -> bool:
    return where[1] * where[2] == 1


def free(where) -> bool:
    """Whether ``where`` is a batch of 1 that any axis may hold (``FREE``): no axis is the batch's."""
    return tuple(where) == FREE


def rank(act: Act) -> int:
    """The number of axes of the file's tensor."""
    return len(act.shape) + alone(placement(act))


def full_shape(act: Act, batch: int) -> tuple[int, ...]:
    """The file's shape of ``act`` for a batch of ``batch``."""
    axis, outer, inner = placement(act)
    shape = list(act.shape)
    if free((axis, outer, inner)):
        return tuple(shape)
    if outer * inner == 1:
        shape.insert(axis, batch)
    else:
        shape[axis] = outer * batch * inner
    return tuple(shape)


def refuse(node, what: str) -> SpecError:
    return node.error(what, hint=_HINT)


def dim(node, act: Act, k: int, what: str = "axis") -> int:
    """The file's axis ``k`` (negative from the end) as a layer's dim (the batch counted as 0), refused
    where it holds the batch."""
    r = rank(act)
    if not -r <= k < r:
        raise node.error(f"{what} {k} is outside the input's {r} axes")
    k %= r
    axis, outer, inner = placement(act)
    if free((axis, outer, inner)):
        return k + 1
    if k == axis:
        held = "the batch" if outer * inner == 1 else f"the batch merged with {outer * inner}"
        raise refuse(node, f"works along axis {k}, which holds {held}")
    if outer * inner == 1:
        return k + 1 if k < axis else k
    return k + 1


def shifted(where, removed=(), added=()) -> tuple[int, int, int]:
    """``where`` after removing the file's axes ``removed`` (input numbering) or inserting ``added``
    (output numbering) elsewhere."""
    if free(where):
        return FREE
    axis, outer, inner = where
    axis -= sum(1 for a in removed if a < axis)
    for a in sorted(added):
        if a <= axis:
            axis += 1
    return axis, outer, inner


def reshaped(node, act: Act, target, batch: int, reader=None):
    """The per-sample shape and placement of ``act`` reshaped to the file's ``target`` (sizes resolved,
    the batch as traced). The batch factor must land whole in one axis; where several axes could hold
    it (a batch of 1, or sizes equal to it), the one that keeps the batch's axis whole is taken, then
    one holding the batch alone, then one with the batch outermost, and ``reader.ambiguous`` is set.
    A batch of 1 goes to an axis of size 1 it keeps whole or finds, else nowhere in particular (``FREE``)."""
    source = full_shape(act, batch)
    where = placement(act)
    if volume(target) != volume(source) or 0 in target:
        raise node.error(f"reshapes {_fmt(source)} to {_fmt(target)}, which do not have the same size")
    if batch == 1 and free(where):
        ones = [j for j, n in enumerate(target) if n == 1]
        if reader is not None:
            reader.ambiguous = True
        return (tuple(target), FREE) if not ones else (tuple(target[:ones[0]] + target[ones[0] + 1:]),
                                                      (ones[0], 1, 1))
    axis, outer, inner = where
    before = volume(source[:axis]) * outer
    after = inner * volume(source[axis + 1:])
    found = []
    for j in range(len(target)):
        prefix, suffix = volume(target[:j]), volume(target[j + 1:])
        if before % prefix == 0 and after % suffix == 0:
            o, i = before // prefix, after // suffix
            whole = prefix == volume(source[:axis]) and target[j] == source[axis]
            found.append((not whole, o * i != 1, o != 1, j, (j, o, i)))
    if not found:
        raise refuse(node, f"reshapes {_fmt(source)} to {_fmt(target)}, which does not keep the batch of {batch} "
                           "whole in one axis")
    found.sort()
    if len(found) > 1 and reader is not None:
        reader.ambiguous = True
    if batch == 1 and found[0][1]:  # no axis holds a batch of 1 alone: none in particular holds it
        return tuple(target), FREE
    j, o, i = found[0][-1]
    shape = list(target)
    if o * i == 1:
        del shape[j]
    else:
        shape[j] = o * i
    return tuple(shape), (j, o, i)


def _fmt(shape) -> str:
    return "x".join(str(n) for n in shape) or "a scalar"


def per_sample(full, where, batch: int) -> tuple[int, ...]:
    """The per-sample shape of the file's ``full`` shape with the batch at ``where``."""
    if free(where):
        return tuple(full)
    axis, outer, inner = where
    shape = list(full)
    if outer * inner == 1:
        del shape[axis]
    else:
        shape[axis] = outer * inner
    return tuple(shape)


def same_placement(node, acts) -> tuple[int, int, int]:
    """The one placement all of ``acts`` share; refused where their batches sit differently."""
    found = {placement(a) for a in acts}
    ranks = {rank(a) for a in acts}
    if len(found) > 1 and FREE in found and len({len(a.shape) for a in acts}) == 1 and \
            all(p == FREE or not alone(p) for p in found):
        return FREE  # a batch of 1 merged somewhere: the per-sample shapes are the file's alike
    if len(found) > 1 or len(ranks) > 1:
        raise refuse(node, "reads tensors whose batches sit on different axes")
    return found.pop()
