"""Network documents: the JSON object ``{"input": [...], "batch": N, "layers": [...]}``.

Each layer is an object with a ``type`` (a PyTorch class name, any case, or
a short name) and PyTorch's argument names. Unknown keys are errors.
"""

from __future__ import annotations

import json

from ..analysis import DTYPE_BYTES, Network
from ..errors import Origin, SpecError
from .build import build_layer, lookup_kind
from .registry import canonical_key

DOCUMENT_KEYS = ("input", "batch", "dtype", "layers")


def _layer_origin(obj: dict, where: str) -> Origin:
    """A compact one-line rendering of the layer object, with each key's span, for carets."""
    parts, spans, offset = [], [], 1
    for key, value in obj.items():
        piece = f"{json.dumps(key)}: {json.dumps(value)}"
        spans.append((str(key), (offset, offset + len(piece))))
        parts.append(piece)
        offset += len(piece) + 2
    text = "{" + ", ".join(parts) + "}"
    type_span = next((span for key, span in spans if key == "type"), (0, len(text)))
    return Origin(text, (("*", type_span), *spans), where=where)


def parse_layer_object(obj, where: str = "layer"):
    """One layer object of a document into a layer spec.

    >>> parse_layer_object({"type": "Conv2d", "out_channels": 64, "kernel_size": 3}).rank
    2
    """
    if not isinstance(obj, dict):
        raise SpecError(
            f"{where} is {type(obj).__name__}, not an object",
            hint='write each layer as an object, e.g. {"type": "Conv2d", "out_channels": 64, "kernel_size": 3}',
            field=where,
        )
    origin = _layer_origin(obj, where)
    kind_name = obj.get("type")
    if not isinstance(kind_name, str):
        raise SpecError(
            f"{where} has no \"type\" naming its kind" if kind_name is None else f"{where}.type must be a string",
            hint='add e.g. "type": "Conv2d"',
            field="type",
            origin=origin,
        )
    kind = lookup_kind(kind_name, origin)
    arguments = {key: value for key, value in obj.items() if key != "type"}
    # spans are looked up by PyTorch's names, whatever key was written
    origin = Origin(origin.text, tuple((canonical_key(kind, k), s) for k, s in origin.spans), where=where)
    return build_layer(kind, arguments, origin)


def parse_document(obj) -> Network:
    """A whole network document into a ``Network``.

    >>> net = parse_document({"input": [3, 32, 32], "layers": [{"type": "conv", "out_channels": 8, "kernel_size": 3}]})
    >>> net.input_shape, net.batch
    ((3, 32, 32), 1)
    """
    if not isinstance(obj, dict):
        raise SpecError(
            f"a network document is a JSON object, not {type(obj).__name__}",
            hint='write {"input": [3, 224, 224], "layers": [...]}',
            field="document",
        )
    for key in obj:
        if key not in DOCUMENT_KEYS:
            raise SpecError(
                f"unknown key {key!r} in the document",
                hint=f"a document has the keys {', '.join(DOCUMENT_KEYS)}",
                field=str(key),
            )
    shape = obj.get("input")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise SpecError(
            f"input must be a list of positive sizes, channels first (got {json.dumps(shape)})",
            hint='e.g. "input": [3, 224, 224]',
            field="input",
        )
    batch = obj.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise SpecError(f"batch must be a positive integer (got {json.dumps(batch)})", hint='e.g. "batch": 8',
                        field="batch")
    dtype = obj.get("dtype", "float32")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {json.dumps(dtype)}", hint=f"use one of {', '.join(DTYPE_BYTES)}",
                        field="dtype")
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise SpecError('a document needs "layers", a list of layer objects', hint='e.g. "layers": [{"type": "relu"}]',
                        field="layers")
    specs = []
    for i, layer in enumerate(layers):
        try:
            specs.append(parse_layer_object(layer, f"layers[{i}]"))
        except SpecError as err:
            raise err.located(layer=i + 1)
    return Network(tuple(shape), tuple(specs), batch, dtype)


def load_document(text: str) -> Network:
    """Parse JSON text into a ``Network``; malformed JSON is a SpecError with the position."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        line = err.doc.splitlines()[err.lineno - 1] if err.doc.splitlines() else ""
        raise SpecError(
            f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}",
            hint="check the document with a JSON validator; keys and strings need double quotes",
            field="document",
            origin=Origin(line, where=f"line {err.lineno}"),
            span=(err.colno - 1, err.colno),
        ) from None
    return parse_document(obj)
