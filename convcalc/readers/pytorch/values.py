"""What the arguments of a captured operator call are: activations, parameters, fixed tensors."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Act:
    """A tensor computed from the network input: the output of a layer (or the input itself)."""

    ref: str
    shape: tuple[int, ...]  # per sample


@dataclass(frozen=True)
class Param:
    """A parameter of the model (its qualified name), or a buffer when ``trainable`` is None."""

    name: str
    shape: tuple[int, ...]
    buffer: bool = False


@dataclass(frozen=True)
class Const:
    """A tensor that does not depend on the input and is not a parameter (made inside forward)."""

    shape: tuple[int, ...]


@dataclass
class Call:
    """One operator call: its name (``conv2d``), its arguments by name, and what the layer reads."""

    op: str
    args: dict
    batch: int = 1  # the traced batch, which reshapes name as their first size
    reads: list = field(default_factory=list)  # the activations read, in order (Act)
    weights: list = field(default_factory=list)  # (role, parameter name)

    def act(self, name: str | None = None) -> Act:
        """The activation argument ``name`` (default: the first argument, ``input`` or ``self``), now read."""
        if name is None or name not in self.args:
            name = next(iter(self.args))
        value = self.args[name]
        if not isinstance(value, Act):
            raise Unsupported(f"{self.op}: {name} is not computed from the input")
        self.reads.append(value)
        return value

    def weight(self, name: str, role: str) -> Param | None:
        value = self.args.get(name)
        if value is None:
            return None
        if isinstance(value, Param):
            self.weights.append((role, value.name))
            return value
        if isinstance(value, Const):
            return Param("", value.shape, buffer=True)
        raise Unsupported(f"{self.op}: {name} is computed from the input (a dynamic weight)")


class Unsupported(Exception):
    """The call is not one convcalc can cost: it stays in the network, not counted."""
