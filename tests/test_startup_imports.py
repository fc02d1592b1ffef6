"""What starting the command line loads: the modules a command needs and no others, checked in a
fresh process (benchmarks/startup.py times them; no timing is tested here).

A one-layer ``shape`` loads the engine's analysis and the token reader, never NumPy (only ``run``,
``compare --run``, ``solve`` and ``convcalc.functional`` compute with it), never the ONNX or
PyTorch readers, the verbs, the backend or the presets, and never Pydantic (Typer's per-parameter
validators are built only for values that need converting). A table in a pipe, JSON and CSV
never load Rich; ``--help`` loads Rich and none of the engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

RUN = """
import io, json, sys, runpy, contextlib
sys.argv = ["convcalc", *json.loads(sys.argv[1])]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        runpy.run_module("convcalc", run_name="__main__")
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""

LAYER = ["3x32x32", "conv:8,k=3"]
NEVER = ("numpy", "pydantic", "yaml", "convcalc.readers.onnx", "convcalc.readers.pytorch", "convcalc.verbs",
         "convcalc.backend", "convcalc.functional", "convcalc.presets")


def _loaded(*args: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", RUN, json.dumps(args)], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def _any(modules: set[str], prefix: str) -> list[str]:
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--format", "csv"], ["--format", "markdown"]],
                         ids=["table", "json", "csv", "markdown"])
def test_one_layer_shape_loads_what_it_needs(fmt):
    modules = _loaded("shape", *LAYER, *fmt)
    assert {"convcalc.engine.analysis", "convcalc.readers.tokens"} <= modules
    for name in NEVER + ("rich",):
        assert not _any(modules, name), (name, _any(modules, name))
    if fmt == ["--json"]:  # the JSON object is all it prints: no table is laid out
        assert not _any(modules, "convcalc.output.reports")


def test_help_loads_no_engine():
    modules = _loaded("--help")
    assert "rich" in modules  # the help's own layout
    engine = _any(modules, "convcalc.engine")
    assert set(engine) <= {"convcalc.engine", "convcalc.engine.errors", "convcalc.engine.escape",
                           "convcalc.engine.dtypes"}, engine
    for name in NEVER + ("convcalc.readers", "convcalc.output.render", "convcalc.output.reports"):
        assert not _any(modules, name), name


BUILT = """
import io, json, sys, runpy, contextlib
import typer.main
built, build = [], typer.main.get_command_from_info
def counted(command_info, **settings):
    built.append(command_info.name or command_info.callback.__name__)
    return build(command_info, **settings)
typer.main.get_command_from_info = counted
sys.argv = ["convcalc", *json.loads(sys.argv[1])]
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        runpy.run_module("convcalc", run_name="__main__")
    except SystemExit:
        pass
print(json.dumps([built, out.getvalue()]))
"""


@pytest.mark.parametrize("args, expected", [(["--help"], []), (["shape", *LAYER], ["shape"]),
                                            (["compare", "--help"], ["compare"])], ids=["help", "shape", "compare"])
def test_only_the_command_run_is_built(args, expected):
    """Building a command reads its function's signature into parameters: ``--help`` lists the ten
    commands from their names and docstrings, and a command builds itself alone."""
    done = subprocess.run([sys.executable, "-c", BUILT, json.dumps(args)], capture_output=True, text=True,
                          timeout=120, check=True)
    built, printed = json.loads(done.stdout.splitlines()[-1])
    assert built == expected
    if args == ["--help"]:  # every command listed all the same, with its one-line help
        for name, first_words in (("shape", "Output shape"), ("completion", "Print the shell"), ("draw", "Draw")):
            assert any(line.split("│")[1].split()[:1] == [name] and first_words in line
                       for line in printed.splitlines() if line.count("│") == 2), name


def test_a_value_typer_would_validate_is_read_as_typer_reads_it():
    """The plain conversions (text, digits, a --format name in any case) give what Typer's validators give;
    what they refuse goes to Typer, whose message names the option."""
    from typer.testing import CliRunner

    from convcalc.cli import app

    runner = CliRunner()
    plain = runner.invoke(app, ["shape", *LAYER, "--format", "CSV", "--batch", "2"])
    assert plain.exit_code == 0 and plain.stdout.startswith("#,name,layer")
    assert ",8x30x30,224,388800," in plain.stdout  # batch 2: twice 8x30x30 outputs of 27 products each
    for args, message in ((["--batch", "x"], "'--batch'"), (["--format", "xml"], "'--format'"),
                          (["--batch", "99999999999999999999"], "batch")):
        result = runner.invoke(app, ["shape", *LAYER, *args])
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output
