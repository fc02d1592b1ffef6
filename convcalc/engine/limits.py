"""The limits that keep convcalc's work and memory bounded by the size of its input, never by the
numbers written in it: each is documented, named in its refusal, and raised by an environment variable."""

from __future__ import annotations

import os
from functools import lru_cache

# PyTorch's sizes and arguments are 64-bit integers: larger ones are errors, not work.
MAX_INTEGER = 2**62
MAX_DIGITS = 19


@lru_cache(maxsize=None)
def limit(name: str, default: int) -> int:
    """A limit's value: ``CONVCALC_<NAME>`` from the environment when set to a positive integer, else the default.

    >>> limit("MAX_LAYERS", 500_000) > 0
    True

    Read once per process (limits are asked for per layer).
    """
    text = os.environ.get(f"CONVCALC_{name}", "")
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) <= MAX_INTEGER else default


def max_layers() -> int:
    """Layers a network may have once its blocks are expanded."""
    return limit("MAX_LAYERS", 500_000)


def max_document_bytes() -> int:
    """Bytes a document (a file, stdin, or a --stream line, whatever it holds) may have."""
    return limit("MAX_DOCUMENT_BYTES", 256 * 2**20)


def max_onnx_bytes() -> int:
    """Bytes an ONNX model file (or stdin holding one) may have: 2 GiB by default, protobuf's own
    bound, past which no reader parses a model."""
    return limit("MAX_ONNX_BYTES", 2**31)


def max_external_bytes() -> int:
    """Bytes all external data files of one ONNX model may add up to (read into memory): 2 GiB by
    default, as much as a model file may hold itself; a larger model (ViT-H/14, RegNetY-128GF) needs
    it raised."""
    return limit("MAX_EXTERNAL_BYTES", 2**31)


def max_document_values() -> int:
    """Values (objects, lists, scalars) a document may hold once YAML aliases are expanded."""
    return limit("MAX_DOCUMENT_VALUES", 10_000_000)


def max_trace_bytes() -> int:
    """Bytes of the example input a PyTorch model is captured with (two samples of float32)."""
    return limit("MAX_TRACE_BYTES", 2**30)


# Elements a constant computed inside an ONNX graph (ConstantOfShape, Expand, Range) may have.
MAX_CONSTANT_ELEMENTS = 10_000_000

MAX_NESTING = 64  # how deep lists and objects may nest in a document
