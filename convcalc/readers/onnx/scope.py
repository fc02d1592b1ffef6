"""Layer names for files from PyTorch's ``torch.export`` exporter (``dynamo=True``).

That exporter names nodes by operator and counter (``node_Conv_292``) and keeps the module scope in
each node's metadata, ``pkg.torch.onnx.name_scopes``: the qualified names of the modules the operation
ran in, outermost first (``['', 'layer1', 'layer1.0', 'layer1.0.bn1', 'conv2d']``). The legacy
exporter writes that scope into the name (``/layer1/layer1.0/conv1/Conv``), each module by its own
attribute name, a numbered child by its parent's part and its number. ``scoped`` builds the same
path from the metadata and ends it with the node's own name, so ``--depth`` folds both alike.
"""

from __future__ import annotations

import ast

_KEY = "pkg.torch.onnx.name_scopes"
_LONGEST = 4096  # a scope list longer than this is not read (the name stays the node's)


def scoped(node) -> str | None:
    """``/layer1/layer1.0/bn1/node_Conv_295`` for a node with a module scope in its metadata, else None."""
    scopes = None
    for prop in node.metadata_props:
        if prop.key == _KEY and len(prop.value) <= _LONGEST:
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                return None
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes) or len(scopes) < 2:
        return None
    parts: list[str] = []
    parent = ""
    for qualified in scopes[1:-1]:  # the root's '' first, the operation's own name last
        own = qualified[len(parent) + 1:] if parent and qualified.startswith(parent + ".") else qualified
        if not own or "/" in own:
            return None
        parts.append(f"{parts[-1]}.{own}" if own.isdigit() and parts else own)
        parent = qualified
    return "/" + "/".join([*parts, node.name or node.op_type])
