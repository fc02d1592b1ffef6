"""ONNX's matrix products: MatMul (of two activations, or of an activation and a weight), Gemm (its
transposes), and Einsum (the equations transformer exports write), on tensors whose batch may have
moved (see ``batch``): a product over the axis holding the batch is refused, as it mixes samples."""

from __future__ import annotations

import re

from ...engine import layers as L
from ...engine.errors import SpecError
from ..pytorch.values import Act, Unsupported
from .batch import alone, free, full_shape, placement, rank, refuse, same_placement
from .node import Node, gathered


def _check_rows(node: Node, x, contracted: int) -> None:
    """Refuses a product whose contracted axis (the file's) holds the batch."""
    if not free(placement(x)) and placement(x)[0] == contracted % rank(x):
        raise refuse(node, f"multiplies over axis {contracted % rank(x)}, which holds the batch")


def matmul(node: Node):
    a, b = (node.inputs[i] if i < len(node.inputs) else None for i in range(2))
    if a is None or b is None:
        raise node.error("has fewer than two inputs, which the operator requires")
    if isinstance(a, Act) and isinstance(b, Act):
        return _two_activations(node)
    if isinstance(a, Act):
        x = node.act(0, moved=True)
        w = node.const(1, what="weight")
        if w.ndim != 2:
            return _stacked(node, x, w)
        _check_rows(node, x, -1)
        node.weight(1, "weight")
        node.placed = placement(x)
        return [(L.Linear(int(w.shape[1]), False, in_features=int(w.shape[0])), [x])]
    # weight @ x: (x^T @ weight^T)^T, the transposes only moving data
    x = node.act(1, moved=True)
    w = node.const(0, what="weight")
    if w.ndim != 2 or rank(x) < 2:
        raise Unsupported("MatMul of a weight and an activation of other shapes")
    r = rank(x)
    if not free(placement(x)) and placement(x)[0] >= r - 2:
        raise refuse(node, f"multiplies a weight by axes {r - 2} and {r - 1}, one of which holds the batch")
    node.weight(0, "weight")
    node.placed = placement(x)
    last = len(x.shape)
    return [(L.Transpose(last - 1, last), [x]), (L.Linear(int(w.shape[0]), False, in_features=int(w.shape[1])), None),
            (L.Transpose(last - 1, last), None)]


def _two_activations(node: Node):
    a, b = node.act(0, moved=True), node.act(1, moved=True)
    where = same_placement(node, [a, b])
    r = rank(a)
    if r < 3 - free(where) or (not free(where) and where[0] >= r - 2):
        raise refuse(node, f"multiplies over axes {r - 2} and {r - 1} of tensors whose batch is on axis "
                           f"{where[0]}")
    node.placed = where
    return [(L.MatMul(), [a, b])]


def gemm(node: Node):
    x = node.act(moved=True)
    if rank(x) != 2:
        raise node.error(f"input 0 has {rank(x)} axes; Gemm needs 2")
    w = node.weight(1, "weight", required=True, rank=2)
    b = node.const(2, what="bias")
    if w.ndim != 2:
        raise node.error(f"input 1 (weight) has {w.ndim} axes; Gemm needs 2")
    if b is not None and b.size != w.shape[0 if node.int("transB", 0) else 1]:
        raise Unsupported("Gemm with a bias other than one value per output")
    if b is not None:
        node.weight(2, "bias")
    node.float("alpha", 1.0)
    node.float("beta", 1.0)
    out, features = (w.shape[0], w.shape[1]) if node.int("transB", 0) else (w.shape[1], w.shape[0])
    linear = L.Linear(int(out), b is not None, in_features=int(features))
    where = placement(x)
    rows = 1 if node.int("transA", 0) else 0  # the axis of input 0 that holds the output's rows
    if free(where):
        node.placed = where
        return [(linear, [x])] if rows == 0 else [(L.Transpose(1, 2), [x]), (linear, None)]
    if where[0] != rows:
        raise refuse(node, "multiplies over the axis that holds the batch")
    node.placed = (0, where[1], where[2])
    if rows == 0 or alone(where):
        return [(linear, [x])]
    return [(L.Transpose(1, 2), [x]), (linear, None)]  # (K, B*m): a sample's m rows, transposed


_EQUATION = re.compile(r"^([a-zA-Z.]*),([a-zA-Z.]*)->([a-zA-Z.]*)$")
_HINT = "convcalc reads two-operand products such as 'bhid,bhjd->bhij' and 'bnd,de->bne'"


def _letters(term: str, count: int | None, dots: list) -> list | None:
    """An operand's letters, its '...' spelled with ``dots`` (the same letters in every operand)."""
    if term.count("...") > 1 or term.replace("...", "").count("."):
        return None
    if "..." not in term:
        return list(term) if count is None or len(term) == count else None
    head, tail = term.split("...")
    if count is not None and count != len(head) + len(tail) + len(dots):
        return None
    return [*head, *dots, *tail]


def einsum(node: Node):
    equation = node.string("equation", required=True).replace(" ", "")
    match = _EQUATION.match(equation)
    operands = [node.inputs[i] if i < len(node.inputs) else None for i in range(2)]
    if match is None or len(node.inputs) != 2 or None in operands:
        raise node.error(f"equation {equation[:60]!r} is not a product of two operands convcalc reads", hint=_HINT)
    refused = node.error(f"equation {equation[:60]!r} is not a product convcalc reads (one summed letter, one "
                         "free letter on each side between two activations, no repeated letters)", hint=_HINT)
    ranks = [rank(v) if isinstance(v, Act) else v.array.ndim for v in operands]
    spans = {r - len(t.replace("...", "")) for t, r in zip(match.group(1, 2), ranks) if "..." in t}
    if len(spans) > 1 or min(spans, default=0) < 0:
        raise refused
    dots = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"][:spans.pop() if spans else 0]
    first, second = (_letters(t, r, dots) for t, r in zip(match.group(1, 2), ranks))
    out = _letters(match.group(3), None, dots)
    if None in (first, second, out) or any(len(set(t)) != len(t) for t in (first, second, out)):
        raise refused
    if not isinstance(operands[0], Act):  # weight first: the product commutes with its letters
        first, second = second, first
        operands = operands[::-1]
        node.inputs = [node.inputs[1], node.inputs[0]]
    summed = [c for c in first if c in second and c not in out]
    if any(c not in first and c not in second for c in out):
        raise refused
    if len(summed) == 1 and all(c in out or c in summed for c in (*first, *second)):
        try:
            if isinstance(operands[1], Act):
                return _einsum_activations(node, first, second, out, summed[0], refused)
            return _einsum_weight(node, first, second, out, summed[0], refused)
        except SpecError as err:
            if err is not refused:
                raise
    if isinstance(operands[1], Act):
        raise refused
    return _einsum_weight_general(node, first, second, out)


def _permute(x_letters, order, x, where):
    """A per-sample Permute taking the file's axes named ``x_letters`` to ``order`` (None if the identity),
    and the placement after it."""
    perm = [x_letters.index(c) for c in order]
    axis = where[0]
    rest = [p - (p > axis) for p in perm if p != axis] if alone(where) else perm
    moved = where if free(where) else (perm.index(axis), where[1], where[2])
    if rest == sorted(rest):
        return None, moved
    return L.Permute((0, *(q + 1 for q in rest))), moved


def _einsum_activations(node, first, second, out, k, refused):
    a, b = node.act(0, moved=True), node.act(1, moved=True)
    where = same_placement(node, [a, b])
    shared = [c for c in out if c in first and c in second]
    m = [c for c in first if c not in second]
    n = [c for c in second if c not in first]
    held = None if free(where) else (first[where[0]], second[where[0]])
    if len(m) != 1 or len(n) != 1 or (held and (held[0] != held[1] or held[0] not in shared)):
        raise refused if len(m) != 1 or len(n) != 1 else refuse(node, "sums or multiplies over the batch's axis")
    specs, reads = [], []
    for x, letters, order in ((a, first, [*shared, m[0], k]), (b, second, [*shared, k, n[0]])):
        spec, after = _permute(letters, order, x, where)
        if spec is not None:
            specs.append((spec, [x]))
        reads.append(x if spec is None else len(specs) - 1)  # an index: the output of that spec
    product = [*shared, m[0], n[0]]
    specs.append((L.MatMul(), reads))
    final, placed = _permute(product, out, None, after)
    node.placed = placed
    if final is not None:
        specs.append((final, None))
    return specs


def _einsum_weight(node, first, second, out, k, refused):
    x = node.act(0, moved=True)
    w = node.const(1, what="weight")
    n = [c for c in second if c != k]
    if w.ndim != 2 or len(n) != 1 or any(c not in first for c in out if c != n[0]) or \
            (not free(placement(x)) and first[placement(x)[0]] == k):
        raise refused
    node.weight(1, "weight")
    rows = [c for c in out if c != n[0]]
    spec, moved = _permute(first, [*rows, k], x, placement(x))
    specs = [(spec, [x])] if spec is not None else []
    linear = L.Linear(int(w.shape[second.index(n[0])]), False, in_features=int(w.shape[second.index(k)]))
    specs.append((linear, [x] if not specs else None))
    final, placed = _permute([*rows, n[0]], out, None, moved)
    node.placed = placed
    if final is not None:
        specs.append((final, None))
    return specs


def _einsum_weight_general(node, first, second, out):
    """Any other product of an activation and a learned operand (MViT's relative positions, 'bythwc,hkc->
    bythwk': batched over a letter the learned operand shares) as convcalc's Einsum, written per sample: the
    batch's letter dropped where the batch is alone in its axis, kept where it is merged with other sizes.
    The learned operand is a float initializer, or values picked, added or joined from some (``table``)."""
    x = node.act(0, moved=True)
    where = placement(x)
    value, table = node.inputs[1], None
    if value.initializer and value.array.dtype.kind == "f":
        node.weight(1, "weight")
    elif gathered(node, value):
        node.params.append(("weight", "+".join(value.table)))
        table = gathered(node, value) if gathered(node, value) < value.array.size else None
    else:
        raise node.error("multiplies by a fixed operand that is no learned weight", hint=_HINT)
    terms, product = (first, out)
    node.placed = where
    if not free(where):
        held = first[where[0]]
        if held not in out or held in second:
            raise refuse(node, "sums or multiplies over the batch's axis")
        if alone(where):
            terms, product = [c for c in first if c != held], [c for c in out if c != held]
        node.placed = (out.index(held), where[1], where[2])
    equation = f"{''.join(terms)},{''.join(second)}->{''.join(product)}"
    return [(L.Einsum(equation, tuple(int(n) for n in value.array.shape), table), [x])]


def _stacked(node: Node, x, w):
    """An activation times a learned stack of matrices (MViT's temporal relative positions: (T, N, C) @ (T, C,
    T'), a product batched over T) as the Einsum it is; the stack's leading axes meet the activation's last
    ones, size for size."""
    r = rank(x)
    value = node.inputs[1]
    learned = (value.initializer and w.dtype.kind == "f") or gathered(node, value)
    if w.ndim < 3 or not w.ndim <= r <= 25 or not learned or \
            tuple(w.shape[:-2]) != tuple(full_shape(x, node.batch)[r - w.ndim:-2]):
        raise Unsupported("MatMul with a weight of other than two axes")
    letters = list("abcdefghijklmnopqrstuvwxy"[:r])  # the activation's axes; the last one is summed
    second = [*letters[r - w.ndim:-2], letters[-1], "z"]
    return _einsum_weight_general(node, letters, second, [*letters[:-1], "z"])
