"""Networks shipped with convcalc, as documents: torchvision's classic models and a small U-Net.

>>> "resnet18" in preset_names()
True
>>> load_preset("resnet18").input_shape, load_preset("resnet18", (3, 320, 320)).input_shape
((3, 224, 224), (3, 320, 320))
"""

from __future__ import annotations

from dataclasses import replace
from importlib import resources

from ..engine.errors import SpecError
from ..engine.network import Network


def preset_names() -> list[str]:
    """The names of the shipped presets, sorted."""
    return sorted(p.name[: -len(".yaml")] for p in resources.files(__package__).iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The document text of a preset."""
    if name not in preset_names():
        raise SpecError(f"unknown preset {name!r}", hint=f"use one of {', '.join(preset_names())}", field="preset")
    return resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def preset_description(name: str) -> str:
    """The preset's one-line description."""
    for line in preset_text(name).splitlines():
        if line.startswith("description:"):
            return line.partition(":")[2].strip()
    return ""


def load_preset(name: str, input_shape: tuple[int, ...] | None = None) -> Network:
    """A preset as a Network, optionally on another input shape."""
    from ..readers import load_document

    network = load_document(preset_text(name))
    return network if input_shape is None else replace(network, input_shape=tuple(input_shape))
