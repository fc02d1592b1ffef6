"""The ATen operators of a captured PyTorch graph, each turned into convcalc's layer spec.

Every function here receives a ``Call``: the operator's arguments by schema name
(defaults filled in), with tensor arguments already told apart into activations
(``Act``, which carry the batch), parameters (``Param``) and fixed tensors
(``Const``). It returns the spec; convcalc's own rules then compute every figure.
This module never imports torch: the capture hands it plain values.
"""

from __future__ import annotations

from dataclasses import replace

from ...engine import layers as L
from ...engine.sizes import volume
from . import moves, products
from .moves import ints
from .values import Act, Call, Const, Param, Unsupported, weight_flags

__all__ = ["ALIASES", "ARITHMETIC", "BATCH_FIRST", "EXPANDS", "FIRST_OF_TUPLE", "FRESH", "OPERATORS", "PIECES", "RECURRENT", "Act", "Call", "Const", "Param",
           "Unsupported"]




def _conv(call: Call, transposed: bool):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    groups = int(call.args.get("groups", 1))
    stride, dilation = ints(call.args["stride"]), ints(call.args["dilation"])
    padding = call.args["padding"]
    padding = padding if isinstance(padding, str) else ints(padding)
    kernel = tuple(w.shape[2:])
    if len(stride) == 1 and len(kernel) > 1:  # convolution.default may give one value for every axis
        stride, dilation = stride * len(kernel), dilation * len(kernel)
    if not isinstance(padding, str) and len(padding) == 1 and len(kernel) > 1:
        padding = padding * len(kernel)
    if transposed:
        output_padding = ints(call.args.get("output_padding", (0,) * len(kernel)))
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


def batch_norm(call: Call):
    x = call.act()
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.BatchNorm(x.shape[0], float(call.args["eps"]), None, w is not None, True, b is not None,
                       rank=max(len(x.shape) - 1, 1))


def layer_norm(call: Call):
    call.act()
    call.trailing(len(call.args["normalized_shape"]))
    w = call.weight("weight", "weight")
    b = call.weight("bias", "bias")
    return L.LayerNorm(ints(call.args["normalized_shape"]), float(call.args["eps"]), w is not None, b is not None)


def rms_norm(call: Call):
    call.act()
    call.trailing(len(call.args["normalized_shape"]))
    w = call.weight("weight", "weight")
    eps = call.args.get("eps")
    return L.RMSNorm(ints(call.args["normalized_shape"]), None if eps is None else float(eps), w is not None)


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
    return L.Softmax(call.dim(call.args["dim"]), log=call.op in ("log_softmax", "_log_softmax"))


_DROPOUT_VARIANTS = {"dropout": "element", "feature_dropout": "feature", "alpha_dropout": "alpha",
                     "feature_alpha_dropout": "feature_alpha"}


def dropout(call: Call):
    call.act()
    return L.Dropout(float(call.args["p"]), variant=_DROPOUT_VARIANTS[call.op])


def max_pool(call: Call):
    x = call.act()
    rank = len(x.shape) - 1
    return L.MaxPool(ints(call.args["kernel_size"]), ints(call.args["stride"]) or None,
                     ints(call.args["padding"]), ints(call.args["dilation"]), False, bool(call.args["ceil_mode"]),
                     rank=rank)


def avg_pool(call: Call):
    x = call.act()
    divisor = call.args.get("divisor_override")
    return L.AvgPool(ints(call.args["kernel_size"]), ints(call.args["stride"]) or None, ints(call.args["padding"]),
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
        if dims is not None:
            dims = tuple(call.dim(d) for d in dims) if isinstance(dims, (list, tuple)) else call.dim(dims)
        return L.Reduce(function, dims, bool(call.args.get("keepdim", False)))

    return build


def vector_norm(call: Call):
    call.act()
    dims = call.args.get("dim")
    if dims is None:
        raise Unsupported("vector_norm over every axis (the batch too)")
    dims = tuple(call.dim(d) for d in dims) if isinstance(dims, (list, tuple)) else call.dim(dims)
    order = call.args.get("ord", 2)
    if not isinstance(order, (int, float)) or isinstance(order, bool):
        raise Unsupported(f"vector_norm of ord {order!r}")
    return L.VectorNorm(float(order), dims, bool(call.args.get("keepdim", False)))


def clamp(call: Call):
    call.act()
    bounds = []
    for name in ("min", "max"):
        value = call.args.get(name)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            raise Unsupported(f"{call.op} with a tensor bound")  # clamp.Tensor's elementwise bounds
        bounds.append(None if value is None else float(value))
    return L.Clamp(*bounds)


def arithmetic(kind):
    """add, sub, mul, div of activations, parameters, fixed tensors and numbers, with broadcasting."""
    def build(call: Call):
        scalar, weight_shape, constant_shape, table, made, unfollowed = None, None, None, None, False, False
        for name in ("self", "other"):
            value = call.args[name]
            if isinstance(value, Act):
                call.act(name)
            elif isinstance(value, Param) and not value.buffer:
                if weight_shape is not None:
                    raise Unsupported("arithmetic of two parameters")
                call.weight(name, "weight")
                weight_shape, table, (made, unfollowed) = value.shape, value.table, weight_flags(value.made, call.op)
            elif isinstance(value, (Param, Const)):
                shape = value.shape
                if isinstance(value, Const) and value.layout is not None:  # sized by the batch merged on axis 0
                    if not any(isinstance(a, Act) and a.layout.merged and a.layout.axis == 0 and
                               a.layout.rank == value.layout.rank for a in call.args.values()):
                        raise Unsupported(f"{call.op} of a fixed tensor sized by the batch, against another layout")
                    shape = value.per_sample
                constant_shape = shape if constant_shape is None else _broadcast(constant_shape, shape)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                scalar = float(value)
            else:
                raise Unsupported(f"{call.op} of {type(value).__name__}")
        if not call.reads:
            raise Unsupported(f"{call.op} of tensors that do not depend on the input")
        _fixed_branches(call)
        weight_shape = None if weight_shape is None else call.operand(tuple(weight_shape))
        constant_shape = None if constant_shape is None else call.operand(tuple(constant_shape))
        if constant_shape == () and all(a.shape for a in call.reads):  # a 0-d tensor (RAFT's sqrt(channels)):
            constant_shape = (1,)  # the same broadcast, in a shape a document can write
        return kind(scalar, weight_shape, constant_shape, table, made=made, unfollowed=unfollowed)

    return build


def _fixed_branches(call: Call) -> None:
    """Activations must keep the batch alike; a tensor computed without the input (its layout
    ``absent``) broadcasts over the samples, so its per-sample shape may not reach the batch axis."""
    main = [a for a in call.reads if not a.layout.absent]
    if len({replace(a.layout, unit=False) for a in main}) > 1:
        raise Unsupported(f"{call.op} of activations that keep the batch on different axes")
    for a in call.reads:
        if a.layout.absent and main and not ((main[0].layout.leading or main[0].layout.merged)
                                             and len(a.shape) <= len(main[0].shape)):
            raise Unsupported(f"{call.op} of a tensor computed without the input that reaches the batch axis")


def _broadcast(a, b):
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + tuple(a), (1,) * (width - len(b)) + tuple(b)
    return tuple(max(m, n) for m, n in zip(a, b))


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
            return L.Upsample(size=ints(size), mode=mode, align_corners=align)
        return L.Upsample(scale_factor=tuple(float(s) for s in scales), mode=mode, align_corners=align)

    return build


def pad(call: Call):
    call.act()
    mode = call.args.get("mode", "constant")
    value = call.args.get("value") or 0.0
    return L.Pad(ints(call.args["pad"]), float(value), mode)


def pad_mode(mode: str):
    def build(call: Call):
        call.act()
        return L.Pad(ints(call.args["padding"]), 0.0, mode)

    return build


def detach(call: Call):
    """``tensor.detach()``: the same values, through which no gradient flows."""
    call.act()
    return L.Detach()


def im2col(call: Call):
    """``F.unfold`` (``nn.Unfold``), ATen's im2col of a batch-first input."""
    call.act()
    return L.Unfold(*(ints(call.args[name]) for name in ("kernel_size", "dilation", "padding", "stride")))


def col2im(call: Call):
    """``F.fold`` (``nn.Fold``), ATen's col2im of a batch-first input."""
    call.act()
    return L.Fold(*(ints(call.args[name]) for name in ("output_size", "kernel_size", "dilation", "padding", "stride")))


_SAMPLING, _PADDING = ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection")  # GridSampler.h


def grid_sampler(call: Call):
    """``F.grid_sample``: the input and the grid keeping the batch alike (RAFT merges it with every position's
    lookups, on both), or a grid made once that every sample views (an expand) beside a batch-first input."""
    data, grid = call.act("input"), call.act("grid")
    viewed = grid.layout.unit and data.layout.leading and grid.layout.rank == data.layout.rank
    if not (data.layout == grid.layout or viewed) or not (data.layout.leading or data.layout.axis == 0):
        raise Unsupported("grid_sample of an input and a grid that keep the batch differently")
    mode, padding = int(call.args["interpolation_mode"]), int(call.args["padding_mode"])
    if mode not in range(len(_SAMPLING)) or padding not in range(len(_PADDING)):
        raise Unsupported(f"grid_sample mode {mode} or padding mode {padding}")
    return L.GridSample(_SAMPLING[mode], _PADDING[padding], bool(call.args["align_corners"]))


# operator name (the overload packet) -> builder
OPERATORS = {
    "conv1d": conv, "conv2d": conv, "conv3d": conv, "convolution": convolution,
    "conv_transpose1d": conv_transpose, "conv_transpose2d": conv_transpose, "conv_transpose3d": conv_transpose,
    "batch_norm": batch_norm, "_native_batch_norm_legit_no_training": batch_norm, "layer_norm": layer_norm, "rms_norm": rms_norm,
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
    "div": arithmetic(L.Div), "linalg_vector_norm": vector_norm, "clamp": clamp, "clamp_min": clamp,
    "clamp_max": clamp,
    "pixel_shuffle": pixel_shuffle, "pixel_unshuffle": pixel_unshuffle, "channel_shuffle": channel_shuffle,
    "native_channel_shuffle": channel_shuffle,
    "upsample_nearest1d": upsample("nearest"), "upsample_nearest2d": upsample("nearest"),
    "upsample_nearest3d": upsample("nearest"), "_upsample_nearest_exact1d": upsample("nearest-exact"),
    "_upsample_nearest_exact2d": upsample("nearest-exact"), "_upsample_nearest_exact3d": upsample("nearest-exact"),
    "upsample_linear1d": upsample("linear"), "upsample_bilinear2d": upsample("bilinear"),
    "upsample_trilinear3d": upsample("trilinear"), "upsample_bicubic2d": upsample("bicubic"),
    "detach": detach, "im2col": im2col, "col2im": col2im, "grid_sampler": grid_sampler, "grid_sampler_2d": grid_sampler, "grid_sampler_3d": grid_sampler,
    "pad": pad, "constant_pad_nd": pad, "reflection_pad1d": pad_mode("reflect"), "reflection_pad2d": pad_mode("reflect"),
    "reflection_pad3d": pad_mode("reflect"), "replication_pad1d": pad_mode("replicate"),
    "replication_pad2d": pad_mode("replicate"), "replication_pad3d": pad_mode("replicate"),
    **moves.OPERATORS, **products.OPERATORS,
}
# Operators that expand their input to another's shape (a view): read as the input itself where only
# arithmetic reads the result, which broadcasts it the same way (F.normalize's expand_as before its div).
EXPANDS = {"expand_as", "expand"}
ARITHMETIC = {"add", "sub", "rsub", "mul", "div"}
# Operators that return their input's values unchanged here (copies, views of the whole, casts).
ALIASES = {"clone", "alias", "lift_fresh_copy", "_to_copy", "to", "type_as"}
# Operators whose result has the shape its arguments ask for, whatever values the activation read holds
# (it gives only the dtype and device): a fixed tensor.
FRESH = {"new_zeros", "new_ones", "new_full", "new_empty", "new_empty_strided"}
# Operators that count dims batch first: where the batch has moved or merged, they are not read.
BATCH_FIRST = {"conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "batch_norm", "_native_batch_norm_legit_no_training", "group_norm",
               "instance_norm", "prelu", "_prelu_kernel", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
               "native_channel_shuffle", "pad", "constant_pad_nd", "im2col", "col2im"} | {
    name for name in OPERATORS if name.startswith(("max_pool", "avg_pool", "adaptive_", "_adaptive_", "upsample",
                                                   "_upsample", "reflection_pad", "replication_pad"))}
# Operators with several outputs, whose pieces are read with getitem.
PIECES = {"chunk", "split", "split_with_sizes", "unbind", "tensor_split"}
# Operators with a tuple result whose first item is the tensor (the rest: indices, saved statistics).
FIRST_OF_TUPLE = {"max_pool2d_with_indices", "max_pool3d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d",
                  "adaptive_max_pool3d", "_native_batch_norm_legit_no_training", "native_batch_norm",
                  "native_layer_norm", "native_group_norm"}
# Recurrent layers, whose first result is the sequence (a layer) and the others their last states.
RECURRENT = {"lstm", "gru", "rnn_tanh", "rnn_relu"}
