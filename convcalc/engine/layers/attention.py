"""Attention: ``torch.nn.functional.scaled_dot_product_attention`` of query, key and value branches.

Per sample, the query is (..., L, E), the key (..., S, E) and the value (..., S, Ev); the
output is (..., L, Ev). A fourth branch is ``attn_mask``, broadcast to the scores (..., L, S).
With ``enable_gqa`` the key and value may have fewer heads (axis -3) than the query, a divisor
of them, as grouped-query attention shares them.

Costs, as PyTorch's math backend computes them and ``torch.utils.flop_counter`` counts them:
two products, L x S x E and L x S x Ev multiply-accumulates per head (the key and value heads
broadcast to the query's), so FLOPs are twice that; convcalc adds the work on the L x S
scores: the scaling (1 per score), the mask (1) and softmax (3: an exponential, a sum and a
division). A causal mask or dropout changes none of the products.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import strides
from ..errors import ShapeError
from ..sizes import volume
from ..windows import Global
from .base import Figures, Shape, Use, format_shape, saves_batched, saves_flash, saves_new, times_batch
from .kind import arg, spell
from .merge import Merge
from .products import aligned_right, broadcast_leading
from .rules import probability

SOFTMAX_FLOPS = 3  # per score: exponential, sum, division (as convcalc's Softmax)


@dataclass(frozen=True)
class ScaledDotProductAttention(Merge):
    """``F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, enable_gqa)``.

    >>> fig = ScaledDotProductAttention().merge(((12, 197, 64),) * 3)
    >>> fig.output_shape, fig.macs
    ((12, 197, 64), 59610624)
    """

    spellings = (spell("attention", "sdpa", "scaled_dot_product_attention",
                       fields=("dropout_p", "is_causal", "scale", "enable_gqa", "mask_shape", "mask_table")),)

    dropout_p: float = arg(0.0, rule=probability)
    is_causal: bool = False
    scale: float | None = None
    enable_gqa: bool = False
    # A mask that is no branch: fixed, or learned (a relative-position bias gathered from a table of
    # mask_table values, which are counted as parameters)
    mask_shape: tuple[int, ...] | None = None
    mask_table: int | None = None

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        if len(shapes) not in (3, 4):
            raise ShapeError(f"attention reads query, key and value (and a mask) but receives {len(shapes)} branches",
                             hint='e.g. {"type": "attention", "from": ["q", "k", "v"]}', field="from")
        q, k, v = shapes[:3]
        if any(len(s) < 2 for s in (q, k, v)) or not len(q) == len(k) == len(v):
            raise ShapeError(f"attention needs query, key and value of one rank, each at least tokens x features per "
                             f"sample; got {format_shape(q)}, {format_shape(k)}, {format_shape(v)}",
                             hint="reshape them to (heads x) tokens x features", field="from")
        (length, features), (source, key_features), (value_tokens, value_features) = q[-2:], k[-2:], v[-2:]
        if key_features != features or value_tokens != source:
            raise ShapeError(f"attention: the key {format_shape(k)} must have the query's {features} features and "
                             f"the value {format_shape(v)} the key's {source} tokens",
                             hint="check the projections that make query, key and value", field="from")
        if k[:-2] != v[:-2]:
            raise ShapeError(f"attention: key {format_shape(k)} and value {format_shape(v)} need the same leading "
                             "axes", hint="make key and value alike but for their features", field="from")
        key_lead = k[:-2]
        if self.enable_gqa and len(q) >= 3 and k[-3] != q[-3]:
            if k[-3] < 1 or q[-3] % k[-3]:
                raise ShapeError(f"enable_gqa: the query's {q[-3]} heads are not a multiple of the key's {k[-3]}",
                                 hint="use a number of key heads that divides the query's", field="enable_gqa")
            key_lead = (*k[:-3], q[-3])
        leading = broadcast_leading(q[:-2], key_lead, "attention")
        scores = volume(leading) * length * source
        if len(shapes) == 4 and self.mask_shape is not None:
            raise ShapeError("attention: give the mask as a branch or as mask_shape, not both", hint="drop one",
                             field="mask_shape")
        mask = shapes[3] if len(shapes) == 4 else None if self.mask_shape is None else tuple(self.mask_shape)
        if mask is not None:
            broadcast_leading(mask, (*leading, length, source), "attention's mask")
        if self.mask_table is not None and (self.mask_shape is None or not 1 <= self.mask_table <= volume(mask)):
            raise ShapeError(f"mask_table={self.mask_table} must count the learned values a mask_shape mask is "
                             "gathered from: at least 1, at most its elements", hint="e.g. mask_shape=12x197x197,"
                             "mask_table=2211", field="mask_table")
        if self.is_causal and mask is not None:
            raise ShapeError("attention: give a mask or is_causal, not both", hint="drop one", field="is_causal")
        if self.scale is not None and self.scale != self.scale:
            raise ShapeError("scale is not a number", hint="give a finite scale", field="scale")
        macs = scores * (features + value_features)
        masked = mask is not None or self.is_causal
        flops = 2 * macs + scores * (1 + masked + SOFTMAX_FLOPS)
        params = self.mask_table or 0
        output = (*leading, length, value_features)
        notes = ("a causal mask changes none of the products: the masked scores are computed too, as PyTorch's "
                 "math backend computes them",) if self.is_causal else ()
        summary = f"{length}x{source} scores, {features}+{value_features} features" + (" causal" if self.is_causal
                                                                                     else "")
        # a query reads its own row, every key and every value: their tokens are attended over
        rank = len(output)
        continues = ((*aligned_right(q[:-1], rank - 1), None), (*aligned_right(k[:-2], rank - 2), None, None),
                     (*aligned_right(v[:-2], rank - 2), None, rank - 1))
        if len(shapes) == 4:
            continues += ((*aligned_right(shapes[3][:-1], rank - 1), None),)
        return Figures("ScaledDotProductAttention", output, params, macs, flops, tuple(Global(n) for n in q[1:]),
                       notes, summary, mixes_channels=True, tensors=(("mask", params),) if params else (),
                       continues=continues)

    def _flash(self, shapes) -> bool:
        """Whether PyTorch's CPU kernel is its flash attention (torch 2.13, measured with
        ``saved_tensors_hooks``): four axes with the batch, no dropout, the value's features the query's,
        the key's and value's heads the query's or shared by groups of them (``enable_gqa``), a mask that
        is a branch needing no gradient or none, and (checked with the strides) every input's last axis
        contiguous. Elsewhere it is the math backend (``math_saved``)."""
        q, k, v = shapes[:3]
        return (len(q) == 3 and self.dropout_p == 0 and v[-1] == q[-1] and self.mask_shape is None
                and (k[-3] == q[-3] or self.enable_gqa))

    def saved(self, use: Use) -> list | None:
        # flash attention saves the query, key, value and mask as given, its output and the logsumexp of
        # each query's scores (in the accumulation type: float32 for half precision)
        if self._flash(use.inputs) and use.inputs_grad[3:4] != (True,):
            return [saves_flash(use.batch * volume(use.inputs[0][:-1]) * max(use.itemsize, 4))]
        if self.mask_shape is not None and self.mask_table is None:
            # a fixed mask (a buffer, a causal tensor): by its rank PyTorch runs flash attention, which keeps
            # a float copy of a boolean mask, or its math backend; convcalc knows neither rank nor type
            return None
        return self.math_saved(use)

    def math_saved(self, use: Use) -> list | None:
        """What PyTorch's math backend saves (torch 2.13, measured with ``saved_tensors_hooks``): it scales
        the query and the transposed key by the square root of the scale each (new tensors, each kept by
        the scores' product for the other's gradient), keeps the softmax's result (for its own gradient,
        and the values' product's when the value needs one), dropout's noise and dropped copy, and the
        value as ``bmm`` reads it. Grouped heads (repeated first) and a gathered mask are not followed."""
        q, k, v = use.inputs[:3]
        if self.mask_table is not None or (self.enable_gqa and len(q) >= 3 and k[-3] != q[-3]) or use.itemsize < 4:
            return None  # (in half precision the CPU backend computes in float32 copies: not followed)
        q_grad, k_grad, v_grad = use.inputs_grad[:3]
        mask_grad = len(use.inputs_grad) > 3 and use.inputs_grad[3]
        lead = use.batch * volume(broadcast_leading(q[:-2], k[:-2], "attention"))
        length, source = q[-2], k[-2]
        weights_grad = q_grad or k_grad or mask_grad  # the scores need a gradient
        items = [saves_new(lead * length * q[-1] * use.itemsize)] if k_grad else []
        items += [saves_new(lead * source * k[-1] * use.itemsize)] if q_grad else []
        scores = lead * length * source * use.itemsize
        dropped = self.dropout_p > 0
        items += [saves_new(scores)] if weights_grad or v_grad and not dropped else []
        items += [saves_new(scores)] if dropped and weights_grad else []  # the noise
        items += [saves_new(scores)] if dropped and v_grad else []  # the dropped copy
        return items + ([saves_batched(2, 0)] if weights_grad else [])

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """Flash attention writes its output dense in the query's order of axes (a query picked from a
        (batch, tokens, 3, heads, features) projection gives (batch, tokens, heads, features))."""
        if not self._flash(shapes) or any(s[-1] != 1 for s in laid[:3]):
            return None
        return strides.dense_order(full, (laid[0],))

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # the math backend's autograd: out = P @ v with P = softmax(q @ k^T + mask); grad_P = grad @ v^T when
        # the query, key or mask (a branch, or a learned table) needs a gradient, grad_v = P^T @ grad, grad_q =
        # grad_S @ k, grad_k = grad_S^T @ q, each only when needed: per score, Ev MACs for each of the first
        # two and E for each of the last two
        q_grad, k_grad, v_grad = use.inputs_grad[:3]
        mask_grad = (len(use.inputs_grad) > 3 and use.inputs_grad[3]) or use.trainable
        features, value_features = use.inputs[0][-1], use.inputs[2][-1]
        if not features + value_features:
            return 0
        scores = forward_macs // (features + value_features)  # the batch's scores, heads broadcast
        return scores * (value_features * ((q_grad or k_grad or mask_grad) + v_grad) + features * (q_grad + k_grad))

    def prepare(self, run, x):
        return lambda q, k, v, *mask: run.F.scaled_dot_product_attention(
            q, k, v, mask[0] if mask else None, 0.0, self.is_causal, self.scale, self.enable_gqa)

    def explain_costs(self, report, batch: int) -> list[str]:
        return [f"MACs: the scores' products and the values' = {times_batch(report, batch)}"]
