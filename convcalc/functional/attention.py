"""Matrix products and attention on NumPy arrays, as ``torch.matmul`` and
``torch.nn.functional.scaled_dot_product_attention`` compute them (the math backend)."""

from __future__ import annotations

import math

import numpy as np

from .activation import softmax


def matmul(a, b):
    """``torch.matmul``: leading axes broadcast; float32 stays float32.

    >>> matmul(np.ones((2, 3, 4), np.float32), np.ones((4, 5), np.float32)).shape
    (2, 3, 5)
    """
    return np.matmul(a, b)


def einsum(equation, *operands):
    """``torch.einsum`` (NumPy's, which reads the same equations); float32 stays float32.

    >>> einsum("bij,bjk->bik", np.ones((2, 3, 4), np.float32), np.ones((2, 4, 5), np.float32)).shape
    (2, 3, 5)
    """
    return np.einsum(equation, *operands)


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v, with a boolean mask keeping True positions and a float mask
    added; ``is_causal`` keeps the lower triangle; ``enable_gqa`` repeats key and value heads (axis -3)
    to the query's. Dropout is the identity here (inference).

    >>> q = np.ones((1, 2, 4, 8), np.float32)
    >>> scaled_dot_product_attention(q, q, q).shape
    (1, 2, 4, 8)
    """
    if enable_gqa and k.shape[-3] != q.shape[-3]:
        repeat = q.shape[-3] // k.shape[-3]
        k, v = np.repeat(k, repeat, axis=-3), np.repeat(v, repeat, axis=-3)
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * q.dtype.type(factor)
    if is_causal:
        length, source = scores.shape[-2:]
        keep = np.tril(np.ones((length, source), dtype=bool))
        scores = np.where(keep, scores, q.dtype.type(-np.inf))
    if attn_mask is not None:
        if attn_mask.dtype == bool:
            scores = np.where(attn_mask, scores, q.dtype.type(-np.inf))
        else:
            scores = scores + attn_mask.astype(q.dtype, copy=False)
    return np.matmul(softmax(scores, -1), v).astype(q.dtype, copy=False)
