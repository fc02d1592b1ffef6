"""torchvision's model definitions for the tests, without its compiled operators.

torchvision 0.28's compiled extension does not load with the CPU build of
torch 2.13 this project pins, and ``import torchvision`` then fails while
registering fake kernels for ``torchvision::nms`` and ``qnms`` (detection
operators no classification or segmentation model uses). Declaring those two
operators' schemas first, with no kernels at all, lets the package import, and
every model definition then builds and runs on plain torch operators. A call to
``nms`` would still fail loudly: nothing here pretends to implement it.
"""

from __future__ import annotations

import functools

import pytest

# The models the slow suites check against PyTorch (test_torch_models, test_training_memory).
ZOO = [
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
    "densenet121", "densenet161", "densenet169", "densenet201", "googlenet", "inception_v3",
    "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "mnasnet1_0", "efficientnet_b0", "efficientnet_b1",
    "efficientnet_b2", "efficientnet_b3", "efficientnet_v2_s", "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny",
    "fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large",
]


@functools.lru_cache(maxsize=None)
def torchvision():
    """The torchvision package, importable (see above), or a skip when it is not installed.

    torch is imported here, not with this module: the tests that build models say they need it
    (``needs_torch``), and the module imports without it.
    """
    import torch

    try:
        import torchvision as tv  # a matching build imports as is
        return tv
    except ImportError:
        pytest.skip("torchvision is not installed")
    except RuntimeError:
        pass
    import sys

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]  # the half-imported package
    library = torch.library.Library("torchvision", "DEF")  # noqa: F841 - kept alive by the cache below
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARIES.append(library)
    import torchvision as tv

    return tv


_LIBRARIES: list = []

SEGMENTATION = {"fcn_resnet50", "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"}


def build(name: str, *, published_layout: bool = False):
    """A torchvision model with random weights (no download), in evaluation mode.

    By default without auxiliary heads; ``published_layout`` builds them as torchvision's
    published weights do (segmentation models with their auxiliary head, Inception v3
    with its auxiliary classifier).
    """
    tv = torchvision()
    if name in SEGMENTATION:
        aux = {"aux_loss": True} if published_layout and not name.startswith("lraspp") else {}
        return getattr(tv.models.segmentation, name)(weights=None, weights_backbone=None, **aux).eval()
    extra = {"aux_logits": published_layout and name == "inception_v3", "init_weights": False} if name in (
        "googlenet", "inception_v3") else {}
    return getattr(tv.models, name)(weights=None, **extra).eval()


def published(name: str):
    """torchvision's published (parameters, GFLOPS) for the model's first weights, or None.

    torchvision's "GFLOPS" count multiply-adds, as convcalc's MACs do.
    """
    tv = torchvision()
    try:
        weights = tv.models.get_model_weights(name)
    except ValueError:
        return None
    meta = next(iter(weights)).meta
    return meta.get("num_params"), meta.get("_ops")
