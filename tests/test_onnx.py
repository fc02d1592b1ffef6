"""ONNX files in, without any framework: every node's output shape against onnxruntime, MACs
against FlopCounterMode of the exported module, parameters against the file's initializers, and
ONNX's own semantics (auto_pad, asymmetric pads, ceil_mode, count_include_pad, output_shape,
Resize, Pad and Clip inputs, Gemm's transposes, axes as inputs) on hand-built graphs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import analyse
from convcalc.cli import app
from convcalc.readers.onnx import from_onnx

from .torchvision_models import build

# Every test here builds ONNX graphs; those run through onnxruntime or exported from PyTorch say
# so too (needs_onnxruntime, needs_torch), and the others run without those packages.
pytestmark = pytest.mark.needs_onnx

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    pass
try:
    import onnxruntime as ort
except ImportError:
    pass
try:
    import torch
except ImportError:
    pass

runner = CliRunner()


def _ort_shapes(data: bytes, shape) -> dict:
    """Every node output's shape (batch dropped), by running the model with all of them as outputs."""
    model = onnx.load_model_from_string(data)
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in known:
                model.graph.output.append(helper.make_empty_tensor_value_info(name))
                known.add(name)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    values = session.run(None, feed)
    return {o.name: v.shape for o, v in zip(session.get_outputs(), values)}


def check_against_onnxruntime(data: bytes, shape, **options):
    """convcalc's shape for every layer named after a node equals onnxruntime's for that node's output."""
    network = from_onnx(data, **options)
    analysis = analyse(network)
    shapes = _ort_shapes(data, shape)
    nodes = {n.name: n for n in onnx.load_model_from_string(data).graph.node}
    compared = 0
    for report in analysis.layers:
        node = nodes.get(report.name) or nodes.get(report.name.rsplit("/", 1)[-1])  # a scoped name ends with its node
        if node is not None and node.output[0] in shapes:
            got = shapes[node.output[0]]
            assert (shape[0], *report.output_shape) == tuple(got), (report.name, report.output_shape, got)
            compared += 1
    assert compared, "no layer was compared"
    return analysis


def _model(nodes, input_shape, initializers=(), opset=17, output="y"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [helper.make_empty_tensor_value_info(output)],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


def _weights(*shape):
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("attrs", [
    dict(auto_pad="SAME_UPPER", strides=[2, 2]),
    dict(auto_pad="SAME_LOWER", strides=[2, 2]),
    dict(auto_pad="SAME_LOWER", strides=[1, 3]),  # (onnxruntime refuses SAME with dilation)
    dict(auto_pad="VALID", dilations=[2, 3]),
    dict(pads=[0, 1, 2, 0], strides=[2, 1]),  # asymmetric: a pad layer and the convolution
    dict(pads=[1, 1, 1, 1], group=2),
])
def test_conv_semantics(attrs):
    data = _model([helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", kernel_shape=[3, 3], **attrs)],
                  (1, 4, 11, 10), [("w", _weights(6, 4 // attrs.get("group", 1), 3, 3)), ("b", _weights(6))])
    analysis = check_against_onnxruntime(data, (1, 4, 11, 10))
    assert analysis.totals.params == 6 * (4 // attrs.get("group", 1)) * 9 + 6


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("op, attrs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[3, 3])),  # ONNX's default stride is 1, not the kernel
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1, ceil_mode=1)),
    # more padding than PyTorch allows: a pad layer first
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[2, 2, 2, 2], count_include_pad=1)),
])
def test_pooling_semantics(op, attrs):
    data = _model([helper.make_node(op, ["x"], ["y"], name="pool", **attrs)], (1, 2, 9, 8))
    analysis = check_against_onnxruntime(data, (1, 2, 9, 8))
    if op == "AveragePool":
        layer = analysis.network.layers[-1]
        assert layer.count_include_pad is bool(attrs.get("count_include_pad", 0))


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("attrs", [
    dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
    dict(strides=[2, 2], output_shape=[15, 16]),
    dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    dict(strides=[3, 2], pads=[0, 1, 2, 0]),
])
def test_conv_transpose_semantics(attrs):
    data = _model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", kernel_shape=[3, 3], **attrs)],
                  (1, 4, 7, 8), [("w", _weights(4, 5, 3, 3))])
    analysis = check_against_onnxruntime(data, (1, 4, 7, 8))
    assert analysis.totals.macs == 4 * 7 * 8 * 5 * 9  # per input element, as convcalc counts it


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("mode, coordinate, how", [
    ("nearest", "asymmetric", {"scales": [1, 1, 2.0, 2.0]}),
    ("nearest", "half_pixel", {"scales": [1, 1, 1.5, 0.5]}),
    ("linear", "half_pixel", {"sizes": [1, 6, 13, 7]}),
    ("linear", "align_corners", {"sizes": [1, 6, 13, 7]}),
    ("linear", "pytorch_half_pixel", {"scales": [1, 1, 2.0, 3.0]}),
    ("cubic", "half_pixel", {"scales": [1, 1, 2.0, 2.0]}),
])
def test_resize_semantics_and_receptive_fields(mode, coordinate, how):
    scales = np.array(how.get("scales", []), np.float32)
    sizes = np.array(how.get("sizes", []), np.int64)
    inputs = ["x", "", "scales"] + (["sizes"] if sizes.size else [])
    initializers = [("scales", scales)] + ([("sizes", sizes)] if sizes.size else [])
    data = _model([helper.make_node("Resize", inputs, ["y"], name="resize", mode=mode,
                                    coordinate_transformation_mode=coordinate)], (1, 6, 6, 5), initializers)
    analysis = check_against_onnxruntime(data, (1, 6, 6, 5))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    # the backend computes what onnxruntime computes
    import convcalc.functional as F

    x = np.random.default_rng(3).standard_normal((1, 6, 6, 5)).astype(np.float32)
    layer = analysis.network.layers[0]
    ours = F.onnx_resize(x, layer.sizes, layer.mode, layer.coordinate, layer.rounding, layer.scales)
    np.testing.assert_allclose(ours, session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    # which inputs each output reads, probed through onnxruntime: channel r has NaN at position r
    for axis, size in ((0, 6), (1, 5)):
        x = np.zeros((1, 6, 6, 5), np.float32)
        for r in range(size):
            index = [0, r, slice(None), slice(None)]
            index[2 + axis] = r
            x[tuple(index)] = np.nan
        y = session.run(None, {"x": x})[0][0]
        depends = np.isnan(y).any(axis=2 if axis == 0 else 1)[:size]  # [input position, output unit]
        for unit in range(depends.shape[1]):
            seen = np.flatnonzero(depends[:, unit])
            assert (seen.min(), seen.max()) == analysis.field_of(1, unit, axis), (axis, unit)


@pytest.mark.needs_onnxruntime
def test_pad_clip_gemm_and_reductions_with_inputs():
    nodes = [
        helper.make_node("Pad", ["x", "pads", "value"], ["p"], name="pad", mode="reflect"),
        helper.make_node("Clip", ["p", "low", "high"], ["c"], name="clip"),
        helper.make_node("ReduceMean", ["c", "axes"], ["m"], name="mean", keepdims=0),
        helper.make_node("Gemm", ["m", "w", "b"], ["y"], name="fc", transB=1),
    ]
    initializers = [("pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)), ("value", np.array(0, np.float32)),
                    ("low", np.array(0, np.float32)), ("high", np.array(6, np.float32)),
                    ("axes", np.array([2, 3], np.int64)), ("w", _weights(10, 3)), ("b", _weights(10))]
    data = _model(nodes, (1, 3, 6, 6), initializers, opset=18)
    analysis = check_against_onnxruntime(data, (1, 3, 6, 6))
    assert [r.type for r in analysis.layers] == ["ReflectionPad2d", "ReLU6", "Mean", "Linear"]
    assert analysis.totals.params == 40 and analysis.totals.macs == 30


@pytest.mark.needs_onnxruntime
def test_shape_plumbing_is_evaluated_not_read_as_layers():
    # ShuffleNet's channel shuffle, as exporters write it: Shape -> Gather -> Div -> Concat -> Reshape
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "rest"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="view"),
        helper.make_node("Transpose", ["r"], ["t"], name="swap", perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t", "back"], ["y"], name="merge"),
    ]
    initializers = [("zero", np.array(0, np.int64)), ("axes0", np.array([0], np.int64)),
                    ("rest", np.array([2, 4, 5, 5], np.int64)), ("back", np.array([0, -1, 5, 5], np.int64))]
    graph_input = (2, 8, 5, 5)
    data = _model(nodes, graph_input, initializers)
    analysis = check_against_onnxruntime(data, graph_input)
    assert [r.name for r in analysis.layers] == ["view", "swap", "merge"]


def test_a_symbolic_batch_takes_batch_and_other_symbols_need_input():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", 8])],
                              [helper.make_empty_tensor_value_info("y")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(Exception, match=r"axis 2 is symbolic \(H\)"):
        from_onnx(data)
    network = from_onnx(data, batch=4, input_shape=(3, 16, 8))
    assert network.batch == 4 and network.input_shape == (3, 16, 8)


EXPORTED = ["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5", "convnext_tiny", "lraspp_mobilenet_v3_large",
            "densenet121", "inception_v3", "squeezenet1_0"]


def _export(model, shape, training=False) -> bytes:
    import io

    buffer = io.BytesIO()
    mode = torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL
    model.train(training)
    torch.onnx.export(model, (torch.zeros(1, *shape),), buffer, dynamo=False, opset_version=17, training=mode,
                      do_constant_folding=not training)
    return buffer.getvalue()


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.slow
@pytest.mark.parametrize("name", EXPORTED)
def test_exported_torchvision_models_against_onnxruntime_and_pytorch(name):
    from torch.utils.flop_counter import FlopCounterMode

    shape = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    model = build(name)
    data = _export(model, shape)
    analysis = check_against_onnxruntime(data, (1, *shape))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, *shape))
    assert analysis.totals.macs == counter.get_total_flops() // 2
    file = onnx.load_model_from_string(data)
    used = {name for node in file.graph.node for name in node.input}
    float_initializers = {t.name: int(np.prod(t.dims)) for t in file.graph.initializer
                          if t.data_type == TensorProto.FLOAT and t.name in used}
    counted = {name for r in analysis.network.layers for _, name in r.weights}
    assert analysis.totals.params == sum(float_initializers[n] for n in counted)
    assert counted <= set(float_initializers)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5"])
def test_the_dynamo_exporter_files_read_too(name):
    from torch.utils.flop_counter import FlopCounterMode

    model = build(name)
    data = torch.onnx.export(model, (torch.zeros(1, 3, 224, 224),), dynamo=True, verbose=False).model_proto \
        .SerializeToString()
    analysis = check_against_onnxruntime(data, (1, 3, 224, 224))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224))
    assert analysis.totals.macs == counter.get_total_flops() // 2


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
def test_training_mode_export_keeps_batch_norm_and_its_statistics_are_not_parameters():
    model = build("resnet18")
    data = _export(model, (3, 64, 64), training=True)
    analysis = check_against_onnxruntime(data, (1, 3, 64, 64))
    assert any(r.type == "BatchNorm2d" for r in analysis.layers)
    # unfolded, the parameters are the module's own: running means and variances are buffers
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())


@pytest.mark.needs_torch
def test_convert_round_trips_onnx_presets_and_pytorch_models(tmp_path):
    from convcalc.presets import preset_names

    sources = [["--preset", name] for name in preset_names()]
    onnx_file = tmp_path / "model.bin"  # recognised by content, whatever the extension
    onnx_file.write_bytes(_export(build("mobilenet_v3_small"), (3, 96, 96)))
    sources.append(["-f", str(onnx_file)])
    sources.append(["--model", "torch.nn:Conv2d", "--model-arg", "in_channels=3", "--model-arg", "out_channels=4",
                    "--model-arg", "kernel_size=3", "3x16x16"])
    build("shufflenet_v2_x0_5")  # makes torchvision importable (see torchvision_models)
    sources.append(["--model", "torchvision.models:shufflenet_v2_x0_5", "3x64x64"])
    sources.append(["--model", "torchvision.models:convnext_tiny", "3x64x64"])
    for source in sources:
        direct = runner.invoke(app, ["shape", *source, "--json"])
        assert direct.exit_code == 0, (source, direct.stderr)
        document = tmp_path / "net.yaml"
        converted = runner.invoke(app, ["convert", *source, "-o", str(document)])
        assert converted.exit_code == 0, converted.stderr
        again = runner.invoke(app, ["shape", "-f", str(document), "--json"])
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout) == json.loads(direct.stdout), source


def test_without_the_onnx_package_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    path = tmp_path / "m.onnx"
    path.write_bytes(_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], (1, 3, 4, 4)))
    monkeypatch.setattr(builtins, "__import__", no_onnx)
    result = runner.invoke(app, ["shape", "-f", str(path)])
    assert result.exit_code == 2 and 'pip install "convcalc[onnx]"' in result.stderr


def test_constants_built_from_the_input_shape_are_bounded_before_allocation():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["c"]),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [helper.make_empty_tensor_value_info("y")])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert from_onnx(data, input_shape=(3, 4, 4)).layers[-1].name == "add"
    with pytest.raises(Exception, match="would make a constant of 30,000,000,000 elements"):
        from_onnx(data, input_shape=(3, 100000, 100000))  # 1 x 3 x 10^5 x 10^5


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("gather", ["Gather", "GatherND"])
@pytest.mark.parametrize("heads, tokens, table", [(3, 4, 7), (2, 9, 25)])
def test_a_bias_gathered_from_a_table_counts_the_table(heads, tokens, table, gather):
    """Swin's relative-position bias as the TorchScript exporter writes it for swin3d (Gather) and
    torch.export does (GatherND): a learned table gathered by a fixed index, reshaped, permuted and added
    to the attention scores. The learned values are the table's (the file's initializer), whatever size
    the gathered bias has."""
    index = np.random.default_rng(2).integers(0, table, tokens * tokens).astype(np.int64)
    if gather == "GatherND":
        index = index.reshape(-1, 1)
    nodes = [
        helper.make_node(gather, ["table", "index"], ["g"], **({"axis": 0} if gather == "Gather" else {})),
        helper.make_node("Reshape", ["g", "square"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["t", "zero"], ["bias"]),
        helper.make_node("Add", ["x", "bias"], ["y"], name="add_bias"),
    ]
    initializers = [("table", _weights(table, heads)), ("index", index),
                    ("square", np.array([tokens, tokens, heads], np.int64)), ("zero", np.array([0], np.int64))]
    data = _model(nodes, (2, heads, tokens, tokens), initializers)
    analysis = check_against_onnxruntime(data, (2, heads, tokens, tokens))
    assert analysis.totals.params == table * heads  # the initializer the add reads, through the gather
    assert analysis.layers[-1].params == table * heads


@pytest.mark.needs_onnxruntime
def test_a_learned_tensor_reshaped_before_it_is_added_is_still_learned():
    nodes = [helper.make_node("Reshape", ["w", "shape"], ["r"]),
             helper.make_node("Add", ["x", "r"], ["y"], name="add")]
    data = _model(nodes, (1, 4, 3, 3), [("w", _weights(36)), ("shape", np.array([1, 4, 3, 3], np.int64))])
    analysis = check_against_onnxruntime(data, (1, 4, 3, 3))
    assert analysis.totals.params == 36


@pytest.mark.needs_onnxruntime
def test_a_class_token_expanded_then_unsqueezed_is_the_concat_s_learned_part():
    """MViT's class token: a vector expanded over the batch, then given its token axis
    (class_token.expand(B, -1).unsqueeze(1)), joined before the tokens."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Concat", ["n1", "one"], ["target"], axis=0),
        helper.make_node("Expand", ["token", "target"], ["e"]),
        helper.make_node("Unsqueeze", ["e", "axes1"], ["t"]),
        helper.make_node("Concat", ["t", "x"], ["y"], name="join", axis=1),
    ]
    initializers = [("zero", np.array(0, np.int64)), ("axes0", np.array([0], np.int64)),
                    ("one", np.array([1], np.int64)), ("axes1", np.array([1], np.int64)),
                    ("token", _weights(8))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5, 8])],
                              [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    analysis = check_against_onnxruntime(data, (3, 5, 8))
    assert analysis.layers[-1].output_shape == (6, 8)
    assert analysis.totals.params == 8


def _as_strided(perm=None):
    """torch.export's as_strided in ConvNeXt's head, as its exporter writes it: a (N, 4, 1, 1) mean flattened
    with its batch, and a Gather of flat positions N x 4 x 1 x 1 built from the batch size (``perm`` reorders
    a sample's positions)."""
    channel = np.arange(4, dtype=np.int64)[perm if perm is not None else slice(None)].reshape(1, 4, 1, 1)
    nodes = [
        helper.make_node("ReduceMean", ["x", "hw"], ["m"], keepdims=1),
        helper.make_node("Reshape", ["m", "flat"], ["f"]),
        helper.make_node("Shape", ["x"], ["s"], start=0, end=1),
        helper.make_node("Squeeze", ["s", "zero"], ["n"]),
        helper.make_node("Range", ["start", "n", "step"], ["samples"]),
        helper.make_node("Mul", ["samples", "per_sample"], ["first"]),
        helper.make_node("Unsqueeze", ["first", "axes123"], ["first4"]),
        helper.make_node("Add", ["first4", "channel"], ["index"]),
        helper.make_node("Gather", ["f", "index"], ["g"], name="node_as_strided", axis=0),
        helper.make_node("Transpose", ["g"], ["y"], name="permute", perm=[0, 2, 3, 1]),
    ]
    initializers = [("hw", np.array([-1, -2], np.int64)), ("flat", np.array([-1], np.int64)),
                    ("zero", np.array([0], np.int64)), ("start", np.array(0, np.int64)),
                    ("step", np.array(1, np.int64)), ("per_sample", np.array(4, np.int64)),
                    ("axes123", np.array([1, 2, 3], np.int64)), ("channel", channel)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 5, 5])],
                              [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("batch", [1, 3])
def test_torch_export_s_as_strided_that_views_each_sample_is_a_reshape(batch):
    analysis = check_against_onnxruntime(_as_strided(), (batch, 4, 5, 5), batch=batch)
    assert analysis.layers[-1].output_shape == (1, 1, 4)
    assert [r.type for r in analysis.layers][-2:] == ["Reshape", "Permute"]


def test_torch_export_s_as_strided_that_reorders_a_sample_is_refused_naming_the_node():
    from convcalc import ConvcalcError

    with pytest.raises(ConvcalcError, match="node_as_strided.*reorder a sample's values"):
        from_onnx(_as_strided(perm=[1, 0, 2, 3]), batch=2)


@pytest.mark.needs_torch
@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "torch.export"])
@pytest.mark.parametrize("shift", [0, 2])
def test_a_swin_v2_block_reads_its_position_bias_mlp_on_a_fixed_table_at_batch_1(shift, dynamo):
    """torchvision's Swin V2 block from both exporters. Its position-bias MLP multiplies a fixed table of
    relative coordinates (a buffer) by learned weights, which starts layers computed without the input (a
    Constant layer, the products, the bias gathered by a fixed index: IndexSelect) up to where the bias joins
    the attention scores; F.normalize is ReduceL2, a Clip and an Expand only the division reads; the logit
    scale is clamped and exponentiated on constants. torch.export stores the MLP's first product with the
    table as an initializer and adds its bias in the graph: that initializer is a learned Constant (its
    values the file's parameters, the layer's weight absent from the file), and the product is no work the
    file does. At batch 1 that is exact against PyTorch (its parameters, FlopCounterMode / 2, less the
    stored product's where the file stores it) and every node's shape against onnxruntime; another batch is
    refused, since PyTorch runs those layers once per pass and convcalc counts per sample."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from convcalc import ConvcalcError

    from .torch_nets import onnx_bytes
    from .torchvision_models import stored_products, torchvision

    block = torchvision().models.swin_transformer.SwinTransformerBlockV2(32, 2, [4, 4], [shift, shift]).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    data = onnx_bytes(block, (8, 8, 32), dynamo)
    analysis = analyse(from_onnx(data))
    # every node's shape against onnxruntime's: at batch 1 a layer's per-sample shape is the whole tensor's
    # without the batch's axis, or the whole where the batch of 1 has no axis of its own (the layers computed
    # without the input; windows merged with the batch)
    shapes = _ort_shapes(data, (1, 8, 8, 32))
    nodes = {n.name: n for n in onnx.load_model_from_string(data).graph.node}
    compared = 0
    for report in analysis.layers:
        node = nodes.get(report.name) or nodes.get(report.name.rsplit("/", 1)[-1])  # a scoped name ends with its node
        if node is not None and node.output[0] in shapes:
            assert shapes[node.output[0]] in ((1, *report.output_shape), report.output_shape), report.name
            compared += 1
    assert compared > 40
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        block(torch.randn(1, 8, 8, 32, requires_grad=True))
    stored = stored_products(block, onnx.load_model_from_string(data))
    assert (stored > 0) == dynamo
    first = block.attn.cpb_mlp[0]  # stored as its product with the table (1 x 7 x 7 x 512) in its weight's stead
    held = sum(p.numel() for p in block.parameters()) + dynamo * (7 * 7 * first.out_features - first.weight.numel())
    assert [r.name for r in analysis.layers if not r.counted] == []
    assert analysis.totals.params == held
    assert analysis.totals.macs == counter.get_total_flops() // 2 - stored
    assert {"Constant", "IndexSelect", "VectorNorm"} <= {r.type for r in analysis.layers}
    with pytest.raises(ConvcalcError, match="at batch 1 only"):
        from_onnx(data, batch=2)


@pytest.mark.needs_onnxruntime
def test_a_stored_product_plus_its_bias_that_layers_compute_from_is_a_learned_constant():
    """An Add of two initializers that only layers can go on from (a Relu, convcalc evaluating no Relu on
    constants) is a stored product and its bias, as torch.export writes a Linear on a fixed table: the product
    a learned Constant (its values parameters), the Add, Relu and MatMul layers computed without the input,
    then added to the input's activations. The oracle is a hand count: the initializers' sizes, the MatMul's
    5 x 7 x 3 products; shapes against onnxruntime. The same sum read only by arithmetic on the activations
    (a position embedding of two tables) stays a constant whose tables are the Add's parameters."""
    from convcalc import ConvcalcError

    nodes = [helper.make_node("Add", ["product", "bias"], ["sum"], name="bias_add"),
             helper.make_node("Relu", ["sum"], ["relu"], name="relu"),
             helper.make_node("MatMul", ["relu", "w2"], ["table"], name="second"),
             helper.make_node("Add", ["x", "table"], ["y"], name="joined")]
    inits = [("product", _weights(1, 5, 7)), ("bias", _weights(7)), ("w2", _weights(7, 3))]
    data = _model(nodes, ("batch", 4, 5, 3), inits)
    analysis = analyse(from_onnx(data))
    shapes = _ort_shapes(data, (1, 4, 5, 3))
    outputs = {n.name: n.output[0] for n in onnx.load_model_from_string(data).graph.node}
    for report in analysis.layers:  # a layer computed without the input holds the whole tensor (batch 1)
        if report.name in outputs:
            assert shapes[outputs[report.name]] in ((1, *report.output_shape), report.output_shape), report.name
    types = {r.name: r.type for r in analysis.layers}
    assert types["bias_add.product"] == "Constant" and types["relu"] == "ReLU"
    assert analysis.totals.params == 5 * 7 + 7 + 7 * 3
    assert analysis.totals.macs == 5 * 7 * 3
    with pytest.raises(ConvcalcError, match="stored product.*at batch 1 only"):
        from_onnx(data, batch=2)
    summed = _model([helper.make_node("Add", ["a", "b"], ["sum"], name="tables"),
                     helper.make_node("Add", ["x", "sum"], ["y"], name="joined")],
                    (1, 4, 5, 3), [("a", _weights(5, 1)), ("b", _weights(1, 3))])
    analysis = check_against_onnxruntime(summed, (1, 4, 5, 3), batch=1)
    assert [r.type for r in analysis.layers] == ["Add"] and analysis.totals.params == 5 + 3


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("op", ["PRelu", "LayerNormalization"])
def test_a_sum_of_initializers_a_layer_on_the_activations_reads_is_no_stored_product(op):
    """A sum of two initializers that a layer on the activations reads as a parameter (PRelu's slope,
    LayerNormalization's scale) stays a constant: read at any batch, every shape onnxruntime's."""
    extra = {"axis": -1} if op == "LayerNormalization" else {}
    shape = (4, 1, 1) if op == "PRelu" else (3,)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"], name="sum"),
             helper.make_node(op, ["x", "s"], ["y"], name="layer", **extra)]
    data = _model(nodes, ("batch", 4, 5, 3), [("a", _weights(*shape)), ("b", _weights(*shape))])
    analysis = check_against_onnxruntime(data, (2, 4, 5, 3), batch=2)
    assert len(analysis.layers) == 1


@pytest.mark.needs_onnxruntime
def test_a_learned_constant_is_one_parameter_however_often_it_is_read():
    """The stored product also added to the activations as a weight: its values counted once (35, with the
    bias's 7: the file's 42 float values), by its initializer's name; and, a parameter, it takes no
    activation storage: while it is made, the input's bytes alone are live (hand counts)."""
    nodes = [helper.make_node("Add", ["P", "b"], ["s"], name="bias_add"),
             helper.make_node("Relu", ["s"], ["r"], name="relu"),
             helper.make_node("Add", ["x", "r"], ["t"], name="first"),
             helper.make_node("Add", ["t", "P"], ["y"], name="second")]
    data = _model(nodes, ("batch", 4, 5, 7), [("P", _weights(1, 5, 7)), ("b", _weights(7))])
    analysis = analyse(from_onnx(data))
    assert analysis.totals.params == 5 * 7 + 7
    constant = next(r for r in analysis.layers if r.type == "Constant")
    assert constant.params == 35
    from convcalc.engine.memory import inference_memory

    curve = inference_memory(analysis).curve  # float32: the input (140 values), then each new tensor
    assert curve[0] == 140 * 4


@pytest.mark.needs_onnxruntime
def test_a_fixed_table_read_directly_and_expanded_is_two_constants():
    """One fixed table multiplied by a weight as it is and, expanded, by another: two tensor values, two
    Constant layers, each product as large as onnxruntime's (MACs by hand: 5 x 3 x 4 and 2 x 5 x 3 x 4)."""
    nodes = [helper.make_node("MatMul", ["T", "W1"], ["m1"], name="first"),
             helper.make_node("Expand", ["T", "size"], ["E"], name="expand"),
             helper.make_node("MatMul", ["E", "W2"], ["m2"], name="second"),
             helper.make_node("Unsqueeze", ["m2", "axis"], ["u2"], name="unsqueeze"),
             helper.make_node("Add", ["x", "u2"], ["t"], name="joined"),
             helper.make_node("Unsqueeze", ["m1", "axes"], ["u1"], name="unsqueeze_first"),
             helper.make_node("Add", ["t", "u1"], ["y"], name="both")]
    data = _model(nodes, (1, 2, 5, 4), [("T", _weights(5, 3)), ("W1", _weights(3, 4)), ("W2", _weights(3, 4)),
                                        ("size", np.array([2, 5, 3], np.int64)), ("axis", np.array([0], np.int64)),
                                        ("axes", np.array([0, 1], np.int64))])
    analysis = analyse(from_onnx(data))
    shapes = _ort_shapes(data, (1, 2, 5, 4))
    outputs = {n.name: n.output[0] for n in onnx.load_model_from_string(data).graph.node}
    for report in analysis.layers:
        if report.name in outputs:
            assert shapes[outputs[report.name]] in ((1, *report.output_shape), report.output_shape), report.name
    assert [r.type for r in analysis.layers].count("Constant") == 2
    assert analysis.totals.macs == 5 * 3 * 4 + 2 * 5 * 3 * 4


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("axes, keepdims", [([-1], 1), ([1], 0), ([2, 3], 1)])
def test_reduce_l2_is_a_vector_norm(axes, keepdims):
    data = _model([helper.make_node("ReduceL2", ["x"], ["y"], name="norm", axes=axes, keepdims=keepdims)],
                  (2, 3, 5, 4))
    analysis = check_against_onnxruntime(data, (2, 3, 5, 4))
    assert analysis.layers[-1].type == "VectorNorm"
