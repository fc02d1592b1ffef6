"""Every string from the input is shown through one escape, in every format and on every terminal:
control and format characters come out as ``\\x1b`` or ``\\u202e``, Rich markup in the input is shown
as text, never read, and nothing raises. JSON stays exact data (its encoder escapes on its own).

The strings are layer names, opaque operations, paths, remarks and references (``from``) of
documents, and tokens on the command line; they are checked through the plain table, CSV, Markdown,
JSON and ndjson in a pipe, and through Rich in a real pseudo-terminal, wide and narrow."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.engine.escape import escape, escape_positions
from convcalc.output.formats import OutputFormat

from .terminal import run_in_pty

# What a hostile string is made of: terminal controls, an OSC 8 hyperlink, C1 controls, line and
# paragraph separators, bidi overrides and isolates, Rich markup and emoji codes, Markdown's pipe,
# a lone surrogate (JSON can carry one), and ordinary text.
PIECES = ["\x1b", "\x07", "\x00", "\x7f", "\r", "\t", "\n", "\x1b]8;;file:///etc/passwd\x07", "\x1b[2J", "\x1b[5m",
          "\x80", "\x85", "\x9b", "\x9f", "\x1c", "\u2028", "\u2029", "\ufeff", "\u200b", "\xa0",
          *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\ud800", "\U000e0001",
          "[/]", "[link=file:///etc/passwd]", "[/link]", "[blink]", "[/blink]", "[bold red]", "[", "]", "\\[", "\\",
          "|", ":smile:", "*", "`", "<b>", '"', ",", "x", "layer1", "→", "名"]
HOSTILE = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=3)), min_size=1, max_size=6).map("".join)

SGR = re.compile(r"\x1b\[([0-9;]*)m")  # the styling convcalc's own Rich output uses
OWN_STYLES = {"", "0", "1", "2", "1;35", "35", "2;35", "1;2"}

runner = CliRunner()


def _documents(s: str) -> dict[str, dict]:
    """Documents holding ``s`` where each kind of input string goes."""
    return {
        "name": {"input": [3, 8, 8], "layers": [{"type": "relu", "name": s}]},
        "op": {"input": [3, 8, 8], "layers": [{"type": "opaque", "op": s, "output": [3, 8, 8]}]},
        "path": {"input": [3, 8, 8], "layers": [{"type": "relu", "path": [s]}, {"type": "relu", "path": [s]}]},
        "remark": {"input": [3, 8, 8], "layers": [{"type": "relu", "remark": [s]}]},
        "from": {"input": [3, 8, 8], "layers": [{"type": "relu", "from": s}]},  # an error quoting it
    }


def _arguments(where: str) -> list[str]:
    return ["--depth", "1"] if where == "path" else []  # a path shows as its block's row


def _assert_clean(text: str) -> None:
    """No character that could drive a terminal: only printable text and newlines."""
    bad = sorted({repr(ch) for ch in text if not ch.isprintable() and ch != "\n"})
    assert not bad, f"raw {', '.join(bad)} in the output"
    assert "Traceback" not in text


# The function itself.

@given(st.text())
def test_escape_leaves_nothing_unprintable_and_is_idempotent(s):
    shown = escape(s)
    assert shown.isprintable() or not shown
    assert escape(shown) == shown
    if s.isprintable():
        assert shown == s


@given(st.text())
def test_escape_positions_map_each_character_to_its_escape(s):
    shown, positions = escape_positions(s)
    assert shown == escape(s) and len(positions) == len(s) + 1 and positions[-1] == len(shown)
    for i, ch in enumerate(s):
        assert shown[positions[i]:positions[i + 1]] == escape(ch)


def test_escape_writes_what_each_character_is():
    assert escape("a\x1b]8;;x\x07\x85\u202e\u2028\U000e0001\ud800") == \
        "a\\x1b]8;;x\\x07\\x85\\u202e\\u2028\\U000e0001\\ud800"


# Every format, in a pipe (in-process: stdout is not a terminal).

@settings(max_examples=60, deadline=None)
@given(HOSTILE, st.sampled_from(["name", "op", "path", "remark", "from"]))
@example(" 0", "op")  # an outer space of the input is kept in the label, not cut
def test_every_format_shows_input_strings_escaped(s, where):
    document = json.dumps(_documents(s)[where])
    for fmt in OutputFormat:
        result = runner.invoke(app, ["shape", "-f", "-", "--format", fmt.value, *_arguments(where)], input=document)
        assert result.exit_code in (0, 2), (fmt, result.output, result.exception)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
            result.exception
        _assert_clean(result.stdout)
        _assert_clean(result.stderr)
        if result.exit_code == 0 and where != "name":  # a name is shown (and checked) where it names a row
            notes = result.stderr if fmt in (OutputFormat.table, OutputFormat.markdown, OutputFormat.csv) else ""
            _assert_shown(fmt, result.stdout + notes, s, where)  # the tables' notes are on stderr


def _assert_shown(fmt: OutputFormat, out: str, s: str, where: str) -> None:
    """The string is there, escaped in the tables, exact in JSON."""
    if fmt is OutputFormat.table:
        assert escape(s) in out
    elif fmt is OutputFormat.markdown:
        assert escape(s).replace("\\", "\\\\").replace("|", "\\|") in out or escape(s) in out  # cell or note
    elif fmt is OutputFormat.csv:
        if where in ("op", "path"):  # notes are left out of CSV
            cells = [cell for row in csv.reader(io.StringIO(out)) for cell in row]
            assert any(escape(s) in cell for cell in cells)
    elif fmt in (OutputFormat.json, OutputFormat.ndjson):  # the pictures' formats are checked in test_pictures
        records = [json.loads(line) for line in out.splitlines()] if fmt is OutputFormat.ndjson \
            else json.loads(out)["layers"]
        layer = records[0]
        exact = {"op": layer["type"], "path": (layer["path"] or [None])[0], "remark": (layer["notes"] or [None])[0]}
        assert exact[where] == s


@settings(max_examples=25, deadline=None)
@given(HOSTILE)
def test_tokens_and_options_on_the_command_line_are_escaped_in_errors(s):
    for args in (["shape", "3x8x8", s], ["shape", "3x8x8", f"conv:{s}"], ["shape", s, "relu"],
                 ["shape", "3x8x8", "relu", "--dtype", s], ["shape", "3x8x8", "relu", f"--{s}"], [s]):
        if "\x00" in s or "\ud800" in s:
            continue  # no command line can hold these
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 2), (args, result.output, result.exception)
        _assert_clean(result.stdout)
        _assert_clean(result.stderr)


def test_a_markdown_cell_never_ends_early():
    s = "a|b\\|c\\"
    document = json.dumps({"input": [3, 8, 8], "layers": [{"type": "opaque", "op": s, "output": [3, 8, 8]}]})
    out = runner.invoke(app, ["shape", "-f", "-", "--format", "markdown"], input=document).stdout
    row = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    assert len(re.findall(r"(?<!\\)(?:\\\\)*\|", row)) == 10  # 9 columns: 10 unescaped pipes


# A real pseudo-terminal (Rich) and a real pipe.

def _screen(raw: str) -> str:
    """What a terminal shows: convcalc's own styling checked and removed, no other control left."""
    styles = set(SGR.findall(raw))
    assert styles <= OWN_STYLES, f"styling convcalc does not use: {styles - OWN_STYLES}"
    text = SGR.sub("", raw).replace("\r\n", "\n")
    _assert_clean(text)
    return text


FIXED = ["\x1b]8;;file:///etc/passwd\x07click\x1b]8;;\x07", "[/]", "[link=file:///etc/passwd]L[/link]",
         "[blink]B[/blink]", "x\u202eevil\u2066\u2069\x85\x9b2J\u2028y", "\x1b[5m\x1b[2J\x07\\[bold]", ":smile:|a"]


def _everything(s: str) -> bytes:
    """One document showing ``s`` as an operation, a remark and (with --depth 1) a block."""
    return json.dumps({"input": [3, 8, 8], "layers": [
        {"type": "opaque", "op": s, "output": [3, 8, 8], "remark": [s]}, {"type": "relu", "path": [s]}]}).encode()


@pytest.mark.parametrize("width", [600, 24])  # a table (the block's name and the operation side by side), and rows
def test_rich_on_a_terminal_reads_no_markup_from_the_input(width):  # stacked as column: value
    s = "".join(FIXED)
    screen = _screen(run_in_pty(["shape", "-f", "-", "--depth", "1"], width, stdin=_everything(s), raw=True))
    if width == 600:
        assert screen.count(escape(s)) == 4  # operation, block, remark, note: whole, markup and all, as text
    else:
        assert "[link=file:///etc/passwd]" in screen.replace("\n", "")
    error = _screen(run_in_pty(["shape", "-f", "-"], width, stdin=json.dumps(_documents(s)["from"]).encode(), raw=True))
    assert "error:" in error and "Traceback" not in error


@settings(max_examples=5, deadline=None)
@given(HOSTILE)
def test_rich_on_a_terminal_shows_generated_strings_escaped(s):
    screen = _screen(run_in_pty(["shape", "-f", "-", "--depth", "1"], 400, stdin=_everything(s), raw=True))
    assert escape(s) in screen or "error:" in screen


def test_explain_on_a_terminal_and_in_a_pipe():
    s = "".join(FIXED)
    document = _everything(s)
    _screen(run_in_pty(["explain", "-f", "-"], 200, stdin=document, raw=True))
    for fmt in OutputFormat:
        result = runner.invoke(app, ["explain", "-f", "-", "--format", fmt.value], input=document)
        _assert_clean(result.stdout)
        _assert_clean(result.stderr)


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_a_real_pipe_gets_no_control_characters(fmt):
    done = subprocess.run([sys.executable, "-m", "convcalc", "shape", "-f", "-", "--format", fmt.value, "--depth",
                           "1"], input=_everything("".join(FIXED)), capture_output=True, timeout=60)
    assert done.returncode == 0
    _assert_clean(done.stdout.decode())
    _assert_clean(done.stderr.decode())
