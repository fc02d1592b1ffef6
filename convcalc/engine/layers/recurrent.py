"""Recurrent layers: ``torch.nn.LSTM``, ``GRU`` and ``RNN``, stacked and bidirectional, costed per time step.

Per sample the input is time steps x features (T x input_size, whatever ``batch_first`` says of
the batch's place) and the output T x D·H (D = 2 when bidirectional, H the hidden size, or
``proj_size`` for a projected LSTM): the layer's first result, as PyTorch's module returns it.

Costs: every step of every layer and direction multiplies the step's input and the previous hidden
state by the gates' weights: G·H·(I + H) multiply-accumulates (G gates: LSTM 4, GRU 3, RNN 1; I the
layer's input size), plus H·P for an LSTM's projection. FLOPs are twice that, plus the biases' adds
(2·G·H with bias) and the gates' own work per hidden unit: LSTM 26 (three sigmoids at 4, two tanh at
5, the cell's two products and sum and the output's product), GRU 17 (two sigmoids, a tanh, the reset
gate's product, the update's three operations), RNN 5 (tanh) or 1 (relu).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import strides
from ..errors import ShapeError
from ..windows import Global
from .base import SAVES_OUTPUT, Figures, Layer, Shape, Use, format_shape, saves_new, saves_steps, times_batch
from .kind import arg, spell
from .rules import probability, word

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
GATE_FLOPS = {"LSTM": 26, "GRU": 17, "RNN": 5}  # per hidden unit and step; RNN with relu: 1
_NAMED = 1000  # layers whose parameter tensors are named one by one
_PAGE = 4096  # oneDNN places each part of an RNN's workspace on a page of its own


def onednn_workspace(steps: int, batch: int, features: int, hidden: int, itemsize: int) -> int:
    """The bytes of oneDNN's workspace for one LSTM layer and direction in training (oneDNN 3.12's
    ``rnn_utils``: ``set_workspace_sizes`` and ``set_offsets``): the gates, the hidden states, the states
    between steps and layers, and their gradients (float32), each part's rows padded to 64 bytes (one
    more 64 where that is a multiple of 256 elements) and each part rounded up to a page.

    >>> onednn_workspace(5, 3, 8, 16, 4), onednn_workspace(50, 16, 128, 256, 4)
    (28672, 12877824)
    """
    def rows(n: int, item: int) -> int:
        padded = -(-n // (64 // item)) * (64 // item)
        return padded + 64 // item if padded % 256 == 0 else padded

    states = 2 * (steps + 1) * batch  # two layers' worth (input and output) of each step's states, and one more
    widest = max(features, hidden)
    parts = (steps * batch * rows(4 * hidden, itemsize) * itemsize, steps * batch * rows(hidden, itemsize) * itemsize,
             states * rows(widest, itemsize) * itemsize, states * hidden * itemsize,
             states * rows(widest, 4) * 4, states * rows(widest, 4) * 4, states * hidden * 4)
    return sum(-(-part // _PAGE) * _PAGE for part in parts)


_FIELDS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")


@dataclass(frozen=True)
class Recurrent(Layer):
    """``torch.nn.LSTM`` / ``GRU`` / ``RNN`` over a sequence (the module's output, not its states).

    >>> fig = Recurrent("LSTM", 256, input_size=128, num_layers=2, bidirectional=True).infer((50, 128))
    >>> fig.output_shape, fig.params
    ((50, 512), 2367488)
    """

    spellings = (spell("lstm", fields=(*_FIELDS, "proj_size"), positional=("hidden_size",),
                       required=("hidden_size",), cell="LSTM"),
                 spell("gru", fields=_FIELDS, positional=("hidden_size",), required=("hidden_size",), cell="GRU"),
                 spell("rnn", fields=(_FIELDS[0], _FIELDS[1], _FIELDS[2], "nonlinearity", *_FIELDS[3:]),
                       positional=("hidden_size",), required=("hidden_size",), cell="RNN"))

    cell: str = arg(internal=True)
    hidden_size: int = 1
    input_size: int | None = None
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = arg(0.0, rule=probability)
    bidirectional: bool = False
    proj_size: int = 0
    nonlinearity: str = arg("tanh", rule=word("tanh", "relu"))

    def infer(self, shape: Shape) -> Figures:
        if len(shape) != 2:
            raise ShapeError(f"{self.cell} reads time steps x features per sample but receives {format_shape(shape)}",
                             hint="give a sequence, e.g. 50x128", field="*")
        steps, features = shape
        if self.input_size is not None and self.input_size != features:
            raise ShapeError(f"input_size={self.input_size} but each step has {features} features",
                             hint="omit input_size to take it from the input", field="input_size")
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ShapeError(f"{name} must be positive (got {getattr(self, name)})", hint=f"give {name} >= 1",
                                 field=name)
        if self.proj_size < 0 or (self.proj_size and self.proj_size >= self.hidden_size):
            raise ShapeError(f"proj_size={self.proj_size} must be 0 or smaller than hidden_size={self.hidden_size}",
                             hint="as PyTorch requires", field="proj_size")
        gates, hidden, directions = GATES[self.cell], self.hidden_size, 2 if self.bidirectional else 1
        out = self.proj_size or hidden
        params = macs = 0
        # the first layer reads the input's features, every later one the layer before: two kinds of layer,
        # counted in closed form (work does not grow with num_layers)
        for size, count in ((features, 1), (directions * out, self.num_layers - 1)):
            products = gates * hidden * (size + out) + (out * hidden if self.proj_size else 0)
            params += count * directions * (products + (2 * gates * hidden if self.bias else 0))
            macs += count * directions * steps * products
        per_unit = 1 if self.cell == "RNN" and self.nonlinearity == "relu" else GATE_FLOPS[self.cell]
        units = self.num_layers * directions * steps * hidden
        flops = 2 * macs + units * (per_unit + (2 * gates if self.bias else 0))
        summary = f"{features}→{directions * out} x{self.num_layers}" + (" bidirectional" if directions == 2 else "")
        return Figures(self.cell, (steps, directions * out), params, macs, flops, (Global(features),), (), summary,
                       mixes_channels=True, tensors=self._tensors(features))

    def _tensors(self, features: int) -> tuple[tuple[str, int], ...]:
        """The parameter tensors by PyTorch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ...), so a model
        that freezes some of them trains the rest. Past _NAMED layers (no model has them) the layer's
        parameters are one tensor, so the work stays bounded by what the input says, not by its numbers."""
        if self.num_layers > _NAMED:
            return ()
        gates, hidden, out = GATES[self.cell], self.hidden_size, self.proj_size or self.hidden_size
        directions = 2 if self.bidirectional else 1
        tensors = []
        for layer in range(self.num_layers):
            width = features if layer == 0 else directions * out
            for suffix in ("", "_reverse")[:directions]:
                tensors += [(f"weight_ih_l{layer}{suffix}", gates * hidden * width),
                            (f"weight_hh_l{layer}{suffix}", gates * hidden * out)]
                if self.bias:
                    tensors += [(f"bias_{kind}_l{layer}{suffix}", gates * hidden) for kind in ("ih", "hh")]
                if self.proj_size:
                    tensors.append((f"weight_hr_l{layer}{suffix}", out * hidden))
        return tuple(tensors)

    def saved(self, use: Use) -> list | None:
        # torch 2.13 on the CPU, measured with saved_tensors_hooks. GRU, RNN and a float64 or projected LSTM
        # run ATen's native steps: each layer projects its whole input at once (a linear layer on the
        # steps-first sequence), then every step projects the previous hidden state and applies the gates.
        # A float32 LSTM without projection runs oneDNN, a layer and direction at a time (``_onednn``);
        # half precision picks its path by the processor, so convcalc does not follow it.
        if use.trainable and use.frozen:  # some of its tensors frozen while others train: not followed
            return None
        if self.cell == "LSTM" and not self.proj_size and use.itemsize != 8:
            return self._onednn(use) if use.itemsize == 4 else None
        (steps, _), batch, size = use.inputs[0], use.batch, use.itemsize
        directions, hidden, trained = 2 if self.bidirectional else 1, self.hidden_size, use.trainable
        # Per layer and direction, in elements per sample: the hidden-state product's input when the weights
        # train, at every step (the zero state, then each step's result; an RNN's results are saved anyway:
        # only its zero state is more); and at every step a GRU's three gates' pre-activations, its candidate's
        # copy and result and its update's copy; an RNN's activation's result; an LSTM's four gates, its
        # cell's tanh and the previous cell state (the zero state first) and, when the projection trains, the
        # projection's input
        out = self.proj_size or hidden
        if self.cell == "RNN":
            states = steps * hidden + (hidden if trained else 0)
        else:
            gates = 6 * hidden + (hidden if self.proj_size and trained else 0)
            states = steps * (gates + (out if trained else 0))
        states *= self.num_layers * directions
        # a later layer reads the layer before's joined output (saved when its weights train) or, with
        # dropout, that output's dropped copy and the float noise
        between = (self.num_layers - 1) * steps * directions * out
        joined = between * (trained + (self.dropout > 0))
        return ([saves_steps(0, self.batch_first, directions)] if trained else []) + \
            [saves_new((states + joined) * batch * size)]

    def _onednn(self, use: Use) -> list:
        """What oneDNN's LSTM (torch 2.13's oneDNN 3.12) saves, per layer and direction: its input, zero
        initial states (one tensor each for all layers), its output and last states, and its workspace;
        ``bias=False`` hands it zero biases of the weights' shapes, which it keeps. A later layer reads the
        layer before's output joined over directions, or dropped (the dropped copy and its noise)."""
        (steps, features), batch, size = use.inputs[0], use.batch, use.itemsize
        directions, hidden, layers = 2 if self.bidirectional else 1, self.hidden_size, self.num_layers
        state = batch * hidden * size
        total = 2 * layers * directions * state
        # the first layer reads the input's features, every later one the layer before: two kinds of layer,
        # counted in closed form (work does not grow with num_layers)
        for width, count in ((features, 1), (directions * hidden, layers - 1)):
            total += count * directions * (2 * state + onednn_workspace(steps, batch, width, hidden, size)
                                           + (0 if self.bias else 4 * hidden * (width + hidden) * size))
        if self.dropout > 0 or directions == 2:  # what joins or drops each layer's output for the next
            total += (layers - 1) * (2 if self.dropout > 0 else 1) * steps * batch * directions * hidden * size
        # each layer's output, but the last one's where it is the layer's result itself (one direction)
        total += (layers - (directions == 1)) * directions * steps * state
        last = [SAVES_OUTPUT] if directions == 1 else []
        return [saves_steps(0, self.batch_first, 1, contiguous=True), saves_new(total), *last]

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """Every path writes the output steps first, (steps, batch, features): ``batch_first`` returns a view."""
        return strides.contiguous_with_batch_at(full, 1)

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # Autograd through the CPU steps (torch 2.13, oneDNN off, as FlopCounterMode sees them): with trained
        # weights, every product's weight gradient (the forward's MACs). Once anything needs a gradient, so do
        # the hidden states: the previous state's gradient at every step but the first (its zero state needs
        # none), the projection's input's at every step, and each later layer's input's at every step; the
        # first layer's input's only when the network's input to it needs one.
        if not (use.trainable or use.inputs_grad[0]):
            return 0
        if use.trainable and use.frozen:  # some of its tensors frozen while others train: not followed
            return None
        (steps, features), batch = use.inputs[0], use.batch
        gates, hidden, directions = GATES[self.cell], self.hidden_size, 2 if self.bidirectional else 1
        out = self.proj_size or hidden
        per_direction = (max(steps - 1, 0) * gates * hidden * out + (steps * out * hidden if self.proj_size else 0)
                         ) * self.num_layers + steps * gates * hidden * directions * out * (self.num_layers - 1)
        first = steps * gates * hidden * features if use.inputs_grad[0] else 0
        return (forward_macs if use.trainable else 0) + batch * directions * (per_direction + first)

    def prepare(self, run, x):
        steps, features = x.shape[1:]
        gates, hidden, directions = GATES[self.cell], self.hidden_size, 2 if self.bidirectional else 1
        out = self.proj_size or hidden
        weights = []
        for layer in range(self.num_layers):
            size = features if layer == 0 else directions * out
            weights.append([(run.uniform((gates * hidden, size), hidden), run.uniform((gates * hidden, out), hidden),
                             run.uniform((gates * hidden,), hidden) if self.bias else None,
                             run.uniform((gates * hidden,), hidden) if self.bias else None,
                             run.uniform((out, hidden), hidden) if self.proj_size else None)
                            for _ in range(directions)])
        return lambda x: run.F.recurrent(x, weights, self.cell, self.nonlinearity)

    def explain_costs(self, report, batch: int) -> list[str]:
        return [f"params: {report.params:,}", f"MACs: {report.input_shape[0]} steps x gates x hidden x "
                f"(input + hidden), every layer and direction = {times_batch(report, batch)}"]

