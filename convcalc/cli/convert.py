"""convcalc convert: any network source to an editable convcalc YAML document."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from .app import app
from .common import fail, network_from, one_input
from .options import BATCH, FILE, INPUT, INPUT_OPTION, LAYERS, MODEL, MODEL_ARG, PRESET

CONVERT_EXAMPLES = """
Examples:

  convcalc convert --preset resnet18 > resnet18.yaml

  # an ONNX file, read without any framework
  convcalc convert -f model.onnx -o model.yaml

  convcalc convert --model torchvision.models:resnet50 3x224x224
"""


@app.command("convert", epilog=CONVERT_EXAMPLES)
def convert_command(
    input_shape: Optional[str] = INPUT,
    layers: Optional[List[str]] = LAYERS,
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    model: Optional[str] = MODEL,
    model_arg: Optional[List[str]] = MODEL_ARG,
    input_option: Optional[str] = INPUT_OPTION,
    batch: Optional[int] = BATCH,
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Element type recorded in the document."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the document to FILE (default: stdout)."),
) -> None:
    """Write any network (tokens, a document, print(model) text, an ONNX file, a preset, a PyTorch model) as a
    convcalc YAML document that reads back to the same figures."""
    from ..engine.analysis import analyse
    from ..output.document import network_to_yaml

    try:
        network = network_from(one_input(input_shape, input_option), layers, file, batch, dtype, preset, model,
                               model_arg)
        analyse(network, receptive_fields=False)  # refuse, here, what the document could not be read back as
        text = network_to_yaml(network)
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
        fail(err, None)
