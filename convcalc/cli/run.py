"""convcalc run: execute the layers on random data with the NumPy backend."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from ..engine.errors import ConvcalcError, SpecError
from .app import app
from .common import fail, input_notes, output_format, wants_json
from .options import Format, Json, Optimizer
from .show import show
from .source import NetworkSource, reads_network
from .values import memory_limit_option, positive_option

RUN_EXAMPLES = """
Examples:

  convcalc run 3x224x224 conv:64,k=7,s=2,p=3 bn relu --batch 8

  convcalc run 64x16x16 convT:32,k=4,s=2,p=1 --dtype float64 --json

  convcalc run -f net.json --repeat 5 --memory-limit 2GiB
"""


@app.command(epilog=RUN_EXAMPLES)
@reads_network
def run(
    source: NetworkSource,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the random input and weights.")] = 0,
    repeat: Annotated[Optional[int], typer.Option(
        "--repeat", metavar="N", help="Time each layer this many warm runs (default: automatic, as timeit "
                                      "chooses), at most 10,000; a layer stops after 10 s of them. The median "
                                      "counts.")] = None,
    memory_limit: Annotated[Optional[str], typer.Option(
        "--memory-limit", metavar="SIZE",
        help="Refuse anything needing more memory, e.g. 2GiB (default: half the free memory).")] = None,
    optimizer: Optimizer = "adam",
    as_json: Json = False,
    output: Format = None,
) -> None:
    """Execute the layers on random data with the NumPy backend: time, GFLOP/s and output values per layer."""
    network = None
    try:
        fmt = output_format(as_json, output)
        if not 0 <= seed < 2**63:
            raise SpecError(f"--seed {seed} is not a seed", hint="give a non-negative integer below 2^63, e.g. --seed 3",
                            field="seed")
        positive_option(repeat, "--repeat", 5)
        limit = memory_limit_option(memory_limit)
        network = source.network()
        from ..backend.memory import set_memory_limit
        from ..verbs.execute import execute

        set_memory_limit(limit)
        with _progress(network, repeat) as progress:
            execution = execute(network, seed=seed, repeat=repeat, progress=progress)
        data = execution.to_dict(optimizer.lower())
    except ConvcalcError as err:
        fail(err, wants_json(as_json, output), input_notes(source, network))
    from ..output.renderers import Result
    from ..output.reports import run_table

    show(Result(run_table(execution, optimizer.lower()), data, data["layers"]), fmt)


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
