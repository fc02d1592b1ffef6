"""Mutated ONNX files give a result or a ConvcalcError, never another exception, in bounded time.

A small valid model (Conv, Relu, MaxPool, the Shape-Gather-Unsqueeze-Concat plumbing exporters write
before a Reshape, and Gemm, with a few initializers) has its protobuf mutated: attributes get other
types and values (huge, negative, NaN, invalid UTF-8), initializers other sizes, element types and
bytes, nodes other inputs, outputs and operators (or are deleted and duplicated), the graph input
other sizes and element types, and initializers point at external data under random relative names
inside a temporary directory. Each mutant is read and analysed in-process. The default run tries 200
mutants; the slow run (CI) 10,000."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcalc import analyse
from convcalc.engine.errors import ConvcalcError
from convcalc.readers.onnx import from_onnx

pytestmark = pytest.mark.needs_onnx  # every test here builds ONNX models

try:
    import onnx
    from onnx import AttributeProto, TensorProto, helper, numpy_helper
except ImportError:
    pass

SECONDS_PER_MUTANT = 5.0
INTS = [0, 1, 2, 3, -1, -2, 4, 7, 64, 65, 2**31, 2**62, 2**62 + 1, 2**63 - 1, -(2**63), 10_000]
FLOATS = [0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, 3.4e38, math.nan, math.inf, -math.inf]
STRINGS = [b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"NOTSET", b"DCR", b"CRD", b"nearest", b"linear", b"reflect",
           b"edge", b"", b"\xff\xfe", b"x" * 300, b"\x1b[2J"]
ATTRIBUTES = ["strides", "pads", "kernel_shape", "dilations", "group", "axis", "axes", "auto_pad", "alpha", "transA",
              "transB", "allowzero", "to", "perm", "split", "blocksize", "mode", "epsilon", "ceil_mode", "keepdims",
              "value", "output_shape", "min", "max", "start", "end"]
OPS = ["Conv", "Relu", "MaxPool", "AveragePool", "Reshape", "Gemm", "MatMul", "Add", "Mul", "Div", "Concat",
       "Gather", "Shape", "Unsqueeze", "Squeeze", "Slice", "Split", "Expand", "Where", "Range", "ConstantOfShape",
       "Cast", "Transpose", "Pad", "Resize", "Clip", "Flatten", "ConvTranspose", "BatchNormalization", "Softmax",
       "DepthToSpace", "ReduceMean", "ReduceProd", "Constant", "Identity", "LeakyRelu", "Tile", "NoSuchOp"]
# What a mutation changes; the ones that keep a file well-formed weigh more, to reach deeper code.
KINDS = ["values"] * 4 + ["set attribute"] * 4 + ["op type"] * 2 + ["node input"] * 2 + [
    "delete attribute", "dims", "dtype", "raw data", "typed data", "graph input", "node output", "delete node",
    "duplicate node", "swap nodes", "external data", "graph output"]
LOCATIONS = ["data.bin", "sub/data.bin", "sub", "", ".", "..", "../outside", "/etc/hostname", "missing.bin",
             "sub/../data.bin", "data.bin\0x", "link"]


def _base() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def floats(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Shape", ["p"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "rest"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["p", "target"], ["flat"], name="reshape"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
    ]
    initializers = [("w", floats(4, 3, 3, 3)), ("b", floats(4)), ("zero", np.array(0, np.int64)),
                    ("axes", np.array([0], np.int64)), ("rest", np.array([-1], np.int64)),
                    ("fc_w", floats(10, 64)), ("fc_b", floats(10))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_empty_tensor_value_info("y")],
                              [numpy_helper.from_array(v, n) for n, v in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _attribute(data, name: str):
    kind = data.draw(st.sampled_from(["int", "ints", "float", "floats", "string", "tensor", "graph", "untyped"]))
    if kind == "int":
        return helper.make_attribute(name, data.draw(st.sampled_from(INTS)))
    if kind == "ints":
        return helper.make_attribute(name, data.draw(st.lists(st.sampled_from(INTS), max_size=6)),
                                     attr_type=AttributeProto.INTS)
    if kind == "float":
        return helper.make_attribute(name, data.draw(st.sampled_from(FLOATS)), attr_type=AttributeProto.FLOAT)
    if kind == "floats":
        return helper.make_attribute(name, data.draw(st.lists(st.sampled_from(FLOATS), max_size=6)),
                                     attr_type=AttributeProto.FLOATS)
    if kind == "string":
        return helper.make_attribute(name, data.draw(st.sampled_from(STRINGS)), attr_type=AttributeProto.STRING)
    if kind == "tensor":
        return helper.make_attribute(name, _tensor(data, ""))
    if kind == "graph":
        return helper.make_attribute(name, helper.make_graph([], "sub", [], []))
    attribute = AttributeProto(name=name)
    attribute.ints.extend([2, 2])
    return attribute


def _tensor(data, name: str):
    dtype = data.draw(st.sampled_from([np.float32, np.int64, np.int32, np.float64, np.bool_, np.uint8]))
    shape = data.draw(st.lists(st.integers(0, 4), max_size=3))
    tensor = numpy_helper.from_array(np.ones(shape, dtype), name)
    if data.draw(st.booleans()):
        tensor.raw_data = data.draw(st.binary(max_size=40))
    return tensor


def _array(data, dims) -> np.ndarray:
    """An array of interesting values (whole numbers clipped to the type's range), of ``dims`` or other sizes."""
    dtype = np.dtype(data.draw(st.sampled_from([np.int64, np.float32, np.int32, np.float64, np.bool_])))
    keep = all(0 <= d <= 1024 for d in dims) and math.prod(dims) <= 4096 and data.draw(st.booleans())
    shape = list(dims) if keep else data.draw(st.lists(st.integers(0, 5), max_size=4))
    count = math.prod(shape)
    pool = INTS if dtype.kind in "iub" else FLOATS
    if count > 64:  # the sizes kept, one value repeated
        values = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=1)) * count
    else:
        values = data.draw(st.lists(st.sampled_from(pool), min_size=count, max_size=count))
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = [min(max(v, info.min), info.max) for v in values]
    return np.array(values, dtype=dtype).reshape(shape)


def _mutate(data, model) -> str:
    graph = model.graph
    nodes, inits = graph.node, graph.initializer
    names = ["x", "", "nothing"] + [t.name for t in inits] + [o for n in nodes for o in n.output]
    kind = data.draw(st.sampled_from(KINDS))
    if kind in ("set attribute", "delete attribute", "node input", "node output", "delete node", "duplicate node",
                "op type") and not nodes:
        return "no node"
    if kind in ("values", "dims", "dtype", "raw data", "typed data", "external data") and not inits:
        return "no initializer"
    if kind == "set attribute":
        node = nodes[data.draw(st.integers(0, len(nodes) - 1))]
        name = data.draw(st.sampled_from(ATTRIBUTES + [a.name for a in node.attribute]))
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(kept + [_attribute(data, name)])
    elif kind == "delete attribute":
        node = nodes[data.draw(st.integers(0, len(nodes) - 1))]
        if node.attribute:
            del node.attribute[data.draw(st.integers(0, len(node.attribute) - 1))]
    elif kind in ("values", "dims", "dtype", "raw data", "typed data", "external data"):
        tensor = inits[data.draw(st.integers(0, len(inits) - 1))]
        if kind == "values":  # a well-formed tensor of other values, sizes and type
            tensor.CopyFrom(numpy_helper.from_array(_array(data, list(tensor.dims)), tensor.name))
        elif kind == "dims":
            del tensor.dims[:]
            tensor.dims.extend(data.draw(st.lists(st.sampled_from(INTS + [5, 6, 8, 10, 64]), max_size=5)))
        elif kind == "dtype":
            tensor.data_type = data.draw(st.sampled_from(list(range(29)) + [99]))
        elif kind == "raw data":
            size = len(tensor.raw_data)
            tensor.raw_data = data.draw(st.one_of(st.binary(min_size=size, max_size=size), st.binary(max_size=64)))
        elif kind == "typed data":
            tensor.ClearField("raw_data")
            tensor.float_data.extend(data.draw(st.lists(st.sampled_from(FLOATS), max_size=4)))
        else:
            tensor.data_location = TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
            for key, value in (("location", data.draw(st.sampled_from(LOCATIONS))),
                               ("offset", data.draw(st.sampled_from(["0", "4", "-1", "x", "99999999999"]))),
                               ("length", data.draw(st.sampled_from(["", "0", "16", "400", "9" * 30])))):
                if value:
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
    elif kind == "graph input":
        value = graph.input[0]
        if data.draw(st.booleans()):
            value.type.tensor_type.elem_type = data.draw(st.sampled_from([0, 1, 7, 8, 10, 11, 16]))
        else:
            dims = value.type.tensor_type.shape.dim
            dim = dims[data.draw(st.integers(0, len(dims) - 1))]
            choice = data.draw(st.sampled_from(INTS + ["N"]))
            if choice == "N":
                dim.dim_param = "N"
            else:
                dim.dim_value = choice
    elif kind in ("node input", "node output"):
        node = nodes[data.draw(st.integers(0, len(nodes) - 1))]
        wires = node.input if kind == "node input" else node.output
        new = data.draw(st.sampled_from(names))
        if wires and data.draw(st.booleans()):
            wires[data.draw(st.integers(0, len(wires) - 1))] = new
        elif data.draw(st.booleans()) and wires:
            del wires[-1]
        else:
            wires.append(new)
    elif kind == "delete node":
        del nodes[data.draw(st.integers(0, len(nodes) - 1))]
    elif kind == "duplicate node":
        copy = type(nodes[0])()
        copy.CopyFrom(nodes[data.draw(st.integers(0, len(nodes) - 1))])
        nodes.insert(data.draw(st.integers(0, len(nodes))), copy)
    elif kind == "swap nodes":
        if len(nodes) > 1:
            i, j = data.draw(st.integers(0, len(nodes) - 1)), data.draw(st.integers(0, len(nodes) - 1))
            a, b = type(nodes[0])(), type(nodes[0])()
            a.CopyFrom(nodes[i])
            b.CopyFrom(nodes[j])
            nodes[i].CopyFrom(b)
            nodes[j].CopyFrom(a)
    elif kind == "op type":
        nodes[data.draw(st.integers(0, len(nodes) - 1))].op_type = data.draw(st.sampled_from(OPS))
    else:
        graph.output[0].name = data.draw(st.sampled_from(names))
    return kind


def _directory(tmp_path_factory) -> str:
    """Files external data may name: one beside the model, one in a subdirectory, a link leading out."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "model").mkdir()
    (root / "model" / "sub").mkdir()
    (root / "model" / "data.bin").write_bytes(np.arange(100, dtype=np.float32).tobytes())
    (root / "model" / "sub" / "data.bin").write_bytes(np.arange(100, dtype=np.int64).tobytes())
    (root / "outside").write_bytes(b"\x7f" * 400)
    os.symlink(root / "outside", root / "model" / "link")
    return str(root / "model")


_DIRECTORIES: dict = {}


def _directory_once(factory) -> str:
    """One directory of external data files for every mutant of a run."""
    if "path" not in _DIRECTORIES:
        _DIRECTORIES["path"] = _directory(factory)
    return _DIRECTORIES["path"]


def _check_mutants(data, directory: str) -> None:
    model = _base()
    done = [_mutate(data, model) for _ in range(data.draw(st.sampled_from([1, 1, 2, 3])))]
    source = model.SerializeToString()
    started = time.perf_counter()
    try:
        network = from_onnx(source, directory=directory, input_shape=data.draw(st.sampled_from([None, (3, 8, 8)])))
        analyse(network)
    except ConvcalcError as err:
        assert "\n" not in err.describe(), err.describe()
    elapsed = time.perf_counter() - started
    assert elapsed < SECONDS_PER_MUTANT, (done, elapsed)


def test_the_base_model_reads():
    network = from_onnx(_base().SerializeToString())
    assert analyse(network).totals.params == 4 * 27 + 4 + 640 + 10


@settings(max_examples=200, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_files_give_a_result_or_one_error(data, tmp_path_factory):
    _check_mutants(data, _directory_once(tmp_path_factory))


@pytest.mark.slow
@settings(max_examples=10_000, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_ten_thousand_mutated_files_give_a_result_or_one_error(data, tmp_path_factory):
    _check_mutants(data, _directory_once(tmp_path_factory))

