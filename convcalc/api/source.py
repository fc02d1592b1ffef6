"""Where a network comes from, resolved as the command line and ``convcalc.summary`` both resolve it.

``NetworkSource`` names a network the ways the command line can (layer tokens and an input
shape, a document file, a preset, a ``MODULE:NAME`` model) with the batch and element type that
override the source's own; ``network()`` reads it, and ``document_network()`` reads a document's
bytes (an ONNX model told apart by content, else JSON, YAML or print(model) text). Neither Typer
nor Rich is imported here: ``cli/source.py`` adds the options, ``api/summary.py`` the Python
objects (modules, paths, dictionaries).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..engine.dtypes import DTYPE_BYTES
from ..engine.errors import SpecError

# The engine is imported inside the functions: --help and completion never load it.
if TYPE_CHECKING:
    from ..engine.network import Network


@dataclass(frozen=True)
class NetworkSource:
    """The network a command was given: tokens, a document, a preset or a PyTorch model, with the
    batch and element type that override the source's own. Checked when made (one source at most,
    a positive batch, a known dtype); ``network()`` reads it.

    >>> NetworkSource("3x8x8", ("conv:4,k=3",), batch=2).network().batch
    2
    >>> NetworkSource("3x8x8", batch=0)
    Traceback (most recent call last):
    convcalc.engine.errors.SpecError: --batch must be a positive integer (got 0)
    """

    input_shape: str | None = None
    layers: tuple[str, ...] = ()
    file: str | None = None
    preset: str | None = None
    model: str | None = None
    model_args: tuple[str, ...] = ()
    batch: int | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        if self.batch is not None and self.batch < 1:
            raise SpecError(f"--batch must be a positive integer (got {self.batch})", hint="e.g. --batch 8",
                            field="batch")
        if self.dtype is not None and self.dtype not in DTYPE_BYTES:
            raise SpecError(f"unknown --dtype {self.dtype[:40]!r}", hint=f"use one of {', '.join(DTYPE_BYTES)}",
                            field="dtype")
        sources = [name for name, given in (("tokens", self.layers), ("-f", self.file is not None),
                                            ("--preset", self.preset is not None), ("--model", self.model is not None))
                   if given]
        if len(sources) > 1:
            raise SpecError(f"give the layers one way, not {' and '.join(sources)}: tokens, -f FILE, --preset NAME "
                            "or --model MODULE:NAME", hint="drop all but one (INPUT alone replaces the input shape)",
                            field="file")
        if self.model_args and self.model is None:
            raise SpecError("--model-arg goes with --model", hint="e.g. --model torchvision.models:resnet18 "
                            "--model-arg num_classes=10", field="model_arg")

    @classmethod
    def from_options(cls, input_shape=None, layers=None, file=None, preset=None, model=None, model_args=None,
                     input_option=None, batch=None, dtype=None) -> NetworkSource:
        """The source the command-line options describe (INPUT and --input are one thing, given once)."""
        if input_shape is not None and input_option is not None:
            raise SpecError("the input shape is given twice (INPUT and --input)", hint="give it once", field="input")
        return cls(input_shape if input_option is None else input_option, tuple(layers or ()), file, preset, model,
                   tuple(model_args or ()), batch, dtype)

    @property
    def given(self) -> bool:
        """Whether anything names a network (an input shape, layers, a file, a preset or a model)."""
        return any(v not in (None, ()) for v in (self.input_shape, self.layers, self.file, self.preset, self.model))

    def network(self) -> Network:
        """The network, with --batch and --dtype applied."""
        from ..engine.network import Network
        from ..readers import parse_layer, parse_shape

        batch, dtype = self.batch, self.dtype
        if self.model is not None:
            if self.input_shape is None:
                raise SpecError("a PyTorch model carries no input size", hint="give it, e.g. convcalc shape --model "
                                "torchvision.models:resnet18 3x224x224", field="input")
            from ..readers.pytorch import from_torch, load_model
            from ..readers.pytorch.spec import parse_model_args

            module = load_model(self.model, parse_model_args(self.model_args))
            return from_torch(module, parse_shape(self.input_shape), batch=batch or 1, dtype=dtype or "float32")
        if self.file is not None:
            directory = None if self.file == "-" else os.path.dirname(os.path.abspath(self.file))
            return self.document_network(read_bytes(self.file), repr(self.file), directory)
        if self.preset is not None:
            from ..presets import load_preset

            return self._overridden(load_preset(self.preset))
        if self.input_shape is None:
            raise SpecError("missing the input shape",
                            hint="e.g. convcalc shape 3x224x224 conv:64,k=3,p=1 (or -f net.json, or --preset resnet18)",
                            field="input")
        return Network(parse_shape(self.input_shape), tuple(parse_layer(t) for t in self.layers), batch or 1,
                       dtype or "float32")

    def document_network(self, data: bytes, what: str = "the document", directory: str | None = None) -> Network:
        """The network of a document's bytes, with INPUT, --batch and --dtype applied: -f reads a file
        into it, --stream each line, so a line gives what the same document gives with -f. An ONNX model
        is told apart by content, whatever the file is called; anything else is UTF-8 text (JSON, YAML or
        print(model) text). ``what`` names the bytes in errors; ``directory`` is where an ONNX model's
        external data may be (None: nowhere).

        >>> NetworkSource(batch=4).document_network(b'{"input": [3, 8, 8], "layers": [{"type": "relu"}]}').batch
        4
        """
        from ..readers import load_document, parse_shape
        from ..readers.onnx import looks_like_onnx

        given = None if self.input_shape is None else parse_shape(self.input_shape)
        if looks_like_onnx(data):
            from ..readers.onnx import from_onnx

            return from_onnx(data, batch=self.batch, input_shape=given, dtype=self.dtype or "float32",
                             directory=directory)
        text = decode_text(data, what)
        if not text.strip(" \t\r\n"):  # JSON's white space only: \x1c and U+2028 are not blank
            raise SpecError("the document is empty", hint='give a network document, e.g. {"input": [3, 224, 224], '
                            '"layers": [{"type": "relu"}]}', field="document")
        return self._overridden(load_document(text, given), given)

    def _overridden(self, network: Network, given: tuple[int, ...] | None = None) -> Network:
        """``network`` with the input shape, batch and dtype the options give in place of its own."""
        from ..readers import parse_shape

        if given is None and self.input_shape is not None:
            given = parse_shape(self.input_shape)
        return replace(network, input_shape=network.input_shape if given is None else given,
                       batch=self.batch or network.batch, dtype=self.dtype or network.dtype)



def read_bytes(path: str) -> bytes:
    """A file's bytes (- for stdin), read only up to the limit and one byte more: the document limit, or
    for what starts as an ONNX model does, the model limit; a larger input is an error naming the limit
    and the variable that raises it."""
    from ..engine.limits import max_document_bytes, max_onnx_bytes

    if path == "-" and getattr(sys.stdin, "buffer", None) is None:  # started with its standard input closed
        raise SpecError("cannot read stdin: standard input is closed", hint="pipe the document in, or give -f FILE",
                        field="file")
    try:
        handle = sys.stdin.buffer if path == "-" else open(path, "rb")
    except OSError as err:
        raise SpecError(
            f"cannot read {path!r}: {err.strerror}", hint="check the path, or give - to read stdin", field="file"
        ) from None
    try:
        data = handle.read(64)
        onnx = data[:1] == b"\x08"  # as an ONNX model starts (ir_version); no text does
        limit = max_onnx_bytes() if onnx else max_document_bytes()
        parts = [data]
        size = len(data)
        while size <= limit:
            chunk = handle.read(min(1 << 24, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except OSError as err:
        raise SpecError(f"cannot read {path!r}: {err.strerror}", hint="check the path", field="file") from None
    finally:
        if path != "-":
            handle.close()
    if size > limit:
        name, variable = (("ONNX model", "CONVCALC_MAX_ONNX_BYTES") if onnx
                          else ("document", "CONVCALC_MAX_DOCUMENT_BYTES"))
        raise SpecError(f"{path!r} is larger than the {name} limit of {limit:,} bytes ({variable})",
                        hint=f"raise it with {variable}", field="file")
    return b"".join(parts)


def decode_text(data: bytes, what: str) -> str:
    """A document's text: UTF-8, or an error naming the first byte that is not and what else it may be."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{what} is neither UTF-8 text nor an ONNX model (byte {err.start + 1} is "
                        f"0x{data[err.start]:02x})", hint="give a JSON or YAML document, print(model) text, "
                        "or an .onnx file", field="file") from None
