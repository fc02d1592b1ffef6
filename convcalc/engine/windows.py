"""Receptive windows: how each output unit of a layer reads the units of its input, along one axis.

Every window has ``reads(o)`` (the input units output unit ``o`` reads, in
order), ``step`` (input units per output unit, None once an axis is global)
and ``period`` (after how many outputs the pattern repeats).
"""

from __future__ import annotations

import struct
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


def extremes(window, o: int) -> tuple[int, int] | None:
    """The first and last input unit ``window``'s output ``o`` reads (None if none), without listing them."""
    if isinstance(window, (Scatter, Partition)):
        return window.extremes(o)
    if isinstance(window, Sliding):
        first = o * window.stride - window.pad_begin
        return first, first + window.dilation * (window.kernel - 1)
    if isinstance(window, Global):
        return (0, window.size - 1) if window.size else None
    reads = window.reads(o)
    return (reads[0], reads[-1]) if len(reads) else None


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

    def extremes(self, o: int) -> tuple[int, int] | None:
        """The first and last input unit output ``o`` reads, in O(1) whatever the kernel: the taps t
        with t*d = o + p (mod s) form one residue class, whose smallest and largest members give them."""
        q, s, d, k = o + self.padding, self.stride, self.dilation, self.kernel
        g = gcd(d, s)
        if (q % s) % g:
            return None
        step = s // g
        first_tap = ((q % s) // g) * pow(d // g, -1, step) % step if step > 1 else 0
        if first_tap >= k:
            return None
        last_tap = first_tap + (k - 1 - first_tap) // step * step
        return (q - last_tap * d) // s, (q - first_tap * d) // s


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
class Cyclic:
    """``torch.roll`` along an axis of ``size``: output x is input (x - shift) mod size."""

    size: int
    shift: int

    step = Fraction(1)
    period = property(lambda self: self.size)

    def reads(self, o: int) -> tuple[int]:
        return ((o - self.shift) % self.size,)


@dataclass(frozen=True)
class Partition:
    """An axis split into digits (a window partition: Swin's rows are a window's row and the row
    within it), of which an attention reads some whole: output x reads the positions whose other
    digits equal x's. Attention within windows of 7 is ``Partition((8, 7), (False, True))``."""

    sizes: tuple[int, ...]  # the digits' sizes, most significant first
    whole: tuple[bool, ...]  # read whole, per digit

    step = Fraction(1)
    period = property(lambda self: prod(self.sizes))

    @property
    def monotone(self) -> bool:
        """Whether fields move right with the unit: where the digits read whole are the least
        significant (windows of consecutive positions), not where a more significant one is (a grid)."""
        first = self.whole.index(True) if True in self.whole else len(self.whole)
        return all(self.whole[first:])

    def _digits(self, o: int) -> list[int]:
        digits = []
        for size in reversed(self.sizes):
            o, digit = divmod(o, size)
            digits.append(digit)
        return digits[::-1]

    def _position(self, digits) -> int:
        position = 0
        for size, digit in zip(self.sizes, digits):
            position = position * size + digit
        return position

    def reads(self, o: int) -> list[int]:
        kept = self._digits(self._inside(o))
        found = [0]
        for size, digit, whole in zip(self.sizes, kept, self.whole):
            found = [p * size + d for p in found for d in (range(size) if whole else (digit,))]
        return found

    def extremes(self, o: int) -> tuple[int, int]:
        kept = self._digits(self._inside(o))
        first = self._position(0 if whole else d for d, whole in zip(kept, self.whole))
        last = self._position(size - 1 if whole else d for d, size, whole in zip(kept, self.sizes, self.whole))
        return first, last

    def _inside(self, o: int) -> int:
        # Beyond the axis (a later layer's padding), a position reads what the unit at the edge reads:
        # attention does not continue past its tokens, and this keeps fields within the axis, as Global's.
        return min(max(o, 0), self.period - 1)


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


@dataclass(frozen=True)
class Unread:
    """A tensor computed without the input (a buffer, a table of coordinates): its units read no
    input position, so what follows it, up to where it joins the input's path, has empty fields."""

    step = None
    period = 1

    def reads(self, o: int) -> tuple[()]:
        return ()


@dataclass(frozen=True)
class Broadcast:
    """A source axis of size 1 (or missing) stretched by broadcasting: every output reads its unit 0."""

    step = None
    period = 1

    def reads(self, o: int) -> tuple[int]:
        return (0,)


@dataclass(frozen=True)
class Resample:
    """Interpolation from ``size`` to ``out`` units (``torch.nn.functional.interpolate``).

    ``reads`` follows ATen's CPU kernels index for index, in float32 as they
    compute: nearest reads one unit, linear modes two (the second clamped to the
    border), cubic four (clamped). ``scale`` is the scale_factor when one was
    given and not recomputed (ATen then uses 1/scale_factor), else None.
    """

    size: int
    out: int
    mode: str
    align_corners: bool = False
    scale: float | None = None

    step = property(lambda self: Fraction(self.size, self.out))
    period = property(lambda self: min(self.out, MAX_POSITIONS))

    def _ratio(self) -> float:
        if self.align_corners and self.mode not in ("nearest", "nearest-exact"):
            return _f32((self.size - 1) / (self.out - 1)) if self.out > 1 else 0.0
        if self.scale is not None and self.scale > 0:
            return _f32(1.0 / self.scale)
        return _f32(self.size / self.out)

    def reads(self, o: int) -> tuple[int, ...]:
        n = self.size
        # Beyond the output (padding of a later layer), extrapolate without ATen's border clamps,
        # as padded positions count as positions.
        inside = 0 <= o < self.out
        if self.mode in ("nearest", "nearest-exact"):
            position = _f32(o * self._ratio()) if self.mode == "nearest" else _f32(_f32(o + 0.5) * self._ratio())
            index = int(position // 1)
            return (min(index, n - 1) if inside else index,)
        if self.out == n and inside and self.mode != "bicubic":  # ATen copies a same-size input as it is
            return (o,)
        ratio = self._ratio()
        cubic = self.mode == "bicubic"
        if self.align_corners:
            real = _f32(ratio * o)
        else:
            real = _f32(ratio * (o + 0.5) - 0.5)  # one rounding: ATen's kernels compile to a fused multiply-add
            if not cubic and real < 0 and inside:
                real = 0.0
        first = int(real // 1)
        if cubic:
            taps = (first - 1, first, first + 1, first + 2)
            return tuple(sorted({min(max(t, 0), n - 1) for t in taps})) if inside else taps
        return (first, first + 1) if first < n - 1 or not inside else (first,)


@dataclass(frozen=True)
class OnnxResample:
    """ONNX's Resize from ``size`` to ``out`` units, as onnxruntime computes it in float32:
    ``coordinate`` is the coordinate_transformation_mode, ``scale`` the scale (out/in when
    sizes are given), ``rounding`` the nearest_mode."""

    size: int
    out: int
    mode: str  # nearest, linear, cubic
    coordinate: str = "half_pixel"
    scale: float = 1.0
    rounding: str = "round_prefer_floor"

    step = property(lambda self: Fraction(self.size, self.out))
    period = property(lambda self: min(self.out, MAX_POSITIONS))

    def _original(self, o: int) -> float:
        n, out, scale = self.size, self.out, _f32(self.scale)
        if self.coordinate == "align_corners":
            return _f32(o * _f32((n - 1) / (out - 1))) if out > 1 else 0.0
        if self.coordinate == "asymmetric":
            return _f32(o / scale)
        if self.coordinate == "tf_half_pixel_for_nn":
            return _f32((o + 0.5) / scale)
        if self.coordinate == "pytorch_half_pixel" and out == 1:
            return 0.0
        return _f32(_f32((o + 0.5) / scale) - 0.5)  # half_pixel

    def reads(self, o: int) -> tuple[int, ...]:
        n, inside = self.size, 0 <= o < self.out
        x = self._original(o)
        if self.mode == "nearest":
            low = x // 1
            if self.rounding == "floor":
                index = low
            elif self.rounding == "ceil":
                index = -((-x) // 1)
            elif x - low == 0.5:
                index = low if self.rounding == "round_prefer_floor" else low + 1
            else:
                index = (x + 0.5) // 1
            index = int(index)
            return (min(max(index, 0), n - 1) if inside else index,)
        if inside:
            x = min(max(x, 0.0), n - 1.0) if self.mode == "linear" else x
        first = int(x // 1)
        if self.mode == "cubic":
            taps = (first - 1, first, first + 1, first + 2)
            return tuple(sorted({min(max(t, 0), n - 1) for t in taps})) if inside else taps
        return (first, first + 1) if first < n - 1 or not inside else (first,)


def _f32(value: float) -> float:
    """``value`` rounded to float32, as ATen's kernels compute indices for float32 tensors."""
    return struct.unpack("f", struct.pack("f", value))[0]


IDENTITY = Shift(0)
