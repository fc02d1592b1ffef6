"""The JSON objects convcalc prints, each named by its schema and described by a JSON Schema file
shipped in ``convcalc/schemas/`` (``json_schema(name)`` reads one; the tests validate real output).

``convcalc.shape/1`` is the analysis, assembled here; ``convcalc run`` prints the same object with
a ``run`` entry per layer and overall. ``convcalc.compare/1`` and ``convcalc.solve/1`` are
assembled by their verbs (``verbs/compare.py``, ``verbs/solve.py``, ``verbs/plan.py``) under the
names below; presets, explain and the error object are assembled here.

Numbers are plain Python ints. Receptive-field values that are not whole
numbers are exact fractions written as strings, ``"3/2"``; a jump of
``null`` marks an axis that stopped being spatial (after Flatten or Linear).
``varies`` is true on an axis where fields are not uniform: their size or
placement depends on the output position (transposed convolution,
upsampling, adaptive pooling); ``size`` is then the largest.

Memory (``engine/memory.py``): ``saved_bytes`` per layer and the training
figures assume a training step with the given optimizer; ``saved_bytes`` is
null for a layer whose saved tensors convcalc does not know, and
``training.exact`` is then false. ``backward_macs`` per layer and ``totals.training_macs``
(forward plus backward, for the batch) are the MACs of a training step (``engine/training.py``),
null where a layer's backward is unknown. ``roofline`` (``engine/roofline.py``) has
each layer's minimum bytes and arithmetic intensity; its bound and seconds,
and ``totals.roofline``, are null unless a device is given.
"""

from __future__ import annotations

import json
from fractions import Fraction
from importlib import resources

SHAPE_SCHEMA = "convcalc.shape/1"
COMPARE_SCHEMA = "convcalc.compare/1"
SOLVE_SCHEMA = "convcalc.solve/1"
PRESETS_SCHEMA = "convcalc.presets/1"
EXPLAIN_SCHEMA = "convcalc.explain/1"
# Each object's JSON Schema file in convcalc/schemas/: the objects above by their names, then the
# run object (convcalc.shape/1 with run entries) and the error object (no schema key of its own).
SCHEMA_FILES = {SHAPE_SCHEMA: "shape-1.json", COMPARE_SCHEMA: "compare-1.json", SOLVE_SCHEMA: "solve-1.json",
                PRESETS_SCHEMA: "presets-1.json", EXPLAIN_SCHEMA: "explain-1.json", "run": "run-1.json",
                "error": "error-1.json"}


def json_schema(name: str) -> dict:
    """The JSON Schema (draft 2020-12) of the object ``name``: a schema name or "run" or "error".

    >>> json_schema("convcalc.shape/1")["title"], json_schema("error")["required"]
    ('convcalc.shape/1', ['error'])
    """
    return json.loads(resources.files(__package__.rpartition(".")[0]).joinpath("schemas", SCHEMA_FILES[name])
                      .read_text(encoding="utf-8"))


def encode_fraction(value: Fraction | None) -> int | str | None:
    """An integral value as a JSON int, any other as the string "p/q".

    >>> encode_fraction(Fraction(3)), encode_fraction(Fraction(-3, 2)), encode_fraction(None)
    (3, '-3/2', None)
    """
    if value is None:
        return None
    if value.denominator == 1:
        return int(value.numerator)
    return f"{value.numerator}/{value.denominator}"


def receptive_field_to_dict(field) -> dict:
    return {
        "size": [encode_fraction(v) for v in field.size],
        "jump": [encode_fraction(v) for v in field.jump],
        "padding": [encode_fraction(v) for v in field.padding],
        "center": [encode_fraction(v) for v in field.centre],
        "varies": list(field.varies),
    }


def analysis_to_dict(analysis, optimizer: str = "adam", device=None) -> dict:
    from .memory import inference_memory, training_memory
    from .roofline import roofline
    from .training import training_macs

    network = analysis.network
    totals = analysis.totals
    peak = inference_memory(analysis)
    training = training_memory(analysis, optimizer)
    step = training_macs(analysis)
    bounds = roofline(analysis, device)
    fields: dict[int, dict] = {}  # layers that pass positions through share their field: encode it once

    def field_of(field) -> dict:
        key = id(field)
        if key not in fields:
            fields[key] = receptive_field_to_dict(field)
        return fields[key]

    return {
        "schema": SHAPE_SCHEMA,
        "input_shape": list(network.input_shape),
        "batch": network.batch,
        "dtype": network.dtype,
        "layers": [
            {
                "index": r.index,
                "name": r.name,
                "from": list(r.inputs),
                "path": list(r.path),
                "type": r.type,
                "summary": r.summary,
                "input_shape": list(r.input_shape),
                "output_shape": list(r.output_shape),
                "params": r.params,
                "macs": r.macs,
                "flops": r.flops,
                "backward_macs": cost.backward,
                "activation_bytes": r.activation_bytes,
                "param_bytes": r.param_bytes,
                "trainable_params": r.trainable,
                "counted": r.counted,
                "saved_bytes": saved,
                "roofline": {"bytes": bound.bytes, "intensity": encode_fraction(bound.intensity),
                             "bound": bound.limit, "seconds": bound.seconds},
                "receptive_field": field_of(r.receptive_field),
                "notes": list(r.notes),
            }
            for r, saved, bound, cost in zip(analysis.layers, training.saved, bounds.layers, step.layers)
        ],
        "output_shape": list(analysis.output_shape),
        "totals": {
            "params": totals.params,
            "macs": totals.macs,
            "flops": totals.flops,
            "training_macs": step.training_macs,
            "activation_bytes": totals.activation_bytes,
            "param_bytes": totals.param_bytes,
            "trainable_params": totals.trainable_params,
            "uncounted_layers": totals.uncounted_layers,
            "unused_params": totals.unused_params,
            "peak_activation_bytes": peak.peak_bytes,
            "peak_layer": peak.peak_layer,
            "training_bytes": training.total_bytes,
            "training": {
                "optimizer": training.optimizer,
                "parameter_bytes": training.parameter_bytes,
                "gradient_bytes": training.gradient_bytes,
                "optimizer_bytes": training.optimizer_bytes,
                "saved_bytes": training.saved_bytes,
                "exact": training.exact,
            },
            "roofline": None if device is None else {
                "device": device.name, "peak_flops": bounds.peak, "bandwidth": device.bandwidth,
                "seconds": bounds.seconds, "memory_bound_share": bounds.memory_share,
            },
        },
    }


def error_object(error: dict, line: int | None = None) -> dict:
    """The error object: ``{"error": ...}`` with an error's ``to_dict()``; under ``--stream``, with the
    number of the line that failed."""
    return {"error": error if line is None else {**error, "line": line}}


def internal_error_object(err: BaseException, line: int) -> dict:
    """The error object for a failure that is a bug in convcalc (one --stream line's)."""
    return error_object({"type": "InternalError", "message": f"internal error: {err!r}", "layer": None,
                         "field": None}, line)


def presets_to_dict(presets) -> dict:
    """The ``convcalc.presets/1`` object, from (name, network, totals, description) of each preset."""
    return {"schema": PRESETS_SCHEMA, "presets": [
        {"name": name, "input_shape": list(network.input_shape), "params": totals.params, "macs": totals.macs,
         "description": description} for name, network, totals, description in presets]}


def explain_to_dict(lines) -> dict:
    """The ``convcalc.explain/1`` object: the explanation's lines of text."""
    return {"schema": EXPLAIN_SCHEMA, "lines": list(lines)}


def receptive_plan_to_dict(plan, receptive_field: int) -> dict:
    """The ``convcalc.solve/1`` object of ``solve --receptive-field``: the layers that reach it."""
    return {"schema": SOLVE_SCHEMA, "receptive_field": receptive_field, "reached": plan.reached,
            "layers": len(plan.layers), "dilations": list(plan.dilations), "size": list(plan.size)}
