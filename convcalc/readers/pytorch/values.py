"""What the arguments of a captured operator call are: activations, parameters, fixed tensors."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...engine.errors import SpecError


@dataclass(frozen=True)
class Layout:
    """Where the batch sits in a traced tensor: the ``axis`` that holds it, ``rank`` axes in all, and
    whether that axis also holds other sizes (``merged``: attention's heads flattened with the batch,
    Swin's windows). The per-sample shape leaves the batch out of its axis (and drops the axis when it
    held the batch alone); convcalc's layers see that shape, with the batch as axis 0 before it.
    """

    axis: int = 0
    rank: int = 0
    merged: bool = False
    # a tensor computed without the input (a position-bias MLP on its fixed table): the trace holds no
    # batch; convcalc's layers see the whole traced shape per sample, a batch axis before it
    absent: bool = False
    # a tensor computed without the input whose traced axis 0, of size 1, stands where the batch would (a
    # convolution's input): per sample, the axes after it, batch first
    unit: bool = False
    # the batch is the inner factor of its merged axis (sample b of part i at i * batch + b), as
    # torch.cat of whole batches along it makes; a merged axis is otherwise batch-major (b * k + i), as
    # a reshape of (batch, k) makes. Only operations that keep that axis whole may read it.
    inner: bool = False

    @property
    def fixed(self) -> bool:
        """Whether the tensor is computed without the input (``absent`` or ``unit``)."""
        return self.absent or self.unit

    @property
    def leading(self) -> bool:
        """Whether the tensor is batch first and alone on its axis, as convcalc's layers count dims."""
        return self.axis == 0 and not self.merged and not self.absent

    def dim(self, dim: int) -> int:
        """A traced tensor's axis ``dim`` (negative from the end) as a layer's dim, batch first.

        >>> Layout(axis=1, rank=3).dim(2), Layout(axis=1, rank=3).dim(0)   # (N, B, E) as (B, N, E)
        (2, 1)
        """
        if not self.rank:  # batch first (the default): dims already count it so
            return dim
        if self.absent:
            return dim % self.rank + 1
        d = dim % self.rank
        if d == self.axis:
            if self.merged:
                raise Unsupported(f"an operation along axis {dim}, which holds the batch with other sizes")
            return 0
        return d + 1 - (d > self.axis and not self.merged)

    def per_sample_axes(self) -> list[int]:
        """The traced axes that the per-sample shape keeps, in order."""
        return [d for d in range(self.rank) if self.merged or self.absent or d != self.axis]


LEADING = Layout()


def absent(rank: int) -> Layout:
    """The layout of a tensor computed without the input, ``rank`` axes in the trace."""
    return Layout(0, rank, absent=True)


@dataclass(frozen=True)
class Act:
    """A tensor computed from the network input: the output of a layer (or the input itself)."""

    ref: str
    shape: tuple[int, ...]  # per sample
    layout: Layout = LEADING  # where the traced tensor keeps its batch (LEADING: first, alone)


@dataclass(frozen=True)
class Param:
    """A parameter of the model (its qualified name), or a buffer when ``buffer``.

    ``table`` is set on a tensor gathered or reshaped from a parameter (Swin's relative-position
    bias, indexed from its table): the size of the parameter it was made from, which is what a
    layer using it counts. ``batched`` marks a parameter expanded to the batch (a class token).
    """

    name: str
    shape: tuple[int, ...]
    buffer: bool = False
    table: int | None = None
    batched: bool = False
    # made from several parameters: each (name, count), once; ``table`` is their sum
    parts: tuple[tuple[str, int], ...] = ()
    # the operator that computed it from the parameter in forward (clamp, exp, a gather), where it is a
    # tensor of its own storage, which a product saves; "": the parameter's storage
    made: str = ""


@dataclass(frozen=True)
class Const:
    """A tensor that does not depend on the input and is not a parameter (made inside forward)."""

    shape: tuple[int, ...]
    # repeated over the batch (its leading 1 stands for every sample's copy): what PyTorch computes
    # from it, it computes per sample, not once per pass
    repeated: bool = False
    # repeated over the batch merged with other sizes on its axis 0 (RAFT's lookup grid of its coordinates,
    # (batch * positions, 9, 9, 2)): its shape per sample and where it keeps the batch
    per_sample: tuple[int, ...] | None = None
    layout: Layout | None = None
    # with ``repeated``: one sample's values every sample views (an expand over the batch, stride 0), so
    # PyTorch holds one storage, not a copy per sample
    shared: bool = False


@dataclass
class Call:
    """One operator call: its name (``conv2d``), its arguments by name, and what the layer reads."""

    op: str
    args: dict
    batch: int = 1  # the traced batch, which reshapes name as their first size
    reads: list = field(default_factory=list)  # the activations read, in order (Act)
    weights: list = field(default_factory=list)  # (role, parameter name)
    out: tuple = ()  # the traced result's per-sample shape
    out_layout: Layout = LEADING  # and where it keeps the batch

    @property
    def leading(self) -> bool:
        """Whether every tensor read and made is batch first, as convcalc's layers count dims."""
        return self.out_layout.leading and all(a.layout.leading for a in self.reads)

    def dim(self, value) -> int:
        """The first activation's traced axis ``value`` as a layer's dim (batch first)."""
        return self.reads[0].layout.dim(int(value))

    def trailing(self, count: int) -> None:
        """Refuse, as not countable, when the batch sits among the last ``count`` axes the operation
        works on (a product or normalization over it would mix the samples)."""
        for a in self.reads:
            if a.layout.rank and not a.layout.absent and a.layout.axis >= a.layout.rank - count:
                raise Unsupported(f"{self.op} over the axis that holds the batch")

    def operand(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A fixed or learned operand's shape, as it broadcasts against the per-sample activation:
        the size-1 axis facing a batch axis of its own is left out (it broadcasts over the samples)."""
        layout = next((a.layout for a in self.reads if not a.layout.absent), LEADING)
        if layout.leading or layout.merged:
            return shape
        at = layout.axis - (layout.rank - len(shape))  # the operand's axis facing the batch, if any
        if at < 0:
            return shape
        if shape[at] != 1:
            raise Unsupported(f"{self.op} of an operand that varies along the batch axis")
        return shape[:at] + shape[at + 1:]

    def act(self, name: str | None = None) -> Act:
        """The activation argument ``name`` (default: the first argument, ``input`` or ``self``), now read."""
        if name is None or name not in self.args:
            name = next(iter(self.args))
        value = self.args[name]
        if not isinstance(value, Act):
            raise Unsupported(f"{self.op}: {name} is not computed from the input")
        self.reads.append(value)
        return value

    def weight(self, name: str, role: str) -> Param | None:
        value = self.args.get(name)
        if value is None:
            return None
        if isinstance(value, Param):
            self.weights.append((role, value.name))
            others = [name for name, _ in value.parts if name != value.name]
            self.weights.extend((f"{role}.part{k}", name) for k, name in enumerate(others, 1))
            return value
        if isinstance(value, Const):
            return Param("", value.shape, buffer=True)
        raise Unsupported(f"{self.op}: {name} is computed from the input (a dynamic weight)")


def sizes_of(val, where: str) -> tuple[int, ...]:
    """A traced tensor's sizes, which must not depend on the input's values (``nonzero``, ``unique``)."""
    dims = tuple(val.shape)
    if not all(isinstance(n, int) for n in dims):
        raise SpecError(f"the size of {where} depends on the values of the input, not only its shape",
                        hint="convcalc analyses shapes; a model with data-dependent sizes (nonzero, unique, "
                        "masking) cannot be analysed", field="model")
    return dims


def layout_of(torch, val, where: str, batch) -> tuple[tuple[int, ...], Layout]:
    """A traced tensor's per-sample shape, and where it keeps the batch.

    ``batch`` is the symbol of a symbolic batch (every size then says which axis holds it and
    what else that axis holds) or the traced batch size (which must then lead).
    """
    dims = tuple(val.shape)
    if isinstance(batch, int):
        sizes = sizes_of(val, where)
        if not sizes or sizes[0] != batch:
            raise Unsupported(f"{where} does not keep the batch first")
        return sizes[1:], Layout(0, len(sizes))
    shape, axis, merged = [], None, False
    for i, d in enumerate(dims):
        expr = d.node.expr if isinstance(d, torch.SymInt) else None
        if expr is None or expr.is_number:
            shape.append(int(d))
            continue
        if batch not in expr.free_symbols:
            sizes_of(val, where)  # a size that depends on the values: refused there
        factor, rest = expr.as_coeff_Mul()
        if rest != batch or axis is not None or not factor.is_integer or factor < 1:
            raise Unsupported(f"{where}: a size of {expr} is not the batch times a number")
        axis, merged = i, factor != 1
        if merged:
            shape.append(int(factor))
    if axis is None:
        raise Unsupported(f"{where} no longer has the batch (it was reduced or indexed)")
    return tuple(shape), Layout(axis, len(dims), merged)


class Unsupported(Exception):
    """The call is not one convcalc can cost: it stays in the network, not counted."""


# Operators whose result holds a parameter's values where they are (a view, or no operation at all) ...
_SAME = {"view", "reshape", "_unsafe_view", "unsqueeze", "squeeze", "permute", "transpose", "t", "alias", "detach",
         "flatten", "unflatten", "view_as", "reshape_as", "to", "_to_copy", "type_as", "contiguous", "lift_fresh_copy"}
# ... views that pick part of them: of a parameter, still its storage
_PICKS = {"expand", "expand_as", "select", "slice", "narrow", "split", "split_with_sizes", "chunk", "unbind",
          "tensor_split"}
# ... operators that make a tensor of their own from parameters and save nothing new for the backward pass
# (a clamp saves its input, the parameter; a gather its index; a join or a sum nothing), and those that
# save their result
_MAKE = {"clamp", "clamp_min", "clamp_max", "index", "index_select", "cat", "concat", "stack", "add", "sub",
         "repeat", "repeat_interleave"}
_SAVE_RESULT = {"exp", "sigmoid", "tanh"}


def made_by(op: str, learned) -> str:
    """How a tensor computed from parameters in forward holds their values: "" (their storage: a view of one),
    the operator that made a tensor of its own where the tensors its making saved are that tensor or the
    parameters (Swin V2's logit scale, clamped then exponentiated; MViT's position embedding, joined
    from tables), or "?" (a making convcalc does not follow)."""
    made = {p.made for p in learned}
    if op in _SAME and len(learned) == 1:
        return learned[0].made
    if op in _PICKS and made == {""}:
        return ""
    if op in _MAKE and made == {""} or op in _SAVE_RESULT and len(learned) == 1 and made <= {"", *_MAKE}:
        return op
    return "?"


def weight_flags(made: str, op: str) -> tuple[bool, bool]:
    """For arithmetic ``op`` with a learned operand ``made`` so (``made_by``): whether it is the result of an
    exponential (or sigmoid, tanh) that a product reads (``made``: saved once, by the one or the other),
    and whether what its making saved is not followed (``unfollowed``: such a result an addition reads, a
    product of another made tensor, or a making convcalc does not follow). A tensor joined, gathered or
    clamped from parameters saves nothing an addition needs."""
    product = op in ("mul", "mul_")
    if made in _SAVE_RESULT and product:
        return True, False
    return False, made == "?" or made in _SAVE_RESULT or product and made != ""
