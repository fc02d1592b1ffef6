"""A lower bound on each layer's time: the roofline (docs/time-bound.md has the whole model).

A layer must at least move some bytes and do some FLOPs; on a device with peak P
(FLOP/s, for its dtype and the units it runs on) and bandwidth B (bytes/s) it takes at
least ``max(FLOPs / P, bytes / B)``, and the larger term says whether it is compute- or
memory-bound. The bytes are the fewest it can move: its output, its weights and each
input tensor once (``x + x`` reads x once), no more than the storage an input is a view
of, only the positions a strided window or crop reads; a view moves nothing. Attention
moves its query, key, value, mask and output but not the L x S scores (the fused kernels
never store them; the math backend does, and moves more), and its FLOPs are the two
products over the scores it must compute (a causal kernel skips the masked blocks): a
bound for every backend. An ``Opaque`` layer's bytes and FLOPs are unknown: marked
(``known`` False, no seconds), never guessed.

On a GPU with TensorFloat-32 (Ampere and later) a float32 layer's peak follows PyTorch's
defaults: convolutions and RNNs run through cuDNN with TF32 allowed
(``torch.backends.cudnn.allow_tf32``, True), matrix products and linear layers through
cuBLAS without it (``torch.backends.cuda.matmul.allow_tf32``, False; ``tf32_matmul=True``
when a program turns it on). Attention's memory-efficient kernel multiplies float32 as
three TF32 products whatever the switch says (CUTLASS's ``OpMultiplyAddFastF32``), so its
peak is the larger of FP32 and a third of TF32. Other layers get FP32; other dtypes their own.

Every bound is computed exactly (fractions) and only then written as a float: a bound
past the largest float has seconds None, and the network's total is then the largest
float, still a lower bound, with ``too_large`` set. It is a bound, not a prediction: it
ignores how far kernels fall short of the peak, fusion, launch overhead and caches.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from fractions import Fraction

from . import layers as kinds
from . import windows
from .devices import DEVICES, Device
from .dtypes import DTYPE_BYTES
from .errors import SpecError
from .graph import INPUT
from .memory import _storages, memo, view_layers, wiring
from .sizes import volume

__all__ = ["DEVICES", "Bound", "Device", "Roofline", "find_device", "peak_of", "roofline"]

CUDNN = (kinds.Conv, kinds.ConvTranspose, kinds.Recurrent)  # float32 on TF32 tensor cores by PyTorch's default
CUBLAS = (kinds.Linear, kinds.MatMul, kinds.Einsum)  # float32 on TF32 only when asked (tf32_matmul)
# attention's fused kernels multiply float32 on tensor cores (3 TF32 products each) whatever is asked;
# MultiheadAttention's projections may run at FP32, so a bound at attention's rate stays a lower bound
ATTENTION = (kinds.ScaledDotProductAttention, kinds.MultiheadAttention)
# windows that may skip input positions
WINDOWED = (kinds.Conv, kinds.ConvTranspose, kinds.MaxPool, kinds.AvgPool, kinds.ZeroPad, kinds.Pad, kinds.Upsample,
            kinds.Resize)
MAX_OUTPUTS = 1 << 16  # reads examined one by one along one axis, where no closed form counts them
FAMILIES = {"cudnn": "convolutions and recurrent layers", "cublas": "linear layers and matrix products",
            "attention": "attention", "other": "other layers"}


@dataclass(frozen=True, slots=True)
class Bound:
    """One layer: the bytes it moves at least, its arithmetic intensity (FLOPs per
    byte; None when it moves nothing or its FLOPs are unknown) and, on a device, its
    time bound and what limits it ("compute" or "memory"). ``seconds`` is None where
    the FLOPs are unknown or the bound is too large for a float (``exact`` then still
    has it).

    ``flops`` are the FLOPs the bound counts (the layer's, but for attention: the
    products a kernel must do); ``peak`` the FLOP/s it divides them by and
    ``precision`` which rate that is ("float32": CUDA cores, "tf32": TF32 tensor
    cores, "3xtf32": a third of them, or the dtype); ``known`` is False where
    convcalc does not know what the layer moves (``bytes`` is then the part it knows,
    maybe 0: still a lower bound)."""

    bytes: int
    intensity: Fraction | None
    seconds: float | None = None
    limit: str | None = None
    exact: Fraction | None = None  # the bound in seconds, exactly (None where the FLOPs are unknown)
    flops: int | None = None
    peak: Fraction | None = None
    precision: str | None = None
    known: bool = True


@dataclass(frozen=True)
class Roofline:
    """Every layer's bound on ``device`` (None: bytes and intensity only). ``peak`` is the
    device's peak for the network's dtype; each layer's own is in its bound, and
    ``notes`` say which layers got which and why."""

    device: Device | None
    peak: float | None
    layers: tuple[Bound, ...]
    tf32_matmul: bool = False
    notes: tuple[str, ...] = ()

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


def roofline(analysis, device: Device | None = None, *, tf32_matmul: bool = False) -> Roofline:
    """Each layer's minimum bytes, intensity and, on ``device``, time bound.

    ``tf32_matmul``: float32 matrix products, linear layers and attention run on TF32
    tensor cores (``torch.backends.cuda.matmul.allow_tf32 = True``, or
    ``torch.set_float32_matmul_precision("high")``); PyTorch's default is False. A device
    whose ``tf32_matmul`` is set says the same for every bound on it.

    >>> from convcalc import analyse_tokens
    >>> device = Device("example", {"float32": 10**12}, 10**11)
    >>> result = roofline(analyse_tokens("64x56x56", "conv:64,k=3,p=1", "relu", "flatten"), device)
    >>> # conv: input 802,816 B + weights 147,712 B + output 802,816 B; FLOPs 2 x 115,605,504 MACs + 200,704
    >>> # bias adds; relu: 1 FLOP per element over 8 bytes moved; flatten: a view
    >>> [(b.bytes, str(b.intensity), b.limit) for b in result.layers]
    [(1753344, '903952/6849', 'compute'), (1605632, '1/8', 'memory'), (0, 'None', None)]
    """
    network = analysis.network
    tf32_matmul = bool(tf32_matmul or (device is not None and device.tf32_matmul))
    peak = None
    if device is not None:
        peak = device.peak_for(network.dtype)
        if not peak:
            raise SpecError(f"{device.name} has no published peak for {network.dtype}",
                            hint=f"use --dtype {' or '.join(device.dtypes)}, or give --peak", field="device")
    # keyed by what the device is, not by the object: a freed device's id can come back
    key = None if device is None else (device.name, tuple(sorted(device.peak.items())), device.bandwidth)
    return memo(analysis, ("roofline", key, tf32_matmul), lambda: _bounds(analysis, device, peak, tf32_matmul))


def peak_of(layer, dtype: str, device: Device, tf32_matmul: bool = False) -> tuple[Fraction, str]:
    """The FLOP/s a layer's bound divides by on ``device``, and which rate it is.

    >>> a100 = DEVICES["a100-80gb"]
    >>> from convcalc.engine.layers import Conv, Linear, ScaledDotProductAttention
    >>> for layer in (Conv(8, 3), Linear(8), ScaledDotProductAttention()):
    ...     rate, precision = peak_of(layer, "float32", a100)
    ...     print(f"{type(layer).__name__}: {rate / 10**12} TFLOP/s, {precision}")
    Conv: 156 TFLOP/s, tf32
    Linear: 39/2 TFLOP/s, float32
    ScaledDotProductAttention: 52 TFLOP/s, 3xtf32
    """
    base, tf32 = Fraction(device.peak_for(dtype) or 0), device.tf32
    if dtype != "float32" or not tf32:
        return base, dtype
    if isinstance(layer, CUDNN) or (tf32_matmul and isinstance(layer, (*CUBLAS, *ATTENTION))):
        return max(Fraction(tf32), base), "tf32"
    if isinstance(layer, ATTENTION) and Fraction(tf32, 3) > base:
        return Fraction(tf32, 3), "3xtf32"
    return base, "float32"


def _bounds(analysis, device, peak, tf32_matmul) -> Roofline:
    network = analysis.network
    sources, _ = wiring(analysis)
    storage, stored = _storages(analysis, training=False)
    itemsize = DTYPE_BYTES[network.dtype]
    sizes = {r.index - 1: r.activation_bytes for r in analysis.layers}
    sizes[INPUT] = network.batch * volume(network.input_shape) * itemsize
    shapes = {r.index - 1: r.output_shape for r in analysis.layers}
    shapes[INPUT] = tuple(network.input_shape)
    views = view_layers(analysis)
    bounds, used = [], {}
    for report in analysis.layers:
        i = report.index - 1
        layer = network.layers[i]
        if i in views:
            bounds.append(Bound(0, None, 0.0 if device is not None else None, None,
                                Fraction(0) if device is not None else None, 0))
            continue
        if isinstance(layer, kinds.Opaque) or not report.counted:
            bounds.append(Bound(0, None, known=False))
            continue
        reads, known = [], True
        batch = 1 if layer.once else network.batch  # run once per pass
        for k, s in enumerate(sources[i]):
            nbytes = _read(layer, k, [shapes[t] for t in sources[i]], sizes[s], batch, itemsize)
            known = known and nbytes is not None
            reads.append((s, nbytes or 0))
        moved = _inputs(reads, storage, stored) + report.param_bytes + report.activation_bytes + _fixed_mask(layer)
        flops = _attention_flops(layer, [shapes[t] for t in sources[i]], report.output_shape, batch) \
            if isinstance(layer, kinds.ScaledDotProductAttention) else report.flops
        intensity = Fraction(flops, moved) if moved else None
        if device is None:
            bounds.append(Bound(moved, intensity, flops=flops, known=known))
            continue
        rate, precision = peak_of(layer, network.dtype, device, tf32_matmul)
        used.setdefault((_family(layer), precision, rate), []).append(report.index)
        # exact: FLOPs and bytes of inputs near the size limit are past what a float holds
        compute, memory = Fraction(flops) / rate, Fraction(moved, device.bandwidth)
        exact = max(compute, memory)
        bounds.append(Bound(moved, intensity, _as_float(exact), "compute" if compute >= memory else "memory", exact,
                            flops, rate, precision, known))
    notes = _notes(analysis, device, used, tf32_matmul, bounds) if device is not None else ()
    return Roofline(device, peak, tuple(bounds), tf32_matmul, notes)


def _inputs(reads, storage, stored) -> int:
    """Bytes read from the inputs: each tensor once, and from one storage no more than it holds."""
    once: dict = {}
    for s, nbytes in reads:  # a tensor read twice is read once from memory
        once[s] = max(once.get(s, 0), nbytes)
    per_storage: dict = {}
    for s, nbytes in once.items():
        per_storage.setdefault(storage[s], []).append(nbytes)
    return sum(min(sum(parts), stored[where]) for where, parts in per_storage.items())


def _fixed_mask(layer) -> int:
    """Bytes of an attention mask that is no branch and not gathered from a table (which is counted as
    parameters): read once, one byte an element (a boolean mask's size, the least any mask can be)."""
    if isinstance(layer, kinds.ScaledDotProductAttention) and layer.mask_shape is not None and not layer.mask_table:
        return volume(layer.mask_shape)
    return 0


def _read(layer, k: int, shapes, whole: int, batch: int, itemsize: int) -> int | None:
    """Bytes of input ``k`` the layer must read (None: unknown; ``whole``: all of it)."""
    if isinstance(layer, kinds.ScaledDotProductAttention) and layer.is_causal and k in (1, 2):
        length, source = shapes[0][-2], shapes[1][-2]
        return whole * min(length, source) // source if source else whole  # rows past min(L, S) are masked out
    if not isinstance(layer, WINDOWED) or len(shapes) != 1:
        return whole
    shape = shapes[0]
    figures = kinds.figures_of(layer, (shape,))
    if figures.windows is None:
        return whole
    if len(figures.windows) != len(shape) - 1:
        return None
    count = shape[0]
    for window, size, out in zip(figures.windows, shape[1:], figures.output_shape[1:]):
        covered = _covered(window, size, out)
        if covered is None:
            return None
        count *= covered
    return batch * count * itemsize


def _covered(window, size: int, out: int) -> int | None:
    """How many of an axis's ``size`` input positions its ``out`` outputs read (None: too many to examine)."""
    if isinstance(window, (windows.Global, windows.Adaptive, windows.Cyclic)):
        return size
    if isinstance(window, windows.Broadcast):
        return min(size, 1)
    if isinstance(window, windows.Shift):  # output o reads o - begin
        return max(0, min(size, out - window.begin) - max(0, -window.begin))
    if isinstance(window, windows.Nearest):  # output o reads o // factor
        return min(size, -(-out // window.factor))
    if isinstance(window, windows.Sliding) and window.dilation == 1:
        return _sliding(window.kernel, window.stride, window.pad_begin, size, out)
    if isinstance(window, windows.Scatter):
        return _scatter(window, size, out)
    read, work = set(), 0
    for o in range(out):
        taps = window.reads(o)
        work += len(taps) + 1
        if work > MAX_OUTPUTS:  # too long to list: unknown, rather than slow
            return None
        read.update(r for r in taps if 0 <= r < size)
    return len(read)


def _sliding(kernel: int, stride: int, pad: int, size: int, out: int) -> int | None:
    """Positions of [0, size) that windows [o*stride - pad, + kernel) for o < out cover."""
    if out <= 0 or size <= 0:
        return 0
    if kernel >= stride:  # the windows overlap or touch: one run of positions
        return max(0, min(size, (out - 1) * stride - pad + kernel) - max(0, -pad))
    # apart: every window inside [0, size) reads kernel positions; only those at the edges are cut
    first, last = -(-pad // stride), (size - kernel + pad) // stride  # the windows wholly inside
    start = min(out, max(0, first))
    stop = max(start, min(out, last + 1))
    edges = [*range(start), *range(stop, out)] if start + out - stop <= MAX_OUTPUTS else None
    if edges is None:
        return None
    cut = sum(max(0, min(size, o * stride - pad + kernel) - max(0, o * stride - pad)) for o in edges)
    return (stop - start) * kernel + cut


def _scatter(window, size: int, out: int) -> int | None:
    """Inputs of [0, size) a transposed convolution's taps i*s - p + t*d (t < k) bring into [0, out)."""
    s, p, d, k = window.stride, window.padding, window.dilation, window.kernel
    first = -(-p // s)  # from here on an input's first tap i*s - p is at 0 or after
    inner = max(0, min(size, -(-(out + p) // s)) - max(0, first))  # first tap inside [0, out): read
    edge = range(min(size, max(0, first)))
    if len(edge) > MAX_OUTPUTS:
        return None

    def reaches(i: int) -> bool:  # its first tap at or after 0 (low < 0 here) exists and is inside [0, out)
        low = i * s - p
        tap = -(low // d)  # ceil(-low / d)
        return tap < k and low + tap * d < out

    return inner + sum(1 for i in edge if reaches(i))


def _attention_flops(layer, shapes, output, batch: int) -> int:
    """The two products over the scores a kernel must compute: 2 (E + Ev) FLOPs a score, the masked
    blocks of a causal layer skipped (its query l reaches keys 0..l)."""
    q, k, v = shapes[:3]
    length, source, features, values = q[-2], k[-2], q[-1], v[-1]
    heads = volume(output[:-2])  # the query's leading axes broadcast with the key's (grouped heads shared)
    pairs = length * source
    if layer.is_causal:
        reach = min(length, source)
        pairs = reach * (reach + 1) // 2 + (length - reach) * source
    return batch * heads * pairs * 2 * (features + values)


def _family(layer) -> str:
    if isinstance(layer, CUDNN):
        return "cudnn"
    if isinstance(layer, CUBLAS):
        return "cublas"
    return "attention" if isinstance(layer, ATTENTION) else "other"


def _rate(value: Fraction) -> str:
    return f"{float(value) / 1e12:.4g} TFLOP/s" if value >= 10**11 else f"{float(value) / 1e9:.4g} GFLOP/s"


WHY = {
    ("cudnn", "tf32"): "TF32 tensor cores: PyTorch runs float32 convolutions and RNNs through cuDNN with TF32 "
                       "allowed by default (torch.backends.cudnn.allow_tf32 = True)",
    ("cublas", "tf32"): "TF32 tensor cores, as tf32_matmul asks (torch.backends.cuda.matmul.allow_tf32 = True)",
    ("cublas", "float32"): "FP32 CUDA cores: PyTorch's default for float32 matrix products "
                           "(torch.backends.cuda.matmul.allow_tf32 = False); tf32_matmul=True for TF32",
    ("attention", "tf32"): "TF32 tensor cores, as tf32_matmul asks (the math backend's products)",
    ("attention", "3xtf32"): "a third of the TF32 rate: the memory-efficient kernel multiplies float32 as three "
                             "TF32 products whatever allow_tf32 says",
    ("attention", "float32"): "FP32 CUDA cores (a third of the TF32 rate is no more)",
    ("other", "float32"): "FP32 CUDA cores",
}


def _notes(analysis, device, used, tf32_matmul, bounds) -> tuple[str, ...]:
    dtype = analysis.network.dtype
    notes = []
    if dtype != "float32" or device.tf32 is None:  # one peak for every layer
        notes.append(f"every layer at {device.name}'s {dtype} peak, {_rate(Fraction(device.peak_for(dtype)))}"
                     + (": it has no TF32 tensor cores" if dtype == "float32" else "")
                     + (", so tf32_matmul changes nothing" if dtype == "float32" and tf32_matmul else ""))
        used = {}
    for (family, precision, rate), layers in sorted(used.items(), key=lambda item: list(FAMILIES).index(item[0][0])):
        where = f"layer {layers[0]}" if len(layers) == 1 else f"{len(layers)} layers"
        notes.append(f"{dtype} {FAMILIES[family]} ({where}): {_rate(rate)}, {WHY[family, precision]}")
    if any(isinstance(layer, kinds.ScaledDotProductAttention) for layer in analysis.network.layers):
        notes.append("attention moves at least its query, key, value, mask and output: PyTorch's math backend also "
                     "writes and reads the L x S scores, the fused kernels do not, so the bound holds for every "
                     "backend; its FLOPs are the two products, without the softmax")
    unknown = [r.index for r, b in zip(analysis.layers, bounds) if not b.known]
    if unknown:
        notes.append(f"layer{'s' * (len(unknown) > 1)} {', '.join(map(str, unknown[:8]))}"
                     f"{' ...' if len(unknown) > 8 else ''}: what it moves or computes is not known; "
                     "its bound counts only what is known")
    return tuple(notes)
