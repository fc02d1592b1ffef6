"""Execute layers on NumPy arrays, mirroring ``torch.nn.functional``.

Weights use PyTorch's layouts, the batch axis comes first and the rank (1d,
2d, 3d) is taken from the input. Arguments are checked by the same layer
specs the shape engine uses, so the same configurations are refused with the
same errors. float32 stays float32 and float64 stays float64.

>>> import numpy as np
>>> x = np.array([[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]], dtype=np.float32)[None, None]
>>> k = np.array([[1, 4, 1], [1, 4, 3], [3, 3, 1]], dtype=np.float32)[None, None]
>>> conv(x, k)[0, 0]
array([[122., 148.],
       [126., 134.]], dtype=float32)
"""

from __future__ import annotations

from ..backend.memory import memory_limit, release_scratch, set_memory_limit
from .activation import (
    ACTIVATIONS,
    elu,
    gelu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    log_softmax,
    mish,
    prelu,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    tanh,
)
from .attention import einsum, matmul, scaled_dot_product_attention
from .convolution import conv, conv_transpose, linear
from .layout import (
    channel_shuffle,
    flatten,
    interpolate,
    onnx_resize,
    pad,
    pad_mode,
    pixel_shuffle,
    pixel_unshuffle,
    roll,
    upsample,
)
from .normalization import (
    batch_norm,
    group_norm,
    instance_norm,
    layer_norm,
    layer_norm2d,
    local_response_norm,
)
from .pooling import adaptive_avg_pool, adaptive_max_pool, avg_pool, max_pool
from .recurrent import recurrent

__all__ = [
    "ACTIVATIONS", "adaptive_avg_pool", "adaptive_max_pool", "avg_pool", "batch_norm", "channel_shuffle", "conv",
    "conv_transpose", "einsum", "elu", "flatten", "gelu", "group_norm", "hardsigmoid", "hardswish", "hardtanh", "instance_norm",
    "interpolate", "layer_norm", "layer_norm2d", "leaky_relu", "linear", "local_response_norm", "log_softmax",
    "matmul", "max_pool", "memory_limit", "mish", "onnx_resize", "pad", "pad_mode", "pixel_shuffle", "pixel_unshuffle", "prelu",
    "recurrent",
    "release_scratch", "relu", "relu6", "roll", "scaled_dot_product_attention", "selu", "set_memory_limit", "sigmoid",
    "silu", "softmax", "softplus",
    "softsign", "tanh", "upsample",
]
