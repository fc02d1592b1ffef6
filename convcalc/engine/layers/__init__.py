"""Layer specs: immutable records of what the user wrote, and their figures (one module per family)."""

from .base import Figures, Layer, Shape
from .conv import Conv
from .transposed import ConvTranspose
from .elementwise import (
    ACTIVATION_FLOPS,
    Activation,
    Contiguous,
    Detach,
    Dropout,
    Identity,
    PReLU,
    Softmax,
    StochasticDepth,
)
from .layout import (
    ChannelShuffle,
    Permute,
    PixelShuffle,
    PixelUnshuffle,
    Reduce,
    Reshape,
    Squeeze,
    Transpose,
    Unsqueeze,
)
from .merge import Add, Arithmetic, Concat, Div, Merge, Mul, Sub
from .attention import ScaledDotProductAttention
from .multihead import MultiheadAttention
from .einsum import Einsum
from .normalization import (
    BatchNorm,
    GroupNorm,
    InstanceNorm,
    LayerNorm,
    LayerNorm2d,
    LocalResponseNorm,
    RMSNorm,
)
from .products import MatMul
from .recurrent import Recurrent
from .opaque import Opaque
from .padding import Pad, ZeroPad
from .pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool
from .resample import Resize, Upsample
from .roll import Roll
from .sampling import GridSample
from .reshape import Flatten, Linear
from .slicing import Chunk, Narrow, Select, Slice, SliceScatter, Split
from .vector_norm import Clamp, VectorNorm
from .fixed import Constant, IndexSelect
from .unfold import Fold, Unfold
from .slices import figures_of

__all__ = [
    "ACTIVATION_FLOPS", "Activation", "Add", "AdaptiveAvgPool", "AdaptiveMaxPool", "Arithmetic", "AvgPool", "BatchNorm",
    "ChannelShuffle", "Chunk", "Clamp", "Contiguous", "Concat", "Constant", "Conv", "ConvTranspose", "Detach", "Div", "Dropout", "Einsum", "Figures", "Flatten", "GridSample", "GroupNorm",
    "Identity", "IndexSelect", "InstanceNorm", "Layer", "LayerNorm", "LayerNorm2d", "Linear", "LocalResponseNorm", "MatMul", "MaxPool", "Merge",
    "Mul", "MultiheadAttention", "Narrow", "Opaque", "PReLU", "Pad", "Permute", "PixelShuffle", "PixelUnshuffle", "RMSNorm", "Recurrent", "Reduce", "Reshape", "Resize", "Roll", "ScaledDotProductAttention", "Select",
    "Shape",
    "Slice", "SliceScatter", "Softmax", "Split", "Squeeze", "StochasticDepth", "Sub", "Transpose", "Fold", "Unfold", "Unsqueeze", "Upsample", "VectorNorm", "ZeroPad", "figures_of",
]
