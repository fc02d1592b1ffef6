"""Hand-built ONNX graphs whose batch moves or whose operators take axes: ONNX's semantics with
onnxruntime (or, where it has no kernel, ONNX's reference evaluator) as the oracle of every output
shape, and FlopCounterMode for the MACs of the products. Softmax in opset 13 and in the older
flatten-to-a-matrix form, LayerNormalization over any trailing axes, Gemm's transposes with the batch
in either axis, Einsum's equations, LSTM/GRU/RNN with both layouts and their last states, and the
refusals, one line naming the node, where an operation would mix the samples; the command line on
files with a fixed batch and on torch.export's scoped names."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import ConvcalcError, analyse
from convcalc.cli import app
from convcalc.readers.onnx import from_onnx

pytestmark = pytest.mark.needs_onnx

try:
    from onnx import TensorProto, helper, numpy_helper
    from onnx.reference import ReferenceEvaluator
except ImportError:
    pass
try:
    import onnxruntime as ort
except ImportError:
    pass
try:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
except ImportError:
    pass

BATCH = 3
runner = CliRunner()


def _model(nodes, input_shape, initializers=(), opset=17, outputs=("y",)) -> bytes:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_empty_tensor_value_info(o) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _run(data: bytes, input_shape, reference: bool = False) -> list:
    """The graph's output shapes for a batch of BATCH, by onnxruntime or ONNX's reference evaluator."""
    import onnx

    x = np.random.default_rng(0).standard_normal((BATCH, *input_shape)).astype(np.float32)
    if reference:
        return [v.shape for v in ReferenceEvaluator(onnx.load_model_from_string(data)).run(None, {"x": x})]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return [v.shape for v in session.run(None, {"x": x})]


def _per_sample(full, sample) -> bool:
    full, sample = tuple(full), tuple(sample)
    return any((n == BATCH and full[:k] + full[k + 1:] == sample) or
               (n % BATCH == 0 and full[:k] + (n // BATCH,) + full[k + 1:] == sample) for k, n in enumerate(full))


def _check(data: bytes, input_shape, reference: bool = False):
    analysis = analyse(from_onnx(data, batch=BATCH))
    got = _run(data, input_shape, reference)
    assert _per_sample(got[0], analysis.layers[-1].output_shape), (analysis.layers[-1].output_shape, got)
    return analysis


def _weights(*shape):
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def _ints(*values):
    return np.array(values, np.int64)


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("opset, axis", [(11, 1), (11, 2), (11, -1), (11, 3), (13, 1), (13, 2), (13, -2)])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_on_any_axis_with_each_opset_s_semantics(op, opset, axis):
    data = _model([helper.make_node(op, ["x"], ["y"], name="sm", axis=axis)], (4, 6, 8), opset=opset)
    analysis = _check(data, (4, 6, 8))
    assert [r.type for r in analysis.layers].count("Reshape") == (2 if opset < 13 and axis % 4 != 3 else 0)


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("axis, normalized", [(-1, (8,)), (-2, (6, 8)), (1, (4, 6, 8))])
def test_layer_normalization_over_any_trailing_axes(axis, normalized):
    nodes = [helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], name="ln", axis=axis)]
    data = _model(nodes, (4, 6, 8), [("scale", _weights(*normalized)), ("bias", _weights(*normalized))])
    analysis = _check(data, (4, 6, 8))
    assert analysis.totals.params == 2 * int(np.prod(normalized))


@pytest.mark.needs_onnxruntime
@pytest.mark.needs_torch
@pytest.mark.parametrize("merged", [False, True])
def test_gemm_with_the_batch_in_its_transposed_input(merged):
    """(16, B) or (16, B*4) read with transA: the batch stays with the rows of the product."""
    shape = (4, 16) if merged else (16,)
    nodes = ([helper.make_node("Reshape", ["x", "rows"], ["r"], name="rows")] if merged else []) + [
        helper.make_node("Transpose", ["r" if merged else "x"], ["t"], name="t", perm=[1, 0]),
        helper.make_node("Gemm", ["t", "w", "b"], ["g"], name="gemm", transA=1, transB=1),
        helper.make_node("Reshape", ["g", "back"], ["y"], name="back")]
    data = _model(nodes, shape, [("w", _weights(8, 16)), ("b", _weights(8)), ("rows", _ints(-1, 16)),
                                 ("back", _ints(BATCH, *shape[:-1], 8))])
    analysis = _check(data, shape)
    with FlopCounterMode(display=False) as counter:
        torch.addmm(torch.zeros(8), torch.zeros(BATCH * (4 if merged else 1), 16), torch.zeros(16, 8))
    assert analysis.totals.macs == counter.get_total_flops() // 2
    assert analysis.totals.params == 8 * 16 + 8


EINSUMS = [
    ("bhid,bhjd->bhij", (4, 6, 8), None),
    ("bhid,bhjd->bhji", (4, 6, 8), None),
    ("...id,...jd->...ij", (4, 6, 8), None),
    ("bhid,de->bhie", (4, 6, 8), (8, 5)),
    ("bhid,ed->bhie", (4, 6, 8), (5, 8)),
    ("ed,bhid->bhei", (4, 6, 8), (5, 8)),
    ("bnd,de->bne", (6, 8), (8, 5)),
    ("hbd,de->hbe", (6, 8), (8, 5)),
]


@pytest.mark.needs_onnxruntime
@pytest.mark.needs_torch
@pytest.mark.parametrize("equation, shape, weight", EINSUMS)
def test_einsum_products_against_onnxruntime_and_torch_einsum(equation, shape, weight):
    first, second = equation.split("->")[0].split(",")
    inputs = ["w" if weight is not None and first.replace(".", "") in ("ed", "de") else "x",
              "w" if weight is not None and first.replace(".", "") not in ("ed", "de") else "x"]
    data = _model([helper.make_node("Einsum", inputs, ["y"], name="einsum", equation=equation)], shape,
                  [("w", _weights(*weight))] if weight is not None else [])
    if equation.startswith("hbd"):  # the batch second: a transposed input
        data = _model([helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[1, 0, 2]),
                       helper.make_node("Einsum", ["t", "w"], ["y"], name="einsum", equation=equation)], shape,
                      [("w", _weights(*weight))])
    analysis = _check(data, shape)
    x = torch.zeros(BATCH, *shape)
    operands = [torch.zeros(weight) if name == "w" else x for name in inputs]
    if equation.startswith("hbd"):
        operands[0] = x.transpose(0, 1)
    with FlopCounterMode(display=False) as counter:
        torch.einsum(equation, *operands)
    assert analysis.totals.macs == counter.get_total_flops() // 2
    assert analysis.totals.params == (int(np.prod(weight)) if weight is not None else 0)


@pytest.mark.parametrize("equation", ["bhid,bhjd->bhd", "bii->bi", "bhid,bhjd,bhke->bhij", "bij,bjk"])
def test_other_einsum_equations_are_one_line_refusals(equation):
    count = equation.split("->")[0].count(",") + 1
    data = _model([helper.make_node("Einsum", ["x"] * count, ["y"], name="odd", equation=equation)], (4, 4, 4))
    with pytest.raises(ConvcalcError, match=r"node 'odd' \(Einsum\): equation") as caught:
        from_onnx(data, batch=BATCH)
    assert "\n" not in caught.value.message


@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("op, gates, direction, bias", [
    ("LSTM", 4, "forward", True), ("LSTM", 4, "bidirectional", False), ("GRU", 3, "reverse", True),
    ("GRU", 3, "bidirectional", True), ("RNN", 1, "forward", False), ("RNN", 1, "bidirectional", True)])
def test_recurrent_nodes_with_either_layout_and_their_last_states(op, gates, direction, bias, layout):
    """layout=1 (batch first) has no onnxruntime kernel: ONNX's reference evaluator is the oracle."""
    directions, hidden, steps, features = 1 + (direction == "bidirectional"), 16, 5, 8
    initializers = [("W", _weights(directions, gates * hidden, features)),
                    ("R", _weights(directions, gates * hidden, hidden))]
    if bias:
        initializers.append(("B", _weights(directions, 2 * gates * hidden)))
    outputs = ["y", "yh"] + (["yc"] if op == "LSTM" else [])
    source = "x" if layout else "t"
    nodes = [] if layout else [helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[1, 0, 2])]
    nodes.append(helper.make_node(op, [source, "W", "R", "B" if bias else ""], outputs, name="rnn",
                                  hidden_size=hidden, direction=direction, layout=layout))
    data = _model(nodes, (steps, features), initializers, outputs=outputs)
    network = from_onnx(data, batch=BATCH)
    analysis = analyse(network)
    got = _run(data, (steps, features), reference=True)
    shapes = {r.name: r.output_shape for r in analysis.layers}
    for output, name, full in zip(outputs, ["rnn", "rnn.h", "rnn.c"], got):
        assert _per_sample(full, shapes[name]), (output, shapes[name], full)
    assert analysis.totals.params == sum(int(np.prod(v.shape)) for _, v in initializers)
    products = gates * hidden * (features + hidden)
    assert analysis.totals.macs == BATCH * directions * steps * products  # a loop's count, step by step


def _moved(op_nodes, initializers=()):
    """(N, 4, 6) with the batch moved to axis 1, then ``op_nodes`` reading 't'."""
    return _model([helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[1, 0, 2]), *op_nodes], (4, 6),
                  initializers)


@pytest.mark.parametrize("data, words", [
    (lambda: _moved([helper.make_node("ReduceMean", ["t", "a"], ["y"], name="mean")], [("a", _ints(1))]),
     r"node 'mean' \(ReduceMean\): works along axis 1, which holds the batch"),
    (lambda: _moved([helper.make_node("Softmax", ["t"], ["y"], name="sm", axis=1)]),
     r"node 'sm' \(Softmax\): works along axis 1, which holds the batch"),
    (lambda: _moved([helper.make_node("Transpose", ["t"], ["u"], name="u", perm=[0, 2, 1]),
                     helper.make_node("MatMul", ["t", "u"], ["y"], name="mm")]),
     r"node 'mm' \(MatMul\): reads tensors whose batches sit on different axes"),
    (lambda: _moved([helper.make_node("MatMul", ["t", "w"], ["y"], name="mm")], [("w", _weights(3, 6))]),
     r"node 'mm' \(MatMul\)"),
    (lambda: _moved([helper.make_node("Reshape", ["t", "s"], ["y"], name="split")], [("s", _ints(6, -1))]),
     r"node 'split' \(Reshape\): reshapes 4x3x6 to 6x12, which does not keep the batch of 3 whole in one axis"),
    (lambda: _moved([helper.make_node("Conv", ["t", "w"], ["y"], name="conv")], [("w", _weights(2, 3, 1))]),
     r"node 'conv' \(Conv\): reads a tensor whose batch is on axis 1"),
])
def test_operations_that_would_mix_samples_are_one_line_refusals(data, words):
    with pytest.raises(ConvcalcError, match=words) as caught:
        from_onnx(data(), batch=BATCH)
    assert "\n" not in caught.value.message


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("op", ["Squeeze", "Gather"])
def test_a_fixed_batch_of_one_taken_away_is_held_by_no_axis(op):
    """x.squeeze(0) or x[0] of a file with a batch of 1: the sample itself, its batch in no axis."""
    nodes = [helper.make_node(op, ["x", "i"], ["s"], name="take"),
             helper.make_node("Transpose", ["s"], ["t"], name="t", perm=[1, 0]),
             helper.make_node("MatMul", ["s", "t"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10, 32])],
                              [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(np.array([0] if op == "Squeeze" else 0, np.int64), "i")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    analysis = analyse(from_onnx(data))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.zeros((1, 10, 32), np.float32)})
    assert analysis.layers[-1].output_shape == y.shape == (10, 10)
    assert analysis.totals.macs == 10 * 10 * 32


@pytest.mark.needs_torch
def test_a_fixed_batch_refuses_another_batch_in_one_line(tmp_path):
    import io

    buffer = io.BytesIO()
    torch.onnx.export(torch.nn.Linear(8, 4), (torch.zeros(2, 8),), buffer, dynamo=False)
    path = tmp_path / "fixed.onnx"
    path.write_bytes(buffer.getvalue())
    refused = runner.invoke(app, ["shape", "-f", str(path), "--batch", "4"])
    assert refused.exit_code == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "fixed batch of 2" in errors[0] and "onnxruntime would refuse" in errors[0]
    assert "dynamic_axes" in refused.stderr and "dynamic_shapes" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert runner.invoke(app, ["shape", "-f", str(path), "--batch", "2"]).exit_code == 0
    assert runner.invoke(app, ["shape", "-f", str(path)]).exit_code == 0


@pytest.mark.needs_torch
def test_a_symbolic_batch_takes_any_batch(tmp_path):
    import io

    buffer = io.BytesIO()
    torch.onnx.export(torch.nn.Linear(8, 4), (torch.zeros(2, 8),), buffer, dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}})
    path = tmp_path / "dynamic.onnx"
    path.write_bytes(buffer.getvalue())
    result = runner.invoke(app, ["shape", "-f", str(path), "--batch", "4", "--json"])
    assert result.exit_code == 0, result.stderr
    assert from_onnx(buffer.getvalue(), batch=4).batch == 4


@pytest.mark.needs_torch
def test_torch_export_files_name_layers_by_module_scope(tmp_path):
    """torch.export's exporter names nodes node_Op_N; the module scope in their metadata gives the
    layers the legacy exporter's paths, which --depth folds."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(16, 4)))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    data = torch.onnx.export(model, (torch.zeros(2, 8),), dynamo=True, verbose=False,
                             dynamic_shapes=({0: torch.export.Dim("batch")},)).model_proto.SerializeToString()
    network = from_onnx(data)
    paths = {layer.path for layer in network.layers}
    assert ("0",) in paths and ("1", "1.1") in paths
    assert all(layer.name.startswith("/" + "/".join(layer.path) + "/node_") for layer in network.layers)
    path = tmp_path / "scoped.onnx"
    path.write_bytes(data)
    full = runner.invoke(app, ["shape", "-f", str(path)])
    assert full.exit_code == 0, full.stderr
    assert "/1/1.1/node_" in full.stdout
    folded = runner.invoke(app, ["shape", "-f", str(path), "--depth", "1", "--json"])
    assert folded.exit_code == 0, folded.stderr
    assert runner.invoke(app, ["shape", "-f", str(path), "--depth", "2"]).exit_code == 0


@pytest.mark.needs_onnxruntime
def test_masks_built_with_scatter_nd_and_pow_are_constants():
    """Swin's attention masks are written with ScatterND, and scales with Pow: evaluated, as onnxruntime does."""
    nodes = [helper.make_node("ScatterND", ["zeros", "rows", "values"], ["mask"]),
             helper.make_node("Pow", ["mask", "two"], ["squared"]),
             helper.make_node("Add", ["x", "squared"], ["y"], name="masked")]
    data = _model(nodes, (4, 6), [("zeros", np.zeros((4, 6), np.float32)), ("rows", _ints(1, 3).reshape(2, 1)),
                                  ("values", np.full((2, 6), -3.0, np.float32)), ("two", np.float32(2.0))])
    analysis = _check(data, (4, 6))
    assert [r.name for r in analysis.layers] == ["masked"] and analysis.totals.params == 0
