"""Layout and resampling on NumPy arrays: flatten, padding, interpolation, pixel and channel shuffles."""

from __future__ import annotations

import numpy as np

from ..backend.memory import check_memory
from ..engine.errors import SpecError
from ..engine.layers import Flatten, Pad, Upsample, ZeroPad
from .checks import checked, arguments_for, tensor


def flatten(x, start_dim=1, end_dim=-1):
    """Merge axes start_dim..end_dim (counting the batch axis), as ``torch.flatten``."""
    x = tensor(x, spatial=False, contiguous=False)  # a view where PyTorch's flatten is one
    shape = Flatten(**arguments_for(Flatten, start_dim=start_dim, end_dim=end_dim)).infer(x.shape[1:]).output_shape
    return x.reshape((x.shape[0], *shape))


def upsample(x, scale_factor, mode="nearest"):
    """Upsampling by ``scale_factor``, as ``torch.nn.functional.interpolate`` (see ``interpolate``)."""
    return interpolate(x, scale_factor=scale_factor, mode=mode)


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None):
    """``torch.nn.functional.interpolate`` in every mode, index for index as ATen's CPU kernels compute
    (source positions in the input's precision; linear modes read 2 neighbours, bicubic 4)."""
    x = tensor(x)
    spec = Upsample(**arguments_for(Upsample, size=size, scale_factor=scale_factor, mode=mode, align_corners=align_corners,
                               recompute_scale_factor=recompute_scale_factor))
    out = checked(spec, x.shape[1:]).output_shape[1:]
    rank = x.ndim - 2
    if spec.mode == "area":
        from .pooling import adaptive_avg_pool

        return adaptive_avg_pool(x, out)
    factors = spec.scale_factor if isinstance(spec.scale_factor, tuple) else (spec.scale_factor,) * rank
    real = np.float32 if x.dtype == np.float32 else np.float64
    first = x
    for axis, (n, o) in enumerate(zip(x.shape[2:], out)):
        scale = None if spec.size is not None or recompute_scale_factor else float(factors[axis])
        out_bytes = x.nbytes // max(n, 1) * o
        # the neighbours read and their weighted copies, besides the axis's output (nearest: a gather only)
        work = 0 if spec.mode in ("nearest", "nearest-exact") else 4 * out_bytes
        check_memory("this interpolation", {"previous axis": 0 if x is first else x.nbytes, "output": out_bytes,
                                            "work buffers": work})
        x = _resample_axis(x, axis + 2, n, o, spec.mode, bool(align_corners), scale, real)
    return np.ascontiguousarray(x)


def _ratio(n, o, mode, align, scale, real):
    if align and mode not in ("nearest", "nearest-exact"):
        return real((n - 1) / (o - 1)) if o > 1 else real(0)
    return real(1.0 / scale) if scale else real(n / o)


def _resample_axis(x, axis, n, o, mode, align, scale, real):
    positions = np.arange(o)
    ratio = _ratio(n, o, mode, align, scale, real)
    if mode in ("nearest", "nearest-exact"):
        offset = real(0.5) if mode == "nearest-exact" else real(0)
        index = np.minimum(np.floor((positions.astype(real) + offset) * ratio).astype(np.int64), n - 1)
        return np.take(x, index, axis=axis)
    if o == n and mode != "bicubic":  # ATen copies a same-size input as it is
        return x
    # one rounding, as ATen's fused multiply-add computes the source position
    exact = np.float64(ratio) * positions if align else np.float64(ratio) * (positions + 0.5) - 0.5
    source = exact.astype(real)
    shape = [1] * x.ndim
    shape[axis] = o
    if mode == "bicubic":
        first = np.floor(source).astype(np.int64)
        t = (source - first).astype(real)
        weights = _cubic_weights(t, real)
        return sum(np.take(x, np.clip(first - 1 + k, 0, n - 1), axis=axis) * weights[k].reshape(shape)
                   for k in range(4))
    source = np.maximum(source, real(0))
    first = source.astype(np.int64)
    lam = np.clip(source - first, 0, 1).astype(real)
    second = first + (first < n - 1)
    low, high = np.take(x, first, axis=axis), np.take(x, second, axis=axis)
    return low * (1 - lam).reshape(shape) + high * lam.reshape(shape)


def onnx_resize(x, sizes, mode="nearest", coordinate="half_pixel", rounding="round_prefer_floor", scales=None):
    """ONNX's Resize over the spatial axes, as onnxruntime computes it (float32 source positions)."""
    from ..engine.layers import Resize

    x = tensor(x)
    figures = checked(Resize(tuple(sizes), mode, coordinate, rounding, scales), x.shape[1:])
    real = np.float32 if x.dtype == np.float32 else np.float64
    for axis, window in enumerate(figures.windows):
        n, o = window.size, window.out
        shape = [1] * x.ndim
        shape[axis + 2] = o
        if mode == "nearest":
            x = np.take(x, [window.reads(i)[0] for i in range(o)], axis=axis + 2)
            continue
        source = np.array([window._original(i) for i in range(o)], dtype=np.float64)
        if mode == "linear":
            source = np.clip(source, 0, n - 1)
            first = np.floor(source).astype(np.int64)
            lam = (source - first).astype(real)
            second = np.minimum(first + 1, n - 1)
            x = np.take(x, first, axis=axis + 2) * (1 - lam).reshape(shape) + \
                np.take(x, second, axis=axis + 2) * lam.reshape(shape)
        else:
            first = np.floor(source).astype(np.int64)
            weights = _cubic_weights((source - first).astype(real), real)
            x = sum(np.take(x, np.clip(first - 1 + k, 0, n - 1), axis=axis + 2) * weights[k].reshape(shape)
                    for k in range(4))
    return np.ascontiguousarray(x.astype(real, copy=False))


def _cubic_weights(t, real):
    a = real(-0.75)
    def near(u):  # |u| <= 1
        return ((a + 2) * u - (a + 3)) * u * u + 1
    def far(u):  # 1 < |u| < 2
        return ((a * u - 5 * a) * u + 8 * a) * u - 4 * a
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def pad_mode(x, pad, mode="constant", value=0.0):
    """``torch.nn.functional.pad`` with a mode: constant (value; negative amounts crop), reflect,
    replicate or circular; amounts for the last axis first."""
    x = tensor(x, spatial=False)
    amounts = (pad,) * (2 * (x.ndim - 2)) if isinstance(pad, int) else tuple(pad)
    rank = len(amounts) // 2
    checked(Pad(amounts, value, mode), x.shape[1:])
    sides = [(amounts[2 * i], amounts[2 * i + 1]) for i in range(rank)][::-1]
    first = x.ndim - rank
    grow = [(0, 0)] * first + [(max(b, 0), max(e, 0)) for b, e in sides]
    if all(b >= 0 and e >= 0 for b, e in sides):
        return padded(x, grow, mode, value)
    numpy_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    extra = {"constant_values": value} if mode == "constant" else {}
    grown = x.itemsize * int(np.prod([n + b + e for n, (b, e) in zip(x.shape, grow)]))
    check_memory("this padding", {"padded": grown, "cropped copy": grown})
    y = np.pad(x, grow, mode=numpy_mode, **extra)
    crop = [slice(None)] * first + [slice(max(-b, 0), y.shape[first + i] - max(-e, 0)) for i, (b, e) in enumerate(sides)]
    return np.ascontiguousarray(y[tuple(crop)])


def padded(x: np.ndarray, grow, mode: str = "constant", value: float = 0.0) -> np.ndarray:
    """``x`` padded by ``grow`` ((begin, end) per axis, none negative) in ``mode``, as
    ``np.pad`` pads (axis by axis, so corners are padded from padding), into one new array and
    nothing else: the sides are copied from slices of it (checked first)."""
    shape = tuple(n + b + e for n, (b, e) in zip(x.shape, grow))
    check_memory("this padding", {"output": x.itemsize * int(np.prod(shape))})
    y = np.empty(shape, dtype=x.dtype)
    y[tuple(slice(b, b + n) for n, (b, _) in zip(x.shape, grow))] = x
    for axis, (n, (b, e)) in enumerate(zip(x.shape, grow)):
        if not (b or e):
            continue
        # axes before this one are padded already; later ones only inside
        lead = tuple(slice(None) for _ in range(axis))
        trail = tuple(slice(bb, bb + nn) for nn, (bb, _) in zip(x.shape[axis + 1:], grow[axis + 1:]))
        def at(part):
            return (*lead, part, *trail)
        if mode == "constant":
            y[at(slice(0, b))] = value
            y[at(slice(b + n, b + n + e))] = value
            continue
        # one slab at a time: a copy within the array may go through a temporary of its size
        for j in range(b):
            y[at(j)] = y[at({"replicate": b, "reflect": 2 * b - j, "circular": n + j}[mode])]
        for j in range(e):
            y[at(b + n + j)] = y[at({"replicate": b + n - 1, "reflect": b + n - 2 - j, "circular": b + j}[mode])]
    return y


def pixel_shuffle(x, upscale_factor):
    """(*, C r^2, H, W) -> (*, C, H r, W r), as ``torch.nn.functional.pixel_shuffle``."""
    x = tensor(x, spatial=False)
    r = upscale_factor
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return np.ascontiguousarray(y.reshape(*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(x, downscale_factor):
    """(*, C, H r, W r) -> (*, C r^2, H, W), as ``torch.nn.functional.pixel_unshuffle``."""
    x = tensor(x, spatial=False)
    r = downscale_factor
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    k = len(lead)
    y = y.transpose(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return np.ascontiguousarray(y.reshape(*lead, c * r * r, h // r, w // r))


def roll(x, shifts, dims):
    """``torch.roll(x, shifts, dims)``: a cyclic shift of each axis in ``dims`` (batch counted)."""
    x = tensor(x, spatial=False)
    return np.roll(x, tuple(shifts), tuple(dims))


def channel_shuffle(x, groups):
    """Interleave the channels (axis 1) of ``groups`` groups, as ``torch.nn.ChannelShuffle``."""
    x = tensor(x, spatial=False)
    b, c, *rest = x.shape
    y = x.reshape(b, groups, c // groups, *rest).swapaxes(1, 2)
    return np.ascontiguousarray(y.reshape(x.shape))


def pad(x, pad):
    """Zero padding, as ``torch.nn.functional.pad(x, pad)``: amounts for the last
    axis first (left, right, top, bottom, ...); negative amounts crop."""
    x = tensor(x)
    rank = x.ndim - 2
    amounts = tuple(arguments_for(ZeroPad, padding=tuple(pad))["padding"] if not isinstance(pad, int) else (pad,) * (2 * rank))
    if len(amounts) % 2 or len(amounts) > 2 * rank:
        raise SpecError(f"pad has {len(amounts)} values; give pairs for at most {rank} axes, last axis first",
                        hint="e.g. (1, 1) pads the last axis by one on each side", field="padding")
    amounts = amounts + (0,) * (2 * rank - len(amounts))
    spec = ZeroPad(amounts, rank=rank)
    checked(spec, x.shape[1:])
    sides = spec.sides(rank)
    grow = [(0, 0), (0, 0)] + [(max(b, 0), max(e, 0)) for b, e in sides]
    y = padded(x, grow) if any(b or e for b, e in grow) else x
    crop = (slice(None), slice(None), *(slice(max(-b, 0), y.shape[i + 2] - max(-e, 0)) for i, (b, e) in enumerate(sides)))
    return np.ascontiguousarray(y[crop])
