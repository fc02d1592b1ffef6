"""The stable JSON form of an analysis (schema ``convcalc.shape/1``).

Numbers are plain Python ints. Receptive-field values that are not whole
numbers are exact fractions written as strings, ``"3/2"``; a jump of
``null`` marks an axis that stopped being spatial (after Flatten or Linear).
``varies`` is true on an axis where fields are not uniform: their size or
placement depends on the output position (transposed convolution,
upsampling, adaptive pooling); ``size`` is then the largest.
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


def analysis_to_dict(analysis) -> dict:
    network = analysis.network
    totals = analysis.totals
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
                "receptive_field": receptive_field_to_dict(r.receptive_field),
                "notes": list(r.notes),
            }
            for r in analysis.layers
        ],
        "output_shape": list(analysis.output_shape),
        "totals": {
            "params": totals.params,
            "macs": totals.macs,
            "flops": totals.flops,
            "activation_bytes": totals.activation_bytes,
            "param_bytes": totals.param_bytes,
        },
    }


def comparison_to_dict(comparison) -> dict:
    """The ``convcalc.compare/1`` object: the standard layer and every variant."""
    from .compare import COMPARE_SCHEMA, describe_layers

    standard = comparison.standard.analysis
    variants = []
    for result in comparison.results:
        variant = result.variant
        entry: dict = {"name": variant.name, "applicable": variant.applicable}
        if not variant.applicable:
            entry.update({"reason": variant.reason, "layers": [], "params": None, "macs": None, "flops": None,
                          "activation_bytes": None, "ratio_macs": None})
        else:
            totals = result.analysis.totals
            entry.update({
                "summary": describe_layers(result),
                "layers": analysis_to_dict(result.analysis)["layers"],
                "params": totals.params,
                "macs": totals.macs,
                "flops": totals.flops,
                "activation_bytes": totals.activation_bytes,
                "ratio_macs": None if result.ratio_macs is None else float(result.ratio_macs),
                "ratio_macs_exact": encode_fraction(result.ratio_macs),
            })
            if result.closed_form is not None:
                entry["closed_form_ratio"] = float(result.closed_form)
                entry["closed_form_ratio_exact"] = encode_fraction(result.closed_form)
        entry["notes"] = list(variant.notes)
        if result.seconds is not None:
            entry["run"] = {"seconds": result.seconds,
                            "ratio": result.seconds / comparison.standard.seconds if comparison.standard.seconds else None}
        variants.append(entry)
    return {
        "schema": COMPARE_SCHEMA,
        "input_shape": list(comparison.input_shape),
        "output_shape": list(standard.output_shape),
        "batch": standard.network.batch,
        "dtype": standard.network.dtype,
        "bias": comparison.layer.bias,
        "variants": variants,
    }
