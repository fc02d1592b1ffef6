"""The command line defined once: every command that reads a network offers the same options
(one NetworkSource), and every option value that cannot be read gives one error line naming
the option, exit 2, no traceback."""

import dataclasses
import json
import re

import pytest
import typer
from typer.testing import CliRunner

from convcalc.cli import app
from convcalc.cli.source import NetworkSource
from convcalc.engine.errors import SpecError

runner = CliRunner()
COMMANDS = typer.main.get_command(app).commands
SOURCE = ("input_shape", "layers", "file", "preset", "model", "model_args", "input_option", "batch", "dtype")
READS_NETWORK = ("shape", "run", "explain", "convert")


def _described(param) -> tuple:
    return (type(param).__name__, tuple(param.opts), param.metavar, getattr(param, "help", None), param.multiple)


def _params(command: str) -> dict:
    return {param.name: param for param in COMMANDS[command].params}


@pytest.mark.parametrize("command", READS_NETWORK)
def test_every_command_reading_a_network_offers_the_same_options(command):
    reference, params = _params("shape"), _params(command)
    assert [name for name in params if name in SOURCE] == list(SOURCE)  # all of them, in one order
    assert {name: _described(params[name]) for name in SOURCE} == {name: _described(reference[name]) for name in SOURCE}


def test_compare_shares_input_batch_and_dtype():
    shape, compare = _params("shape"), _params("compare")
    for name in ("input_shape", "batch", "dtype"):
        assert _described(compare[name]) == _described(shape[name])


def test_dtype_is_written_one_way():
    helps = {_params(c)["dtype"].help for c in (*READS_NETWORK, "compare")}
    assert len(helps) == 1 and "float16" in helps.pop()


def test_explain_takes_input_and_dtype():
    printed = "Sequential(\n  (0): Conv1d(1, 1, kernel_size=(3,), stride=(1,))\n)\n"
    by_option = runner.invoke(app, ["explain", "-f", "-", "--input", "1x5", "--json", "--dtype", "float64"],
                              input=printed)
    positional = runner.invoke(app, ["explain", "1x5", "conv:1,k=3", "--json"])
    assert by_option.exit_code == positional.exit_code == 0, by_option.stderr
    assert json.loads(by_option.stdout)["lines"][1:] == json.loads(positional.stdout)["lines"][1:]


def test_a_source_is_one_frozen_object_checked_when_made():
    source = NetworkSource("3x8x8", ("conv:4,k=3",), batch=2, dtype="float16")
    network = source.network()
    assert (network.input_shape, network.batch, network.dtype) == ((3, 8, 8), 2, "float16")
    with pytest.raises(dataclasses.FrozenInstanceError):
        source.batch = 3
    with pytest.raises(SpecError, match="give the layers one way, not tokens and --preset"):
        NetworkSource("3x8x8", ("relu",), preset="resnet18")
    with pytest.raises(SpecError, match="--model-arg goes with --model"):
        NetworkSource("3x8x8", model_args=("a=1",))
    with pytest.raises(SpecError, match="given twice"):
        NetworkSource.from_options("3x8x8", input_option="3x8x8")
    assert NetworkSource.from_options(input_option="3x8x8").input_shape == "3x8x8"
    assert not NetworkSource(batch=4).given and NetworkSource(preset="unet").given


def test_the_preset_input_and_batch_apply():
    network = NetworkSource("3x64x64", preset="resnet18", batch=4).network()
    assert network.input_shape == (3, 64, 64) and network.batch == 4


# (command line, the option its error must name)
BAD_VALUES = [
    (["run", "3x8x8", "conv:4,k=3", "--memory-limit", "."], "--memory-limit"),
    (["run", "3x8x8", "conv:4,k=3", "--memory-limit", "lots"], "--memory-limit"),
    (["run", "3x8x8", "relu", "--seed", "-1"], "--seed"),
    (["run", "3x8x8", "relu", "--seed", "x"], "--seed"),
    (["run", "3x8x8", "relu", "--repeat", "0"], "--repeat"),
    (["shape", "3x8x8", "relu", "--batch", "x"], "--batch"),
    (["shape", "3x8x8", "relu", "--batch", "0"], "--batch"),
    (["shape", "3x8x8", "relu", "--dtype", "float99"], "--dtype"),
    (["shape", "3x8x8", "relu", "--depth", "-1"], "--depth"),
    (["shape", "3x8x8", "relu", "--depth", "deep"], "--depth"),
    (["shape", "3x8x8", "relu", "--format", "xml"], "--format"),
    (["shape", "3x8x8", "relu", "--peak", "."], "--peak"),
    (["shape", "3x8x8", "relu", "--peak", "fast", "--bandwidth", "1TB/s"], "--peak"),
    (["shape", "3x8x8", "relu", "--device", "t4", "--bandwidth", "."], "--bandwidth"),
    (["shape", "3x8x8", "relu", "--input", "3x8x8"], "--input"),
    (["shape", "--model", "x:y", "3x8x8", "--model-arg", "."], "--model-arg"),
    (["explain", "1x5", "conv:1,k=3", "--at", "."], "--at"),
    (["explain", "1x5", "conv:1,k=3", "--at", "1,x"], "--at"),
    (["solve", "3x8x8", "conv:4,k=?", "--target", "4x6x6", "--range", "k=."], "--range"),
    (["solve", "3x8x8", "conv:4,k=?", "--target", "4x6x6", "--range", "q=1..3"], "--range"),
    (["solve", "3x8x8", "conv:4,k=?", "--target", "."], "--target"),
    (["compare", "8x8x8", "conv:8,k=3", "--groups", "0"], "--groups"),
    (["compare", "8x8x8", "conv:8,k=3", "--groups", "two"], "--groups"),
]


@pytest.mark.parametrize("args, option", BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_bad_option_value_is_one_error_line_naming_the_option(args, option):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and option in errors[0], result.stderr
    assert all(line.startswith(("error:", "hint:", " ")) for line in result.stderr.splitlines())  # no box, no usage
    assert result.stdout == ""


def test_unknown_options_and_commands_read_as_convcalc_errors():
    result = runner.invoke(app, ["shape", "3x8x8", "--no-such-option"])
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        "error: No such option: --no-such-option", "hint: see convcalc shape --help"]
    result = runner.invoke(app, ["shaep"])
    assert result.exit_code == 2 and result.stderr.splitlines()[0].startswith("error: No such command 'shaep'")
    result = runner.invoke(app, ["--bogus"])
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        "error: No such option: --bogus", "hint: see convcalc --help"]
    result = runner.invoke(app, [])  # the program alone: its help
    assert result.exit_code == 2 and "Usage: convcalc" in result.stdout + result.stderr


def test_run_memory_limit_that_reads_runs():
    result = runner.invoke(app, ["run", "3x8x8", "conv:4,k=3", "--memory-limit", "64MiB", "--json", "--repeat", "1"])
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_reads_well_at_80_columns(command):
    """Every help page at 80 columns: value types named as Click names them (TEXT, INTEGER, an option's
    own metavar, nothing for a flag), never an annotation such as <bool>, <str> or <list[str]>."""
    result = runner.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert not re.search(r"<(?:bool|str|int|float|list\[[a-z]+\])>", result.stdout), result.stdout
    if command in READS_NETWORK:
        assert re.search(r"INPUT +TEXT +Input shape", result.stdout)
        assert re.search(r"LAYER\.\.\. +TEXT +Layer tokens", result.stdout)
    if command == "shape":
        assert re.search(r"--chart +Bars", result.stdout) and re.search(r"--depth +N +Fold", result.stdout)


def test_device_measure_says_what_it_costs():
    """--device measure first times matrix products and copies on this machine: its help says so,
    with what it takes (benchmarks/startup.py's machine: 8 to 10 s), not 'a second or two'."""
    text = " ".join(word for word in runner.invoke(app, ["shape", "--help"], env={"COLUMNS": "200"}).stdout.split()
                    if word != "│")
    assert "a second or two" not in text
    assert "measure (this machine, measured first: NumPy matrix products and copies up to 128 MiB, 8 to 10 s" in text
