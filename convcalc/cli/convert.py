"""convcalc convert: any network source to an editable convcalc YAML document."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from .app import app
from .common import fail, input_notes, print_notes
from .source import NetworkSource, reads_network

CONVERT_EXAMPLES = """
Examples:

  convcalc convert --preset resnet18 > resnet18.yaml

  # an ONNX file, read without any framework
  convcalc convert -f model.onnx -o model.yaml

  convcalc convert --model torchvision.models:resnet50 3x224x224
"""


@app.command("convert", epilog=CONVERT_EXAMPLES)
@reads_network
def convert_command(
    source: NetworkSource,
    output: Annotated[Optional[str], typer.Option(
        "--output", "-o", metavar="FILE", help="Write the document to FILE (default: stdout).")] = None,
) -> None:
    """Write any network (tokens, a document, print(model) text, an ONNX file, a preset, a PyTorch model) as a convcalc YAML document that reads back to the same figures."""  # noqa: E501 - one paragraph: help keeps a docstring's line breaks
    from ..engine.analysis import analyse
    from ..output.document import network_to_yaml

    network = None
    try:
        network = source.network()
        analysis = analyse(network, receptive_fields=False)  # refuse, here, what the document could not be read back as
        text = network_to_yaml(network, _traced_from(source))
        print_notes(input_notes(network=network) if analysis.layers else ())
        if output is None or output == "-":
            sys.stdout.write(text)
            return
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as err:
            raise SpecError(f"cannot write {output!r}: {err.strerror}", hint="check the path", field="output") \
                from None
    except ConvcalcError as err:
        fail(err, notes=input_notes(source, network))


def _traced_from(source: NetworkSource) -> str | None:
    """The traced model a network comes from (a PyTorch model, an ONNX file), named; None for any other
    source, whose sizes are the document's own."""
    if source.model is not None:
        return f"the PyTorch model {source.model}"
    if source.file is not None and source.file != "-":
        try:
            with open(source.file, "rb") as handle:
                onnx = handle.read(1) == b"\x08"  # as an ONNX model starts (ir_version); no text does
        except OSError:
            return None
        return f"the ONNX file {source.file}" if onnx else None
    return None
