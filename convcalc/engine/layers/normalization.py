"""Normalization: BatchNorm, LayerNorm (and channels-first LayerNorm2d), GroupNorm,
InstanceNorm and LocalResponseNorm, in inference.

FLOPs per element: BatchNorm folds into x*a + b (2). The others compute
statistics at run time: a sum for the mean, a subtraction, a square and a sum
for the variance, a multiplication by 1/sqrt(var + eps) (5), plus 2 for the
affine scale and shift. LocalResponseNorm: a square, a sum over ``size``
channels, scaling, adding k, a power and a division (size + 5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import BatchAxisError, ShapeError, SpecError
from ..windows import IDENTITY, Global
from ..sizes import volume
from .base import Figures, Layer, Shape, Use, format_shape, format_tuple, saves_input, saves_new
from .kind import arg, ranked, spell

NORM_FIELDS = ("num_features", "eps", "momentum", "affine", "track_running_stats", "bias")
LAYERNORM_FIELDS = ("normalized_shape", "eps", "elementwise_affine", "bias")
STATISTICS_FLOPS = 5
AFFINE_FLOPS = 2


def _affine_tensors(count: int, weight: bool, bias: bool) -> tuple[tuple[str, int], ...]:
    return ((("weight", count),) if weight else ()) + ((("bias", count),) if weight and bias else ())


@dataclass(frozen=True)
class BatchNorm(Layer):
    """``torch.nn.BatchNorm1d/2d/3d`` in inference: a per-channel scale and shift.

    Parameters: the affine weight and (unless bias=False) bias, C each.

    >>> BatchNorm().infer((64, 56, 56)).params
    128
    """

    spellings = ranked(("bn", "batchnorm"), "BatchNorm", fields=NORM_FIELDS, positional=("num_features",))

    num_features: int | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
    bias: bool = True  # PyTorch 2.13's keyword: affine weight without the bias
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        spatial = len(shape) - 1
        if self.rank is None and spatial > 3:
            raise ShapeError(f"BatchNorm works on 0 to 3 spatial axes (BatchNorm1d/2d/3d) but receives "
                             f"{format_shape(shape)}", hint="check the input shape", field="*")
        rank = self.rank or max(spatial, 1)
        type_name = f"BatchNorm{rank}d"
        accepted = (0, 1) if rank == 1 else (rank,)
        if spatial not in accepted:
            wanted = "channels or channels x length" if rank == 1 else f"channels x {rank} spatial sizes"
            raise ShapeError(
                f"{type_name} needs {wanted} but receives {format_shape(shape)}",
                hint="drop the rank from the layer name (bn) so it follows the input",
                field="*",
            )
        channels = shape[0]
        _check_features(type_name, self.num_features, channels, "num_features")
        params = (channels + (channels if self.bias else 0)) if self.affine else 0
        # inference folds mean, variance, weight and bias into x*a + b
        return Figures(type_name, shape, params, 0, 2 * volume(shape), None, (), "",
                       tensors=_affine_tensors(channels, self.affine, self.bias))

    def saved(self, use: Use) -> list | None:
        return [saves_input(), saves_new(2 * use.output[0] * use.statistic)]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        c = x.shape[1]
        mean, var = run.between(-0.1, 0.1, c), run.between(0.5, 1.5, c)
        weight, bias = run.affine(c, self.affine, self.bias)
        return lambda x: run.F.batch_norm(x, mean, var, weight, bias, self.eps)

    def explain_costs(self, report, batch: int) -> list[str]:
        if not report.params:
            return []
        c = report.input_shape[0]
        return [f"params: {report.params // c} x {c} (weight{' and bias' if self.bias else ''}) = {report.params:,}"]


def _check_features(type_name: str, given: int | None, channels: int, name: str) -> None:
    if given is not None and given != channels:
        raise ShapeError(
            f"{name}={given} but the incoming tensor has {channels} channels",
            hint=f"omit {name} to take it from the input, or fix the layer before",
            field=name,
        )


@dataclass(frozen=True)
class LayerNorm(Layer):
    """``torch.nn.LayerNorm``: normalizes over the last ``len(normalized_shape)`` axes.

    >>> fig = LayerNorm(768).infer((197, 768))
    >>> fig.params, fig.flops
    (1536, 1059072)
    """

    spellings = (spell("layernorm", "ln", fields=LAYERNORM_FIELDS, positional=("normalized_shape",),
                       required=("normalized_shape",)),)

    normalized_shape: int | tuple[int, ...]
    eps: float = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def infer(self, shape: Shape) -> Figures:
        wanted = (self.normalized_shape,) if isinstance(self.normalized_shape, int) else tuple(self.normalized_shape)
        if not wanted or any(n < 1 for n in wanted):
            raise SpecError(f"normalized_shape={format_tuple(wanted)} must be positive sizes",
                            hint="e.g. normalized_shape=768", field="normalized_shape")
        if len(wanted) > len(shape) or tuple(shape[len(shape) - len(wanted):]) != wanted:
            raise ShapeError(
                f"given normalized_shape={list(wanted)}, expected input with shape [*, "
                f"{', '.join(map(str, wanted))}], but got input of size {format_shape(shape)} (per sample)",
                hint="normalized_shape names the trailing sizes, e.g. the channels after a permute to channels-last",
                field="normalized_shape",
            )
        first = len(shape) - len(wanted)
        per_element = STATISTICS_FLOPS + (AFFINE_FLOPS if self.elementwise_affine else 0)
        windows = tuple(Global(n) if axis + 1 >= first else IDENTITY for axis, n in enumerate(shape[1:]))
        params = volume(wanted) * (1 + self.bias) if self.elementwise_affine else 0
        return Figures("LayerNorm", shape, params, 0, per_element * volume(shape), windows, (),
                       f"over {format_shape(wanted)}", mixes_channels=first == 0,
                       tensors=_affine_tensors(volume(wanted), self.elementwise_affine, self.bias))

    def _normalized(self) -> tuple[int, ...]:
        return (self.normalized_shape,) if isinstance(self.normalized_shape, int) else tuple(self.normalized_shape)

    def saved(self, use: Use) -> list | None:
        return [saves_input(), saves_new(2 * use.batch * volume(use.output) // volume(self._normalized())
                                         * use.statistic)]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        shape = self._normalized()
        w, b = run.affine(volume(shape), self.elementwise_affine, self.bias)
        w = None if w is None else w.reshape(shape)
        b = None if b is None else b.reshape(shape)
        return lambda x: run.F.layer_norm(x, shape, w, b, self.eps)


@dataclass(frozen=True)
class RMSNorm(Layer):
    """``torch.nn.RMSNorm``: x / sqrt(mean(x^2) + eps) over the last ``len(normalized_shape)`` axes,
    times a learned weight (no bias). FLOPs per element: a square, a sum and a scaling (3), and the
    weight (1). eps None: the dtype's machine epsilon, as PyTorch.

    >>> RMSNorm(4096).infer((7, 4096)).params
    4096
    """

    spellings = (spell("rmsnorm", fields=("normalized_shape", "eps", "elementwise_affine"),
                       positional=("normalized_shape",), required=("normalized_shape",)),)

    normalized_shape: int | tuple[int, ...]
    eps: float | None = None
    elementwise_affine: bool = True

    def infer(self, shape: Shape) -> Figures:
        figures = LayerNorm(self.normalized_shape, elementwise_affine=False).infer(shape)  # the same checks
        wanted = volume((self.normalized_shape,) if isinstance(self.normalized_shape, int)
                        else tuple(self.normalized_shape))
        params = wanted if self.elementwise_affine else 0
        return replace(figures, type="RMSNorm", params=params, flops=(3 + self.elementwise_affine) * volume(shape),
                       tensors=(("weight", params),) if params else ())

    def saved(self, use: Use) -> list | None:
        return None  # not yet checked against autograd's saved tensors: the training figure says so

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        shape = (self.normalized_shape,) if isinstance(self.normalized_shape, int) else tuple(self.normalized_shape)
        axes = tuple(range(x.ndim - len(shape), x.ndim))
        weight = run.between(0.5, 1.5, volume(shape)).reshape(shape) if self.elementwise_affine else None
        # eps None: torch.finfo(dtype).eps (run's dtypes are float32 and float64)
        eps = x.dtype.type(self.eps if self.eps is not None else {4: 2.0**-23, 8: 2.0**-52}[x.dtype.itemsize])

        def call(x):
            y = x * ((x * x).mean(axis=axes, keepdims=True) + eps) ** x.dtype.type(-0.5)
            return (y if weight is None else y * weight).astype(x.dtype, copy=False)

        return call


@dataclass(frozen=True)
class LayerNorm2d(Layer):
    """The channels-first LayerNorm of ConvNeXt (torchvision's and timm's ``LayerNorm2d``):
    normalizes the channels at every position.

    >>> LayerNorm2d(96).infer((96, 56, 56)).params
    192
    """

    spellings = (spell("layernorm2d", fields=LAYERNORM_FIELDS, positional=("normalized_shape",)),)

    normalized_shape: int | tuple[int, ...] | None = None
    eps: float = 1e-6
    elementwise_affine: bool = True
    bias: bool = True

    def infer(self, shape: Shape) -> Figures:
        channels = shape[0]
        wanted = self.normalized_shape
        wanted = (wanted,) if isinstance(wanted, int) else wanted
        if wanted is not None and tuple(wanted) != (channels,):
            raise ShapeError(f"LayerNorm2d normalizes the {channels} channels, not {format_tuple(tuple(wanted))}",
                             hint=f"use normalized_shape={channels}, or omit it", field="normalized_shape")
        if len(shape) < 2:
            raise ShapeError(f"LayerNorm2d needs channels and spatial sizes but receives {format_shape(shape)}",
                             hint="use layernorm over the last axis for features", field="*")
        per_element = STATISTICS_FLOPS + (AFFINE_FLOPS if self.elementwise_affine else 0)
        params = channels * (1 + self.bias) if self.elementwise_affine else 0
        return Figures("LayerNorm2d", shape, params, 0, per_element * volume(shape), None, (), "channels",
                       mixes_channels=True, tensors=_affine_tensors(channels, self.elementwise_affine, self.bias))

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        w, b = run.affine(x.shape[1], self.elementwise_affine, self.bias)
        return lambda x: run.F.layer_norm2d(x, w, b, self.eps)


@dataclass(frozen=True)
class GroupNorm(Layer):
    """``torch.nn.GroupNorm``: statistics over each group of channels and every position.

    >>> GroupNorm(32, 256).infer((256, 14, 14)).params
    512
    """

    spellings = (spell("groupnorm", "gn", fields=("num_groups", "num_channels", "eps", "affine", "bias"),
                       positional=("num_groups",), required=("num_groups",)),)

    num_groups: int
    num_channels: int | None = None
    eps: float = 1e-5
    affine: bool = True
    bias: bool = True

    def infer(self, shape: Shape) -> Figures:
        channels = shape[0]
        if self.num_groups < 1:
            raise ShapeError(f"num_groups must be positive (got {self.num_groups})", hint="e.g. num_groups=32",
                             field="num_groups")
        declared = channels if self.num_channels is None else self.num_channels
        if declared % self.num_groups:
            raise ShapeError(f"num_channels must be divisible by num_groups ({declared} by {self.num_groups})",
                             hint="pick a group count that divides the channels", field="num_groups")
        if self.affine and declared != channels:
            raise ShapeError(f"num_channels={declared} but the incoming tensor has {channels} channels",
                             hint="omit num_channels to take it from the input", field="num_channels")
        if channels % self.num_groups:
            raise ShapeError(f"the input's {channels} channels are not divisible by num_groups={self.num_groups}",
                             hint="pick a group count that divides the channels", field="num_groups")
        per_element = STATISTICS_FLOPS + (AFFINE_FLOPS if self.affine else 0)
        windows = tuple(Global(n) for n in shape[1:])
        params = channels * (1 + self.bias) if self.affine else 0
        return Figures("GroupNorm", shape, params, 0, per_element * volume(shape), windows, (),
                       f"{self.num_groups} groups", mixes_channels=True,
                       tensors=_affine_tensors(channels, self.affine, self.bias))

    def saved(self, use: Use) -> list | None:
        return [saves_input(), saves_new(2 * use.batch * self.num_groups * use.statistic)]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        w, b = run.affine(x.shape[1], self.affine, self.bias)
        return lambda x: run.F.group_norm(x, self.num_groups, w, b, self.eps)


@dataclass(frozen=True)
class InstanceNorm(Layer):
    """``torch.nn.InstanceNorm1d/2d/3d``: statistics per sample and channel over every
    position (with track_running_stats, the running ones: a per-channel scale and shift).

    >>> InstanceNorm(rank=2).infer((64, 32, 32)).output_shape
    (64, 32, 32)
    """

    spellings = ranked(("instancenorm", "inorm"), "InstanceNorm", fields=NORM_FIELDS, positional=("num_features",))

    num_features: int | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = False
    track_running_stats: bool = False
    bias: bool = True
    rank: int | None = arg(None, internal=True)

    def infer(self, shape: Shape) -> Figures:
        if self.rank is None and len(shape) - 1 > 3:
            raise ShapeError(f"InstanceNorm works on 1 to 3 spatial axes (InstanceNorm1d/2d/3d) but receives "
                             f"{format_shape(shape)}", hint="check the input shape", field="*")
        rank = self.rank or max(len(shape) - 1, 1)
        type_name = f"InstanceNorm{rank}d"
        positions = volume(shape[1:]) if len(shape) == rank + 1 else volume(shape)
        if not self.track_running_stats and positions == 1 and len(shape) in (rank, rank + 1):
            raise ShapeError(f"expected more than 1 spatial element to take statistics over, got {format_shape(shape)}",
                             hint="instance statistics need at least 2 positions per channel", field="*")
        if len(shape) == rank:
            # PyTorch reads a tensor without a channel axis as one unbatched sample, whose "channels" are
            # the batch: the same normalization per sample, but checked against the batch size
            if self.affine or self.track_running_stats:
                raise BatchAxisError(f"{type_name} reads {format_shape(shape)} per sample as an unbatched input "
                                     "whose channels are the batch", hint="give the input a channel axis",
                                     field="*")
            return Figures(type_name, shape, 0, 0, STATISTICS_FLOPS * volume(shape),
                           tuple(Global(n) for n in shape[1:]), (), "unbatched", mixes_channels=True)
        if len(shape) - 1 != rank:
            raise ShapeError(f"{type_name} needs channels x {rank} spatial size(s) but receives {format_shape(shape)}",
                             hint="drop the rank from the layer name (instancenorm) so it follows the input",
                             field="*")
        channels = shape[0]
        notes = ()
        if self.num_features is not None and self.num_features != channels:
            if self.affine or self.track_running_stats:  # the weights or running statistics have the wrong size
                _check_features(type_name, self.num_features, channels, "num_features")
            notes = (f"num_features={self.num_features} differs from the input's {channels} channels; PyTorch only "
                     "warns, since without affine parameters it does not use the number",)
        if self.track_running_stats:
            per_element, windows = 2, None  # running statistics fold into x*a + b
        else:
            per_element = STATISTICS_FLOPS + (AFFINE_FLOPS if self.affine else 0)
            windows = tuple(Global(n) for n in shape[1:])
        params = channels * (1 + self.bias) if self.affine else 0
        return Figures(type_name, shape, params, 0, per_element * volume(shape), windows, notes,
                       "running stats" if self.track_running_stats else "",
                       tensors=_affine_tensors(channels, self.affine, self.bias))

    def saved(self, use: Use) -> list | None:
        if self.track_running_stats:
            return None
        # batch norm over the input viewed as one sample of N x C channels; with an affine weight, that
        # weight repeated for the N x C channels, which batch norm saves as it saves any weight
        repeated = [saves_new(use.batch * use.output[0] * use.itemsize)] if self.affine else []
        return [saves_input(), saves_new(2 * use.batch * use.output[0] * use.statistic), *repeated]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        c = x.shape[1]
        w, b = run.affine(c, self.affine, self.bias)
        if self.track_running_stats:  # inference with running statistics: a per-channel scale and shift
            mean, var = run.between(-0.1, 0.1, c), run.between(0.5, 1.5, c)
            return lambda x: run.F.batch_norm(x, mean, var, w, b, self.eps)
        return lambda x: run.F.instance_norm(x, w, b, self.eps)


@dataclass(frozen=True)
class LocalResponseNorm(Layer):
    """``torch.nn.LocalResponseNorm`` across ``size`` neighbouring channels (AlexNet's).

    >>> LocalResponseNorm(5).infer((96, 55, 55)).flops
    2904000
    """

    spellings = (spell("localresponsenorm", "lrn", fields=("size", "alpha", "beta", "k"), positional=("size",),
                       required=("size",)),)

    size: int
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    def infer(self, shape: Shape) -> Figures:
        if not isinstance(self.size, int) or self.size < 1:
            raise SpecError(f"size={self.size!r} must be a positive integer", hint="e.g. size=5", field="size")
        if len(shape) < 2:
            raise ShapeError(f"LocalResponseNorm expects 3D or higher dimensionality input (batch included) but "
                             f"receives {format_shape(shape)} per sample", hint="apply it to channels x positions",
                             field="*")
        return Figures("LocalResponseNorm", shape, 0, 0, (self.size + 5) * volume(shape), None, (),
                       f"size={self.size}", mixes_channels=True)

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
