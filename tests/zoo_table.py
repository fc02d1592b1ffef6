"""The table of torchvision's zoo in docs/model.md: convcalc's figures beside torchvision's published ones.

    python -m tests.zoo_table                    (computes and prints the Markdown table, model by model)
    python -m tests.zoo_table --survey FILE      (the same table from benchmarks/zoo_survey.py --save FILE)

Every model of ``torchvision_models.EVERY`` (classification, video, segmentation, optical flow) at
the input torchvision evaluates it at, built as its published weights are (segmentation models
with their auxiliary head). A slow test checks docs/model.md holds the rows of the documented models.
"""

from __future__ import annotations

import json
import sys

from .torchvision_models import EVERY, build, input_shape, published

MODELS = EVERY
HEADER = ("| model | input | params | torchvision params | MACs | torchvision GFLOPS |\n"
          "| --- | --- | ---: | ---: | ---: | ---: |")


def evaluation_size(name: str) -> int:
    """The image size torchvision evaluates the model at (its published figures are for it)."""
    return input_shape(name)[-1]


def format_row(name: str, shape, params: int | None, macs: int | None, uncounted: int = 0, error: str = "") -> str:
    """One row; a model convcalc cannot read, or reads with layers it cannot cost, says so."""
    ours_params, ours_macs = (f"{params:,}", f"{macs:,}") if error == "" else ("not read", "not read")
    if uncounted:
        ours_macs += f" + {uncounted} not counted"
    theirs = published(name) or (None, None)
    their_params = "" if theirs[0] is None else f"{theirs[0]:,}"
    their_gflops = "" if theirs[1] is None else f"{theirs[1]}"
    return (f"| {name} | {'x'.join(map(str, shape))} | {ours_params} | {their_params} | {ours_macs} | "
            f"{their_gflops} |")


def row(name: str) -> str:
    from convcalc import analyse, from_torch

    shape = input_shape(name)
    analysis = analyse(from_torch(build(name, published_layout=True), shape), receptive_fields=False)
    uncounted = sum(not layer.counted for layer in analysis.layers)
    return format_row(name, shape, analysis.totals.params, analysis.totals.macs, uncounted)


def rows_from_survey(path: str):
    """The rows from the records benchmarks/zoo_survey.py saved (the same figures, computed there)."""
    records = {}
    with open(path) as lines:
        for text in lines:
            record = json.loads(text)
            if not record.get("detection"):
                records[record["model"]] = record
    for name in MODELS:
        if name in records:
            r = records[name]
            yield format_row(name, input_shape(name), r.get("params"), r.get("macs"), len(r.get("uncounted", ())),
                             r.get("error", ""))


if __name__ == "__main__":
    print(HEADER)
    if sys.argv[1:2] == ["--survey"]:
        for line in rows_from_survey(sys.argv[2]):
            print(line)
    else:
        for name in MODELS:
            print(row(name), flush=True)
