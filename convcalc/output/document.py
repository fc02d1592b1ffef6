"""Writing a ``Network`` as an editable convcalc YAML document (``convcalc convert``).

Each layer is written under the name of its kind with the arguments that differ
from PyTorch's defaults; ``from`` only where a layer does not read the one
before it; ``path``, parameter-tensor names (``tensors``), frozen parameters
and reader notes so that reading the document back gives the same figures,
the same receptive fields and the same JSON as the source did.
"""

from __future__ import annotations

from dataclasses import MISSING

from ..engine.layers import Layer
from ..engine.layers.kind import arguments_of, kind_of
from ..engine.network import Network


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def layer_to_dict(layer: Layer, previous: str | None) -> dict:
    """One layer as a document object (``previous``: the label of the layer written before it)."""
    kind = kind_of(layer)
    entry: dict = {"type": kind.name}
    if layer.name is not None:
        entry["name"] = layer.name
    declared = arguments_of(type(layer))
    for name in kind.fields:  # what the kind's name takes; what the name fixes goes with it
        f = declared[name]
        value = getattr(layer, name)
        default = f.default if f.default is not MISSING else None
        if (isinstance(value, tuple) and value and len(set(value)) == 1 and isinstance(default, int)
                and not isinstance(default, bool)):
            value = value[0]  # per-axis values that agree, written once (3 rather than [3, 3])
        if f.default is MISSING or value != default or name in kind.required:
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
    if layer.once:
        entry["once"] = True
    if layer.slices != 1:
        entry["slices"] = layer.slices
    return entry


def network_to_dict(network: Network) -> dict:
    """The whole network as a document object: input, batch, dtype, layers, and what keeps it exact."""
    document: dict = {"input": list(network.input_shape)}
    if network.batch != 1:
        document["batch"] = network.batch
    if network.dtype != "float32":
        document["dtype"] = network.dtype
    blocks, layers = _folded(network.layers)
    if blocks:
        document["blocks"] = blocks
    document["layers"] = layers
    if network.outputs:
        document["outputs"] = list(network.outputs)
    if network.frozen:
        document["frozen"] = sorted(network.frozen)
    if network.unreturned:
        document["unreturned"] = list(network.unreturned)
    if network.unused:
        document["unused"] = [{"module": module, "params": params, "trainable": trainable, "read": read}
                              for module, params, trainable, read in network.unused]
    return document


def _folded(specs) -> tuple[dict, list]:
    """The layer objects, with runs of identical repeated instances (a ResNet stage's blocks, named
    label.k) written once under ``blocks`` and used with ``repeat``, where that reads back exactly."""
    blocks: dict = {}
    entries, previous, index = [], None, 0
    groups = _instance_groups(specs)
    g = 0
    while index < len(specs):
        run = _repeated_run(specs, groups, g) if g < len(groups) and groups[g][1] == index else None
        if run is not None:
            label, first, count, body = run
            name = f"{label.replace('.', '_')}_block"
            while name in blocks:
                name += "_"
            blocks[name] = {"layers": body}
            entries.append({"block": name, "name": label, "repeat": count, "first": first})
            end = groups[g + count - 1][2]
            previous, index, g = specs[end - 1].name, end, g + count
            continue
        if g < len(groups) and groups[g][2] <= index + 1:
            g += 1
        entries.append(layer_to_dict(specs[index], previous))
        previous = specs[index].name or f"#{index + 1}"
        index += 1
    return blocks, entries


def _instance_groups(specs) -> list[tuple[str, int, int]]:
    """Consecutive layers inside the same single block instance: (instance, start, end)."""
    groups: list = []
    for i, layer in enumerate(specs):
        key = layer.path[0] if len(layer.path) == 1 else None
        if key is not None and groups and groups[-1][0] == key and groups[-1][2] == i:
            groups[-1] = (key, groups[-1][1], i + 1)
        elif key is not None:
            groups.append((key, i, i + 1))
    return groups


def _signature(specs, instance: str, start: int, end: int):
    """An instance's layers relative to it (None when it cannot be written as a block instance)."""
    if specs[end - 1].name != instance:
        return None
    outside = specs[start - 1].name if start else "input"
    if start and outside is None:
        return None
    rows = []
    for i in range(start, end):
        layer = specs[i]
        if layer.weights or layer.remark or layer.once or layer.slices != 1 or layer.expect is not None:
            return None
        if layer.name is None:
            local = None
        elif i == end - 1:
            local = ""
        elif layer.name.startswith(instance + "."):
            local = layer.name[len(instance) + 1:]
        else:
            return None
        if layer.inputs is None:
            sources = None
        else:
            sources = []
            for ref in layer.inputs:
                if isinstance(ref, int):
                    return None
                if ref == outside:
                    sources.append("input")
                elif ref.startswith(instance + "."):
                    sources.append(ref[len(instance) + 1:])
                else:
                    sources.append(("absolute", ref))
            sources = tuple(sources)
        rows.append((layer, local, sources))
    return rows


def _repeated_run(specs, groups, g):
    """(label, first number, count, block layers) for a run of identical instances starting at group g."""
    instance, start, end = groups[g]
    label, dot, number = instance.rpartition(".")
    if not dot or not number.isdigit():
        return None
    first = int(number)
    base = _signature(specs, instance, start, end)
    if base is None:
        return None
    count = 1
    while g + count < len(groups):
        name, s0, e0 = groups[g + count]
        if name != f"{label}.{first + count}" or s0 != groups[g + count - 1][2]:
            break
        other = _signature(specs, name, s0, e0)
        if other is None or len(other) != len(base) or any(
                a[0] != b[0] or a[1] != b[1] or a[2] != b[2] for a, b in zip(base, other)):
            break
        count += 1
    if count < 2:
        return None
    body = []
    for layer, local, sources in base:
        entry = layer_to_dict(layer, None)
        entry.pop("name", None)
        entry.pop("from", None)
        entry.pop("path", None)
        if local:
            entry["name"] = local
        if sources is not None:
            refs = [ref[1] if isinstance(ref, tuple) else ref for ref in sources]
            entry["from"] = refs if len(refs) > 1 else refs[0]
        body.append(entry)
    return label, first, count, body


def network_to_yaml(network: Network, traced: str | None = None) -> str:
    """The document as YAML, one layer object a line. ``traced`` names the model the network was traced
    from (a PyTorch model, an ONNX file): a comment above the document then says which input it was traced
    at, since the sizes a trace writes down (reshapes, flattened features) are that input's.

    >>> from convcalc import Network, parse_layer
    >>> print(network_to_yaml(Network((3, 8, 8), (parse_layer("relu"),)), traced="the PyTorch model m:f"))
    # traced from the PyTorch model m:f at input 3x8x8 (batch 1): the sizes written below
    # (reshapes, flattened features, output sizes) are that input's; to read it at another
    # input, convert again with that INPUT
    input: [3, 8, 8]
    layers:
    - {type: relu}
    <BLANKLINE>
    """
    import textwrap

    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def flow_dict(dumper, data):
        return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=len(data) < 12)

    def flow_list(dumper, data):
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    document = network_to_dict(network)
    head = {k: v for k, v in document.items() if k not in ("layers", "blocks")}
    _Dumper.add_representer(list, flow_list)
    text = ""
    if traced is not None:
        from ..engine.escape import escape

        shape = "x".join(map(str, network.input_shape))
        note = (f"traced from {escape(traced)} at input {shape} (batch {network.batch}): the sizes written below "
                "(reshapes, flattened features, output sizes) are that input's; to read it at another input, "
                "convert again with that INPUT")
        text = "".join(f"# {line}\n" for line in textwrap.wrap(note, 88, break_on_hyphens=False))
    text += yaml.dump(head, Dumper=_Dumper, sort_keys=False, width=120) if head else ""
    _Dumper.add_representer(dict, flow_dict)

    def one_a_line(layers, indent: str) -> str:
        return "".join(f"{indent}- " + yaml.dump(layer, Dumper=_Dumper, sort_keys=False, width=100000).strip()
                       + "\n" for layer in layers)

    if "blocks" in document:
        text += "blocks:\n" + "".join(f"  {name}:\n    layers:\n" + one_a_line(block["layers"], "    ")
                                      for name, block in document["blocks"].items())
    return text + "layers:\n" + one_a_line(document["layers"], "")
