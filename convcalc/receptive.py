"""Receptive fields, in exact rational arithmetic.

A layer maps each output unit ``x`` (along one axis) to a window of input
units: it depends on inputs ``centre + x*step +- span/2``. Composing windows
from the network input onwards gives, for every layer's output, the
receptive field's size, jump (effective stride), effective padding and the
centre of output unit 0, in network-input coordinates (Araujo et al., 2019):

    centre(x) = -padding + x * jump + (size - 1) / 2

Fractions keep transposed convolutions and upsampling (jumps below 1) exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Window:
    """How one output axis reads one input axis, in input units.

    ``span`` is the distance between the first and last input an output unit
    depends on; ``step`` the distance between neighbouring outputs' windows;
    ``centre`` the middle of output unit 0's window.
    """

    span: Fraction
    step: Fraction
    centre: Fraction

    @classmethod
    def sliding(cls, effective_kernel: int, stride, pad_begin: int) -> Window:
        """The window of a convolution or pooling: kernel extent, stride, begin padding.

        >>> Window.sliding(7, 2, 3)
        Window(span=Fraction(6, 1), step=Fraction(2, 1), centre=Fraction(0, 1))
        """
        span = Fraction(effective_kernel - 1)
        return cls(span, Fraction(stride), Fraction(-pad_begin) + span / 2)


IDENTITY = Window(Fraction(0), Fraction(1), Fraction(0))


@dataclass(frozen=True)
class Global:
    """An axis that stops being spatial (Flatten, Linear): every output sees it all."""

    size: int


@dataclass(frozen=True)
class ReceptiveField:
    """Per input axis: size, jump and centre of output unit 0 (jump None: global)."""

    size: tuple[Fraction, ...]
    jump: tuple[Fraction | None, ...]
    centre: tuple[Fraction, ...]

    @classmethod
    def of_input(cls, rank: int) -> ReceptiveField:
        """A network input: every unit sees itself.

        >>> ReceptiveField.of_input(2).size
        (Fraction(1, 1), Fraction(1, 1))
        """
        one, zero = Fraction(1), Fraction(0)
        return cls((one,) * rank, (one,) * rank, (zero,) * rank)

    @property
    def padding(self) -> tuple[Fraction, ...]:
        """Effective padding: how far unit 0's field reaches before input unit 0."""
        return tuple((s - 1) / 2 - c for s, c in zip(self.size, self.centre))

    def through(self, windows) -> ReceptiveField:
        """The field after a layer whose axes read the incoming ones through ``windows``.

        ``windows`` is None for a layer that keeps every position (activations),
        or one Window / Global per axis of the incoming tensor's spatial axes.
        When the tensor's axes no longer line up with the input's (after a
        Flatten), the field is already global and stays as it is.

        >>> rf = ReceptiveField.of_input(1).through([Window.sliding(3, 1, 0)])
        >>> rf = rf.through([Window.sliding(3, 1, 0)])
        >>> rf.size, rf.jump
        ((Fraction(5, 1),), (Fraction(1, 1),))
        """
        if windows is None or len(windows) != len(self.size):
            if windows is not None and any(isinstance(w, Global) for w in windows):
                return self.globalised()
            return self
        size, jump, centre = [], [], []
        for s, j, c, w in zip(self.size, self.jump, self.centre, windows):
            if j is None:
                size.append(s), jump.append(None), centre.append(c)
            elif isinstance(w, Global):
                extent = Fraction(w.size - 1)
                size.append(s + extent * j), jump.append(None), centre.append(c + j * extent / 2)
            else:
                size.append(s + w.span * j), jump.append(j * w.step), centre.append(c + j * w.centre)
        return ReceptiveField(tuple(size), tuple(jump), tuple(centre))

    def globalised(self) -> ReceptiveField:
        """Mark every axis as no longer spatial, keeping what it already sees."""
        return ReceptiveField(self.size, (None,) * len(self.size), self.centre)
