"""Receptive fields, exact, in network-input coordinates.

Each layer tells, per spatial axis, which input units an output unit reads
(``reads``). Following the first and the last unit read, layer by layer back
to the network input, gives every output unit's exact field (a transposed
convolution can leave units that read nothing: those are skipped). From them:

- ``size``: the largest field over the output positions;
- ``varies``: true where fields are not uniform, differing in size or not
  evenly placed (transposed convolution, upsampling, adaptive pooling);
- ``jump``: the distance between neighbouring units' fields, on average
  (the product of the layers' steps; a fraction after upsampling);
- ``centre``: the centre of output unit 0's field;
- ``padding``: how far that field reaches before input unit 0, so that
  ``centre(x) = -padding + x * jump + (size - 1) / 2`` (Araujo et al., 2019),
  exactly where fields are uniform and on average elsewhere.

Input coordinates are not clipped at the borders: padding counts as
positions, as in the receptive-field literature.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction
from math import gcd, prod

from .errors import ResourceError
from .windows import (
    MAX_POSITIONS,
    Broadcast,
    Cyclic,
    Global,
    Nearest,
    Partition,
    Scatter,
    Shift,
    Sliding,
    Unread,
    extremes,
)

# Windows that repeat on all of the integers, not only on their layer's units.
_LATTICE = (Sliding, Scatter, Shift, Nearest, Global, Broadcast)


@dataclass(frozen=True)
class ReceptiveField:
    """Per network-input axis: largest size, jump (None once global), centre of unit 0."""

    size: tuple[int, ...]
    jump: tuple[Fraction | None, ...]
    centre: tuple[Fraction, ...]
    varies: tuple[bool, ...] = ()

    @property
    def padding(self) -> tuple[Fraction, ...]:
        """Effective padding: how far unit 0's field reaches before input unit 0."""
        return tuple(Fraction(s - 1, 2) - c for s, c in zip(self.size, self.centre))


# Positions examined for one unit after a transposed convolution, where fields can have gaps, and
# for all of a network's receptive fields: past these the analysis is refused, never slow.
MAX_READS = 1_000_000
MAX_WORK = 5_000_000


class FieldGraph:
    """The receptive windows of every node of a network, per network-input axis.

    Node 0 is the network input. Each added node reads one or more earlier
    nodes through a window per axis (None: position for position, as
    activations and merges do). ``measure`` follows an output unit's first and
    last dependencies back to the input; several sources (add, concat) unite
    their fields, so the result covers every path.

    >>> graph = FieldGraph(1)
    >>> a = graph.add((0,), (Sliding(3, 1, 0),))
    >>> b = graph.add((a,), (Sliding(3, 1, 0),))
    >>> graph.measure(b, (5,)).size
    (5,)
    """

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.sources: list[tuple[int, ...]] = [()]
        # per node, one entry per source: a window per axis, or None (position for position)
        self.windows: list[tuple[tuple | None, ...]] = [()]
        # Until a transposed layer, a roll or a fixed tensor, every unit reads something and fields move
        # right with the unit, so the first and last unit read are enough.
        # After a transposed layer, units can read nothing, and a dilation larger than the
        # stride makes fields move left; after a roll, the field of the unit past the wrap
        # lies back at the start; after attention over a grid (a digit read whole above a kept
        # one), neighbouring units read interleaved positions: so every read is examined.
        self.monotone: list[bool] = [True]
        self.periods: list[int] = [1]
        self.jumps: list[tuple[Fraction | None, ...]] = [(Fraction(1),) * rank]
        # Where every window on the way has an integer step (convolutions,
        # pooling, padding), a unit's first and last dependency are affine in
        # the unit: (step, first of unit 0, last of unit 0) per axis, O(1) to use.
        self.affine: list[tuple[tuple[int, int, int] | None, ...]] = [((1, 0, 0),) * rank]
        # Where every window on the way repeats on all of the integers (not only on its layer's
        # units) and the period is exact, a unit's field is its residue's, moved by whole periods:
        # bounds(u + P) = bounds(u) + P * jump. Then a node has at most P fields to find per axis,
        # and a long read of it needs only the first and last read of each residue.
        self.lattice: list[bool] = [True]
        self._memo: dict = {}
        self._work = 0  # positions examined after transposed layers, against MAX_WORK

    def add(self, sources: tuple[int, ...], windows) -> int:
        """Add a node reading ``sources`` through ``windows``; returns its id.

        ``windows`` is one window per axis for every source, None (position for
        position), or a list with one such entry per source (broadcasting merges).
        """
        per_source = list(windows) if isinstance(windows, list) else [windows] * len(sources)
        per_source = [None if w is None or len(w) != self.rank else tuple(w) for w in per_source]
        node = len(self.sources)
        self.sources.append(tuple(sources))
        self.windows.append(tuple(per_source))
        own = [w for ws in per_source if ws is not None for w in ws]
        self.monotone.append(all(self.monotone[s] for s in sources) and not any(
            isinstance(w, (Scatter, Cyclic, Unread)) or (isinstance(w, Partition) and not w.monotone) for w in own))
        period = 1
        for s, ws in zip(sources, per_source):
            p = self.periods[s] * (prod(w.period for w in ws) if ws is not None else 1)
            period = period * p // gcd(period, p)
        self.periods.append(min(period, MAX_POSITIONS))
        self.lattice.append(period < MAX_POSITIONS and all(self.lattice[s] for s in sources)
                            and all(isinstance(w, _LATTICE) for w in own))
        self.affine.append(tuple(self._affine(sources, per_source, axis) for axis in range(self.rank)))
        self.jumps.append(tuple(self._jump(sources, per_source, axis) for axis in range(self.rank)))
        # Fields move by whole periods only if every source's move with them: a source read whole or at
        # unit 0 (attention's keys, a broadcast gate) stays put while the others move on.
        # (A single source moves as its node does by construction of the node's jump.)
        self.lattice[node] = self.lattice[node] and (len(sources) < 2 or all(
            self._rate(s, ws, axis) == (self.jumps[node][axis] or 0)
            for s, ws in zip(sources, per_source) for axis in range(self.rank)))
        return node

    def _rate(self, source: int, windows, axis: int) -> Fraction:
        """How far a source's fields move per unit of the node, through its window (0: they stay)."""
        window = None if windows is None else windows[axis]
        jump = self.jumps[source][axis]
        if isinstance(window, Broadcast) or jump is None or (window is not None and window.step is None):
            return Fraction(0)
        return jump * (window.step if window is not None else 1)

    def _jump(self, sources, per_source, axis: int) -> Fraction | None:
        """The jump along ``axis``: the first source not broadcast there sets it."""
        for s, ws in zip(sources, per_source):
            window = None if ws is None else ws[axis]
            if isinstance(window, Broadcast):
                continue
            jump = self.jumps[s][axis]
            if jump is None or (window is not None and window.step is None):
                return None
            return jump * (window.step if window is not None else 1)
        return None

    def _affine(self, sources, per_source, axis: int):
        forms = []
        for s, ws in zip(sources, per_source):
            form = self.affine[s][axis]
            if form is None:
                return None
            forms.append(_affine_through(form, None if ws is None else ws[axis]))
        if any(f is None for f in forms) or len({f[0] for f in forms}) > 1:
            return None  # a window without the form, or branches that move at different rates
        return forms[0][0], min(f[1] for f in forms), max(f[2] for f in forms)

    def _bounds(self, node: int, unit: int, axis: int) -> tuple[int, int] | None:
        """The first and last network-input positions ``unit`` of ``node`` depends on."""
        form = self.affine[node][axis]
        if form is not None:
            step, lo, hi = form
            return step * unit + lo, step * unit + hi
        if self.lattice[node] and not 0 <= unit < self.periods[node]:
            period = self.periods[node]
            turns, residue = divmod(unit, period)
            found = self._bounds(node, residue, axis)
            jump = self.jumps[node][axis]
            shift = 0 if jump is None else int(turns * period * jump)
            return None if found is None else (found[0] + shift, found[1] + shift)
        key = (node, unit, axis)
        if key in self._memo:
            return self._memo[key]
        lows, highs = [], []
        for source, windows in zip(self.sources[node], self.windows[node]):
            if windows is None:
                ends = (unit, unit)
            else:
                ends = extremes(windows[axis], unit)
            if ends is None:
                continue
            if self.monotone[source]:
                # every unit of the source reads something and fields move right with the unit: the
                # first and last unit read bound the field, however many there are
                low, high = self._bounds(source, ends[0], axis), self._bounds(source, ends[1], axis)
                lows.append(low[0]), highs.append(high[1])
            else:
                reads = (unit,) if windows is None else windows[axis].reads(unit)
                if self.lattice[source] and isinstance(reads, range):
                    if reads.step == 1 and len(reads) >= self.periods[source]:
                        found = self._run_bounds(source, reads, axis)  # O(1), whatever the kernel
                        if found is not None:
                            lows.append(found[0]), highs.append(found[1])
                        continue
                    reads = _first_and_last_of_each_residue(reads, self.periods[source])
                self._work += len(reads)
                if len(reads) > MAX_READS or self._work > MAX_WORK:
                    raise ResourceError(
                        f"the receptive fields after a transposed convolution or a roll would examine more than "
                        f"{min(MAX_READS, MAX_WORK) if len(reads) > MAX_READS else MAX_WORK:,} positions",
                        hint="use smaller kernels or dilations after the transposed convolution or roll",
                        field="kernel_size")
                for r in reads:
                    found = self._bounds(source, r, axis)
                    if found is not None:
                        lows.append(found[0]), highs.append(found[1])
        result = (min(lows), max(highs)) if lows else None
        self._memo[key] = result
        return result

    def _run_bounds(self, source: int, reads: range, axis: int) -> tuple[int, int] | None:
        """The hull of the fields of a run of consecutive units of a periodic source, at least a
        period long: its first period holds each residue's first unit, its last period each one's last."""
        period = self.periods[source]
        low_before, low_from, high_upto, high_after = self._tables(source, axis)
        jump = self.jumps[source][axis]
        shift = 0 if jump is None else int(period * jump)
        turns, start = divmod(reads[0], period)
        lows = [v + turns * shift for v in (low_from[start],) if v is not None]
        lows += [v + (turns + 1) * shift for v in (low_before[start],) if v is not None]
        turns, end = divmod(reads[-1], period)
        highs = [v + turns * shift for v in (high_upto[end],) if v is not None]
        highs += [v + (turns - 1) * shift for v in (high_after[end],) if v is not None]
        return (min(lows), max(highs)) if lows else None

    def _tables(self, source: int, axis: int):
        """For a periodic source, over the units of one period: the least first position among units
        before c and from c on, and the greatest last position up to c and after c (None: none reads)."""
        key = ("tables", source, axis)
        if key not in self._memo:
            period = self.periods[source]
            fields = [self._bounds(source, c, axis) for c in range(period)]
            self._work += period

            def scan(values, pick, reverse=False):
                out, best = [None] * (period + 1), None
                order = range(period - 1, -1, -1) if reverse else range(period)
                for c in order:
                    v = values[c]
                    best = v if best is None else best if v is None else pick(best, v)
                    out[c if reverse else c + 1] = best
                return out

            lows = [None if f is None else f[0] for f in fields]
            highs = [None if f is None else f[1] for f in fields]
            before = scan(lows, min)  # before[c]: units 0..c-1
            from_ = scan(lows, min, reverse=True)  # from_[c]: units c..P-1
            upto = scan(highs, max)  # upto[c + 1]: units 0..c
            after = scan(highs, max, reverse=True)  # after[c]: units c..P-1
            self._memo[key] = (before, from_, [upto[c + 1] for c in range(period)],
                               [after[c + 1] if c + 1 < period else None for c in range(period)])
        return self._memo[key]

    def bounds(self, node: int, unit: int, axis: int) -> tuple[int, int] | None:
        """The first and last network-input positions ``unit`` of ``node`` reads along ``axis``."""
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4 * len(self.sources) + 1000))
        try:
            return self._bounds(node, unit, axis)
        finally:
            sys.setrecursionlimit(limit)

    def measure(self, node: int, out_sizes) -> ReceptiveField:
        """The receptive field of ``node``'s output, with ``out_sizes`` units along each axis."""
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4 * len(self.sources) + 1000))  # one frame per layer on a path
        try:
            return self._measure(node, out_sizes)
        finally:
            sys.setrecursionlimit(limit)

    def _measure(self, node: int, out_sizes) -> ReceptiveField:
        sizes, jumps, centres, varies = [], [], [], []
        for axis, (jump, n) in enumerate(zip(self.jumps[node], out_sizes)):
            positions = range(max(1, min(self.periods[node], n, MAX_POSITIONS)))
            fields = {x: self._bounds(node, x, axis) for x in positions}
            found = {x: hull for x, hull in fields.items() if hull is not None}  # None: reads nothing (gaps)
            if not found:
                sizes.append(0), jumps.append(jump), centres.append(Fraction(0)), varies.append(True)
                continue
            x, (lo, hi) = next(iter(found.items()))
            centre = Fraction(lo + hi, 2)
            if x and jump is not None:
                centre -= x * jump  # unit 0 reads nothing: extrapolate from the first that does
            extents = {hi - lo + 1 for lo, hi in found.values()}
            # Uniform: every unit reads a field of one size, placed at centre + x * jump.
            placed = jump is None or all(Fraction(lo + hi, 2) == centre + x * jump for x, (lo, hi) in found.items())
            sizes.append(max(extents))
            jumps.append(jump)
            centres.append(centre)
            varies.append(len(extents) > 1 or len(found) < len(fields) or not placed)
        return ReceptiveField(tuple(sizes), tuple(jumps), tuple(centres), tuple(varies))


def _first_and_last_of_each_residue(reads: range, period: int):
    """The reads that bound a periodic source's fields over ``reads``: of each residue modulo the
    period, the first and the last (fields move right by whole periods, so they are the extremes)."""
    cycle = period // gcd(abs(reads.step), period)  # reads' residues repeat after this many
    if len(reads) <= 2 * cycle:
        return reads
    return list(reads[:cycle]) + list(reads[-cycle:])


def _affine_through(form: tuple[int, int, int], window) -> tuple[int, int, int] | None:
    """A source's affine form (step, first, last of unit 0) seen through ``window``, or None."""
    step, lo, hi = form
    if window is None:
        return step, lo, hi
    if isinstance(window, Shift):
        return step, lo - step * window.begin, hi - step * window.begin
    if isinstance(window, Sliding):
        first = -window.pad_begin
        last = first + window.dilation * (window.kernel - 1)
        return step * window.stride, step * first + lo, step * last + hi
    if isinstance(window, Global):
        return 0, lo, step * (window.size - 1) + hi
    if isinstance(window, Broadcast):
        return 0, lo, hi
    return None
