"""What RAFT's ONNX files hold beyond a CNN, on small RAFT-like modules exported by both of PyTorch's
exporters (the TorchScript one at opset 17, torch.export's at opset 20), read with a symbolic batch:

- both frames through one encoder: ``torch.cat([image1, image2], dim=0)``, then ``torch.chunk(.., 2)``
  back (a Concat along axis 0 and a Split or Slice of it). torch.export fixes the batch at such a chunk,
  so its files are exported under the PyTorch reader's ``even_chunks`` (the chunk traced as the equal
  split it is; PyTorch's results are unchanged);
- the correlation lookup: GridSample of a volume whose batch is merged with every position, at a grid
  built from a fixed coordinate grid repeated over the batch (the first lookup's grid is all fixed
  values, the second adds the input's flow), the grid split into x and y and normalised;
- ``F.grid_sample`` in each mode, padding mode and align_corners, the grid computed from the input;
- ``F.unfold`` (both exporters write it as a Pad, two Gathers of sliding windows, a Transpose and a
  Reshape), with RAFT's convex upsampling after it (a softmax and a sum);

checked against FlopCounterMode's total / 2 and onnxruntime's output shape at a batch of 3 and of 1,
and the file's parameters (the model's, from the TorchScript exporter; torch.export also stores fixed
tensors, a norm's ones and zeros, RAFT's lookup offsets, as initializers). The one-line refusals are
checked on hand-built graphs. The whole raft_small and raft_large are in test_onnx_zoo
(slow) and docs/onnx.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from convcalc import ConvcalcError, analyse
from convcalc.readers.onnx import from_onnx

from .torch_nets import onnx_bytes
from .torchvision_models import coordinate_grid

pytestmark = [pytest.mark.needs_onnx]

try:
    from onnx import TensorProto, helper
except ImportError:
    pass
try:
    import onnxruntime as ort
except ImportError:
    pass
try:
    import torch
    from torch import nn
    from torch.nn import functional as F
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:
    pass

EXPORTERS = ["legacy", "dynamo"]


def _torch(model, shape, batch: int):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(batch, *shape))
    return counter.get_total_flops() // 2, tuple(out.shape)


def _runtime_shape(data: bytes, shape, batch: int) -> tuple:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    return tuple(session.run(None, {session.get_inputs()[0].name: x})[0].shape)


def _file_parameters(data: bytes) -> int:
    """The float initializers of more than one value the file's nodes read, a coordinate grid left out. The
    TorchScript exporter stores the model's parameters; torch.export stores every fixed tensor too, and
    nothing in the file says which are learned: a norm's scale of ones, RAFT's table of lookup offsets."""
    import onnx

    model = onnx.load_model_from_string(data)
    read = {name for n in model.graph.node for name in n.input}
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer
               if t.data_type == TensorProto.FLOAT and t.name in read and int(np.prod(t.dims)) > 1
               and not coordinate_grid(t))


def _check(model, shape, exporter: str):
    """The file read at a batch of 3 and without one: PyTorch's MACs, PyTorch's and onnxruntime's output
    shape, the file's parameters (the model's, from the TorchScript exporter), every layer counted. The
    network read at a batch of 3 is returned."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    data = onnx_bytes(model, shape, exporter == "dynamo", even_chunks=True)
    expected = _file_parameters(data)
    if exporter == "legacy":
        assert expected == sum(p.numel() for p in model.parameters())
    networks = []
    for batch in (3, None):
        network = from_onnx(data, batch=batch)
        analysis = analyse(network)
        macs, out = _torch(model, shape, batch or 1)
        assert analysis.totals.macs == macs, (batch, analysis.totals.macs, macs)
        assert (batch or 1, *analysis.output_shape) == out == _runtime_shape(data, shape, batch or 1)
        assert analysis.totals.params == expected
        assert all(r.counted for r in analysis.layers)
        networks.append(network)
    return networks[0]


def _kinds(network) -> list[str]:
    return [type(layer).__name__ for layer in network.layers]


def _two_frames():
    class TwoFrames(nn.Module):
        """RAFT's feature encoder on both frames as one batch, its features chunked back and correlated,
        beside a context encoder on the first frame."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.InstanceNorm2d(8), nn.ReLU(),
                                         nn.Conv2d(8, 8, 1))
            self.context = nn.Conv2d(3, 4, 3, stride=2, padding=1)

        def forward(self, frames):
            image1, image2 = frames[:, :3], frames[:, 3:]
            fmap1, fmap2 = torch.chunk(self.encoder(torch.cat([image1, image2], dim=0)), 2, dim=0)
            b, _, h, w = fmap1.shape
            corr = fmap1.flatten(2).transpose(1, 2) @ fmap2.flatten(2)  # (b, h*w, h*w)
            return torch.cat([corr.view(b, h * w, h, w), self.context(image1), fmap1 - fmap2], dim=1)

    return TwoFrames()


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_both_frames_joined_along_the_batch_and_chunked_back_are_read_per_sample(exporter):
    network = _check(_two_frames(), (6, 8, 10), exporter)
    joined = [layer for layer in network.layers if layer.slices == 2]
    assert {type(layer).__name__ for layer in joined} >= {"Conv", "InstanceNorm"}
    assert _kinds(network).count("Select") == 2  # each frame's features: the part its piece selects


def _lookup():
    class Lookup(nn.Module):
        """RAFT's correlation lookup at one level, twice: at the fixed coordinate grid repeated over the batch,
        then moved by a flow computed from the input."""

        def __init__(self, radius: int = 2) -> None:
            super().__init__()
            self.radius = radius
            self.fmap = nn.Conv2d(4, 8, 1)
            self.flow = nn.Conv2d(4, 2, 3, padding=1)
            self.head = nn.Conv2d(2 * (2 * radius + 1) ** 2, 4, 1)

        def _sample(self, corr, coords):
            b, _, h, w = coords.shape
            d = torch.linspace(-self.radius, self.radius, 2 * self.radius + 1)
            delta = torch.stack(torch.meshgrid(d, d, indexing="ij"), dim=-1).view(1, 2 * self.radius + 1,
                                                                                  2 * self.radius + 1, 2)
            grid = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2) + delta
            x, y = grid.split([1, 1], dim=-1)
            grid = torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], dim=-1)
            out = F.grid_sample(corr, grid, align_corners=True)  # (b * h * w, 1, 2r + 1, 2r + 1)
            return out.view(b, h, w, -1).permute(0, 3, 1, 2)

        def forward(self, x):
            b, _, h, w = x.shape
            fmap = self.fmap(x).flatten(2)
            corr = (fmap.transpose(1, 2) @ fmap).view(b * h * w, 1, h, w)
            grid = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")[::-1], dim=0).float()
            coords = grid[None].repeat(b, 1, 1, 1)
            first = self._sample(corr, coords)
            second = self._sample(corr, coords + self.flow(x))
            return self.head(torch.cat([first, second], dim=1))

    return Lookup()


def _samplings(network) -> list:
    return [layer for layer in network.layers if type(layer).__name__ == "GridSample"]


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_raft_s_lookup_samples_a_volume_merged_with_every_position_at_fixed_and_moved_grids(exporter):
    network = _check(_lookup(), (4, 6, 8), exporter)
    sampling = _samplings(network)
    assert [(s.mode, s.padding_mode, s.align_corners) for s in sampling] == [("bilinear", "zeros", True)] * 2
    analysis = analyse(network)
    shapes = [r.output_shape for r in analysis.layers if r.name in {s.name for s in sampling}]
    assert shapes == [(48, 1, 5, 5)] * 2  # per sample: the 6 x 8 positions lead, each its 5 x 5 lookups


SAMPLINGS = [("bilinear", "zeros", False), ("nearest", "border", True), ("bicubic", "reflection", False)]


def _sampler():
    class Sampler(nn.Module):
        """A spatial transformer: the input sampled at a grid computed from it, in each mode."""

        def __init__(self) -> None:
            super().__init__()
            self.grid = nn.Conv2d(3, 2, 3, stride=2, padding=1)
            self.head = nn.Conv2d(9, 4, 1)

        def forward(self, x):
            grid = torch.tanh(self.grid(x)).permute(0, 2, 3, 1) * 1.2  # some points outside, for the padding
            return self.head(torch.cat([F.grid_sample(x, grid, mode=mode, padding_mode=padding, align_corners=align)
                                        for mode, padding, align in SAMPLINGS], dim=1))

    return Sampler()


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_grid_sample_reads_its_mode_padding_and_corners_as_pytorch_s(exporter):
    network = _check(_sampler(), (3, 8, 10), exporter)
    sampling = _samplings(network)
    assert [(s.mode, s.padding_mode, s.align_corners) for s in sampling] == SAMPLINGS


def _upsampler():
    class Upsampler(nn.Module):
        """RAFT's convex upsampling: each position's 3 x 3 neighbours (F.unfold) mixed by a softmax mask."""

        def __init__(self) -> None:
            super().__init__()
            self.flow = nn.Conv2d(4, 2, 3, padding=1)
            self.mask = nn.Conv2d(4, 9 * 4 * 4, 1)

        def forward(self, x):
            b, _, h, w = x.shape
            flow = self.flow(x)
            mask = torch.softmax(self.mask(x).view(b, 1, 9, 4, 4, h, w), dim=2)
            up = F.unfold(4 * flow, kernel_size=3, padding=1).view(b, 2, 9, 1, 1, h, w)
            up = torch.sum(mask * up, dim=2).permute(0, 1, 4, 2, 5, 3)
            return up.reshape(b, 2, 4 * h, 4 * w)

    return Upsampler()


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_unfold_written_as_gathers_of_sliding_windows_is_read(exporter):
    network = _check(_upsampler(), (4, 5, 6), exporter)
    assert _kinds(network).count("IndexSelect") == 2  # the height's windows, then the width's


def _graph(nodes, shape, opset: int = 17) -> bytes:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_empty_tensor_value_info("y")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _sampling(opset: int, mode: str, rank: int = 2) -> bytes:
    """GridSample of the input at a grid made from it (a Slice of its channels, moved last)."""
    perm = [0, *range(2, 2 + rank), 1]
    nodes = [helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["c"], name="coords"),
             helper.make_node("Transpose", ["c"], ["grid"], perm=perm, name="move"),
             helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode, name="lookup")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["N", rank, *[4] * rank])],
                              [helper.make_empty_tensor_value_info("y")],
                              [helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
                               helper.make_tensor("ends", TensorProto.INT64, [1], [rank]),
                               helper.make_tensor("axes", TensorProto.INT64, [1], [1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _mode(data: bytes) -> str:
    (sampling,) = _samplings(from_onnx(data, batch=2))
    return sampling.mode


def test_grid_sample_modes_are_each_opset_s_names():
    assert [_mode(_sampling(16, "bicubic")), _mode(_sampling(20, "cubic")), _mode(_sampling(20, "linear", 3)),
            _mode(_sampling(20, "nearest", 3))] == ["bicubic", "bicubic", "bilinear", "nearest"]
    with pytest.raises(ConvcalcError, match=r"node 'lookup' \(GridSample\): attribute 'mode' is 'cubic', which is "
                                            r"not one of bilinear, nearest, bicubic"):
        from_onnx(_sampling(16, "cubic"))


def test_cubic_sampling_of_three_spatial_axes_is_refused_naming_the_node():
    with pytest.raises(ConvcalcError, match=r"node 'lookup' \(GridSample\): .*bicubic only supports 2-D"):
        from_onnx(_sampling(20, "cubic", 3))


def test_a_split_of_joined_batches_into_other_than_whole_batches_is_refused_naming_the_node():
    nodes = [helper.make_node("Concat", ["x", "x"], ["both"], axis=0, name="join"),
             helper.make_node("Split", ["both", "sizes"], ["a", "y"], axis=0, name="apart")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_empty_tensor_value_info("y")],
                              [helper.make_tensor("sizes", TensorProto.INT64, [2], [1, 3])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(ConvcalcError, match=r"node 'apart' \(Split\): splits an axis of 2 joined batches of 2 "
                                            r"into pieces of 1, 3, which are not whole batches"):
        from_onnx(data)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_a_reshape_of_joined_batches_that_fits_one_batch_only_is_refused(batch):
    """Concat(x, x) along the batch's axis, then a Reshape to the file's fixed -1 x 6 x 4: at a batch of
    2 (the parts joined) it looks like a reading, but its rows hold two samples each (onnxruntime's
    row 0 is samples 0 and 1); the file is read at a second batch too, where it cannot be."""
    nodes = [helper.make_node("Concat", ["x", "x"], ["both"], axis=0, name="join"),
             helper.make_node("Reshape", ["both", "to"], ["y"], name="merge")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
                              [helper.make_empty_tensor_value_info("y")],
                              [helper.make_tensor("to", TensorProto.INT64, [3], [-1, 6, 4])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(ConvcalcError, match=r"node 'merge' \(Reshape\): reshapes .* which does not keep the batch"):
        from_onnx(data, batch=batch)


def test_grid_sample_is_read_only_where_its_opset_defines_it():
    with pytest.raises(ConvcalcError, match=r"node 'lookup' \(GridSample\): is not an operator of opset 15"):
        from_onnx(_sampling(15, "bilinear"))
    with pytest.raises(ConvcalcError, match=r"node 'lookup' \(GridSample\): reads an input that is not 4-D"):
        from_onnx(_sampling(16, "bilinear", 3))
    assert _mode(_sampling(16, "bilinear")) == "bilinear"


def test_the_refusals_are_one_line_with_exit_code_2(tmp_path):
    from typer.testing import CliRunner

    from convcalc.cli import app

    path = tmp_path / "m.onnx"
    path.write_bytes(_sampling(16, "cubic"))
    result = CliRunner().invoke(app, ["shape", "-f", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "node 'lookup' (GridSample): attribute 'mode' is 'cubic'" in result.stderr
