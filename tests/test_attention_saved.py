"""What ``scaled_dot_product_attention`` saves where PyTorch's CPU kernel is its math backend (dropout, a mask
that needs a gradient, value features other than the query's, three axes, a last axis that is not
contiguous), against what autograd saves (``saved_tensors_hooks``, torch 2.13)."""

from __future__ import annotations

import pytest

from .torch_nets import saved_by_autograd

try:
    import torch
except ImportError:  # (the tests skip)
    torch = None

pytestmark = pytest.mark.needs_torch


class _Attention(torch.nn.Module if torch else object):
    """Attention over 5 tokens of 12 features, 3 heads, its query, key and value made by one projection."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.qkv = torch.nn.Linear(12, 39 if kind == "wider values" else 36)
        self.bias = torch.nn.Linear(12, 5)

    def forward(self, x):  # (B, 5, 12)
        b, n, _ = x.shape
        y = self.qkv(x)
        if self.kind == "wider values":
            q, k = (t.reshape(b, n, 3, 4).transpose(1, 2) for t in (y[..., :12], y[..., 12:24]))
            v = y[..., 24:].reshape(b, n, 3, 5).transpose(1, 2)
        elif self.kind == "strided":  # every head's features 3 apart: no contiguous last axis
            q, k, v = y.reshape(b, n, 3, 4, 3).permute(4, 0, 2, 1, 3)
        else:
            q, k, v = y.reshape(b, n, 3, 3, 4).permute(2, 0, 3, 1, 4)
        options = {}
        if "mask" in self.kind:
            options["attn_mask"] = self.bias(x).unsqueeze(1)  # needs a gradient
        if "dropout" in self.kind:
            options["dropout_p"] = 0.2
        if "causal" in self.kind:
            options["is_causal"] = True
        if self.kind == "three axes":
            q, k, v = q[:, 0], k[:, 0], v[:, 0]
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, **options)
        return out if self.kind == "three axes" else out.transpose(1, 2).reshape(b, n, -1)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kind", ["mask", "dropout", "mask dropout", "causal dropout", "wider values",
                                  "three axes", "strided"])
def test_the_math_backend_saves_what_autograd_saves(kind, batch):
    """It keeps the scaled query and transposed key (each for the other's gradient), the softmax's result,
    dropout's noise and dropped copy, and the value as bmm reads it."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    module = _Attention(kind)
    memory = training_memory(analyse(from_torch(module, (5, 12), batch=batch), receptive_fields=False))
    torch.manual_seed(0)
    assert memory.exact
    assert memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, 5, 12))


class _FixedMask(torch.nn.Module if torch else object):
    """A causal mask kept as a boolean buffer, as GPT-style models keep it."""

    def __init__(self):
        super().__init__()
        self.qkv = torch.nn.Linear(12, 36)
        self.register_buffer("causal", torch.tril(torch.ones(5, 5, dtype=torch.bool)))

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, 3, 4).permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=self.causal)
        return out.transpose(1, 2).reshape(b, n, 12)


def test_a_fixed_mask_is_not_called_exact():
    """By the mask's rank PyTorch runs flash attention (keeping a float copy of a boolean mask) or its math
    backend; convcalc knows neither the rank nor the type of a fixed mask."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    assert not training_memory(analyse(from_torch(_FixedMask(), (5, 12), batch=2), receptive_fields=False)).exact


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_the_math_backend_in_half_precision_is_not_called_exact(dtype):
    """On the CPU the math backend computes half-precision attention on float32 copies."""
    import dataclasses

    from convcalc import analyse, analyse_tokens, from_torch
    from convcalc.engine.memory import training_memory

    network = dataclasses.replace(from_torch(_Attention("dropout"), (5, 12), batch=2), dtype=dtype)
    assert not training_memory(analyse(network, receptive_fields=False)).exact
    analysis = analyse_tokens("5x12", "linear:12", "mha:12,3,need_weights=false,dropout=0.2", batch=2, dtype=dtype)
    assert not training_memory(analysis).exact


class _GroupedHeads(torch.nn.Module if torch else object):
    """Four query heads sharing two key and value heads (``enable_gqa``)."""

    def __init__(self, dropout):
        super().__init__()
        self.q, self.kv, self.dropout = torch.nn.Linear(12, 12), torch.nn.Linear(12, 12), dropout

    def forward(self, x):
        b, n, _ = x.shape
        q = self.q(x).reshape(b, n, 4, 3).transpose(1, 2)
        k, v = self.kv(x).reshape(b, n, 2, 2, 3).permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True, dropout_p=self.dropout)
        return out.transpose(1, 2).reshape(b, n, 12)


@pytest.mark.parametrize("batch", [1, 3])
def test_grouped_heads_run_flash_attention(batch):
    """Flash attention shares the key and value heads as given; with dropout the math backend repeats them
    first, which convcalc does not follow."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    module = _GroupedHeads(0.0)
    memory = training_memory(analyse(from_torch(module, (5, 12), batch=batch), receptive_fields=False))
    torch.manual_seed(0)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, 5, 12))
    dropped = training_memory(analyse(from_torch(_GroupedHeads(0.2), (5, 12), batch=batch), receptive_fields=False))
    assert not dropped.exact
