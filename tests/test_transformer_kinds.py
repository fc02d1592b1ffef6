"""Matrix products, attention and RMSNorm against PyTorch: output shapes and refusals as torch gives
them, MACs as ``torch.utils.flop_counter.FlopCounterMode`` counts them (its total divided by 2, under
the math attention backend), and the NumPy backend's values against torch's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcalc import ConvcalcError
from convcalc.engine.layers import MatMul, RMSNorm, ScaledDotProductAttention
from convcalc.functional import matmul, scaled_dot_product_attention
from convcalc.verbs.preparers import Runner

try:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # the tests that check against torch say so (needs_torch)
    pass

BATCH = 2


def _flops(function, *tensors) -> int:
    with FlopCounterMode(display=False) as counter:
        function(*tensors)
    return counter.get_total_flops()


leading = st.lists(st.integers(1, 3), min_size=0, max_size=2)


@pytest.mark.needs_torch
@settings(max_examples=150)
@given(lead_a=leading, lead_b=leading, n=st.integers(1, 5), k=st.integers(1, 5), k2=st.integers(1, 5),
       m=st.integers(1, 5))
def test_matmul_against_torch(lead_a, lead_b, n, k, k2, m):
    a, b = (*lead_a, n, k), (*lead_b, k2, m)
    try:
        expected = torch.matmul(torch.zeros(BATCH, *a), torch.zeros(BATCH, *b)).shape[1:]
    except RuntimeError:
        expected = None
    try:
        figures = MatMul().merge((a, b))
    except ConvcalcError:
        # refused: torch refuses too, or the operands' ranks differ (the batch axis would broadcast
        # against a data axis, which convcalc keeps apart)
        assert expected is None or len(a) != len(b)
        return
    assert figures.output_shape == tuple(expected)
    flops = _flops(torch.matmul, torch.zeros(BATCH, *a), torch.zeros(BATCH, *b))
    assert BATCH * figures.macs == flops // 2


@pytest.mark.needs_torch
def test_matmul_with_a_weight_and_bmm_and_baddbmm():
    weighted = MatMul(weight_shape=(64, 10)).merge(((7, 64),))
    assert weighted.output_shape == (7, 10) and weighted.params == 640
    assert BATCH * weighted.macs == _flops(torch.matmul, torch.zeros(BATCH, 7, 64), torch.zeros(64, 10)) // 2
    assert MatMul(batched=True).merge(((5, 6), (6, 7))).output_shape == (5, 7)
    with pytest.raises(ConvcalcError):
        MatMul(batched=True).merge(((2, 5, 6), (2, 6, 7)))  # bmm takes 3-D tensors only, as torch
    added = MatMul(batched=True, added=True).merge(((5, 7), (5, 6), (6, 7)))
    x, a, b = torch.zeros(BATCH, 5, 7), torch.zeros(BATCH, 5, 6), torch.zeros(BATCH, 6, 7)
    assert BATCH * added.macs == _flops(torch.baddbmm, x, a, b) // 2


def test_a_product_whose_rows_are_the_batch_is_refused():
    with pytest.raises(ConvcalcError, match="samples"):
        MatMul().merge(((64,), (64, 10)))


@pytest.mark.needs_torch
@settings(max_examples=60)
@given(heads=st.integers(1, 4), kv_divisor=st.sampled_from([1, 2]), length=st.integers(1, 9),
       source=st.integers(1, 9), features=st.integers(1, 8), value_features=st.integers(1, 8),
       causal=st.booleans())
def test_attention_against_torch(heads, kv_divisor, length, source, features, value_features, causal):
    kv_heads = heads // kv_divisor if heads % kv_divisor == 0 else heads
    gqa = kv_heads != heads
    q, k, v = (heads, length, features), (kv_heads, source, features), (kv_heads, source, value_features)
    layer = ScaledDotProductAttention(is_causal=causal, enable_gqa=gqa)
    figures = layer.merge((q, k, v))
    tq, tk, tv = (torch.randn(BATCH, *s, dtype=torch.float64) for s in (q, k, v))
    with sdpa_kernel(SDPBackend.MATH):
        expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal, enable_gqa=gqa)
        flops = _flops(lambda *t: torch.nn.functional.scaled_dot_product_attention(
            *t, is_causal=causal, enable_gqa=gqa), tq, tk, tv)
    assert figures.output_shape == tuple(expected.shape[1:])
    assert BATCH * figures.macs == flops // 2
    got = scaled_dot_product_attention(tq.numpy(), tk.numpy(), tv.numpy(), is_causal=causal, enable_gqa=gqa)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.needs_torch
def test_attention_with_a_mask_and_a_scale_matches_torch():
    q = torch.randn(BATCH, 3, 6, 4, dtype=torch.float64)
    mask = torch.rand(BATCH, 1, 6, 6) > 0.3
    mask[..., 0] = True  # every row keeps something
    expected = torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask, scale=0.3)
    got = scaled_dot_product_attention(q.numpy(), q.numpy(), q.numpy(), mask.numpy(), scale=0.3)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-10, atol=1e-12)
    assert ScaledDotProductAttention().merge(((3, 6, 4),) * 3 + ((1, 6, 6),)).output_shape == (3, 6, 4)
    with pytest.raises(ConvcalcError):
        ScaledDotProductAttention().merge(((3, 6, 4), (3, 6, 5), (3, 6, 4)))  # key features differ


@pytest.mark.needs_torch
def test_matmul_values_against_torch():
    a, b = torch.randn(2, 3, 4, 5, dtype=torch.float64), torch.randn(2, 3, 5, 6, dtype=torch.float64)
    np.testing.assert_allclose(matmul(a.numpy(), b.numpy()), torch.matmul(a, b).numpy())


@pytest.mark.needs_torch
@pytest.mark.parametrize("shape, normalized", [((7, 64), 64), ((4, 6, 8), (6, 8))])
def test_rms_norm_against_torch(shape, normalized):
    module = torch.nn.RMSNorm(normalized)
    figures = RMSNorm(normalized).infer(shape)
    assert figures.params == sum(p.numel() for p in module.parameters())
    assert figures.output_shape == tuple(module(torch.zeros(BATCH, *shape)).shape[1:])
    x = torch.randn(BATCH, *shape, dtype=torch.float64)
    call = RMSNorm(normalized, elementwise_affine=False).prepare(Runner(np.random.default_rng(0), np.float64),
                                                                 x.numpy())
    expected = torch.nn.functional.rms_norm(x, (normalized,) if isinstance(normalized, int) else normalized)
    np.testing.assert_allclose(call(x.numpy()), expected.numpy(), rtol=1e-12)
    with pytest.raises(ConvcalcError):
        RMSNorm(65).infer(shape)


@pytest.mark.needs_torch
def test_the_attention_example_is_torchs_attention():
    """examples/attention.yaml (docs/documents.md's) against the module it describes, as timm's ViT writes it:
    the same output shape, parameters, and MACs = FlopCounterMode's total / 2 under the math backend."""
    from pathlib import Path

    from convcalc import analyse
    from convcalc.readers import load_document

    root = Path(__file__).resolve().parent.parent
    text = (root / "examples" / "attention.yaml").read_text()
    page = (root / "docs" / "documents.md").read_text()
    shown = next(b for b in page.split("```yaml\n")[1:] if "attention" in b.split("```")[0])
    assert shown.split("```")[0] in text  # the documentation shows the example as it is
    analysis = analyse(load_document(text))

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.proj = torch.nn.Linear(768, 2304), torch.nn.Linear(768, 768)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, 12, 64).permute(2, 0, 3, 1, 4).unbind(0)
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            return self.proj(y.transpose(1, 2).reshape(b, n, c))

    module = Attention()
    x = torch.zeros(1, 197, 768)
    with sdpa_kernel(SDPBackend.MATH):
        flops = _flops(module, x)
        shape = module(x).shape
    assert analysis.output_shape == tuple(shape[1:])
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    assert analysis.totals.macs == flops // 2
