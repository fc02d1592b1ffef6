"""Tensors a file makes without reading its input, read as ``Constant`` layers.

Three cases start such a layer. Fixed values a learned product reads (Swin V2's position-bias MLP on
its table of relative coordinates, as the TorchScript exporter writes it): the table is a Constant, the
product and what follows are layers computed without the input. A stored product (the same MLP as
torch.export writes it: its first layer's product with the table folded into one initializer, its bias
added in the graph, the rest computed by layers): the initializer is a learned Constant, whose values
are counted as parameters, as the file holds them; the folded product itself is no work the file does.
Both are read at batch 1 only, where the file runs such layers once as convcalc counts them. And a
fixed tensor repeated over the batch beside the input's activations: one sample's copy, made per
sample, as PyTorch makes it for every sample.
"""

from __future__ import annotations

from ...engine import layers as L
from ..pytorch.values import Act
from .attributes import Attributes, label
from .batch import FREE
from .constant import Const
from .fold import FOLDED

# Operators that read a learned tensor as their weight: a constant they read is an operand, not a start
_PRODUCTS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "Einsum"}


def fixed_product(inputs) -> bool:
    """Whether a product's operands are fixed float values and a learned weight (a float initializer); values
    computed from the input's shape (torch.export's zero state for nn.RNN, of the batch's size) are not fixed."""
    if len(inputs) < 2 or not all(isinstance(v, Const) for v in inputs[:2]) or inputs[0].sized:
        return False
    data, weight = inputs[0], inputs[1]
    return data.array.dtype.kind == "f" and data.array.ndim >= 1 and weight.array.dtype.kind == "f" and \
        bool(weight.initializer) and weight.array.ndim == 2


def stored_product(reader, node, inputs) -> int | None:
    """The input of an Add of two float initializers (the file's own, not values made from them) that is a
    stored product, where every reader takes the sum as its data and only a layer can compute it (an
    operator convcalc does not evaluate on constants, such as a Relu): the operand of the sum's shape,
    the other being the bias. None where the sum is a constant convcalc folds, or a parameter a layer
    on the activations reads (PRelu's slope, LayerNormalization's scale)."""
    if node.op_type != "Add" or len(inputs) != 2 or not all(
            isinstance(v, Const) and v.initializer == name and v.array.dtype.kind == "f" and not v.sized
            for name, v in zip(node.input, inputs)):
        return None
    readers = reader.readers.of(node.output[0])
    if not readers or not all(k == 0 and op and op not in FOLDED | _PRODUCTS for op, k, _ in readers):
        return None
    sizes = [v.array.size for v in inputs]
    return 0 if sizes[0] >= sizes[1] else 1


def constant(reader, node, index: int, k: int, value, *, learned: bool = False) -> Act:
    """The Constant layer for ``value``, the node's input ``k`` (fixed values a learned product reads; with
    ``learned``, a stored product whose values are parameters): the start of layers computed without the
    input, made once a tensor value."""
    if reader.batch != 1:
        what = ("adds a bias to a stored product of a learned weight and fixed values" if learned else
                "multiplies a learned weight by fixed values")
        raise Attributes(node, index).error(
            f"{what} (a position-bias MLP on a fixed table): layers computed without the input are read at "
            "batch 1 only, where the file runs them once as convcalc counts them",
            hint="read the file at batch 1 (--batch 1) and multiply the figures")
    key = (node.input[k], learned)  # one layer a tensor value (an Expand of a table is another value)
    if key not in reader.fixed:
        if learned:  # a name in the scope of the node that adds its bias (a file's own names are val_4, ...)
            name = reader.name(node, index, ".product")
            path, weights = tuple(part for part in name.split("/") if part)[:-1], (("weight", value.initializer),)
        else:
            name = reader.name(node, index, base=value.initializer or f"{node.name or node.output[0]}.fixed")
            path, weights = (), ()
        shape = tuple(int(n) for n in value.array.shape)
        reader.fixed[key] = reader.emit("", [(L.Constant(shape, learned), [reader.source])], name, path, weights,
                                        label(node, index), FREE)
        reader.values.pop("", None)
    return reader.fixed[key]


def copy(reader, node, index: int, value) -> Act:
    """A Constant layer of one sample's copy of a fixed tensor repeated over the batch, read beside the
    input's activations (or by a convolution): made per sample, as PyTorch makes it for every sample."""
    name = reader.name(node, index, ".fixed")
    shape = tuple(int(n) for n in value.array.shape[1:])
    made = reader.emit("", [(L.Constant(shape), [reader.source])], name, (), (), label(node, index))
    reader.values.pop("", None)
    return made
