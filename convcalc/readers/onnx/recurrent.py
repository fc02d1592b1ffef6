"""ONNX's LSTM, GRU and RNN as the kind ``Recurrent``: one layer of one or two directions per node, its
``layout`` (0: time first, the batch second; 1: the batch first), and the outputs read: Y (time x
directions x hidden per sample) and the last states Y_h and Y_c (directions x hidden)."""

from __future__ import annotations

from ...engine import layers as L
from ..pytorch.values import Act, Unsupported
from .batch import PLAIN, placement, refuse
from .node import Node

_DIRECTIONS = ("forward", "reverse", "bidirectional")
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
_DEFAULT_ACTIVATIONS = {"LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",)}


def recurrent(node: Node):
    """The ``Recurrent`` spec, the input it reads, and per output index the specs after it and the
    output's placement."""
    cell = node.op
    x = node.act(0, moved=True)
    layout = node.int("layout", 0)
    if layout not in (0, 1):
        raise node.error(f"attribute 'layout' is {layout}, not 0 or 1")
    wanted = PLAIN if layout else (1, 1, 1)
    if placement(x) != wanted or len(x.shape) != 2:
        raise refuse(node, f"reads a tensor whose batch is not on axis {1 - layout} alone (layout={layout}): "
                           "the steps of one sample would mix with others")
    steps, features = x.shape
    hidden = node.int("hidden_size", required=True, minimum=1)
    direction = node.string("direction", "forward", choices=_DIRECTIONS)
    directions = 2 if direction == "bidirectional" else 1
    gates = _GATES[cell]
    w = node.weight(1, "weight_ih", required=True, rank=3)
    r = node.weight(2, "weight_hh", required=True, rank=3)
    b = node.weight(3, "bias")
    for array, size, role in ((w, features, "W"), (r, hidden, "R")):
        if tuple(array.shape) != (directions, gates * hidden, size):
            raise node.error(f"input {role} has the shape {'x'.join(map(str, array.shape))}, not "
                             f"{directions}x{gates * hidden}x{size}")
    if b is not None and tuple(b.shape) != (directions, 2 * gates * hidden):
        raise node.error(f"input B has the shape {'x'.join(map(str, b.shape))}, not {directions}x{2 * gates * hidden}")
    for index, what in ((4, "sequence_lens"), (5, "initial_h"), (6, "initial_c")):
        if index < len(node.inputs) and isinstance(node.inputs[index], Act):
            raise Unsupported(f"{cell} with {what} computed from the input")
    if cell == "LSTM" and len(node.inputs) > 7 and node.inputs[7] is not None:
        raise Unsupported("LSTM with peepholes")
    activations = node.strings("activations")
    nonlinearity = "tanh"
    if cell == "RNN" and activations and activations[0] == "Relu":
        nonlinearity = "relu"
    elif activations and tuple(activations[:len(_DEFAULT_ACTIVATIONS[cell])]) != _DEFAULT_ACTIVATIONS[cell]:
        raise Unsupported(f"{cell} with the activations {', '.join(activations)}")
    core = L.Recurrent(cell, hidden, input_size=features, bias=b is not None, bidirectional=directions == 2,
                       nonlinearity=nonlinearity)
    state = (directions, hidden)
    outputs = {
        0: ([L.Reshape((steps, directions, hidden))], PLAIN if layout else (2, 1, 1)),
        1: ([L.Select(1, steps - 1), L.Reshape(state)], PLAIN if layout else (1, 1, 1)),
        2: ([L.Select(1, steps - 1), L.Reshape(state)], PLAIN if layout else (1, 1, 1)),
    }
    return core, x, outputs
