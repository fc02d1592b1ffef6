"""print(model) text: read as data, round-tripped against the torch modules that printed it."""

import re

import pytest
from typer.testing import CliRunner

from convcalc import ConvcalcError, analyse, load_document
from convcalc.cli import app

runner = CliRunner()


def torch_modules():
    import torch
    from torch import nn

    class Classifier(nn.Module):  # flattens in forward(), as VGG and AlexNet do
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
                nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
                nn.Conv2d(32, 32, 3, padding=1, groups=4), nn.GELU(), nn.MaxPool2d(2, ceil_mode=True))
            self.avgpool = nn.AdaptiveAvgPool2d((3, 3))
            self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(288, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    plain = nn.Sequential(nn.Conv1d(4, 8, 3, dilation=2), nn.BatchNorm1d(8), nn.SiLU(), nn.ConvTranspose1d(8, 4, 4, 2, 1),
                          nn.AvgPool1d(2), nn.Flatten(), nn.Linear(4 * 40, 5))
    return [(Classifier(), (3, 64, 64)), (plain, (4, 44))]


@pytest.mark.needs_torch
def test_printed_modules_round_trip_to_the_same_totals():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    for module, shape in torch_modules():
        module.eval()
        with FlopCounterMode(display=False) as counter:
            out = module(torch.zeros(1, *shape))
        analysis = analyse(load_document(str(module), shape))
        assert analysis.output_shape == tuple(out.shape[1:])
        assert analysis.totals.params == sum(p.numel() for p in module.parameters())
        assert 2 * analysis.totals.macs == counter.get_total_flops()


@pytest.mark.needs_torch
def test_implicit_flatten_and_printed_order_are_noted():
    module, shape = torch_modules()[0]
    analysis = analyse(load_document(str(module), shape))
    notes = [note for r in analysis.layers for note in r.notes]
    assert any("Classifier's children are taken in printed order" in n for n in notes)
    assert any("Flatten inserted before classifier.1: its 288 in_features are the flattened 32x3x3" in n for n in notes)
    assert [r.name for r in analysis.layers][:2] == ["features.0", "features.1"]


def test_custom_blocks_are_refused_by_name():
    text = """ResNet(
  (conv1): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
  (layer1): Sequential(
    (0): BasicBlock(
      (conv1): Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)
      (relu): ReLU(inplace=True)
    )
  )
)"""
    with pytest.raises(ConvcalcError, match=r"line 4: BasicBlock 'layer1.0' is a custom block") as info:
        load_document(text, (3, 224, 224))
    assert "network document" in info.value.hint


def test_printed_text_needs_an_input():
    result = runner.invoke(app, ["shape", "-f", "-"], input="Sequential(\n  (0): ReLU()\n)\n")
    assert result.exit_code == 2 and "print(model) text carries no input size" in result.stderr
    result = runner.invoke(app, ["shape", "-f", "-", "--input", "3x8x8"], input="Sequential(\n  (0): ReLU()\n)\n")
    assert result.exit_code == 0 and "ReLU" in result.stdout


def test_unknown_module_in_printed_text():
    text = "Sequential(\n  (0): Conv2d(3, 8, kernel_size=(3, 3))\n  (1): Mystery(7)\n)"
    with pytest.raises(ConvcalcError, match="unknown layer kind 'Mystery'") as info:
        load_document(text, (3, 16, 16))
    assert "line 3" in info.value.format()


def test_depth_folds_blocks_with_subtotals():
    from convcalc.presets import load_preset
    from convcalc.output.reports import shape_table

    analysis = analyse(load_preset("resnet18"))
    table = shape_table(analysis, depth=1)
    rows = {row[1]: row for row in table.rows}
    assert rows["layer2.0"][0] == "19-27" and rows["layer2.0"][2] == "9 layers"
    block = [r for r in analysis.layers if r.path[:1] == ("layer2.0",)]
    from convcalc.engine.units import human

    assert rows["layer2.0"][table.columns.index("params")] == human(sum(r.params for r in block))
    result = runner.invoke(app, ["shape", "--preset", "resnet18", "--depth", "1"])
    assert result.exit_code == 0 and re.search(r"layer4\.1 +7 layers", result.stdout)
