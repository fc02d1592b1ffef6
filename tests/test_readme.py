"""The README's examples are executed, so the docs cannot drift."""

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from convcalc.cli import app

README = (Path(__file__).parent.parent / "README.md").read_text()


def _run(command_line: str):
    words = shlex.split(command_line)
    assert words[0] == "convcalc"
    return CliRunner().invoke(app, words[1:])


def test_quick_start_output_is_what_the_program_prints():
    command = re.search(r"pip install \. && (convcalc shape [^\n]+)", README).group(1)
    shown = re.search(r"```\n(#  layer.*?)```", README, re.S).group(1)
    result = _run(command)
    assert result.exit_code == 0
    assert result.stdout == shown


def test_every_shape_example_in_the_readme_runs():
    commands = [line.strip() for line in README.splitlines() if line.strip().startswith("convcalc shape ")]
    runnable = [c for c in commands if "INPUT" not in c and "FILE" not in c]
    assert len(runnable) >= 4
    for command in runnable:
        result = _run(command)
        assert result.exit_code == 0, (command, result.stderr)


def test_error_example_matches():
    shown = re.search(r"```\n(error: layer 2 .*?)```", README, re.S).group(1)
    result = CliRunner().invoke(app, ["shape", "3x224x224", "conv:64,k=3,p=1", "conv:64,k=3,s=2,p=same"])
    assert result.exit_code == 2 and result.stderr == shown


def test_ci_runs_the_readme_test_command():
    command = re.search(r"```bash\n(pip install torch[^\n]+)\n```", README).group(1)
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert command in ci.splitlines()


def test_run_examples_in_the_readme():
    commands = [line.strip() for line in README.splitlines() if line.strip().startswith("convcalc run ")]
    runnable = [c for c in commands if "INPUT" not in c and "FILE" not in c]
    assert runnable
    for command in runnable:
        result = _run(command)
        assert result.exit_code == 0, (command, result.stderr)


def test_memory_refusal_example_matches():
    block = re.search(r"```\n\$ (convcalc run [^\n]+)\n(error: memory.*?)```", README, re.S)
    result = _run(block.group(1))
    assert result.exit_code == 1 and result.stderr == block.group(2)


def test_compare_example_matches():
    block = re.search(r"```\n\$ (convcalc compare [^\n]+)\n(.*?)```", README, re.S)
    result = _run(block.group(1))
    assert result.exit_code == 0 and result.stdout == block.group(2)


def test_networks_examples_match():
    for command, shown in re.findall(r"```\n\$ (convcalc shape --preset [^\n]+)\n(.*?)```", README, re.S):
        result = _run(command)
        output = result.stdout if result.exit_code == 0 else result.stderr
        assert output.startswith(shown.rstrip("\n").split("\n")[0]), command
        if result.exit_code == 0:
            assert output == shown


def test_block_example_in_the_readme_loads():
    from convcalc import analyse, load_document

    text = next(block for block in re.findall(r"```yaml\n(.*?)```", README, re.S) if "blocks:" in block)
    analysis = analyse(load_document(text))
    assert analysis.output_shape == (64, 224, 224)
    assert [r.name for r in analysis.layers if r.name][-1] == "layer1.1"


def test_solve_examples_in_the_readme():
    for command, shown in re.findall(r"```\n\$ (convcalc solve [^\n]+)\n(.*?)```", README, re.S):
        result = _run(command)
        assert result.exit_code == 0 and result.stdout == shown, command
    inline = re.findall(r"`(convcalc solve [^`]+)`", README)
    for command in [line for line in README.splitlines() if line.startswith("convcalc solve ")] + inline:
        assert _run(command).exit_code == 0, command


def test_explain_examples_in_the_readme():
    for command, shown in re.findall(r"```\n\$ (convcalc explain [^\n]+)\n(.*?)```", README, re.S):
        result = _run(command)
        assert result.exit_code == 0 and result.stdout == shown, command
    for command in re.findall(r"`(convcalc explain [^`]+)`", README):
        assert _run(command).exit_code == 0, command


def test_every_command_and_option_is_in_the_readme():
    import typer.main

    from convcalc.cli import app

    group = typer.main.get_command(app)
    missing = []
    for name, command in group.commands.items():
        if f"convcalc {name}" not in README:
            missing.append(f"convcalc {name}")
        for param in command.params:
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("--") and option not in ("--help",) and option not in README:
                    missing.append(f"{name} {option}")
    assert not missing, missing


def test_every_command_help_has_an_example():
    import typer.main

    from convcalc.cli import app

    for name in typer.main.get_command(app).commands:
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0 and f"convcalc {name}" in result.stdout, name


def test_every_command_line_in_the_readme_runs():
    inside, lines = False, []
    for line in README.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line)
    commands = [line.split("  #")[0].split("  (")[0].strip() for line in lines
                if line.startswith("convcalc ") and not any(c in line for c in "<>|")
                and not any(word in line for word in ("INPUT", "FILE", "LAYER"))]
    assert len(commands) >= 8
    for command in commands:
        result = _run(command)
        assert result.exit_code == 0, (command, result.stderr)


def test_the_json_schema_example_is_what_the_program_prints():
    import json

    example = re.search(r"For\n`(convcalc shape [^`]+)`[^\n]*\n[^\n]*\n\n```json\n(.*?)```", README, re.S)
    result = _run(example.group(1))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(example.group(2))
