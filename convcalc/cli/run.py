"""convcalc run: execute the layers on random data with the NumPy backend."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from ..output.formats import OutputFormat
from .app import app
from .common import fail, network_from, one_input, output_format
from .options import (
    BATCH,
    FILE,
    FORMAT,
    INPUT,
    INPUT_OPTION,
    JSON,
    LAYERS,
    MODEL,
    MODEL_ARG,
    OPTIMIZER,
    PRESET,
)
from .show import show

RUN_EXAMPLES = """
Examples:

  convcalc run 3x224x224 conv:64,k=7,s=2,p=3 bn relu --batch 8

  convcalc run 64x16x16 convT:32,k=4,s=2,p=1 --dtype float64 --json

  convcalc run -f net.json --repeat 5 --memory-limit 2GiB
"""


@app.command(epilog=RUN_EXAMPLES)
def run(
    input_shape: Optional[str] = INPUT,
    layers: Optional[List[str]] = LAYERS,
    file: Optional[str] = FILE,
    preset: Optional[str] = PRESET,
    model: Optional[str] = MODEL,
    model_arg: Optional[List[str]] = MODEL_ARG,
    input_option: Optional[str] = INPUT_OPTION,
    batch: Optional[int] = BATCH,
    dtype: Optional[str] = typer.Option(None, "--dtype", help="float32 (default) or float64."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random input and weights."),
    repeat: Optional[int] = typer.Option(None, "--repeat", help="Time each layer this many warm runs (default: "
                                                                "automatic, as timeit chooses); the median counts."),
    memory_limit: Optional[str] = typer.Option(
        None, "--memory-limit", help="Refuse anything needing more memory, e.g. 2GiB (default: half the free memory)."
    ),
    optimizer: str = OPTIMIZER,
    as_json: bool = JSON,
    output: Optional[OutputFormat] = FORMAT,
) -> None:
    """Execute the layers on random data with the NumPy backend: time, GFLOP/s and output values per layer."""
    try:
        fmt = output_format(as_json, output)
        if not 0 <= seed < 2**63:
            raise SpecError(f"--seed {seed} is not a seed", hint="give a non-negative integer below 2^63, e.g. --seed 3",
                            field="seed")
        network = network_from(one_input(input_shape, input_option), layers, file, batch, dtype, preset, model, model_arg)
        from ..engine.units import parse_bytes

        limit = None if memory_limit is None else parse_bytes(memory_limit)
        if memory_limit is not None and limit is None:
            raise SpecError(f"--memory-limit {memory_limit!r} is not a size", hint="e.g. --memory-limit 2GiB",
                            field="memory_limit")
        from ..backend.memory import set_memory_limit
        from ..verbs.execute import execute

        set_memory_limit(limit)
        with _progress(network, repeat) as progress:
            execution = execute(network, seed=seed, repeat=repeat, progress=progress)
        data = execution.to_dict(optimizer.lower())
    except ConvcalcError as err:
        fail(err, OutputFormat.json if as_json else output)
    from ..output.reports import run_table

    show(run_table(execution, optimizer.lower()), data, fmt, data["layers"])




class _progress:
    """A progress bar on stderr, when stderr is a terminal and the run is long."""

    LONG_MACS = 2 * 10**9

    def __init__(self, network, repeat: int) -> None:
        self.bar = None
        if sys.stderr.isatty() and len(network.layers) > 1:
            from ..engine.analysis import analyse

            try:
                work = analyse(network).totals.macs * (repeat or 5)
            except ConvcalcError:
                work = 0  # execute reports the error
            if work >= self.LONG_MACS:
                from rich.console import Console
                from rich.progress import Progress

                self.bar = Progress(console=Console(stderr=True), transient=True)

    def __enter__(self):
        if self.bar is None:
            return None
        self.bar.start()
        task = self.bar.add_task("running layers", total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()
