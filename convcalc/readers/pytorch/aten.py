"""The ATen operators of a captured PyTorch graph, each turned into convcalc's layer spec.

Every function here receives a ``Call``: the operator's arguments by schema name
(defaults filled in), with tensor arguments already told apart into activations
(``Act``, which carry the batch), parameters (``Param``) and fixed tensors
(``Const``). It returns the spec; convcalc's own rules then compute every figure.
This module never imports torch: the capture hands it plain values.
"""

from __future__ import annotations

from ...engine import layers as L
from ...engine.sizes import volume
from .values import Act, Call, Const, Param, Unsupported

__all__ = ["ALIASES", "FIRST_OF_TUPLE", "OPERATORS", "PIECES", "RECURRENT", "Act", "Call", "Const", "Param",
           "Unsupported"]


def _ints(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


def _conv(call: Call, transposed: bool):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    groups = int(call.args.get("groups", 1))
    stride, dilation = _ints(call.args["stride"]), _ints(call.args["dilation"])
    padding = call.args["padding"]
    padding = padding if isinstance(padding, str) else _ints(padding)
    kernel = tuple(w.shape[2:])
    if len(stride) == 1 and len(kernel) > 1:  # convolution.default may give one value for every axis
        stride, dilation = stride * len(kernel), dilation * len(kernel)
    if not isinstance(padding, str) and len(padding) == 1 and len(kernel) > 1:
        padding = padding * len(kernel)
    if transposed:
        output_padding = _ints(call.args.get("output_padding", (0,) * len(kernel)))
        if len(output_padding) == 1 and len(kernel) > 1:
            output_padding = output_padding * len(kernel)
        return L.ConvTranspose(w.shape[1] * groups, kernel, stride, padding, output_padding, groups, b is not None,
                               dilation, in_channels=x.shape[0], rank=len(kernel))
    return L.Conv(w.shape[0], kernel, stride, padding, dilation, groups, b is not None, "zeros",
                  in_channels=w.shape[1] * groups, rank=len(kernel))


def conv(call: Call):
    return _conv(call, False)


def conv_transpose(call: Call):
    return _conv(call, True)


def convolution(call: Call):
    return _conv(call, bool(call.args["transposed"]))


def linear(call: Call):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.Linear(w.shape[0], b is not None, in_features=w.shape[1] if x.shape else None)


def matmul(call: Call):
    """``x @ W`` with a parameter W: a Linear without bias; between activations it is not counted."""
    call.act()
    other = call.args["other"]
    if not isinstance(other, Param) or len(other.shape) != 2:
        raise Unsupported("matmul of two computed tensors (attention)")
    call.weight("other", "weight")
    return L.Linear(other.shape[1], False, in_features=other.shape[0])


def batch_norm(call: Call):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.BatchNorm(x.shape[0], float(call.args["eps"]), None, w is not None, True, b is not None,
                       rank=max(len(x.shape) - 1, 1))


def layer_norm(call: Call):
    call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.LayerNorm(_ints(call.args["normalized_shape"]), float(call.args["eps"]), w is not None, b is not None)


def group_norm(call: Call):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.GroupNorm(int(call.args["num_groups"]), x.shape[0], float(call.args["eps"]), w is not None,
                       b is not None)


def instance_norm(call: Call):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.InstanceNorm(x.shape[0], float(call.args["eps"]), None, w is not None,
                          not call.args["use_input_stats"], b is not None, rank=len(x.shape) - 1)


def _activation(function: str, **fixed):
    def build(call: Call):
        call.act()
        values = {name: float(call.args[source]) for name, source in fixed.items()}
        return L.Activation(function, **values)

    return build


def hardtanh(call: Call):
    call.act()
    low, high = float(call.args["min_val"]), float(call.args["max_val"])
    if (low, high) == (0.0, 6.0):
        return L.Activation("ReLU6")
    return L.Activation("Hardtanh", min_val=low, max_val=high)


def gelu(call: Call):
    call.act()
    return L.Activation("GELU", approximate=call.args.get("approximate", "none"))


def elu(call: Call):
    call.act()
    if float(call.args["scale"]) != 1 or float(call.args["input_scale"]) != 1:
        raise Unsupported("elu with a scale (SELU's inner form)")
    return L.Activation("ELU", alpha=float(call.args["alpha"]))


def prelu(call: Call):
    call.act()
    w = call.weight("weight", "weight")
    return L.PReLU(max(1, volume(w.shape)))


def softmax(call: Call):
    call.act()
    return L.Softmax(int(call.args["dim"]), log=call.op in ("log_softmax", "_log_softmax"))


_DROPOUT_VARIANTS = {"dropout": "element", "feature_dropout": "feature", "alpha_dropout": "alpha",
                     "feature_alpha_dropout": "feature_alpha"}


def dropout(call: Call):
    call.act()
    return L.Dropout(float(call.args["p"]), variant=_DROPOUT_VARIANTS[call.op])


def max_pool(call: Call):
    x = call.act()
    rank = len(x.shape) - 1
    return L.MaxPool(_ints(call.args["kernel_size"]), _ints(call.args["stride"]) or None,
                     _ints(call.args["padding"]), _ints(call.args["dilation"]), False, bool(call.args["ceil_mode"]),
                     rank=rank)


def avg_pool(call: Call):
    x = call.act()
    divisor = call.args.get("divisor_override")
    return L.AvgPool(_ints(call.args["kernel_size"]), _ints(call.args["stride"]) or None, _ints(call.args["padding"]),
                     bool(call.args["ceil_mode"]), bool(call.args["count_include_pad"]),
                     None if divisor is None else int(divisor), rank=len(x.shape) - 1)


def adaptive_pool(kind):
    def build(call: Call):
        x = call.act()
        size = tuple(None if s is None else int(s) for s in call.args["output_size"])
        return kind(size, rank=len(x.shape) - 1)

    return build


def reduce(function: str):
    def build(call: Call):
        call.act()
        dims = call.args.get("dim")
        dims = None if dims is None else _ints(dims) if isinstance(dims, (list, tuple)) else int(dims)
        return L.Reduce(function, dims, bool(call.args.get("keepdim", False)))

    return build


def arithmetic(kind):
    """add, sub, mul, div of activations, parameters, fixed tensors and numbers, with broadcasting."""
    def build(call: Call):
        scalar, weight_shape, constant_shape = None, None, None
        for name in ("self", "other"):
            value = call.args[name]
            if isinstance(value, Act):
                call.act(name)
            elif isinstance(value, Param) and not value.buffer:
                if weight_shape is not None:
                    raise Unsupported("arithmetic of two parameters")
                call.weight(name, "weight")
                weight_shape = value.shape
            elif isinstance(value, (Param, Const)):
                constant_shape = value.shape if constant_shape is None else _broadcast(constant_shape, value.shape)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                scalar = float(value)
            else:
                raise Unsupported(f"{call.op} of {type(value).__name__}")
        if not call.reads:
            raise Unsupported(f"{call.op} of tensors that do not depend on the input")
        return kind(scalar, weight_shape, constant_shape)

    return build


def _broadcast(a, b):
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + tuple(a), (1,) * (width - len(b)) + tuple(b)
    return tuple(max(m, n) for m, n in zip(a, b))


def cat(call: Call):
    tensors = call.args["tensors"]
    if not all(isinstance(t, Act) for t in tensors):
        raise Unsupported("cat of tensors that do not depend on the input")
    call.reads.extend(tensors)
    return L.Concat(int(call.args["dim"]))


def reshape(call: Call):
    """view / reshape, whose sizes count the batch: the batch size (or -1 with the rest given) must lead."""
    x = call.act()
    sizes = _ints(call.args["size"] if "size" in call.args else call.args["shape"])
    if not sizes or (sizes[0] != call.batch and not (sizes[0] == -1 and -1 not in sizes[1:])):
        raise Unsupported("a reshape that moves the batch")
    rest = sizes[1:]
    if sizes[0] == -1 and volume(rest) != volume(x.shape):
        raise Unsupported("a reshape that moves the batch")
    return L.Reshape(rest)


def unflatten(call: Call):
    """unflatten(dim, sizes): a reshape of one axis, which must not be the batch's."""
    x = call.act()
    dim, sizes = int(call.args["dim"]), _ints(call.args["sizes"])
    rank = len(x.shape) + 1
    dim = dim % rank
    if dim == 0:
        raise Unsupported("an unflatten of the batch axis")
    shape = list(x.shape)
    known = volume([n for n in sizes if n != -1])
    sizes = [shape[dim - 1] // known if n == -1 else n for n in sizes]
    return L.Reshape(tuple(shape[: dim - 1] + sizes + shape[dim:]))


def flatten(call: Call):
    call.act()
    return L.Flatten(int(call.args["start_dim"]), int(call.args["end_dim"]))


def permute(call: Call):
    call.act()
    return L.Permute(_ints(call.args["dims"]))


def transpose(call: Call):
    call.act()
    return L.Transpose(int(call.args["dim0"]), int(call.args["dim1"]))


def squeeze(call: Call):
    call.act()
    dim = call.args.get("dim")
    return L.Squeeze(None if dim is None else _ints(dim) if isinstance(dim, (list, tuple)) else int(dim))


def unsqueeze(call: Call):
    call.act()
    return L.Unsqueeze(int(call.args["dim"]))


def slice_(call: Call):
    call.act()
    start, end = call.args.get("start"), call.args.get("end")
    return L.Slice(int(call.args["dim"]), None if start is None else int(start), None if end is None else int(end),
                   int(call.args["step"]))


def narrow(call: Call):
    call.act()
    return L.Narrow(int(call.args["dim"]), int(call.args["start"]), int(call.args["length"]))


def select(call: Call):
    call.act()
    return L.Select(int(call.args["dim"]), int(call.args["index"]))


def pixel_shuffle(call: Call):
    call.act()
    return L.PixelShuffle(int(call.args["upscale_factor"]))


def pixel_unshuffle(call: Call):
    call.act()
    return L.PixelUnshuffle(int(call.args["downscale_factor"]))


def channel_shuffle(call: Call):
    call.act()
    return L.ChannelShuffle(int(call.args["groups"]))


def upsample(mode: str):
    def build(call: Call):
        call.act()
        size, scales = call.args.get("output_size"), call.args.get("scale_factors")
        align = call.args.get("align_corners")
        align = None if mode in ("nearest", "nearest-exact") else bool(align)
        if size is not None:
            return L.Upsample(size=_ints(size), mode=mode, align_corners=align)
        return L.Upsample(scale_factor=tuple(float(s) for s in scales), mode=mode, align_corners=align)

    return build


def pad(call: Call):
    call.act()
    mode = call.args.get("mode", "constant")
    value = call.args.get("value") or 0.0
    return L.Pad(_ints(call.args["pad"]), float(value), mode)


def pad_mode(mode: str):
    def build(call: Call):
        call.act()
        return L.Pad(_ints(call.args["padding"]), 0.0, mode)

    return build


# operator name (the overload packet) -> builder
OPERATORS = {
    "conv1d": conv, "conv2d": conv, "conv3d": conv, "convolution": convolution,
    "conv_transpose1d": conv_transpose, "conv_transpose2d": conv_transpose, "conv_transpose3d": conv_transpose,
    "linear": linear, "matmul": matmul, "mm": matmul,
    "batch_norm": batch_norm, "_native_batch_norm_legit_no_training": batch_norm, "layer_norm": layer_norm,
    "group_norm": group_norm, "instance_norm": instance_norm,
    "relu": _activation("ReLU"), "relu6": _activation("ReLU6"), "hardtanh": hardtanh, "silu": _activation("SiLU"),
    "gelu": gelu, "sigmoid": _activation("Sigmoid"), "tanh": _activation("Tanh"),
    "hardswish": _activation("Hardswish"), "hardsigmoid": _activation("Hardsigmoid"), "mish": _activation("Mish"),
    "leaky_relu": _activation("LeakyReLU", negative_slope="negative_slope"), "elu": elu, "selu": _activation("SELU"),
    "softplus": _activation("Softplus", beta="beta", threshold="threshold"), "prelu": prelu,
    "_prelu_kernel": prelu, "softmax": softmax, "_softmax": softmax, "log_softmax": softmax, "_log_softmax": softmax,
    "dropout": dropout, "feature_dropout": dropout, "alpha_dropout": dropout, "feature_alpha_dropout": dropout,
    "max_pool1d": max_pool, "max_pool2d": max_pool, "max_pool3d": max_pool, "max_pool2d_with_indices": max_pool,
    "max_pool3d_with_indices": max_pool, "avg_pool1d": avg_pool, "avg_pool2d": avg_pool, "avg_pool3d": avg_pool,
    "adaptive_avg_pool1d": adaptive_pool(L.AdaptiveAvgPool), "adaptive_avg_pool2d": adaptive_pool(L.AdaptiveAvgPool),
    "adaptive_avg_pool3d": adaptive_pool(L.AdaptiveAvgPool), "_adaptive_avg_pool2d": adaptive_pool(L.AdaptiveAvgPool),
    "adaptive_max_pool1d": adaptive_pool(L.AdaptiveMaxPool), "adaptive_max_pool2d": adaptive_pool(L.AdaptiveMaxPool),
    "adaptive_max_pool3d": adaptive_pool(L.AdaptiveMaxPool),
    "mean": reduce("mean"), "sum": reduce("sum"),
    "add": arithmetic(L.Add), "sub": arithmetic(L.Sub), "rsub": arithmetic(L.Sub), "mul": arithmetic(L.Mul),
    "div": arithmetic(L.Div),
    "view": reshape, "reshape": reshape, "unflatten": unflatten, "_unsafe_view": reshape, "_reshape_alias": reshape,
    "cat": cat, "concat": cat, "flatten": flatten, "permute": permute, "transpose": transpose, "squeeze": squeeze,
    "unsqueeze": unsqueeze, "slice": slice_, "narrow": narrow, "select": select,
    "pixel_shuffle": pixel_shuffle, "pixel_unshuffle": pixel_unshuffle, "channel_shuffle": channel_shuffle,
    "native_channel_shuffle": channel_shuffle,
    "upsample_nearest1d": upsample("nearest"), "upsample_nearest2d": upsample("nearest"),
    "upsample_nearest3d": upsample("nearest"), "_upsample_nearest_exact1d": upsample("nearest-exact"),
    "_upsample_nearest_exact2d": upsample("nearest-exact"), "_upsample_nearest_exact3d": upsample("nearest-exact"),
    "upsample_linear1d": upsample("linear"), "upsample_bilinear2d": upsample("bilinear"),
    "upsample_trilinear3d": upsample("trilinear"), "upsample_bicubic2d": upsample("bicubic"),
    "pad": pad, "constant_pad_nd": pad, "reflection_pad1d": pad_mode("reflect"), "reflection_pad2d": pad_mode("reflect"),
    "reflection_pad3d": pad_mode("reflect"), "replication_pad1d": pad_mode("replicate"),
    "replication_pad2d": pad_mode("replicate"), "replication_pad3d": pad_mode("replicate"),
}
# Operators that return their input's values unchanged here (copies, views of the whole, casts).
ALIASES = {"contiguous", "clone", "alias", "detach", "lift_fresh_copy", "_to_copy", "to", "type_as"}
# Operators with several outputs, whose pieces are read with getitem.
PIECES = {"chunk", "split", "split_with_sizes", "unbind", "tensor_split"}
# Operators with a tuple result whose first item is the tensor (the rest: indices, saved statistics).
FIRST_OF_TUPLE = {"max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d",
                  "adaptive_max_pool3d", "_native_batch_norm_legit_no_training", "native_batch_norm",
                  "native_layer_norm", "native_group_norm"}
# Recurrent layers, which convcalc does not read yet: refused by name rather than counted as nothing.
RECURRENT = {"lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell",
             "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "quantized_lstm", "quantized_gru"}
