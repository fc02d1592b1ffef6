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

SEGMENTATION = {"fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
                "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"}
VIDEO = {"r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b"}
OPTICAL_FLOW = {"raft_small", "raft_large"}
FRAMES = 16  # a video model's clip length: the frames torchvision's Kinetics-400 weights document
FLOW_SIZE = (368, 496)  # RAFT's frames: its weights' transforms set no size (FlyingChairs' crop)

# Everything in torchvision.models (classification), .video, .segmentation and .optical_flow, smallest
# first within each family; test_zoo and benchmarks/zoo_survey.py run them all.
EVERY = [
    *ZOO,
    "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "shufflenet_v2_x1_5",
    "shufflenet_v2_x2_0", "mnasnet0_75", "mnasnet1_3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6",
    "efficientnet_b7", "efficientnet_v2_m", "efficientnet_v2_l", "regnet_x_800mf", "regnet_x_1_6gf",
    "regnet_x_3_2gf", "regnet_x_8gf", "regnet_x_16gf", "regnet_x_32gf", "regnet_y_800mf", "regnet_y_1_6gf",
    "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf", "regnet_y_32gf", "regnet_y_128gf", "convnext_small",
    "convnext_base", "convnext_large", "maxvit_t", "swin_t", "swin_s", "swin_b", "swin_v2_t", "swin_v2_s",
    "swin_v2_b", "vit_b_16", "vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14",
    "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
    "r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v1_b", "mvit_v2_s", "swin3d_t", "swin3d_s", "swin3d_b",
    "raft_small", "raft_large",
]
# The largest (over 100 GFLOPS, or hundreds of millions of parameters): minutes each on a small machine,
# so the slow suite leaves them to benchmarks/zoo_survey.py, which runs them last
HEAVY = ["fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101", "swin3d_b", "raft_large", "vit_l_16",
         "regnet_y_128gf", "vit_h_14"]

# torchvision.models.detection: none reaches convcalc's reader (see DETECTION_REASON)
DETECTION = [
    "fasterrcnn_mobilenet_v3_large_320_fpn", "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2", "fcos_resnet50_fpn", "keypointrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2", "retinanet_resnet50_fpn", "retinanet_resnet50_fpn_v2", "ssd300_vgg16",
    "ssdlite320_mobilenet_v3_large",
]


def build(name: str, *, published_layout: bool = False):
    """A torchvision model with random weights (no download), in evaluation mode.

    By default without auxiliary heads; ``published_layout`` builds them as torchvision's
    published weights do (segmentation models with their auxiliary head, Inception v3
    with its auxiliary classifier).
    """
    tv = torchvision()
    if name in VIDEO:
        return getattr(tv.models.video, name)(weights=None).eval()
    if name in OPTICAL_FLOW:
        return _two_frames(getattr(tv.models.optical_flow, name)(weights=None).eval())
    if name in SEGMENTATION:
        aux = {"aux_loss": True} if published_layout and not name.startswith("lraspp") else {}
        return getattr(tv.models.segmentation, name)(weights=None, weights_backbone=None, **aux).eval()
    extra = {"aux_logits": published_layout and name == "inception_v3", "init_weights": False} if name in (
        "googlenet", "inception_v3") else {}
    if name.startswith("vit_"):  # its weights fix the size its position embedding is made for (vit_h_14: 518)
        extra = {"image_size": input_shape(name)[-1]}
    return getattr(tv.models, name)(weights=None, **extra).eval()


def _two_frames(raft):
    """RAFT as a model of one tensor: the two frames stacked on the channel axis, split inside;
    its output is every flow estimate it makes (one per update, the last the finest), stacked after
    the batch, so everything it computes is read."""
    import torch

    class TwoFrames(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.raft = raft

        def forward(self, frames):
            return torch.stack(self.raft(frames[:, :3], frames[:, 3:]), dim=1)

    return TwoFrames().eval()


def weights(name: str):
    """The model's first published weights (their transforms and metadata), or None."""
    tv = torchvision()
    try:
        return next(iter(tv.models.get_model_weights(name)))
    except ValueError:
        return None


def input_shape(name: str) -> tuple[int, ...]:
    """One sample's input at the size torchvision evaluates the model at (its published figures are for
    it): an image (3, H, W), a video clip (3, FRAMES, H, W), or RAFT's two frames stacked (6, H, W)."""
    if name in OPTICAL_FLOW:
        return (6, *FLOW_SIZE)
    transforms = weights(name).transforms()
    size = getattr(transforms, "crop_size", None) or transforms.resize_size
    height, width = (size[0], size[0]) if len(size) == 1 else tuple(size)
    return (3, FRAMES, height, width) if name in VIDEO else (3, height, width)


def oracle(model, shape) -> tuple[int, int, tuple[int, ...]]:
    """(params, MACs, output shape) as PyTorch counts them for one sample: the parameters' numel,
    FlopCounterMode's total over one forward pass (grad enabled, the math attention backend) / 2,
    and the first output's shape."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        out = model(torch.randn(1, *shape))
    while not isinstance(out, torch.Tensor):
        out = next(iter(out.values())) if isinstance(out, dict) else out[0]
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2, tuple(out.shape[1:])


def published(name: str):
    """torchvision's published (parameters, GFLOPS) for the model's first weights, or None.

    torchvision's "GFLOPS" count multiply-adds, as convcalc's MACs do.
    """
    first = weights(name)
    if first is None:
        return None
    return first.meta.get("num_params"), first.meta.get("_ops")


def coordinate_grid(tensor) -> bool:
    """Whether an ONNX initializer is a coordinate grid (1 x 2 x h x w, each position's x then y), as
    torch.export stores RAFT's (make_coords_grid): fixed values, no parameter of the model."""
    import numpy as np
    from onnx import numpy_helper

    if len(tensor.dims) != 4 or tuple(tensor.dims[:2]) != (1, 2):
        return False
    y, x = np.meshgrid(np.arange(tensor.dims[2]), np.arange(tensor.dims[3]), indexing="ij")
    return np.array_equal(numpy_helper.to_array(tensor)[0], np.stack([x, y]))


def stored_products(model, proto) -> int:
    """The MACs of products an ONNX file (``proto``, a ModelProto) stores done instead of doing: Swin V2's
    position-bias MLP's first layer on its fixed table of relative coordinates, whose product torch.export
    stores as an initializer. Each such layer's product (its weight times the table, its bias left out: the
    file adds it) is looked for among the file's initializers by its values; one found counts the layer's
    MACs as FlopCounterMode gives them. 0 where the file computes every product."""
    import numpy as np
    import torch
    from onnx import TensorProto, numpy_helper
    from torch.utils.flop_counter import FlopCounterMode

    by_shape: dict = {}
    for tensor in proto.graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and tensor.data_location != TensorProto.EXTERNAL:
            by_shape.setdefault(tuple(tensor.dims), []).append(tensor)
    total = 0
    for module in model.modules():
        table, mlp = getattr(module, "relative_coords_table", None), getattr(module, "cpb_mlp", None)
        if table is None or mlp is None:
            continue
        with torch.no_grad():
            product = torch.nn.functional.linear(table, mlp[0].weight).numpy()
        if any(np.allclose(numpy_helper.to_array(t), product, rtol=1e-5, atol=1e-6)
               for t in by_shape.get(product.shape, ())):
            with FlopCounterMode(display=False) as counter:
                mlp[0](table)
            total += counter.get_total_flops() // 2
    return total
