"""ONNX's sequences and control flow, read where the file fixes how they run: the TorchScript exporter
writes ``torch.split`` and ``tensor_split`` of an activation (MViT's class token split from its pooled
tokens) as a Loop with a constant trip count that appends slices to a sequence, then SequenceAt.

A sequence is held as the tuple of values it holds (activations or constants). A Loop is unrolled: its
body is read once an iteration (its trip count and condition must be constants; its layers named as the
body's nodes, counted once an iteration), its loop-carried values passed on; scan outputs, which stack
each iteration's value, are refused. An If whose condition is a constant is its chosen branch. Anything
else is one refusal naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pytorch.values import Act
from .attributes import Attributes
from .constant import Const

# The most body nodes the Loops may make convcalc read in all (each one's trip count times its body's nodes,
# nested loops included): the work stays bounded by the file, whatever trip counts it writes
MAX_UNROLLED = 10_000
SEQUENCES = {"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceAt", "SequenceLength"}
CONTROL = {"Loop", "If"}


@dataclass(frozen=True)
class Sequence:
    """An ONNX sequence: the values it holds, in order."""

    items: tuple = ()


def sequence(reader, node, attrs: Attributes, inputs) -> None:
    """A sequence operator: its output in ``reader.values``."""
    op = node.op_type
    if op == "SequenceEmpty":
        result = Sequence()
    elif op == "SequenceConstruct":
        if any(isinstance(v, Sequence) or v is None for v in inputs):
            raise attrs.error("builds a sequence from something other than tensors")
        result = Sequence(tuple(inputs))
    else:
        held = inputs[0] if inputs else None
        if not isinstance(held, Sequence):
            raise attrs.error("input 0 is not a sequence")
        items = list(held.items)
        if op == "SequenceLength":
            result = Const(np.array(len(items), dtype=np.int64))
        elif op == "SequenceAt":
            result = items[_position(attrs, inputs, 1, len(items), False)]
        else:  # SequenceInsert: at the position given, else at the end
            value = inputs[1] if len(inputs) > 1 else None
            if value is None or isinstance(value, Sequence):
                raise attrs.error("input 1 is not a tensor to insert")
            at = len(items) if len(inputs) < 3 or inputs[2] is None else \
                _position(attrs, inputs, 2, len(items), True)
            items.insert(at, value)
            result = Sequence(tuple(items))
    reader.values[node.output[0]] = result


def _position(attrs: Attributes, inputs, index: int, length: int, insert: bool) -> int:
    """A fixed position in a sequence of ``length``, negative counted from the back: one of its items, or
    for an insertion one of the length + 1 places (ONNX's ranges [-n, n - 1] and [-n, n])."""
    value = inputs[index] if len(inputs) > index else None
    if value is None or isinstance(value, (Act, Sequence)) or np.asarray(value.array).size != 1 or \
            value.array.dtype.kind not in "iu":
        raise attrs.error(f"input {index} (position) is not one integer fixed in the file")
    position = int(np.asarray(value.array).reshape(-1)[0])
    if not -length <= position < length + insert:
        raise attrs.error(f"position {position} is outside a sequence of {length}")
    return position + length if position < 0 else position


def loop(reader, node, index: int, attrs: Attributes, inputs) -> None:
    """A Loop with a constant trip count and condition, unrolled into its body's layers."""
    body = attrs.graph("body", required=True)
    trips = inputs[0] if inputs else None
    if trips is None or isinstance(trips, (Act, Sequence)) or trips.array.size != 1 or \
            trips.array.dtype.kind not in "iu":
        raise attrs.error("has no trip count fixed in the file (input 0); convcalc unrolls only such loops",
                          hint="export the model with its loops unrolled (a fixed split)")
    count = int(trips.array.reshape(-1)[0])
    carried = list(inputs[2:])
    if len(body.input) != 2 + len(carried) or len(body.output) < 1 + len(carried):
        raise attrs.error(f"has a body of {len(body.input)} inputs and {len(body.output)} outputs for "
                          f"{len(carried)} loop-carried values")
    if len(body.output) > 1 + len(carried):
        raise attrs.error("stacks a value of each iteration (a scan output), which convcalc does not read",
                          hint="export the model with its loops unrolled")
    reader.unrolled += max(count, 0) * max(len(body.node), 1)  # loops within loops add up
    if reader.unrolled > MAX_UNROLLED:
        raise attrs.error(f"runs {count:,} iterations of {len(body.node):,} nodes, which takes the loops' nodes "
                          f"over the {MAX_UNROLLED:,} convcalc unrolls")
    going = _condition(attrs, inputs[1] if len(inputs) > 1 else None)
    for i in range(max(count, 0)):
        if not going:
            break
        number = np.array([i] if _declared_rank(body.input[0]) == 1 else i, dtype=np.int64)
        bound = [Const(number), Const(np.array(True))] + carried
        results = _run(reader, attrs, body, bound, index)
        going = _condition(attrs, results[0])
        carried = results[1:]
    for output, value in zip(node.output, carried):
        if output:
            reader.values[output] = value


def branch(reader, node, index: int, attrs: Attributes, inputs) -> None:
    """An If whose condition is fixed in the file: the branch it takes."""
    taken = _condition(attrs, inputs[0] if inputs else None)
    graph = attrs.graph("then_branch" if taken else "else_branch", required=True)
    if len(graph.output) != len(node.output):
        raise attrs.error(f"has a branch of {len(graph.output)} outputs for its {len(node.output)}")
    for output, value in zip(node.output, _run(reader, attrs, graph, [], index)):
        if output:
            reader.values[output] = value


def _condition(attrs: Attributes, value) -> bool:
    if value is None:
        return True
    if isinstance(value, (Act, Sequence)) or np.asarray(value.array).size != 1:
        raise attrs.error("has a condition computed from the input; convcalc reads only control flow the file "
                          "fixes", hint="export the model with its control flow traced")
    return bool(np.asarray(value.array).reshape(-1)[0])


def _declared_rank(info) -> int | None:
    kind = info.type.tensor_type
    return len(kind.shape.dim) if kind.HasField("shape") else None


def _run(reader, attrs: Attributes, graph, bound: list, index: int) -> list:
    """The outputs of ``graph`` read with its inputs bound to ``bound``; the names it defines are forgotten
    after it, so the next iteration defines them again (outer names stay visible, as ONNX scopes them)."""
    before = set(reader.values)
    for info, value in zip(graph.input, bound):
        if info.name in reader.values:
            raise attrs.error(f"a subgraph input {info.name[:60]!r} hides a name already defined")
        reader.values[info.name] = value
    for inner in graph.node:
        reader.read_node(inner, index)
    missing = [o.name for o in graph.output if o.name not in reader.values]
    if missing:
        raise attrs.error(f"a subgraph output {missing[0][:60]!r} is made by no node")
    results = [reader.values[o.name] for o in graph.output]
    for name in set(reader.values) - before:
        del reader.values[name]
    return results
