"""ONNX operators that only move data (Reshape, Flatten, Transpose, Squeeze, Unsqueeze), including
those that move or merge the batch axis: a Reshape becomes ``Reshape(per-sample shape)``, a Transpose
the permutation of the per-sample axes (nothing when only the batch moves), and the output's
placement says where the batch went (see ``batch``)."""

from __future__ import annotations

from ...engine import layers as L
from ...engine.sizes import volume
from .batch import FREE, PLAIN, alone, dim, free, full_shape, per_sample, placement, rank, refuse, reshaped, shifted
from .node import Node, axes


def _resolved(node: Node, target, full) -> list[int]:
    """ONNX's target shape with 0 (copy, without allowzero) and -1 (the rest) worked out."""
    if not node.int("allowzero", 0):
        target = [full[i] if n == 0 and i < len(full) else n for i, n in enumerate(target)]
    if target.count(-1) > 1 or any(n < -1 for n in target):
        raise node.error(f"input 1 (shape) {list(target)[:8]} has more than one -1 or a size below it")
    if -1 in target:
        known = volume(n for n in target if n != -1)
        if known == 0 or volume(full) % known:
            raise node.error(f"input 1 (shape) {list(target)[:8]} does not divide the input's {volume(full):,} "
                             "elements")
        target = [volume(full) // known if n == -1 else n for n in target]
    return list(target)


def _moved(node: Node, x, target):
    shape, where = reshaped(node, x, tuple(target), node.batch, node.reader)
    node.placed = where
    return [(L.Reshape(shape), [x])]


def reshape(node: Node):
    x = node.act(moved=True)
    target = list(node.const_ints(1, "shape", required=True))
    full = full_shape(x, node.batch)
    if placement(x) == PLAIN:  # the batch stays first: as before, the sizes after it
        kept = [full[i] if n == 0 and i < len(full) and not node.int("allowzero", 0) else n
                for i, n in enumerate(target)]
        rest = kept[1:]
        known, total = volume(n for n in rest if n != -1), volume(x.shape)
        if kept and kept[0] in (node.batch, -1) and not (kept[0] == -1 and -1 in rest) and rest and known and \
                not total % known and (-1 in rest or known == total):
            return [(L.Reshape(tuple(rest)), [x])]
    return _moved(node, x, _resolved(node, target, full))


def flatten(node: Node):
    x = node.act(moved=True)
    r = rank(x)
    axis = node.int("axis", 1)
    if not -r <= axis <= r:
        raise node.error(f"attribute 'axis' is {axis}, outside the input's {r} axes")
    axis += r if axis < 0 else 0
    if placement(x) == PLAIN and axis == 1:
        return [(L.Flatten(1, -1), [x])]
    full = full_shape(x, node.batch)
    return _moved(node, x, [volume(full[:axis]), volume(full[axis:])])


def transpose(node: Node):
    x = node.act(moved=True)
    r = rank(x)
    perm = node.ints("perm", tuple(range(r - 1, -1, -1)))
    if sorted(perm) != list(range(r)):
        raise node.error(f"attribute 'perm' {list(perm)[:8]} is not an order of the input's {r} axes")
    where = placement(x)
    if where == PLAIN and perm[0] == 0:
        return [(L.Permute(perm), [x])]
    axis = where[0]
    if free(where):
        rest = list(perm)
    else:
        rest = [p - (p > axis) for p in perm if p != axis] if alone(where) else list(perm)
        where = (perm.index(axis), where[1], where[2])
    node.placed = where
    if rest == sorted(rest):
        return []  # only the batch moves: nothing happens to a sample
    return [(L.Permute((0, *(q + 1 for q in rest))), [x])]


def squeeze(node: Node):
    x = node.act(moved=True)
    found = axes(node, 1)
    where = placement(x)
    if where == PLAIN and (found is None or all(a % rank(x) for a in found)):
        return [(L.Squeeze(found), [x])]
    full = full_shape(x, node.batch)
    r = len(full)
    if found is None:
        found = [a for a in range(r) if full[a] == 1 and a != where[0]]
    if any(not -r <= a < r for a in found):
        raise node.error(f"axes {list(found)[:8]} fall outside the input's {r} axes")
    found = sorted({a % r for a in found})
    if any(full[a] != 1 for a in found):
        raise node.error(f"squeezes axes {found[:8]}, which are not all of size 1")
    if node.batch == 1 and alone(where) and where[0] in found:  # a batch of 1 squeezed away: held by no axis
        node.placed = FREE
        return [(L.Reshape(tuple(n for a, n in enumerate(full) if a not in found)), [x])]
    drop = {dim(node, x, a) - 1 for a in found}
    node.placed = shifted(where, removed=found)
    return [(L.Reshape(tuple(n for i, n in enumerate(x.shape) if i not in drop)), [x])]


def unsqueeze(node: Node):
    x = node.act(moved=True)
    new = axes(node, 1, required=True)
    ndim = rank(x) + len(new)
    if any(not -ndim <= a < ndim for a in new):
        raise node.error(f"axes {list(new)} fall outside the output's {ndim} axes")
    new = sorted({a % ndim for a in new})
    where = placement(x)
    if where == PLAIN and 0 not in new:
        return [(L.Unsqueeze(a), [x] if i == 0 else None) for i, a in enumerate(new)]
    full = list(full_shape(x, node.batch))
    for a in new:
        full.insert(a, 1)
    node.placed = shifted(where, added=new)
    return [(L.Reshape(per_sample(full, node.placed, node.batch)), [x])]

