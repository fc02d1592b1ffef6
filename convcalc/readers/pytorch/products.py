"""Captured matrix products and attention: linear layers over tokens, ``matmul``/``bmm`` of two
activations (attention's scores and weighted values), ``baddbmm``, ``addmm`` and
``scaled_dot_product_attention``.

The batch may sit on any axis but the ones a product works on (the last two, or the last for a
linear layer); heads flattened into the batch are read per sample (see ``moves``).
"""

from __future__ import annotations

import math

from ...engine import layers as L
from ...engine.errors import ConvcalcError
from ...engine.layers.einsum import parse_equation
from .values import Act, Call, Const, Param, Unsupported


def linear(call: Call):
    x = call.act()
    call.trailing(1)
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    table = b.table if isinstance(b, Param) and b.table is not None else None
    # where the batch sits in PyTorch's order of rows; a matrix already where the batch is merged into the
    # rows of a two-axis tensor (heads joined again from sequence-first attention: tokens x batch rows)
    moved = x.layout.axis if x.layout.rank and not x.layout.absent and not x.layout.merged else 0
    if x.layout.merged and x.layout.rank == 2:
        moved = None
    if w is None:
        raise Unsupported("linear without a weight")
    return L.Linear(w.shape[0], b is not None, in_features=w.shape[1] if x.shape else None, bias_params=table,
                    weight_params=w.table if w.table is not None and not w.parts else None, batch_axis=moved)


def _same_layout(call: Call) -> None:
    """Activations must keep the batch alike; one computed without the input (once a pass) broadcasts."""
    if len({a.layout for a in call.reads if not a.layout.absent}) > 1:
        raise Unsupported(f"{call.op} of activations that keep the batch on different axes")


def matmul(call: Call):
    """``x @ W`` with a learned W: a Linear without bias; ``a @ b`` of two activations: a MatMul."""
    call.act()
    other = call.args.get("other", call.args.get("mat2"))
    if isinstance(other, Act):
        call.reads.append(other)
        call.trailing(2)
        _same_layout(call)
        return L.MatMul()
    if isinstance(other, Param) and not other.buffer and not other.batched and len(other.shape) > 2:
        return _batched_by_learned(call, other)
    if not isinstance(other, Param) or other.buffer or len(other.shape) != 2 or other.batched:
        raise Unsupported(f"{call.op} with a fixed or batched operand")
    call.trailing(1)
    call.weight("other" if "other" in call.args else "mat2", "weight")
    return L.Linear(other.shape[1], False, in_features=other.shape[0])


def _batched_by_learned(call: Call, other: Param):
    """``x @ W`` with a learned W of more than two axes (MViT's temporal relative positions, one matrix per
    frame): a batched product, written as the einsum it is. Its leading axes pair with the per-sample axes
    of x before its last two, so the batch must lead alone or sit in x's rows."""
    x = call.reads[0]
    call.trailing(1)
    rank, layout = len(x.shape), x.layout
    if not (layout.leading or (layout.merged and layout.axis == layout.rank - 2)) or len(other.shape) > rank:
        raise Unsupported(f"{call.op} of a learned stack of matrices against the batch")
    if tuple(other.shape[:-2]) != tuple(x.shape[rank - len(other.shape):-2]) or other.shape[-2] != x.shape[-1]:
        raise Unsupported(f"{call.op} with a learned operand that broadcasts")
    letters = "abcdefghijklmnopqrstuvwx"[:rank]
    stack = letters[rank - len(other.shape):-2]
    call.weight("other" if "other" in call.args else "mat2", "weight")
    return L.Einsum(f"{letters},{stack}{letters[-1]}z->{letters[:-1]}z", tuple(other.shape), _table(other))


def baddbmm(call: Call):
    """``beta * input + alpha * (batch1 @ batch2)``, all three activations."""
    values = [call.args["self"], call.args["batch1"], call.args["batch2"]]
    if not all(isinstance(v, Act) for v in values):
        raise Unsupported("baddbmm with a fixed or learned term")
    call.reads.extend(values)
    call.trailing(2)
    _same_layout(call)
    return L.MatMul(beta=float(call.args.get("beta", 1)), alpha=float(call.args.get("alpha", 1)), added=True)


def addmm(call: Call):
    """``bias + x @ W`` with learned W (k x m) and bias: a Linear, as ``nn.Linear`` on 2-D input traces."""
    x = call.act("mat1")
    call.trailing(1)
    w, bias = call.args["mat2"], call.args["self"]
    if not isinstance(w, Param) or w.buffer or len(w.shape) != 2:
        raise Unsupported("addmm of a computed matrix")
    if float(call.args.get("beta", 1)) != 1 or float(call.args.get("alpha", 1)) != 1:
        raise Unsupported("addmm with scaling")
    call.weight("mat2", "weight")
    has_bias = isinstance(bias, Param) and not bias.buffer
    if has_bias:
        call.weight("self", "bias")
    elif not isinstance(bias, Const):
        raise Unsupported("addmm with a computed term")
    return L.Linear(w.shape[1], has_bias, in_features=x.shape[-1] if x.shape else None)


def attention(call: Call):
    """``F.scaled_dot_product_attention``: query, key, value (and a mask) computed from the input."""
    tensors = [call.args["query"], call.args["key"], call.args["value"]]
    mask = call.args.get("attn_mask")
    if not all(isinstance(t, Act) for t in tensors):
        raise Unsupported("attention of fixed tensors")
    call.reads.extend(tensors)
    call.trailing(2)
    _same_layout(call)
    if isinstance(mask, Act):  # a branch; one computed without the input (a bias, once a pass) broadcasts
        if not mask.layout.absent and mask.layout != tensors[0].layout:
            raise Unsupported(f"{call.op} of a mask that keeps the batch on another axis")
        call.reads.append(mask)
    mask_shape = table = None
    if isinstance(mask, (Param, Const)):  # a fixed mask, or a learned bias (relative positions) given as one
        mask_shape = call.operand(tuple(mask.shape))
        if isinstance(mask, Param) and not mask.buffer:
            call.weights.append(("mask", mask.name))
            table = mask.table or math.prod(mask.shape)
    elif mask is not None and not isinstance(mask, Act):
        raise Unsupported("attention with a mask of another kind")
    scale = call.args.get("scale")
    return L.ScaledDotProductAttention(float(call.args.get("dropout_p") or 0.0), bool(call.args.get("is_causal")),
                                       None if scale is None else float(scale),
                                       bool(call.args.get("enable_gqa", False)), mask_shape, table)


def einsum(call: Call):
    """``torch.einsum`` of activations (and a learned last operand), rewritten per sample: the batch's letter
    (the one on each activation's batch axis) leaves every term where the batch is alone on its axis."""
    tensors = list(call.args["tensors"])
    try:  # the kind's own reading of the equation, PyTorch's implicit output included
        terms, output = parse_equation(str(call.args["equation"]), len(tensors))
    except ConvcalcError:
        raise Unsupported("einsum with an ellipsis, or an equation that does not fit its operands") from None
    if len(tensors) > 2:
        raise Unsupported("einsum of more than two operands")
    acts = [t for t in tensors if isinstance(t, Act)]
    learned = [t for t in tensors if isinstance(t, Param) and not t.buffer and not t.batched]
    if len(acts) + len(learned) != len(tensors):
        raise Unsupported("einsum of fixed tensors")
    if learned and tensors[-1] is not learned[0]:  # the kind takes a learned operand last: the terms move too
        terms, tensors = terms[::-1], tensors[::-1]
    if all(a.layout.absent for a in acts):  # computed without the input, once a pass: the whole tensors
        call.reads.extend(acts)
        if learned:
            call.weights.append(("weight", learned[0].name))
        return L.Einsum(",".join(terms) + "->" + output, tuple(learned[0].shape) if learned else None,
                        _table(learned[0]) if learned else None)
    letters = {term[a.layout.axis] for term, a in zip(terms, tensors) if isinstance(a, Act)}
    layout = acts[0].layout
    if len(letters) != 1 or len({a.layout for a in acts}) != 1 or output[call.out_layout.axis] not in letters:
        raise Unsupported("einsum whose operands keep the batch on different letters")
    batch = letters.pop()
    if learned and batch in terms[-1]:
        raise Unsupported("einsum of a learned tensor along the batch")
    call.reads.extend(acts)
    if learned:
        call.weights.append(("weight", learned[0].name))
    drop = (lambda term: term) if layout.merged else (lambda term: term.replace(batch, ""))
    per_sample = ",".join(drop(t) for t in terms) + "->" + drop(output)
    return L.Einsum(per_sample, tuple(learned[0].shape) if learned else None, _table(learned[0]) if learned else None)


def _table(learned: Param) -> int | None:
    """The parameters a gathered or composed operand was made from (None: it is the parameter itself)."""
    return learned.table


_CELLS = {"lstm": ("LSTM", "tanh"), "gru": ("GRU", "tanh"), "rnn_tanh": ("RNN", "tanh"), "rnn_relu": ("RNN", "relu")}


def recurrent(call: Call):
    """``nn.LSTM`` / ``GRU`` / ``RNN`` as ATen runs them: the sequence, zero initial states and the flat list of
    weights (per layer and direction: input, hidden, two biases, and an LSTM's projection)."""
    x = call.act("input")
    cell, nonlinearity = _CELLS[call.op]
    states = call.args["hx"] if isinstance(call.args["hx"], (list, tuple)) else [call.args["hx"]]
    if not all(isinstance(h, Const) for h in states):
        raise Unsupported(f"{call.op} from initial states computed from the input (convcalc's layer starts at zero)")
    weights = list(call.args["params"])
    if not weights or not all(isinstance(w, Param) and not w.buffer for w in weights):
        raise Unsupported(f"{call.op} with computed weights")
    layers, directions = int(call.args["num_layers"]), 2 if call.args["bidirectional"] else 1
    bias = bool(call.args["has_biases"])
    per = len(weights) // (layers * directions)
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[cell]
    hidden = weights[1].shape[0] // gates
    proj = weights[per - 1].shape[0] if per == 2 + 2 * bias + 1 else 0
    if x.layout.rank != 3 or x.layout.merged or x.layout.axis != (0 if call.args["batch_first"] else 1):
        raise Unsupported(f"{call.op} whose batch axis is not the one batch_first names (it runs over the batch)")
    layer = L.Recurrent(cell, hidden, input_size=x.shape[-1] if x.shape else None, num_layers=layers, bias=bias,
                        batch_first=bool(call.args["batch_first"]), dropout=float(call.args["dropout"]),
                        bidirectional=directions == 2, proj_size=proj, nonlinearity=nonlinearity)
    # the flat list is PyTorch's order of the module's tensors, which the layer names as the module does
    roles = [role for role, _ in layer.infer((2, x.shape[-1])).tensors] if x.shape else []
    if len(roles) != len(weights):
        raise Unsupported(f"{call.op} whose {len(weights)} weights are not the module's own")
    call.weights.extend(zip(roles, (w.name for w in weights)))
    return layer


OPERATORS = {
    "linear": linear, "matmul": matmul, "mm": matmul, "bmm": matmul, "baddbmm": baddbmm, "addmm": addmm,
    "scaled_dot_product_attention": attention, "einsum": einsum, **dict.fromkeys(_CELLS, recurrent),
}
