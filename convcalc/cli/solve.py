"""convcalc solve: the parameters, or input sizes, that give the shape wanted."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from ..output.formats import OutputFormat
from .app import ExitCode, app
from .common import fail, network_from, output_format
from .options import FILE, FORMAT, JSON, PRESET
from .show import show

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


def _parse_ranges(texts) -> dict:
    from ..readers.registry import SHORT_KEYS

    ranges = {}
    for text in texts or ():
        key, _, span = text.partition("=")
        low, dots, high = span.partition("..")
        name = {"out": "out_channels", "input": "input"}.get(key.strip(), SHORT_KEYS.get(key.strip(), key.strip()))
        plain = all(part.strip().isascii() and part.strip().isdigit() and len(part.strip()) <= 18 for part in (low, high))
        if not dots or not plain or int(low) > int(high):
            raise SpecError(f"--range {text!r} is not NAME=LOW..HIGH", hint="e.g. --range p=0..32", field="range")
        from ..verbs.solve import DEFAULT_RANGES

        if name not in DEFAULT_RANGES and name != "input":
            raise SpecError(f"--range {text!r}: {key} cannot be solved for",
                            hint=f"give one of {', '.join(DEFAULT_RANGES)} or input", field="range")
        ranges[name] = (int(low), int(high))
    return ranges


def _input_template(text: str) -> tuple:
    from ..readers import parse_shape

    if "?" not in text:
        return parse_shape(text)
    parts = text.split("x")
    # check the known sizes as any shape is checked (only a whole part may be ?)
    known = parse_shape("x".join("1" if p == "?" else p for p in parts))
    return tuple(None if p == "?" else n for p, n in zip(parts, known))


@app.command("solve", epilog=SOLVE_EXAMPLES)
def solve_command(
    input_shape: Optional[str] = typer.Argument(None, metavar="INPUT",
                                                help="Input shape; ? for sizes to find (with -f or --preset)."),
    layers: Optional[List[str]] = typer.Argument(None, metavar="LAYER...",
                                                 help="Layer tokens; ? marks an unknown: p=?, k=?, s=?, d=?, op=?."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="The output shape wanted (? matches any size)."),
    ranges: Optional[List[str]] = typer.Option(None, "--range", help="Search range, e.g. p=0..32, k=1..7, input=1..1024."),
    undo: bool = typer.Option(False, "--undo", help="Find transposed convolutions that undo the one LAYER."),
    receptive_field: Optional[int] = typer.Option(None, "--receptive-field",
                                                  help="Repeat LAYER until the receptive field reaches N (d=?: "
                                                       "doubling dilations)."),
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """Find the parameters (written ?) that give the shape you want, or the input sizes a network accepts."""
    from ..engine.analysis import Network
    from ..output.render import Table
    from ..readers import parse_layer
    from ..readers.tokens import split_token
    from ..verbs.plan import plan_receptive_field, solve_input
    from ..verbs.solve import solve, template_of

    try:
        fmt = output_format(as_json, output)
        if input_shape is None:
            raise SpecError("missing the input shape", hint="e.g. convcalc solve 3x224x224 conv:64,k=7,s=2,p=? "
                                                            "--target 64x112x112", field="input")
        search = _parse_ranges(ranges)
        template = _input_template(input_shape)
        if None in template:
            network = network_from(None, layers, file, None, None, preset) if (file or preset) else Network(
                (1,), tuple(parse_layer(t) for t in layers or ()))
            low, high = search.get("input", (1, 512))
            sizes = solve_input(template, network.layers, low, high)
            rows = tuple((str(n), "x".join(str(n if t is None else t) for t in template)) for n in sizes.accepted[:24])
            footer = (f"accepted input sizes in {low}..{high}: {sizes.pattern()}",
                      f"smallest: {sizes.smallest}" if sizes.accepted else "no size in the range is accepted")
            data = sizes.to_dict()
            show(Table(("size", "input"), frozenset({"size"}), rows, None, footer), data, fmt, data["solutions"])
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
            from ..engine.units import per_axis_text

            rows = tuple((str(r.index), f"{r.type} {r.summary}".strip(), "x".join(map(str, r.output_shape)),
                          per_axis_text(r.receptive_field.size)) for r in plan.layers)
            verdict = (f"{len(plan.layers)} layers reach a receptive field of {'x'.join(map(str, plan.size))}"
                       if plan.reached else f"the receptive field stops at {'x'.join(map(str, plan.size))}: "
                                            f"the input is too small for more layers")
            data = {"schema": "convcalc.solve/1", "receptive_field": receptive_field, "reached": plan.reached,
                    "layers": len(plan.layers), "dilations": list(plan.dilations), "size": list(plan.size)}
            show(Table(("#", "layer", "output", "RF"), frozenset({"#", "RF"}), rows, None, (verdict,)), data, fmt)
            raise typer.Exit(int(ExitCode.OK if plan.reached else ExitCode.REFUSED))
        wanted = _input_template(target) if target else None
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
        fail(err, OutputFormat.json if as_json else output)
    keys = list(dict.fromkeys(k for s in result.solutions for k in s.values))
    rows = tuple((*[_value_text(s.values.get(k)) for k in keys],
                  " → ".join(f"{r.type} {r.summary}".strip() for r in s.layers)) for s in result.solutions)
    footer = [f"{len(result.solutions)} solution(s) among {result.searched:,} candidates"]
    data = result.to_dict()
    if not result.solutions:  # said once, on stderr; the data formats still get their (empty) result
        print("error: no solution; nearest reachable: "
              + ", ".join("x".join(map(str, s)) for s in result.nearest), file=sys.stderr)
        print(f"hint: {footer[0]}; widen --range or change the layers", file=sys.stderr)
        if fmt is not OutputFormat.table:
            show(Table((*keys, "layers"), frozenset(keys), rows, None, ()), data, fmt, data["solutions"])
        raise typer.Exit(int(ExitCode.REFUSED))
    show(Table((*keys, "layers"), frozenset(keys), rows, None, tuple(footer)), data, fmt, data["solutions"])
    raise typer.Exit(int(ExitCode.OK if result.solutions else ExitCode.REFUSED))


def _value_text(value) -> str:
    if value is None:
        return ""
    return "x".join(map(str, value)) if isinstance(value, list) else str(value)
