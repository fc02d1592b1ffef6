"""Network documents: ``{"input": [...], "batch": N, "layers": [...], "blocks": {...}}``
in JSON or YAML.

Each layer is an object with a ``type`` (a PyTorch class name, any case, or
a short name) and PyTorch's argument names, plus optionally a ``name`` and
``from`` (the layers it reads). Unknown keys are errors. ``blocks`` are
described in ``convcalc.readers.blocks``.
"""

from __future__ import annotations

import json

from ..engine.dtypes import DTYPE_BYTES
from ..engine.errors import Origin, SpecError
from ..engine.layers.rules import clip
from ..engine.limits import (
    MAX_DIGITS,
    MAX_INTEGER,
    MAX_NESTING,
    max_document_bytes,
    max_document_values,
)
from ..engine.network import Network
from .blocks import expand
from .build import build_layer, lookup_kind
from .registry import canonical_key, find_kind

DOCUMENT_KEYS = ("input", "batch", "dtype", "layers", "blocks", "outputs", "frozen", "unreturned", "unused",
                 "description")
# Keys of a layer object besides its arguments: wiring, and what convert writes to keep a network exact.
LAYER_KEYS = ("type", "name", "from", "path", "tensors", "remark", "once", "slices")


class _DocumentOrigin:
    """Where a layer object came from, rendered as compact one-line text with each key's span only when
    an error needs it: a document of a million layers makes a million of these, and rarely an error."""

    __slots__ = ("_obj", "where", "_kind", "_rendered")

    def __init__(self, obj: dict, where: str, kind=None) -> None:
        self._obj, self.where, self._kind = obj, where, kind
        self._rendered = None

    def _render(self):
        if self._rendered is None:
            parts, spans, offset = [], [], 1
            for key, value in self._obj.items():
                piece = f"{json.dumps(key)}: {json.dumps(value)}"
                name = canonical_key(self._kind, str(key)) if self._kind is not None else str(key)
                spans.append((name, (offset, offset + len(piece))))
                parts.append(piece)
                offset += len(piece) + 2
            text = "{" + ", ".join(parts) + "}"
            type_span = next((span for key, span in spans if key == "type"), (0, len(text)))
            self._rendered = (text, (("*", type_span), *spans))
        return self._rendered

    @property
    def text(self) -> str:
        return self._render()[0]

    @property
    def spans(self):
        return self._render()[1]

    def span_of(self, name: str | None):
        return Origin.span_of(self, name)


def parse_layer_object(obj, where: str = "layer", **wiring):
    """One layer object of a document into a layer spec (``wiring``: its name, inputs and path).

    >>> parse_layer_object({"type": "Conv2d", "out_channels": 64, "kernel_size": 3}).rank
    2
    """
    if not isinstance(obj, dict):
        raise SpecError(
            f"{where} is {type(obj).__name__}, not an object",
            hint='write each layer as an object, e.g. {"type": "Conv2d", "out_channels": 64, "kernel_size": 3}',
            field=where,
        )
    kind_name = obj.get("type")
    if not isinstance(kind_name, str):
        raise SpecError(
            f"{where} has no \"type\" naming its kind" if kind_name is None else f"{where}.type must be a string",
            hint='add e.g. "type": "Conv2d", or "block": NAME for a block',
            field="type",
            origin=_DocumentOrigin(obj, where),
        )
    kind = find_kind(kind_name) or lookup_kind(kind_name, _DocumentOrigin(obj, where))
    arguments = {key: value for key, value in obj.items() if key not in LAYER_KEYS}
    # spans are looked up by PyTorch's names, whatever key was written
    return build_layer(kind, arguments, _DocumentOrigin(obj, where, kind), **wiring)


def _check_blocks(blocks) -> dict:
    if blocks is None:
        return {}
    if not isinstance(blocks, dict):
        raise SpecError("blocks must map block names to definitions",
                        hint='e.g. "blocks": {"basic": {"params": ["channels"], "layers": [...]}}', field="blocks")
    for name, block in blocks.items():
        where = f"blocks.{name}"
        if not isinstance(block, dict) or not isinstance(block.get("layers"), list):
            raise SpecError(f"{where} needs a layers list", hint='e.g. {"params": ["channels"], "layers": [...]}',
                            field=where)
        unknown = [k for k in block if k not in ("params", "layers")]
        params = block.get("params", [])
        if unknown or not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise SpecError(f"{where} has keys params (a list of names) and layers only",
                            hint=f'remove {unknown[0]!r}' if unknown else 'e.g. "params": ["channels", "stride"]',
                            field=where)
    return blocks


def parse_document(obj) -> Network:
    """A whole network document into a ``Network``.

    >>> net = parse_document({"input": [3, 32, 32], "layers": [{"type": "conv", "out_channels": 8, "kernel_size": 3}]})
    >>> net.input_shape, net.batch
    ((3, 32, 32), 1)
    """
    if not isinstance(obj, dict):
        raise SpecError(
            f"a network document is a JSON object, not {type(obj).__name__}",
            hint='write {"input": [3, 224, 224], "layers": [...]}',
            field="document",
        )
    for key in obj:
        if key not in DOCUMENT_KEYS:
            raise SpecError(
                f"unknown key {key!r} in the document",
                hint=f"a document has the keys {', '.join(DOCUMENT_KEYS)}",
                field=str(key),
            )
    shape = obj.get("input")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
    ):
        raise SpecError(
            f"input must be a list of positive sizes, channels first (got {json.dumps(shape)})",
            hint='e.g. "input": [3, 224, 224]',
            field="input",
        )
    batch = obj.get("batch", 1)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise SpecError(f"batch must be a positive integer (got {json.dumps(batch)})", hint='e.g. "batch": 8',
                        field="batch")
    dtype = obj.get("dtype", "float32")
    if dtype not in DTYPE_BYTES:
        raise SpecError(f"unknown dtype {json.dumps(dtype)}", hint=f"use one of {', '.join(DTYPE_BYTES)}",
                        field="dtype")
    layers = obj.get("layers")
    if not isinstance(layers, list):
        raise SpecError('a document needs "layers", a list of layer objects', hint='e.g. "layers": [{"type": "relu"}]',
                        field="layers")
    specs = []
    for i, item in enumerate(expand(layers, _check_blocks(obj.get("blocks")))):
        sources = None if item.sources is None else tuple(item.sources)
        extra = _layer_extras(item.entry, item.where, i + 1) if _has_extras(item.entry) else {}
        try:
            layer = parse_layer_object(item.entry, item.where, name=item.name, inputs=sources,
                                       path=extra.pop("path", item.path), **extra)
        except SpecError as err:
            raise err.located(layer=i + 1)
        specs.append(layer)
    outputs = obj.get("outputs", [])
    if not isinstance(outputs, list) or not all(isinstance(n, str) for n in outputs):
        raise SpecError(f"outputs must be a list of layer names (got {json.dumps(outputs)})",
                        hint='e.g. "outputs": ["aux"] (the last layer is always an output)', field="outputs")
    frozen = obj.get("frozen", [])
    if not isinstance(frozen, list) or not all(isinstance(n, str) for n in frozen):
        raise SpecError(f"frozen must be a list of parameter names (got {json.dumps(frozen)})",
                        hint='e.g. "frozen": ["fc.weight"]', field="frozen")
    unreturned = obj.get("unreturned", [])
    last = specs[-1].name if specs else None  # the network's result, which the forward pass returns
    if not isinstance(unreturned, list) or not all(isinstance(n, str) and n in outputs and n != last
                                                   for n in unreturned) or len(set(unreturned)) != len(unreturned):
        raise SpecError(f"unreturned must list names from outputs, each once, not the last layer's (got "
                        f"{_clipped(unreturned)})",
                        hint='e.g. "outputs": ["flow0"], "unreturned": ["flow0"]: results no loss reads',
                        field="unreturned")
    return Network(tuple(shape), tuple(specs), batch, dtype, frozenset(frozen), tuple(outputs),
                   _unused(obj.get("unused", [])), tuple(unreturned))


def _unused(entries) -> tuple:
    """The document's ``unused``: the parameters no layer reads, a module an object (the model's count)."""
    keys = {"module", "params", "trainable", "read"}
    hint = 'e.g. "unused": [{"module": "AuxLogits", "params": 3326696, "trainable": 3326696, "read": false}]'
    if not isinstance(entries, list):
        raise SpecError(f"unused must be a list of modules (got {_clipped(entries)})", hint=hint, field="unused")
    found = []
    for k, entry in enumerate(entries):
        ok = isinstance(entry, dict) and set(entry) == keys and isinstance(entry["module"], str) and \
            isinstance(entry["read"], bool) and all(
                isinstance(entry[n], int) and not isinstance(entry[n], bool) and 0 <= entry[n] <= MAX_INTEGER
                for n in ("params", "trainable")) and entry["trainable"] <= entry["params"]
        if not ok:
            raise SpecError(f"unused[{k}] must be an object of module (a name), params and trainable (counts, "
                            f"trainable at most params) and read (true or false) (got {_clipped(entry)})",
                            hint=hint, field="unused")
        found.append((entry["module"], entry["params"], entry["trainable"], entry["read"]))
    if sum(params for _, params, _, _ in found) > MAX_INTEGER:
        raise SpecError(f"unused counts {sum(params for _, params, _, _ in found):,} parameters in all, over 2^62",
                        hint="give each module's own count", field="unused")
    return tuple(found)


def _clipped(value) -> str:
    return clip(json.dumps(value, default=str), 80)


def _has_extras(entry) -> bool:
    return isinstance(entry, dict) and any(key in entry for key in ("path", "remark", "tensors", "once", "slices"))


def _layer_extras(entry: dict, where: str, index: int) -> dict:
    """The keys convert writes besides a layer's arguments: its path, its parameter tensors' names, notes,
    ``once`` for a layer computed without the input (counted once per pass, whatever the batch), and
    ``slices`` for a layer run on each slice along its input's axis 0 with one set of parameters."""
    extra = {}
    for key, kind in (("path", str), ("remark", str)):
        if key in entry:
            value = entry[key]
            if not isinstance(value, list) or not all(isinstance(v, kind) for v in value):
                raise SpecError(f"{where}.{key} must be a list of strings", hint=f'e.g. "{key}": ["layer1"]',
                                field=key, layer=index)
            extra[key] = tuple(value)
    if "tensors" in entry:
        value = entry["tensors"]
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise SpecError(f"{where}.tensors must map roles to parameter names",
                            hint='e.g. "tensors": {"weight": "conv1.weight"}', field="tensors", layer=index)
        extra["weights"] = tuple(value.items())
    if "once" in entry:
        if not isinstance(entry["once"], bool):
            raise SpecError(f"{where}.once must be true or false (got {json.dumps(entry['once'])})",
                            hint='"once": true marks a layer computed without the input, counted once a pass',
                            field="once", layer=index)
        extra["once"] = entry["once"]
    if "slices" in entry:
        value = entry["slices"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{where}.slices must be a positive integer (got {json.dumps(value)})",
                            hint='"slices": 8 runs the layer on each of the 8 slices along its input\'s axis 0',
                            field="slices", layer=index)
        extra["slices"] = value
    return extra


def load_document(text: str, input_shape: tuple[int, ...] | None = None) -> Network:
    """A network document as JSON, YAML or print(model) text (told apart by content).

    ``input_shape`` is needed for print(model) text, which carries none.
    Malformed text is a SpecError with the line and column; documents beyond the
    limits (size, nesting, values after YAML aliases, layers) are refused by name.

    >>> net = load_document('{"input": [3, 32, 32], "layers": [{"type": "conv", "out_channels": 16, '
    ...                     '"kernel_size": 3}, {"type": "relu"}]}')
    >>> net.input_shape, [type(layer).__name__ for layer in net.layers]
    ((3, 32, 32), ['Conv', 'Activation'])
    """
    from .printed import load_printed, looks_printed

    if len(text) > max_document_bytes():
        raise SpecError(f"the document has {len(text):,} characters, more than the limit of {max_document_bytes():,}",
                        hint="raise it with CONVCALC_MAX_DOCUMENT_BYTES", field="document")
    try:
        if looks_printed(text):
            return load_printed(text, input_shape)
        return parse_document(_values(text))
    except RecursionError:
        raise SpecError(f"the document nests more than {MAX_NESTING} levels deep",
                        hint="flatten it; networks need a few levels", field="document") from None


def _values(text: str):
    """The document's data, from JSON or YAML, checked to be plain data within the limits."""
    if text.lstrip().startswith(("{", "[")):
        try:
            obj = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            raise _syntax_error("JSON", err.msg, text, err.lineno, err.colno) from None
    else:
        import yaml  # only documents written in YAML pay for importing it

        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
            raise _syntax_error("YAML", getattr(err, "problem", None) or str(err), text, line, column) from None
        except ValueError as err:  # an integer too long for Python to convert, say
            digits = "integer string conversion" in str(err)
            raise SpecError(f"a number in the YAML has more than {MAX_DIGITS} digits: PyTorch's sizes are "
                            "64-bit integers" if digits else f"invalid YAML: {str(err)[:120]}",
                            hint="check the document's numbers", field="document") from None
    _check_plain(obj)
    return obj


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise SpecError(f"the number {text[:24]}{'...' if len(text) > 24 else ''} has more than {MAX_DIGITS} digits: "
                        "PyTorch's sizes are 64-bit integers", hint="give a smaller value", field="document")
    return int(text)


def _no_constant(name: str):
    raise SpecError(f"{name} is not a number a network can use", hint="give finite numbers", field="document")


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(obj) -> None:
    """Plain data only (objects with string keys, lists, strings, numbers, booleans, null), at most
    MAX_NESTING deep and max_document_values() values once YAML aliases are expanded, without cycles.

    YAML aliases share one object, so each is checked once and the expanded size is counted, not
    walked: a few hundred bytes of aliases that expand to billions of values cost microseconds."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(value, depth: int, where: str) -> int:
        if isinstance(value, _PLAIN):
            if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
                raise SpecError(f"{where} is {value}, not a finite number", hint="give finite numbers", field=where)
            return 1
        if not isinstance(value, (dict, list)):
            raise SpecError(f"{where} is a {type(value).__name__}, which a network document cannot hold",
                            hint="use objects, lists, strings, numbers, booleans and null", field=where)
        key = id(value)
        if key in on_path:
            raise SpecError(f"{where} contains itself (a YAML alias to an enclosing value)",
                            hint="remove the self-reference", field=where)
        if key in sizes:
            return sizes[key]
        if depth >= MAX_NESTING:
            raise SpecError(f"the document nests more than {MAX_NESTING} levels deep (at {where})",
                            hint="flatten it; networks need a few levels", field="document")
        on_path.add(key)
        total = 1
        if isinstance(value, dict):
            for name, item in value.items():
                if not isinstance(name, str):
                    raise SpecError(f"{where} has the key {name!r}, which is not a string", hint="quote the key",
                                    field=where)
                total += size(item, depth + 1, f"{where}.{name}")
        else:
            for index, item in enumerate(value):
                total += size(item, depth + 1, f"{where}[{index}]")
        on_path.discard(key)
        if total > max_document_values():
            raise SpecError(f"the document holds more than {max_document_values():,} values once its YAML aliases "
                            "are expanded", hint="raise the limit with CONVCALC_MAX_DOCUMENT_VALUES", field="document")
        sizes[key] = total
        return total

    size(obj, 0, "document")




def _syntax_error(language: str, problem: str, text: str, line: int, column: int) -> SpecError:
    lines = text.splitlines()
    shown = lines[line - 1] if 0 < line <= len(lines) else ""
    return SpecError(
        f"invalid {language} at line {line} column {column}: {problem}",
        hint="check the document's syntax" + ("; keys and strings need double quotes" if language == "JSON" else ""),
        field="document",
        origin=Origin(shown, where=f"line {line}"),
        span=(column - 1, column),
    )
