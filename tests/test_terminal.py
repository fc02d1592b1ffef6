"""Tables in a real pseudo-terminal of 80 and 120 columns: every number whole, no line wider than the
terminal; what does not fit is left out by name, never cut."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.output.render import ABBREVIABLE

from .terminal import run_in_pty

COMMANDS = {
    "shape": ["shape", "--preset", "resnet50", "--depth", "1"],
    "shape-layers": ["shape", "3x224x224", "conv:64,k=7,s=2,p=3,bias=false", "bn", "relu", "maxpool:k=3,s=2,p=1"],
    "compare": ["compare", "32x56x56", "conv:64,k=3,p=1"],
    "presets": ["presets"],
    "solve": ["solve", "3x224x224", "conv:64,k=3,s=2,p=1", "--undo"],
    "run": ["run", "3x32x32", "conv:16,k=3,p=1", "relu", "maxpool:2"],
}
NOT_REPEATABLE = {"ms", "±", "GFLOP/s", "time ratio"}  # timings differ between two runs


def cells(args) -> tuple[list[str], list[list[str]]]:
    """The table's header and cells, as the Markdown format gives them."""
    result = CliRunner().invoke(app, [*args, "--format", "markdown"])
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    split = [[cell.strip().strip("*") for cell in line.strip("|").split(" | ")] for line in lines]
    return split[0], [row for row in split[2:]]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_numbers_are_whole_at_any_width(name, width):
    args = COMMANDS[name]
    screen = run_in_pty(args, width)
    assert "Traceback" not in screen
    assert all(len(line) <= width for line in screen.splitlines()), max(screen.splitlines(), key=len)
    header, rows = cells(args)
    left_out = re.search(r"left out at \d+ columns: (.*?) \(", screen.replace("\n", " "))
    dropped = set(left_out.group(1).split(", ")) if left_out else set()
    shown = [c for c in header if c not in dropped]
    assert len(shown) >= 3
    for row in rows:
        for column, cell in zip(header, row):
            if column in dropped or column in ABBREVIABLE or column in NOT_REPEATABLE or not cell:
                continue
            assert cell in screen, (column, cell)


def test_a_terminal_too_narrow_for_any_table_stacks_the_rows():
    screen = run_in_pty(["shape", "3x224x224", "conv:64,k=7,s=2,p=3"], 24)
    assert "params: 9.47 K" in screen and "output: 64x112x112" in screen
    assert all(len(line) <= 24 for line in screen.splitlines())


def test_no_color_means_no_bold_or_dim(monkeypatch):
    from rich.console import Console

    from convcalc import analyse_tokens
    from convcalc.output.render import render_rich
    from convcalc.output.reports import shape_table

    monkeypatch.setenv("NO_COLOR", "1")
    console = Console(width=100, force_terminal=True, record=True)
    render_rich(shape_table(analyse_tokens("3x8x8", "conv:4,k=3")), console)
    text = console.export_text(styles=True)
    assert "\x1b[1m" not in text and "\x1b[2m" not in text
    monkeypatch.delenv("NO_COLOR")
    console = Console(width=100, force_terminal=True, record=True)
    render_rich(shape_table(analyse_tokens("3x8x8", "conv:4,k=3")), console)
    assert "\x1b[1m" in console.export_text(styles=True)  # the check can fail: styles are there otherwise


def test_the_documented_captures_are_what_an_80_column_terminal_shows():
    from pathlib import Path

    root = Path(__file__).parent.parent
    pages = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").rglob("*.md"))])
    captures = re.findall(r"```terminal\n\$ convcalc ([^\n]+)\n(.*?)\n```", pages, re.S)
    assert len(captures) >= 2
    for command, shown in captures:
        assert run_in_pty(command.split(), 80).rstrip("\n") == shown, command
