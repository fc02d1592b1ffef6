"""The text PyTorch prints for ``print(model)``, read as data (never evaluated).

    ResNet(
      (conv1): Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
      (layer1): Sequential(
        (0): BasicBlock(
          ...

Leaves are constructor lines (read by ``parse_constructor``). ``Sequential``
containers run their children in order, and so does the top-level model
(a note says so). Any other nested container is a custom block whose wiring
the text does not show: it is refused by name. The text carries no input
size; it is given separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from math import prod

from ..engine.errors import ConvcalcError, Origin, SpecError
from ..engine.layers import Flatten, Linear
from ..engine.network import Network
from .constructor import parse_constructor

_OPEN = re.compile(r"^(?:\((?P<key>[^)]*)\):\s*)?(?P<cls>[A-Za-z_]\w*)\($")
_LEAF = re.compile(r"^(?:\((?P<key>[^)]*)\):\s*)?(?P<text>[A-Za-z_]\w*\(.*\))$")
# torchvision containers that are Sequential subclasses: children in order
SEQUENTIAL = {"Sequential", "Conv2dNormActivation", "Conv3dNormActivation", "ConvNormActivation", "ConvBNReLU",
              "ConvBNActivation", "ModuleList"}
SKIPPED = {"Identity"}


def looks_printed(text: str) -> bool:
    """Whether text starts like ``print(model)`` output rather than JSON or YAML."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return bool(_OPEN.match(first) or (_LEAF.match(first) and ":" not in first.split("(")[0]))


@dataclass
class _Node:
    cls: str
    name: str
    line: int
    text: str = ""
    children: list = field(default_factory=list)


def _tree(text: str) -> _Node:
    stack: list[_Node] = []
    root = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line == ")":
            if not stack:
                raise SpecError(f"line {number}: a closing ) with nothing open", hint="paste the whole print(model) output",
                                field="document", origin=Origin(raw, where=f"line {number}"))
            node = stack.pop()
            if not stack:
                root = node
            continue
        opened, leaf = _OPEN.match(line), _LEAF.match(line)
        match = opened or leaf
        if match is None or root is not None:
            raise SpecError(f"line {number}: cannot read {line!r} as part of print(model) output",
                            hint="paste the output of print(model) unchanged", field="document",
                            origin=Origin(raw, where=f"line {number}"))
        key = match.group("key")
        parent = stack[-1] if stack else None
        name = key if parent is None or not parent.name else f"{parent.name}.{key}"
        if parent is None:
            name = ""
        if opened:
            node = _Node(opened.group("cls"), name, number)
            if parent is not None:
                parent.children.append(node)
            stack.append(node)
        else:
            text_ = leaf.group("text")
            node = _Node(text_.split("(")[0], name, number, text=text_)
            if parent is None:
                root = node
            else:
                parent.children.append(node)
    if stack or root is None:
        raise SpecError("the print(model) text ends with a container still open",
                        hint="paste the whole output, down to its last )", field="document")
    return root


def _leaves(node: _Node, path: tuple[str, ...], is_root: bool, notes: list):
    if node.text:  # a constructor line
        if node.cls in SKIPPED:
            return
        try:
            layer = parse_constructor(node.text)
        except ConvcalcError as err:
            err.origin = replace(err.origin, where=f"line {node.line} ({node.name or node.cls})") if err.origin else None
            raise
        origin = replace(layer.origin, where=f"line {node.line} ({node.name or node.cls})")
        yield replace(layer, name=node.name or None, path=path, origin=origin)
        return
    if node.cls not in SEQUENTIAL and not is_root:
        raise SpecError(
            f"line {node.line}: {node.cls} {node.name!r} is a custom block: print(model) does not show how its "
            f"children are wired, and convcalc does not guess",
            hint="describe it in a network document, with blocks and from (see docs/documents.md), or use a preset",
            field="document",
            origin=Origin(f"({node.name.rsplit('.', 1)[-1]}): {node.cls}(", where=f"line {node.line}"),
        )
    if is_root and node.cls not in SEQUENTIAL:
        notes.append(f"{node.cls}'s children are taken in printed order; check that its forward() runs them so")
    for child in node.children:
        yield from _leaves(child, (*path, child.name) if not child.text else path, False, notes)


def load_printed(text: str, input_shape: tuple[int, ...] | None, batch: int = 1, dtype: str = "float32") -> Network:
    """A ``print(model)`` text and an input shape into a Network.

    >>> net = load_printed("Sequential(\\n  (0): Conv2d(3, 8, kernel_size=(3, 3))\\n  (1): ReLU()\\n)", (3, 8, 8))
    >>> [layer.name for layer in net.layers]
    ['0', '1']
    """
    if input_shape is None:
        raise SpecError("print(model) text carries no input size", hint="give it, e.g. --input 3x224x224",
                        field="input")
    notes: list[str] = []
    layers = list(_leaves(_tree(text), (), True, notes))
    if not layers:
        raise SpecError("the print(model) text has no layers", hint="paste a model with layers", field="document")
    layers = _flatten_before_linear(layers, tuple(input_shape))
    if notes:
        layers[0] = replace(layers[0], remark=layers[0].remark + tuple(notes))
    return Network(tuple(input_shape), tuple(layers), batch, dtype)


def _flatten_before_linear(layers, shape):
    """Insert the Flatten that classifiers (VGG, AlexNet) do in forward(), which the text does not show."""
    out = []
    for layer in layers:
        if (shape is not None and isinstance(layer, Linear) and len(shape) > 1
                and layer.in_features == prod(shape) != shape[-1]):
            remark = (f"Flatten inserted before {layer.name or 'this Linear'}: its {layer.in_features} in_features "
                      f"are the flattened {'x'.join(map(str, shape))}, as forward() flattens there",)
            flatten = Flatten(name=f"{layer.name}.flatten" if layer.name else None, path=layer.path, remark=remark)
            out.append(flatten)
            shape = (layer.in_features,)
        out.append(layer)
        if shape is not None:
            try:
                shape = layer.infer(shape).output_shape
            except ConvcalcError:
                shape = None  # the analysis reports it, with the layer's number
    return out
