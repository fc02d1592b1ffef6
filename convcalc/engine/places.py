"""Where each network-input axis sits in a tensor, for receptive fields.

An axis of the network input (an image's height, say) usually sits whole in one axis of
each tensor. A window partition splits it: Swin reshapes ``(56, 56, C)`` to
``(8, 7, 8, 7, C)``, permutes and merges to ``(64, 49, C)``, so the height's position ``h``
is the digit ``h // 7`` of axis 0 (with the width's ``w // 7``) and ``h % 7`` of axis 1.
A ``Place`` lists an axis's digits, most significant first, each as (tensor axis, size,
stride within that tensor axis): position ``h`` is read off the digits in mixed radix.
Following digits through reshapes, permutes and products keeps receptive fields exact
through windowed attention: attention reads every token of a window (its digits in the
token axis, read whole) and no other window (its digits in the window axis, kept), which
is a ``Partition`` window along the image axis.

>>> place = whole(0, 56)
>>> split = reshaped(place, (56, 56, 96), (8, 7, 8, 7, 96))
>>> split
((0, 8, 1), (1, 7, 1))
>>> reshaped(moved(split, (0, 2, 1, 3, 4)), (8, 8, 7, 7, 96), (64, 49, 96))
((0, 8, 8), (1, 7, 7))
"""

from __future__ import annotations

from itertools import pairwise
from math import prod

from .windows import IDENTITY, Broadcast, Global, Partition

Digit = tuple[int, int, int]  # (tensor axis, size, stride within that axis)
Place = tuple[Digit, ...]  # most significant digit first


def whole(axis: int, size: int) -> Place:
    """The place of a network-input axis that fills tensor ``axis`` of ``size``."""
    return canonical(((axis, size, 1),))


def canonical(place: Place) -> Place:
    """Digits of size 1 dropped (they carry no position; an axis of size 1 keeps its first), and
    neighbours that are one run of a tensor axis merged: (d, 8, 7) then (d, 7, 1) is (d, 56, 1)."""
    if place and all(size == 1 for _, size, _ in place):
        return place[:1]
    out: list[Digit] = []
    for axis, size, stride in place:
        if size == 1:
            continue
        if out and out[-1][0] == axis and out[-1][2] == stride * size:
            out[-1] = (axis, out[-1][1] * size, stride)
        else:
            out.append((axis, size, stride))
    return tuple(out)


def extent(place: Place) -> int:
    """How many positions the axis has."""
    return prod(size for _, size, _ in place)


def axis_of(place: Place | None, shape) -> int | None:
    """The tensor axis the network-input axis fills alone, or None (split, merged, or gone)."""
    if place is None or len(place) != 1:
        return None
    axis, size, stride = place[0]
    return axis if stride == 1 and size == shape[axis] else None


def moved(place: Place, dims) -> Place | None:
    """The place after a layer whose output axis j continues input axis ``dims[j]`` (None: an
    axis that is new or merged); None if a digit's axis does not continue."""
    out = []
    for axis, size, stride in place:
        if axis not in dims:
            return None
        out.append((dims.index(axis), size, stride))
    return canonical(tuple(out))


def reshaped(place: Place, before, after) -> Place | None:
    """The place after a reshape (the elements in the same order) from ``before`` to ``after``,
    or None where a digit does not fall on the new axes' boundaries."""
    weights_before = [prod(before[i + 1:]) for i in range(len(before))]
    weights_after = [prod(after[j + 1:]) for j in range(len(after))]
    bounds = sorted(set(weights_after) | {prod(after)})
    out: list[Digit] = []
    for axis, size, stride in place:
        low = weights_before[axis] * stride  # the digit's weight in the flat index
        high = low * size
        cuts = [low] + [b for b in bounds if low < b < high] + [high]
        pieces = []
        for start, stop in pairwise(cuts):
            if start == 0 or stop % start:
                return None
            j = min(i for i, w in enumerate(weights_after) if w <= start)  # the axis holding it
            if stop > weights_after[j] * after[j] or start % weights_after[j]:
                return None
            pieces.append((j, stop // start, start // weights_after[j]))
        out.extend(reversed(pieces))  # most significant first
    return canonical(tuple(out))


def follow(figures, places, shapes) -> tuple[list[tuple], tuple]:
    """A layer's receptive window along each network-input axis, per source, and where each
    axis sits in its output. ``places`` holds each source's places (one per axis: a ``Place``,
    or None once the axis is merged away and no longer followed), ``shapes`` their shapes.

    An axis that fills one tensor axis reads through that axis's window (a convolution's
    ``Sliding``, a roll's ``Cyclic``). An axis split into digits passes a layer that keeps each
    digit's axis (``IDENTITY``: the digit is kept) or reads it whole (``Global``): a
    ``Partition`` window. Anything else along a split axis (a convolution
    over a window axis) is taken as reading the whole axis from there on: an upper bound.
    """
    out = figures.output_shape
    if (len(places) == 1 and figures.windows is None and figures.dims is None and figures.axis0 is None
            and not (figures.mixes_channels or figures.flat or figures.broadcast or figures.continues)
            and out == shapes[0]):  # position for position (activations, most of a deep network)
        return [(IDENTITY,) * len(places[0])], places[0]
    windows = [[None] * len(places[0]) for _ in places]
    result = []
    for a in range(len(places[0])):
        if figures.continues is not None:
            result.append(_through_product(figures, places, shapes, a, windows))
            continue
        found, chosen = None, False
        for s, (place, shape) in enumerate(zip(places, shapes)):
            window, there = _through(figures, place[a], shape, out)
            windows[s][a] = window
            if chosen or place[a] is None:
                continue
            if figures.broadcast and isinstance(window, Broadcast):
                found = found or there  # a branch stretched along it gives the place only if no other does
                continue
            found, chosen = there, True
        result.append(found)
    return [tuple(w) for w in windows], tuple(result)


def _dim_window(figures, dim: int, shape):
    """The layer's window along tensor axis ``dim`` of its (first) source."""
    if dim == 0:
        if figures.axis0 is not None:
            return figures.axis0
        return Global(shape[0]) if figures.mixes_channels else IDENTITY
    if figures.windows is None or dim - 1 >= len(figures.windows):
        return IDENTITY
    window = figures.windows[dim - 1]
    # read whole: this source's axis, whatever length the layer's first source has there (a concat or
    # a slice written back joins branches of different lengths along it)
    return Global(shape[dim]) if isinstance(window, Global) and window.size != shape[dim] else window


def _through(figures, place: Place | None, shape, out):
    """One source's window along one axis and the axis's place in the output."""
    rank = len(out)
    if figures.broadcast:
        offset = rank - len(shape)
        if place is None or any(shape[d] != out[d + offset] for d, _, _ in place):
            return Broadcast(), None
        return IDENTITY, canonical(tuple((d + offset, n, s) for d, n, s in place))
    if place is None:
        return IDENTITY, None
    if figures.flat:
        there = reshaped(place, shape, out)
        return (IDENTITY, there) if there is not None else (Global(extent(place)), None)
    dim = axis_of(place, shape)
    if dim is not None and figures.dims is None and len(shape) == rank:  # most layers: the axis stays put
        return _dim_window(figures, dim, shape), place if out[dim] == shape[dim] else ((dim, out[dim], 1),)
    dims = figures.dims if figures.dims is not None else (tuple(range(rank)) if len(shape) == rank else ())
    if dim is not None:  # the axis fills one tensor axis: that axis's window, whatever it is
        there = moved(place, dims)
        return _dim_window(figures, dim, shape), None if there is None else whole(there[0][0], out[there[0][0]])
    whole_digits = []
    for d, _, _ in place:
        window = _dim_window(figures, d, shape)
        if window is not IDENTITY and not isinstance(window, Global):
            return Global(extent(place)), None
        whole_digits.append(window is not IDENTITY)
    there = moved(place, dims)
    if there is None or any(out[d] != shape[place[k][0]] for k, (d, _, _) in enumerate(there)):
        return Global(extent(place)), None
    return _digits_window(place, whole_digits), there


def _through_product(figures, places, shapes, a: int, windows) -> Place | None:
    """Axis ``a`` through a product: the first source whose digits all continue places it in the
    output; in every source, a digit that does not continue to that place is read whole."""
    mapped = []
    for s, continues in enumerate(figures.continues):
        place = places[s][a]
        if place is None:
            mapped.append(None)
            continue
        there = []
        for d, n, stride in place:
            j = continues[d] if d < len(continues) else None
            there.append(None if j is None or figures.output_shape[j] != shapes[s][d] else (j, n, stride))
        mapped.append(there)
    found = next((tuple(m) for m in mapped if m is not None and None not in m), None)
    for s, there in enumerate(mapped):
        place = places[s][a]
        if there is None:
            windows[s][a] = IDENTITY
        elif found is None or len(there) != len(found):
            windows[s][a] = Global(extent(place))
        else:
            windows[s][a] = _digits_window(place, [d != f for d, f in zip(there, found)])
    return None if found is None else canonical(found)


def _digits_window(place: Place, whole_digits) -> object:
    """The window along an axis whose digits are each kept or read whole."""
    if not any(whole_digits):
        return IDENTITY
    if all(whole_digits):
        return Global(extent(place))
    return Partition(tuple(n for _, n, _ in place), tuple(whole_digits))
