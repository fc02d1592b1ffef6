"""The README's table of torchvision's zoo: convcalc's figures beside torchvision's published ones.

    python -m tests.zoo_table      (prints the Markdown table; a slow test checks the README holds it)
"""

from __future__ import annotations

from .torchvision_models import build, published

MODELS = [
    "alexnet", "vgg16", "vgg19_bn", "resnet18", "resnet50", "resnet152", "resnext50_32x4d", "wide_resnet50_2",
    "densenet121", "densenet201", "googlenet", "inception_v3", "squeezenet1_1", "shufflenet_v2_x1_0", "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet1_0", "efficientnet_b0", "efficientnet_b3",
    "efficientnet_v2_s", "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny", "fcn_resnet50",
    "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large",
]
HEADER = ("| model | input | params | torchvision params | MACs | torchvision GFLOPS |\n"
          "| --- | --- | ---: | ---: | ---: | ---: |")


def evaluation_size(name: str) -> int:
    """The input size torchvision evaluates the model at (its published figures are for it)."""
    from .torchvision_models import torchvision

    transforms = next(iter(torchvision().models.get_model_weights(name))).transforms()
    return (getattr(transforms, "crop_size", None) or transforms.resize_size)[0]


def row(name: str) -> str:
    from convcalc import analyse, from_torch

    size = evaluation_size(name)
    shape = (3, size, size)
    totals = analyse(from_torch(build(name, published_layout=True), shape), receptive_fields=False).totals
    params, gflops = published(name)
    return (f"| {name} | {'x'.join(map(str, shape))} | {totals.params:,} | {params:,} | {totals.macs:,} | "
            f"{gflops} |")


if __name__ == "__main__":
    print(HEADER)
    for name in MODELS:
        print(row(name), flush=True)
