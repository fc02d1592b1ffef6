"""Reading ONNX files as a ``Network``, with the ``onnx`` package (an optional extra) and no framework."""

from .graph import from_onnx, looks_like_onnx

__all__ = ["from_onnx", "looks_like_onnx"]
