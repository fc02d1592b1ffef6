"""convcalc: exact shapes, costs and receptive fields of convolutional layers, as PyTorch computes them.

>>> import convcalc
>>> net = convcalc.Network(convcalc.parse_shape("3x224x224"),
...                        tuple(convcalc.parse_layer(t) for t in ["conv:64,k=7,s=2,p=3,bias=false", "bn", "relu"]))
>>> result = convcalc.analyse(net)
>>> result.output_shape, result.totals.params, result.totals.macs
((64, 112, 112), 9536, 118013952)
>>> result.to_dict()["schema"]
'convcalc.shape/1'

``summary()`` takes what torchinfo's ``summary()`` takes, and any source the command line reads:

>>> s = convcalc.summary(["conv:16,k=3,p=1", "relu"], "3x32x32")
>>> s
<Summary of 2 layer tokens: input 1x3x32x32 float32, 448 params, 442,368 MACs>
>>> "Conv2d 3→16 k=3 p=1" in str(s)     # print(s): the table convcalc shape prints
True
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine.network import Analysis

# The public names and the modules that define them. They load on first use,
# so the command line starts without importing the engine it may not need.
_EXPORTS = {
    "analyse": "engine.analysis",
    **dict.fromkeys(("Analysis", "LayerReport", "Network", "Totals"), "engine.network"),
    **dict.fromkeys(("ConvcalcError", "Origin", "ResourceError", "ShapeError", "SpecError"), "engine.errors"),
    **dict.fromkeys(("Activation", "AdaptiveAvgPool", "AdaptiveMaxPool", "AvgPool", "BatchNorm", "Conv",
                     "ConvTranspose", "Dropout", "Flatten", "Layer", "Linear", "MaxPool", "Upsample", "ZeroPad"),
                    "engine.layers"),
    **dict.fromkeys(("load_document", "parse_constructor", "parse_document", "parse_layer", "parse_shape"),
                    "readers"),
    "from_torch": "readers.pytorch",
    "from_onnx": "readers.onnx",
    **dict.fromkeys(("inference_memory", "training_memory"), "engine.memory"),
    "training_macs": "engine.training",
    **dict.fromkeys(("Device", "find_device", "roofline"), "engine.roofline"),
    **dict.fromkeys(("Summary", "summary"), "api.summary"),
}


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convcalc' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API as well as what is loaded: the lazy names show before their first use."""
    return sorted({*globals(), *_EXPORTS})


__version__ = "0.1.0"


def analyse_tokens(input_shape: str, *layers: str, batch: int = 1, dtype: str = "float32") -> "Analysis":
    """Analyse a network written as on the command line.

    >>> analyse_tokens("3x32x32", "conv:16,k=3,p=1", "maxpool:2").output_shape
    (16, 16, 16)
    """
    from .engine.analysis import analyse
    from .engine.network import Network
    from .readers import parse_layer, parse_shape

    return analyse(Network(parse_shape(input_shape), tuple(parse_layer(t) for t in layers), batch, dtype))


__all__ = [
    "Activation", "AdaptiveAvgPool", "AdaptiveMaxPool", "Analysis", "AvgPool", "BatchNorm", "Conv", "ConvTranspose",
    "ConvcalcError", "Dropout", "Flatten", "Layer", "LayerReport", "Linear", "MaxPool", "Network", "Origin",
    "ResourceError", "ShapeError", "SpecError", "Totals", "Upsample", "ZeroPad", "__version__", "analyse",
    "analyse_tokens", "from_onnx", "from_torch", "load_document", "parse_constructor", "parse_document", "parse_layer", "parse_shape",
    "Device", "find_device", "inference_memory", "roofline", "training_macs", "training_memory", "Summary", "summary",
]
