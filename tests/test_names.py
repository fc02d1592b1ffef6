"""Names in every table, and what a table keeps to itself: every row named (the module path, the
document's name, the index of a token) at any width, indented under --depth, in the table, CSV and
Markdown; notes on stderr, never among the data; a total that leaves layers out says so (+?); no
line break between a number and its unit."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from typer.testing import CliRunner

from convcalc.cli import app

from .terminal import run_in_pty
from .torchvision_models import build

runner = CliRunner()

MODEL = '''
import sys

sys.path.insert(0, {root!r})
from tests.torchvision_models import build


def model():
    return build({name!r})
'''


def _model_file(tmp_path, name: str) -> str:
    from pathlib import Path

    path = tmp_path / f"{name}.py"
    path.write_text(MODEL.format(root=str(Path(__file__).parent.parent), name=name))
    return f"{path}:model"


def _table(screen: str) -> tuple[list[str], list[list[str]]]:
    """A Rich table's header and body rows (the cells between its rules), as shown."""
    rows = [[cell.strip() for cell in line.strip("│┃").split("│" if "│" in line else "┃")]
            for line in screen.splitlines() if line.startswith(("│", "┃"))]
    return rows[0], rows[1:]


def _shown_name(name: str, cell: str) -> bool:
    """Whether ``cell`` shows ``name``: whole, or shortened with its numbers and last part kept."""
    if cell == name:
        return True
    parts, shown = name.split("."), cell.lstrip("…").split(".")
    return shown[-1] == parts[-1] and all(
        a == b or (b[:1] == a[:1] and a.endswith(b[1:])) for a, b in zip(reversed(parts), reversed(shown)))


@pytest.mark.needs_torch
@pytest.mark.parametrize("width", [80, 120, 200])
def test_a_torchvision_model_names_every_row_at_any_width(tmp_path, width):
    """efficientnet_b0 through --model: every row's name is its module's path in PyTorch's
    named_modules() (shortened, never cut to the same start, where the terminal is narrow), no two rows
    look alike, and no line is wider than the terminal."""
    modules = dict(build("efficientnet_b0").named_modules())
    model = _model_file(tmp_path, "efficientnet_b0")
    screen = run_in_pty(["shape", "--model", model, "3x224x224"], width)
    assert "Traceback" not in screen and all(len(line) <= width for line in screen.splitlines())
    header, rows = _table(screen)
    assert header[:3] == ["#", "name", "layer"]
    layers = [row for row in rows if row[0].isdigit() and row[0] != "0"]
    assert len(layers) == 249
    assert len({row[1] for row in layers}) == len(layers)  # every row told apart by its name
    convolutions = [row for row in layers if row[2].startswith("Conv2d")]
    assert len(convolutions) == 81
    for row in convolutions:  # the oracle: the module the name names is that convolution
        names = [name for name, module in modules.items() if _shown_name(name, row[1])]
        assert names and all(type(modules[name]).__name__ == "Conv2d" for name in names), row
    if width == 200:
        assert {row[1] for row in layers} >= {"features.1.0.block.1.scale_activation", "classifier.1"}


@pytest.mark.parametrize("width", [80, 120, 200])
@pytest.mark.parametrize("args", [["--preset", "resnet50"], ["--preset", "resnet50", "--depth", "2"],
                                  ["3x224x224", "conv:64,k=7,s=2,p=3", "bn", "relu", "maxpool:k=3,s=2,p=1"]],
                         ids=["preset", "preset-depth", "tokens"])
def test_presets_and_tokens_name_every_row_at_any_width(args, width):
    """A preset's rows carry the document's names (its unnamed layers their index), tokens their index;
    under --depth the names are indented two spaces a block. Every row is told apart at 80 columns."""
    data = json.loads(runner.invoke(app, ["shape", *args, "--json"]).stdout)
    expected = {str(layer["index"]): layer["name"] or str(layer["index"]) for layer in data["layers"]}
    depth = int(args[args.index("--depth") + 1]) if "--depth" in args else None
    screen = run_in_pty(["shape", *args], width)
    assert all(len(line) <= width for line in screen.splitlines())
    header, rows = _table(screen)
    assert header[:2] == ["#", "name"]
    body = [row for row in rows if row[0] and row[0] != "0"]
    assert len({row[1] for row in body}) == len(body)
    for row in body:
        if row[0] in expected:  # a layer of its own (a folded block's row is named by its block)
            assert _shown_name(expected[row[0]], row[1]), (row, expected[row[0]])
    if depth is None:
        assert [row[0] for row in body] == [str(layer["index"]) for layer in data["layers"]]
    if args[0].startswith("3x"):  # tokens: named by their index
        assert [row[1] for row in body] == ["1", "2", "3", "4"]


def test_csv_and_markdown_carry_the_names_indented_by_depth():
    rows = list(csv.reader(io.StringIO(runner.invoke(app, ["shape", "--preset", "resnet50", "--depth", "2",
                                                           "--format", "csv"]).stdout)))
    assert rows[0][:3] == ["#", "name", "layer"]
    named = {row[0]: row[1] for row in rows[1:]}
    assert named["1"] == "conv1" and named["5"] == "  layer1.0.conv1"  # a layer inside one block: two spaces
    markdown = runner.invoke(app, ["shape", "--preset", "resnet50", "--depth", "1", "--format", "markdown"]).stdout
    assert "| 5-16 | layer1.0 | 12 layers |" in markdown
    plain = runner.invoke(app, ["shape", "--preset", "resnet50"]).stdout
    assert re.search(r"^ +13  layer1\.0\.downsample\.0 +Conv2d 64→256 k=1 bias=False", plain, re.M)


def test_run_and_compare_name_their_rows():
    run = runner.invoke(app, ["run", "3x16x16", "conv:4,k=3", "relu", "--format", "csv"])
    assert run.stdout.splitlines()[0].startswith("#,name,layer,output,ms")
    screen = run_in_pty(["compare", "32x56x56", "conv:64,k=3,p=1"], 80)
    header, rows = _table(screen)
    assert [row[0] for row in rows] == ["standard", "depthwise separable", "grouped", "spatially separable",
                                        "flattened", "shufflenet unit"]
    layers = json.loads(runner.invoke(app, ["compare", "32x56x56", "conv:64,k=3,p=1", "--json"]).stdout)
    kernels = {v["name"].replace("_", " "): [layer["summary"] for layer in v["layers"]] for v in layers["variants"]}
    assert rows[1][1] == "3x3 g=32 → 1x1" and "k=3 p=1 g=32" in kernels["depthwise separable"][0]
    assert len({row[1] for row in rows}) == len(rows)  # the short lines tell the variants apart


# Notes on stderr; the data formats pure data.

BATCHED = ["shape", "1x3x8x8", "conv:4,k=3"]


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown"])
def test_notes_go_to_stderr_and_the_data_stays_pure(fmt):
    result = runner.invoke(app, [*BATCHED, "--format", fmt])
    assert result.exit_code == 0
    assert "note" not in result.stdout and "looks like it includes the batch" not in result.stdout
    assert "note (layer 1): the input 1x3x8x8 looks like it includes the batch" in result.stderr
    if fmt == "csv":
        assert len({len(row) for row in csv.reader(io.StringIO(result.stdout))}) == 1  # every line a row


def test_json_carries_the_notes_as_data():
    result = runner.invoke(app, [*BATCHED, "--json"])
    assert result.stderr == ""
    notes = json.loads(result.stdout)["layers"][0]["notes"]
    assert any("looks like it includes the batch" in note for note in notes)


# A total that leaves layers out says so.

UNCOUNTED = json.dumps({"input": [3, 8, 8], "layers": [
    {"type": "opaque", "op": "mystery", "output": [3, 8, 8]}, {"type": "conv", "out_channels": 4, "kernel_size": 3}]})


def test_a_total_leaving_layers_out_says_plus_question_mark():
    macs = 4 * 6 * 6 * 3 * 3 * 3  # a brute-force count: 4x6x6 outputs, each 3x3x3 products
    flops = 2 * macs + 4 * 6 * 6  # a multiply and an add per product, and the bias's add per output
    table = runner.invoke(app, ["shape", "-f", "-"], input=UNCOUNTED).stdout
    total = next(line for line in table.splitlines() if "total" in line).split()
    assert total == ["total", "4x6x6", "112", "3.89", "K+?", "7.92", "K+?"]
    rows = list(csv.reader(io.StringIO(runner.invoke(app, ["shape", "-f", "-", "--format", "csv"],
                                                     input=UNCOUNTED).stdout)))
    assert rows[-1][5:7] == [f"{macs}+?", f"{flops}+?"]
    assert rows[2][5:7] == ["?", "?"]  # the uncounted layer's own row
    markdown = runner.invoke(app, ["shape", "-f", "-", "--format", "markdown"], input=UNCOUNTED).stdout
    assert "| **3.89 K+?** | **7.92 K+?** |" in markdown
    counted = runner.invoke(app, ["shape", "3x8x8", "conv:4,k=3", "--format", "csv"]).stdout
    assert list(csv.reader(io.StringIO(counted)))[-1][5:7] == [str(macs), str(flops)]


# No line break between a number and its unit.

_SPLIT = re.compile(r"\d\n\s*(?:[KMGTP]i?B|B|[KMGTP]|[mµn]?s)\b")


def test_no_width_splits_a_number_from_its_unit():
    from rich.console import Console

    from convcalc.output.render import render_rich
    from convcalc.output.reports import shape_table
    from convcalc.presets import load_preset
    from convcalc.engine.analysis import analyse

    table = shape_table(analyse(load_preset("resnet50")), depth=1)
    for width in range(40, 201):
        buffer = io.StringIO()
        render_rich(table, Console(file=buffer, width=width, no_color=True, force_terminal=False))
        text = buffer.getvalue()
        assert not _SPLIT.search(text), (width, _SPLIT.search(text))
        assert all(len(line) <= width for line in text.splitlines()), width


@pytest.mark.parametrize("width", [40, 57, 80])
def test_no_terminal_splits_a_number_from_its_unit(width):
    screen = run_in_pty(["shape", "--preset", "resnet50", "--depth", "1"], width)
    assert not _SPLIT.search(screen)
    assert "97.49 MiB" in screen.replace("\n", " ")


def test_the_presets_hint_is_on_stderr():
    result = runner.invoke(app, ["presets", "--format", "markdown"])
    assert "use: convcalc shape --preset NAME" in result.stderr and "use:" not in result.stdout
    assert result.stdout.splitlines()[0] == "| preset | input | params | MACs | description |"
