"""Layers that keep every position: activations, PReLU, Softmax, Identity, Dropout and StochasticDepth."""

from __future__ import annotations

from dataclasses import dataclass

from .. import strides
from ..errors import BatchAxisError, ShapeError, SpecError
from ..windows import IDENTITY, Global
from ..sizes import volume
from .base import SAVES_OUTPUT, Figures, Layer, Shape, Use, format_shape, saves_input, saves_new
from .kind import arg, spell
from .rules import probability, word

# Floating-point operations per element, counting exp, erf and tanh's
# exponential as one each (docs/conventions.md's table repeats these).
ACTIVATION_FLOPS = {
    "ReLU": 1,  # max(x, 0)
    "ReLU6": 2,  # min(max(x, 0), 6)
    "LeakyReLU": 2,  # compare, multiply
    "GELU": 5,  # x/sqrt(2), erf, +1, *x, *0.5
    "SiLU": 5,  # x * sigmoid(x)
    "Sigmoid": 4,  # negate, exp, +1, divide
    "Tanh": 5,  # (e^2x - 1)/(e^2x + 1): multiply, exp, subtract, add, divide
    "Hardswish": 5,  # x * min(max(x + 3, 0), 6) / 6
    "Hardsigmoid": 4,  # min(max(x + 3, 0), 6) / 6
    "Hardtanh": 2,  # min(max(x, min_val), max_val)
    "Mish": 9,  # x * tanh(softplus(x)): exp, +1, log, tanh (5), *x
    "ELU": 4,  # compare, exp, -1, *alpha
    "SELU": 5,  # ELU, then *scale
    "Softplus": 6,  # *beta, exp, +1, log, /beta, compare with threshold
    "Softsign": 3,  # abs, +1, divide
    "Erf": 1,  # the error function (ONNX graphs spell GELU out with it)
}
GELU_TANH_FLOPS = 13  # x^3 (2), two scalings, add, tanh (5), +1, *x, *0.5

# Each activation's arguments, in PyTorch's order, and what a token's bare values fill.
ACTIVATION_FIELDS = {
    "ReLU": ("inplace",), "ReLU6": ("inplace",), "LeakyReLU": ("negative_slope", "inplace"),
    "GELU": ("approximate",), "SiLU": ("inplace",), "Sigmoid": (), "Tanh": (), "Hardswish": ("inplace",),
    "Hardsigmoid": ("inplace",), "Hardtanh": ("min_val", "max_val", "inplace"), "Mish": ("inplace",),
    "ELU": ("alpha", "inplace"), "SELU": ("inplace",), "Softplus": ("beta", "threshold"), "Softsign": (), "Erf": (),
}
_POSITIONAL = {"LeakyReLU": ("negative_slope",), "GELU": ("approximate",), "ELU": ("alpha",),
               "Hardtanh": ("min_val", "max_val")}
_ALIASES = {"SiLU": ("swish",), "Hardswish": ("hswish",)}
# What autograd saves: the result (ReLU, Sigmoid, Tanh), the result when in place (leaky_relu_,
# elu_; out of place they save the input), or the input (a copy first when in place: hardtanh_).
_FROM_RESULT = {"ReLU", "Sigmoid", "Tanh"}
_INPLACE_FROM_RESULT = {"LeakyReLU", "ELU", "SELU"}
_FROM_INPUT = {"ReLU6", "Hardtanh", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Hardswish", "Hardsigmoid", "Mish",
               "Softplus"}
# The functional call's arguments beyond the input, by activation.
_CALL_ARGUMENTS = {"LeakyReLU": ("negative_slope",), "GELU": ("approximate",), "Hardtanh": ("min_val", "max_val"),
                   "ELU": ("alpha",), "Softplus": ("beta", "threshold")}


@dataclass(frozen=True)
class Activation(Layer):
    """An elementwise activation such as ``torch.nn.ReLU``.

    >>> fig = Activation("ReLU").infer((64, 112, 112))
    >>> fig.output_shape, fig.flops
    ((64, 112, 112), 802816)
    """

    spellings = tuple(spell(f.lower(), f, *_ALIASES.get(f, ()), fields=ACTIVATION_FIELDS[f],
                            positional=_POSITIONAL.get(f, ()), function=f) for f in ACTIVATION_FLOPS)

    function: str = arg(internal=True)
    negative_slope: float = 0.01
    approximate: str = arg("none", rule=word("none", "tanh"))
    inplace: bool = False
    alpha: float = 1.0  # ELU
    beta: float = 1.0  # Softplus
    threshold: float = 20.0  # Softplus
    min_val: float = -1.0  # Hardtanh
    max_val: float = 1.0

    def infer(self, shape: Shape) -> Figures:
        if self.function not in ACTIVATION_FLOPS:
            raise SpecError(
                f"unknown activation {self.function!r}",
                hint=f"use one of {', '.join(ACTIVATION_FLOPS)}",
                field="*",
            )
        per_element = ACTIVATION_FLOPS[self.function]
        summary = ""
        if self.function == "GELU":
            if self.approximate not in ("none", "tanh"):
                raise SpecError(
                    f"approximate={self.approximate!r} is not 'none' or 'tanh'",
                    hint="use approximate=none or approximate=tanh",
                    field="approximate",
                )
            if self.approximate == "tanh":
                per_element, summary = GELU_TANH_FLOPS, "tanh"
        if self.function == "LeakyReLU" and self.negative_slope != 0.01:
            summary = f"slope={self.negative_slope:g}"
        if self.function == "Hardtanh":
            if self.max_val <= self.min_val:
                raise ShapeError(f"max_val ({self.max_val:g}) must be greater than min_val ({self.min_val:g})",
                                 hint="e.g. hardtanh:min_val=0,max_val=6", field="max_val")
            summary = f"[{self.min_val:g}, {self.max_val:g}]"
        return Figures(self.function, shape, 0, 0, per_element * volume(shape), None, (), summary)

    writes_like_input = True

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if training and self.inplace else "new"

    def saved(self, use: Use) -> list | None:
        f = self.function
        if f in _FROM_RESULT or (self.inplace and f in _INPLACE_FROM_RESULT):
            return [SAVES_OUTPUT]
        if f == "Softsign":  # x / (1 + |x|): the input and the denominator
            return [saves_input(), saves_new(use.batch * volume(use.output) * use.itemsize)]
        if f not in _FROM_INPUT:
            return None
        # in place, the input is overwritten: autograd saves a copy of it first
        return [saves_new(use.batch * volume(use.inputs[0]) * use.itemsize)] if self.inplace else [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        function = run.F.ACTIVATIONS[self.function]
        values = [getattr(self, name) for name in _CALL_ARGUMENTS.get(self.function, ())]
        return lambda x: function(x, *values)


@dataclass(frozen=True)
class Dropout(Layer):
    """``torch.nn.Dropout``: the identity at inference, so no cost.

    >>> Dropout(0.5).infer((4096,)).output_shape
    (4096,)
    """

    VARIANTS = ("element", "feature", "alpha", "feature_alpha")
    # The variant is PyTorch's class name, never an argument. Dropout2d comes first of the feature
    # dropouts: the name a feature dropout from a trace is written back with (all three drop channels).
    spellings = (spell("dropout", fields=("p", "inplace"), positional=("p",)),
                 *(spell(f"Dropout{r}d", fields=("p", "inplace"), positional=("p",), variant="feature")
                   for r in (2, 1, 3)),
                 spell("AlphaDropout", fields=("p", "inplace"), positional=("p",), variant="alpha"),
                 spell("FeatureAlphaDropout", fields=("p", "inplace"), positional=("p",), variant="feature_alpha"))

    p: float = arg(0.5, rule=probability)
    inplace: bool = False
    # what one random draw drops: an element, or a whole channel (Dropout1d/2d/3d);
    # alpha: AlphaDropout's (it matters to what training saves, not to the shapes)
    variant: str = arg("element", rule=word(*VARIANTS), internal=True)

    def infer(self, shape: Shape) -> Figures:
        if not 0 <= self.p <= 1:
            raise ShapeError(
                f"dropout probability has to be between 0 and 1, but got {self.p}",
                hint="use p between 0 and 1, e.g. dropout:0.5",
                field="p",
            )
        if self.variant not in self.VARIANTS:
            raise SpecError(f"dropout variant={self.variant!r} is not one of {', '.join(self.VARIANTS)}",
                            hint="use Dropout2d for a feature dropout", field="*")
        variant = "" if self.variant == "element" else f" {self.variant}"
        return Figures("Dropout", shape, 0, 0, 0, None, (), f"p={self.p:g}{variant}")

    writes_like_input = True  # (the input times noise laid out like it)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if not training or self.p == 0 or self.inplace else "new"

    def saved(self, use: Use) -> list | None:  # the noise it multiplies by: per element, or per channel
        per_sample = use.output[0] if self.variant.startswith("feature") else volume(use.output)
        return [] if self.p == 0 else [saves_new(use.batch * per_sample * use.itemsize)]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: x  # the identity at inference


@dataclass(frozen=True)
class PReLU(Layer):
    """``torch.nn.PReLU``: a learned negative slope, one or one per channel.

    >>> PReLU(64).infer((64, 56, 56)).params
    64
    """

    spellings = (spell("prelu", fields=("num_parameters", "init"), positional=("num_parameters",)),)

    num_parameters: int = 1
    init: float = 0.25

    def infer(self, shape: Shape) -> Figures:
        channels = shape[0]
        if self.num_parameters < 1 or self.num_parameters not in (1, channels):
            raise ShapeError(
                f"num_parameters={self.num_parameters} must be 1 or the input's {channels} channels",
                hint=f"use num_parameters=1 or {channels}", field="num_parameters")
        return Figures("PReLU", shape, self.num_parameters, 0, 2 * volume(shape), None, (),
                       f"{self.num_parameters} slope(s)", tensors=(("weight", self.num_parameters),))

    def saved(self, use: Use) -> list | None:
        return [saves_input()]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        weight = run.full(self.num_parameters, self.init)
        return lambda x: run.F.prelu(x, weight)


@dataclass(frozen=True)
class Softmax(Layer):
    """``torch.nn.Softmax`` and ``LogSoftmax`` along ``dim`` (counting the batch axis, as PyTorch).

    FLOPs: an exponential, a sum and a division (or subtraction) per element.

    >>> Softmax(1).infer((1000,)).flops
    3000
    """

    spellings = (spell("softmax", fields=("dim",), positional=("dim",)),
                 spell("logsoftmax", fields=("dim",), positional=("dim",), log=True))

    dim: int | None = None
    log: bool = arg(False, internal=True)

    def resolved_dim(self, shape: Shape) -> int:
        """The dim PyTorch uses: as given, or its implicit choice for the input's rank."""
        ndim = len(shape) + 1
        return (0 if ndim in (0, 1, 3) else 1) if self.dim is None else self.dim

    def infer(self, shape: Shape) -> Figures:
        ndim = len(shape) + 1
        type_name = "LogSoftmax" if self.log else "Softmax"
        dim = self.resolved_dim(shape)
        notes = ()
        if self.dim is None:  # PyTorch's implicit choice, with a deprecation warning
            notes = (f"dim not given: PyTorch picks dim={dim} for a {ndim}-dimensional input (and warns)",)
        if not isinstance(dim, int) or not -ndim <= dim < ndim:
            raise ShapeError(f"dim={dim} is out of range for a {ndim}-dimensional batch of {format_shape(shape)}",
                             hint=f"use a dim between {-ndim} and {ndim - 1}", field="dim")
        axis = dim % ndim - 1
        if axis < 0:
            raise BatchAxisError(f"{type_name} over dim 0 mixes the samples of the batch, which convcalc keeps apart",
                             hint="use dim=1 (channels or features) or a later axis", field="dim")
        windows = tuple(Global(n) if a + 1 == axis else IDENTITY for a, n in enumerate(shape[1:]))
        return Figures(type_name, shape, 0, 0, 3 * volume(shape), windows, notes, f"dim={dim}",
                       mixes_channels=axis == 0)

    def saved(self, use: Use) -> list | None:
        return [SAVES_OUTPUT]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        dim = self.resolved_dim(x.shape[1:])
        function = run.F.log_softmax if self.log else run.F.softmax
        return lambda x: function(x, dim)


@dataclass(frozen=True)
class Identity(Layer):
    """``torch.nn.Identity``: the input, unchanged.

    >>> Identity().infer((3, 8)).output_shape
    (3, 8)
    """

    spellings = (spell("identity"),)

    def infer(self, shape: Shape) -> Figures:
        return Figures("Identity", shape)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view"

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: x



@dataclass(frozen=True)
class Contiguous(Identity):
    """``tensor.contiguous()``: the input itself where it is laid out row by row already, else a copy that
    is. Training memory follows the copy: what reads it reads the copy, not the input's storage.

    >>> Contiguous(batch_axis=1).infer((5, 12)).output_shape
    (5, 12)
    """

    spellings = (spell("contiguous", fields=("batch_axis",)),)

    # Where PyTorch's tensor holds the batch, which decides what row by row means (nn.MultiheadAttention
    # works sequence first: its copy is (3, tokens, batch, embed)); convcalc's axes put the batch first
    batch_axis: int = 0

    def infer(self, shape: Shape) -> Figures:
        if not 0 <= self.batch_axis <= len(shape):
            raise ShapeError(f"batch_axis={self.batch_axis} is not an axis of a sample of {format_shape(shape)} "
                             "with its batch", hint=f"give 0 to {len(shape)}", field="batch_axis")
        return Figures("Contiguous", shape)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if contiguous else "new"

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """Row by row in PyTorch's order of axes, the batch at ``batch_axis``."""
        return strides.contiguous_with_batch_at(full, self.batch_axis)

    def prepare(self, run, x):
        return lambda x: x.copy()


@dataclass(frozen=True)
class Detach(Identity):
    """``tensor.detach()``: the input's values, cut from autograd's graph, so no gradient flows back
    through it (RAFT detaches its coordinates at each update): the layers before it compute no
    gradient for what only reaches the output through it.

    >>> Detach().infer((2, 46, 62)).output_shape
    (2, 46, 62)
    """

    spellings = (spell("detach"),)

    def infer(self, shape: Shape) -> Figures:
        return Figures("Detach", shape)

    def passes_gradient(self) -> bool:
        return False

@dataclass(frozen=True)
class StochasticDepth(Layer):
    """torchvision's ``StochasticDepth``: drops whole residual branches in training, the identity at inference.

    >>> StochasticDepth(0.2, "row").infer((96, 56, 56)).flops
    0
    """

    spellings = (spell("stochasticdepth", fields=("p", "mode"), positional=("p",)),)

    p: float = arg(0.0, rule=probability)
    mode: str = arg("row", rule=word("row", "batch"))

    def infer(self, shape: Shape) -> Figures:
        if not 0 <= self.p <= 1:
            raise ShapeError(f"drop probability has to be between 0 and 1, but got {self.p}",
                             hint="use p between 0 and 1", field="p")
        if self.mode not in ("batch", "row"):
            raise SpecError(f"mode={self.mode!r} is not batch or row", hint="use mode=row", field="mode")
        return Figures("StochasticDepth", shape, summary=f"p={self.p:g} {self.mode}")

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if not training or self.p == 0 else "new"

    def saved(self, use: Use) -> list | None:
        return [] if self.p == 0 else [saves_new(use.batch * use.itemsize)]  # one noise value per sample ("row")

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: x  # the identity at inference
