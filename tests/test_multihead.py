"""The MultiheadAttention kind against ``torch.nn.MultiheadAttention``: parameters, output shapes and
MACs (FlopCounterMode's total / 2) in evaluation and in training, with separate key
and value sizes, without bias, and with the extra key/value positions of add_bias_kv and add_zero_attn."""

from __future__ import annotations

import json

import pytest

from convcalc.engine.analysis import analyse
from convcalc.engine.layers import MultiheadAttention
from convcalc.engine.network import Network
from convcalc.readers import parse_layer

pytestmark = pytest.mark.needs_torch

try:
    import torch
except ImportError:  # (the tests skip)
    torch = None

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



class _Block(torch.nn.Module if torch else object):
    """Self-attention alone or between a linear layer with a ReLU (whose output autograd saves too) and a ReLU
    with a linear head; its input and output tokens first where ``batch_first`` is False."""

    def __init__(self, batch_first, need_weights, dropout, alone):
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(12, 3, batch_first=batch_first, dropout=dropout)
        self.batch_first, self.need_weights, self.alone = batch_first, need_weights, alone
        self.first, self.head = torch.nn.Linear(12, 12), torch.nn.Linear(12, 4)

    def forward(self, x):
        x = x if self.alone else torch.relu(self.first(x))
        x = x if self.batch_first else x.transpose(0, 1)
        y = self.attention(x, x, x, need_weights=self.need_weights)[0]
        y = y if self.batch_first else y.transpose(0, 1)
        return y if self.alone else self.head(torch.relu(y))


@pytest.mark.parametrize("tokens, batch", [(5, 2), (1, 3), (4, 1)])
@pytest.mark.parametrize("need_weights, dropout", [(True, 0.0), (True, 0.2), (False, 0.0), (False, 0.2)])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("alone", [True, False])
def test_training_saves_what_autograd_saves(alone, batch_first, need_weights, dropout, tokens, batch):
    """The layer written as a token saves what the module does in training (``saved_tensors_hooks``): with
    the weights, the explicit softmax path; without, flash attention, or its math backend with dropout.
    Where the input's batch is moved and another layer saves its storage too, the figure is right but
    convcalc cannot tell a view from a copy, so it is not called exact."""
    from convcalc import analyse_tokens
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    token = f"mha:12,3,batch_first={batch_first},need_weights={need_weights},dropout={dropout}"
    layers = [token] if alone else ["linear:12", "relu", token, "relu", "linear:4"]
    memory = training_memory(analyse_tokens(f"{tokens}x12", *layers, batch=batch))
    torch.manual_seed(0)
    module = _Block(batch_first, need_weights, dropout, alone)
    assert memory.saved_bytes == saved_by_autograd(module, torch.randn(batch, tokens, 12))
    assert memory.exact == (alone or batch_first or tokens == 1 or batch == 1)


class _Cross(torch.nn.Module if torch else object):
    """Attention of a query over keys and values: key and value one tensor (``kv``: PyTorch projects them
    together), three tensors (``separate``), or the query's tensor as key (``qk``)."""

    def __init__(self, case, batch_first, need_weights, dropout, kdim=None, vdim=None):
        super().__init__()
        self.case, self.batch_first, self.need_weights = case, batch_first, need_weights
        self.q, self.k, self.v = (torch.nn.Linear(12, n or 12) for n in (None, kdim, vdim))
        self.attention = torch.nn.MultiheadAttention(12, 3, batch_first=batch_first, dropout=dropout, kdim=kdim,
                                                     vdim=vdim)

    def forward(self, x):
        q = self.q(x)
        k = q if self.case == "qk" else self.k(torch.relu(x))
        v = k if self.case == "kv" else self.v(x)
        if not self.batch_first:  # each tensor moved once, so the ones given twice stay one tensor
            moved = {}
            q, k, v = (moved.setdefault(id(t), t.transpose(0, 1)) for t in (q, k, v))
        y = self.attention(q, k, v, need_weights=self.need_weights)[0]
        return y if self.batch_first else y.transpose(0, 1)


def _cross_document(case, batch_first, need_weights, dropout, kdim, vdim) -> str:
    layers = [{"type": "linear", "out_features": 12, "name": "q"}]
    if case != "qk":
        layers += [{"type": "relu", "name": "r", "from": "input"},
                   {"type": "linear", "out_features": kdim or 12, "name": "k", "from": "r"}]
    if case != "kv":
        layers.append({"type": "linear", "out_features": vdim or 12, "name": "v", "from": "input"})
    attention = {"type": "mha", "embed_dim": 12, "num_heads": 3, "batch_first": batch_first, "dropout": dropout,
                 "need_weights": need_weights, "from": {"kv": ["q", "k", "k"], "separate": ["q", "k", "v"],
                                                        "qk": ["q", "q", "v"]}[case]}
    attention.update({name: n for name, n in (("kdim", kdim), ("vdim", vdim)) if n})
    return json.dumps({"input": [5, 12], "layers": [*layers, attention]})


@pytest.mark.parametrize("need_weights, dropout", [(True, 0.0), (True, 0.2), (False, 0.0), (False, 0.2)])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("case, kdim, vdim", [("kv", None, None), ("separate", None, None), ("separate", 8, 10),
                                              ("qk", None, None)])
def test_cross_attention_saves_what_autograd_saves(case, kdim, vdim, batch_first, need_weights, dropout):
    import dataclasses

    from convcalc.engine.memory import training_memory
    from convcalc.readers.document import load_document

    from .torch_nets import saved_by_autograd

    network = load_document(_cross_document(case, batch_first, need_weights, dropout, kdim, vdim))
    memory = training_memory(analyse(dataclasses.replace(network, batch=2), receptive_fields=False))
    torch.manual_seed(0)
    module = _Cross(case, batch_first, need_weights, dropout, kdim, vdim)
    assert memory.exact
    assert memory.saved_bytes == saved_by_autograd(module, torch.randn(2, 5, 12))


class _Module(torch.nn.Module if torch else object):
    """``nn.MultiheadAttention`` as a model calls it, after a linear layer, batch first or sequence first."""

    def __init__(self, batch_first, need_weights, dropout):
        super().__init__()
        self.first = torch.nn.Linear(12, 12)
        self.attention = torch.nn.MultiheadAttention(12, 3, batch_first=batch_first, dropout=dropout)
        self.batch_first, self.need_weights = batch_first, need_weights

    def forward(self, x):
        x = self.first(x)
        x = x if self.batch_first else x.transpose(0, 1)
        y = self.attention(x, x, x, need_weights=self.need_weights)[0]
        return y if self.batch_first else y.transpose(0, 1)


@pytest.mark.parametrize("need_weights, dropout", [(True, 0.0), (True, 0.1), (False, 0.0), (False, 0.1)])
@pytest.mark.parametrize("batch_first", [True, False])
def test_the_module_read_from_pytorch_saves_what_autograd_saves(batch_first, need_weights, dropout):
    """Read from PyTorch, the module is its parts: the copies ``.contiguous()`` makes, and the dropout of
    attention weights that the evaluation-mode capture does not record but training runs."""
    from convcalc import analyse, from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    module = _Module(batch_first, need_weights, dropout)
    memory = training_memory(analyse(from_torch(module, (5, 12), batch=2), receptive_fields=False))
    torch.manual_seed(0)
    assert memory.exact
    assert memory.saved_bytes == saved_by_autograd(module, torch.randn(2, 5, 12))
