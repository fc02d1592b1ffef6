"""What every layer spec shares: how it is checked against an incoming shape,
and the figures it produces there."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Origin, ShapeError, SpecError
from ..windows import (
    Adaptive,
    Broadcast,
    Cyclic,
    Global,
    Nearest,
    OnnxResample,
    Partition,
    Resample,
    Scatter,
    Shift,
    Sliding,
    Unread,
)

Shape = tuple[int, ...]
Window = Sliding | Scatter | Nearest | Shift | Adaptive | Global | Broadcast | Resample | OnnxResample | Cyclic | Partition | Unread


@dataclass(frozen=True, slots=True)  # slots: a deep network makes one per layer
class Figures:
    """A layer's effect on one sample: output shape, costs and receptive windows.

    ``windows`` is None for layers that keep every position (activations),
    otherwise one receptive window (see ``convcalc.receptive``) per incoming spatial axis.
    """

    type: str
    output_shape: Shape
    params: int = 0
    macs: int = 0
    flops: int = 0
    windows: tuple[Window, ...] | None = None
    notes: tuple[str, ...] = ()
    summary: str = ""
    # Where each output axis comes from, for layers that move axes (permute,
    # reshape, flatten, squeeze): the input axis it continues, or None for an
    # axis that is new or merged. None: output axis i continues input axis i.
    dims: tuple[int | None, ...] | None = None
    # Whether each output reads every position of input axis 0 (channels), as
    # convolutions do: it matters once a permute puts a spatial axis there.
    mixes_channels: bool = False
    # Merges whose branches broadcast (mul, add of a gate): the analysis gives
    # each branch its own windows by PyTorch's broadcasting rule.
    broadcast: bool = False
    # The parameter tensors behind ``params``, by role (weight, bias), so a
    # tensor shared by several layers is counted once. Empty: one tensor.
    tensors: tuple[tuple[str, int], ...] = ()
    # False for an operation convcalc cannot cost: its MACs and FLOPs are unknown.
    counted: bool = True
    # The window along axis 0, for layers that act on an axis wherever it is (roll, slice, pad):
    # a channels-last tensor (Swin's windows, ConvNeXt's blocks) has a spatial axis there.
    # None: axis 0 is read whole where ``mixes_channels``, else position for position.
    axis0: Window | None = None
    # Reshapes (view, reshape, flatten): the output holds the input's elements in the same
    # order, so an axis split over several (a window partition) is followed digit by digit.
    flat: bool = False
    # Products (matmul, attention, einsum), per source: for each of its axes, the output axis it
    # continues position for position, or None for an axis read whole (contracted, or attended
    # over). Where given, it sets the receptive windows in place of ``windows``, per source.
    continues: tuple[tuple[int | None, ...], ...] | None = None


@dataclass(frozen=True)
class Layer:
    """Base of every layer spec: an immutable record of what the user wrote.

    Subclasses are frozen dataclasses whose fields are PyTorch's argument
    names; ``infer`` checks them against an incoming shape (channels first,
    no batch) and returns the ``Figures``.

    >>> from convcalc.engine.layers import Conv
    >>> figures = Conv(64, 3, padding=1).infer((3, 224, 224))
    >>> figures.output_shape, figures.params, figures.macs
    ((64, 224, 224), 1792, 86704128)
    """

    # An elementwise operation on one tensor, whose new output PyTorch lays out as its input is laid out
    # (``engine/strides.elementwise``); a class attribute, not a field
    writes_like_input = False

    origin: Origin | None = field(default=None, compare=False, repr=False, kw_only=True)
    # Wiring, for networks that are graphs: the layer's name, the names of the
    # layers it reads (None: the one before it), and the blocks it sits in.
    name: str | None = field(default=None, compare=False, repr=False, kw_only=True)
    inputs: tuple[str, ...] | None = field(default=None, compare=False, repr=False, kw_only=True)
    path: tuple[str, ...] = field(default=(), compare=False, repr=False, kw_only=True)
    # Notes the reader attached (an inserted Flatten, an assumption it made).
    remark: tuple[str, ...] = field(default=(), compare=False, repr=False, kw_only=True)
    # Computed from parameters and fixed values, not the input (Swin V2's position-bias MLP on its
    # table of coordinates): PyTorch runs it once per forward pass, whatever the batch, so its
    # figures are counted once, not per sample.
    once: bool = field(default=False, compare=False, repr=False, kw_only=True)
    # Runs on each of this many slices along its input's axis 0, with one set of parameters (a tensor
    # whose batch PyTorch holds merged with attention heads: see ``slices.py``).
    slices: int = field(default=1, compare=False, repr=False, kw_only=True)
    # The output shape a traced model showed (PyTorch route): the analysis
    # fails loudly where its own rules disagree, never reporting this instead.
    expect: tuple[int, ...] | None = field(default=None, compare=False, repr=False, kw_only=True)
    # The model's names for this layer's parameter tensors, by role
    # (("weight", "layer1.0.conv1.weight"), ...): tied tensors count once.
    weights: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False, kw_only=True)

    # The kinds (names and their arguments) this class answers to; see ``kind.py``.
    spellings = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "spellings" in cls.__dict__:
            from .kind import register  # kind.py needs Layer's module only at run time

            register(cls)

    def infer(self, shape: Shape) -> Figures:  # pragma: no cover - abstract
        raise NotImplementedError

    # What convcalc knows about the kind beyond its figures. Each family overrides what applies.

    def storage(self, training: bool, contiguous: bool) -> str:
        """Where the output lives: ``new`` storage, a ``view`` of the input's, a ``scattered`` view
        (a permutation or slice), or ``held`` by a parameter (no activation bytes: the parameters count
        it). ``contiguous``: whether the output can be a view of the input's elements where they sit
        (a reshape that cannot is a copy)."""
        return "new"

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """The strides of a new output of ``full`` shape (batch first), given its inputs' per-sample
        ``shapes`` and full strides (``laid``), where the kernel does not write it row by row; None: it does."""
        return None

    def passes_gradient(self) -> bool:
        """Whether a gradient flows back through the layer to what it reads (``detach`` stops it)."""
        return True

    def saved(self, use: Use) -> list | None:
        """What autograd saves for the backward pass (``saves_input``, ``SAVES_OUTPUT``, ``saves_new``
        items), in training mode, as torch 2.13's CPU kernels do; None where convcalc does not know."""
        return None

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        """The MACs of the layer's backward pass for the batch, as autograd runs it (torch 2.13's
        derivatives, PyTorch's math backend for attention), given its forward MACs for the batch:
        the products that give each input's gradient ``use`` says is needed, and those giving the
        parameters' gradients when it has trainable ones. 0 for a layer without products; None
        where convcalc does not know (the totals then say they are not exact)."""
        return None

    def prepare(self, run: Any, x: Any):
        """The call that executes the layer on the NumPy backend ``run`` gives (``run.F``, its random
        parameters), for inputs like ``x``; it receives one array (all branches for merges)."""
        raise SpecError(f"convcalc cannot execute {type(self).__name__}", hint="run it with PyTorch", field="*")

    def explain_sizes(self, shape: Shape, out: Shape) -> list[str]:
        """``convcalc explain``'s lines deriving the output size (none: the size is the input's)."""
        return []

    def explain_costs(self, report: Any, batch: int) -> list[str]:
        """``convcalc explain``'s lines deriving the MACs and parameters."""
        return []


@dataclass(frozen=True)
class Use:
    """How a layer is used in a training step: its inputs' and output's per-sample shapes, the batch,
    the bytes of one element, whether each input needs a gradient and whether it has trainable parameters."""

    inputs: tuple[Shape, ...]
    output: Shape
    batch: int
    itemsize: int
    inputs_grad: tuple[bool, ...]
    trainable: bool
    # The roles (weight, bias) of its parameter tensors that are frozen while others train: a network
    # that trains only biases computes no weight gradients.
    frozen: frozenset[str] = frozenset()
    # For each input, the first input that reads the same tensor (attention given one tensor as key and
    # value projects it once); empty: all distinct
    same: tuple[int, ...] = ()

    def trains(self, role: str = "weight") -> bool:
        """Whether the layer's parameter tensor of that role gets a gradient."""
        return self.trainable and role not in self.frozen

    @property
    def statistic(self) -> int:
        """Bytes of a saved mean or inverse deviation (at least float32)."""
        return max(self.itemsize, 4)


def gradient_products(forward_macs: int, *needed: bool) -> int:
    """The backward of a product of two operands (a convolution's input and weight, a matrix
    product's factors): each operand's gradient is one product as large as the forward one
    (a convolution's input gradient is a transposed convolution, its weight gradient a
    convolution of the input with the output's gradient), computed only when needed.

    >>> gradient_products(1000, False, True), gradient_products(1000, True, True)
    (1000, 2000)
    """
    return forward_macs * sum(1 for n in needed if n)


SAVES_OUTPUT = ("output",)  # the result's storage


def saves_input(k: int = 0) -> tuple:
    """The k-th input's storage."""
    return ("input", k)


def saves_folded(k: int = 0, batch_axis: int = 0) -> tuple:
    """The k-th input folded to rows of its last axis, as a linear layer's product reads it: its
    storage where the fold is a view, a copy of it where it is not (``engine/strides.py``). The rows
    run in PyTorch's order of axes, the batch at ``batch_axis`` (1 for a sequence-first tensor)."""
    return ("folded", k, batch_axis)


def saves_batched(k: int, other: int) -> tuple:
    """The k-th input as ``torch.matmul`` hands it to ``bmm`` beside the ``other``-th: expanded to the
    leading axes both broadcast to and folded to one batch of matrices, its storage where that is a
    view, a copy where it is not (``engine/strides.py``)."""
    return ("batched", k, other)


def saves_steps(k: int = 0, batch_first: bool = True, readers: int = 1, contiguous: bool = False) -> tuple:
    """The k-th input, a sequence, as a recurrent layer reads it, steps first (``input.transpose(0, 1)``
    when ``batch_first``): folded to rows by the input product of each of its ``readers`` (a
    bidirectional layer's two directions), or made ``contiguous`` once (oneDNN's LSTM). Its storage where
    that is a view, a copy where it is not (``engine/strides.py``)."""
    return ("steps", k, batch_first, readers, contiguous)


def saves_einsum() -> tuple:
    """What ``torch.einsum``'s one product keeps of its two operands, as it lays them out
    (``engine/strides.einsum_plan``)."""
    return ("einsum",)


def saves_once(name: str, nbytes: int) -> tuple:
    """A tensor of ``nbytes`` made from the parameter ``name`` in forward (Swin V2's exponentiated logit
    scale): counted once, however many layers save it."""
    return ("once", name, nbytes)


def saves_flash(nbytes: int) -> tuple:
    """What CPU flash attention saves: its inputs as given, its output, and a logsumexp of ``nbytes``
    (where an input's last axis is not contiguous, PyTorch runs its math backend instead: the layer's
    ``math_saved``)."""
    return ("flash", nbytes)


def saves_new(nbytes: int) -> tuple:
    """A tensor only the backward pass reads (statistics, indices, dropout's noise)."""
    return ("new", nbytes)


AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_names(rank: int) -> tuple[str, ...]:
    """The spatial axes' names ``explain`` uses.

    >>> axis_names(2), axis_names(4)
    (('H', 'W'), ('axis0', 'axis1', 'axis2', 'axis3'))
    """
    return AXES.get(rank, tuple(f"axis{i}" for i in range(rank)))


def times_batch(report, batch: int) -> str:
    """``explain``'s per-sample MACs line: the count, and the batch's where it is more than one."""
    per_sample = report.macs // batch
    return f"{per_sample:,}" + (f", x batch {batch} = {report.macs:,}" if batch > 1 else "")


def spatial_rank(shape: Shape, type_name: str, rank: int | None, *, minimum: int = 1) -> int:
    """The number of spatial axes in ``shape`` (channels first), checked against the
    rank a class name such as Conv2d fixes."""
    have = len(shape) - 1
    if rank is not None and have != rank:
        raise ShapeError(
            f"{type_name} needs a {rank}d input (channels x {rank} spatial sizes) "
            f"but receives {format_shape(shape)} ({have} spatial)",
            hint=f"drop the rank from the layer name so it follows the input, or give a {rank}d input",
            field="*",
        )
    if rank is None and have > 3:
        raise ShapeError(
            f"{type_name} works on 1 to 3 spatial axes, as PyTorch's {type_name}1d/2d/3d do, but receives "
            f"{format_shape(shape)} ({have} spatial)",
            hint="check the input shape: channels first, then the spatial sizes, without the batch",
            field="*",
        )
    if have < minimum:
        raise ShapeError(
            f"{type_name} needs channels and at least {minimum} spatial size(s) "
            f"but receives {format_shape(shape)}",
            hint="give an input such as 3x224x224, and put Flatten/Linear after the spatial layers",
            field="*",
        )
    return have


def per_axis(value, rank: int, name: str) -> tuple[int, ...]:
    """Broadcast an int, or check a per-axis tuple, for ``rank`` axes."""
    if isinstance(value, str):
        raise SpecError(f"{name}={value!r} is not allowed here", hint=f"give {name} as integers", field=name)
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise SpecError(
            f"{name} has {len(value)} values {format_tuple(value)} but the input has {rank} spatial axes",
            hint=f"give one value or {rank} values joined by x, e.g. {'x'.join(['3'] * rank)}",
            field=name,
        )
    return tuple(value)


def require_at_least(values: tuple[int, ...], low: int, name: str, what: str) -> None:
    """Raise if any per-axis value is below ``low``."""
    if any(v < low for v in values):
        raise ShapeError(
            f"{name} must be {what} (got {short(values)})",
            hint=f"use {name} values of at least {low}",
            field=name,
        )


def format_shape(shape: Shape) -> str:
    """3x224x224 style.

    >>> format_shape((3, 224, 224))
    '3x224x224'
    """
    return "x".join(str(n) for n in shape)


def format_tuple(values) -> str:
    """An int alone, a tuple as (a, b).

    >>> format_tuple((3, 5)), format_tuple((2,)), format_tuple(4)
    ('(3, 5)', '2', '4')
    """
    if isinstance(values, int):
        return str(values)
    values = tuple(values)
    if len(values) == 1:
        return str(values[0])
    return "(" + ", ".join(str(v) for v in values) + ")"


def short(values: tuple[int, ...]) -> str:
    """A per-axis tuple as one number when all agree, else joined by x.

    >>> short((3, 3)), short((3, 5))
    ('3', '3x5')
    """
    if len(set(values)) == 1:
        return str(values[0])
    return "x".join(str(v) for v in values)
