"""``torch.nn.MultiheadAttention``: the input projections, attention per head and the output projection.

Its figures are those of the layers it is made of, as PyTorch runs them on either path (the
evaluation fast path ``_native_multi_head_attention`` and the general one do the same products):
a Linear per projection (one fused 3E-wide projection when query, key and value share a size),
scaled dot-product attention over ``num_heads`` heads, and the output Linear. The number of heads
changes no MAC: each head's scores and weighted values have E / heads features.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import strides
from ..errors import ShapeError
from ..windows import Global
from .attention import ScaledDotProductAttention
from .base import Figures, Shape, Use, format_shape, gradient_products, saves_new, saves_steps, times_batch
from .kind import arg, spell
from .merge import Merge
from .reshape import Linear
from .rules import probability

_FIELDS = ("embed_dim", "num_heads", "dropout", "bias", "add_bias_kv", "add_zero_attn", "kdim", "vdim", "batch_first",
           "need_weights")


@dataclass(frozen=True)
class MultiheadAttention(Merge):
    """``nn.MultiheadAttention(embed_dim, num_heads, ...)`` as self-attention of one branch (tokens x
    embed_dim per sample) or attention of a query branch over key and value branches (tokens x kdim,
    tokens x vdim). The output is the attention output (``need_weights``, the forward call's argument,
    adds no product; it decides what training saves).

    >>> fig = MultiheadAttention(768, 12).infer((197, 768))
    >>> fig.output_shape, fig.params, fig.macs        # ViT-B/16's: in_proj, 12 heads, out_proj
    ((197, 768), 2362368, 524391936)
    """

    spellings = (spell("mha", "multiheadattention", "multihead_attention", fields=_FIELDS,
                       positional=("embed_dim", "num_heads"), required=("embed_dim", "num_heads")),)

    embed_dim: int
    num_heads: int
    dropout: float = arg(0.0, rule=probability)
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    batch_first: bool = False  # where the module's batch is: per sample it changes nothing
    # the forward call's argument (PyTorch's default): it changes no product, only the path training runs
    need_weights: bool = True

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        if len(shapes) not in (1, 3):
            raise ShapeError(f"MultiheadAttention reads one branch (self-attention) or query, key and value, but "
                             f"receives {len(shapes)}", hint='e.g. {"type": "mha", "from": ["q", "k", "v"]}',
                             field="from")
        embed, heads = self.embed_dim, self.num_heads
        if embed < 1 or heads < 1 or embed % heads:
            raise ShapeError(f"embed_dim={embed} must be divisible by num_heads={heads}", hint="as PyTorch requires",
                             field="num_heads")
        kdim, vdim = self.kdim or embed, self.vdim or embed
        query, key, value = shapes * 3 if len(shapes) == 1 else shapes
        for name, shape, size in (("query", query, embed), ("key", key, kdim), ("value", value, vdim)):
            if len(shape) != 2 or shape[-1] != size:
                raise ShapeError(f"MultiheadAttention's {name} must be tokens x {size} per sample, got "
                                 f"{format_shape(shape)}", hint="give (tokens, features) per sample", field="from")
        if key[0] != value[0]:
            raise ShapeError(f"key {format_shape(key)} and value {format_shape(value)} need the same tokens",
                             hint="give key and value one sequence length", field="from")
        extra = int(self.add_bias_kv) + int(self.add_zero_attn)  # added key/value positions
        source = key[0] + extra
        if len(shapes) == 1 and kdim == vdim == embed:  # one fused projection, PyTorch's in_proj_weight
            parts = [Linear(3 * embed, self.bias).infer(query)]
        else:
            parts = [Linear(embed, self.bias).infer(shape) for shape in (query, key, value)]
        head = embed // heads
        parts.append(ScaledDotProductAttention().merge(((heads, query[0], head), (heads, source, head),
                                                         (heads, source, head))))
        parts.append(Linear(embed, self.bias).infer((query[0], embed)))
        params = sum(p.params for p in parts) + (2 * embed if self.add_bias_kv else 0)
        macs, flops = sum(p.macs for p in parts), sum(p.flops for p in parts)
        summary = f"{embed} x {heads} heads, {query[0]}x{source} scores"
        return Figures("MultiheadAttention", (query[0], embed), params, macs, flops, (Global(embed),), (), summary,
                       mixes_channels=True)

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """The output projection writes tokens first, (tokens, batch, embed): ``batch_first`` returns a view."""
        return strides.contiguous_with_batch_at(full, 1)

    def saved(self, use: Use) -> list | None:
        # In training, as F.multi_head_attention_forward runs it (torch 2.13, measured with saved_tensors_hooks):
        # each input projection's input, tokens first (a copy for a batch-first input), when it trains: one
        # fused projection for one tensor as query, key and value, one for key and value given as one tensor,
        # else one each; the projections' results (a fused one made contiguous as one tensor). With the
        # weights (need_weights): the key's and value's results, the scaled query, the softmax's result,
        # dropout's noise and dropped copy, and the heads joined again for the output projection. Without:
        # PyTorch's scaled_dot_product_attention, on its flash kernel (query, key and value as they are, its
        # output, which the output projection reads as it is, and the logsumexp) or, with dropout, on its math
        # backend (the value, and the scaled query and key). Added key/value positions and the math backend
        # in half precision are not followed.
        if self.add_bias_kv or self.add_zero_attn or use.trainable and use.frozen:
            return None
        same = use.same if len(use.inputs) == 3 and use.same else (0, 0, 0)
        (tokens, embed), source, batch, size = use.inputs[0], use.inputs[-1][0], use.batch, use.itemsize
        query, keys = batch * tokens * embed * size, batch * source * embed * size
        # the projections (which inputs each reads) and their results: which holds each of query, key and
        # value, and its bytes
        if same == (0, 0, 0):
            read, holds, results = (0,), ("qkv", "qkv", "qkv"), {"qkv": 3 * query}
        elif same[2] == 1 and self.kdim in (None, embed) and self.vdim in (None, embed):  # key and value fused
            read, holds, results = (0, 1), ("q", "kv", "kv"), {"q": query, "kv": 2 * keys}
        else:
            read, holds, results = (0, 1, 2), ("q", "k", "v"), {"q": query, "k": keys, "v": keys}
        scores = batch * self.num_heads * tokens * source * size
        dropped = [scores, scores] if self.dropout > 0 else []
        joined = [query] if use.trainable else []  # the output projection's input
        if self.need_weights:
            kept, made = (1, 2), [query, scores, *dropped, *joined]
        elif self.dropout > 0:  # the math backend (in half precision on float32 copies: not followed)
            if size < 4:
                return None
            kept, made = (2,), [query, keys, scores, *dropped, *joined]
        else:  # flash attention
            kept, made = (0, 1, 2), [query, batch * self.num_heads * tokens * max(size, 4)]
        held = sum(results[name] for name in dict.fromkeys(holds[k] for k in kept))
        projected = [saves_steps(k, self.batch_first) for k in read] if use.trainable else []
        return [*projected, saves_new(held + sum(made))]

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # the backward of what it is made of (see merge), each part asked as autograd reaches it: a
        # projection's input gradient where its branch needs one, its weight gradient where trained; the
        # attention's where the projected query, key and value need one (they do once their branch does or
        # the projections train); the output projection's input gradient and weight gradient
        embed, heads, batch = self.embed_dim, self.num_heads, use.batch
        branches = use.inputs * 3 if len(use.inputs) == 1 else use.inputs
        grads = use.inputs_grad * 3 if len(use.inputs) == 1 else use.inputs_grad
        total = sum(gradient_products(batch * tokens * size * embed, grad, use.trainable)
                    for (tokens, size), grad in zip(branches, grads))  # a fused projection: the same sum
        projected = tuple(grad or use.trainable for grad in grads)
        length, source = branches[0][0], branches[1][0] + int(self.add_bias_kv) + int(self.add_zero_attn)
        head = embed // heads
        scores = Use(((heads, length, head), (heads, source, head), (heads, source, head)), (heads, length, head),
                     batch, use.itemsize, projected, False)
        total += ScaledDotProductAttention().backward_macs(scores, batch * heads * length * source * 2 * head)
        return total + gradient_products(batch * length * embed * embed, any(projected), use.trainable)

    def prepare(self, run, x):
        if self.add_bias_kv or self.add_zero_attn:  # extra key positions: not executed (the refusal)
            return super().prepare(run, x)
        embed, heads = self.embed_dim, self.num_heads
        kdim, vdim = self.kdim or embed, self.vdim or embed
        w = [run.uniform((embed, size), size) for size in (embed, kdim, vdim)]
        b = [run.uniform((embed,), embed) if self.bias else None for _ in range(4)]
        out = run.uniform((embed, embed), embed)

        def split(t):  # (batch, tokens, embed) -> (batch, heads, tokens, embed / heads)
            return t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(0, 2, 1, 3)

        def call(*xs):
            q, k, v = xs * 3 if len(xs) == 1 else xs
            q, k, v = (split(run.F.linear(t, wi, bi)) for t, wi, bi in zip((q, k, v), w, b))
            y = run.F.scaled_dot_product_attention(q, k, v)
            y = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], embed)
            return run.F.linear(y, out, b[3])

        return call

    def explain_costs(self, report, batch: int) -> list[str]:
        return ["MACs: the projections, the scores' and values' products per head, the output projection = "
                f"{times_batch(report, batch)}"]
