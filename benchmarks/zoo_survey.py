"""Every torchvision model through ``from_torch``: convcalc's figures against PyTorch's, and the time each takes.

    python benchmarks/zoo_survey.py [--only NAME ...] [--from NAME] [--save FILE] [--detection]

For each model of ``tests/torchvision_models.EVERY`` (classification, video,
segmentation, RAFT on its two frames stacked), at the input torchvision
evaluates it at (``input_shape``), with random weights: convcalc's capture and
analysis (``receptive_fields=False``) against the oracle, PyTorch itself:
``sum(p.numel())`` over the model's parameters, ``FlopCounterMode``'s total over
one forward pass / 2 (grad enabled, math attention backend), the output's
shape. The models run one at a time in worker processes (the ordinary ones
in one, each of the largest, ``HEAVY``, in its own, last). A model is exact
when all three agree and no layer is left uncounted; otherwise the line says what differs, the first uncounted layer (its
name, type and ATen op), or the exception. ``--detection`` also tries
torchvision's detection models and prints why each is not read. ``--save``
writes one JSON object a model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")


def survey(name: str) -> dict:
    """One model's figures from convcalc and from PyTorch, with the time each took."""
    from convcalc import analyse, from_torch
    from tests.torchvision_models import EVERY, ZOO, build, input_shape, oracle, published

    # as torchvision publishes them: segmentation models and Inception v3 with their auxiliary heads
    model = build(name, published_layout=True)
    shape = input_shape(name)
    record = {"model": name, "input": list(shape), "published": published(name),
              "in_zoo": name in ZOO, "order": EVERY.index(name)}
    start = time.perf_counter()
    try:
        network = from_torch(model, shape)
        analysis = analyse(network, receptive_fields=False)
    except Exception as error:  # noqa: BLE001 - the survey reports every failure and goes on
        record["error"] = f"{type(error).__name__}: {error}"[:600]
        record["where"] = traceback.format_exc().strip().splitlines()[-3:]
    else:
        ops = {layer.name: getattr(layer, "op", None) for layer in network.layers}
        record.update(params=analysis.totals.params, macs=analysis.totals.macs,
                      output=list(analysis.output_shape), layers=len(analysis.layers),
                      uncounted=[[r.name, r.type, ops.get(r.name), list(r.output_shape)]
                                 for r in analysis.layers if not r.counted])
    record["convcalc_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    params, macs, output = oracle(model, shape)
    record.update(torch_params=params, torch_macs=macs, torch_output=list(output),
                  oracle_s=round(time.perf_counter() - start, 2))
    record["exact"] = ("error" not in record and not record["uncounted"] and record["params"] == params
                       and record["macs"] == macs and tuple(record["output"]) == output)
    return record


def detection(name: str) -> dict:
    """What happens when convcalc reads a detection model, on a wrapper taking one image tensor."""
    import torch

    from convcalc import from_torch
    from tests.torchvision_models import torchvision

    model = getattr(torchvision().models.detection, name)(weights=None, weights_backbone=None).eval()

    class OneImage(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, image):
            return self.model(list(image))[0]["boxes"]

    start = time.perf_counter()
    try:
        from_torch(OneImage(), (3, 320, 320))
        outcome = "read"
    except Exception as error:  # noqa: BLE001
        outcome = f"{type(error).__name__}: {error}"[:400]
    return {"model": name, "detection": True, "error": outcome, "convcalc_s": round(time.perf_counter() - start, 2)}


def line(r: dict) -> str:
    head = f"{r['model']:32s} {'x'.join(map(str, r.get('input', ['-']))):>14s}"
    if r.get("detection"):
        return f"{head}  not read: {r['error']}"
    times = f"{r['convcalc_s']:7.1f}s {r['oracle_s']:6.1f}s"
    if "error" in r:
        return f"{head} {times}  FAILS  {r['error']}  at {r['where'][0].strip() if r['where'] else ''}"
    status = "exact" if r["exact"] else "DIFFERS"
    figures = (f"params {r['params']:,}{'' if r['params'] == r['torch_params'] else ' vs ' + format(r['torch_params'], ',')}"
               f"  MACs {r['macs']:,}{'' if r['macs'] == r['torch_macs'] else ' vs ' + format(r['torch_macs'], ',')}")
    if r["output"] != r["torch_output"]:
        figures += f"  output {r['output']} vs {r['torch_output']}"
    if r["uncounted"]:
        first = r["uncounted"][0]
        figures += f"  {len(r['uncounted'])} uncounted, first {first[0]} ({first[1]}, {first[2]}, out {first[3:]})"
    return f"{head} {times}  {status:7s} {figures}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="these models only")
    parser.add_argument("--from", dest="start", default=None, help="start at this model of the list")
    parser.add_argument("--save", default=None, help="write one JSON object a model to this file")
    parser.add_argument("--detection", action="store_true", help="try the detection models too")
    parser.add_argument("--worker", nargs="+", default=None, help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.worker:
        for job in args.worker:
            kind, name = job.split(":")
            print(json.dumps(survey(name) if kind == "model" else detection(name)), flush=True)
        return
    from tests.torchvision_models import DETECTION, EVERY, HEAVY

    names = args.only or [name for name in EVERY if name not in HEAVY] + HEAVY
    if args.start:
        names = names[names.index(args.start):]
    jobs = [f"model:{name}" for name in names] + [f"detection:{name}" for name in DETECTION * args.detection]
    began = time.perf_counter()
    records = []
    with open(args.save or os.devnull, "a") as out:
        for batch in _batches(jobs, HEAVY):
            for record in _run(batch):
                records.append(record)
                print(line(record), flush=True)
                out.write(json.dumps(record) + "\n")
                out.flush()
    models = [r for r in records if not r.get("detection")]
    print(f"{sum(bool(r.get('exact')) for r in models)} of {len(models)} models exact, "
          f"{time.perf_counter() - began:.0f} s in all")


def _batches(jobs, heavy):
    """The jobs in worker processes: one process for the models of ordinary size, one for each of the largest."""
    light = [job for job in jobs if job.split(":")[1] not in heavy]
    return ([light] if light else []) + [[job] for job in jobs if job.split(":")[1] in heavy]


def _run(batch):
    """Each job's record from a worker; a worker that dies is one failed record, and the rest run in a new one."""
    while batch:
        worker = subprocess.Popen([sys.executable, __file__, "--worker", *batch], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for text in worker.stdout:
            yield json.loads(text)
            batch = batch[1:]
        worker.wait()
        if batch:
            kind, name = batch[0].split(":")
            tail = (worker.stderr.read().strip().splitlines() or ["no output"])[-1]
            yield {"model": name, "detection": kind == "detection", "error": f"the process died "
                   f"({worker.returncode}): {tail}", "convcalc_s": 0, "oracle_s": 0, "where": []}
            batch = batch[1:]


if __name__ == "__main__":
    main()
