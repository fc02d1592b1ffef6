"""Where a tensor's elements sit in its storage (strides, in elements, batch axis first), as PyTorch
lays them out: what decides whether a reshape is a view or a copy, and what a linear layer saves.

A layer that makes new storage makes it contiguous; a permutation or a slice is a view with the
strides moved or stepped; a reshape is a view when PyTorch's rule (``computeStride``) finds strides
for the new shape, else a copy. A linear layer (and ``x @ W``) on more than two axes folds its input
to rows, ``input.reshape(-1, features)``, and autograd saves that: the input's storage when the fold
is a view, a copy of the input otherwise (measured with ``saved_tensors_hooks``, torch 2.13).

>>> contiguous((2, 3, 4))
(12, 4, 1)
>>> view((2, 3, 4), (12, 4, 1), (6, 4)), view((2, 2, 4), (12, 4, 1), (4, 4))
((4, 1), None)
"""

from __future__ import annotations

from .sizes import volume

# (no layer is imported here: the layers' own rules use these functions; ``views.py`` says which layers are views)
Shape = tuple[int, ...]
Strides = tuple[int, ...]


def contiguous(shape: Shape) -> Strides:
    """The strides of a tensor laid out row by row."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def view(shape: Shape, strides: Strides, wanted: Shape) -> Strides | None:
    """The strides of ``wanted`` as a view of a tensor of ``shape`` and ``strides``, or None where it
    needs a copy: PyTorch's rule, which merges or splits only axes that are contiguous between them."""
    if volume(shape) == 0:
        return contiguous(wanted)
    result = [0] * len(wanted)
    at = len(wanted) - 1
    base = strides[-1] if strides else 1
    held = kept = 1
    for d in range(len(shape) - 1, -1, -1):
        held *= shape[d]
        if d == 0 or (shape[d - 1] != 1 and strides[d - 1] != held * base):
            while at >= 0 and (kept < held or wanted[at] == 1):
                result[at] = kept * base
                kept *= wanted[at]
                at -= 1
            if kept != held:
                return None
            if d > 0:
                base, held, kept = strides[d - 1], 1, 1
    return tuple(result) if at == -1 else None


def elementwise(full: Shape, strides: Strides) -> Strides:
    """Where an elementwise operation on one tensor of ``full`` shape and ``strides`` writes its result,
    as PyTorch's TensorIterator lays it out: the input's own strides where its elements fill their span
    without gaps or overlaps, else dense in the input's order of axes (larger strides outer; for equal
    strides, the larger axis outer). So a ReLU on a transposed tensor is transposed too.

    >>> elementwise((3, 5, 8), (8, 24, 1)), elementwise((3, 5, 8), (120, 24, 1)), elementwise((2, 3), (1, 4))
    ((8, 24, 1), (40, 8, 1), (1, 2))
    """
    if _dense(full, strides):
        return tuple(strides)
    return dense_order(full, (strides,))


def contiguous_with_batch_at(full: Shape, batch_axis: int) -> Strides:
    """Row by row in PyTorch's order of axes, where its tensor holds the batch (axis 0 of ``full``) at
    ``batch_axis`` (1 for a sequence-first tensor).

    >>> contiguous_with_batch_at((2, 5, 12), 1)
    (12, 24, 1)
    """
    return _dense_along(full, reversed(_batch_at(len(full), batch_axis)))


def laid_as(full: Shape, strides: Strides, wanted: Strides) -> bool:
    """Whether ``strides`` are ``wanted`` but on axes of one element (whose strides say nothing)."""
    return all(n == 1 or a == b for n, a, b in zip(full, strides, wanted))


def _batch_at(rank: int, batch_axis: int) -> list[int]:
    """The axes of a tensor of ``rank`` (batch first) in PyTorch's order, the batch at ``batch_axis``."""
    return [*range(1, batch_axis + 1), 0, *range(batch_axis + 1, rank)]


def _dense_along(full: Shape, innermost_first) -> Strides:
    """Dense strides for ``full``, its axes laid out innermost first in that order."""
    result, step = [0] * len(full), 1
    for axis in innermost_first:
        result[axis], step = step, step * max(full[axis], 1)
    return tuple(result)


def _dense(full: Shape, strides: Strides) -> bool:
    """Whether the elements fill their span without gaps or overlaps."""
    step = 1
    for d in sorted((d for d in range(len(full)) if full[d] != 1), key=lambda d: strides[d]):
        if strides[d] != step:
            return False
        step *= full[d]
    return True


def dense_order(full: Shape, operands: tuple[Strides, ...]) -> Strides:
    """Dense strides for a result of ``full`` shape in the order of axes TensorIterator picks from its
    operands' strides (the first operand that can tell two axes apart decides; broadcast axes tell none)."""
    perm = list(range(len(full) - 1, -1, -1))  # innermost first; an insertion sort that steps over ties
    for i in range(1, len(perm)):
        inner = i
        for outer in range(i - 1, -1, -1):
            order = next((c for c in (_compare(full, strides, perm[outer], perm[inner]) for strides in operands)
                          if c), 0)
            if order > 0:
                perm[outer], perm[inner] = perm[inner], perm[outer]
                inner = outer
            elif order < 0:
                break
    return _dense_along(full, perm)


def _compare(full: Shape, strides: Strides, a: int, b: int) -> int:
    """1 where axis ``a`` (placed inside ``b``) belongs outside it, -1 where it is inside, 0 unknown."""
    if strides[a] == 0 or strides[b] == 0:
        return 0
    if strides[a] != strides[b]:
        return 1 if strides[a] > strides[b] else -1
    return 1 if full[a] > full[b] else 0


def batched_operand(full: Shape, strides: Strides, other: Shape) -> tuple[bool, int]:
    """How ``torch.matmul`` reads an operand of ``full`` shape (batch axis included) and ``strides``
    beside another of ``other`` full shape, both of three axes or more: expanded to the leading axes
    both broadcast to, then reshaped to (their product, n, m) for ``bmm``, which saves that. Whether
    it is a view of the operand's storage (else a copy), and its element count.

    >>> batched_operand((1, 4, 2, 8, 16), (1536, 768, 8, 1, 48), (1, 4, 2, 16, 8))  # k transposed: a copy
    (False, 1024)
    >>> batched_operand((1, 4, 2, 16, 8), (1024, 256, 128, 8, 1), (1, 4, 2, 8, 16))
    (True, 1024)
    """
    rank = max(len(full), len(other)) - 2
    lead_a = (1,) * (rank - len(full) + 2) + tuple(full[:-2])
    lead_b = (1,) * (rank - len(other) + 2) + tuple(other[:-2])
    lead = tuple(max(x, y) if min(x, y) != 0 else 0 for x, y in zip(lead_a, lead_b))
    own = (0,) * (rank - len(full) + 2) + tuple(strides[:-2])
    expanded = tuple(st if n == size else 0 for n, size, st in zip(lead_a, lead, own))
    wanted = (volume(lead), *full[-2:])
    return view((*lead, *full[-2:]), (*expanded, *strides[-2:]), wanted) is not None, volume(wanted)


def folds_to_a_view(shape: Shape, strides: Strides, batch: int, batch_axis: int = 0) -> bool:
    """Whether a tensor of per-sample ``shape`` folds to rows of its last axis without a copy, its rows in
    PyTorch's order of axes: the batch at ``batch_axis``.

    >>> folds_to_a_view((5, 12), (12, 24, 1), 2), folds_to_a_view((5, 12), (12, 24, 1), 2, batch_axis=1)
    (False, True)
    """
    order = _batch_at(len(shape) + 1, batch_axis)
    full = tuple((batch, *shape)[d] for d in order)
    laid = tuple(strides[d] for d in order)
    return len(full) <= 2 or view(full, laid, (volume(full[:-1]), full[-1])) is not None


def steps_fold_to_a_view(shape: Shape, strides: Strides, batch: int, whole: bool = False) -> bool:
    """Whether a sequence of per-sample ``shape`` (steps, features) and ``strides`` (batch axis first), taken
    steps first as a recurrent layer runs it, folds to (steps x batch) rows without a copy: the step axis's
    stride must span the whole batch (or one of the two axes be 1); ``whole``: whether it is laid out
    steps first row by row (a contiguous tensor).

    >>> steps_fold_to_a_view((5, 8), (40, 8, 1), 3), steps_fold_to_a_view((5, 8), (8, 24, 1), 3)
    (False, True)
    """
    steps = shape[0]
    if whole:
        full = (batch, *shape)
        return laid_as(full, strides, contiguous_with_batch_at(full, 1))
    return steps == 1 or batch == 1 or strides[1] == batch * strides[0]


def _label_order(letter: str) -> int:
    """torch.einsum's order of letters: capitals first."""
    return ord(letter) - ord("A") if letter.isupper() else 26 + ord(letter) - ord("a")


def einsum_plan(terms: tuple[str, ...], output: str, operands: tuple[tuple[Shape, Strides], ...],
                grads: tuple[bool, bool]) -> tuple[list, Strides] | None:
    """How ``torch.einsum`` of two operands (torch 2.13's ``einsum`` and ``sumproduct_pair``) lays them out
    for the one ``bmm`` it runs, given each operand's letters, full shape and strides and whether it needs
    a gradient: what that product saves, each as (operand, viewed, elements): the operand's own storage
    where ``viewed``, else a new tensor of that many elements (a copy, or a sum of letters only it has),
    and the strides of the result. None where an operand repeats a letter (a diagonal: not followed).

    Every letter gets a place: the output's in its order, then the contracted ones in PyTorch's order;
    each operand is aligned to those places (an axis of 1 where it lacks a letter), letters only it has
    and the output drops are summed away, and the rest is permuted and reshaped to (shared, own,
    contracted) rows for ``bmm``; with nothing to contract it is a broadcast product instead.
    """
    if any(len(set(term)) != len(term) for term in terms):
        return None
    place = {letter: i for i, letter in enumerate(output)}
    for letter in sorted(set("".join(terms)) - set(output), key=_label_order):
        place[letter] = len(place)
    total = len(place)
    aligned = []
    for term, (shape, strides) in zip(terms, operands):
        sizes, steps = [1] * total, [1] * total
        for letter, n, step in zip(term, shape, strides):
            sizes[place[letter]], steps[place[letter]] = n, step
        aligned.append((sizes, steps, False))
    summed_dims = []
    for dim in range(len(output), total):
        present = [sizes[dim] != 1 for sizes, _, _ in aligned]
        if all(present):
            summed_dims.append(dim)
        elif any(present):  # only one operand has it: summed there first, into a new tensor
            k = present.index(True)
            sizes = list(aligned[k][0])
            sizes[dim] = 1
            aligned[k] = (sizes, None, True)
    aligned = [(sizes, contiguous(tuple(sizes)) if steps is None else tuple(steps), new)
               for sizes, steps, new in aligned]
    (a_sizes, a_steps, a_new), (b_sizes, b_steps, b_new) = aligned
    if not summed_dims:  # a broadcast product: each operand saved as it is, for the other's gradient
        saved = [(k, not new, volume(sizes)) for k, (sizes, _, new) in enumerate(aligned) if grads[1 - k]]
        out = tuple(max(x, y) for x, y in zip(a_sizes, b_sizes))
        broadcast = tuple(tuple(0 if n == 1 and m != 1 else st for n, m, st in zip(sizes, out, steps))
                          for sizes, steps, _ in aligned)
        laid = broadcast[0] if broadcast[0] == broadcast[1] and _dense(out, broadcast[0]) else \
            dense_order(out, broadcast)
        return saved, laid[:len(output)]
    shared = [d for d in range(total) if d not in summed_dims and a_sizes[d] != 1 and b_sizes[d] != 1]
    own_a = [d for d in range(total) if d not in summed_dims and a_sizes[d] != 1 and b_sizes[d] == 1]
    own_b = [d for d in range(total) if d not in summed_dims and d not in shared and d not in own_a]
    own_b_sized = [d for d in own_b if b_sizes[d] != 1]  # (PyTorch puts axes of 1 in both with the second's)
    if own_a and own_b_sized and own_b_sized[0] < own_a[0]:
        # where the second operand's own letters come first in the output, torch 2.13 sometimes swaps the
        # factors of its product (measured; its rule is not the published source's): not followed
        return None
    rows = (volume(a_sizes[d] for d in shared), volume(a_sizes[d] for d in own_a),
            volume(a_sizes[d] for d in summed_dims), volume(b_sizes[d] for d in own_b))
    saved = []
    for k, order, wanted in ((0, shared + own_a + summed_dims + own_b, rows[:3]),
                             (1, shared + summed_dims + own_b + own_a, (rows[0], rows[2], rows[3]))):
        sizes, steps, new = aligned[k]
        viewed = view(tuple(sizes[d] for d in order), tuple(steps[d] for d in order), wanted) is not None
        if grads[1 - k]:  # bmm keeps each factor for the other's gradient
            saved.append((k, viewed and not new, volume(wanted) if not viewed or not new else volume(sizes)))
    # the product (shared, own a, own b) viewed as the aligned axes in that order, then permuted back
    laid_order = shared + own_a + summed_dims + own_b
    sizes = [a_sizes[d] if d in shared or d in own_a else 1 if d in summed_dims else b_sizes[d] for d in laid_order]
    steps = contiguous(tuple(sizes))
    result = {d: steps[i] for i, d in enumerate(laid_order)}
    return saved, tuple(result[d] for d in range(len(output)))

