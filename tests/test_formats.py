"""Every command prints every format: the loop goes over the enum, so no format is forgotten."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.output.formats import OutputFormat

runner = CliRunner()
COMMANDS = {
    "shape": ["shape", "3x16x16", "conv:4,k=3", "relu"],
    "run": ["run", "3x16x16", "conv:4,k=3", "relu"],
    "compare": ["compare", "8x16x16", "conv:16,k=3"],
    "solve": ["solve", "3x224x224", "conv:64,k=7,s=2,p=?", "--target", "64x112x112"],
    "presets": ["presets"],
    "explain": ["explain", "1x5", "conv:1,k=3"],
}

# The commands whose result holds a network, which the picture formats draw (the others refuse them).
PICTURED = {"shape", "run", "compare"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("output", list(OutputFormat), ids=lambda f: f.value)
def test_every_command_prints_every_format(command, output):
    result = runner.invoke(app, [*COMMANDS[command], "--format", output.value])
    if output in (OutputFormat.mermaid, OutputFormat.dot) and command not in PICTURED:
        assert result.exit_code == 2 and not result.stdout, result.stdout  # no network to draw: one error
        assert result.stderr.startswith(f"error: --format {output.value} draws a network"), result.stderr
        return
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    if output is OutputFormat.json:
        assert isinstance(json.loads(text), dict)
    elif output is OutputFormat.ndjson:
        records = [json.loads(line) for line in text.splitlines()]
        assert records and all(isinstance(r, dict) for r in records)
    elif output is OutputFormat.csv:
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) >= 2 and len({len(r) for r in rows}) == 1  # a header and rows of one width
    elif output is OutputFormat.markdown:
        lines = text.splitlines()
        assert lines[0].startswith("| ") and set(lines[1].replace(" ", "")) <= set("|-:")
    elif output is OutputFormat.mermaid:
        assert text.startswith("flowchart TD\n") and " --> " in text
    elif output is OutputFormat.dot:
        assert text.startswith("digraph network {\n") and " -> " in text and text.rstrip().endswith("}")
    else:
        assert text.strip()


def test_json_shorthand_and_conflicts():
    assert runner.invoke(app, ["shape", "3x8x8", "relu", "--json"]).stdout == \
        runner.invoke(app, ["shape", "3x8x8", "relu", "--format", "json"]).stdout
    clash = runner.invoke(app, ["shape", "3x8x8", "relu", "--json", "--format", "csv"])
    assert clash.exit_code == 2 and "two formats" in clash.stderr


def test_csv_has_exact_numbers():
    rows = list(csv.reader(io.StringIO(runner.invoke(app, ["shape", "3x224x224", "conv:64,k=7,s=2,p=3",
                                                           "--format", "csv"]).stdout)))
    macs = 64 * 112 * 112 * 3 * 7 * 7
    cells = dict(zip(rows[0], rows[2]))  # by the header: columns may be added
    assert [cells["params"], cells["MACs"], cells["FLOPs"]] == [str(64 * 3 * 49 + 64), str(macs),
                                                                 str(2 * macs + 64 * 112 * 112)]


def test_ndjson_is_one_object_per_layer():
    lines = runner.invoke(app, ["shape", "3x8x8", "conv:4,k=3", "relu", "gap", "--format", "ndjson"]).stdout
    assert [json.loads(line)["type"] for line in lines.splitlines()] == ["Conv2d", "ReLU", "AdaptiveAvgPool2d"]


def test_every_command_with_a_format_option_is_in_the_loop():
    import typer

    group = typer.main.get_command(app)
    with_format = {name for name, command in group.commands.items()
                   if any("--format" in getattr(param, "opts", ()) for param in command.params)}
    assert with_format == set(COMMANDS), "add the new command to COMMANDS above"
