"""Layers run on slices: a batch-first operator on a tensor whose batch PyTorch holds merged with
another size (MViT's pooling convolution on ``(batch * heads, C, T, H, W)``, LeViT's BatchNorm1d on
``(batch * tokens, C)``). Checked against PyTorch: parameters, FlopCounterMode's MACs, the output,
autograd's saved bytes; the NumPy backend against the layer run slice by slice; documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import analyse
from convcalc.cli import app
from convcalc.engine.errors import ConvcalcError
from convcalc.engine.layers import Conv
from convcalc.engine.network import Network
from convcalc.readers.document import load_document
from convcalc.output.document import network_to_dict
from convcalc.verbs.preparers import prepare_layer

runner = CliRunner()


def test_a_layer_on_slices_counts_its_work_per_slice_and_its_parameters_once():
    one = analyse(Network((8, 6, 6), (Conv(8, 3, groups=8, padding=1),)))
    three = analyse(Network((3, 8, 6, 6), (Conv(8, 3, groups=8, padding=1, slices=3),)))
    assert three.output_shape == (3, 8, 6, 6)
    assert three.totals.params == one.totals.params == 8 * 9 + 8
    assert three.totals.macs == 3 * one.totals.macs == 3 * 8 * 36 * 9
    assert any("runs on 3 slices" in note for note in three.layers[0].notes)
    # each slice is read as the kind reads its input: its channels (now axis 1) as a convolution reads
    # channels, whole, and its spatial axes through the kernel
    assert [str(s) for s in three.layers[0].receptive_field.size] == ["8", "3", "3"]


def test_slices_must_be_the_size_of_the_input_axis_0():
    with pytest.raises(ConvcalcError, match="slices=4 needs an input whose axis 0 holds 4 slices"):
        analyse(Network((3, 8, 6, 6), (Conv(8, 3, slices=4),)))


def test_the_numpy_backend_runs_each_slice_with_the_same_parameters():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5, 5))
    sliced = prepare_layer(Conv(4, 3, groups=4, slices=3), x, np.random.default_rng(0))(x)
    merged = x.reshape(6, 4, 5, 5)
    plain = prepare_layer(Conv(4, 3, groups=4), merged, np.random.default_rng(0))(merged)
    assert sliced.shape == (2, 3, 4, 3, 3)
    np.testing.assert_array_equal(sliced, plain.reshape(2, 3, 4, 3, 3))


def test_documents_write_and_read_slices():
    network = Network((3, 8, 6, 6), (Conv(8, 3, groups=8, slices=3),))
    document = network_to_dict(network)
    assert document["layers"][0]["slices"] == 3
    again = load_document(json.dumps(document))
    assert again.layers[0].slices == 3
    assert analyse(again).to_dict() == analyse(network).to_dict()


@pytest.mark.parametrize("value", [0, -2, "3", True, 2.5])
def test_a_bad_slices_value_is_one_line_naming_the_field(tmp_path, value):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [3, 8, 6, 6], "layers": [{"type": "conv", "out_channels": 8,
                                                                   "kernel_size": 3, "slices": value}]}))
    result = runner.invoke(app, ["shape", "--file", str(path)])
    assert result.exit_code == 2
    assert "slices must be a positive integer" in result.stderr and "Traceback" not in result.stderr


try:
    import torch
except ImportError:  # (the tests that need it skip)
    torch = None


class _MergedHeads(torch.nn.Module if torch else object):
    """MViT's attention pooling: tokens per head, reshaped to one clip per (sample, head), a depthwise
    Conv3d, back to tokens, then a LayerNorm."""

    def __init__(self, heads=2, channels=4, thw=(2, 6, 6)):
        super().__init__()
        self.heads, self.channels, self.thw = heads, channels, thw
        self.pool = torch.nn.Conv3d(channels, channels, 3, stride=(1, 2, 2), padding=1, groups=channels)
        self.norm = torch.nn.LayerNorm(channels)

    def forward(self, x):  # (B, heads * T * H * W, channels)
        b = x.shape[0]
        x = x.reshape(b * self.heads, *self.thw, self.channels).permute(0, 4, 1, 2, 3)
        x = self.pool(x)
        x = x.flatten(2).transpose(1, 2).reshape(b, self.heads, -1, self.channels)
        return self.norm(x)


class _MergedTokens(torch.nn.Module if torch else object):
    """LeViT's BatchNorm1d on tokens flattened with the batch, after a Linear."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(6, 8, bias=False)
        self.bn = torch.nn.BatchNorm1d(8)

    def forward(self, x):  # (B, tokens, 6)
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


def _macs(model, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


@pytest.mark.needs_torch
@pytest.mark.parametrize(("model", "shape", "kind"), [(_MergedHeads, (2 * 72, 4), "Conv3d"),
                                                      (_MergedTokens, (5, 6), "BatchNorm1d")])
def test_a_batch_first_layer_on_a_merged_batch_is_exact(model, shape, kind):
    from convcalc import from_torch
    from convcalc.engine.memory import training_memory

    from .torch_nets import saved_by_autograd

    torch.manual_seed(0)
    module = model().eval()
    analysis = analyse(from_torch(module, shape))
    layer = next(r for r in analysis.layers if r.type == kind)
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert any("slices" in note for note in layer.notes)
    assert analysis.totals.params == sum(p.numel() for p in module.parameters())
    assert analysis.totals.macs == _macs(module, torch.zeros(1, *shape))
    assert analysis.output_shape == tuple(module(torch.zeros(2, *shape)).shape[1:])
    three = analyse(from_torch(module, shape, batch=3), receptive_fields=False)
    assert three.totals.macs == _macs(module, torch.zeros(3, *shape))
    memory = training_memory(three)
    assert memory.exact and memory.saved_bytes == saved_by_autograd(module, torch.randn(3, *shape))


@pytest.mark.parametrize("layer", [{"type": "add", "scalar": 1}, {"type": "opaque", "op": "x", "output": [4, 9]},
                                   {"type": "mha", "embed_dim": 9, "num_heads": 1}])
def test_a_layer_reading_its_tensors_whole_refuses_slices_in_one_line(tmp_path, layer):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [3, 4, 9], "layers": [{**layer, "slices": 3}]}))
    result = runner.invoke(app, ["shape", "--file", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "cannot run on slices: it reads its tensors whole" in result.stderr
