"""Writing a ``Network`` as an editable convcalc YAML document (``convcalc convert``).

Each layer is written under the name of its kind with the arguments that differ
from PyTorch's defaults; ``from`` only where a layer does not read the one
before it; ``path``, parameter-tensor names (``tensors``), frozen parameters
and reader notes so that reading the document back gives the same figures,
the same receptive fields and the same JSON as the source did.
"""

from __future__ import annotations

from dataclasses import MISSING, fields

from ..engine.layers import Layer
from ..engine.network import Network
from ..readers.registry import KINDS

_BASE = {f.name for f in fields(Layer)}


def _kind(layer: Layer):
    """The registry's kind that builds this layer: its rank's PyTorch class name when it has one, and of
    the kinds that build it, the one fixing the fewest arguments (so every argument can be written)."""
    cls, rank = type(layer), getattr(layer, "rank", None)
    candidates = []
    for kind in {id(kind): kind for kind in KINDS.values()}.values():
        build = getattr(kind.build, "func", kind.build)
        if build is not cls or getattr(kind.build, "args", ()) or kind.rank != rank:
            continue
        if any(getattr(layer, key, None) != value for key, value in kind.extra.items()):
            continue
        candidates.append(kind)
    if not candidates:
        raise ValueError(f"no kind writes {cls.__name__}")  # a layer class missing from the registry: a bug
    return min(candidates, key=lambda kind: len(kind.extra))


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def layer_to_dict(layer: Layer, previous: str | None) -> dict:
    """One layer as a document object (``previous``: the label of the layer written before it)."""
    kind = _kind(layer)
    entry: dict = {"type": kind.name}
    if layer.name is not None:
        entry["name"] = layer.name
    extra_keys = set(kind.extra)  # fixed by the kind's name (the activation function, the padding mode)
    for f in fields(layer):
        if f.name in _BASE or not f.init or f.name in extra_keys:
            continue
        if f.metadata.get("internal") and f.name != "onnx":
            continue
        value = getattr(layer, f.name)
        default = f.default if f.default is not MISSING else None
        if (isinstance(value, tuple) and value and len(set(value)) == 1 and isinstance(default, int)
                and not isinstance(default, bool)):
            value = value[0]  # per-axis values that agree, written once (3 rather than [3, 3])
        if f.default is MISSING or value != default:
            entry[f.name] = _plain(value)
    if layer.inputs is not None:
        # an unnamed layer is referred to by its position, as reports label it: #n
        sources = [f"#{ref + 1}" if isinstance(ref, int) else ref for ref in layer.inputs]
        if sources != ([previous] if previous else ["input"]):
            entry["from"] = sources if len(sources) > 1 else sources[0]
    if layer.path:
        entry["path"] = list(layer.path)
    if layer.weights:
        entry["tensors"] = dict(layer.weights)
    if layer.remark:
        entry["remark"] = list(layer.remark)
    return entry


def network_to_dict(network: Network) -> dict:
    """The whole network as a document object: input, batch, dtype, layers, and what keeps it exact."""
    document: dict = {"input": list(network.input_shape)}
    if network.batch != 1:
        document["batch"] = network.batch
    if network.dtype != "float32":
        document["dtype"] = network.dtype
    layers, previous = [], None
    for index, layer in enumerate(network.layers):
        layers.append(layer_to_dict(layer, previous))
        previous = layer.name or f"#{index + 1}"
    document["layers"] = layers
    if network.outputs:
        document["outputs"] = list(network.outputs)
    if network.frozen:
        document["frozen"] = sorted(network.frozen)
    return document


def network_to_yaml(network: Network) -> str:
    """The document as YAML, one layer object a line."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def flow_dict(dumper, data):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=len(data) < 12)

    def flow_list(dumper, data):
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    document = network_to_dict(network)
    head = {k: v for k, v in document.items() if k != "layers"}
    _Dumper.add_representer(list, flow_list)
    text = yaml.dump(head, Dumper=_Dumper, sort_keys=False, width=120) if head else ""
    _Dumper.add_representer(dict, flow_dict)
    body = "".join("- " + yaml.dump(layer, Dumper=_Dumper, sort_keys=False, width=100000).strip() + "\n"
                   for layer in document["layers"])
    return text + "layers:\n" + body
