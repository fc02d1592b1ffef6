"""ONNX operators, each turned into convcalc's layer specs with ONNX's own semantics.

Where ONNX differs from PyTorch, the spec says what ONNX does: ``auto_pad``,
asymmetric ``pads`` (a pad layer before the operator), pooling strides that
default to 1, ``count_include_pad`` that defaults to 0, ConvTranspose's
``output_shape``, Gemm's transposes, Clip's bounds as inputs, and axes given as
attributes or inputs. A builder returns a list of specs applied in sequence (a
pad and a convolution, say), each as (spec, activations read).
"""

from __future__ import annotations

from ...engine import layers as L
from ...engine.sizes import volume
from ..pytorch.values import Act, Unsupported
from .geometry import conv, conv_transpose, pool, resize
from .node import Node
from .node import ints as _ints


def global_pool(kind):
    def build(node: Node):
        x = node.act()
        return [(kind(1, rank=len(x.shape) - 1), [x])]

    return build


def gemm(node: Node):
    x = node.act()
    if node.attrs.get("transA", 0):
        raise Unsupported("Gemm with transA (the batch is not first)")
    w = node.weight(1, "weight")
    b = node.weight(2, "bias")
    out, features = (w.shape[0], w.shape[1]) if node.attrs.get("transB", 0) else (w.shape[1], w.shape[0])
    return [(L.Linear(out, b is not None, in_features=features), [x])]


def matmul(node: Node):
    x = node.act()
    other = node.inputs[1]
    if isinstance(other, Act) or len(other.array.shape) != 2:
        raise Unsupported("MatMul of two computed tensors")
    node.weight(1, "weight")
    return [(L.Linear(other.array.shape[1], False, in_features=other.array.shape[0]), [x])]


def batch_norm(node: Node):
    x = node.act()
    node.weight(1, "weight")
    node.weight(2, "bias")
    return [(L.BatchNorm(x.shape[0], float(node.attrs.get("epsilon", 1e-5)), rank=max(len(x.shape) - 1, 1)), [x])]


def instance_norm(node: Node):
    x = node.act()
    node.weight(1, "weight")
    node.weight(2, "bias")
    return [(L.InstanceNorm(x.shape[0], float(node.attrs.get("epsilon", 1e-5)), None, True,
                            rank=len(x.shape) - 1), [x])]


def layer_norm(node: Node):
    x = node.act()
    axis = int(node.attrs.get("axis", -1))
    ndim = len(x.shape) + 1
    axis = axis % ndim
    if axis == 0:
        raise Unsupported("LayerNormalization over the batch axis")
    w = node.weight(1, "weight")
    b = node.weight(2, "bias")
    return [(L.LayerNorm(tuple(x.shape[axis - 1:]), float(node.attrs.get("epsilon", 1e-5)), w is not None,
                         b is not None), [x])]


def activation(function: str, **fixed):
    def build(node: Node):
        x = node.act()
        values = {name: float(node.attrs.get(source, default)) for name, (source, default) in fixed.items()}
        return [(L.Activation(function, **values), [x])]

    return build


def clip(node: Node):
    x = node.act()
    low = node.const(1, node.attrs.get("min"))
    high = node.const(2, node.attrs.get("max"))
    low = None if low is None else float(low)
    high = None if high is None else float(high)
    if (low, high) == (0.0, 6.0):
        return [(L.Activation("ReLU6"), [x])]
    if low == 0.0 and high is None:
        return [(L.Activation("ReLU"), [x])]
    return [(L.Activation("Hardtanh", min_val=-3.4e38 if low is None else low,
                          max_val=3.4e38 if high is None else high), [x])]


def prelu(node: Node):
    x = node.act()
    slope = node.weight(1, "weight")
    return [(L.PReLU(max(1, int(slope.size))), [x])]


def softmax(log: bool):
    def build(node: Node):
        x = node.act()
        return [(L.Softmax(int(node.attrs.get("axis", -1)), log=log), [x])]

    return build


def arithmetic(kind):
    def build(node: Node):
        acts, scalar, weight_shape, constant_shape = [], None, None, None
        for index, value in enumerate(node.inputs[:2]):
            if isinstance(value, Act):
                acts.append(value)
            elif value.array.size == 1:
                scalar = float(value.array.reshape(-1)[0])
            elif value.initializer and value.array.dtype.kind == "f" and weight_shape is None:
                node.params.append(("weight", value.initializer))
                weight_shape = tuple(int(n) for n in value.array.shape)
            else:
                constant_shape = tuple(int(n) for n in value.array.shape)
        if not acts:
            raise Unsupported(f"{node.op} of constants")
        return [(kind(scalar, weight_shape, constant_shape), acts)]

    return build


def concat(node: Node):
    if not all(isinstance(v, Act) for v in node.inputs):
        raise Unsupported("Concat with constant parts")
    return [(L.Concat(int(node.attrs["axis"])), list(node.inputs))]


def flatten(node: Node):
    x = node.act()
    if int(node.attrs.get("axis", 1)) != 1:
        raise Unsupported("Flatten at an axis other than 1 (it merges the batch)")
    return [(L.Flatten(1, -1), [x])]


def reshape(node: Node):
    x = node.act()
    target = [int(n) for n in node.const(1)]
    full = (node.batch, *x.shape)
    if not node.attrs.get("allowzero", 0):
        target = [full[i] if n == 0 and i < len(full) else n for i, n in enumerate(target)]
    if not target or target[0] not in (node.batch, -1) or (target[0] == -1 and -1 in target[1:]):
        raise Unsupported("a Reshape that moves the batch")
    rest = target[1:]
    known, total = volume(n for n in rest if n != -1), volume(x.shape)
    if not rest or known == 0 or total % known or (-1 not in rest and known != total):
        raise Unsupported("a Reshape that merges the batch with other axes")
    return [(L.Reshape(tuple(rest)), [x])]


def transpose(node: Node):
    x = node.act()
    perm = node.attrs.get("perm", list(range(len(x.shape), -1, -1)))
    return [(L.Permute(_ints(perm)), [x])]


def _axes(node: Node, index: int):
    axes = node.attrs.get("axes")
    if axes is None:
        axes = node.const(index)
    return None if axes is None else _ints(axes)


def squeeze(node: Node):
    x = node.act()
    axes = _axes(node, 1)
    return [(L.Squeeze(axes), [x])]


def unsqueeze(node: Node):
    x = node.act()
    axes = sorted(a % (len(x.shape) + 1 + len(_axes(node, 1))) for a in _axes(node, 1))
    return [(L.Unsqueeze(a), [x] if i == 0 else None) for i, a in enumerate(axes)]


def reduce(function: str):
    def build(node: Node):
        x = node.act()
        axes = _axes(node, 1)
        if axes is None:
            if node.attrs.get("noop_with_empty_axes", 0):
                return [(L.Identity(), [x])]
            raise Unsupported("a reduction over every axis, batch included")
        return [(L.Reduce(function, axes, bool(node.attrs.get("keepdims", 1))), [x])]

    return build


def slice_(node: Node):
    x = node.act()
    starts, ends = node.const(1), node.const(2)
    axes = node.const(3, list(range(len(starts))))
    steps = node.const(4, [1] * len(starts))
    specs = []
    for i, (start, end, axis, step) in enumerate(zip(starts, ends, axes, steps)):
        start, end, step = int(start), int(end), int(step)
        if step < 1:
            raise Unsupported("Slice with a negative step")
        limit = 2**62
        specs.append((L.Slice(int(axis), max(min(start, limit), -limit), max(min(end, limit), -limit), step),
                      [x] if i == 0 else None))
    return specs


def pad(node: Node):
    x = node.act()
    pads = node.const(1) if len(node.inputs) > 1 and node.inputs[1] is not None else node.attrs.get("pads")
    pads = _ints(pads)
    value = node.const(2, 0.0)
    value = 0.0 if value is None else float(value.reshape(-1)[0]) if hasattr(value, "reshape") else float(value)
    mode = node.attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    mode = {"edge": "replicate", "wrap": "circular"}.get(mode, mode)
    ndim = len(x.shape) + 1
    half = len(pads) // 2
    begins, ends = list(pads[:half]), list(pads[half:])
    if half != ndim or begins[0] or ends[0]:
        if half != ndim:
            raise Unsupported("Pad with axes")
        raise Unsupported("a Pad of the batch axis")
    sides = list(zip(begins[1:], ends[1:]))
    while len(sides) > 1 and sides[0] == (0, 0):  # pad only from the first padded axis on (2d for H and W)
        sides.pop(0)
    amounts = []
    for b, e in reversed(sides):
        amounts += [b, e]
    return [(L.Pad(tuple(amounts), value, mode, rank=len(sides)), [x])]


def dropout(node: Node):
    return [(L.Dropout(float(node.attrs.get("ratio", 0.5))), [node.act()])]


def depth_to_space(node: Node):
    x = node.act()
    mode = node.attrs.get("mode", "DCR")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    note = () if mode == "CRD" else ("DepthToSpace in DCR mode orders channels differently from PixelShuffle; "
                                     "shapes and costs are the same",)
    return [(L.PixelShuffle(int(node.attrs["blocksize"]), remark=note), [x])]


def space_to_depth(node: Node):
    return [(L.PixelUnshuffle(int(node.attrs["blocksize"])), [node.act()])]


OPERATORS = {
    "Resize": resize,
    "Conv": conv, "ConvTranspose": conv_transpose, "MaxPool": pool("max"), "AveragePool": pool("avg"),
    "GlobalAveragePool": global_pool(L.AdaptiveAvgPool), "GlobalMaxPool": global_pool(L.AdaptiveMaxPool),
    "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batch_norm, "InstanceNormalization": instance_norm,
    "LayerNormalization": layer_norm,
    "Relu": activation("ReLU"), "Sigmoid": activation("Sigmoid"), "Tanh": activation("Tanh"),
    "LeakyRelu": activation("LeakyReLU", negative_slope=("alpha", 0.01)), "Elu": activation("ELU", alpha=("alpha", 1.0)),
    "Selu": activation("SELU"), "HardSigmoid": activation("Hardsigmoid"), "HardSwish": activation("Hardswish"),
    "Softplus": activation("Softplus"), "Softsign": activation("Softsign"), "Mish": activation("Mish"),
    "Gelu": activation("GELU"), "Erf": activation("Erf"), "Clip": clip, "PRelu": prelu,
    "Softmax": softmax(False), "LogSoftmax": softmax(True),
    "Add": arithmetic(L.Add), "Sub": arithmetic(L.Sub), "Mul": arithmetic(L.Mul), "Div": arithmetic(L.Div),
    "Concat": concat, "Flatten": flatten, "Reshape": reshape, "Transpose": transpose, "Squeeze": squeeze,
    "Unsqueeze": unsqueeze, "ReduceMean": reduce("mean"), "ReduceSum": reduce("sum"), "Slice": slice_, "Pad": pad,
    "Dropout": dropout, "DepthToSpace": depth_to_space, "SpaceToDepth": space_to_depth,
}
ALIASES = {"Identity", "Cast", "CastLike"}
