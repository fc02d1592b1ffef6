"""Flatten, and Linear over the last axis (as PyTorch applies it, per position)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import strides
from ..errors import BatchAxisError, ShapeError, SpecError
from ..windows import IDENTITY, Global
from ..sizes import volume
from .base import Figures, Layer, Shape, Use, format_shape, gradient_products, saves_folded, saves_input, times_batch
from .kind import spell


@dataclass(frozen=True)
class Flatten(Layer):
    """``torch.nn.Flatten``; dims count the batch axis, as in PyTorch.

    >>> Flatten().infer((512, 7, 7)).output_shape
    (25088,)
    """

    spellings = (spell("flatten", fields=("start_dim", "end_dim")),)

    start_dim: int = 1
    end_dim: int = -1

    def infer(self, shape: Shape) -> Figures:
        ndim = len(shape) + 1  # with the batch axis
        dims = []
        for name, dim in (("start_dim", self.start_dim), ("end_dim", self.end_dim)):
            if not -ndim <= dim < ndim:
                raise ShapeError(
                    f"{name}={dim} is out of range for a {ndim}-dimensional batch of {format_shape(shape)}",
                    hint=f"use a dim between {-ndim} and {ndim - 1}",
                    field=name,
                )
            dims.append(dim % ndim)
        start, end = dims
        if start > end:
            raise ShapeError(
                f"start_dim={self.start_dim} comes after end_dim={self.end_dim}",
                hint="swap them, or use the defaults start_dim=1, end_dim=-1",
                field="start_dim",
            )
        if start == 0:
            raise BatchAxisError(
                "flattening the batch axis (start_dim=0) changes the batch, which convcalc keeps separate",
                hint="use start_dim=1",
                field="start_dim",
            )
        first, last = start - 1, end - 1  # axes of the per-sample shape
        output = shape[:first] + (volume(shape[first : last + 1]),) + shape[last + 1 :]
        merged = last > first
        windows = tuple(
            Global(n) if merged and first <= axis + 1 <= last else IDENTITY for axis, n in enumerate(shape[1:])
        )
        dims = tuple(range(first)) + ((first if not merged else None),) + tuple(range(last + 1, len(shape)))
        return Figures("Flatten", output, 0, 0, 0, windows, (), "", dims=dims, mixes_channels=merged and first == 0,
                       flat=True)

    def storage(self, training: bool, contiguous: bool) -> str:
        return "view" if contiguous else "new"  # a view where PyTorch's view rule allows, else a copy

    def saved(self, use: Use) -> list | None:
        return []

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        return 0  # no products, forward or backward

    def prepare(self, run, x):
        return lambda x: run.F.flatten(x, self.start_dim, self.end_dim)


@dataclass(frozen=True)
class Linear(Layer):
    """``torch.nn.Linear`` over the last axis, as PyTorch applies it. ``bias_params``: the learned values
    a bias is assembled from (BEiT's: learned query and value biases around fixed zeros), which are its
    parameters.

    >>> fig = Linear(1000).infer((512,))
    >>> fig.params, fig.macs
    (513000, 512000)
    """

    spellings = (spell("linear", "fc", "dense", fields=("in_features", "out_features", "bias", "bias_params",
                                                        "weight_params", "batch_axis"),
                       positional=("out_features",), required=("out_features",)),)

    out_features: int
    bias: bool = True
    in_features: int | None = None
    bias_params: int | None = None
    # the learned values the weight is a part of (nn.MultiheadAttention's in_proj_weight, split for the query
    # and for key and value): its parameters, counted once by the parameter's name
    weight_params: int | None = None
    # Where PyTorch's tensor holds the batch (1 for a sequence-first tensor), which decides whether folding
    # it to rows (what training saves) is a view or a copy; convcalc's axes put the batch first. None: PyTorch
    # reads a matrix whose rows already hold the batch (merged with the tokens): nothing to fold
    batch_axis: int | None = 0

    def infer(self, shape: Shape) -> Figures:
        features = shape[-1]
        if self.batch_axis is not None and not 0 <= self.batch_axis <= max(len(shape) - 1, 0):
            raise ShapeError(f"batch_axis={self.batch_axis} must be an axis before the features of a sample of "
                             f"{format_shape(shape)} with its batch", hint="0 for a batch-first tensor",
                             field="batch_axis")
        if self.bias_params is not None and not (self.bias and self.bias_params >= 0):
            raise SpecError(f"bias_params={self.bias_params} must count the learned values the bias is made from: "
                            "0 or more, and only with bias", hint="e.g. bias_params=1536",
                            field="bias_params")
        if self.weight_params is not None and self.weight_params < features * self.out_features:
            raise SpecError(f"weight_params={self.weight_params} must count the learned values the weight is a part "
                            f"of: at least its {features * self.out_features}", hint="e.g. weight_params=1728",
                            field="weight_params")
        if self.in_features is not None and self.in_features != features:
            hint = "omit in_features to take it from the input, or fix the layer before"
            if len(shape) > 1 and volume(shape) == self.in_features:
                hint = f"put a flatten layer before it: the input {format_shape(shape)} flattens to {self.in_features}"
            raise ShapeError(
                f"in_features={self.in_features} but the last axis of the input {format_shape(shape)} has {features}",
                hint=hint,
                field="in_features",
            )
        if self.out_features < 1:
            raise ShapeError(
                f"out_features must be positive (got {self.out_features})", hint="give at least 1", field="out_features"
            )
        output = shape[:-1] + (self.out_features,)
        macs = volume(shape[:-1]) * features * self.out_features
        bias = (self.out_features if self.bias_params is None else self.bias_params) if self.bias else 0
        weight = features * self.out_features if self.weight_params is None else self.weight_params
        params = weight + bias
        flops = 2 * macs + (volume(output) if self.bias else 0)
        notes, windows = (), ()
        if len(shape) > 1:
            notes = (f"Linear acts on the last axis ({features}) of {format_shape(shape)}, as PyTorch does; "
                     "put flatten before it to use every feature",)
            windows = (IDENTITY,) * (len(shape) - 2) + (Global(features),)
        summary = f"{features}→{self.out_features}" + ("" if self.bias else " bias=False")
        tensors = (("weight", weight),) + ((("bias", bias),) if self.bias else ())
        return Figures("Linear", output, params, macs, flops, windows, notes, summary, mixes_channels=len(shape) == 1,
                       tensors=tensors)

    def saved(self, use: Use) -> list | None:
        if not use.trains("weight"):  # the product keeps its input for the weight's gradient only
            return []
        return [saves_input()] if self.batch_axis is None else [saves_folded(0, self.batch_axis)]

    def output_strides(self, full: Shape, shapes: tuple, laid: tuple) -> tuple[int, ...] | None:
        """PyTorch writes the product's rows in its own order of axes, the batch at ``batch_axis``, or where
        the batch is merged into the rows, in the order the input's rows hold it."""
        if self.batch_axis == 0 or len(full) < 3:
            return None
        leading = full[:-1]
        rows = strides.dense_order(leading, (laid[0][:-1],)) if self.batch_axis is None else \
            strides.contiguous_with_batch_at(leading, self.batch_axis)  # (merged: as the input's rows are)
        return (*(n * full[-1] for n in rows), 1)

    def backward_macs(self, use: Use, forward_macs: int) -> int | None:
        # over any leading axes, as one matrix product: the input's gradient (grad @ weight) when the
        # input needs one, the weight's (grad^T @ input) when trained; the bias's is a sum, no products
        return gradient_products(forward_macs, use.inputs_grad[0], use.trains("weight"))

    def prepare(self, run, x):
        fan_in = x.shape[-1]
        w = run.uniform((self.out_features, fan_in), fan_in)
        b = run.uniform((self.out_features,), fan_in) if self.bias else None
        return lambda x: run.F.linear(x, w, b)

    def explain_costs(self, report, batch: int) -> list[str]:
        shape = report.input_shape
        bias = f" + {self.out_features if self.bias_params is None else self.bias_params}" if self.bias else ""
        return [f"params: {shape[-1]} x {self.out_features}{bias} = {report.params:,}",
                f"MACs: {volume(shape[:-1])} row(s) x {shape[-1]} x {self.out_features} = {times_batch(report, batch)}"]
