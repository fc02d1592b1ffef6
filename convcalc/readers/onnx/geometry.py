"""ONNX operators with geometry: convolution, transposed convolution and pooling (auto_pad,
asymmetric pads, output_shape, strides that default to 1), and Resize."""

from __future__ import annotations

from ...engine import layers as L
from ..pytorch.values import Unsupported
from .node import Node


def _same_pads(sizes, kernel, stride, dilation, mode: str):
    """ONNX's SAME_UPPER / SAME_LOWER: output ceil(n / s), the odd padding at the end (upper) or start."""
    begins, ends = [], []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small = total // 2
        begins.append(small if mode == "SAME_UPPER" else total - small)
        ends.append(total - small if mode == "SAME_UPPER" else small)
    return begins, ends


_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _pads(node: Node, sizes, kernel, stride, dilation):
    """(begins, ends) per spatial axis from auto_pad or pads."""
    rank = len(sizes)
    auto = node.string("auto_pad", "NOTSET", choices=_AUTO_PAD)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(sizes, kernel, stride, dilation, auto)
    if auto == "VALID":
        return [0] * rank, [0] * rank
    pads = node.ints("pads", (0,) * (2 * rank), length=2 * rank)
    return list(pads[:rank]), list(pads[rank:])


def _window(node: Node, weight, rank: int):
    """kernel, strides and dilations, checked: the kernel is the weight's when the node has one."""
    kernel = node.ints("kernel_shape", None if weight is None else tuple(weight.shape[2:]), minimum=1,
                       required=weight is None, length=rank)
    if weight is not None and kernel != tuple(weight.shape[2:]):
        raise node.error(f"attribute 'kernel_shape' {'x'.join(map(str, kernel))} disagrees with the weight's "
                         f"kernel {'x'.join(map(str, weight.shape[2:]))}")
    stride = node.ints("strides", (1,) * rank, minimum=1, length=rank)  # ONNX's default stride is 1
    dilation = node.ints("dilations", (1,) * rank, minimum=1, length=rank)
    return kernel, stride, dilation


def _pad_layer(begins, ends):
    """A zero pad (last axis first, as PyTorch orders amounts) for the asymmetric part of ONNX pads."""
    amounts = []
    for b, e in reversed(list(zip(begins, ends))):
        amounts += [b, e]
    return L.ZeroPad(tuple(amounts))


def conv(node: Node):
    x = node.act()
    w = node.weight(1, "weight", required=True, rank=3)
    b = node.weight(2, "bias")
    rank = w.ndim - 2
    kernel, stride, dilation = _window(node, w, rank)
    groups = node.int("group", 1, minimum=1)
    begins, ends = _pads(node, x.shape[1:], kernel, stride, dilation)
    spec = dict(stride=stride, dilation=dilation, groups=groups, bias=b is not None, in_channels=w.shape[1] * groups)
    if begins == ends:
        return [(L.Conv(w.shape[0], kernel, padding=tuple(begins), **spec), [x])]
    return [(_pad_layer(begins, ends), [x]), (L.Conv(w.shape[0], kernel, padding=0, **spec), None)]


def conv_transpose(node: Node):
    x = node.act()
    w = node.weight(1, "weight", required=True, rank=3)
    b = node.weight(2, "bias")
    rank = w.ndim - 2
    sizes = x.shape[1:]
    groups = node.int("group", 1, minimum=1)
    kernel, stride, dilation = _window(node, w, rank)
    output_padding = list(node.ints("output_padding", (0,) * rank, length=rank))
    auto = node.string("auto_pad", "NOTSET", choices=_AUTO_PAD)
    output_shape = node.ints("output_shape", minimum=1)
    if output_shape is not None and len(output_shape) < rank:
        raise node.error(f"attribute 'output_shape' has {len(output_shape)} sizes where the node needs {rank}")
    if output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        wanted = output_shape[-rank:] if output_shape is not None else tuple(n * s for n, s in zip(sizes, stride))
        totals = [s * (n - 1) + op + (k - 1) * d + 1 - o
                  for n, k, s, d, op, o in zip(sizes, kernel, stride, dilation, output_padding, wanted)]
        if auto == "SAME_UPPER":
            begins, ends = [t // 2 for t in totals], [t - t // 2 for t in totals]
        else:
            begins, ends = [t - t // 2 for t in totals], [t // 2 for t in totals]
    elif auto == "VALID":
        begins, ends = [0] * rank, [0] * rank
    else:
        pads = node.ints("pads", (0,) * (2 * rank), length=2 * rank)
        begins, ends = list(pads[:rank]), list(pads[rank:])
    out = w.shape[1] * groups
    spec = dict(groups=groups, bias=b is not None, dilation=dilation, in_channels=w.shape[0])
    if begins == ends and all(p >= 0 for p in begins):
        return [(L.ConvTranspose(out, kernel, stride, tuple(begins), tuple(output_padding), **spec), [x])]
    # ONNX allows asymmetric (or negative) pads: the full transposed output, then a crop
    full = L.ConvTranspose(out, kernel, stride, 0, tuple(output_padding), **spec)
    return [(full, [x]), (_pad_layer([-p for p in begins], [-p for p in ends]), None)]


_FLOAT32_LOWEST = -3.4028234663852886e38


def _pool_pads(node: Node, kind: str, sizes, kernel, begins, ends, ceil_mode: bool, include: bool):
    """The padding PyTorch's pool takes (at most half the kernel, even on both sides), and the pad layer
    for the rest, or None; refused where that layer would change the result."""
    kept = [min(b, e, k // 2) for b, e, k in zip(begins, ends, kernel)]
    if kind == "avg" and len(sizes) == 3 and any(n < k for n, k in zip(sizes, kernel)):
        kept = [0] * len(sizes)  # avg_pool3d wants the unpadded input to hold the kernel: pad it first
    amounts = []  # last axis first, as PyTorch orders them
    for b, e, p in reversed(list(zip(begins, ends, kept))):
        amounts += [b - p, e - p]
    if not any(amounts):
        return tuple(kept), None
    if ceil_mode:
        raise node.error("ceil_mode=1 with pads PyTorch's pooling cannot take (more than half the kernel, "
                         "uneven, or a 3-d average over an input smaller than the kernel): padding first "
                         "would change which last window is dropped", hint="use ceil_mode=0 or smaller pads")
    if kind == "max":
        # float32's lowest (padding takes finite values only) never wins a maximum over float inputs, as
        # ONNX's padding never does
        return tuple(kept), L.Pad(tuple(amounts), _FLOAT32_LOWEST, "constant", rank=len(sizes))
    if not include:
        raise node.error("count_include_pad=0 with pads PyTorch's pooling cannot take (more than half the "
                         "kernel, uneven, or a 3-d average over an input smaller than the kernel): padding "
                         "first would count the padding in the averages",
                         hint="use count_include_pad=1 or smaller pads")
    return tuple(kept), L.ZeroPad(tuple(amounts), rank=len(sizes))


def pool(kind: str):
    def build(node: Node):
        x = node.act()
        rank = len(node.ints("kernel_shape", required=True))
        if rank != len(x.shape) - 1:
            raise node.error(f"attribute 'kernel_shape' has {rank} sizes for an input of {len(x.shape) - 1} "
                             "spatial axes")
        kernel, stride, dilation = _window(node, None, rank)
        ceil_mode = bool(node.int("ceil_mode", 0))
        begins, ends = _pads(node, x.shape[1:], kernel, stride, dilation)
        include = kind == "max" or bool(node.int("count_include_pad", 0))  # ONNX's default is 0, PyTorch's True
        padding, pad = _pool_pads(node, kind, x.shape[1:], kernel, begins, ends, ceil_mode, include)
        if kind == "max":
            layer = L.MaxPool(kernel, stride, padding, dilation, False, ceil_mode, rank=rank)
        else:
            layer = L.AvgPool(kernel, stride, padding, ceil_mode, include, rank=rank)
        return [(layer, [x])] if pad is None else [(pad, [x]), (layer, None)]

    return build


_RESIZE_MODES = ("nearest", "linear", "cubic")
_COORDINATES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_half_pixel_for_nn", "tf_crop_and_resize")
_ROUNDING = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def resize(node: Node):
    x = node.act()
    rank = len(x.shape) - 1
    scales = node.const_floats(2, "scales", ())
    sizes = node.const_ints(3, "sizes", ())
    if sizes:
        if len(sizes) < rank or min(sizes) < 1:
            raise node.error(f"input 3 (sizes) {'x'.join(map(str, sizes))} does not size the "
                             f"{rank} spatial axes")
        out = sizes[-rank:]
        given = None
    elif scales:
        factors = scales[-rank:]
        if len(factors) < rank or min(factors) <= 0:
            raise node.error(f"input 2 (scales) {'x'.join(map(str, scales))} does not scale the "
                             f"{rank} spatial axes")
        out = tuple(_scaled(node, n, f) for n, f in zip(x.shape[1:], factors))
        given = tuple(factors)
    else:
        raise Unsupported("Resize without scales or sizes")
    mode = node.string("mode", "nearest", choices=_RESIZE_MODES)
    coordinate = node.string("coordinate_transformation_mode", "half_pixel", choices=_COORDINATES)
    rounding = node.string("nearest_mode", "round_prefer_floor", choices=_ROUNDING)
    if coordinate == "tf_crop_and_resize" or node.int("antialias", 0) or "axes" in node:
        raise Unsupported(f"Resize with {coordinate}, antialias or axes")
    return [(L.Resize(out, mode, coordinate, rounding, given), [x])]


def _scaled(node: Node, size: int, factor: float) -> int:
    """An axis times a scale as onnxruntime computes it, in float32."""
    product = size * _f32(factor)
    if not product < 2.0**62:
        raise node.error(f"input 2 (scales): a scale of {factor:g} makes an axis of {product:g}, out of range")
    return int(_f32(product))


def _f32(value: float) -> float:
    import struct

    if abs(value) > 3.4e38:
        return value  # beyond float32's range: left as it is, and refused by the caller
    return struct.unpack("f", struct.pack("f", value))[0]
