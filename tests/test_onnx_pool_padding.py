"""ONNX pools with more padding than PyTorch's pools take (beyond half the kernel, or uneven): read as an
explicit pad layer and a PyTorch pool, with onnxruntime's shapes, or refused where that would not be exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc import analyse
from convcalc.cli import app
from convcalc.engine.errors import SpecError
from convcalc.readers.onnx import from_onnx

pytestmark = pytest.mark.needs_onnx

try:
    import onnx
    from onnx import TensorProto, helper
except ImportError:
    pass
try:
    import onnxruntime as ort
except ImportError:
    pass

runner = CliRunner()


def _model(op: str, input_shape, **attrs) -> bytes:
    node = helper.make_node(op, ["x"], ["y"], name="pool", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                              [helper.make_empty_tensor_value_info("y")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _ort_shape(data: bytes, shape) -> tuple:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return tuple(session.run(None, {"x": x})[0].shape)


CASES = [
    # onnxruntime wants each pad smaller than the kernel
    ("MaxPool", (1, 2, 7), dict(kernel_shape=[3], pads=[2, 2])),
    ("MaxPool", (1, 2, 7), dict(kernel_shape=[4], strides=[2], pads=[0, 3])),
    ("MaxPool", (1, 2, 9, 8), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[2, 2, 2, 2])),
    ("MaxPool", (1, 2, 9, 8), dict(kernel_shape=[4, 3], pads=[1, 0, 3, 2])),
    ("MaxPool", (1, 2, 9, 8), dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2])),
    ("AveragePool", (1, 2, 7), dict(kernel_shape=[3], pads=[2, 2], count_include_pad=1)),
    ("AveragePool", (1, 2, 7), dict(kernel_shape=[3], strides=[2], pads=[0, 2], count_include_pad=1)),
    ("AveragePool", (1, 2, 9, 8), dict(kernel_shape=[4, 3], strides=[2, 2], pads=[3, 2, 3, 2], count_include_pad=1)),
    ("AveragePool", (1, 2, 9, 8), dict(kernel_shape=[3, 3], pads=[0, 1, 2, 1], count_include_pad=1)),
    # avg_pool3d wants the unpadded input to hold the kernel: the padding goes first
    ("AveragePool", (1, 1, 2, 4, 4), dict(kernel_shape=[3, 3, 3], pads=[1] * 6, count_include_pad=1)),
]


@pytest.mark.needs_onnxruntime
@pytest.mark.parametrize("op, shape, attrs", CASES)
def test_pads_beyond_pytorch_become_a_pad_layer_with_onnxruntime_shapes(op, shape, attrs):
    data = _model(op, shape, **attrs)
    analysis = analyse(from_onnx(data))
    pad, pool = analysis.network.layers[-2:]
    assert type(pad).__name__ == ("Pad" if op == "MaxPool" else "ZeroPad")
    assert (shape[0], *analysis.layers[-1].output_shape) == _ort_shape(data, shape)
    kernel = attrs["kernel_shape"]
    padding = pool.padding if isinstance(pool.padding, tuple) else (pool.padding,) * len(kernel)
    assert all(2 * p <= k for p, k in zip(padding, kernel))  # PyTorch's rule holds


@pytest.mark.parametrize("op, attrs, why", [
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[2, 2, 2, 2]), "count_include_pad=0"),
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[0, 1, 1, 0]), "count_include_pad=0"),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[2, 2, 2, 2], ceil_mode=1), "ceil_mode=1"),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1], ceil_mode=1, count_include_pad=1),
     "ceil_mode=1"),
])
def test_what_a_pad_layer_cannot_make_exact_is_refused(op, attrs, why):
    with pytest.raises(SpecError, match=f"node 'pool' \\({op}\\): {why}") as caught:
        from_onnx(_model(op, (1, 2, 9, 8), **attrs))
    assert caught.value.field == "file"
    assert "\n" not in caught.value.message


def test_pads_within_pytorch_rules_stay_on_the_pool():
    network = from_onnx(_model("MaxPool", (1, 2, 9, 8), kernel_shape=[3, 3], pads=[1, 1, 1, 1], ceil_mode=1))
    assert [type(layer).__name__ for layer in network.layers] == ["MaxPool"]


def test_shape_then_convert_round_trips(tmp_path):
    for op, shape, attrs in CASES:
        model = tmp_path / "model.onnx"
        model.write_bytes(_model(op, shape, **attrs))
        direct = runner.invoke(app, ["shape", "-f", str(model), "--json"])
        assert direct.exit_code == 0, direct.stderr
        document = tmp_path / "net.yaml"
        converted = runner.invoke(app, ["convert", "-f", str(model), "-o", str(document)])
        assert converted.exit_code == 0, converted.stderr
        again = runner.invoke(app, ["shape", "-f", str(document), "--json"])
        assert again.exit_code == 0, again.stderr
        assert json.loads(again.stdout) == json.loads(direct.stdout), (op, attrs)
