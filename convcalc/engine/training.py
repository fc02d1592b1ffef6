"""The cost of a training step: each layer's MACs forward and backward, and their totals.

The backward pass is counted as autograd runs it (torch 2.13's derivatives; attention by
PyTorch's math backend), asked of each layer's kind (``backward_macs``). A product's backward
is up to two products as large as the forward one: the input's gradient, only where the input
needs one, and the weights' gradient, only where they are trained. The network's input needs
no gradient, so the first convolution computes no input gradient; a frozen backbone computes
neither until the first trained layer, and only input gradients after it. Which inputs need a
gradient is decided once, in ``engine/memory.py`` (``training_uses``), for the memory figures
too.

These are the counts of ``torch.utils.flop_counter.FlopCounterMode`` over a forward and a
backward (halved: it counts two FLOPs per MAC), but for one error of its own: torch 2.13 counts
a grouped convolution's weight gradient as if ``groups`` were 1 (``groups`` times too many
MACs, the channels times for a depthwise convolution); convcalc counts it as computed. A layer
whose backward convcalc does not know (an opaque operation) is named, and the totals are then
not exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from .memory import gradient_reached, memo, training_uses

__all__ = ["LayerTraining", "TrainingCost", "training_macs"]


@dataclass(frozen=True)
class LayerTraining:
    """One layer's MACs in a training step, for the batch: ``backward`` is None where unknown."""

    index: int  # numbered from 1, as the layer reports are
    forward: int
    backward: int | None

    @property
    def total(self) -> int | None:
        return None if self.backward is None else self.forward + self.backward


@dataclass(frozen=True)
class TrainingCost:
    """The MACs of a training step (a forward and a backward pass) for the batch, per layer in the
    order of ``analysis.layers`` and in total. ``exact`` is False when some layer's backward is
    unknown: ``unknown`` names those layers (numbered from 1), ``backward_macs`` leaves them out and
    ``training_macs`` is None."""

    layers: tuple[LayerTraining, ...]
    forward_macs: int
    backward_macs: int
    unknown: tuple[int, ...]

    @property
    def exact(self) -> bool:
        return not self.unknown

    @property
    def training_macs(self) -> int | None:
        """Forward plus backward, or None when some layer's backward is unknown."""
        return self.forward_macs + self.backward_macs if self.exact else None


def training_macs(analysis) -> TrainingCost:
    """The MACs of one training step over ``analysis``'s batch: each layer's forward and backward.

    >>> from convcalc import analyse_tokens
    >>> cost = training_macs(analyse_tokens("3x8x8", "conv:4,k=3,p=1", "relu", "conv:4,k=3,p=1"))
    >>> [(t.forward, t.backward) for t in cost.layers]  # the first conv computes no input gradient
    [(6912, 6912), (0, 0), (9216, 18432)]
    >>> cost.training_macs, cost.exact
    (41472, True)
    """
    return memo(analysis, "training_macs", lambda: _training_macs(analysis))


def _training_macs(analysis) -> TrainingCost:
    uses = training_uses(analysis)
    reached = gradient_reached(analysis)
    layers = []
    for report in analysis.layers:
        i = report.index - 1
        use = uses[i]
        forward = report.macs if report.counted else 0
        if use is None or i not in reached:  # nothing here needs a gradient, or none comes back to it
            backward = 0
        elif not report.counted:  # its forward is unknown, and so is its backward
            backward = None
        else:
            backward = analysis.network.layers[i].backward_macs(use, report.macs)
        layers.append(LayerTraining(report.index, forward, backward))
    return TrainingCost(
        layers=tuple(layers),
        forward_macs=sum(t.forward for t in layers),
        backward_macs=sum(t.backward for t in layers if t.backward is not None),
        unknown=tuple(t.index for t in layers if t.backward is None),
    )
