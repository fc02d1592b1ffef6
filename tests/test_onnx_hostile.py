"""Every input is untrusted: ONNX files that are malformed, contradict themselves or write numbers
no tensor could have are refused through the command line with one error line naming the node and
the field (exit 2), never a traceback, and in time bounded by the file's size, not by its numbers.

Each case builds one such file with onnx.helper, from a small valid model (``_model``)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.readers.onnx import from_onnx

pytestmark = pytest.mark.needs_onnx  # every test here writes an ONNX model

try:
    from onnx import AttributeProto, TensorProto, helper, numpy_helper
except ImportError:
    pass

runner = CliRunner()
BIG = 2**63 - 1


def _model(nodes, initializers=(), *, shape=(1, 3, 8, 8), opset=17, elem=None, extra_inputs=(), outputs=("y",),
           value_info=(), domains=()) -> bytes:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT if elem is None else elem, list(shape))]
    inputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, [4]) for name in extra_inputs]
    tensors = [t if isinstance(t, TensorProto) else numpy_helper.from_array(np.asarray(t[1]), t[0])
               for t in initializers]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_empty_tensor_value_info(o) for o in outputs],
                              tensors, value_info=list(value_info))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def _w(*shape):
    return np.ones(shape, np.float32)


def _node(op, inputs, outputs=("y",), name=None, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=name or op.lower(), **attrs)


def _conv(**attrs):
    return _model([_node("Conv", ["x", "w"], **attrs)], [("w", _w(4, 3, 3, 3))])


def _raw(name, data_type, dims, raw):
    tensor = TensorProto(name=name, data_type=data_type, dims=list(dims))
    tensor.raw_data = raw
    return tensor


def _typed_attribute(name, kind):
    """An attribute of a given (wrong) type: a string, a float, a graph, or no type at all."""
    if kind == "graph":
        return helper.make_attribute(name, helper.make_graph([], "sub", [], []))
    if kind == "untyped":
        attribute = AttributeProto(name=name)
        attribute.ints.extend([2, 2])
        return attribute
    return helper.make_attribute(name, {"string": "2", "float": 2.0}[kind])


def _with_attribute(node, attribute):
    node.attribute.append(attribute)
    return node


def _folding(op, inputs, initializers, **attrs):
    """A constant made by folding ``op``, added to x."""
    nodes = [_node(op, inputs, ["c"], name="fold", **attrs), _node("Add", ["x", "c"], name="add")]
    return _model(nodes, initializers)


N = 4000  # (N, 1) with (N,) broadcasts to 16,000,000 elements from 8,000 in the file
CASES = {
    # a node without an input it needs, an attribute the operator requires
    "conv without its weight": (lambda: _model([_node("Conv", ["x"])]), "'conv' (Conv): has no input 1 (weight)"),
    "maxpool without kernel_shape": (lambda: _model([_node("MaxPool", ["x"])]), "no 'kernel_shape' attribute"),
    "concat without axis": (lambda: _model([_node("Concat", ["x", "x"])]), "no 'axis' attribute"),
    "depthtospace without blocksize": (lambda: _model([_node("DepthToSpace", ["x"])], shape=(1, 4, 2, 2)),
                                       "no 'blocksize' attribute"),
    "pad without pads (opset 2)": (lambda: _model([_node("Pad", ["x"])], opset=2), "neither a 'pads' attribute"),
    "unsqueeze without axes (opset 11)": (lambda: _model([_node("Unsqueeze", ["x"])], opset=11),
                                          "neither an 'axes' attribute"),
    "gemm without weight": (lambda: _model([_node("Flatten", ["x"], ["f"]), _node("Gemm", ["f"])]),
                            "'gemm' (Gemm): has no input 1"),
    "prelu without slope": (lambda: _model([_node("PRelu", ["x"])]), "'prelu' (PRelu): has no input 1 (slope)"),
    "slice without ends": (lambda: _model([_node("Slice", ["x", "s"])], [("s", np.array([0], np.int64))]),
                           "has no input 2 (ends)"),
    # attributes of the wrong type, or not text
    "strides as a string": (lambda: _model([_with_attribute(_node("Conv", ["x", "w"]), _typed_attribute(
        "strides", "string"))], [("w", _w(4, 3, 3, 3))]), "attribute 'strides' is a string, not a list of integers"),
    "strides as a float": (lambda: _model([_with_attribute(_node("Conv", ["x", "w"]), _typed_attribute(
        "strides", "float"))], [("w", _w(4, 3, 3, 3))]), "attribute 'strides' is a float"),
    "strides as a graph": (lambda: _model([_with_attribute(_node("Conv", ["x", "w"]), _typed_attribute(
        "strides", "graph"))], [("w", _w(4, 3, 3, 3))]), "attribute 'strides' is a graph"),
    "strides untyped": (lambda: _model([_with_attribute(_node("Conv", ["x", "w"]), _typed_attribute(
        "strides", "untyped"))], [("w", _w(4, 3, 3, 3))]), "attribute 'strides' is untyped"),
    "an attribute twice": (lambda: _model([_with_attribute(_node("Softmax", ["x"], axis=1), helper.make_attribute(
        "axis", 2))]), "has the attribute 'axis' twice"),
    "invalid utf-8 in auto_pad": (lambda: _conv(auto_pad=b"SAME\xff\xfe"), "attribute 'auto_pad' is not UTF-8"),
    "an unknown auto_pad": (lambda: _conv(auto_pad="SOMETIMES"), "attribute 'auto_pad' is 'SOMETIMES'"),
    "stride 0 with auto_pad same": (lambda: _conv(auto_pad="SAME_UPPER", strides=[0, 0]),
                                    "attribute 'strides' holds 0, less than 1"),
    "strides for the wrong rank": (lambda: _conv(strides=[2]), "attribute 'strides' has 1 values"),
    "kernel 0": (lambda: _model([_node("MaxPool", ["x"], kernel_shape=[0, 0])]), "'kernel_shape' holds 0"),
    "group 0": (lambda: _conv(group=0), "attribute 'group' holds 0"),
    "softmax axis past 2^62": (lambda: _model([_node("Softmax", ["x"], axis=BIG)]), "out of range"),
    # constants of the wrong kind or value
    "clip bounds as vectors": (lambda: _model([_node("Clip", ["x", "lo", "hi"])], [
        ("lo", np.zeros(2, np.float32)), ("hi", np.ones(2, np.float32))]), "input 1 (min) holds 2 values, not one"),
    "clip bounds as strings": (lambda: _model([_node("Clip", ["x", "lo"])], [
        ("lo", np.array([b"zero"], dtype=object))]), "input 1 (min) holds object values, not numbers"),
    "clip to -inf": (lambda: _model([_node("Clip", ["x", "lo"])], [("lo", np.array(-np.inf, np.float32))]),
                     "holds -inf, which is not a finite number"),
    "clip to inf": (lambda: _model([_node("Clip", ["x", "", "hi"])], [("hi", np.array(np.inf, np.float32))]),
                    "holds inf, which is not a finite number"),
    "leakyrelu alpha nan": (lambda: _model([_node("LeakyRelu", ["x"], alpha=float("nan"))]),
                            "attribute 'alpha' holds nan"),
    "reshape to inf": (lambda: _model([_node("Reshape", ["x", "s"])], [("s", np.array([1, np.inf], np.float32))]),
                       "input 1 (shape) holds [ 1. inf], which are not whole numbers"),
    "reshape to strings": (lambda: _model([_node("Reshape", ["x", "s"])], [("s", np.array([b"1"], dtype=object))]),
                           "input 1 (shape) holds object values"),
    "resize scale inf": (lambda: _model([_node("Resize", ["x", "", "s"])], [
        ("s", np.array([1, 1, np.inf, 2], np.float32))]), "input 2 (scales) holds inf"),
    "resize scale nan": (lambda: _model([_node("Resize", ["x", "", "s"])], [
        ("s", np.array([1, 1, np.nan, 2], np.float32))]), "input 2 (scales) holds nan"),
    "resize scale 1e30": (lambda: _model([_node("Resize", ["x", "", "s"])], [
        ("s", np.array([1, 1, 1e30, 2], np.float32))]), "out of range"),
    "resize scale 0": (lambda: _model([_node("Resize", ["x", "", "s"])], [
        ("s", np.array([1, 1, 0, 2], np.float32))]), "does not scale"),
    "pad of 2^63-1": (lambda: _model([_node("Pad", ["x", "p"])], [("p", np.array([0, 0, 0, BIG, 0, 0, 0, 0]))]),
                      "'pad' (Pad): padding=9223372036854775807 is out of range"),
    # nodes and outputs
    "a node with no outputs": (lambda: _model([_node("Relu", ["x"], ["y"]), _node("Relu", ["y"], [], "dead")]),
                               "'dead' (Relu): has no output"),
    "a constant with no outputs": (lambda: _model([helper.make_node("Constant", [], [], value_int=1),
                                                   _node("Relu", ["x"])]), "node 0 (Constant): has no output"),
    "an initializer's name as a node output": (lambda: _model([_node("Relu", ["x"], ["w"]), _node("Relu", ["w"])],
                                                              [("w", _w(2))]), "'relu' (Relu): writes 'w'"),
    "an output written twice": (lambda: _model([_node("Relu", ["x"], ["y"], "a"), _node("Relu", ["x"], ["y"], "b")]),
                                "'b' (Relu): writes 'y'"),
    # initializers
    "an initializer declared as a graph input but absent": (
        lambda: _model([_node("Conv", ["x", "w"])], extra_inputs=["w"]), "the graph has 2 inputs ('x', 'w')"),
    "raw data of the wrong size": (lambda: _model([_node("Conv", ["x", "w"])], [
        _raw("w", TensorProto.FLOAT, (4, 3, 3, 3), b"\0" * 10)]), "initializer 'w' stores 10 bytes"),
    "raw data for huge sizes": (lambda: _model([_node("Conv", ["x", "w"])], [
        _raw("w", TensorProto.FLOAT, (2**40, 2**20), b"\0" * 16)]), "initializer 'w' stores 16 bytes"),
    "typed data of the wrong count": (lambda: _model([_node("Conv", ["x", "w"])], [
        TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3], float_data=[1.0, 2.0])]),
        "initializer 'w' stores 2 values"),
    "an unknown element type": (lambda: _model([_node("Conv", ["x", "w"])], [
        _raw("w", 99, (4,), b"\0" * 16)]), "initializer 'w' has the unknown element type 99"),
    "a negative size": (lambda: _model([_node("Conv", ["x", "w"])], [
        _raw("w", TensorProto.FLOAT, (-4, 3), b"")]), "initializer 'w' has the negative size -4"),
    "an initializer twice": (lambda: _model([_node("Relu", ["x"])], [("w", _w(2)), ("w", _w(2))]),
                             "initializer 'w' is defined twice"),
    "a constant's tensor of the wrong size": (lambda: _model([helper.make_node("Constant", [], ["c"], value=_raw(
        "", TensorProto.INT64, (2,), b"\0" * 3)), _node("Reshape", ["x", "c"])]), "attribute 'value' stores 3 bytes"),
    # files that contradict themselves
    "kernel_shape disagreeing with the weight": (lambda: _conv(kernel_shape=[5, 5]),
                                                 "'kernel_shape' 5x5 disagrees with the weight's kernel 3x3"),
    "string weights": (lambda: _model([_node("Conv", ["x", "w"])], [("w", np.full((4, 3, 3, 3), b"a", object))]),
                       "input 1 (weight) holds object values, which are not weights"),
    "string constant in arithmetic": (lambda: _model([_node("Add", ["x", "c"])], [
        ("c", np.full((3, 1, 1), b"a", object))]), "holds object values, not numbers"),
    "a string graph input": (lambda: _model([_node("Relu", ["x"])], elem=TensorProto.STRING),
                             "the graph input 'x' holds STRING elements"),
    "an integer graph input": (lambda: _model([_node("Relu", ["x"])], elem=TensorProto.INT64),
                               "the graph input 'x' holds INT64 elements"),
    "a gemm weight of one axis": (lambda: _model([_node("Flatten", ["x"], ["f"]), _node("Gemm", ["f", "w"])], [
        ("w", _w(192))]), "input 1 (weight) has 1 axes"),
    "a split into sizes that do not add up": (lambda: _model([_node("Split", ["x"], ["a", "b"], axis=1, split=[1, 1]),
                                                              _node("Add", ["a", "b"])]), "splits an axis of 3"),
    # numbers no tensor could have
    "a graph input of 2^63-1": (lambda: _model([_node("Relu", ["x"])], shape=(1, 3, BIG, 8)),
                                "the size 9223372036854775807 on axis 2"),
    "a graph input of 0 channels": (lambda: _model([_node("Relu", ["x"])], shape=(1, 0, 8, 8)), "the size 0 on axis 1"),
    "a graph input of 100 axes": (lambda: _model([_node("Relu", ["x"])], shape=(1,) * 100), "100 axes, more than 64"),
    "a weight of 0 channels": (lambda: _model([_node("Conv", ["x", "w"])], [("w", _w(0, 3, 3, 3))]),
                               "'conv' (Conv): out_channels must be positive"),
    "an opaque output of negative size": (lambda: _model([helper.make_node("Mystery", ["x"], ["y"], name="odd",
                                                                           domain="example.odd")],
                                                         value_info=[helper.make_tensor_value_info(
                                                             "y", TensorProto.FLOAT, [1, -5, 4])],
                                                         domains=["example.odd"]),
                                          "'odd' (Mystery): ONNX's shape inference: an output size of -5"),
    "an opaque output of 2^63-1": (lambda: _model([helper.make_node("Mystery", ["x"], ["y"], name="odd",
                                                                    domain="example.odd")],
                                                  value_info=[helper.make_tensor_value_info(
                                                      "y", TensorProto.FLOAT, [1, BIG, 4])],
                                                  domains=["example.odd"]), "an output size of 9223372036854775807"),
    "convtranspose output_shape 0": (lambda: _model([_node("ConvTranspose", ["x", "w"], output_shape=[0, 0])], [
        ("w", _w(3, 2, 3, 3))]), "attribute 'output_shape' holds 0"),
    # folding that would allocate past the limit, checked before NumPy allocates
    "expand (n,1) to (n,)": (lambda: _folding("Expand", ["a", "s"], [("a", _w(N, 1)), ("s", np.array([N]))]),
                             "'fold' (Expand): would make a constant of 16,000,000 elements"),
    "add of (n,1) and (n,)": (lambda: _folding("Add", ["a", "b"], [("a", _w(N, 1)), ("b", _w(N))]),
                              "'fold' (Add): would make a constant of 16,000,000 elements"),
    "where of (n,1) and (n,)": (lambda: _folding("Where", ["m", "a", "b"], [
        ("m", np.ones((N, 1), bool)), ("a", _w(N)), ("b", _w(1))]), "would make a constant of 16,000,000 elements"),
    "concat of one constant many times": (lambda: _folding("Concat", ["a"] * 2000, [("a", _w(10_000))], axis=0),
                                          "would make a constant of 20,000,000 elements"),
    "range to 1e12": (lambda: _folding("Range", ["a", "b", "d"], [("a", np.array(0.0)), ("b", np.array(1e12)),
                                                                  ("d", np.array(1.0))]), "would make a constant"),
    "constantofshape of 2^63-1": (lambda: _folding("ConstantOfShape", ["s"], [("s", np.array([BIG, BIG]))]),
                                  "would make a constant"),
    "a cast to strings": (lambda: _folding("Cast", ["a"], [("a", _w(3))], to=TensorProto.STRING),
                          "casts to object"),
    "a cast of inf to integers": (lambda: _folding("Cast", ["a"], [("a", np.array([np.inf], np.float32))],
                                                   to=TensorProto.INT64), "casts a non-finite number"),
    "a slice step 0 on constants": (lambda: _folding("Slice", ["a", "s", "e", "ax", "st"], [
        ("a", _w(4)), ("s", np.array([0])), ("e", np.array([4])), ("ax", np.array([0])), ("st", np.array([0]))]),
                                    "'fold' (Slice): cannot be evaluated"),
    # work that must stay linear in the file
    "unsqueeze with 10,000 axes": (lambda: _model([_node("Unsqueeze", ["x", "a"])], [
        ("a", np.arange(10_000))]), "names 10,000 axes; tensors have at most 64"),
    "unsqueeze with 10,000 axes on a constant": (lambda: _folding("Unsqueeze", ["c0", "a"], [
        ("c0", _w(1)), ("a", np.arange(10_000))]), "'fold' (Unsqueeze): cannot be evaluated"),
    "split into 10,000 outputs that do not add up": (lambda: _model([_node(
        "Split", ["x"], [f"o{k}" for k in range(10_000)], axis=1, split=[1] * 10_000)], outputs=["o0"]),
        "splits an axis of 3 into 10,000 sizes"),
}


def _check_refused(path, expected: str):
    result = runner.invoke(app, ["shape", "-f", str(path)])
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr  # one error line, then its hint
    return lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_files_are_refused_in_one_line(case, tmp_path):
    build, expected = CASES[case]
    path = tmp_path / "model.onnx"
    path.write_bytes(build())
    started = time.perf_counter()
    _check_refused(path, expected)
    assert time.perf_counter() - started < 10, case


def test_a_split_into_10000_outputs_reads_in_linear_time(tmp_path):
    outputs = [f"o{k}" for k in range(10_000)]
    path = tmp_path / "model.onnx"
    path.write_bytes(_model([_node("Split", ["x"], outputs, axis=2)], shape=(1, 3, 10_000, 2), outputs=outputs))
    started = time.perf_counter()
    result = runner.invoke(app, ["shape", "-f", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    assert time.perf_counter() - started < 30
    network = from_onnx(path.read_bytes())
    assert len(network.layers) == 10_000 and network.layers[-1].name == "split.0"  # the graph's first output last
    assert (network.layers[0].start, network.layers[0].length) == (1, 1)


def test_an_unforeseen_failure_in_a_node_is_one_line_naming_it(tmp_path, monkeypatch):
    from convcalc.readers.onnx import ops

    def broken(node):
        raise ZeroDivisionError("a case no check foresaw")

    monkeypatch.setitem(ops.OPERATORS, "Relu", broken)
    path = tmp_path / "model.onnx"
    path.write_bytes(_model([_node("Relu", ["x"], name="act")]))
    assert "'act' (Relu) cannot be read (ZeroDivisionError)" in _check_refused(path, "act")


def test_string_initializers_are_never_parameters():
    # an operator convcalc does not know, reading a float and a string initializer: only the float counts
    node = helper.make_node("Mystery", ["x", "w", "names"], ["y"], name="odd", domain="example.odd")
    data = _model([node], [("w", _w(5)), ("names", np.full((1000,), b"label", object))],
                  value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
                  domains=["example.odd"])
    from convcalc import analyse

    assert analyse(from_onnx(data)).totals.params == 5
