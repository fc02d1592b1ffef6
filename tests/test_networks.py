"""Whole networks: presets against torchvision's published figures, graphs against
torch modules layer by layer, receptive fields over paths, blocks, and malformed documents."""

import json

import pytest
from typer.testing import CliRunner

from convcalc import analyse, load_document
from convcalc.cli import app
from convcalc.presets import load_preset, preset_names

runner = CliRunner()

# torchvision's model tables: parameters, and "GFLOPS" (conv + linear multiply-accumulates at 224x224)
PUBLISHED = {
    "alexnet": (61_100_840, "0.714"),
    "vgg16": (138_357_544, "15.47"),
    "resnet18": (11_689_512, "1.814"),
    "resnet50": (25_557_032, "4.089"),
    "mobilenet_v2": (3_504_872, "0.301"),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_presets_match_torchvision(name):
    params, gmacs = PUBLISHED[name]
    totals = analyse(load_preset(name)).totals
    assert totals.params == params
    decimals = len(gmacs.split(".")[1])
    assert f"{totals.macs / 1e9:.{decimals}f}" == gmacs


def test_every_preset_is_listed_and_loads():
    assert set(PUBLISHED) | {"unet"} == set(preset_names())
    result = runner.invoke(app, ["presets", "--json"])
    listed = {p["name"]: p for p in json.loads(result.stdout)["presets"]}
    assert listed["resnet50"]["params"] == 25_557_032


def test_preset_input_can_be_replaced():
    data = json.loads(runner.invoke(app, ["shape", "--preset", "resnet18", "3x320x320", "--json"]).stdout)
    assert data["input_shape"] == [3, 320, 320] and data["output_shape"] == [1000]
    conv1 = next(l for l in data["layers"] if l["name"] == "conv1")
    assert conv1["output_shape"] == [64, 160, 160]


def named_reports(analysis):
    return {r.name: r for r in analysis.layers if r.name}


def compare_with_torch(module, analysis, input_shape):
    """Every named layer of ours against the torch submodule of that name: output shape and params."""
    import torch
    shapes = {}

    def record(name):
        def hook(_module, _inputs, output):  # returns None: a hook's value would replace the output
            shapes.setdefault(name, tuple(output.shape[1:]))
        return hook

    for name, sub in module.named_modules():
        sub.register_forward_hook(record(name))
    module.eval()(torch.zeros(1, *input_shape))
    ours = named_reports(analysis)
    checked = 0
    for name, report in ours.items():
        sub = dict(module.named_modules()).get(name)
        if sub is None or not list(sub.parameters(recurse=False)):
            continue
        assert shapes[name] == report.output_shape, name
        assert sum(p.numel() for p in sub.parameters()) == report.params, name
        checked += 1
    assert sum(p.numel() for p in module.parameters()) == analysis.totals.params
    return checked


@pytest.mark.needs_torch
def test_resnet18_layer_by_layer_against_torch():
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return self.relu(y + (x if self.downsample is None else self.downsample(x)))

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            widths = [64, 128, 256, 512]
            for i, w in enumerate(widths):
                cin = 64 if i == 0 else widths[i - 1]
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(1, 5):
                x = getattr(self, f"layer{i}")(x)
            return self.fc(torch.flatten(self.avgpool(x), 1))

    shape = (3, 96, 128)
    network = load_preset("resnet18", shape)
    assert compare_with_torch(ResNet18(), analyse(network), shape) >= 40


@pytest.mark.needs_torch
def test_unet_layer_by_layer_against_torch():
    import torch
    from torch import nn

    def double(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class Up(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.upsample = nn.ConvTranspose2d(cin, cout, 2, 2)
            self.conv = double(2 * cout, cout)

        def forward(self, x, skip):
            return self.conv(torch.cat([self.upsample(x), skip], 1))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down1, self.down2, self.down3, self.down4 = double(3, 16), double(16, 32), double(32, 64), double(64, 128)
            self.bottleneck = double(128, 256)
            self.up4, self.up3, self.up2, self.up1 = Up(256, 128), Up(128, 64), Up(64, 32), Up(32, 16)
            self.head = nn.Conv2d(16, 2, 1)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            d1 = self.down1(x)
            d2 = self.down2(self.pool(d1))
            d3 = self.down3(self.pool(d2))
            d4 = self.down4(self.pool(d3))
            b = self.bottleneck(self.pool(d4))
            return self.head(self.up1(self.up2(self.up3(self.up4(b, d4), d3), d2), d1))

    shape = (3, 64, 80)
    analysis = analyse(load_preset("unet", shape))
    assert analysis.output_shape == (2, 64, 80)
    assert compare_with_torch(UNet(), analysis, shape) >= 5


def test_unet_needs_a_multiple_of_16():
    result = runner.invoke(app, ["shape", "--preset", "unet", "3x100x100"])
    assert result.exit_code == 2
    assert "branch 'up3.upsample' gives 64x24x24 but branch 'down3' gives 64x25x25 (axis 2 differs by 1)" in result.stderr


def test_receptive_field_is_the_largest_over_paths_and_misalignment_is_noted():
    doc = {"input": [1, 32], "layers": [
        {"type": "conv", "out_channels": 1, "kernel_size": 5, "padding": "same", "name": "wide"},
        {"type": "conv", "out_channels": 1, "kernel_size": 3, "padding": "same", "from": "input", "name": "narrow"},
        {"type": "add", "from": ["wide", "narrow"]},
    ]}
    report = analyse(load_document(json.dumps(doc))).layers[-1]
    assert report.receptive_field.size == (5,)
    assert not any("aligned" in n for n in report.notes)
    doc["layers"][0]["kernel_size"] = 4  # 'same' with an even kernel shifts the centre by 1/2
    report = analyse(load_document(json.dumps(doc))).layers[-1]
    assert any("not aligned on axis 0: centres 1/2 and 0" in n for n in report.notes)


def test_blocks_parameters_repeat_and_names():
    text = """
input: [8, 16, 16]
blocks:
  unit:
    params: [channels]
    layers:
      - {type: conv, out_channels: $channels*2, kernel_size: 1, name: expand}
      - {type: conv, out_channels: $channels, kernel_size: 3, padding: 1, name: squeeze}
      - {type: add, from: [squeeze, input]}
layers:
  - {block: unit, channels: 8, repeat: 3, name: stage}
  - {type: conv, out_channels: 4, kernel_size: 1, from: stage}
"""
    analysis = analyse(load_document(text))
    names = [r.name for r in analysis.layers]
    assert names[:3] == ["stage.0.expand", "stage.0.squeeze", "stage.0"]
    assert names[-2] == "stage.2" and analysis.layers[-1].inputs == ("stage.2",)
    assert analysis.layers[0].output_shape == (16, 16, 16)
    assert analysis.layers[3].inputs == ("stage.0",)  # each instance reads the one before
    assert analysis.layers[0].path == ("stage.0",)


@pytest.mark.parametrize(
    "document, message",
    [
        ({"input": [3, 8, 8], "layers": [{"type": "relu", "name": "a", "from": "b"}, {"type": "relu", "name": "b", "from": "a"}]},
         "read each other in a cycle"),
        ({"input": [3, 8, 8], "layers": [{"type": "relu", "from": "nowhere"}]}, "from names 'nowhere'"),
        ({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3, "name": "c"},
                                         {"type": "add", "from": ["c", "input"]}]},
         "add needs branches of one shape, or shapes that broadcast: branch 'c' gives 4x6x6 but branch 'input' gives 3x8x8"),
        ({"input": [3, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3, "name": "c"},
                                         {"type": "concat", "from": ["c", "input"]}]},
         "axis 2 differs by 2"),
        ({"input": [3, 8, 8], "layers": [{"type": "relu", "name": "lost"}, {"type": "relu", "from": "input"}]},
         "'lost''s output is never used"),
        ({"input": [3, 8, 8], "layers": [{"type": "relu", "name": "x"}, {"type": "relu", "name": "x"}]},
         "the name 'x' is taken by layer 1"),
        ({"input": [3, 8, 8], "layers": [{"block": "missing"}]}, "unknown block 'missing'"),
        ({"input": [3, 8, 8], "blocks": {"b": {"params": ["c"], "layers": [{"type": "relu"}]}},
          "layers": [{"block": "b"}]}, "block 'b' needs c"),
        ({"input": [3, 8, 8], "layers": [{"type": "add"}]}, "add joins two or more branches but receives 1"),
        ({"input": [3, 8, 8], "layers": [{"type": "relu", "name": "r"}, {"type": "conv", "out_channels": 2,
                                                                         "kernel_size": 1, "from": ["r", "input"]}]},
         "Conv reads one layer but from names 2"),
        ({"input": [3, 8, 8], "layers": [{"type": "relu", "once": "yes"}]}, "layers[0].once must be true or false"),
    ],
)
def test_malformed_documents(document, message):
    result = runner.invoke(app, ["shape", "-f", "-"], input=json.dumps(document))
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_yaml_is_a_clear_error():
    result = runner.invoke(app, ["shape", "-f", "-"], input="input: [3, 8, 8]\nlayers:\n  - {type: relu\n")
    assert result.exit_code == 2 and "invalid YAML at line" in result.stderr


def test_graph_runs_with_the_backend():
    data = json.loads(runner.invoke(app, ["run", "--preset", "unet", "3x32x32", "--json"]).stdout)
    assert data["output_shape"] == [2, 32, 32] and all(l["run"]["seconds"] >= 0 for l in data["layers"])


def test_convert_writes_a_resnet_stage_once_as_a_repeated_block():
    from convcalc.output.document import network_to_yaml
    from convcalc.presets import load_preset

    network = load_preset("resnet50")
    text = network_to_yaml(network)
    assert "{block: layer3_block, name: layer3, repeat: 5, first: 1}" in text  # layer3.1 ... layer3.5
    assert len(text.splitlines()) < 120 < len(network.layers)  # 175 layers, written in 110 lines
    assert analyse(load_document(text)).to_dict() == analyse(network).to_dict()


ONCE = """
input: [4, 8]
batch: 3
layers:
  - {type: linear, out_features: 8, name: x}
  - {type: constant, shape: [4, 2], name: table, from: input, once: true}
  - {type: linear, out_features: 8, name: mlp, once: true}
  - {type: add, from: [x, mlp]}
"""


def test_a_layer_computed_once_per_pass_is_counted_once_and_converts_back():
    """A bias network on a fixed table (``once``) costs the same at any batch; the rest scales with it.
    By hand: x is 4x8 @ 8x8 per sample (256 MACs, 3 samples), mlp 4x2 @ 2x8 once (64)."""
    result = runner.invoke(app, ["shape", "-f", "-", "--json"], input=ONCE)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [layer["macs"] for layer in data["layers"]] == [3 * 256, 0, 64, 0]
    assert any("once per forward pass" in note for note in data["layers"][2]["notes"])
    converted = runner.invoke(app, ["convert", "-f", "-"], input=ONCE)
    assert "once: true" in converted.stdout
    again = runner.invoke(app, ["shape", "-f", "-", "--json"], input=converted.stdout)
    assert json.loads(again.stdout)["totals"] == data["totals"]
