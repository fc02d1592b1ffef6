"""The stable JSON form of an analysis (schema ``convcalc.shape/1``).

Numbers are plain Python ints. Receptive-field values that are not whole
numbers are exact fractions written as strings, ``"3/2"``; a jump of
``null`` marks an axis that stopped being spatial (after Flatten or Linear).
``varies`` is true on an axis where fields are not uniform: their size or
placement depends on the output position (transposed convolution,
upsampling, adaptive pooling); ``size`` is then the largest.

Memory (``engine/memory.py``): ``saved_bytes`` per layer and the training
figures assume a training step with the given optimizer; ``saved_bytes`` is
null for a layer whose saved tensors convcalc does not know, and
``training.exact`` is then false. ``roofline`` (``engine/roofline.py``) has
each layer's minimum bytes and arithmetic intensity; its bound and seconds,
and ``totals.roofline``, are null unless a device is given.
"""

from __future__ import annotations

from fractions import Fraction

SHAPE_SCHEMA = "convcalc.shape/1"


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


def decode_fraction(value: int | str | None) -> Fraction | None:
    """The inverse of ``encode_fraction``, for readers of the JSON.

    >>> decode_fraction("-3/2")
    Fraction(-3, 2)
    """
    return None if value is None else Fraction(value)


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

    network = analysis.network
    totals = analysis.totals
    peak = inference_memory(analysis)
    training = training_memory(analysis, optimizer)
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
            for r, saved, bound in zip(analysis.layers, training.saved, bounds.layers)
        ],
        "output_shape": list(analysis.output_shape),
        "totals": {
            "params": totals.params,
            "macs": totals.macs,
            "flops": totals.flops,
            "activation_bytes": totals.activation_bytes,
            "param_bytes": totals.param_bytes,
            "trainable_params": totals.trainable_params,
            "uncounted_layers": totals.uncounted_layers,
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
