"""The whole torchvision zoo read with ``--model`` (``from_torch``), exact (slow run).

Every model of torchvision's classification, video, segmentation and optical-flow zoos, at the input
torchvision evaluates it at (``input_shape``: video clips of 16 frames, RAFT's two frames stacked on
the channel axis), with random weights. The oracle is PyTorch itself (``oracle``): the parameters'
``numel``, ``FlopCounterMode``'s total over one forward pass / 2 (grad enabled, the math attention
backend), the output's shape; nothing may be left uncounted. Where torchvision publishes them, its
parameters and GFLOPS (rounded) agree too. A model convcalc does not read exactly yet is an xfail
naming the cause, strict, so it fails the day it is fixed and the mark is removed.

To keep the slow run near a quarter of an hour on a small machine, three groups run elsewhere:
the models test_torch_models.py checks layer by layer at the same input (the CNN zoo at 224, and
299 for Inception v3), and the largest models (``HEAVY``) and the larger siblings of a family
checked here (``SURVEY_ONLY``: same code, more of it), which ``benchmarks/zoo_survey.py`` runs.
"""

from __future__ import annotations

import pytest

from convcalc.engine.analysis import analyse
from convcalc.readers.pytorch import from_torch

from .torchvision_models import EVERY, HEAVY, OPTICAL_FLOW, ZOO, build, input_shape, oracle, published

pytestmark = [pytest.mark.needs_torch, pytest.mark.slow]

# the larger siblings of the families checked here: benchmarks/zoo_survey.py runs them (measured
# there under load: 26 to 138 s each, 24 minutes together)
SURVEY_ONLY = {
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_m", "efficientnet_v2_l",
    "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_1_6gf", "regnet_y_3_2gf",
    "regnet_y_8gf", "regnet_y_16gf", "resnext101_64x4d", "wide_resnet101_2", "convnext_base", "convnext_large",
    "swin_s", "swin_b", "swin_v2_s", "swin_v2_b", "swin3d_s",
}
# model -> why convcalc does not read it exactly yet (the ATen op, the layer, the shapes)
NOT_EXACT: dict[str, str] = {
}
# the models test_torch_models.py already checks at this input, layer by layer
CHECKED_THERE = {name for name in ZOO if name not in (
    "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_v2_s",
    "fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")}


def _case(name: str):
    marks = [pytest.mark.xfail(strict=True, reason=NOT_EXACT[name])] if name in NOT_EXACT else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_case(name) for name in EVERY
                                  if name not in HEAVY and name not in SURVEY_ONLY and name not in CHECKED_THERE])
def test_every_torchvision_model_is_exact(name):
    # as torchvision publishes them: segmentation models and Inception v3 with their auxiliary heads
    model = build(name, published_layout=True)
    shape = input_shape(name)
    analysis = analyse(from_torch(model, shape), receptive_fields=False)
    params, macs, output = oracle(model, shape)
    assert [(r.name, r.type) for r in analysis.layers if not r.counted] == []
    assert (analysis.totals.params, analysis.totals.macs, analysis.output_shape) == (params, macs, output)
    theirs = published(name)
    if theirs and theirs[1] is not None and name not in OPTICAL_FLOW:  # RAFT's is for a size torchvision
        # does not give (FlopCounterMode: raft_small 32.7 G at 368x496, 94.4 G at 520x960; published 47.655)
        assert round(macs / 1e9, 3) == pytest.approx(theirs[1], abs=1e-3), "torchvision's published GFLOPS"
    if theirs:
        assert analysis.totals.params == theirs[0], "torchvision's published parameters"
