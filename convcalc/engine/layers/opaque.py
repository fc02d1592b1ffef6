"""Operations convcalc cannot cost, kept in the network with their traced shapes."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ShapeError, SpecError
from ..windows import Global
from .base import Figures, Shape, format_shape
from .kind import arg, spell
from .merge import Merge
from .rules import text


@dataclass(frozen=True)
class Opaque(Merge):
    """An operation read from a model (a custom kernel, a cumulative sum) whose output shape is known
    from the trace but whose MACs and FLOPs convcalc cannot compute: it is marked not counted.

    Its parameters (``params``, from the model's tensors) are exact and counted. Its
    receptive field is taken as global: every output may read every input position.

    >>> fig = Opaque("aten.scaled_dot_product_attention", (197, 768)).infer((197, 768))
    >>> fig.counted, fig.output_shape
    (False, (197, 768))
    """

    spellings = (spell("opaque", fields=("op", "output", "params"), positional=("op",), required=("op", "output")),)

    op: str = arg(rule=text)
    output: tuple[int, ...]
    params: int = 0

    def merge(self, shapes: tuple[Shape, ...]) -> Figures:
        if any(n < 0 for n in self.output) or self.params < 0:
            raise ShapeError(f"an opaque layer's output sizes and parameters cannot be negative "
                             f"(output {format_shape(self.output)}, params {self.params})",
                             hint="give the traced output shape and parameter count", field="output")
        first = shapes[0]
        windows = tuple(Global(n) for n in first[1:])
        return Figures(self.op, tuple(self.output), self.params, 0, 0, windows, (),
                       "from " + ", ".join(format_shape(s) for s in shapes), mixes_channels=True, counted=False,
                       dims=(None,) * len(self.output))

    def prepare(self, run, x):
        raise SpecError(f"convcalc cannot execute {self.op}: it knows its shapes from a trace, not its computation",
                        hint="run this model with PyTorch; convcalc run executes the layers it can cost", field="*")
