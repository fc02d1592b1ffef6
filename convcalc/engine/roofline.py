"""A lower bound on each layer's time: the roofline.

A layer must at least read its inputs and weights and write its output once,
and do its FLOPs. On a device with peak throughput P (FLOP/s, for the dtype)
and memory bandwidth B (bytes/s) it cannot take less than
``max(FLOPs / P, bytes / B)``; whichever term is larger says whether the layer
is compute-bound or memory-bound. A layer whose output is a view of its input
(reshape, slice, dropout at inference) moves nothing and costs nothing.

Every bound is computed exactly (FLOPs, bytes and rates as fractions) and only then
written as a float: a layer whose bound is past the largest float (1.8e308 s, for
inputs near the 2^62 size limit on many axes) keeps its limit but has seconds None,
and the network's total is then the largest float, still a true lower bound, with
``too_large`` set.

This is a bound, not a prediction: it ignores how far kernels fall short of
the peak, fusion (a fused BatchNorm and ReLU never write their output), launch
overhead and caches (data re-read from cache costs less than from memory).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction

from .devices import DEVICES, Device
from .dtypes import DTYPE_BYTES
from .errors import SpecError
from .graph import INPUT
from .memory import memo, view_layers, wiring
from .sizes import volume

__all__ = ["DEVICES", "Bound", "Device", "Roofline", "find_device", "roofline"]


@dataclass(frozen=True, slots=True)
class Bound:
    """One layer: the bytes it moves at least, its arithmetic intensity (FLOPs per
    byte; None when it moves nothing) and, on a device, its time bound and what
    limits it ("compute" or "memory"). ``seconds`` is None where the FLOPs are unknown
    or the bound is too large for a float (``exact`` then still has it)."""

    bytes: int
    intensity: Fraction | None
    seconds: float | None = None
    limit: str | None = None
    exact: Fraction | None = None  # the bound in seconds, exactly (None where the FLOPs are unknown)


@dataclass(frozen=True)
class Roofline:
    """Every layer's bound on ``device`` (None: bytes and intensity only)."""

    device: Device | None
    peak: float | None
    layers: tuple[Bound, ...]

    @property
    def exact_seconds(self) -> Fraction:
        """The sum of the layers' bounds, exactly."""
        return sum((b.exact for b in self.layers if b.exact is not None), Fraction(0))

    @property
    def too_large(self) -> bool:
        """Whether the sum of the bounds is past the largest float (``seconds`` is then that float)."""
        return _as_float(self.exact_seconds) is None

    @property
    def seconds(self) -> float:
        """The sum of the layers' bounds; the largest float where the sum is larger (still a lower bound)."""
        seconds = _as_float(self.exact_seconds)
        return sys.float_info.max if seconds is None else seconds

    @property
    def memory_share(self) -> float:
        """The share of the bound time spent in memory-bound layers."""
        total = self.exact_seconds
        memory = sum((b.exact for b in self.layers if b.limit == "memory" and b.exact is not None), Fraction(0))
        return float(memory / total) if total else 0.0


def _as_float(value: Fraction) -> float | None:
    """``value`` as a float, or None where it is past the largest one."""
    try:
        return float(value)
    except OverflowError:
        return None


def find_device(name: str) -> Device:
    """A device of the shipped table by name (any case).

    >>> find_device("A100-80GB").bandwidth
    2039000000000
    """
    device = DEVICES.get(name.lower())
    if device is None:
        raise SpecError(f"unknown device {name[:40]!r}", hint=f"use one of {', '.join(DEVICES)}, or measure, or give "
                        "--peak and --bandwidth", field="device")
    return device


def roofline(analysis, device: Device | None = None) -> Roofline:
    """Each layer's minimum bytes, intensity and, on ``device``, time bound.

    >>> from convcalc import analyse_tokens
    >>> device = Device("example", {"float32": 10**12}, 10**11)
    >>> result = roofline(analyse_tokens("64x56x56", "conv:64,k=3,p=1", "relu", "flatten"), device)
    >>> # conv: input 802,816 B + weights 147,712 B + output 802,816 B; FLOPs 2 x 115,605,504 MACs + 200,704
    >>> # bias adds; relu: 1 FLOP per element over 8 bytes moved; flatten: a view
    >>> [(b.bytes, str(b.intensity), b.limit) for b in result.layers]
    [(1753344, '903952/6849', 'compute'), (1605632, '1/8', 'memory'), (0, 'None', None)]
    """
    network = analysis.network
    peak = None
    if device is not None:
        peak = device.peak_for(network.dtype)
        if not peak:
            raise SpecError(f"{device.name} has no published peak for {network.dtype}",
                            hint=f"use --dtype {' or '.join(device.peak)}, or give --peak", field="device")
    # keyed by what the device is, not by the object: a freed device's id can come back
    key = None if device is None else (device.name, tuple(sorted(device.peak.items())), device.bandwidth)
    return memo(analysis, ("roofline", key), lambda: _bounds(analysis, device, peak))


def _bounds(analysis, device, peak) -> Roofline:
    network = analysis.network
    sources, _ = wiring(analysis)
    sizes = {r.index - 1: r.activation_bytes for r in analysis.layers}
    sizes[INPUT] = network.batch * volume(network.input_shape) * DTYPE_BYTES[network.dtype]
    views = view_layers(analysis)
    bounds = []
    for report in analysis.layers:
        i = report.index - 1
        if i in views:
            bounds.append(Bound(0, None, 0.0 if device is not None else None, None,
                                Fraction(0) if device is not None else None))
            continue
        moved = sum(sizes[s] for s in sources[i]) + report.param_bytes + report.activation_bytes
        intensity = Fraction(report.flops, moved) if moved else None
        if device is None or not report.counted:
            bounds.append(Bound(moved, intensity))
            continue
        # exact: FLOPs and bytes of inputs near the size limit are past what a float holds
        compute, memory = Fraction(report.flops) / Fraction(peak), Fraction(moved, device.bandwidth)
        exact = max(compute, memory)
        bounds.append(Bound(moved, intensity, _as_float(exact), "compute" if compute >= memory else "memory", exact))
    return Roofline(device, peak, tuple(bounds))
