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

# Axes a tensor may have: NumPy's limit (PyTorch's kernels stop earlier).
MAX_RANK = 64


def global_pool(kind):
    def build(node: Node):
        x = node.act()
        return [(kind(1, rank=len(x.shape) - 1), [x])]

    return build


def gemm(node: Node):
    x = node.act()
    if node.int("transA", 0):
        raise Unsupported("Gemm with transA (the batch is not first)")
    w = node.weight(1, "weight", required=True, rank=2)
    b = node.weight(2, "bias")
    if w.ndim != 2:
        raise node.error(f"input 1 (weight) has {w.ndim} axes; Gemm needs 2")
    node.float("alpha", 1.0)
    node.float("beta", 1.0)
    out, features = (w.shape[0], w.shape[1]) if node.int("transB", 0) else (w.shape[1], w.shape[0])
    return [(L.Linear(out, b is not None, in_features=features), [x])]


def matmul(node: Node):
    x = node.act()
    other = node.const(1, what="weight", required=True)
    if len(other.shape) != 2:
        raise Unsupported("MatMul of two computed tensors")
    node.weight(1, "weight")
    return [(L.Linear(other.shape[1], False, in_features=other.shape[0]), [x])]


def batch_norm(node: Node):
    x = node.act()
    node.weight(1, "weight")
    node.weight(2, "bias")
    return [(L.BatchNorm(x.shape[0], node.float("epsilon", 1e-5), rank=max(len(x.shape) - 1, 1)), [x])]


def instance_norm(node: Node):
    x = node.act()
    node.weight(1, "weight")
    node.weight(2, "bias")
    return [(L.InstanceNorm(x.shape[0], node.float("epsilon", 1e-5), None, True, rank=len(x.shape) - 1), [x])]


def layer_norm(node: Node):
    x = node.act()
    ndim = len(x.shape) + 1
    axis = node.int("axis", -1)
    if not -ndim <= axis < ndim:
        raise node.error(f"attribute 'axis' is {axis}, outside the input's {ndim} axes")
    axis %= ndim
    if axis == 0:
        raise Unsupported("LayerNormalization over the batch axis")
    w = node.weight(1, "weight")
    b = node.weight(2, "bias")
    return [(L.LayerNorm(tuple(x.shape[axis - 1:]), node.float("epsilon", 1e-5), w is not None, b is not None),
             [x])]


def activation(function: str, **fixed):
    def build(node: Node):
        x = node.act()
        values = {name: node.float(source, default) for name, (source, default) in fixed.items()}
        return [(L.Activation(function, **values), [x])]

    return build


def clip(node: Node):
    x = node.act()
    low = node.const_scalar(1, "min", node.float("min"))
    high = node.const_scalar(2, "max", node.float("max"))
    if (low, high) == (0.0, 6.0):
        return [(L.Activation("ReLU6"), [x])]
    if low == 0.0 and high is None:
        return [(L.Activation("ReLU"), [x])]
    return [(L.Activation("Hardtanh", min_val=-3.4e38 if low is None else low,
                          max_val=3.4e38 if high is None else high), [x])]


def prelu(node: Node):
    x = node.act()
    slope = node.weight(1, "slope", required=True)
    return [(L.PReLU(max(1, int(slope.size))), [x])]


def softmax(log: bool):
    def build(node: Node):
        x = node.act()
        return [(L.Softmax(node.int("axis", -1), log=log), [x])]

    return build


def arithmetic(kind):
    def build(node: Node):
        acts, scalar, weight_shape, constant_shape = [], None, None, None
        for index in range(2):
            value = node.inputs[index] if index < len(node.inputs) else None
            if value is None:
                raise node.error(f"has no input {index}, which the operator requires")
            if isinstance(value, Act):
                acts.append(value)
            elif value.array.size == 1:
                scalar = node.const_scalar(index, "a constant")
            elif value.initializer and value.array.dtype.kind == "f" and weight_shape is None:
                node.params.append(("weight", value.initializer))
                weight_shape = tuple(int(n) for n in value.array.shape)
            else:
                node.const_floats(index, "a constant")  # numbers, or the node is refused
                constant_shape = tuple(int(n) for n in value.array.shape)
        if not acts:
            raise Unsupported(f"{node.op} of constants")
        return [(kind(scalar, weight_shape, constant_shape), acts)]

    return build


def concat(node: Node):
    axis = node.int("axis", required=True)
    if not node.inputs or not all(isinstance(v, Act) for v in node.inputs):
        raise Unsupported("Concat with constant parts")
    return [(L.Concat(axis), list(node.inputs))]


def flatten(node: Node):
    x = node.act()
    if node.int("axis", 1) != 1:
        raise Unsupported("Flatten at an axis other than 1 (it merges the batch)")
    return [(L.Flatten(1, -1), [x])]


def reshape(node: Node):
    x = node.act()
    target = list(node.const_ints(1, "shape", required=True))
    full = (node.batch, *x.shape)
    if not node.int("allowzero", 0):
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
    perm = node.ints("perm", tuple(range(len(x.shape), -1, -1)))
    return [(L.Permute(perm), [x])]


def axes(node: Node, index: int, *, required: bool = False):
    """A node's axes, from its attribute (older opsets) or its input ``index``; at most MAX_RANK of them."""
    found = node.ints("axes")
    if found is None:
        found = node.const_ints(index, "axes")
    if found is None and required:
        raise node.error(f"has neither an 'axes' attribute nor input {index} (axes)")
    if found is not None and len(found) > MAX_RANK:
        raise node.error(f"names {len(found):,} axes; tensors have at most {MAX_RANK}")
    return found


def squeeze(node: Node):
    x = node.act()
    return [(L.Squeeze(axes(node, 1)), [x])]


def unsqueeze(node: Node):
    x = node.act()
    new = axes(node, 1, required=True)
    ndim = len(x.shape) + 1 + len(new)
    if any(not -ndim <= a < ndim for a in new):
        raise node.error(f"axes {list(new)} fall outside the output's {ndim} axes")
    return [(L.Unsqueeze(a), [x] if i == 0 else None) for i, a in enumerate(sorted(a % ndim for a in new))]


def reduce(function: str):
    def build(node: Node):
        x = node.act()
        found = axes(node, 1)
        if not found:
            if node.int("noop_with_empty_axes", 0):
                return [(L.Identity(), [x])]
            raise Unsupported("a reduction over every axis, batch included")
        return [(L.Reduce(function, found, bool(node.int("keepdims", 1))), [x])]

    return build


def slice_(node: Node):
    x = node.act()
    starts = node.const_ints(1, "starts", required=True)
    ends = node.const_ints(2, "ends", required=True)
    found = node.const_ints(3, "axes", tuple(range(len(starts))))
    steps = node.const_ints(4, "steps", (1,) * len(starts))
    if not len(starts) == len(ends) == len(found) == len(steps) or len(starts) > MAX_RANK:
        raise node.error(f"has {len(starts)} starts, {len(ends)} ends, {len(found)} axes and {len(steps)} steps")
    specs = []
    limit = 2**62
    for i, (start, end, axis, step) in enumerate(zip(starts, ends, found, steps)):
        if step < 1:
            raise Unsupported("Slice with a negative step")
        specs.append((L.Slice(axis, max(min(start, limit), -limit), max(min(end, limit), -limit), step),
                      [x] if i == 0 else None))
    return specs


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def pad(node: Node):
    x = node.act()
    pads = node.const_ints(1, "pads") if len(node.inputs) > 1 and node.inputs[1] is not None else None
    if pads is None:
        pads = node.ints("pads")
    if pads is None:
        raise node.error("has neither a 'pads' attribute nor input 1 (pads)")
    value = node.const_scalar(2, "constant_value", node.float("value", 0.0))
    mode = _PAD_MODES[node.string("mode", "constant", choices=tuple(_PAD_MODES))]
    ndim = len(x.shape) + 1
    half = len(pads) // 2
    begins, ends = list(pads[:half]), list(pads[half:])
    if half != ndim or len(pads) % 2 or begins[0] or ends[0]:
        if half != ndim or len(pads) % 2:
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
    return [(L.Dropout(node.float("ratio", 0.5)), [node.act()])]


def depth_to_space(node: Node):
    x = node.act()
    mode = node.string("mode", "DCR", choices=("DCR", "CRD"))
    note = () if mode == "CRD" else ("DepthToSpace in DCR mode orders channels differently from PixelShuffle; "
                                     "shapes and costs are the same",)
    return [(L.PixelShuffle(node.int("blocksize", required=True, minimum=1), remark=note), [x])]


def space_to_depth(node: Node):
    return [(L.PixelUnshuffle(node.int("blocksize", required=True, minimum=1)), [node.act()])]


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
