"""Resampling: ``torch.nn.Upsample`` and ``F.interpolate`` in every mode, to a size or by a scale,
and ONNX's Resize.

FLOPs per output element: nearest modes 0 (a copy); the linear modes mix
2 taps per interpolated axis and bicubic 4: t^r multiplications and t^r - 1
additions for t taps over r axes (bilinear 7, trilinear 15, bicubic 31);
area averages its bins as adaptive average pooling does.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import floor

from ..errors import ShapeError, SpecError
from ..windows import IDENTITY, Adaptive, OnnxResample, Resample
from ..sizes import adaptive_bin_total, volume
from .base import Figures, Layer, Shape, Use, format_shape, format_tuple, short
from .kind import arg, spell
from .rules import word

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
UPSAMPLE_FIELDS = ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor")
# ONNX Resize's coordinate_transformation_mode and nearest_mode values
COORDINATES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
               "tf_crop_and_resize")
ROUNDINGS = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
# the spatial rank each linear mode needs, and the taps it reads per axis
_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}


@dataclass(frozen=True)
class Upsample(Layer):
    """``torch.nn.Upsample`` and ``F.interpolate``: to ``size``, or by ``scale_factor`` (any positive number).

    >>> Upsample(scale_factor=2).infer((16, 8, 8)).output_shape
    (16, 16, 16)
    >>> fig = Upsample(size=(33, 33), mode="bilinear").infer((21, 9, 9))
    >>> fig.output_shape, fig.flops
    ((21, 33, 33), 160083)
    """

    spellings = (spell("upsample", "up", "interpolate", fields=UPSAMPLE_FIELDS, positional=("scale_factor",)),
                 spell("upsamplingnearest2d", fields=("size", "scale_factor"), positional=("size", "scale_factor"),
                       mode="nearest"),
                 spell("upsamplingbilinear2d", fields=("size", "scale_factor"), positional=("size", "scale_factor"),
                       mode="bilinear", align_corners=True))

    size: int | tuple[int, ...] | None = None
    scale_factor: float | tuple[float, ...] | None = None
    mode: str = arg("nearest", rule=word(*MODES))
    align_corners: bool | None = None
    recompute_scale_factor: bool | None = None

    def infer(self, shape: Shape) -> Figures:
        rank = len(shape) - 1
        if not 1 <= rank <= 3:
            raise ShapeError(
                f"Only 3D, 4D and 5D input tensors are supported (got {rank + 2}D, {format_shape(shape)} per sample)",
                hint="give channels and 1 to 3 spatial sizes", field="*")
        if self.mode not in MODES:
            raise SpecError(f"mode={self.mode!r} is not one of {', '.join(MODES)}", hint="e.g. mode=bilinear",
                            field="mode")
        if self.mode in _LINEAR and _LINEAR[self.mode] != rank:
            raise ShapeError(f"got {rank + 2}D input, but {self.mode} mode needs {_LINEAR[self.mode] + 2}D input",
                             hint="pick the mode for the input's rank: linear, bilinear or trilinear", field="mode")
        if self.align_corners is not None and self.mode not in _LINEAR:
            raise ShapeError("align_corners option can only be set with the interpolating modes: "
                             "linear | bilinear | bicubic | trilinear", hint="drop align_corners", field="align_corners")
        if (self.size is None) == (self.scale_factor is None):
            raise SpecError("either size or scale_factor should be defined" if self.size is None else
                            "only one of size or scale_factor should be defined",
                            hint="e.g. up:2 (a scale) or upsample:size=64x64", field="size")
        sizes = shape[1:]
        scales: tuple[float | None, ...] = (None,) * rank
        if self.size is not None:
            out = self._per_axis(self.size, rank, "size")
        else:
            factors = self._per_axis(self.scale_factor, rank, "scale_factor")
            out = tuple(floor(float(n) * float(f)) for n, f in zip(sizes, factors))
            if not self.recompute_scale_factor:
                scales = tuple(float(f) for f in factors)
        # area is an adaptive average pool, which makes an empty output from a non-empty input
        if any(n < 1 for n in sizes) or (self.mode != "area" and any(n < 1 for n in out)):
            raise ShapeError(
                f"input and output sizes should be greater than 0, but got input {format_tuple(sizes)} and output "
                f"{format_tuple(out)}", hint="use a larger size or scale_factor", field="size")
        align = bool(self.align_corners)
        if self.mode == "area":
            windows = tuple(Adaptive(n, o) if o else IDENTITY for n, o in zip(sizes, out))
            bins = [adaptive_bin_total(n, o) for n, o in zip(sizes, out)]
            flops = shape[0] * volume(bins)
        else:
            windows = tuple(Resample(n, o, self.mode, align, sc) for n, o, sc in zip(sizes, out, scales))
            taps = 4 if self.mode == "bicubic" else 2 if self.mode in _LINEAR else 0
            flops = (2 * taps ** rank - 1) * shape[0] * volume(out) if taps else 0
        scaled = f"×{short(tuple(f'{float(f):g}' for f in factors))}" if self.size is None else f"→{short(out)}"
        summary = f"{scaled} {self.mode}" + (" align_corners" if align else "")
        return Figures("Upsample", (shape[0], *out), 0, 0, flops, windows, (), summary)

    @staticmethod
    def _per_axis(value, rank: int, name: str) -> tuple:
        values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * rank
        if len(values) != rank:
            raise ShapeError(
                f"input and output must have the same number of spatial dimensions, but got input with {rank} "
                f"spatial dimension(s) and {name}={format_tuple(values)}",
                hint=f"give one value or {rank}", field=name)
        return values

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                                           self.recompute_scale_factor)


@dataclass(frozen=True)
class Resize(Layer):
    """ONNX's Resize operator to ``sizes`` (per spatial axis): a kind of its own, because PyTorch's
    Upsample cannot express its coordinate transformation modes or its nearest rounding modes.

    >>> Resize((8, 8), "linear", "half_pixel").infer((21, 4, 4)).output_shape
    (21, 8, 8)
    """

    spellings = (spell("resize", fields=("sizes", "mode", "coordinate", "rounding", "scales"), positional=("sizes",),
                       required=("sizes",)),)

    sizes: tuple[int, ...]
    mode: str = arg("nearest", rule=word("nearest", "linear", "cubic"))
    coordinate: str = arg("half_pixel", rule=word(*COORDINATES))
    rounding: str = arg("round_prefer_floor", rule=word(*ROUNDINGS))
    scales: tuple[float, ...] | None = None  # as given (None: out/in)

    def infer(self, shape: Shape) -> Figures:
        rank = len(shape) - 1
        if len(self.sizes) != rank or any(n < 1 for n in self.sizes):
            raise ShapeError(f"Resize to {format_tuple(self.sizes)} does not fit the input {format_shape(shape)}",
                             hint="give one positive size per spatial axis", field="sizes")
        if self.mode not in ("nearest", "linear", "cubic"):
            raise SpecError(f"mode={self.mode!r} is not nearest, linear or cubic", hint="use ONNX's modes",
                            field="mode")
        if self.scales is not None and (len(self.scales) != rank or any(not 0 < sc < 2**31 for sc in self.scales)):
            raise ShapeError(f"Resize scales {format_tuple(self.scales)} do not fit the input {format_shape(shape)}",
                             hint="give one positive scale per spatial axis, or none", field="scales")
        scales = self.scales or tuple(o / n for o, n in zip(self.sizes, shape[1:]))
        windows = tuple(OnnxResample(n, o, self.mode, self.coordinate, sc, self.rounding)
                        for n, o, sc in zip(shape[1:], self.sizes, scales))
        taps = {"nearest": 0, "linear": 2, "cubic": 4}[self.mode]
        flops = (2 * taps ** rank - 1) * shape[0] * volume(self.sizes) if taps else 0
        return Figures("Resize", (shape[0], *self.sizes), 0, 0, flops, windows, (),
                       f"→{short(self.sizes)} {self.mode} {self.coordinate}")

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.onnx_resize(x, self.sizes, self.mode, self.coordinate, self.rounding, self.scales)
