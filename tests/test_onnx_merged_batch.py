"""ONNX files whose batch-first operators run on a batch merged with other sizes, and what MViT's files
write besides: small MViT-like modules exported by both of PyTorch's exporters, with PyTorch
(FlopCounterMode's total / 2, the output's shape, the model's parameters) and onnxruntime (the file's
output shape) as the oracles.

- a Conv, MaxPool, AveragePool or BatchNormalization on (batch x heads, ...): its layer on slices;
- a position embedding summed and joined from three learned tables (MViT v1): their values counted;
- the relative positions of MViT v2: an Einsum of three free letters with a gathered table, and a
  product batched over time with a stacked gathered table;
- an in-place write into a slice (``attn[:, :, 1:, 1:] += rel``): ScatterND as slice writes;
- ``torch.tensor_split`` (a Loop over a sequence in the TorchScript exporter's file);
and hand-built graphs for If on a fixed condition, sequences, and the one-line refusals.
"""

from __future__ import annotations


import numpy as np
import pytest

from convcalc import ConvcalcError, analyse
from convcalc.readers.onnx import from_onnx

from .torch_nets import onnx_bytes

pytestmark = [pytest.mark.needs_onnx]

try:
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    pass
try:
    import onnxruntime as ort
except ImportError:
    pass
try:
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:
    pass

BATCH = 3
EXPORTERS = ["legacy", "dynamo"]


def _torch(model, shape, batch: int):
    """FlopCounterMode's total / 2 and the output's shape, for a batch of ``batch``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(batch, *shape))
    return counter.get_total_flops() // 2, tuple(out.shape)


def _runtime_shape(data: bytes, shape, batch: int) -> tuple:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    return tuple(session.run(None, {name: x})[0].shape)


def _file_parameters(data: bytes) -> int:
    """The float initializers the file's nodes read, BatchNormalization's running statistics left out."""
    import onnx

    model = onnx.load_model_from_string(data)
    statistics = {n.input[i] for n in model.graph.node if n.op_type == "BatchNormalization" for i in (3, 4)}
    read = {name for n in model.graph.node for name in n.input} - statistics
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer
               if t.data_type == TensorProto.FLOAT and t.name in read)


def _check(model, shape, exporter: str):
    """The file read at a batch of BATCH and without one (the exporter's batch of 1): PyTorch's MACs, the
    output shape of PyTorch and onnxruntime, the file's parameters (the model's from the TorchScript
    exporter; torch.export may store a sum of parameters instead), nothing left uncounted."""
    torch.manual_seed(0)
    with torch.no_grad():  # random values: an exporter stores equal tensors (a fresh norm's ones and zeros) once
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5)
    data = onnx_bytes(model, shape, exporter == "dynamo")
    expected = _file_parameters(data)
    if exporter == "legacy":
        assert expected == sum(p.numel() for p in model.parameters())
    analyses = []
    for batch in (BATCH, None):
        network = from_onnx(data, batch=batch)
        analysis = analyse(network)
        macs, out = _torch(model, shape, batch or 1)
        assert analysis.totals.macs == macs, (batch, analysis.totals.macs, macs)
        assert (batch or 1, *analysis.output_shape) == out == _runtime_shape(data, shape, batch or 1)
        assert analysis.totals.params == expected
        assert all(r.counted for r in analysis.layers)
        analyses.append(network)
    return analyses[0]


def _pooling(*args):
    """The module below (torch is imported by the tests that build it)."""

    class Pooling(nn.Module):
        """MViT's pooling: the heads merged with the batch, (B * heads, d, T, H, W), through a 3-d operator."""

        def __init__(self, kind: str, heads: int = 2, d: int = 4) -> None:
            super().__init__()
            self.heads, self.d = heads, d
            self.op = {"conv": lambda: nn.Conv3d(d, d, 3, stride=(1, 2, 2), padding=1, groups=d, bias=False),
                       "max": lambda: nn.MaxPool3d(3, (1, 2, 2), 1), "avg": lambda: nn.AvgPool3d(3, (1, 2, 2), 1),
                       "norm": lambda: nn.BatchNorm3d(d)}[kind]()

        def forward(self, x):
            b, _, t, h, w = x.shape
            y = self.op(x.reshape(b * self.heads, self.d, t, h, w))
            return y.reshape(b, self.heads * self.d, *y.shape[2:])

    return Pooling(*args)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("kind", ["conv", "max", "avg", "norm"])
def test_a_batch_first_operator_on_a_batch_merged_with_heads_runs_on_slices(kind, exporter):
    model = _pooling(kind)
    network = _check(model, (8, 4, 6, 6), exporter)
    sliced = [layer for layer in network.layers if layer.slices != 1]
    assert [layer.slices for layer in sliced] == [2]


def _embedding(*args):
    """The module below (torch is imported by the tests that build it)."""

    class Embedding(nn.Module):
        """MViT v1's position embedding: a temporal and a spatial table added over every frame and position,
        a class position joined before them, added to the class token and the tokens."""

        def __init__(self, t: int = 2, hw: int = 64, c: int = 16) -> None:
            super().__init__()
            self.class_token = nn.Parameter(torch.randn(c))
            self.spatial = nn.Parameter(torch.randn(hw, c))
            self.temporal = nn.Parameter(torch.randn(t, c))
            self.class_pos = nn.Parameter(torch.randn(c))
            self.t = t

        def forward(self, x):
            hw, c = self.spatial.shape
            token = self.class_token.expand(x.size(0), -1).unsqueeze(1)
            x = torch.cat((token, x), dim=1)
            pos = torch.repeat_interleave(self.temporal, hw, dim=0)
            pos = pos + self.spatial.unsqueeze(0).expand(self.t, -1, -1).reshape(-1, c)
            pos = torch.cat((self.class_pos.unsqueeze(0), pos), dim=0).unsqueeze(0)
            return x + pos

    return Embedding(*args)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_an_embedding_added_and_joined_from_learned_tables_counts_them(exporter):
    # large enough that torch.export stores the tables, not their sum (as for MViT's)
    _check(_embedding(), (128, 16), exporter)


def _relative_positions(*args):
    """The module below (torch is imported by the tests that build it)."""

    class RelativePositions(nn.Module):
        """MViT v2's decomposed relative positions on queries (B, heads, t*h*w, c): an einsum with a table
        gathered by fixed distances along h, and along t a product batched over time, the queries moved to
        (t, B*heads*h*w, c), with the stacked gathered table."""

        def __init__(self, t: int = 2, h: int = 3, w: int = 3, c: int = 4) -> None:
            super().__init__()
            self.t, self.h, self.w = t, h, w
            self.rel_h = nn.Parameter(torch.randn(2 * h - 1, c))
            self.rel_t = nn.Parameter(torch.randn(2 * t - 1, c))
            self.proj = nn.Linear(c, c)

        def forward(self, x):
            b, n, _, c = x.shape
            t, h, w = self.t, self.h, self.w
            x = self.proj(x)
            r = x.reshape(b, n, t, h, w, c)
            dist_h = torch.arange(h)[:, None] - torch.arange(h)[None, :] + h - 1
            along_h = torch.einsum("bythwc,hkc->bythwk", r, self.rel_h[dist_h])
            dist_t = torch.arange(t)[:, None] - torch.arange(t)[None, :] + t - 1
            moved = r.permute(2, 0, 1, 3, 4, 5).reshape(t, b * n * h * w, c)
            along_t = torch.matmul(moved, self.rel_t[dist_t].transpose(1, 2)).transpose(0, 1)
            along_t = along_t.reshape(b, n, h, w, t, t)
            return torch.cat((along_h.reshape(b, n, -1), along_t.reshape(b, n, -1)), dim=-1)

    return RelativePositions(*args)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_relative_positions_with_gathered_tables(exporter):
    _check(_relative_positions(), (2, 18, 4), exporter)


def _slice_write(*args):
    """The module below (torch is imported by the tests that build it)."""

    class SliceWrite(nn.Module):
        """MViT v2's ``attn[:, :, 1:, 1:] += rel`` (a class token left out) and its residual pooling
        ``x[:, :, 1:, :] += q[:, :, 1:, :]``, on scores from a product."""

        def forward(self, x):
            attn = x @ x.transpose(-2, -1)
            rel = attn[:, :, 1:, 1:].sigmoid()
            attn[:, :, 1:, 1:] = attn[:, :, 1:, 1:] + rel
            out = attn.softmax(dim=-1) @ x
            out[:, :, 1:, :] += x[:, :, 1:, :]
            return out

    return SliceWrite(*args)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_writes_into_slices_of_an_activation(exporter):
    network = _check(_slice_write(), (2, 7, 4), exporter)
    assert sum(type(layer).__name__ == "SliceScatter" for layer in network.layers) >= 2


def _split(*args):
    """The module below (torch is imported by the tests that build it)."""

    class Split(nn.Module):
        """MViT's pooling keeps the class token apart: ``torch.tensor_split`` (a Loop appending slices to a
        sequence in the TorchScript exporter's file)."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 4)

        def forward(self, x):
            token, rest = torch.tensor_split(x, (1,), dim=1)
            return torch.cat((self.linear(rest), token), dim=1)

    return Split(*args)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_a_split_written_as_a_loop_over_a_sequence(exporter):
    _check(_split(), (7, 4), exporter)


def _model(nodes, initializers=(), shape=(4, 5)) -> bytes:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
                              [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(np.asarray(v), name) for name, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _branch(op: str):
    return helper.make_graph([helper.make_node(op, ["x"], ["out"])], op,
                             [], [helper.make_empty_tensor_value_info("out")])


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("taken", [True, False])
def test_an_if_on_a_fixed_condition_is_its_branch(taken):
    nodes = [helper.make_node("If", ["cond"], ["y"], then_branch=_branch("Relu"), else_branch=_branch("Sigmoid"))]
    data = _model(nodes, [("cond", np.array(taken))])
    network = from_onnx(data, batch=BATCH)
    assert [type(layer).__name__ for layer in network.layers] == ["Activation"]
    assert network.layers[0].function == ("ReLU" if taken else "Sigmoid")
    assert (BATCH, *analyse(network).output_shape) == _runtime_shape(data, (4, 5), BATCH)


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("insert, at", [(0, 2), (-1, 2), (2, -1)])
def test_a_sequence_built_and_read_back(insert, at):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Sigmoid", ["x"], ["s"]),
             helper.make_node("SequenceConstruct", ["r", "s"], ["seq"]),
             helper.make_node("SequenceInsert", ["seq", "x", "insert"], ["more"]),
             helper.make_node("SequenceAt", ["more", "at"], ["picked"]),
             helper.make_node("Tanh", ["picked"], ["y"])]
    data = _model(nodes, [("insert", np.array(insert, np.int64)), ("at", np.array(at, np.int64))])
    x = np.random.default_rng(0).standard_normal((BATCH, 4, 5)).astype(np.float32)
    (y,) = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    picked = {"r": np.maximum(x, 0), "s": 1 / (1 + np.exp(-x)), "input": x}
    network = from_onnx(data, batch=BATCH)
    tanh = network.layers[-1]
    assert tanh.function == "Tanh"
    (source,) = tanh.inputs
    assert np.allclose(y, np.tanh(picked[source]), atol=1e-6)  # the tensor onnxruntime picked


def _sequence(name: str):
    return helper.make_value_info(name, helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, None)))


def _loop_body():
    """A body applying a ReLU to its carried tensor and appending the result to its carried sequence."""
    return helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                              helper.make_node("Relu", ["acc_in"], ["acc_out"]),
                              helper.make_node("SequenceInsert", ["seq_in", "acc_out"], ["seq_out"])], "body",
                             [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                              helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None), _sequence("seq_in")],
                             [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                              helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None), _sequence("seq_out")])


@pytest.mark.needs_onnxruntime
def test_a_loop_with_a_fixed_trip_count_is_unrolled():
    nodes = [helper.make_node("SequenceEmpty", [], ["empty"], dtype=TensorProto.FLOAT),
             helper.make_node("Loop", ["trips", "", "x", "empty"], ["acc", "seq"], body=_loop_body()),
             helper.make_node("SequenceAt", ["seq", "last"], ["y"])]
    data = _model(nodes, [("trips", np.array(3, np.int64)), ("last", np.array(-1, np.int64))])
    network = from_onnx(data, batch=BATCH)
    assert [type(layer).__name__ for layer in network.layers] == ["Activation"] * 3  # once an iteration
    assert len({layer.name for layer in network.layers}) == 3
    assert (BATCH, *analyse(network).output_shape) == _runtime_shape(data, (4, 5), BATCH)


def test_a_loop_whose_trip_count_comes_from_the_input_is_one_line():
    nodes = [helper.make_node("Cast", ["x"], ["count"], to=TensorProto.INT64),
             helper.make_node("SequenceEmpty", [], ["empty"], dtype=TensorProto.FLOAT),
             helper.make_node("Loop", ["count", "", "x", "empty"], ["acc", "seq"], name="loop", body=_loop_body()),
             helper.make_node("SequenceAt", ["seq", "last"], ["y"])]
    data = _model(nodes, [("last", np.array(-1, np.int64))])
    _refused(data, r"node 'loop' \(Loop\): has no trip count fixed in the file")


def _refused(data: bytes, match: str) -> str:
    with pytest.raises(ConvcalcError, match=match) as caught:
        from_onnx(data, batch=BATCH)
    assert "\n" not in caught.value.message
    return caught.value.message


def test_a_batch_first_operator_with_the_batch_on_another_axis_is_one_line():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2, 3]),
             helper.make_node("MaxPool", ["t"], ["y"], name="pool", kernel_shape=[2, 2])]
    data = _model(nodes, shape=(4, 6, 6))
    message = _refused(data, r"node 'pool' \(MaxPool\)")
    assert "axis 1" in message


def test_a_scatter_of_scattered_positions_into_an_activation_is_one_line():
    nodes = [helper.make_node("ScatterND", ["x", "where", "x_part"], ["y"], name="scatter"),
             helper.make_node("Slice", ["x", "start", "end", "axis"], ["x_part"])]
    nodes = nodes[1:] + nodes[:1]
    data = _model(nodes, [("where", np.array([[0], [2]], np.int64)), ("start", np.array([0], np.int64)),
                          ("end", np.array([2], np.int64)), ("axis", np.array([1], np.int64))])
    _refused(data, r"node 'scatter' \(ScatterND\).*not one block")


def test_loops_within_loops_are_bounded_in_all():
    inner = helper.make_graph([helper.make_node("Identity", ["c_in"], ["c_out"]),
                               helper.make_node("Relu", ["a_in"], ["a_out"])], "inner",
                              [helper.make_tensor_value_info("j", TensorProto.INT64, []),
                               helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("a_in", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("a_out", TensorProto.FLOAT, None)])
    outer = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                               helper.make_node("Loop", ["many", "", "acc_in"], ["acc_out"], body=inner)], "outer",
                              [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                               helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                               helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Loop", ["many", "", "x"], ["y"], name="outer", body=outer)]
    data = _model(nodes, [("many", np.array(100, np.int64))])  # 100 x 100 x 2 body nodes: over the bound
    _refused(data, r"over the 10,000 convcalc unrolls")
