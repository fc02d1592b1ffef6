"""convcalc solve: the parameters, or input sizes, that give the shape wanted."""

from __future__ import annotations

import sys
from typing import Annotated, List, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from ..output.formats import OutputFormat
from .app import ExitCode, app
from .common import fail, input_notes, output_format, print_notes, wants_json
from .options import File, Format, Json, Preset
from .show import show
from .source import NetworkSource
from .values import range_options, shape_template

SOLVE_EXAMPLES = """
Examples:

  convcalc solve 3x224x224 conv:64,k=7,s=2,p=? --target 64x112x112

  convcalc solve 64x16x16 convT:32,k=3,s=2,p=1,op=? --target 32x32x32

  convcalc solve 3x64x64 conv:16,k=?,s=2,p=? -t 16x32x32 --range k=1..7

  # TensorFlow's SAME as PyTorch layers
  convcalc solve 3x225x225 conv:64,k=3,s=2,p=same_upper

  # transposed layers that undo it
  convcalc solve 3x224x224 conv:64,k=3,s=2,p=1 --undo

  # the input sizes a network accepts
  convcalc solve 3x?x? --preset unet --range input=1..256

  # a dilation schedule
  convcalc solve 64x64x64 conv:64,k=3,p=same,d=? --receptive-field 61
"""


@app.command("solve", epilog=SOLVE_EXAMPLES)
def solve_command(
    input_shape: Annotated[Optional[str], typer.Argument(
        metavar="INPUT", help="Input shape; ? for sizes to find (with -f or --preset).", show_default=False)] = None,
    layers: Annotated[Optional[List[str]], typer.Argument(
        metavar="LAYER...", help="Layer tokens; ? marks an unknown: p=?, k=?, s=?, d=?, op=?.",
        show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option(
        "--target", "-t", metavar="SHAPE", help="The output shape wanted (? matches any size).")] = None,
    ranges: Annotated[Optional[List[str]], typer.Option(
        "--range", metavar="NAME=LOW..HIGH", help="Search range, e.g. p=0..32, k=1..7, input=1..1024.")] = None,
    undo: Annotated[bool, typer.Option("--undo", help="Find transposed convolutions that undo the one LAYER.")] = False,
    receptive_field: Annotated[Optional[int], typer.Option(
        "--receptive-field", metavar="N", help="Repeat LAYER until the receptive field reaches N (d=?: doubling "
                                               "dilations).")] = None,
    file: File = None,
    preset: Preset = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", hidden=True)] = None,
    as_json: Json = False,
    output: Format = None,
) -> None:
    """Find the parameters (written ?) that give the shape you want, or the input sizes a network accepts."""
    from ..output.listings import input_sizes_result, receptive_plan_result, solve_result
    from ..readers import parse_layer
    from ..readers.registry import SHORT_KEYS
    from ..readers.tokens import split_token
    from ..verbs.plan import plan_receptive_field, solve_input
    from ..verbs.solve import DEFAULT_RANGES, solve, template_of

    try:
        fmt = output_format(as_json, output)
        if model is not None:  # hidden: there only to say what solve takes instead
            raise SpecError("solve takes layer tokens, -f FILE or --preset NAME, not --model: a PyTorch model's "
                            "sizes are fixed by the input it is traced at", hint="write it as a document first "
                            "(convcalc convert --model MODEL INPUT -o net.yaml), then solve -f net.yaml", field="model")
        if input_shape is None:
            raise SpecError("missing the input shape", hint="e.g. convcalc solve 3x224x224 conv:64,k=7,s=2,p=? "
                                                            "--target 64x112x112", field="input")
        search = range_options(ranges, SHORT_KEYS, DEFAULT_RANGES)
        template = shape_template(input_shape)
        print_notes(input_notes(shape=template))  # a batch-included input solves for a layer of another rank
        if None in template:
            # the input's ? sizes are what is solved for: the network is read without an input shape
            reads = file is not None or preset is not None
            source = NetworkSource(None if reads else "1", tuple(layers or ()), file, preset)
            low, high = search.get("input", (1, 512))
            sizes = solve_input(template, source.network().layers, low, high)
            show(input_sizes_result(sizes), fmt)
            raise typer.Exit(int(ExitCode.OK if sizes.accepted else ExitCode.REFUSED))
        templates = [template_of(*split_token(t)) for t in layers or ()]
        if not templates:
            raise SpecError("give the layers to solve", hint="e.g. conv:64,k=7,s=2,p=?", field="layer")
        if receptive_field is not None:
            if len(templates) != 1 or receptive_field < 1:
                raise SpecError("--receptive-field takes one LAYER and a positive size",
                                hint="e.g. convcalc solve 64x64x64 conv:64,k=3,p=same --receptive-field 15",
                                field="receptive_field")
            plan = plan_receptive_field(template, templates[0], receptive_field)
            show(receptive_plan_result(plan, receptive_field), fmt)
            raise typer.Exit(int(ExitCode.OK if plan.reached else ExitCode.REFUSED))
        wanted = shape_template(target, "--target") if target else None
        if undo:
            if len(templates) != 1 or templates[0].slots:
                raise SpecError("--undo takes one known LAYER", hint="e.g. conv:64,k=3,s=2,p=1 --undo", field="undo")
            layer = parse_layer(layers[0])
            stride = getattr(layer, "stride", None) or getattr(layer, "kernel_size", 1)
            stride = stride if isinstance(stride, int) else "x".join(map(str, stride))
            templates.append(template_of(*split_token(f"convT:{template[0]},k=?,s={stride},p=?,op=?")))
            wanted = template
        if wanted is None and any(t.slots for t in templates):
            raise SpecError("give the shape wanted", hint="e.g. --target 64x112x112", field="target")
        result = solve(template, templates, wanted, search)
    except ConvcalcError as err:
        fail(err, wants_json(as_json, output))
    if not result.solutions:  # said once, on stderr; the data formats still get their (empty) result
        print("error: no solution; nearest reachable: "
              + ", ".join("x".join(map(str, s)) for s in result.nearest), file=sys.stderr)
        print(f"hint: 0 solution(s) among {result.searched:,} candidates; widen --range or change the layers",
              file=sys.stderr)
        if fmt is not OutputFormat.table:
            show(solve_result(result), fmt)
        raise typer.Exit(int(ExitCode.REFUSED))
    show(solve_result(result), fmt)
