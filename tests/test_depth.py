"""--depth N folds as torchinfo counts depth: the network is depth 0, a layer inside N blocks sits
at depth N + 1. Any depth works on any network and format: deeper than the blocks unfolds all."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.output.formats import OutputFormat

runner = CliRunner()
PRESETS = [p["name"] for p in json.loads(runner.invoke(app, ["presets", "--json"]).stdout)["presets"]]


def test_the_presets_are_listed():
    assert {"resnet18", "unet"} <= set(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_depth_on_every_preset_in_every_format(preset):
    layers = len(json.loads(runner.invoke(app, ["shape", "--preset", preset, "--json"]).stdout)["layers"])
    for depth in range(10):
        for output in OutputFormat:
            result = runner.invoke(app, ["shape", "--preset", preset, "--depth", str(depth), "--format", output.value])
            assert result.exit_code == 0, (depth, output, result.stderr, result.exception)
            if output is OutputFormat.csv:
                rows = list(csv.reader(io.StringIO(result.stdout)))[2:-1]  # the layers' rows
                folded = sum(int(r[0].split("-")[1]) - int(r[0].split("-")[0]) + 1 if "-" in r[0] else 1 for r in rows)
                assert folded == layers  # every layer is in exactly one row
                if depth == 0:
                    assert len(rows) == 1 and rows[0][1:3] == ["network", f"{layers} layers"]


def _rows(*args):
    result = runner.invoke(app, ["shape", *args, "--format", "csv"])
    assert result.exit_code == 0, result.stderr
    # each row's number, name (indented by its depth under --depth: compared without) and label
    return [[row[0], row[1].strip(), row[2]] for row in csv.reader(io.StringIO(result.stdout))][2:-1]


def test_depth_2_on_blocks_one_deep_unfolds_them():
    assert _rows("--preset", "resnet18", "--depth", "2") == _rows("--preset", "resnet18")
    assert ["5-11", "layer1.0", "7 layers"] in _rows("--preset", "resnet18", "--depth", "1")


NESTED = {"input": [3, 16, 16],
          "blocks": {
              "unit": {"layers": [{"type": "conv", "out_channels": 4, "kernel_size": 1}, {"type": "relu"}]},
              "stage": {"layers": [{"block": "unit", "name": "a"}, {"block": "unit", "name": "b"},
                                   {"type": "conv", "out_channels": 8, "kernel_size": 1}]},
          },
          "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3, "name": "stem"},
                     {"block": "stage", "name": "s1"}]}


def test_blocks_fold_at_each_depth_under_their_names(tmp_path):
    path = tmp_path / "nested.json"
    path.write_text(json.dumps(NESTED))
    layers = json.loads(runner.invoke(app, ["shape", "-f", str(path), "--json"]).stdout)["layers"]
    assert max(len(layer["path"]) for layer in layers) == 2
    assert _rows("-f", str(path), "--depth", "0") == [["1-6", "network", "6 layers"]]
    assert _rows("-f", str(path), "--depth", "1")[1] == ["2-6", "s1", "5 layers"]
    assert _rows("-f", str(path), "--depth", "2")[1:] == [["2-3", "s1.a", "2 layers"], ["4-5", "s1.b", "2 layers"],
                                                          ["6", "s1", "Conv2d 4→8 k=1"]]  # the output names s1
    for depth in (3, 9):  # deeper than the blocks: every layer a row of its own
        assert _rows("-f", str(path), "--depth", str(depth)) == _rows("-f", str(path))


MODEL = '''
import torch.nn as nn


def tiny():
    block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()))
    return nn.Sequential(nn.Conv2d(3, 4, 3), block, nn.AdaptiveAvgPool2d(1))
'''


@pytest.mark.needs_torch
def test_every_depth_on_a_captured_model(tmp_path):
    path = tmp_path / "tiny.py"
    path.write_text(MODEL)
    for depth in range(10):
        for output in (OutputFormat.table, OutputFormat.csv):
            result = runner.invoke(app, ["shape", "--model", f"{path}:tiny", "3x16x16", "--depth", str(depth),
                                         "--format", output.value])
            assert result.exit_code == 0, (depth, result.stderr, result.exception)
    assert _rows("--model", f"{path}:tiny", "3x16x16", "--depth", "1")[1][1:] == ["1", "3 layers"]
    assert ["1.1", "2 layers"] in [row[1:] for row in _rows("--model", f"{path}:tiny", "3x16x16", "--depth", "2")]
