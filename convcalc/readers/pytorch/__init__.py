"""Reading PyTorch models: a module's real graph, captured with ``torch.export``, as a ``Network``.

PyTorch is imported only here, and only when a model is read.
"""

from .capture import from_torch
from .spec import load_model

__all__ = ["from_torch", "load_model"]
