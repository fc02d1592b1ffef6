"""Readers: every source of layers and networks (shell tokens, constructor text, JSON and YAML
documents with blocks, print(model) text) turned into the same immutable ``Network``."""

from .constructor import parse_constructor
from .document import load_document, parse_document, parse_layer_object
from .registry import find_kind, token_names
from .tokens import parse_layer, parse_shape

__all__ = [
    "find_kind", "load_document", "parse_constructor", "parse_document", "parse_layer", "parse_layer_object",
    "parse_shape", "token_names",
]
