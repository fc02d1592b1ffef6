"""The MACs of a training step against PyTorch: ``FlopCounterMode`` over ``model(x).sum().backward()`` at
batch 2 (forward and backward; its FLOPs halved), per layer where a module holds one layer and in total.

FlopCounterMode is the oracle except for one error of its own, which these tests show and correct
independently of convcalc: torch 2.13's ``conv_backward_flop`` counts a grouped convolution's weight
gradient with the input's channels where each group reads only ``in_channels / groups`` of them
(``conv_flop_count(t(x_shape), t(grad_out_shape), t(grad_weight_shape))`` takes ``t(x_shape)[0]``, all
the input channels, as its batch), so ``groups`` times too large. The correction is counted, not
assumed: each grouped weight gradient autograd runs is recorded, counted again by FlopCounterMode as
the dense convolution of one group (a group's input channels, output channels and weights, groups=1)
times the groups, and the difference taken off.
"""

from __future__ import annotations

import contextlib
import json

import pytest
from typer.testing import CliRunner

from convcalc import analyse, analyse_tokens
from convcalc.cli import app
from convcalc.engine.layers import Conv, Layer, MultiheadAttention, Opaque
from convcalc.engine.layers.base import Use
from convcalc.engine.layers.kind import CLASSES
from convcalc.engine.training import training_macs

from .torchvision_models import build

BATCH = 2


def _counter():
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False)


def _grouped_recorder(counter):
    """A dispatch mode recording every grouped convolution's weight gradient autograd computes, and the
    modules ``counter`` gives it to (its ``mod_tracker.parents``, as its own count does)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Grouped(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution_backward.default and args[9] > 1 and args[10][1]:
                grad, x, w, _, stride, padding, dilation, transposed, output_padding, groups, _ = args
                self.calls.append(((tuple(grad.shape), tuple(x.shape), tuple(w.shape), stride, padding, dilation,
                                    transposed, output_padding, groups), set(counter.mod_tracker.parents)))
            return func(*args, **(kwargs or {}))

    return Grouped()


def _weight_gradient_flops(grad, x, w, stride, padding, dilation, transposed, output_padding, groups) -> int:
    """FlopCounterMode's count of one weight gradient alone, on shapes only (meta tensors)."""
    import torch

    with _counter() as counter:
        torch.ops.aten.convolution_backward(
            torch.empty(grad, device="meta"), torch.empty(x, device="meta"), torch.empty(w, device="meta"), None,
            stride, padding, dilation, transposed, output_padding, groups, [False, True, False])
    return counter.get_total_flops()


def _overcount(call) -> int:
    """How many FLOPs FlopCounterMode counts too many for one grouped weight gradient: its count, less
    the same gradient counted as ``groups`` dense convolutions of one group each."""
    grad, x, w, stride, padding, dilation, transposed, output_padding, groups = call
    counted = _weight_gradient_flops(*call)
    one_group = _weight_gradient_flops((grad[0], grad[1] // groups, *grad[2:]), (x[0], x[1] // groups, *x[2:]),
                                       (w[0] // groups, *w[1:]), stride, padding, dilation, transposed,
                                       output_padding, 1)
    assert counted == groups * groups * one_group  # the error: the groups' sum counted groups times
    return counted - groups * one_group


def _step(model, shape, *, recurrent=False):
    """(FlopCounterMode's MACs of a forward and backward at batch 2, corrected for grouped weight
    gradients; its MACs per module; the correction) under the math attention backend."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)
    x = torch.randn(BATCH, *shape)
    model.train()
    steps = torch.backends.mkldnn.flags(enabled=False) if recurrent else contextlib.nullcontext()
    with steps, sdpa_kernel(SDPBackend.MATH), _counter() as counter:
        with _grouped_recorder(counter) as recorder:
            out = model(x)
            out = out["out"] if isinstance(out, dict) else out
            out.sum().backward()
    per_module = {name: sum(counts.values()) for name, counts in counter.get_flop_counts().items()}
    correction = 0
    for call, modules in recorder.calls:
        overcount = _overcount(call)
        correction += overcount
        for name in modules:
            per_module[name] -= overcount
    per_module = {name: flops // 2 for name, flops in per_module.items()}
    return (counter.get_total_flops() - correction) // 2, per_module, correction // 2


def _convcalc(model, shape):
    from convcalc import from_torch

    analysis = analyse(from_torch(model, shape, batch=BATCH), receptive_fields=False)
    return analysis, training_macs(analysis)


def _check(model, shape, *, recurrent=False, per_layer=True):
    """convcalc's training MACs equal the oracle's, in total and (``per_layer``) for each layer a module
    holds alone. FlopCounterMode gives the backward's operations to modules by backward hooks, which is
    right for a chain of modules but not across branches (a residual block's gradients reach its
    shortcut's module first): the models with branches are checked in total."""
    expected, per_module, correction = _step(model, shape, recurrent=recurrent)
    analysis, cost = _convcalc(model, shape)
    assert cost.exact and cost.unknown == ()
    assert cost.forward_macs == analysis.totals.macs
    assert cost.training_macs == expected
    if per_layer:
        prefix = type(model).__name__
        for report, layer in zip(analysis.layers, cost.layers):
            if report.name and f"{prefix}.{report.name}" in per_module:
                assert layer.total == per_module[f"{prefix}.{report.name}"], report.name
    return analysis, cost, correction


def _frozen(module):
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


@pytest.mark.needs_torch
def test_a_conv_stack_computes_no_input_gradient_for_its_first_layer():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                          nn.ReLU(), nn.ConvTranspose2d(16, 8, 2, stride=2), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    analysis, cost, _ = _check(model, (3, 14, 14))
    first = cost.layers[0]
    assert first.backward == first.forward  # the weight gradient only
    convt = cost.layers[[r.type for r in analysis.layers].index("ConvTranspose2d")]
    assert convt.backward == 2 * convt.forward


@pytest.mark.needs_torch
def test_a_frozen_backbone_computes_gradients_only_from_its_first_trained_layer():
    from torch import nn

    model = nn.Sequential(_frozen(nn.Conv2d(3, 8, 3)), _frozen(nn.BatchNorm2d(8)), nn.ReLU(),
                          _frozen(nn.Conv2d(8, 8, 3)), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(),
                          _frozen(nn.Conv2d(8, 4, 1)), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    analysis, cost, _ = _check(model, (3, 12, 12))
    backward = [t.backward for t in cost.layers]
    assert backward[:5] == [0] * 5  # nothing before the first trained layer needs a gradient
    assert backward[5] == cost.layers[5].forward  # its weights' gradient, not its input's
    assert backward[7] == cost.layers[7].forward  # frozen after it: its input's gradient, not its weights'


@pytest.mark.needs_torch
def test_training_only_the_biases_computes_no_weight_gradient():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 8 * 8, 3))
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.endswith("bias"))
    _, cost, _ = _check(model, (3, 12, 12))
    # the first layer's output needs a gradient (its bias trains), so each later product's input does
    assert [t.backward for t in cost.layers] == [0, 0, cost.layers[2].forward, 0, cost.layers[4].forward]


def _twice(nn, frozen):
    class Twice(nn.Module):  # one convolution and one Linear, each called twice: their weights are shared
        def __init__(self):
            super().__init__()
            self.a, self.b, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.Linear(8, 8)

        def forward(self, x):
            y = self.b(self.b(self.a(x)).relu()).mean((2, 3))
            return self.fc(self.fc(y).relu())

    model = Twice()
    if frozen:
        _frozen(model.b)
    return model


@pytest.mark.needs_torch
@pytest.mark.parametrize("frozen", [False, True], ids=["trained", "frozen"])
def test_a_module_called_twice_trains_its_weights_at_each_call(frozen):
    from torch import nn

    analysis, cost, _ = _check(_twice(nn, frozen), (3, 8, 8), per_layer=False)
    second = [t for r, t in zip(analysis.layers, cost.layers) if r.params == 0 and t.forward]
    assert len(second) == 2  # the second call of each counts no parameters, but its weight gradient
    assert [t.backward for t in second] == [t.forward * (1 if frozen and i == 0 else 2) for i, t in enumerate(second)]


@pytest.mark.needs_torch
def test_linear_over_tokens():
    from torch import nn

    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.LayerNorm(8), nn.Linear(8, 4, bias=False))
    _, cost, _ = _check(model, (5, 6))
    # batch 2 x 5 tokens: the first layer's weight gradient (6 x 8 each), the last's two products (8 x 4 each)
    assert [t.backward for t in cost.layers] == [2 * 5 * 6 * 8, 0, 0, 2 * (2 * 5 * 8 * 4)]


def _products(nn, torch, which):
    class Products(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 8), nn.Linear(6, 8)

        def forward(self, x):  # x: batch x 5 x 6
            if which == "both":  # two activations, both needing a gradient
                return torch.matmul(self.a(x), self.b(x).transpose(1, 2))
            return torch.matmul(x.transpose(1, 2), self.a(x))  # the input's factor needs none

    return Products()


@pytest.mark.needs_torch
@pytest.mark.parametrize("which", ["both", "one"])
def test_a_matrix_product_of_two_activations(which):
    import torch

    analysis, cost, _ = _check(_products(torch.nn, torch, which), (5, 6), per_layer=False)
    product = cost.layers[[r.type for r in analysis.layers].index("MatMul")]
    assert product.backward == (2 if which == "both" else 1) * product.forward


def _einsums(nn, torch, equation):
    class Einsums(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.w = nn.Linear(6, 8), nn.Parameter(torch.randn(8, 4))

        def forward(self, x):  # x: batch x 5 x 6
            y = self.a(x)
            if equation == "learned":
                return torch.einsum("bnd,de->bne", y, self.w)
            if equation == "input":  # the input's operand needs no gradient
                return torch.einsum("bnd,bne->bde", x, y)
            if equation == "summed":  # j is summed away first
                return torch.einsum("bnj,bnd->bnd", x, y) + torch.einsum("bmd,bnd->bmn", y, y).sum(-1, keepdim=True)
            return torch.einsum("bnd,bmd->bnm", y, y)

    return Einsums()


@pytest.mark.needs_torch
@pytest.mark.parametrize("equation", ["learned", "input", "summed", "two activations"])
def test_einsum(equation):
    import torch

    _check(_einsums(torch.nn, torch, equation), (5, 6), per_layer=False)


def _attention(nn, functional, which):
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 6)

        def forward(self, x):  # x: batch x 7 x 8, as two heads of 4 (values 3)
            def heads(t):
                return t.unflatten(-1, (2, -1)).transpose(1, 2)

            q = heads(self.q(x))
            learned = which != "query only"
            k, v = (heads(self.k(x)), heads(self.v(x))) if learned else (heads(x), heads(x[..., :6]))
            out = functional.scaled_dot_product_attention(q, k, v, is_causal=which == "causal")
            return out.transpose(1, 2).flatten(2)

    return Attention()


@pytest.mark.needs_torch
@pytest.mark.parametrize("which", ["all", "causal", "query only"])
def test_attention_under_the_math_backend(which):
    import torch

    model = _attention(torch.nn, torch.nn.functional, which)
    analysis, cost, _ = _check(model, (7, 8), per_layer=False)
    sdpa = cost.layers[[r.type for r in analysis.layers].index("ScaledDotProductAttention")]
    scores = BATCH * 2 * 7 * 7
    if which == "query only":  # grad_P (values 3 wide) and grad_q (4 wide); key and value need none
        assert sdpa.backward == scores * (3 + 4)
    else:  # grad_P and grad_v (3 each), grad_q and grad_k (4 each): twice the forward
        assert sdpa.backward == 2 * sdpa.forward == scores * (3 + 3 + 4 + 4)


@pytest.mark.needs_torch
@pytest.mark.parametrize("options", [dict(), dict(kdim=6, vdim=10), dict(add_bias_kv=True, bias=False),
                                     dict(add_zero_attn=True)], ids=["self", "kdim vdim", "bias kv", "zero attn"])
@pytest.mark.parametrize("grads, trained", [((False, False, False), True), ((True, False, False), True),
                                            ((True, True, True), True), ((True, False, True), False)],
                         ids=["no input grad", "query grad", "all grads", "frozen"])
@pytest.mark.parametrize("need_weights", [False, True])
def test_multihead_attention_kind(options, grads, trained, need_weights):
    """The kind against nn.MultiheadAttention, whichever of its inputs need a gradient, frozen or trained,
    by the explicit products (need_weights) and by scaled_dot_product_attention's math backend."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    module = torch.nn.MultiheadAttention(16, 4, batch_first=True, **options).train()
    if not trained:
        _frozen(module)
    separate = "kdim" in options
    shapes = [(7, 16), (9, options.get("kdim", 16)), (9, options.get("vdim", 16))] if separate else [(7, 16)]
    grads = grads if separate else grads[:1]
    inputs = [torch.randn(BATCH, *shape, requires_grad=grad) for shape, grad in zip(shapes, grads)]
    if not (trained or any(grads)):
        pytest.skip("nothing needs a gradient")
    with sdpa_kernel(SDPBackend.MATH), _counter() as counter:
        out = module(*(inputs * 3 if len(inputs) == 1 else inputs), need_weights=need_weights)[0]
        forward = counter.get_total_flops()
        out.sum().backward()
    layer = MultiheadAttention(16, 4, **options)
    figures = layer.merge(tuple(shapes))
    use = Use(tuple(shapes), figures.output_shape, BATCH, 4, tuple(grads), trained)
    assert BATCH * figures.macs == forward // 2
    assert layer.backward_macs(use, BATCH * figures.macs) == (counter.get_total_flops() - forward) // 2


def _masked(nn, torch, learned):
    class Masked(nn.Module):  # query, key and value are the input; only the mask needs a gradient
        def __init__(self):
            super().__init__()
            self.bias, self.mask = nn.Parameter(torch.randn(2, 7, 7)), nn.Linear(8, 7)

        def forward(self, x):  # x: batch x 7 x 8, as two heads of 4
            heads = x.unflatten(-1, (2, -1)).transpose(1, 2)
            mask = self.bias if learned else self.mask(x).unsqueeze(1)
            out = torch.nn.functional.scaled_dot_product_attention(heads, heads, heads, attn_mask=mask)
            return out.transpose(1, 2).flatten(2)

    return Masked()


@pytest.mark.needs_torch
@pytest.mark.parametrize("learned", [True, False], ids=["learned mask", "mask branch"])
def test_attention_whose_mask_alone_needs_a_gradient(learned):
    import torch

    analysis, cost, _ = _check(_masked(torch.nn, torch, learned), (7, 8), per_layer=False)
    sdpa = cost.layers[[r.type for r in analysis.layers].index("ScaledDotProductAttention")]
    assert sdpa.backward == BATCH * 2 * 7 * 7 * 4  # the scores' gradient, grad @ v^T, and nothing else


def _recurrent(nn, cell, options, learned_input):
    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(6, 6)
            self.rnn = getattr(nn, cell)(6, 5, batch_first=True, **options)

        def forward(self, x):
            return self.rnn(self.embed(x) if learned_input else x)[0]

    return Sequence()


@pytest.mark.needs_torch
@pytest.mark.parametrize("learned_input", [False, True], ids=["input", "after a linear"])
@pytest.mark.parametrize("cell, options", [
    ("LSTM", {}), ("LSTM", dict(num_layers=2, bidirectional=True)), ("LSTM", dict(proj_size=3, bias=False)),
    ("GRU", dict(num_layers=2)), ("RNN", dict(bidirectional=True, nonlinearity="relu")),
])
def test_recurrent_layers_step_by_step(cell, options, learned_input):
    """With oneDNN off, as FlopCounterMode sees the steps' products (its fused LSTM is not counted)."""
    import torch

    _check(_recurrent(torch.nn, cell, options, learned_input), (7, 6), recurrent=True)


@pytest.mark.needs_torch
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_a_frozen_recurrent_layer_after_a_trained_one_computes_its_input_gradients(cell):
    import torch

    model = _recurrent(torch.nn, cell, dict(num_layers=2, proj_size=2) if cell == "LSTM" else {}, True)
    _frozen(model.rnn)
    _, cost, _ = _check(model, (7, 6), recurrent=True)
    assert 0 < cost.layers[1].backward < cost.layers[1].forward


@pytest.mark.needs_torch
def test_a_frozen_recurrent_layer_after_a_frozen_input_costs_nothing_backward():
    import torch

    model = _recurrent(torch.nn, "GRU", {}, True)
    _frozen(model)
    model.head = torch.nn.Linear(5, 2)
    model.forward = lambda x: model.head(model.rnn(model.embed(x))[0])
    _, cost, _ = _check(model, (7, 6), recurrent=True, per_layer=False)
    assert [t.backward for t in cost.layers] == [0, 0, cost.layers[-1].forward]


@pytest.mark.needs_torch
def test_grouped_convolutions_and_transposed_ones():
    from torch import nn

    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                          nn.ConvTranspose2d(8, 4, 2, stride=2, groups=4), nn.ReLU(),
                          nn.ConvTranspose2d(4, 6, 3, groups=2, bias=False))
    _, cost, correction = _check(model, (4, 9, 9))
    assert correction > 0
    assert [t.backward == (1 if i == 0 else 2) * t.forward for i, t in enumerate(cost.layers) if t.forward] == [True] * 4


@pytest.mark.needs_torch
def test_resnet18():
    analysis, cost, correction = _check(build("resnet18"), (3, 64, 64), per_layer=False)
    assert correction == 0  # no grouped convolution
    assert cost.backward_macs < 2 * cost.forward_macs  # the stem computes no input gradient


@pytest.mark.needs_torch
def test_depthwise_convolutions_against_flopcountermodes_count_corrected():
    """mobilenet_v2: every depthwise layer's weight gradient is counted once, where FlopCounterMode
    counts it once per channel."""
    analysis, cost, correction = _check(build("mobilenet_v2"), (3, 64, 64), per_layer=False)
    assert correction > 0
    depthwise = [t for spec, report, t in zip(analysis.network.layers, analysis.layers, cost.layers)
                 if isinstance(spec, Conv) and spec.groups == report.input_shape[0] > 1]
    assert len(depthwise) == 17
    assert all(t.backward == 2 * t.forward for t in depthwise)  # input and weight gradients, each the forward's


@pytest.mark.needs_torch
@pytest.mark.slow
def test_lraspp_mobilenet_v3_large_at_its_weights_size():
    """At 520 x 520, the size its published weights use: 6.2 G MACs per sample for a training step,
    where FlopCounterMode counts 82 G (its depthwise weight gradients 960 times too large at most)."""
    shape = (3, 520, 520)
    model = build("lraspp_mobilenet_v3_large")
    analysis, cost, correction = _check(model, shape, per_layer=False)
    per_sample = cost.training_macs / BATCH
    flopcountermode = (cost.training_macs + correction) / BATCH
    assert round(per_sample / 1e9, 1) == 6.2
    assert round(flopcountermode / 1e9) == 82


def test_every_kind_says_what_its_backward_costs():
    """A new kind must declare its backward's MACs (0 where it has no products); only an opaque
    operation, which convcalc cannot cost at all, keeps the unknown answer."""
    undeclared = [cls.__name__ for cls in CLASSES if cls.backward_macs is Layer.backward_macs]
    assert undeclared == [Opaque.__name__]


def test_an_unknown_backward_makes_the_total_not_exact():
    from convcalc import Network

    network = Network((3, 8, 8), (Conv(4, 3, name="c"), Opaque("custom_op", output=(4, 6, 6), name="op"),
                                  Conv(4, 1, name="d")))
    cost = training_macs(analyse(network))
    assert not cost.exact and cost.unknown == (2,) and cost.training_macs is None
    assert [t.backward for t in cost.layers] == [cost.layers[0].forward, None, 2 * cost.layers[2].forward]


def test_nothing_needs_a_gradient_before_the_first_trained_layer():
    cost = training_macs(analyse_tokens("3x8x8", "maxpool:k=2", "conv:4,k=3,p=1", "conv:4,k=1"))
    assert [t.backward for t in cost.layers] == [0, 4 * 16 * 27, 2 * 4 * 16 * 4]


def test_the_json_gives_each_layers_backward_and_the_steps_total():
    result = CliRunner().invoke(app, ["shape", "3x8x8", "conv:4,k=3,p=1", "relu", "gap", "flatten", "linear:2",
                                      "--json", "--batch", "3"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    backward = [layer["backward_macs"] for layer in data["layers"]]
    assert backward == [3 * 4 * 64 * 27, 0, 0, 0, 2 * 3 * 4 * 2]
    assert data["totals"]["training_macs"] == data["totals"]["macs"] + sum(backward)



@pytest.mark.needs_torch
def test_no_gradient_flows_back_through_a_detach():
    """RAFT's update, small: the estimate is detached before each step reads it, so the step's first
    layer computes no input gradient for it (the oracle's count drops by those products)."""
    import torch

    class Refining(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encode, self.step = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Conv2d(6, 2, 3, padding=1)
            self.head = torch.nn.Conv2d(4, 2, 1)

        def forward(self, x):
            features = self.encode(x)
            estimate = self.head(features)
            for _ in range(2):
                estimate = estimate.detach()
                estimate = estimate + self.step(torch.cat([features, estimate], 1))
            return estimate

    analysis, cost, _ = _check(Refining(), (3, 8, 8), per_layer=False)
    assert [r.type for r in analysis.layers].count("Detach") == 2
