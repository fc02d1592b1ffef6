"""Layer specs: immutable records of what the user wrote, and their figures."""

from .base import Figures, Layer, Shape
from .conv import Conv, ConvTranspose
from .elementwise import ACTIVATION_FLOPS, Activation, BatchNorm, Dropout
from .merge import Add, Concat, Merge
from .pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool
from .reshape import Flatten, Linear, Upsample, ZeroPad

__all__ = [
    "ACTIVATION_FLOPS", "Activation", "Add", "Concat", "Merge", "AdaptiveAvgPool", "AdaptiveMaxPool", "AvgPool", "BatchNorm", "Conv",
    "ConvTranspose", "Dropout", "Figures", "Flatten", "Layer", "Linear", "MaxPool", "Shape", "Upsample", "ZeroPad",
]
