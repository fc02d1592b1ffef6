"""Transformer-era models read with ``--model`` (``from_torch``): attention, class tokens, windows.

The oracle is PyTorch itself: parameters are ``sum(p.numel())`` over the model, MACs are
``FlopCounterMode``'s total over one forward pass divided by 2, counted with grad enabled under
the math attention backend (as torchvision's published GFLOPS are), and output shapes are the
model's. Nothing may be left uncounted.
"""

from __future__ import annotations

import pytest

from convcalc.engine.analysis import analyse
from convcalc.readers.pytorch import from_torch

from .torchvision_models import torchvision

pytestmark = pytest.mark.needs_torch


def _oracle(model, shape):
    """(params, MACs, output shape) as PyTorch counts them, for one sample."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, *shape))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2, tuple(out.shape[1:])


def _exact(model, shape):
    analysis = analyse(from_torch(model, shape))
    params, macs, output = _oracle(model, shape)
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert (analysis.totals.params, analysis.totals.macs, analysis.output_shape) == (params, macs, output)
    return analysis


def _attention_model(batch_first: bool):
    import torch
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Conv2d(3, 16, 4, stride=4)
            self.norm = nn.LayerNorm(16)
            self.attention = nn.MultiheadAttention(16, 2, batch_first=batch_first)
            self.mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))

        def forward(self, x):
            tokens = self.embed(x).flatten(2).transpose(1, 2)
            if not batch_first:
                tokens = tokens.transpose(0, 1)  # sequence first, batch second
            y = self.norm(tokens)
            tokens = tokens + self.attention(y, y, y, need_weights=False)[0]
            out = tokens + self.mlp(tokens)
            return out if batch_first else out.transpose(0, 1)

    return Encoder()


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_is_counted_whichever_axis_holds_the_batch(batch_first):
    analysis = _exact(_attention_model(batch_first), (3, 32, 32))
    kinds = {type(layer).__name__ for layer in analysis.network.layers}
    assert {"ScaledDotProductAttention", "Linear"} <= kinds
    projections = [r for r in analysis.layers if r.name.startswith("attention.") and r.type == "Linear"]
    assert [r.params for r in projections] == [16 * 48 + 48, 16 * 16 + 16]  # in_proj, out_proj


def test_a_class_token_and_position_embedding_are_parameters_of_their_layers():
    import torch
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 8, 8, stride=8)
            self.class_token = nn.Parameter(torch.zeros(1, 1, 8))
            self.position = nn.Parameter(torch.zeros(1, 17, 8))
            self.scale = nn.Parameter(torch.ones(8))
            self.head = nn.Linear(8, 10)

        def forward(self, x):
            x = self.patch(x).flatten(2).transpose(1, 2)
            x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.position
            return self.head((x * self.scale)[:, 0])

    analysis = _exact(Tiny(), (3, 32, 32))
    concat = next(r for r in analysis.layers if r.type == "Concat")
    assert concat.params == 8 and concat.output_shape == (17, 8)
    assert [r.params for r in analysis.layers if r.type in ("Add", "Mul")] == [17 * 8, 8]


def test_swin_windows_shifts_and_relative_position_bias_are_exact():
    tv = torchvision()
    model = tv.models.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 4],
                                      window_size=[4, 4], num_classes=10)
    analysis = _exact(model, (3, 64, 64))
    kinds = {type(layer).__name__ for layer in analysis.network.layers}
    assert {"Roll", "MatMul", "Softmax"} <= kinds
    # each block's bias table, (2*4-1)^2 x heads, is the parameter of the sum that adds it to the scores
    tables = [r.params for r in analysis.layers if r.type == "Add" and r.params and "attn" in r.name]
    assert tables == [49 * 2, 49 * 2, 49 * 4, 49 * 4]


def test_a_reshape_that_merges_the_batch_keeps_every_figure():
    import torch
    from torch import nn

    class Windows(nn.Module):
        """Partition a channels-last map into 4x4 windows, attend within each, and put them back."""

        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24)

        def forward(self, x):
            b, c, h, w = x.shape
            x = x.permute(0, 2, 3, 1).reshape(b, h // 4, 4, w // 4, 4, c).permute(0, 1, 3, 2, 4, 5)
            windows = x.reshape(-1, 16, c)  # (batch x windows, tokens, channels)
            q, k, v = self.qkv(windows).chunk(3, dim=-1)
            scores = (q @ k.transpose(-2, -1)).softmax(dim=-1)
            out = (scores @ v).reshape(b, h // 4, w // 4, 4, 4, c).permute(0, 5, 1, 3, 2, 4)
            return out.reshape(b, c, h, w)

    analysis = _exact(Windows(), (8, 16, 16))
    products = [r for r in analysis.layers if r.type == "MatMul"]
    assert [r.output_shape for r in products] == [(16, 16, 16), (16, 16, 8)]  # 16 windows per sample


@pytest.mark.slow
@pytest.mark.parametrize("name, gflops", [("vit_b_16", 17.564), ("swin_t", 4.491)])
def test_torchvisions_transformers_are_exact(name, gflops):
    model = getattr(torchvision().models, name)(weights=None)
    analysis = _exact(model, (3, 224, 224))
    assert round(analysis.totals.macs / 1e9, 3) == gflops  # torchvision's published figure


def test_parameters_the_forward_pass_does_not_use_are_counted_and_named():
    import torch
    from torch import nn

    class WithAuxiliary(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 8, 3)
            self.aux = nn.Sequential(nn.Conv2d(8, 4, 1), nn.Linear(4, 2))  # runs only in training
            self.aux[1].requires_grad_(False)

        def forward(self, x):
            y = self.body(x)
            return y + self.aux(y).sum() if self.training else y

    model = WithAuxiliary()
    analysis = analyse(from_torch(model, (3, 8, 8)))
    expected = sum(p.numel() for p in model.parameters())
    aux = sum(p.numel() for p in model.aux.parameters())
    assert analysis.totals.params == expected and analysis.totals.unused_params == aux
    assert analysis.totals.trainable_params == expected - model.aux[1].weight.numel() - model.aux[1].bias.numel()
    assert any(f"aux ({aux:,})" in note for report in analysis.layers for note in report.notes)
    assert analysis.to_dict()["totals"]["unused_params"] == aux
    # convert writes the unused modules: the document reads back to the model's count and the same notes
    from convcalc import load_document
    from convcalc.output.document import network_to_yaml

    again = analyse(load_document(network_to_yaml(analysis.network)))
    assert (again.totals.params, again.totals.unused_params, again.totals.trainable_params) == \
        (expected, aux, analysis.totals.trainable_params)
    assert again.layers[-1].notes == analysis.layers[-1].notes


@pytest.mark.slow
def test_inception_v3s_auxiliary_head_adds_up():
    from .torchvision_models import build

    model = build("inception_v3", published_layout=True)
    analysis = analyse(from_torch(model, (3, 299, 299)), receptive_fields=False)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters()) == 27_161_264
    assert analysis.totals.unused_params == sum(p.numel() for p in model.AuxLogits.parameters())


@pytest.mark.parametrize("cell, options", [
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)), ("LSTM", dict(proj_size=3, batch_first=True)),
    ("GRU", dict(bias=False)), ("RNN", dict(nonlinearity="relu", num_layers=2)), ("RNN", dict(batch_first=True)),
])
def test_recurrent_layers_are_read_with_the_batch_first_or_second(cell, options):
    import torch
    from torch import nn

    batch_first = options.get("batch_first", False)

    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, cell)(6, 5, **options)

        def forward(self, x):  # x is batch first, as convcalc traces it
            y = self.rnn(x if batch_first else x.transpose(0, 1))[0]
            return y if batch_first else y.transpose(0, 1)

    model = Sequence().eval()
    analysis = analyse(from_torch(model, (7, 6)))
    rnn = model.rnn
    assert [type(layer).__name__ for layer in analysis.network.layers] == ["Recurrent"]
    assert analysis.output_shape == tuple(model(torch.zeros(1, 7, 6)).shape[1:])
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    # every step multiplies its input and the last hidden state by each gate's weights (PyTorch's formulas)
    gates, hidden, out = {"LSTM": 4, "GRU": 3, "RNN": 1}[cell], 5, getattr(rnn, "proj_size", 0) or 5
    directions = 2 if rnn.bidirectional else 1
    sizes = [6] + [directions * out] * (rnn.num_layers - 1)
    expected = sum(directions * 7 * (gates * hidden * (size + out) + (out * hidden if out != hidden else 0))
                   for size in sizes)
    assert analysis.totals.macs == expected


@pytest.mark.slow
@pytest.mark.needs_timm
@pytest.mark.parametrize("name", ["vit_small_patch16_224", "deit_small_distilled_patch16_224",
                                  "swin_tiny_patch4_window7_224", "mobilevit_xs", "coat_lite_tiny", "cait_xxs24_224",
                                  "pit_ti_224", "twins_svt_small", "efficientformer_l1",
                                  "xcit_nano_12_p16_224", "levit_128s", "beit_base_patch16_224",
                                  "maxvit_tiny_tf_224"])
def test_timm_models_with_attention_are_exact(name):
    torchvision()  # timm imports torchvision's model definitions
    import timm

    model = timm.create_model(name, pretrained=False)
    _exact(model, model.default_cfg["input_size"])


def test_the_norms_and_activations_transformers_use_are_read():
    from torch import nn

    model = nn.Sequential(nn.Linear(8, 8), nn.RMSNorm(8), nn.GELU(approximate="tanh"), nn.GELU(), nn.SiLU(),
                          nn.Mish(), nn.Hardswish(), nn.LayerNorm([5, 8]), nn.GroupNorm(1, 5),
                          nn.LogSoftmax(dim=1), nn.Softmax(dim=-1), nn.RMSNorm([5, 8], elementwise_affine=False))
    analysis = _exact(model, (5, 8))
    assert [r.type for r in analysis.layers] == ["Linear", "RMSNorm", "GELU", "GELU", "SiLU", "Mish", "Hardswish",
                                                 "LayerNorm", "GroupNorm", "LogSoftmax", "Softmax", "RMSNorm"]


def test_a_learned_bias_given_to_attention_as_its_mask_counts_its_table():
    import torch
    from torch import nn
    from torch.nn import functional as F

    class BiasedAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24)
            self.table = nn.Parameter(torch.zeros(9, 2))  # relative offsets x heads
            self.register_buffer("index", torch.randint(0, 9, (16,)))

        def forward(self, x):  # x: (B, 4 tokens, 8)
            b = x.shape[0]
            q, k, v = self.qkv(x).reshape(b, 4, 3, 2, 4).permute(2, 0, 3, 1, 4).unbind(0)
            bias = self.table[self.index].view(4, 4, 2).permute(2, 0, 1).unsqueeze(0)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(b, 4, 8)

    analysis = _exact(BiasedAttention(), (4, 8))
    attention = next(r for r in analysis.layers if r.type == "ScaledDotProductAttention")
    assert attention.params == 18


def test_a_bias_assembled_from_parameters_counts_them_once():
    """BEiT's query-key-value bias: learned query and value biases around fixed zeros for the keys,
    concatenated and given to F.linear. The linear layer holds both learned biases, and nothing else
    counts them again."""
    import json

    import torch
    from torch import nn
    from torch.nn import functional as F

    from convcalc.output.document import network_to_dict
    from convcalc.readers.document import load_document

    class Composed(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24, bias=False)
            self.q_bias, self.v_bias = nn.Parameter(torch.randn(8)), nn.Parameter(torch.randn(8))
            self.register_buffer("k_bias", torch.zeros(8), persistent=False)

        def forward(self, x):
            return F.linear(x, self.qkv.weight, torch.cat((self.q_bias, self.k_bias, self.v_bias)))

    analysis = _exact(Composed().eval(), (5, 8))
    linear = analysis.layers[0]
    assert (linear.type, linear.params) == ("Linear", 8 * 24 + 16)
    assert not any("parameters" in note for note in linear.notes)  # no parameters left to the totals alone
    again = analyse(load_document(json.dumps(network_to_dict(analysis.network))))
    assert again.to_dict() == analysis.to_dict()


@pytest.mark.parametrize("batch", [1, 3])
def test_a_bias_contracted_from_its_table_with_fixed_lookups_is_counted_once(batch):
    """MaxViT's relative-position bias (timm's RelPosBiasTf): einsums of its learned table with fixed
    one-hot lookups, computed without the input once a pass, added to the scores in attention."""
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode

    def lookup(window):
        table = torch.zeros(window, window, 2 * window - 1)
        for i in range(window):
            for x in range(window):
                table[i, x, x - i + window - 1] = 1
        return table

    class Block(nn.Module):
        def __init__(self, window=4, heads=2, dim=8):
            super().__init__()
            self.heads, self.qkv = heads, nn.Linear(dim, 3 * dim)
            self.table = nn.Parameter(torch.randn(heads, 2 * window - 1, 2 * window - 1))
            self.register_buffer("height_lookup", lookup(window))
            self.register_buffer("width_lookup", lookup(window))

        def forward(self, x):  # (B, N = window x window, dim)
            b, n, d = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            bias = torch.einsum("nhw,ixh->nixw", self.table, self.height_lookup)
            bias = torch.einsum("nixw,jyw->nijxy", bias, self.width_lookup).reshape(1, self.heads, n, n)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(b, n, d)

    model = Block().eval()
    analysis = analyse(from_torch(model, (16, 8), batch=batch))
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(batch, 16, 8))
    assert [r.type for r in analysis.layers].count("Einsum") == 2
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.macs == counter.get_total_flops() // 2
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())


def test_a_product_of_learned_tensors_alone_is_not_counted_but_holds_them():
    """``einsum`` or ``@`` of two parameters (merged low-rank weights) runs every pass: convcalc cannot
    cost it as a layer of one learned operand, so it is an operation not counted, named, its parameters
    held, never 0 MACs as if nothing ran (FlopCounterMode counts its products)."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    class Merged(nn.Module):
        def __init__(self):
            super().__init__()
            self.down, self.up = nn.Parameter(torch.randn(8, 2)), nn.Parameter(torch.randn(2, 8))
            self.left, self.right = nn.Parameter(torch.randn(8, 3)), nn.Parameter(torch.randn(3, 8))
            self.proj = nn.Linear(8, 8)

        def forward(self, x):
            return self.proj(x) + x @ torch.einsum("ir,ro->io", self.down, self.up) + x @ (self.left @ self.right)

    model = Merged().eval()
    analysis = analyse(from_torch(model, (5, 8)))
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 5, 8))
    assert [(r.name, r.type) for r in analysis.layers if not r.counted] == [("einsum", "aten.einsum"),
                                                                            ("matmul_1", "aten.matmul")]
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    # the products reading those results are counted; the uncounted ones (8 x 2 x 8 and 8 x 3 x 8) are left out
    assert analysis.totals.macs == counter.get_total_flops() // 2 - 8 * 2 * 8 - 8 * 3 * 8
