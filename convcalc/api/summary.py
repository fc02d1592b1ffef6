"""``convcalc.summary()``: torchinfo's one call, for any source convcalc reads, and the ``Summary``
it returns, shown as ``convcalc shape`` shows it (plain text, Rich, HTML in Jupyter) and given as
its JSON object, a DataFrame, or the engine's reports.

>>> import convcalc
>>> s = convcalc.summary(["conv:16,k=3,p=1", "relu", "maxpool:2"], "3x32x32")
>>> s
<Summary of 3 layer tokens: input 1x3x32x32 float32, 448 params, 442,368 MACs>
>>> s.totals.params, s.layers[0].output_shape, s.output_shape
(448, (16, 32, 32), (16, 16, 16))
>>> s.to_dict()["schema"]
'convcalc.shape/1'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine.errors import SpecError
from ..engine.memory import OPTIMIZERS
from .inputs import resolve

if TYPE_CHECKING:
    from ..engine.devices import Device
    from ..engine.network import Analysis, LayerReport, Totals

# What a torch.device names: convcalc never runs the model, so none of these means anything to it.
_TORCH_DEVICES = ("cpu", "cuda", "mps", "xpu", "meta", "xla", "hpu", "npu")


def summary(model_or_source, input_size=None, *, input_data=None, batch: int | None = None, dtype=None,
            depth: int | None = None, device=None, optimizer: str = "adam") -> Summary:
    """Every layer's output shape, parameters and MACs, the totals and the memory, as ``convcalc
    shape`` computes them, for a model or any source convcalc reads:

    - a ``torch.nn.Module`` with torchinfo's ``input_size`` (the batch first: ``(1, 3, 224, 224)``)
      or ``input_data`` (a tensor: its shape and dtype);
    - an ONNX model: a path (``str`` or ``pathlib.Path``) or the file's bytes;
    - a document: a path (``.json``, ``.yaml``, ``.yml``, ``.txt``, or any existing file), its text
      (JSON, YAML or ``print(model)`` text), or a ``dict``;
    - a preset name (``"resnet18"``), or a ``"module:attribute"`` model as ``--model`` takes it;
    - a list of layer tokens (``["conv:64,k=3", "relu"]``) with the input shape.

    ``input_size`` given as a string (``"3x224x224"``) is the command line's INPUT: per sample,
    without the batch; as a tuple of ints it is torchinfo's, the batch first. For a document, a
    preset or an ONNX model it replaces the source's own input shape. ``batch`` and ``dtype``
    (``"float16"`` or ``torch.float16``) replace the source's own; ``depth`` folds the tables
    (text, Rich, HTML) as ``--depth`` does; ``device`` is a roofline device (``"a100-80gb"``), not where to run
    (convcalc never runs the model); ``optimizer`` sets the training memory (sgd, momentum, adam,
    adamw). Every error is a ``convcalc.ConvcalcError`` with a one-line message and a hint.

    >>> import convcalc, torch
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                             torch.nn.Linear(8 * 16 * 16, 10))
    >>> s = convcalc.summary(model, (1, 3, 16, 16))
    >>> s.totals.params == sum(p.numel() for p in model.parameters())
    True
    >>> [layer.name for layer in s.layers]
    ['0', '1', '2', '3']
    >>> convcalc.summary(model, (3, 16, 16))
    Traceback (most recent call last):
    convcalc.engine.errors.SpecError: input_size (3, 16, 16) has 3 dimensions; the model's first layer, Conv2d, takes 4 (batch, channels, height, width)
    """
    if optimizer not in OPTIMIZERS:
        raise SpecError(f"unknown optimizer {str(optimizer)[:40]!r}", hint=f"use one of {', '.join(OPTIMIZERS)}",
                        field="optimizer")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
        raise SpecError(f"depth must be 0 or more (got {depth!r:.40})", hint="e.g. depth=1", field="depth")
    target = _device(device)
    network, label = resolve(model_or_source, input_size, input_data, batch=batch, dtype=dtype)
    from ..engine.analysis import analyse

    return Summary(analyse(network), label, optimizer, depth, target)


def _device(device):
    """The roofline device ``device`` names (None: none), refusing where PyTorch would run."""
    from ..engine.devices import Device

    if device is None or isinstance(device, Device):
        return device
    name = str(device)
    if type(device).__name__ == "device" or name.split(":")[0].lower() in _TORCH_DEVICES:
        raise SpecError(f"device={name[:40]!r} is where PyTorch runs; convcalc never runs the model",
                        hint="drop it, or name a roofline device such as device='a100-80gb' for time bounds",
                        field="device")
    from ..engine.devices import DEVICES
    from ..engine.roofline import find_device

    try:
        return find_device(name)
    except SpecError as err:  # the command line's hint names its options; this one names Python's
        raise SpecError(err.message, hint=f"use one of {', '.join(DEVICES)}, or a convcalc.Device(name, "
                        "peak, bandwidth, source) of your own", field="device") from None


@dataclass(frozen=True, repr=False)
class Summary:
    """What ``summary()`` found: ``print()`` it for the table ``convcalc shape`` prints, show it in
    Jupyter for an HTML table, or read its figures.

    ``layers`` are the engine's ``LayerReport``s (figures for the whole batch), ``totals`` its
    ``Totals``, ``analysis`` the whole ``Analysis``; ``to_dict()`` is the ``convcalc.shape/1``
    object ``convcalc shape --json`` prints, ``to_dataframe()`` a row per layer.

    >>> import convcalc
    >>> s = convcalc.summary("resnet18", batch=2)
    >>> repr(s)
    '<Summary of resnet18: input 2x3x224x224 float32, 11,689,512 params, 3,628,146,688 MACs>'
    >>> print(s)  # doctest: +ELLIPSIS
    #...
    ...input...3x224x224...
    ...
    ...total...1000...11.7 M...3.63 G...
    ...
    """

    analysis: Analysis
    source: str  # what was summarised, in a few words: a model's class, a path, a preset, "document"
    optimizer: str = "adam"
    depth: int | None = None
    device: Device | None = None

    @property
    def layers(self) -> tuple[LayerReport, ...]:
        """Each layer's report (``convcalc.LayerReport``), in order."""
        return self.analysis.layers

    @property
    def totals(self) -> Totals:
        """The sums over every layer (``convcalc.Totals``)."""
        return self.analysis.totals

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The network's output shape, per sample."""
        return self.analysis.output_shape

    def to_dict(self) -> dict:
        """The ``convcalc.shape/1`` object, as ``convcalc shape --json`` prints it for the same source."""
        return self.analysis.to_dict(self.optimizer, self.device)

    def to_dataframe(self):
        """A pandas DataFrame with a row per layer: index, name, type, summary, shapes, params,
        trainable params, MACs, FLOPs, bytes, and whether its MACs are counted (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise SpecError("to_dataframe() needs pandas, which is not installed",
                            hint="install it, e.g. pip install pandas (or use to_dict())", field="pandas") from None
        return pandas.DataFrame([
            {"index": r.index, "name": r.name, "type": r.type, "summary": r.summary, "input_shape": r.input_shape,
             "output_shape": r.output_shape, "params": r.params, "trainable_params": r.trainable, "macs": r.macs,
             "flops": r.flops, "activation_bytes": r.activation_bytes, "param_bytes": r.param_bytes,
             "counted": r.counted} for r in self.layers],
            columns=["index", "name", "type", "summary", "input_shape", "output_shape", "params", "trainable_params",
                     "macs", "flops", "activation_bytes", "param_bytes", "counted"])

    def _table(self):
        from ..output.reports import shape_table

        return shape_table(self.analysis, self.depth, self.optimizer, self.device)

    def __str__(self) -> str:
        from ..output.render import render_plain

        return render_plain(self._table())

    def __repr__(self) -> str:
        from ..engine.escape import escape

        net, totals = self.analysis.network, self.totals
        shape = "x".join(map(str, (net.batch, *net.input_shape)))
        return (f"<Summary of {escape(self.source)[:80]}: input {shape} {net.dtype}, {totals.params:,} params, "
                f"{totals.macs:,} MACs>")

    def __rich_console__(self, console, options):
        """The table as ``convcalc shape`` draws it on a terminal, fitted to the width Rich gives: drawn
        on a console of that width and colour, and handed over as styled text."""
        import io

        from rich.console import Console
        from rich.text import Text

        from ..output.render import render_rich

        out = io.StringIO()
        inner = Console(file=out, width=options.max_width, force_terminal=True, color_system=console.color_system,
                        no_color=console.no_color, legacy_windows=False)
        render_rich(self._table(), inner)
        yield Text.from_ansi(out.getvalue().rstrip("\n"), no_wrap=True, overflow="ignore")

    def _repr_html_(self) -> str:
        from .html import summary_html

        return summary_html(self.analysis, self.source, self.optimizer, self.device, self.depth)

