"""Memory figures against independent measurements: what autograd saves, recorded by
``torch.autograd.graph.saved_tensors_hooks``; what ``torch.optim`` keeps; and, for the
inference peak, the arrays convcalc's own run holds and allocates."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from convcalc import Network, analyse, analyse_tokens, load_document, parse_layer
from convcalc.cli import app
from convcalc.engine.memory import OPTIMIZERS, inference_memory, training_memory
from convcalc.verbs.execute import execute

from .torch_nets import UNet, saved_by_autograd
from .torchvision_models import ZOO, build

try:
    import torch
except ImportError:  # (the tests that need it skip)
    torch = None


def _convcalc_saved(model, shape, batch) -> tuple[int, bool]:
    from convcalc import from_torch

    memory = training_memory(analyse(from_torch(model, shape, batch=batch), receptive_fields=False))
    return memory.saved_bytes, memory.exact


@pytest.mark.needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("name", [*ZOO, "swin_t", "vit_b_16", "maxvit_t"])  # attention: windows, flash, einsums
def test_saved_activations_equal_autograds_over_the_zoo(name):
    import torch

    shape = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    model = build(name)
    ours, exact = _convcalc_saved(model, shape, 2)
    torch.manual_seed(0)
    assert exact
    assert ours == saved_by_autograd(model, torch.randn(2, *shape))


@pytest.mark.needs_torch
def test_saved_activations_equal_autograds_for_a_unet():
    import torch
    model = UNet()
    ours, exact = _convcalc_saved(model, (3, 64, 64), 3)
    assert exact and ours == saved_by_autograd(model, torch.randn(3, 3, 64, 64))


# (Softsign is x / (1 + |x|) in PyTorch, three operations: see the document test)
ACTIVATIONS = ["ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "ELU", "SELU", "GELU", "SiLU", "Hardswish", "Hardsigmoid",
               "Mish", "Softplus", "Sigmoid", "Tanh"]


@pytest.mark.needs_torch
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_in_and_out_of_place(activation, inplace):
    import torch
    nn = torch.nn
    make = getattr(nn, activation)
    try:
        act = make(inplace=True) if inplace else make()
    except TypeError:
        pytest.skip(f"{activation} has no in-place form")
    again = make(inplace=True) if inplace else make()
    # the activation after a BatchNorm (whose output nothing else saves) and before a convolution
    # (which saves the activation's output), twice, then pooling, dropout and a classifier
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), act, nn.Conv2d(4, 4, 1), again, nn.MaxPool2d(2),
                          nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(2), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                          nn.Dropout(0.3), nn.Linear(4, 3))
    ours, exact = _convcalc_saved(model, (3, 17, 17), 3)
    assert exact and ours == saved_by_autograd(model, torch.randn(3, 3, 17, 17))


def _kinds_models(nn, torch):
    class SqueezeExcite(nn.Module):  # multiply by a computed gate: both factors need gradients
        def __init__(self):
            super().__init__()
            self.conv, self.pool, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1)

        def forward(self, x):
            y = self.conv(x)
            return y * torch.sigmoid(self.fc(self.pool(y))) / (1 + self.pool(y))

    class Shuffle(nn.Module):  # chunk, concatenation, channel shuffle as views and one copy
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            y = self.a(x)
            left, right = y.chunk(2, dim=1)
            y = torch.cat([left, self.b(right)], dim=1)
            n, c, h, w = y.shape
            return y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)

    return {
        "group norm, reflection pad, upsample": nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.ReflectionPad2d(1), nn.ReplicationPad2d(1),
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.ConvTranspose2d(8, 4, 2, 2), nn.InstanceNorm2d(4),
            nn.Dropout2d(0.2), nn.Conv2d(4, 4, 3)),
        "layer norm and linear over a sequence": nn.Sequential(
            nn.Conv1d(3, 8, 3), nn.Flatten(1), nn.Unflatten(1, (8, 15)), nn.LayerNorm(15), nn.Linear(15, 6),
            nn.GELU(), nn.Softmax(dim=-1)),
        "frozen first layers": nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8)),
        "squeeze and excitation": SqueezeExcite(),
        "chunk and shuffle": Shuffle(),
        # batch norm over N x C channels saves the affine weight repeated for them
        "instance norm with an affine weight": nn.Sequential(nn.Conv2d(3, 8, 3), nn.InstanceNorm2d(8, affine=True),
                                                             nn.Conv2d(8, 4, 3)),
    }


@pytest.mark.needs_torch
@pytest.mark.parametrize("case", ["group norm, reflection pad, upsample", "layer norm and linear over a sequence",
                                  "frozen first layers", "squeeze and excitation", "chunk and shuffle",
                                  "instance norm with an affine weight"])
def test_other_kinds_views_and_frozen_parameters(case):
    import torch
    model = _kinds_models(torch.nn, torch)[case]
    shape = (3, 17) if "sequence" in case else (3, 12, 12)
    if case == "frozen first layers":
        for parameter in model[0].parameters():
            parameter.requires_grad_(False)
    ours, exact = _convcalc_saved(model, shape, 2)
    assert exact and ours == saved_by_autograd(model, torch.randn(2, *shape))


@pytest.mark.needs_torch
def test_a_document_gives_what_the_same_pytorch_model_saves():
    import torch
    nn = torch.nn
    layers = [{"type": "conv", "out_channels": 16, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False},
              {"type": "bn"}, {"type": "relu6"}, {"type": "maxpool", "kernel_size": 3, "stride": 2, "padding": 1},
              {"type": "conv", "out_channels": 32, "kernel_size": 3, "padding": 1}, {"type": "silu"},
              {"type": "softsign"}, {"type": "gap"}, {"type": "flatten"}, {"type": "dropout", "p": 0.2},
              {"type": "linear", "out_features": 10}]
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(), nn.MaxPool2d(3, 2, 1),
                          nn.Conv2d(16, 32, 3, padding=1), nn.SiLU(), nn.Softsign(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Dropout(0.2), nn.Linear(32, 10))
    document = {"input": [3, 32, 32], "batch": 4, "layers": layers}
    memory = training_memory(analyse(load_document(json.dumps(document))))
    assert memory.exact
    assert memory.saved_bytes == saved_by_autograd(model, torch.randn(4, 3, 32, 32))


@pytest.mark.needs_torch
def test_an_operation_without_a_rule_is_marked_not_exact():
    import torch

    from convcalc import from_torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.LocalResponseNorm(2), torch.nn.Conv2d(4, 4, 3))
    memory = training_memory(analyse(from_torch(model, (3, 12, 12))))
    assert not memory.exact and None in memory.saved


@pytest.mark.needs_torch
@pytest.mark.parametrize("optimizer, torch_name, options", [
    ("sgd", "SGD", {"lr": 0.1}), ("momentum", "SGD", {"lr": 0.1, "momentum": 0.9}), ("adam", "Adam", {}),
    ("adamw", "AdamW", {}),
])
def test_optimizer_state_equals_torch_optims_after_a_step(optimizer, torch_name, options):
    import torch
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 10 * 10, 5))
    model[0].weight.requires_grad_(False)  # frozen: no gradient, no state
    step = getattr(torch.optim, torch_name)([p for p in model.parameters() if p.requires_grad], **options)
    model(torch.randn(2, 3, 12, 12)).sum().backward()
    step.step()
    state = sum(value.nbytes for entry in step.state.values() for key, value in entry.items() if key != "step")
    gradients = sum(p.grad.nbytes for p in model.parameters() if p.grad is not None)
    from convcalc import from_torch

    memory = training_memory(analyse(from_torch(model, (3, 12, 12))), optimizer)
    assert memory.optimizer_bytes == state
    assert memory.gradient_bytes == gradients
    assert memory.parameter_bytes == sum(p.nbytes for p in model.parameters())
    assert sorted(OPTIMIZERS) == ["adam", "adamw", "momentum", "sgd"]


RUN_NETWORKS = {
    "pipeline": ("3x32x32", ["conv:16,k=3,p=1", "bn", "relu", "maxpool:k=2", "conv:32,k=3,p=1", "gelu", "flatten",
                             "linear:10"]),
    "views": ("8x12x12", ["conv:8,k=1", "permute:0x1x3x2", "reshape:-1x12x96", "slice:dim=2,start=2,end=50",
                          "unsqueeze:1", "squeeze:1", "flatten", "linear:4"]),
}


@pytest.mark.parametrize("name", [*RUN_NETWORKS, "unet", "further output"])
def test_the_inference_peak_lies_within_what_the_run_holds_and_allocates(name):
    if name == "unet":
        network = _unet_document()
    elif name == "further output":
        network = _further_output_document()
    else:
        shape, tokens = RUN_NETWORKS[name]
        network = Network(tuple(int(n) for n in shape.split("x")), tuple(parse_layer(t) for t in tokens), batch=2)
    execution = execute(network, repeat=1)
    predicted = inference_memory(execution.analysis)
    assert len(predicted.curve) == len(execution.live_bytes) == len(execution.held_bytes)
    for layer, expected, measured, held in zip(predicted.layers, predicted.curve, execution.live_bytes,
                                                execution.held_bytes):
        # what the run held before the layer (measured from its arrays) is within the prediction,
        # and the prediction within that plus what the call allocated at its peak (traced)
        assert held <= expected <= measured, layer
        output = execution.analysis.layers[layer - 1]
        # the rest is work buffers: at most twice the output plus the tile budget
        assert measured - expected <= 2 * output.activation_bytes + 16 * 2**20, layer
    assert predicted.peak_bytes <= execution.peak_bytes


def _unet_document():
    """A small U-Net as a document: the skip tensors stay alive across the decoder."""
    return load_document(json.dumps({"input": [3, 32, 32], "batch": 2, "layers": [
        {"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1, "name": "e1"},
        {"type": "relu"}, {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "out_channels": 16, "kernel_size": 3, "padding": 1, "name": "e2"},
        {"type": "relu"}, {"type": "maxpool", "kernel_size": 2},
        {"type": "conv", "out_channels": 16, "kernel_size": 3, "padding": 1},
        {"type": "upsample", "scale_factor": 2},
        {"type": "concat", "from": ["#8", "e2"], "name": "c2"},
        {"type": "conv", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "upsample", "scale_factor": 2, "mode": "bilinear"},
        {"type": "concat", "from": ["#11", "e1"]},
        {"type": "conv", "out_channels": 2, "kernel_size": 1},
    ]}))


def test_skip_tensors_stay_alive_across_the_decoder():
    # batch 2, float32: e1 8x32x32 = 65,536 B, e2 16x16x16 = 32,768 B, the bottleneck's input and
    # output 16x8x8 = 8,192 B each; the first skip is held until the last concatenation
    memory = inference_memory(analyse(_unet_document()))
    assert memory.curve[memory.layers.index(7)] == 65536 + 32768 + 8192 + 8192
    # the peak: e1, the upsampled 8x32x32 (65,536 B) and their concatenation 16x32x32 (131,072 B)
    assert (memory.peak_bytes, memory.peak_layer) == (65536 + 65536 + 131072, 12)


def _further_output_document():
    return load_document(json.dumps({"input": [1, 4, 4], "outputs": ["a"], "layers": [
        {"type": "conv", "out_channels": 2, "kernel_size": 3, "padding": 1, "name": "a"},
        {"type": "relu"}, {"type": "relu"}]}))


def test_a_further_output_is_kept_to_the_end():
    # input 64 B; the convolution's 128 B output is also a result of the network, so it is held
    # while both ReLUs run: 64 + 128, then 128 + 128, then 128 + 128 + 128
    memory = inference_memory(analyse(_further_output_document()))
    assert memory.curve == (192, 256, 384) and (memory.peak_bytes, memory.peak_layer) == (384, 3)
    result = CliRunner().invoke(app, ["shape", "-f", "-", "--json"], input=json.dumps(
        {"input": [1, 4, 4], "outputs": ["a"], "layers": [
            {"type": "conv", "out_channels": 2, "kernel_size": 3, "padding": 1, "name": "a"}, {"type": "relu"}]}))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["peak_activation_bytes"] == 256


def test_an_output_no_layer_is_called_is_refused():
    result = CliRunner().invoke(app, ["shape", "-f", "-"], input=json.dumps(
        {"input": [1, 4, 4], "outputs": ["nope"], "layers": [{"type": "relu", "name": "a"}]}))
    assert result.exit_code == 2
    assert "outputs names 'nope', which no layer is called" in result.stderr and "name one of: a" in result.stderr


def test_tokens_and_a_hand_count_agree():
    # 1x4x4 input (64 B), conv to 2x4x4 (128 B), relu (128 B), flatten (a view): the peak is conv
    # output + relu output = 256 B, while relu runs
    memory = inference_memory(analyse_tokens("1x4x4", "conv:2,k=3,p=1", "relu", "flatten"))
    assert memory.curve == (64 + 128, 128 + 128, 128)
    assert (memory.peak_bytes, memory.peak_layer) == (256, 2)


def _views_into_linear(nn, torch) -> dict:
    """Linear layers reading views: folded to rows, the view is what autograd saves where it folds
    without a copy (a piece of the last axis, a contiguous reshape), a copy of it where it does not
    (a slice of the tokens, a transposed or permuted tensor)."""

    class Read(nn.Module):
        def __init__(self, make, features):
            super().__init__()
            self.first, self.second, self.make = nn.Linear(8, 24), nn.Linear(features, 6), make

        def forward(self, x):  # (B, 7, 8)
            return self.second(self.make(self.first(x)))

    return {
        "a piece of the last axis": Read(lambda y: y[..., :8], 8),
        "a slice of the tokens": Read(lambda y: y[:, 1:, :8], 8),
        "a transposed tensor": Read(lambda y: y[..., :8].transpose(1, 2), 7),
        "heads split from a piece": Read(lambda y: y[..., :8].reshape(y.shape[0], 7, 2, 4).transpose(1, 2), 4),
        "a reshape of a piece": Read(lambda y: y[..., 8:].reshape(y.shape[0], 7, 2, 8), 8),
        "contiguous": Read(lambda y: y, 24),
    }


@pytest.mark.needs_torch
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("case", ["a piece of the last axis", "a slice of the tokens", "a transposed tensor",
                                  "heads split from a piece", "a reshape of a piece", "contiguous"])
def test_a_linear_layer_saves_its_input_folded_to_rows(case, batch):
    import torch

    model = _views_into_linear(torch.nn, torch)[case]
    ours, exact = _convcalc_saved(model, (7, 8), batch)
    assert exact and ours == saved_by_autograd(model, torch.randn(batch, 7, 8))


@pytest.mark.needs_torch
@pytest.mark.parametrize("version", ["", "V2"])
@pytest.mark.parametrize("shift", [0, 2])
@pytest.mark.parametrize("batch", [1, 3])
def test_window_attention_saves_what_bmm_reads(version, shift, batch):
    """torch.matmul hands bmm each operand folded to one batch of matrices: a copy where that is no view
    (Swin's keys transposed and its values, both picked from the one qkv tensor). Swin's window attention
    and Swin V2's (its position-bias MLP on a buffer, which is no activation; its logit scale clamped and
    exponentiated in forward, a tensor the product saves), against saved_tensors_hooks."""
    from .torchvision_models import torchvision

    torch.manual_seed(0)
    kind = getattr(torchvision().models.swin_transformer, f"ShiftedWindowAttention{version}")
    attention = kind(16, [4, 4], [shift, shift], 2)
    ours, exact = _convcalc_saved(attention, (8, 8, 16), batch)
    assert exact and ours == saved_by_autograd(attention, torch.randn(batch, 8, 8, 16))


@pytest.mark.needs_torch
@pytest.mark.parametrize("left, right", [((2, 5, 3), (2, 3, 4)), ((1, 5, 3), (2, 3, 4)), ((2, 1, 5, 3), (1, 2, 3, 4))])
@pytest.mark.parametrize("transposed", [False, True])
def test_a_product_of_two_branches_saves_its_operands_as_bmm_reads_them(left, right, transposed):
    """Operands that broadcast over leading axes, or a transposed one: bmm saves them expanded and folded,
    the operand's storage where that is a view, else a copy of the expanded size."""
    import math

    import torch

    class Product(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(8, 3 * 5 * 2)
            self.b = torch.nn.Linear(8, 3 * 4 * 2)

        def forward(self, x):  # x: (B, 8)
            a = self.a(x)[:, :math.prod(left)].reshape(-1, *left)
            b = self.b(x)[:, :math.prod(right)]
            b = b.reshape(-1, *right[:-2], right[-1], right[-2]).transpose(-1, -2) if transposed else \
                b.reshape(-1, *right)
            return a @ b

    model = Product()
    ours, exact = _convcalc_saved(model, (8,), 3)
    assert exact and ours == saved_by_autograd(model, torch.randn(3, 8))


@pytest.mark.needs_torch
def test_a_buffer_a_layer_reads_is_the_models_storage():
    """A linear layer on a buffer (Swin V2's position-bias MLP on its table of coordinates) saves the buffer
    itself, which is no activation; its output, added to the input, saves nothing more."""
    import torch

    class OnTable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("table", torch.randn(1, 7, 7, 2))
            self.mlp = torch.nn.Linear(2, 4)

        def forward(self, x):  # x: (B, 4, 7, 7)
            return x * self.mlp(self.table).permute(0, 3, 1, 2)

    model = OnTable()
    ours, exact = _convcalc_saved(model, (4, 7, 7), 2)
    assert exact and ours == saved_by_autograd(model, torch.randn(2, 4, 7, 7))


class _Attention(torch.nn.Module if torch else object):
    """Query, key and value picked from one projection, attended (PyTorch's CPU flash attention), the
    heads joined again: ``mask`` adds a mask computed from the input (which needs a gradient)."""

    def __init__(self, causal=False, mask=False):
        super().__init__()
        self.qkv, self.bias = torch.nn.Linear(12, 36), torch.nn.Linear(12, 5) if mask else None
        self.causal = causal

    def forward(self, x):  # (B, 5, 12)
        b, length, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, length, 3, 3, 4).permute(2, 0, 3, 1, 4)
        mask = self.bias(x).unsqueeze(1) if self.bias is not None else None
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal)
        return y.transpose(1, 2).reshape(b, length, 12)


class _MultiheadAttention(torch.nn.Module if torch else object):
    def __init__(self):
        super().__init__()
        self.attention = torch.nn.MultiheadAttention(12, 3, batch_first=True)

    def forward(self, x):
        return self.attention(x, x, x, need_weights=False)[0]


@pytest.mark.needs_torch
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("model", ["plain", "causal", "multihead"])
def test_attention_saves_what_cpu_flash_attention_saves(model, batch):
    """PyTorch's CPU kernel for scaled_dot_product_attention without dropout is its flash attention:
    it saves the query, key and value as given, its output (written batch, tokens, heads, features:
    the heads joined again are a view of it) and the logsumexp of each query's scores."""
    module = {"plain": _Attention(), "causal": _Attention(causal=True), "multihead": _MultiheadAttention()}[model]
    ours, exact = _convcalc_saved(module, (5, 12), batch)
    assert exact and ours == saved_by_autograd(module, torch.randn(batch, 5, 12))


class _LearnedFactor(torch.nn.Module if torch else object):
    """x (B, 3, 2, 4) with a learned operand made in forward: ``way`` says how."""

    def __init__(self, way):
        super().__init__()
        self.way, self.g, self.p = way, torch.nn.Parameter(torch.randn(3, 1, 1)), torch.nn.Parameter(torch.randn(1, 2, 4))

    def forward(self, x):
        if self.way == "to":  # no operation: the parameter's own storage
            return x * self.g.to(torch.float32)
        if self.way == "clamp exp":  # Swin V2's logit scale: the exponential's result, saved once
            return x * self.g.clamp(max=4.6).exp()
        if self.way == "twice":
            e = self.g.exp()
            return x * e * e
        if self.way == "joined":  # MViT's position embedding: tables joined, added: nothing saved
            return x + torch.cat([self.p, self.p, self.p], 0)
        if self.way == "exp added":  # the exponential saves its result, which no layer here saves
            return x + self.g.exp()
        return x * self.g.exp().expand(3, 2, 4)  # an expanded result: its storage is not followed


@pytest.mark.needs_torch
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("way, followed", [("to", True), ("clamp exp", True), ("twice", True), ("joined", True),
                                           ("exp added", False), ("expanded", False)])
def test_a_learned_operand_made_in_forward(way, followed, batch):
    """A product saves its learned factor: the parameter's storage (no activation) where it is the parameter
    or a view of it, a tensor of its own, once, where forward makes it; a making convcalc does not follow
    leaves the figure not exact rather than wrong."""
    module = _LearnedFactor(way)
    ours, exact = _convcalc_saved(module, (3, 2, 4), batch)
    assert exact == followed
    if followed:
        assert ours == saved_by_autograd(module, torch.randn(batch, 3, 2, 4))


@pytest.mark.needs_torch
def test_attention_with_a_mask_convcalc_does_not_read_is_not_called_exact():
    """A mask expanded over the heads (an expand convcalc reads as an operation it cannot cost): flash
    attention saves it as given, a view convcalc cannot follow, so the figure is not called exact."""

    class Expanded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(12, 36)

        def forward(self, x):
            b, length, _ = x.shape
            q, k, v = self.qkv(x).reshape(b, length, 3, 3, 4).permute(2, 0, 3, 1, 4)
            mask = x[..., :5].detach().unsqueeze(1).expand(-1, 3, -1, -1)
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    _, exact = _convcalc_saved(Expanded(), (5, 12), 2)
    assert not exact
