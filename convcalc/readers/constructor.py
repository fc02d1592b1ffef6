"""PyTorch constructor text, as ``print(model)`` shows it, read as data.

``Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)``
is parsed with ``ast`` and only literal arguments are accepted: nothing is
ever evaluated. Bare words (``padding=same``, as PyTorch prints it) are
taken as strings.
"""

from __future__ import annotations

import ast

from ..engine.errors import Origin, SpecError
from .build import build_layer, lookup_kind


def _literal(node: ast.AST, text: str, origin: Origin):
    if isinstance(node, ast.Name):  # PyTorch prints padding=same without quotes
        return node.id
    try:
        value = ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        raise SpecError(
            f"{ast.get_source_segment(text, node)!r} is not a literal value",
            hint="use numbers, tuples, strings, True/False or None",
            origin=origin,
            span=(node.col_offset, node.end_col_offset),
        ) from None
    return value


def parse_constructor(text: str):
    """Parse ``Name(args...)`` into a layer spec.

    >>> parse_constructor("MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)").stride
    2
    """
    whole = Origin(text, (("*", (0, len(text))),))
    if not text.isprintable() and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise SpecError(f"{text!r} is not UTF-8 text", hint="write the constructor in UTF-8", origin=whole)
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        column = max((err.offset or 1) - 1, 0)
        raise SpecError(
            f"cannot read {text!r} as a constructor: {err.msg}",
            hint="write it as PyTorch prints it, e.g. Conv2d(3, 64, kernel_size=(3, 3))",
            origin=whole,
            span=(column, column + 1),
        ) from None
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise SpecError(
            "expected a constructor such as Conv2d(3, 64, kernel_size=(3, 3))",
            hint="write Name(arguments), as print(model) shows it",
            origin=whole,
        )
    name_span = (tree.func.col_offset, tree.func.end_col_offset)
    spans: list[tuple[str, tuple[int, int]]] = [("*", name_span)]
    origin = Origin(text, tuple(spans))
    kind = lookup_kind(tree.func.id, origin)
    if len(tree.args) > len(kind.fields):
        extra = tree.args[len(kind.fields)]
        raise SpecError(
            f"{tree.func.id} takes at most {len(kind.fields)} positional arguments",
            hint="name the extra arguments",
            origin=origin,
            span=(extra.col_offset, extra.end_col_offset),
        )
    arguments: dict = {}
    for name, node in zip(kind.fields, tree.args):
        arguments[name] = _literal(node, text, origin)
        spans.append((name, (node.col_offset, node.end_col_offset)))
    for keyword in tree.keywords:
        span = (keyword.col_offset, keyword.end_col_offset)
        if keyword.arg is None:
            raise SpecError("**arguments are not accepted", hint="name each argument", origin=origin, span=span)
        if keyword.arg in arguments:
            raise SpecError(f"{keyword.arg} is given twice", hint="give each argument once", origin=origin, span=span)
        arguments[keyword.arg] = _literal(keyword.value, text, origin)
        spans.append((keyword.arg, span))
    try:
        return build_layer(kind, arguments, Origin(text, tuple(spans)))
    except SpecError as err:
        name = tree.func.id
        if name[-2:] in ("1D", "2D", "3D") and name[:-2] in ("Conv", "ConvTranspose", "Conv2DTranspose"):
            # Keras spells it Conv2D(filters, kernel_size, ...); PyTorch's order starts with in_channels
            err.hint = (f"{err.hint}; {name} is Keras's spelling, whose arguments are (filters, kernel_size): "
                        f"PyTorch's {name[:-1]}d takes (in_channels, out_channels, kernel_size), "
                        f"e.g. conv:{_first_int(tree.args)},k=3")
        raise


def _first_int(nodes) -> str:
    for node in nodes:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return str(node.value)
    return "64"
