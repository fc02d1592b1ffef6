"""The readers' view of the layer kinds: every name a token, constructor or document may use.

The kinds themselves are declared by the layer classes (``engine/layers/kind.py``);
this module only answers the questions the readers ask of that table.
"""

from __future__ import annotations

from ..engine.layers.kind import KINDS, SHORT_KEYS, Kind, find_kind

__all__ = ["KINDS", "SHORT_KEYS", "Kind", "canonical_key", "find_kind", "token_names"]


def canonical_key(kind: Kind, key: str) -> str:
    """PyTorch's argument name for a key as written (short keys resolved).

    >>> canonical_key(find_kind("conv"), "k"), canonical_key(find_kind("linear"), "in")
    ('kernel_size', 'in_features')
    """
    return kind.canonical(key)


def token_names() -> list[str]:
    """Every kind name a token may start with (for help and completion)."""
    return sorted(KINDS)
