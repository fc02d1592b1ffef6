"""ONNX operators, each turned into convcalc's layer specs with ONNX's own semantics.

Where ONNX differs from PyTorch, the spec says what ONNX does: ``auto_pad``,
asymmetric ``pads`` (a pad layer before the operator), pooling strides that
default to 1, ``count_include_pad`` that defaults to 0, ConvTranspose's
``output_shape``, Gemm's transposes, Clip's bounds as inputs, and axes given as
attributes or inputs. A builder returns a list of specs applied in sequence (a
pad and a convolution, say), each as (spec, activations read).
"""

from __future__ import annotations

from dataclasses import fields

from ...engine import layers as L
from ...engine.sizes import volume
from ..pytorch.values import Act, Unsupported
from .batch import FREE, PLAIN, dim, placement, rank, refuse, same_placement, shifted
from .geometry import conv, conv_transpose, pool, resize
from .joined import join, joins_batches, slice_parts
from .layout import flatten, reshape, squeeze, transpose, unsqueeze
from .node import MAX_RANK, Node, axes
from .node import gathered as _gathered
from .products import einsum, gemm, matmul
from .sampling import grid_sample
from .scatter import scatter_nd


def global_pool(kind):
    def build(node: Node):
        x = node.act()
        return [(kind(1, rank=len(x.shape) - 1), [x])]

    return build


def batch_norm(node: Node):
    x = node.act()
    node.weight(1, "weight")
    node.weight(2, "bias")
    return [(L.BatchNorm(x.shape[0], node.float("epsilon", 1e-5), rank=max(len(x.shape) - 1, 1)), [x])]


def instance_norm(node: Node):
    """InstanceNormalization: its scale and bias are learned where the file stores them as initializers; the
    TorchScript exporter writes a norm without affine parameters (RAFT's encoder) with a scale of ones and a
    bias of zeros in Constant nodes, which are not the model's."""
    x = node.act()
    node.weight(1, "weight")
    node.weight(2, "bias")
    learned = bool(node.params)
    return [(L.InstanceNorm(x.shape[0], node.float("epsilon", 1e-5), None, learned, rank=len(x.shape) - 1), [x])]


def layer_norm(node: Node):
    x = node.act(moved=True)
    where = placement(x)
    axis = node.int("axis", -1)
    first = dim(node, x, axis, "attribute 'axis'")
    if where[0] > axis % rank(x):
        raise refuse(node, f"normalizes over axes from {axis % rank(x)} on, which hold the batch (axis {where[0]})")
    w = node.weight(1, "weight")
    b = node.weight(2, "bias")
    node.placed = where
    return [(L.LayerNorm(tuple(x.shape[first - 1:]), node.float("epsilon", 1e-5), w is not None, b is not None),
             [x])]


def _same(node: Node, x):
    """The output's batch where the input's is (an elementwise operation)."""
    node.placed = placement(x)
    return x


def activation(function: str, **fixed):
    def build(node: Node):
        x = _same(node, node.act(moved=True))
        values = {name: node.float(source, default) for name, (source, default) in fixed.items()}
        return [(L.Activation(function, **values), [x])]

    return build


def clip(node: Node):
    x = _same(node, node.act(moved=True))
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
        x = _same(node, node.act(moved=True))
        r = rank(x)
        if node.opset >= 13:  # one axis
            axis = node.int("axis", -1)
            chosen = axis if placement(x) == PLAIN and axis % r else dim(node, x, axis, "attribute 'axis'")
            return [(L.Softmax(chosen, log=log), [x])]
        # opset 1-12: the input as a matrix, axes from 'axis' on its columns
        axis = node.int("axis", 1)
        first = dim(node, x, axis, "attribute 'axis'")
        if placement(x)[0] > axis % r:
            raise refuse(node, f"takes the softmax over axes from {axis % r} on, which hold the batch")
        if first == len(x.shape):
            return [(L.Softmax(-1, log=log), [x])]
        rows = (*x.shape[:first - 1], volume(x.shape[first - 1:]))
        return [(L.Reshape(rows), [x]), (L.Softmax(-1, log=log), None), (L.Reshape(x.shape), None)]

    return build


def _operand(node: Node, shape: tuple, x) -> tuple:
    """A constant operand's shape (the file's, aligned at the right) for the per-sample form of ``x``."""
    where = placement(x)
    if where in (PLAIN, FREE):
        return shape
    r = rank(x)
    if len(shape) > r:
        raise node.error(f"an operand of {len(shape)} axes is larger than the input's {r}")
    at = where[0] - (r - len(shape))
    if 0 <= at < len(shape):
        if shape[at] != 1:
            raise refuse(node, f"an operand of shape {'x'.join(map(str, shape))} varies along the batch's axis")
        if where[1] * where[2] == 1:
            return shape[:at] + shape[at + 1:]
    return shape


def arithmetic(kind):
    def build(node: Node):
        acts, scalar, weight_shape, constant_shape, table = [], None, None, None, None
        for index in range(2):
            value = node.inputs[index] if index < len(node.inputs) else None
            if value is None:
                raise node.error(f"has no input {index}, which the operator requires")
            if isinstance(value, Act):
                acts.append(node.act(index, moved=True))
            elif value.array.size == 1:
                scalar = node.const_scalar(index, "a constant")
            elif value.initializer and value.array.dtype.kind == "f" and weight_shape is None:
                node.params.append(("weight", value.initializer))
                weight_shape = tuple(int(n) for n in value.array.shape)
            elif _gathered(node, value) and weight_shape is None:
                # a learned operand picked from a table (a relative-position bias): the table's values are
                # its parameters
                node.params.append(("weight", "+".join(value.table)))
                weight_shape = tuple(int(n) for n in value.array.shape)
                table = _gathered(node, value) if _gathered(node, value) < value.array.size else None
            else:
                node.const_floats(index, "a constant")  # numbers, or the node is refused
                constant_shape = tuple(int(n) for n in value.array.shape)
        if not acts:
            raise Unsupported(f"{node.op} of constants")
        fitted = _fit_fixed(node, acts)
        if fitted:
            return fitted[:-1] + [(kind(scalar, weight_shape, constant_shape, table=table), fitted[-1][1])]
        node.placed = same_placement(node, acts)
        if weight_shape is not None:
            weight_shape = _operand(node, weight_shape, acts[0])
        if constant_shape is not None:
            constant_shape = _operand(node, constant_shape, acts[0])
        return [(kind(scalar, weight_shape, constant_shape, table=table), acts)]

    return build


def _fit_fixed(node: Node, acts) -> list:
    """Where arithmetic joins a tensor computed without the input (``FREE``: its whole shape per sample, at
    batch 1) to one whose batch is alone at axis 0, the specs fitting it: a Reshape dropping its leading 1,
    which faces the batch, then (None, the operands read) for the arithmetic. Empty where this is not so."""
    places = [placement(a) for a in acts]
    if len(acts) != 2 or sorted(places) != sorted([FREE, PLAIN]):
        return []
    fixed, main = (acts[0], acts[1]) if places[0] == FREE else (acts[1], acts[0])
    node.placed = PLAIN
    if len(fixed.shape) <= len(main.shape):
        return [(None, acts)]
    if len(fixed.shape) > len(main.shape) + 1 or fixed.shape[0] != 1:
        raise refuse(node, f"adds a tensor computed without the input, of shape "
                           f"{'x'.join(map(str, fixed.shape))}, that varies along the batch's axis")
    reads = [0 if a is fixed else a for a in acts]
    return [(L.Reshape(fixed.shape[1:]), [fixed]), (None, reads)]


def concat(node: Node):
    axis = node.int("axis", required=True)
    if node.inputs and len(node.inputs) > 1 and _token(node, node.inputs[0]) and \
            all(isinstance(v, Act) for v in node.inputs[1:]):
        return _class_token(node, axis)
    if not node.inputs or not all(isinstance(v, Act) for v in node.inputs):
        raise Unsupported("Concat with constant parts")
    acts = [node.act(i, moved=True) for i in range(len(node.inputs))]
    if joins_batches(node, acts, axis):
        return join(node, acts)
    where = node.placed = same_placement(node, acts)
    return [(L.Concat(axis if where == PLAIN and axis % rank(acts[0]) else dim(node, acts[0], axis)), acts)]


def _token(node: Node, value) -> bool:
    """Whether ``value`` is a learned tensor of one sample over the batch: expanded in the graph, or
    stored so by an exporter that folded the expansion (the batch's copies all equal)."""
    if getattr(value, "expanded", False):
        return True
    array = getattr(value, "array", None)
    return bool(getattr(value, "initializer", None)) and array is not None and array.dtype.kind == "f" and \
        array.ndim > 1 and array.shape[0] == node.batch and bool((array == array[:1]).all())


def _class_token(node: Node, axis: int):
    """A learned tensor of one sample expanded over the batch, joined before the activations (a ViT's
    class token): counted as the concat's parameters where the kind has a learned part."""
    if "weight_shape" not in {f.name for f in fields(L.Concat)}:
        raise node.error("joins a learned tensor expanded over the batch (a class token) to the input's "
                         "activations; convcalc's concat has no learned part to count it",
                         hint="start the network after the class token, or read the PyTorch module with --model")
    acts = [node.act(i) for i in range(1, len(node.inputs))]
    token = node.inputs[0]
    node.params.append(("weight", token.initializer))
    return [(L.Concat(axis, weight_shape=tuple(int(n) for n in token.array.shape[1:])), acts)]


def reduce(function: str):
    def build(node: Node):
        x = node.act(moved=True)
        found = axes(node, 1)
        if not found:
            if node.int("noop_with_empty_axes", 0):
                _same(node, x)
                return [(L.Identity(), [x])]
            raise Unsupported("a reduction over every axis, batch included")
        keep = bool(node.int("keepdims", 1))
        where = placement(x)
        if where == PLAIN:
            return [(L.Reduce(function, found, keep), [x])]
        dims = tuple(dim(node, x, a) for a in found)
        node.placed = where if keep else shifted(where, removed=[a % rank(x) for a in found])
        return [(L.Reduce(function, dims, keep), [x])]

    return build


def l2_norm(node: Node):
    """ReduceL2 (F.normalize's norm, as the TorchScript exporter writes it): the 2-norm along the axes."""
    x = node.act(moved=True)
    found = axes(node, 1)
    if not found:
        raise Unsupported("a norm over every axis, batch included")
    keep = bool(node.int("keepdims", 1))
    where = placement(x)
    if where == PLAIN:
        return [(L.VectorNorm(2.0, tuple(found), keep), [x])]
    dims = tuple(dim(node, x, a) for a in found)
    node.placed = where if keep else shifted(where, removed=[a % rank(x) for a in found])
    return [(L.VectorNorm(2.0, dims, keep), [x])]


def slice_(node: Node):
    x = _same(node, node.act(moved=True))
    starts = node.const_ints(1, "starts", required=True)
    ends = node.const_ints(2, "ends", required=True)
    found = node.const_ints(3, "axes", tuple(range(len(starts))))
    steps = node.const_ints(4, "steps", (1,) * len(starts))
    if not len(starts) == len(ends) == len(found) == len(steps) or len(starts) > MAX_RANK:
        raise node.error(f"has {len(starts)} starts, {len(ends)} ends, {len(found)} axes and {len(steps)} steps")
    if any(a % rank(x) == 0 for a in found) and placement(x) not in (PLAIN, FREE):
        piece = slice_parts(node, x, found, starts, ends, steps)
        if piece is not None:  # a part of whole batches joined along the batch's axis
            node.placed = piece[1]
            return [(piece[0], [x])]
    specs = []
    limit = 2**62
    for i, (start, end, axis, step) in enumerate(zip(starts, ends, found, steps)):
        if step < 1:
            raise Unsupported("Slice with a negative step")
        axis = axis if placement(x) == PLAIN else dim(node, x, axis)
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
    return [(L.Dropout(node.float("ratio", 0.5)), [_same(node, node.act(moved=True))])]


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
    "Gemm": gemm, "MatMul": matmul, "Einsum": einsum, "BatchNormalization": batch_norm, "InstanceNormalization": instance_norm,
    "LayerNormalization": layer_norm,
    "Relu": activation("ReLU"), "Sigmoid": activation("Sigmoid"), "Tanh": activation("Tanh"),
    "LeakyRelu": activation("LeakyReLU", negative_slope=("alpha", 0.01)), "Elu": activation("ELU", alpha=("alpha", 1.0)),
    "Selu": activation("SELU"), "HardSigmoid": activation("Hardsigmoid"), "HardSwish": activation("Hardswish"),
    "Softplus": activation("Softplus"), "Softsign": activation("Softsign"), "Mish": activation("Mish"),
    "Gelu": activation("GELU"), "Erf": activation("Erf"), "Clip": clip, "PRelu": prelu,
    "Softmax": softmax(False), "LogSoftmax": softmax(True),
    "Add": arithmetic(L.Add), "Sub": arithmetic(L.Sub), "Mul": arithmetic(L.Mul), "Div": arithmetic(L.Div),
    "Concat": concat, "Flatten": flatten, "Reshape": reshape, "Transpose": transpose, "Squeeze": squeeze,
    "Unsqueeze": unsqueeze, "ReduceMean": reduce("mean"), "ReduceSum": reduce("sum"), "ReduceL2": l2_norm, "Slice": slice_, "Pad": pad,
    "Dropout": dropout, "DepthToSpace": depth_to_space, "SpaceToDepth": space_to_depth, "ScatterND": scatter_nd,
    "GridSample": grid_sample,
}
ALIASES = {"Identity", "Cast", "CastLike"}
