"""Chunks of a symbolic size, written as the equal splits they are, so ``torch.export`` keeps the batch
a symbol.

``torch.chunk(x, n)`` makes pieces of ``ceil(size / n)``; where ``size`` is the symbolic batch times a
multiple of ``n`` (RAFT's ``torch.chunk(fmaps, 2)`` of both frames' features, joined along the batch),
``torch.export`` must prove how many pieces that makes for every batch, a guard
(``(3 * batch - 1) // batch == 2``) its symbolic shapes cannot prove, so it fixes the batch. The
pieces are exactly ``torch.split(x, [size // n] * n)``, which needs no guard; PyTorch's own
results are unchanged.
"""

from __future__ import annotations


def even_chunks(torch):
    """A function mode under which ``chunk`` of a symbolic size that ``chunks`` divides, and ``split``
    of it into pieces of a size that divides it, are the split into those pieces listed."""
    from torch.fx.experimental.symbolic_shapes import statically_known_true
    from torch.overrides import TorchFunctionMode

    chunk_functions = {torch.chunk, torch.Tensor.chunk}
    split_functions = {torch.split, torch.Tensor.split}

    class EvenChunks(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            pieces = None
            if func in chunk_functions or func in split_functions:
                bound = _bound(args, kwargs, ("chunks",) if func in chunk_functions else
                               ("split_size_or_sections", "split_size"))
                if bound is not None:  # arguments as the function takes them; anything else runs as written
                    rewrite = _even if func in chunk_functions else _even_split
                    pieces = rewrite(torch, statically_known_true, *bound)
            return func(*args, **kwargs) if pieces is None else pieces

    return EvenChunks()


def _bound(args, kwargs, sizes: tuple[str, ...]):
    """``(tensor, size, dim)`` from a call of chunk or split, positional or by keyword (``input``,
    ``tensor`` or ``self``; ``chunks`` or ``split_size_or_sections``; ``dim``), or None if it is
    anything else."""
    args, kwargs = list(args), dict(kwargs)
    names = (("input", "tensor", "self"), sizes, ("dim",))
    values = []
    for keys in names:
        given = [kwargs.pop(k) for k in keys if k in kwargs]
        if args and given or len(given) > 1:
            return None
        values.append(args.pop(0) if args else given[0] if given else (0 if keys == ("dim",) else None))
    if args or kwargs or values[0] is None or values[1] is None:
        return None
    return tuple(values)


def _even(torch, known, tensor, chunks, dim=0):
    """The equal split ``chunk`` makes, where ``tensor``'s size along ``dim`` is symbolic and
    provably a multiple of ``chunks`` (else None: ``chunk`` runs as written)."""
    if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1 or not isinstance(dim, int):
        return None
    size = tensor.shape[dim]
    if not isinstance(size, torch.SymInt) or not known(size % chunks == 0):
        return None
    return torch.split(tensor, [size // chunks] * chunks, dim)


def _even_split(torch, known, tensor, split_size_or_sections, dim=0):
    """``split`` into pieces of one symbolic size that provably divides ``tensor``'s along ``dim`` into
    a known count, listed (else None: ``split`` runs as written)."""
    piece = split_size_or_sections
    if not isinstance(piece, torch.SymInt) or not isinstance(dim, int):
        return None
    size = tensor.shape[dim]
    if not isinstance(size, torch.SymInt) or not known(size % piece == 0):
        return None
    count = size // piece
    if isinstance(count, torch.SymInt):
        if not count.node.expr.is_number:
            return None
        count = int(count.node.expr)
    return torch.split(tensor, [piece] * count, dim)
