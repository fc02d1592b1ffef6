"""ONNX files of transformer-era models: attention (nn.MultiheadAttention with the batch first and
second, scaled_dot_product_attention, a ViT-like block with a class token and a position embedding),
LayerNorm over the last axes, softmax on several axes, LSTM, GRU and RNN, and einsum, each exported
with both of PyTorch's exporters (the legacy one, dynamo=False, and torch.export's, dynamo=True).

Oracles: every layer named after a node has onnxruntime's shape for that node's output with the
batch factor taken out of one axis (the per-sample form); parameters are the module's own
(``sum(p.numel() for p in model.parameters())``); MACs are half FlopCounterMode's total for the module
run with PyTorch's math attention (a recurrent module's steps unrolled as matrix products, which
FlopCounterMode sees), for the batch analysed.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

from convcalc import analyse
from convcalc.readers.onnx import from_onnx

from .torchvision_models import build

pytestmark = [pytest.mark.needs_onnx, pytest.mark.needs_onnxruntime, pytest.mark.needs_torch]

try:
    import onnx
    from onnx import helper
except ImportError:
    pass
try:
    import onnxruntime as ort
except ImportError:
    pass
try:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:
    pass

BATCH = 3  # the batch analysed and run: distinct from every size of the models below


def _modules():
    """The modules exported, built here so that collecting the tests needs no torch."""

    class Attention(nn.Module):
        def __init__(self, batch_first=True, embed=32, heads=4):
            super().__init__()
            self.attn = nn.MultiheadAttention(embed, heads, batch_first=batch_first)
            self.batch_first = batch_first

        def forward(self, x):
            if not self.batch_first:  # the sequence first, as nn.Transformer's default layers take it
                x = x.transpose(0, 1)
            y = self.attn(x, x, x, need_weights=False)[0]
            return y if self.batch_first else y.transpose(0, 1)

    class SDPA(nn.Module):
        def __init__(self, embed=32, heads=4):
            super().__init__()
            self.qkv, self.proj, self.heads = nn.Linear(embed, 3 * embed), nn.Linear(embed, embed), heads

        def forward(self, x):
            b, n, e = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, e // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
            return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, e))

    class Block(nn.Module):  # a ViT encoder block after the patches: position embedding, attention, MLP
        def __init__(self, embed=32, heads=4, tokens=10, token=False):
            super().__init__()
            self.token = nn.Parameter(torch.randn(1, 1, embed)) if token else None
            self.pos = nn.Parameter(torch.randn(1, tokens + token, embed))
            self.ln_1, self.ln_2 = nn.LayerNorm(embed), nn.LayerNorm(embed)
            self.attn = nn.MultiheadAttention(embed, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(embed, 4 * embed), nn.GELU(), nn.Linear(4 * embed, embed))

        def forward(self, x):
            if self.token is not None:
                x = torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + self.pos
            y = self.ln_1(x)
            x = x + self.attn(y, y, y, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))

    class Encoder(nn.Module):  # nn.TransformerEncoderLayer's default: the sequence first
        def __init__(self, embed=32, heads=4):
            super().__init__()
            self.layer = nn.TransformerEncoderLayer(embed, heads, 2 * embed, dropout=0.0)

        def forward(self, x):
            return self.layer(x.transpose(0, 1)).transpose(0, 1)

    class Norms(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.ln, self.dim = nn.LayerNorm((6, 8)), dim

        def forward(self, x):
            return self.ln(x).softmax(self.dim)

    class Recurrent(nn.Module):
        def __init__(self, cell, batch_first=True, state=False, **options):
            super().__init__()
            self.rnn = getattr(nn, cell)(8, 16, batch_first=batch_first, **options)
            self.batch_first, self.state = batch_first, state

        def forward(self, x):
            y, h = self.rnn(x if self.batch_first else x.transpose(0, 1))
            if self.state:  # the last hidden state, batch first
                return (h[0] if isinstance(h, tuple) else h).transpose(0, 1)
            return y if self.batch_first else y.transpose(0, 1)

    class Einsum(nn.Module):
        def __init__(self, weight):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(16, 24)) if weight else None

        def forward(self, x):
            if self.weight is not None:
                return torch.einsum("bnd,de->bne", x, self.weight)
            b, n, d = x.shape
            q = x.reshape(b, n, 4, d // 4).transpose(1, 2)
            scores = torch.einsum("bhid,bhjd->bhij", q, q).softmax(-1)
            return torch.einsum("bhij,bhjd->bhid", scores, q)

    return dict(Attention=Attention, SDPA=SDPA, Block=Block, Encoder=Encoder, Norms=Norms, Recurrent=Recurrent,
                Einsum=Einsum)


CASES = {
    "attention, batch first": ("Attention", dict(batch_first=True), (10, 32)),
    "attention, sequence first": ("Attention", dict(batch_first=False), (10, 32)),
    "scaled_dot_product_attention": ("SDPA", {}, (10, 32)),
    "ViT block": ("Block", {}, (10, 32)),
    "transformer encoder layer, sequence first": ("Encoder", {}, (10, 32)),
    "layer norm, softmax dim 1": ("Norms", dict(dim=1), (4, 6, 8)),
    "layer norm, softmax dim 2": ("Norms", dict(dim=2), (4, 6, 8)),
    "layer norm, softmax dim -1": ("Norms", dict(dim=-1), (4, 6, 8)),
    "einsum with a weight": ("Einsum", dict(weight=True), (10, 16)),
    "einsum attention": ("Einsum", dict(weight=False), (10, 16)),
}
RECURRENT = {
    "LSTM": ("LSTM", {}), "LSTM, two layers, bidirectional": ("LSTM", dict(num_layers=2, bidirectional=True)),
    "LSTM, sequence first, no bias": ("LSTM", dict(batch_first=False, bias=False)),
    "LSTM's last hidden state": ("LSTM", dict(state=True, bidirectional=True)),
    "GRU, sequence first": ("GRU", dict(batch_first=False)), "GRU, no bias": ("GRU", dict(bias=False)),
    "GRU, two layers": ("GRU", dict(num_layers=2)), "RNN, bidirectional": ("RNN", dict(bidirectional=True)),
    "RNN's last hidden state": ("RNN", dict(state=True)),
}


def _randomized(model):
    """Random weights (the exporters' optimizers drop a zero bias, which a fresh attention has)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return model.eval()


def export(model, shape, dynamo: bool, *, dynamic: bool = True, opset: int = 17) -> bytes:
    """The module exported for inputs of ``shape`` (per sample), with a symbolic batch unless ``dynamic``
    is False."""
    x = torch.randn(BATCH, *shape)
    if dynamo:
        options = dict(dynamic_shapes=({0: torch.export.Dim("batch")},)) if dynamic else {}
        return torch.onnx.export(model, (x,), dynamo=True, verbose=False, **options).model_proto.SerializeToString()
    buffer = io.BytesIO()
    torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"], opset_version=opset,
                      dynamic_axes={"x": {0: "batch"}} if dynamic else None)
    return buffer.getvalue()


def ort_shapes(data: bytes, shape) -> dict:
    """Every node output's shape as onnxruntime computes it for a batch of BATCH."""
    model = onnx.load_model_from_string(data)
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known:
                model.graph.output.append(helper.make_empty_tensor_value_info(name))
                known.add(name)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal((BATCH, *shape)).astype(np.float32)}
    return {o.name: v.shape for o, v in zip(session.get_outputs(), session.run(None, feed))}


def per_sample(full, sample) -> bool:
    """Whether ``sample`` is ``full`` with the batch factor taken out of one axis (the axis dropped
    where it held the batch alone)."""
    full, sample = tuple(full), tuple(sample)
    for k, n in enumerate(full):
        if n == BATCH and full[:k] + full[k + 1:] == sample:
            return True
        if n % BATCH == 0 and full[:k] + (n // BATCH,) + full[k + 1:] == sample:
            return True
    return False


def check_shapes(data: bytes, shape, **options):
    """The analysis of the file, every layer named after a node checked against onnxruntime, and the
    network's output shape against the graph's."""
    analysis = analyse(from_onnx(data, batch=BATCH, **options))
    shapes = ort_shapes(data, shape)
    nodes = {n.name: n for n in onnx.load_model_from_string(data).graph.node}
    compared = 0
    for report in analysis.layers:
        # legacy files name layers after their nodes; torch.export's end the module path with the node's name,
        # and a recurrent node's last states are its name and .h or .c
        leaf = report.name.rsplit("/", 1)[-1]
        node, output = nodes.get(report.name) or nodes.get(leaf), 0
        base, _, state = report.name.rpartition(".")
        if node is None and state in ("h", "c"):
            node, output = nodes.get(base) or nodes.get(base.rsplit("/", 1)[-1]), 1 + (state == "c")
        if node is not None and len(node.output) > output and node.output[output] in shapes:
            got = shapes[node.output[output]]
            assert per_sample(got, report.output_shape), (report.name, report.output_shape, got)
            compared += 1
    assert compared, "no layer was compared"
    output = onnx.load_model_from_string(data).graph.output[0].name
    assert (BATCH, *analysis.layers[-1].output_shape) == tuple(shapes[output])
    return analysis


def torch_macs(model, shape) -> int:
    """Half FlopCounterMode's total for a batch of BATCH, attention on PyTorch's math backend (gradients
    on, so nn.MultiheadAttention takes its counted path, not the fused inference kernel)."""
    x = torch.randn(BATCH, *shape, requires_grad=True)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def unrolled_macs(rnn, steps: int) -> int:
    """Half FlopCounterMode's count of a recurrent module's steps as matrix products with its weights."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        for layer in range(rnn.num_layers):
            for suffix in ("", "_reverse")[: 1 + rnn.bidirectional]:
                w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}{suffix}"), getattr(rnn, f"weight_hh_l{layer}{suffix}")
                for _ in range(steps):
                    torch.mm(torch.zeros(BATCH, w_ih.shape[1]), w_ih.T)
                    torch.mm(torch.zeros(BATCH, w_hh.shape[1]), w_hh.T)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("case", list(CASES))
def test_exported_modules_against_onnxruntime_and_pytorch(case, dynamo):
    kind, options, shape = CASES[case]
    model = _randomized(_modules()[kind](**options))
    analysis = check_shapes(export(model, shape, dynamo), shape)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.macs == torch_macs(model, shape)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("case", list(RECURRENT))
def test_recurrent_modules_against_onnxruntime_and_pytorch(case, dynamo):
    cell, options = RECURRENT[case]
    model = _randomized(_modules()["Recurrent"](cell, **options))
    shape = (5, 8)
    if dynamo and cell == "RNN":
        # torch.export unrolls nn.RNN into per-step products, the first on the constant zero state: refused
        from convcalc import ConvcalcError

        with pytest.raises(ConvcalcError, match="on constants"):
            from_onnx(export(model, shape, dynamo), batch=BATCH)
        return
    analysis = check_shapes(export(model, shape, dynamo), shape)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.macs == unrolled_macs(model.rnn, shape[0])


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_a_class_token_is_the_concat_s_learned_part(dynamo):
    from dataclasses import fields

    from convcalc import ConvcalcError
    from convcalc.engine.layers import Concat

    model = _randomized(_modules()["Block"](token=True))
    data = export(model, (10, 32), dynamo)
    if "weight_shape" not in {f.name for f in fields(Concat)}:  # the kind has no learned part: refused
        with pytest.raises(ConvcalcError, match="class token"):
            from_onnx(data, batch=BATCH)
        return
    analysis = check_shapes(data, (10, 32))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.macs == torch_macs(model, (10, 32))


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("kind", ["Attention", "SDPA"])
def test_a_fixed_batch_reads_as_a_symbolic_one(kind, batch, dynamo):
    """A file exported without a dynamic batch (torch.export's default) gives the same per-sample
    figures: a batch of 1 fits any axis, and is read as held by none in particular where it moves."""
    model = _randomized(_modules()[kind]())
    x = torch.randn(batch, 10, 32)
    data = export(model, (10, 32), dynamo, dynamic=False) if batch == BATCH else None
    if data is None:
        if dynamo:
            data = torch.onnx.export(model, (x,), dynamo=True, verbose=False).model_proto.SerializeToString()
        else:
            buffer = io.BytesIO()
            torch.onnx.export(model, (x,), buffer, dynamo=False, opset_version=17)
            data = buffer.getvalue()
    analysis = analyse(from_onnx(data))
    assert analysis.network.batch == batch
    assert analysis.layers[-1].output_shape == (10, 32)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    assert analysis.totals.macs * BATCH == torch_macs(model, (10, 32)) * batch


@pytest.mark.slow
@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_vit_b_16_against_torchvision_s_published_figures(dynamo):
    """torchvision's vit_b_16 at 224: 86,567,656 parameters and 17.564 GFLOPS as torchvision publishes
    them (its GFLOPS are MACs), confirmed with FlopCounterMode. The legacy file has a dynamic batch,
    torch.export's a fixed batch of 1 (its default). Random weights: an exporter stores equal tensors
    (a fresh model's zero biases) once."""
    model = _randomized(build("vit_b_16"))
    x = torch.randn(1, 3, 224, 224)
    if dynamo:
        data = torch.onnx.export(model, (x,), dynamo=True, verbose=False).model_proto.SerializeToString()
    else:
        buffer = io.BytesIO()
        torch.onnx.export(model, (x,), buffer, dynamo=False, input_names=["x"], opset_version=17,
                          dynamic_axes={"x": {0: "batch"}})
        data = buffer.getvalue()
    analysis = analyse(from_onnx(data))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters()) == 86_567_656
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x.requires_grad_())
    assert analysis.totals.macs == counter.get_total_flops() // 2 == 17_563_828_224
    assert analysis.layers[-1].output_shape == (1000,)
