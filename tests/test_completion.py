"""Shell completion: the committed scripts are what the program generates, and
completing offers commands, options, layer kinds and presets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcalc.cli import app, completion_script

ROOT = Path(__file__).parent.parent
FILES = {"bash": "completions/bash/convcalc", "zsh": "completions/zsh/_convcalc", "fish": "completions/fish/convcalc.fish"}


@pytest.mark.parametrize("shell", sorted(FILES))
def test_committed_scripts_match_the_program(shell):
    committed = (ROOT / FILES[shell]).read_text()
    assert committed == completion_script(shell), f"regenerate: python -m convcalc completion {shell} > {FILES[shell]}"
    assert CliRunner().invoke(app, ["completion", shell]).stdout == committed


def complete(words: str) -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(cword), "_CONVCALC_COMPLETE": "complete_bash"}
    result = subprocess.run([sys.executable, "-m", "convcalc"], env=env, capture_output=True, text=True)
    return result.stdout.split()


def test_completes_commands_options_kinds_and_presets():
    assert {"shape", "run", "compare", "solve", "explain", "presets", "completion"} <= set(complete("convcalc "))
    assert "--preset" in complete("convcalc shape --pr")
    assert {"maxpool", "maxpool2d"} <= set(complete("convcalc shape 3x8x8 maxp"))
    assert "conv:64,kernel_size=" in complete("convcalc shape 3x8x8 conv:64,ker")
    assert complete("convcalc shape --preset resnet") == ["resnet18", "resnet50"]
    assert complete("convcalc shape 3x8x8 relu --device a100") == ["a100-80gb", "a100-40gb"]
    assert complete("convcalc compare 8x8x8 conv:8,k=3 --device mea") == ["measure"]
    assert complete("convcalc shape 3x8x8 relu --optimizer ada") == ["adam", "adamw"]


def test_unknown_shell():
    result = CliRunner().invoke(app, ["completion", "tcsh"])
    assert result.exit_code == 2 and "use one of bash, zsh, fish" in result.stderr


def bash_completes(line: str) -> list[str]:
    """What real bash offers: the committed script, called as bash calls it (COMP_LINE, COMP_POINT)."""
    script = (f"source {ROOT / FILES['bash']}\nCOMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n"
              "_convcalc_completion convcalc\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.skipif(subprocess.run(["which", "bash"], capture_output=True).returncode, reason="bash not installed")
def test_bash_completes_after_colon_and_equals_with_its_default_word_breaks():
    # bash breaks words at ':' and '=': it replaces only what follows them, so that is what is offered
    assert "kernel_size=" in bash_completes("convcalc shape 3x8x8 conv:")
    assert bash_completes("convcalc shape 3x8x8 conv:64,ker") == ["64,kernel_size="]
    assert bash_completes("convcalc shape 3x8x8 conv:64,k=3,pa") == ["3,padding=", "3,padding_mode="]
    assert {"maxpool", "maxpool2d"} <= set(bash_completes("convcalc shape 3x8x8 maxp"))
    assert bash_completes("convcalc shape --preset res") == ["resnet18", "resnet50"]


def _shell(name: str) -> bool:
    return subprocess.run(["which", name], capture_output=True).returncode == 0


def _path_env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


@pytest.mark.skipif(not _shell("fish"), reason="fish not installed")
def test_fish_completes_in_the_real_shell():
    def fish(line: str) -> list[str]:
        script = f"source {ROOT / FILES['fish']}; complete -C {line!r}"
        result = subprocess.run(["fish", "-c", script], capture_output=True, text=True, env=_path_env())
        assert result.returncode == 0, result.stderr
        return [row.split("\t")[0] for row in result.stdout.splitlines() if row]

    assert "conv:64,kernel_size=" in fish("convcalc shape 3x8x8 conv:64,k")
    assert fish("convcalc shape --preset res") == ["resnet18", "resnet50"]
    assert "maxpool2d" in fish("convcalc shape 3x8x8 maxp")


@pytest.mark.skipif(not _shell("zsh"), reason="zsh not installed")
def test_zsh_completes_in_the_real_shell():
    # zsh's completion builtins work only inside a completion widget: _arguments is stood in for by a
    # function printing what it is given, everything else is the committed script run by zsh
    def zsh(*words: str) -> str:
        quoted = " ".join(f"'{w}'" for w in words)
        script = (f"source {ROOT / FILES['zsh']} 2>/dev/null; _arguments() {{ print -l -- \"$@\"; }}; "
                  f"words=({quoted}); CURRENT={len(words)}; _convcalc_completion")
        result = subprocess.run(["zsh", "-c", script], capture_output=True, text=True, env=_path_env())
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "conv\\:64,kernel_size=" in zsh("convcalc", "shape", "3x8x8", "conv:64,k")  # zsh does not split at ':'
    assert "resnet18" in zsh("convcalc", "shape", "--preset", "res")


def test_the_shared_network_options_complete_alike_in_every_command():
    for command in ("shape", "run", "explain", "convert"):
        assert complete(f"convcalc {command} --preset resnet") == ["resnet18", "resnet50"], command
        assert complete(f"convcalc {command} 3x8x8 relu --dtype float") == ["float32", "float16", "float64"], command
    assert complete("convcalc compare 8x8x8 conv:8,k=3 --dtype bf") == ["bfloat16"]
