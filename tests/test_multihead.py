"""The MultiheadAttention kind against ``torch.nn.MultiheadAttention``: parameters, output shapes and
MACs (FlopCounterMode's total / 2) in evaluation and in training, with separate key
and value sizes, without bias, and with the extra key/value positions of add_bias_kv and add_zero_attn."""

from __future__ import annotations

import pytest

from convcalc.engine.analysis import analyse
from convcalc.engine.layers import MultiheadAttention
from convcalc.engine.network import Network
from convcalc.readers import parse_layer

pytestmark = pytest.mark.needs_torch

CASES = [
    dict(), dict(bias=False), dict(kdim=6, vdim=10), dict(add_bias_kv=True), dict(add_zero_attn=True, bias=False),
]


@pytest.mark.parametrize("options", CASES)
@pytest.mark.parametrize("training", [False, True])
def test_against_the_module(options, training):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    module = torch.nn.MultiheadAttention(16, 4, batch_first=True, **options).train(training)
    query = torch.randn(2, 7, 16)
    key = torch.randn(2, 9, options.get("kdim", 16))
    value = torch.randn(2, 9, options.get("vdim", 16))
    separate = "kdim" in options
    def run():
        return (module(query, key, value, need_weights=False) if separate else
                module(query, query, query, need_weights=False))[0]

    # FlopCounterMode sees inside the general path only: it counts the evaluation fast path's fused kernel
    # (taken without grad) as nothing, though it does the same products on the same shapes
    with torch.no_grad():
        fast = run()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = run()
    assert fast.shape == out.shape
    layer = MultiheadAttention(16, 4, **options)
    figures = layer.merge(((7, 16), (9, options["kdim"]), (9, options["vdim"]))) if separate else layer.infer((7, 16))
    assert figures.output_shape == tuple(out.shape[1:])
    assert figures.params == sum(p.numel() for p in module.parameters())
    assert 2 * figures.macs == counter.get_total_flops() // 2  # a batch of 2; 2 FLOPs a MAC


def test_a_token_writes_a_transformer_block_without_pytorch():
    layers = tuple(parse_layer(t) for t in ["layernorm:768", "mha:768,12", "linear:3072", "gelu", "linear:768"])
    analysis = analyse(Network((197, 768), layers))
    assert analysis.layers[1].type == "MultiheadAttention" and analysis.output_shape == (197, 768)
    assert analysis.layers[1].params == 4 * 768 * 768 + 4 * 768


def test_heads_must_divide_the_width():
    from convcalc import ConvcalcError

    with pytest.raises(ConvcalcError, match="divisible by num_heads"):
        MultiheadAttention(10, 4).infer((5, 10))
