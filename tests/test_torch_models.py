"""Real PyTorch models through ``--model`` / ``convcalc.from_torch``, against PyTorch itself:
parameters against the unique parameters' ``numel``, MACs against ``FlopCounterMode`` / 2,
output shapes against forward hooks, receptive fields against a brute-force NaN probe."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from convcalc import ConvcalcError, analyse, from_torch
from convcalc.cli import app

from .torch_nets import Generator, Tied, UNet, WithCumsum
from .torchvision_models import ZOO, build

try:
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:  # the tests that need torch say so (needs_torch); the others run without it
    pass


def _oracle(model, shape):
    """PyTorch's own figures: unique parameters, FlopCounterMode's MACs, and every leaf module's outputs."""
    outputs: dict[str, list] = {}
    hooks = []
    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: outputs.setdefault(name, []).append(tuple(o.shape[1:]))
                if isinstance(o, torch.Tensor) else None))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.zeros(1, *shape))
    for hook in hooks:
        hook.remove()
    out = out["out"] if isinstance(out, dict) else out
    params = sum(p.numel() for p in model.parameters())
    return params, counter.get_total_flops() // 2, tuple(out.shape[1:]), outputs


def _check_model(model, shape):
    network = from_torch(model, shape)
    analysis = analyse(network)
    # convert writes a document that reads back to the same figures, names, paths and receptive fields
    from convcalc import load_document
    from convcalc.output.document import network_to_yaml

    assert analyse(load_document(network_to_yaml(network))).to_dict() == analysis.to_dict()
    params, macs, output, leaves = _oracle(model, shape)
    assert analysis.totals.params == params
    assert analysis.totals.macs == macs
    assert analysis.output_shape == output
    assert analysis.totals.uncounted_layers == 0
    by_name = {r.name: r for r in analysis.layers}
    matched = 0
    for name, shapes in leaves.items():
        for call, seen in enumerate(shapes):
            report = by_name.get(name if call == 0 else f"{name}_{call}")
            if report is not None:
                assert report.output_shape == seen, (name, call)
                matched += 1
    assert matched >= len(analysis.layers) // 2  # most layers are single-operation modules
    return analysis


@pytest.mark.needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_torchvision_zoo_matches_pytorch(name):
    _check_model(build(name), (3, 299, 299) if name == "inception_v3" else (3, 224, 224))


@pytest.mark.needs_torch
@pytest.mark.parametrize("model, shape, output", [(Generator, (100, 1, 1), (3, 64, 64)),
                                                   (UNet, (3, 96, 96), (2, 96, 96))],
                         ids=["dcgan_generator", "unet_bilinear"])
def test_generative_and_segmentation_models_match_pytorch(model, shape, output):
    analysis = _check_model(model().eval(), shape)
    assert analysis.output_shape == output  # by design: 64x64 images; a mask of the input's size


@pytest.mark.needs_torch
def test_resnet18_names_paths_and_figures():
    analysis = analyse(from_torch(build("resnet18"), (3, 224, 224)))
    names = [r.name for r in analysis.layers]
    assert names[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1.0.conv1"]
    add = next(r for r in analysis.layers if r.name == "layer1.0.add")
    assert add.type == "Add" and add.path == ("layer1", "layer1.0") and len(add.inputs) == 2
    assert analysis.totals.params == 11_689_512 and analysis.totals.macs == 1_814_073_344  # torchvision: 1.814 G


def _nan_probe(model, shape, module_name, axis):
    """For each input position along ``axis`` (of the per-sample spatial axes), the output units of
    ``module_name`` that become NaN when that input slice is NaN: brute-force dependence."""
    size = shape[1 + axis]
    x = torch.zeros(size, *shape)
    for r in range(size):
        index = [r] + [slice(None)] * len(shape)
        index[2 + axis] = r
        x[tuple(index)] = float("nan")
    captured = {}
    module = model.get_submodule(module_name)
    hook = module.register_forward_hook(lambda m, i, o: captured.setdefault("y", o))
    with torch.no_grad():
        model(x)
    hook.remove()
    y = captured["y"]
    reduce_dims = tuple(d for d in range(1, y.ndim) if d != 2 + axis)
    return torch.isnan(y).any(dim=reduce_dims)  # [input position, output unit]


@pytest.mark.needs_torch
@pytest.mark.parametrize("model_name, shape, layer", [
    ("resnet18", (3, 64, 64), "layer3.0.bn2"),
    ("resnet18", (3, 64, 64), "layer2.1.bn2"),
    ("mobilenet_v3_small", (3, 64, 64), "features.4.block.0.1"),
    ("unet", (3, 48, 48), "ups.1.conv.4"),
    ("dcgan", (100, 4, 4), "main.10"),
])
def test_receptive_fields_over_real_graphs_equal_brute_force(model_name, shape, layer):
    model = {"unet": UNet, "dcgan": Generator}.get(model_name, lambda: build(model_name))().eval()
    for p in model.parameters():  # positive weights: no accidental cancellation hides a dependence
        p.data.uniform_(0.1, 1.0)
    analysis = analyse(from_torch(model, shape))
    index = next(r.index for r in analysis.layers if r.name == layer)
    size = shape[1]
    depends = _nan_probe(model, shape, layer, 0)
    checked_global = False
    for unit in range(depends.shape[1]):
        seen = torch.nonzero(depends[:, unit]).flatten().tolist()
        bounds = analysis.field_of(index, unit, 0)
        assert bounds is not None and seen
        lo, hi = bounds
        if lo >= 0 and hi <= size - 1:
            assert (min(seen), max(seen)) == (lo, hi), (unit, seen, bounds)
        else:  # the field reaches into padding: the real inputs read lie inside it
            assert max(lo, 0) <= min(seen) and max(seen) <= min(hi, size - 1), (unit, seen, bounds)
            if lo <= 0 and hi >= size - 1 and model_name == "mobilenet_v3_small":
                assert seen == list(range(size))  # the squeeze-excitation gate reads every position
                checked_global = True
    if model_name == "mobilenet_v3_small":
        assert checked_global


@pytest.mark.needs_torch
def test_tied_parameters_count_once_and_frozen_ones_are_not_trainable():
    model = Tied()
    analysis = analyse(from_torch(model, (8, 16, 16)))
    assert analysis.totals.params == sum(p.numel() for p in model.parameters()) == 8 * 8 * 9 + 8 + 32 + 4
    assert analysis.totals.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    second = [r for r in analysis.layers if r.type == "Conv2d"][1]
    assert second.params == 0 and any("shared with layer 1" in note for note in second.notes)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 8, 16, 16))
    assert analysis.totals.macs == counter.get_total_flops() // 2  # both uses of the conv are work


@pytest.mark.needs_torch
def test_operations_convcalc_cannot_cost_are_kept_and_marked_not_counted():
    model = WithCumsum().eval()
    analysis = analyse(from_torch(model, (3, 32, 32)))
    assert analysis.output_shape == (16, 8, 8)
    assert analysis.totals.uncounted_layers == 1
    uncounted = [r for r in analysis.layers if not r.counted]
    assert all(r.macs == 0 and any("not counted" in n for n in r.notes) for r in uncounted)
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    data = analysis.to_dict()
    assert data["totals"]["uncounted_layers"] == len(uncounted)
    assert any(layer["counted"] is False for layer in data["layers"])


@pytest.mark.needs_torch
def test_an_operation_not_counted_holds_its_parameters_once():
    """A module read as one not-counted layer (a cumulative sum inside it) and an operation on a learned
    tensor convcalc cannot cost (a product with a broadcast stack): their parameters are counted by
    that layer, and not again as parameters no layer holds."""

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.scale = nn.Linear(8, 8), nn.Parameter(torch.ones(8))

        def forward(self, x):
            return torch.cumsum(self.linear(x), -1) * self.scale

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.stack, self.out = Inner(), nn.Parameter(torch.randn(1, 8, 8)), nn.Linear(8, 2)

        def forward(self, x):
            return self.out(self.inner(x) @ self.stack)

    model = Model().eval()
    analysis = analyse(from_torch(model, (5, 8)))
    uncounted = {r.name: r.params for r in analysis.layers if not r.counted}
    assert uncounted == {"inner": 8 * 8 + 8 + 8, "matmul": 64}
    assert analysis.totals.params == sum(p.numel() for p in model.parameters()) == 80 + 64 + 18
    assert analysis.network.unused == ()


@pytest.mark.needs_torch
def test_the_command_line_reads_a_model_file(tmp_path):
    source = tmp_path / "net.py"
    source.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, width=8):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, width, 3, padding=1)\n"
        "        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, width, 1), nn.Sigmoid())\n\n"
        "    def forward(self, x):\n"
        "        x = torch.relu(self.conv(x))\n"
        "        return x * self.gate(x)\n")
    result = CliRunner().invoke(app, ["shape", "--model", f"{source}:Net", "--model-arg", "width=16", "3x32x32",
                                      "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["output_shape"] == [16, 32, 32]
    assert [layer["name"] for layer in data["layers"]] == ["conv", "relu", "gate.0", "gate.1", "gate.2", "mul"]
    assert data["totals"]["params"] == 3 * 16 * 9 + 16 + 16 * 16 + 16


@pytest.mark.needs_torch
def test_the_command_line_reads_a_torchvision_factory():
    build("efficientnet_b0")  # makes torchvision importable here (see torchvision_models)
    result = CliRunner().invoke(app, ["shape", "--model", "torchvision.models:efficientnet_b0", "3x224x224", "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["totals"]["params"] == 5_288_548 and data["output_shape"] == [1000]
    depth = CliRunner().invoke(app, ["shape", "--model", "torchvision.models:resnet18", "3x224x224", "--depth", "1"])
    assert depth.exit_code == 0 and re.search(r"\blayer1 +14 layers\b", depth.stdout)  # its folded row


@pytest.mark.parametrize("arguments, message", [
    # the marked ones reach their message only where torch imports (elsewhere: how to install it)
    pytest.param(["--model", "no_such_module_here:Net", "3x8x8"], "cannot import 'no_such_module_here'",
                 marks=pytest.mark.needs_torch),
    pytest.param(["--model", "json:dumps", "3x8x8"], "failed", marks=pytest.mark.needs_torch),
    pytest.param(["--model", "torch.nn:Conv2d", "3x8x8"], "calling Conv2d() failed", marks=pytest.mark.needs_torch),
    (["--model", "torch.nn:Identity"], "carries no input size"),
    (["--model", "torch.nn:ReLU", "3x8x8", "conv:4,k=3"], "give the layers one way"),
    (["3x8x8", "relu", "--model-arg", "a=1"], "--model-arg goes with --model"),
    pytest.param(["--model", "nocolon", "3x8x8"], "is not MODULE:NAME", marks=pytest.mark.needs_torch),
])
def test_bad_model_arguments_are_one_line_usage_errors(arguments, message):
    result = CliRunner().invoke(app, ["shape", *arguments])
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_without_pytorch_the_route_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    result = CliRunner().invoke(app, ["shape", "--model", "torchvision.models:resnet18", "3x224x224"])
    assert result.exit_code == 2 and "needs PyTorch" in result.stderr and "pip install torch" in result.stderr


def test_a_disagreement_with_the_traced_shape_is_a_loud_failure():
    from dataclasses import replace

    from convcalc import Network, parse_layer

    layer = replace(parse_layer("conv:4,k=3"), name="features.0", expect=(4, 7, 7))
    with pytest.raises(ConvcalcError, match=r"features.0 \(Conv2d\): convcalc's rules give 4x6x6 but the traced "
                                            r"model gives 4x7x7"):
        analyse(Network((3, 8, 8), (layer,)))


@pytest.mark.needs_torch
@pytest.mark.slow
def test_the_documented_zoo_table_is_what_convcalc_computes():
    from pathlib import Path

    from .torchvision_models import ZOO
    from .zoo_table import HEADER, MODELS, row

    page = (Path(__file__).parent.parent / "docs" / "model.md").read_text()
    assert HEADER in page
    # recomputed here: the CNN zoo and a transformer, a window transformer and a video model (the other
    # rows come from benchmarks/zoo_survey.py's run, whose models tests/test_zoo.py checks against PyTorch)
    for name in [m for m in MODELS if m in ZOO or m in ("vit_b_16", "swin_t", "maxvit_t", "r3d_18")]:
        assert row(name) in page, name


@pytest.mark.needs_torch
def test_every_output_of_a_model_is_kept():
    model = build("lraspp_mobilenet_v3_large")  # one output; fcn with its auxiliary head has two

    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 8, 3)
            self.main = nn.Conv2d(8, 2, 1)
            self.aux = nn.Conv2d(8, 4, 1)

        def forward(self, x):
            y = self.body(x)
            return {"out": self.main(y), "aux": self.aux(y)}

    net = from_torch(TwoHeads(), (3, 16, 16))
    analysis = analyse(net)
    assert net.outputs == ("aux",) and analysis.layers[-1].name == "main" and analysis.output_shape == (2, 14, 14)
    assert analysis.totals.params == sum(p.numel() for p in TwoHeads().parameters())
    assert analyse(from_torch(model, (3, 64, 64))).output_shape == (21, 64, 64)


@pytest.mark.needs_torch
def test_a_huge_input_is_refused_before_the_example_is_allocated():
    result = CliRunner().invoke(app, ["shape", "--model", "torch.nn:ReLU", "3x99999999999"])
    assert result.exit_code == 1 and "CONVCALC_MAX_TRACE_BYTES" in result.stderr
