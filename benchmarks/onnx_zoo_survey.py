"""Every torchvision model through ONNX, from both of PyTorch's exporters: convcalc's ``from_onnx`` against PyTorch.

    python benchmarks/onnx_zoo_survey.py [--only NAME ...] [--exporter legacy|dynamo|both] [--save FILE]
                                         [--timeout SECONDS]

For each model of ``tests/torchvision_models.EVERY`` (classification, video,
segmentation, RAFT on its two frames stacked), at the input its weights'
transforms give (``input_shape``), with random weights (an exporter stores
equal tensors, a fresh model's zero biases, once): the model is exported with
``torch.onnx.export(..., dynamo=False)`` (the TorchScript exporter, opset 17,
eval mode, a dynamic batch) and/or ``dynamo=True`` (torch.export; a dynamic
batch where it allows one, else its default fixed batch of 1), to a file with
external data beside it for models of over 2 GiB of parameters, and the file
is read by ``from_onnx`` and analysed. The oracle is PyTorch (``oracle``):
``FlopCounterMode``'s total over one forward pass / 2 (grad enabled, math
attention backend) for the MACs, the model's output shape, and, for the
parameters, the file itself: the float initializers its nodes read, but for
BatchNormalization's running statistics (buffers, not parameters), Clip's
bounds (torch.export stores ReLU6's as initializers), what builds a mask
(ScatterND's updates, Where's and comparisons' operands), the model's
buffers (by name: Swin V2's table of relative coordinates) and single numbers
that name no parameter (an attention's scale). The line
says whether that equals the model's own count and, where it does not, why
(BatchNorm folded into the convolutions by either exporter, or constants
the exporter computed from parameters and stored, such as a gathered bias
table). A product the file stores done rather than computing (torch.export's
Swin V2 files hold the position-bias MLP's first product with its fixed table:
``stored_products`` finds it by its values) is work the file does not do: the
MACs oracle is PyTorch's less that product's, and the line says by how much.
A model is exact when MACs, output shape and file parameters agree and
no layer is left uncounted; otherwise the line says what differs, the first
uncounted node (name, op type), convcalc's refusal (which names the node), or
the exporter's own failure.

The models run in one worker process at a time (the largest, ``HEAVY``, each
in its own and last); a worker that dies or passes ``--timeout`` for one model
is one failed line, and the rest go on in a new worker. ``--save`` appends one
JSON object a model and exporter.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")
EXPORTERS = ("legacy", "dynamo")


# Above this many bytes of parameters a model is exported to a file with external data: protobuf holds no
# more than 2 GiB in one message
LARGE = 2**31 - 2**27


def export(model, shape, exporter: str, directory: str) -> tuple[bytes | str, str]:
    """The model's ONNX file (its bytes, or for the largest models a path in ``directory`` with its external
    data beside it), and how its batch was exported (dynamic or fixed)."""
    import torch

    large = sum(p.numel() * p.element_size() for p in model.parameters()) > LARGE
    path = os.path.join(directory, "model.onnx")
    if exporter == "legacy":
        buffer = io.BytesIO()
        torch.onnx.export(model, (torch.randn(1, *shape),), path if large else buffer, dynamo=False,
                          input_names=["x"], opset_version=17, dynamic_axes={"x": {0: "batch"}})
        return (path if large else buffer.getvalue()), "dynamic"
    from convcalc.readers.pytorch.chunks import even_chunks

    program = None
    # torch.export specializes a batch of 1, so the example has 2; a model whose chunk of the batch needs a
    # guard (RAFT's two frames) is exported again with its chunks traced as the equal splits they are
    for rewrite, batch in ((contextlib.nullcontext, "dynamic"), (lambda: even_chunks(torch), "dynamic, even chunks")):
        try:
            with rewrite():
                program = torch.onnx.export(model, (torch.randn(2, *shape),), dynamo=True, verbose=False,
                                            dynamic_shapes=({0: torch.export.Dim("batch")},))
        except Exception:  # noqa: BLE001 - a model whose batch torch.export cannot keep symbolic
            program = None
            continue
        if _symbolic_batch(program.model_proto):  # the exporter may fix the batch without a word
            break
        program = None
    if program is None:  # its default: the batch fixed
        program = torch.onnx.export(model, (torch.randn(1, *shape),), dynamo=True, verbose=False)
        batch = "fixed 1"
    if large:
        program.save(path, external_data=True)
        return path, batch
    return program.model_proto.SerializeToString(), batch


def _symbolic_batch(proto) -> bool:
    """Whether the file's input keeps its batch a symbol."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return bool(dims) and bool(dims[0].dim_param)


def _proto(source):
    import onnx

    if isinstance(source, str):
        return onnx.load(source, load_external_data=False)  # the initializers' shapes are enough
    return onnx.load_model_from_string(source)


# Inputs that hold no learned values: BatchNormalization's running statistics, Clip's bounds (torch.export
# stores ReLU6's 0 and 6 as initializers), and what builds a mask (the values ScatterND writes, Where's and
# a comparison's operands: Swin's shifted-window mask, its -100 fill)
_NOT_LEARNED = {"BatchNormalization": (3, 4), "Clip": (1, 2), "ScatterND": (1, 2), "Where": (0, 1, 2),
                "Equal": (0, 1), "Less": (0, 1), "Greater": (0, 1)}


def file_parameters(source, buffers=frozenset(), parameters=frozenset()) -> tuple[int, dict]:
    """The float initializers the file's nodes read (BatchNormalization's running statistics, Clip's bounds and
    the model's buffers by name and single numbers that name no parameter left out),
    and the op types that read each: what the line's reasons are drawn from."""
    import numpy as np
    import onnx

    from tests.torchvision_models import coordinate_grid

    model = _proto(source)
    statistics = {n.input[i] for n in model.graph.node for i in _NOT_LEARNED.get(n.op_type, ()) if len(n.input) > i}
    readers: dict = {}
    for n in model.graph.node:
        for name in n.input:
            if name not in statistics:
                readers.setdefault(name, n.op_type)
    floats = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer
              if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)
              and t.name in readers and t.name not in buffers and (int(np.prod(t.dims)) > 1 or t.name in parameters)
              and not coordinate_grid(t)}  # RAFT's, which torch.export stores: fixed values
    batch_norms = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    return sum(floats.values()), {"names": floats, "readers": readers, "batch_norm_nodes": batch_norms}


def why_parameters_differ(model, facts: dict) -> str:
    """Why the file's parameters are not the model's: BatchNorm folded into the convolutions, or tensors the
    exporter computed from parameters and stored (read by an operator other than a convolution)."""
    import torch

    own = dict(model.named_parameters())
    reasons = []
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms and facts["batch_norm_nodes"] < len(norms):
        reasons.append(f"BatchNorm folded ({len(norms) - facts['batch_norm_nodes']} of {len(norms)} into the "
                       "convolutions)")
    computed = {n: size for n, size in facts["names"].items()
                if n not in own and facts["readers"][n] not in ("Conv", "ConvTranspose")}
    if computed:
        first = next(iter(computed))
        reasons.append(f"{len(computed)} tensors computed from parameters and stored ({sum(computed.values()):,} "
                       f"elements, e.g. {first[-60:]}, read by {facts['readers'][first]})")
    return "; ".join(reasons) or "stored tensors that are no parameter"


def survey(name: str, exporter: str) -> dict:
    """One model through one exporter: convcalc's figures from the file against PyTorch's and the file's."""
    import torch

    from convcalc import analyse
    from convcalc.readers.onnx import from_onnx
    from tests.torchvision_models import build, input_shape, oracle, stored_products

    torch.manual_seed(0)
    model = build(name)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    shape = input_shape(name)
    record = {"model": name, "exporter": exporter, "input": list(shape)}
    start = time.perf_counter()
    directory = tempfile.TemporaryDirectory()
    try:
        data, record["batch"] = export(model, shape, exporter, directory.name)
    except Exception as error:  # noqa: BLE001 - the survey reports every failure and goes on
        record["export_error"] = f"{type(error).__name__}: {error}".splitlines()[0][:400]
        record["export_s"] = round(time.perf_counter() - start, 1)
        return record
    record["export_s"] = round(time.perf_counter() - start, 1)
    if isinstance(data, str):
        record["external_data"] = True
    start = time.perf_counter()
    try:
        network = from_onnx(data)
        analysis = analyse(network, receptive_fields=False)
    except Exception as error:  # noqa: BLE001
        record["error"] = f"{type(error).__name__}: {error}"[:600]
        record["where"] = traceback.format_exc().strip().splitlines()[-3:]
    else:
        ops = {n.name: n.op_type for n in _proto(data).graph.node}
        record.update(params=analysis.totals.params, macs=analysis.totals.macs,
                      output=list(analysis.output_shape), layers=len(analysis.layers),
                      uncounted=[[r.name, r.type, ops.get(r.name.rsplit("/", 1)[-1]), list(r.output_shape)]
                                 for r in analysis.layers if not r.counted])
    record["convcalc_s"] = round(time.perf_counter() - start, 1)
    in_file, facts = file_parameters(data, {name for name, _ in model.named_buffers()},
                                     {name for name, _ in model.named_parameters()})
    params, macs, output = oracle(model, shape)
    stored = stored_products(model, _proto(data))  # work the file stores done (torch.export's Swin V2)
    record.update(file_params=in_file, torch_params=params, torch_macs=macs - stored, torch_output=list(output),
                  stored_macs=stored)
    if in_file != params:
        record["params_note"] = why_parameters_differ(model, facts)
    record["exact"] = ("error" not in record and not record["uncounted"] and record["params"] == in_file
                       and record["macs"] == macs - stored and tuple(record["output"]) == output)
    return record


def line(r: dict) -> str:
    head = f"{r['model']:28s} {r['exporter']:6s} {'x'.join(map(str, r.get('input', ['-']))):>12s}"
    if "export_error" in r:
        return f"{head} {r.get('export_s', 0):6.1f}s  EXPORT FAILS  {r['export_error']}"
    times = f"{r['export_s']:6.1f}s {r.get('convcalc_s', 0):5.1f}s"
    if "error" in r:
        return f"{head} {times}  REFUSED  {r['error']}"
    status = "exact" if r["exact"] else "DIFFERS"
    figures = f"params {r['params']:,}"
    if r["params"] != r["file_params"]:
        figures += f" vs the file's {r['file_params']:,}"
    figures += (" (the model's)" if r["file_params"] == r["torch_params"] else
                f" (model {r['torch_params']:,}: {r.get('params_note', '')})")
    figures += f"  MACs {r['macs']:,}{'' if r['macs'] == r['torch_macs'] else ' vs ' + format(r['torch_macs'], ',')}"
    if r.get("stored_macs"):
        figures += f" (PyTorch's less {r['stored_macs']:,} the file stores done)"
    if r["output"] != r["torch_output"]:
        figures += f"  output {r['output']} vs {r['torch_output']}"
    if r["uncounted"]:
        first = r["uncounted"][0]
        figures += f"  {len(r['uncounted'])} uncounted, first {first[0]} ({first[2] or first[1]})"
    return f"{head} {times}  {status:7s} batch {r['batch']}{', external data' * bool(r.get('external_data'))}  " \
           f"{figures}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="these models only")
    parser.add_argument("--exporter", choices=("legacy", "dynamo", "both"), default="both")
    parser.add_argument("--save", default=None, help="append one JSON object a model and exporter to this file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one model may take (default 900)")
    parser.add_argument("--worker", nargs="+", default=None, help=argparse.SUPPRESS)  # a worker process
    args = parser.parse_args()
    if args.worker:
        for job in args.worker:
            exporter, name = job.split(":")
            print(json.dumps(survey(name, exporter)), flush=True)
        return
    from tests.torchvision_models import EVERY, HEAVY

    names = args.only or [name for name in EVERY if name not in HEAVY] + HEAVY
    exporters = EXPORTERS if args.exporter == "both" else (args.exporter,)
    jobs = [f"{exporter}:{name}" for exporter in exporters for name in names]
    heavy = [job for job in jobs if job.split(":")[1] in HEAVY]
    batches = [[job for job in jobs if job not in heavy]] + [[job] for job in heavy]
    began = time.perf_counter()
    records = []
    with open(args.save or os.devnull, "a") as out:
        for batch in batches:
            for record in _run([job for job in batch], args.timeout):
                records.append(record)
                print(line(record), flush=True)
                out.write(json.dumps(record) + "\n")
                out.flush()
    for exporter in exporters:
        mine = [r for r in records if r["exporter"] == exporter]
        print(f"{exporter}: {sum(bool(r.get('exact')) for r in mine)} of {len(mine)} models exact")
    print(f"{time.perf_counter() - began:.0f} s in all")


def _run(batch, timeout: float):
    """Each job's record from a worker; a worker that dies or overruns the timeout is one failed record,
    and the rest run in a new one."""
    while batch:
        with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a worker's warnings never fill it and block
            worker = subprocess.Popen([sys.executable, __file__, "--worker", *batch], stdout=subprocess.PIPE,
                                      stderr=errors, cwd=ROOT)
            pending, deadline, died = b"", time.monotonic() + timeout, None
            while batch:
                ready, _, _ = select.select([worker.stdout], [], [], max(0.0, deadline - time.monotonic()))
                if not ready:
                    worker.kill()
                    died = f"took more than {timeout:.0f} s"
                    break
                chunk = os.read(worker.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                pending += chunk
                while b"\n" in pending:
                    text, pending = pending.split(b"\n", 1)
                    yield json.loads(text)
                    batch = batch[1:]
                    deadline = time.monotonic() + timeout
            worker.wait()
            if batch:
                exporter, name = batch[0].split(":")
                if died is None:
                    errors.seek(0)
                    tail = (errors.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                    died = f"the process died ({worker.returncode}): {tail}"
                yield {"model": name, "exporter": exporter, "export_error": died, "export_s": 0}
                batch = batch[1:]


if __name__ == "__main__":
    main()
