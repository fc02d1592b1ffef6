"""ONNX operators with geometry: convolution, transposed convolution and pooling (auto_pad,
asymmetric pads, output_shape, strides that default to 1), and Resize."""

from __future__ import annotations

from math import ceil

from ...engine import layers as L
from ..pytorch.values import Unsupported
from .node import Node
from .node import ints as _ints


def _same_pads(sizes, kernel, stride, dilation, mode: str):
    """ONNX's SAME_UPPER / SAME_LOWER: output ceil(n / s), the odd padding at the end (upper) or start."""
    begins, ends = [], []
    for n, k, s, d in zip(sizes, kernel, stride, dilation):
        total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        small = total // 2
        begins.append(small if mode == "SAME_UPPER" else total - small)
        ends.append(total - small if mode == "SAME_UPPER" else small)
    return begins, ends


def _pads(node: Node, sizes, kernel, stride, dilation):
    """(begins, ends) per spatial axis from auto_pad or pads."""
    rank = len(sizes)
    auto = node.attrs.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return _same_pads(sizes, kernel, stride, dilation, auto)
    if auto == "VALID":
        return [0] * rank, [0] * rank
    pads = _ints(node.attrs.get("pads", [0] * (2 * rank)))
    return list(pads[:rank]), list(pads[rank:])


def _pad_layer(begins, ends):
    """A zero pad (last axis first, as PyTorch orders amounts) for the asymmetric part of ONNX pads."""
    amounts = []
    for b, e in reversed(list(zip(begins, ends))):
        amounts += [b, e]
    return L.ZeroPad(tuple(amounts))


def conv(node: Node):
    x = node.act()
    w = node.weight(1, "weight")
    b = node.weight(2, "bias")
    rank = len(w.shape) - 2
    kernel = _ints(node.attrs.get("kernel_shape", w.shape[2:]))
    stride = _ints(node.attrs.get("strides", [1] * rank))
    dilation = _ints(node.attrs.get("dilations", [1] * rank))
    groups = int(node.attrs.get("group", 1))
    begins, ends = _pads(node, x.shape[1:], kernel, stride, dilation)
    spec = dict(stride=stride, dilation=dilation, groups=groups, bias=b is not None, in_channels=w.shape[1] * groups)
    if begins == ends:
        return [(L.Conv(w.shape[0], kernel, padding=tuple(begins), **spec), [x])]
    return [(_pad_layer(begins, ends), [x]), (L.Conv(w.shape[0], kernel, padding=0, **spec), None)]


def conv_transpose(node: Node):
    x = node.act()
    w = node.weight(1, "weight")
    b = node.weight(2, "bias")
    rank = len(w.shape) - 2
    sizes = x.shape[1:]
    groups = int(node.attrs.get("group", 1))
    kernel = _ints(node.attrs.get("kernel_shape", w.shape[2:]))
    stride = _ints(node.attrs.get("strides", [1] * rank))
    dilation = _ints(node.attrs.get("dilations", [1] * rank))
    output_padding = list(_ints(node.attrs.get("output_padding", [0] * rank)))
    auto = node.attrs.get("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if "output_shape" in node.attrs or auto in ("SAME_UPPER", "SAME_LOWER"):
        wanted = _ints(node.attrs["output_shape"])[-rank:] if "output_shape" in node.attrs else tuple(
            n * s for n, s in zip(sizes, stride))
        totals = [s * (n - 1) + op + (k - 1) * d + 1 - o
                  for n, k, s, d, op, o in zip(sizes, kernel, stride, dilation, output_padding, wanted)]
        if auto == "SAME_UPPER":
            begins, ends = [t // 2 for t in totals], [t - t // 2 for t in totals]
        else:
            begins, ends = [t - t // 2 for t in totals], [t // 2 for t in totals]
    elif auto == "VALID":
        begins, ends = [0] * rank, [0] * rank
    else:
        pads = _ints(node.attrs.get("pads", [0] * (2 * rank)))
        begins, ends = list(pads[:rank]), list(pads[rank:])
    out = w.shape[1] * groups
    spec = dict(groups=groups, bias=b is not None, dilation=dilation, in_channels=w.shape[0])
    if begins == ends and all(p >= 0 for p in begins):
        return [(L.ConvTranspose(out, kernel, stride, tuple(begins), tuple(output_padding), **spec), [x])]
    # ONNX allows asymmetric (or negative) pads: the full transposed output, then a crop
    full = L.ConvTranspose(out, kernel, stride, 0, tuple(output_padding), **spec)
    return [(full, [x]), (_pad_layer([-p for p in begins], [-p for p in ends]), None)]


def pool(kind: str):
    def build(node: Node):
        x = node.act()
        kernel = _ints(node.attrs["kernel_shape"])
        rank = len(kernel)
        stride = _ints(node.attrs.get("strides", [1] * rank))  # ONNX's default stride is 1
        dilation = _ints(node.attrs.get("dilations", [1] * rank))
        ceil_mode = bool(node.attrs.get("ceil_mode", 0))
        begins, ends = _pads(node, x.shape[1:], kernel, stride, dilation)
        if begins != ends:
            raise Unsupported(f"{node.op} with asymmetric pads")
        if kind == "max":
            return [(L.MaxPool(kernel, stride, tuple(begins), dilation, False, ceil_mode, rank=rank, onnx=True), [x])]
        include = bool(node.attrs.get("count_include_pad", 0))  # ONNX's default is 0, PyTorch's True
        return [(L.AvgPool(kernel, stride, tuple(begins), ceil_mode, include, rank=rank, onnx=True), [x])]

    return build


def resize(node: Node):
    x = node.act()
    rank = len(x.shape) - 1
    scales = node.const(2)
    sizes = node.const(3)
    if sizes is not None and len(sizes):
        out = _ints(sizes)[-rank:]
        given = None
    elif scales is not None and len(scales):
        factors = [float(f) for f in scales][-rank:]
        out = tuple(int(_f32(n * _f32(f))) for n, f in zip(x.shape[1:], factors))  # onnxruntime, in float32
        given = tuple(factors)
    else:
        raise Unsupported("Resize without scales or sizes")
    mode = node.attrs.get("mode", "nearest")
    coordinate = node.attrs.get("coordinate_transformation_mode", "half_pixel")
    if coordinate == "tf_crop_and_resize" or node.attrs.get("antialias", 0) or node.attrs.get("axes") is not None:
        raise Unsupported(f"Resize with {coordinate}, antialias or axes")
    return [(L.OnnxResize(out, mode, coordinate, node.attrs.get("nearest_mode", "round_prefer_floor"), given), [x])]


def _f32(value: float) -> float:
    import struct

    return struct.unpack("f", struct.pack("f", value))[0]
