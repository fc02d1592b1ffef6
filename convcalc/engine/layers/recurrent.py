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

from ..errors import ShapeError
from ..windows import Global
from .base import Figures, Layer, Shape, Use, format_shape, times_batch
from .kind import arg, spell
from .rules import probability, word

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
GATE_FLOPS = {"LSTM": 26, "GRU": 17, "RNN": 5}  # per hidden unit and step; RNN with relu: 1
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
                       mixes_channels=True)

    def saved(self, use: Use) -> list | None:
        return None  # not yet checked against autograd's saved tensors: the training figure says so

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # Autograd through the CPU steps (torch 2.13, oneDNN off, as FlopCounterMode sees them): with trained
        # weights, every product's weight gradient (the forward's MACs). Once anything needs a gradient, so do
        # the hidden states: the previous state's gradient at every step but the first (its zero state needs
        # none), the projection's input's at every step, and each later layer's input's at every step; the
        # first layer's input's only when the network's input to it needs one.
        if not (use.trainable or use.inputs_grad[0]):
            return 0
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

