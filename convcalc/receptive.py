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

from dataclasses import dataclass
from fractions import Fraction
from math import gcd, prod

# Positions examined per axis when fields vary; the pattern repeats with the
# chain's period, so this only bounds the work for pathological stacks.
MAX_POSITIONS = 4096


@dataclass(frozen=True)
class Sliding:
    """A convolution or pooling window: kernel, stride, begin padding, dilation."""

    kernel: int
    stride: int
    pad_begin: int
    dilation: int = 1

    step = property(lambda self: Fraction(self.stride))
    period = 1

    def reads(self, o: int) -> range:
        first = o * self.stride - self.pad_begin
        return range(first, first + self.dilation * (self.kernel - 1) + 1, self.dilation)


@dataclass(frozen=True)
class Scatter:
    """A transposed convolution: output o reads input i where i*s - p + t*d = o for a tap t."""

    kernel: int
    stride: int
    padding: int
    dilation: int

    step = property(lambda self: Fraction(1, self.stride))
    period = property(lambda self: self.stride)

    def reads(self, o: int) -> list[int]:
        taps = (o + self.padding - t * self.dilation for t in range(self.kernel - 1, -1, -1))
        return [q // self.stride for q in taps if q % self.stride == 0]


@dataclass(frozen=True)
class Nearest:
    """Nearest upsampling by an integer factor: output x copies input x // f."""

    factor: int

    step = property(lambda self: Fraction(1, self.factor))
    period = property(lambda self: self.factor)

    def reads(self, o: int) -> tuple[int]:
        return (o // self.factor,)


@dataclass(frozen=True)
class Shift:
    """Zero padding (or cropping): output x is input x - begin."""

    begin: int

    step = Fraction(1)
    period = 1

    def reads(self, o: int) -> tuple[int]:
        return (o - self.begin,)


@dataclass(frozen=True)
class Adaptive:
    """Adaptive pooling from ``size`` to ``out``: bin i is [floor(i n/o), ceil((i+1) n/o))."""

    size: int
    out: int

    step = property(lambda self: Fraction(self.size, self.out))
    period = property(lambda self: self.out // gcd(self.size, self.out))

    def reads(self, o: int) -> range:
        return range((o * self.size) // self.out, -((-(o + 1) * self.size) // self.out))


@dataclass(frozen=True)
class Global:
    """An axis that stops being spatial (Flatten, Linear): every output reads all of it."""

    size: int

    step = None
    period = 1

    def reads(self, o: int) -> range:
        return range(self.size)


IDENTITY = Shift(0)


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


class _Walker:
    """Follows output units of one axis's chain of windows back to the network input."""

    def __init__(self, chain) -> None:
        self.chain = chain
        # Up to the first transposed layer every unit reads something and fields
        # move right with the unit, so following the first and last unit read
        # is exact. From there units can read nothing, and a dilation larger than
        # the stride makes fields move left, so every read is examined.
        self.first_gap = min((i + 1 for i, w in enumerate(chain) if isinstance(w, Scatter)), default=len(chain) + 1)
        self._memo: dict[tuple[int, int], tuple[int, int] | None] = {}

    def _monotone(self, level: int, lo: int, hi: int) -> tuple[int, int]:
        for depth in range(level, 0, -1):
            window = self.chain[depth - 1]
            lo, hi = window.reads(lo)[0], window.reads(hi)[-1]
        return lo, hi

    def extremes(self, unit: int, level: int | None = None) -> tuple[int, int] | None:
        """The first and last network-input positions a unit of layer ``level`` depends on."""
        level = len(self.chain) if level is None else level
        if level < self.first_gap:
            return self._monotone(level, unit, unit)
        key = (level, unit)
        if key not in self._memo:
            found = [self.extremes(r, level - 1) for r in self.chain[level - 1].reads(unit)]
            found = [f for f in found if f is not None]
            self._memo[key] = (min(f[0] for f in found), max(f[1] for f in found)) if found else None
        return self._memo[key]


def measure(chains, out_sizes) -> ReceptiveField:
    """The receptive field of a layer's output, from each input axis's chain of windows.

    ``chains[i]`` lists the windows along input axis i from the first layer
    to this one; ``out_sizes[i]`` is how many output units lie along it.

    >>> measure([[Sliding(3, 1, 0), Sliding(3, 1, 0)]], [5])
    ReceptiveField(size=(5,), jump=(Fraction(1, 1),), centre=(Fraction(2, 1),), varies=(False,))
    """
    sizes, jumps, centres, varies = [], [], [], []
    for chain, n in zip(chains, out_sizes):
        steps = [w.step for w in chain]
        jump = None if any(s is None for s in steps) else prod(steps, start=Fraction(1))
        period = prod((w.period for w in chain), start=1)
        positions = range(max(1, min(period, n, MAX_POSITIONS)))
        walker = _Walker(chain)
        fields = {x: walker.extremes(x) for x in positions}
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
