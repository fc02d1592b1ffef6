"""Layer kinds: the names a layer class answers to, and the arguments each name takes.

A layer class declares its kinds where it is defined, in ``spellings``: each
``Kind`` is one name (``conv``, ``Conv2d``, ``dropout2d``) with its aliases,
the arguments it accepts in PyTorch's positional order, the ones a shell token's
bare values fill, the required ones, and the arguments the name itself fixes
(Conv2d fixes the rank, Dropout2d the variant). Each argument's rule comes from
the class's field (``rules``). Defining the class registers its kinds: every
reader, verb and writer finds them here, so a new kind is one class.

>>> find_kind("Conv2d").rank, find_kind("conv").cls.__name__
(2, 'Conv')
>>> find_kind("conv").coerce("padding", "SAME"), find_kind("pad").canonical("p")
('same', 'padding')
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from ..errors import SpecError
from .rules import RULES_BY_ANNOTATION, check_magnitudes

# Short keys every kind accepts for PyTorch's argument names.
SHORT_KEYS = {
    "k": "kernel_size", "s": "stride", "p": "padding", "d": "dilation", "g": "groups", "op": "output_padding",
    "scale": "scale_factor", "slope": "negative_slope", "ceil": "ceil_mode",
}
# Short keys whose PyTorch name depends on the kind.
CONTEXT_KEYS = {"in": ("in_channels", "in_features", "num_features"), "out": ("out_channels", "out_features")}
# Fields every layer has that are wiring, not arguments.
WIRING = ("origin", "name", "inputs", "path", "remark", "expect", "weights", "once", "slices")


def arg(default: Any = MISSING, *, rule=None, internal: bool = False):
    """A layer field with the rule that checks its value (when the annotation's is not the right one);
    ``internal``: set by the kind's name or a reader, never written by a user."""
    metadata = {"rule": rule, "internal": internal}
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Kind:
    """One name of a layer class, with the arguments that name takes.

    ``fields`` follow PyTorch's positional order (constructor text);
    ``positional`` is what bare values in a shell token fill.
    """

    name: str
    aliases: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    rank: int | None = None
    fixed: tuple[tuple[str, Any], ...] = ()  # arguments the name fixes (Dropout2d: variant=feature)
    cls: type | None = field(default=None, compare=False)

    def canonical(self, key: str) -> str:
        """PyTorch's argument name for a key as written (short keys resolved)."""
        if key in self.fields:  # a kind's own argument wins over a short key (Dropout's p)
            return key
        for name in CONTEXT_KEYS.get(key, ()):
            if name in self.fields:
                return name
        return SHORT_KEYS.get(key, key)

    def coerce(self, name: str, value):
        """``value`` checked by the rule of argument ``name``, in its canonical form."""
        check_magnitudes(name, value)
        return rule_of(self.cls, name)(name, value)

    def make(self, arguments: dict, origin=None, **wiring):
        """The layer, from checked arguments; ``wiring`` sets name, inputs, path and the like."""
        extra = dict(self.fixed)
        if self.rank is not None:
            extra["rank"] = self.rank
        return self.cls(**extra, **arguments, origin=origin, **wiring)


def spell(name: str, *aliases: str, fields=(), positional=(), required=(), rank=None, **fixed) -> Kind:
    """A kind's declaration: ``spell("linear", "fc", fields=("in_features", ...), positional=(...))``."""
    return Kind(name, aliases, tuple(fields), tuple(positional), tuple(required), rank, tuple(fixed.items()))


def ranked(names, torch_base: str, *, fields, positional=(), required=(), ranks=(1, 2, 3), **fixed) -> tuple:
    """A family's kinds: the short names (rank from the input) and PyTorch's ``{torch_base}{r}d`` classes."""
    first, *aliases = names
    kinds = [spell(first, *aliases, fields=fields, positional=positional, required=required, **fixed)]
    for rank in ranks:
        kinds.append(spell(f"{torch_base}{rank}d", fields=fields, positional=positional, required=required,
                           rank=rank, **fixed))
    return tuple(kinds)


KINDS: dict[str, Kind] = {}  # every name, lower case, to its kind
CLASSES: dict[type, tuple[Kind, ...]] = {}  # every layer class to its kinds
_RULES: dict[tuple[type, str], Any] = {}


def register(cls: type) -> None:
    """Record the kinds a layer class declares (called as the class is defined)."""
    bound = tuple(replace(kind, cls=cls) for kind in cls.__dict__["spellings"])
    for kind in bound:
        for name in (kind.name, *kind.aliases):
            other = KINDS.get(name.lower())
            if other is not None and other.cls.__qualname__ != cls.__qualname__:
                raise TypeError(f"{cls.__name__} declares the kind {name!r}, which {other.cls.__name__} has")
            KINDS[name.lower()] = kind
    CLASSES[cls] = bound


def find_kind(name: str) -> Kind | None:
    """The kind a (case-insensitive) name stands for, or None."""
    return KINDS.get(name.lower())


def arguments_of(cls: type) -> dict:
    """A layer class's arguments (its fields that are not wiring), by name."""
    return {f.name: f for f in fields(cls) if f.name not in WIRING}


def rule_of(cls: type, name: str):
    """The rule that checks argument ``name`` of a layer class: its declaration's, else its annotation's."""
    key = (cls, name)
    if key not in _RULES:
        declared = arguments_of(cls).get(name)
        if declared is None:
            raise SpecError(f"{cls.__name__} has no argument {name!r}", hint="check the layer's arguments",
                            field=name)
        rule = declared.metadata.get("rule") or RULES_BY_ANNOTATION.get(str(declared.type))
        if rule is None:  # a declaration without a rule: caught by the tests over every kind
            raise TypeError(f"{cls.__name__}.{name} ({declared.type}) has no rule: declare one with arg(rule=...)")
        _RULES[key] = rule
    return _RULES[key]


def kind_of(layer) -> Kind:
    """The kind that writes ``layer`` back: its rank's PyTorch name when it has one, and of the kinds
    of its class that agree with it, the one fixing the fewest arguments (so every argument can be written)."""
    rank = getattr(layer, "rank", None)
    declared = arguments_of(type(layer))

    def writes(kind: Kind) -> bool:  # its name and arguments give back this very layer
        fixed = dict(kind.fixed)
        return kind.rank == rank and all(
            getattr(layer, name) == fixed[name] if name in fixed else
            name in kind.fields or name == "rank" or getattr(layer, name) == f.default
            for name, f in declared.items())

    candidates = [kind for kind in CLASSES.get(type(layer), ()) if writes(kind)]
    if not candidates:
        raise TypeError(f"no kind writes {type(layer).__name__}")  # a class without kinds: a bug
    return min(candidates, key=lambda kind: len(kind.fixed))


def check_arguments(cls: type, **values) -> dict:
    """Each value checked by the rule of the class's argument of that name (for the functional API).

    >>> from convcalc.engine.layers import Conv
    >>> check_arguments(Conv, stride=[2, 2], padding="Same")
    {'stride': (2, 2), 'padding': 'same'}
    """
    checked = {}
    for name, value in values.items():
        check_magnitudes(name, value)
        checked[name] = rule_of(cls, name)(name, value)
    return checked
