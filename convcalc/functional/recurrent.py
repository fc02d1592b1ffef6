"""Recurrent layers on NumPy arrays, as ``torch.nn.LSTM``, ``GRU`` and ``RNN`` compute them (batch first)."""

from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _step(cell, nonlinearity, x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr):
    """One time step of one direction: the new hidden state (and cell state)."""
    gi = x @ w_ih.T + (0 if b_ih is None else b_ih)
    gh = h @ w_hh.T + (0 if b_hh is None else b_hh)
    if cell == "LSTM":  # gates in PyTorch's order: input, forget, cell, output
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        return (h if w_hr is None else h @ w_hr.T), c
    if cell == "GRU":  # reset, update, new: the reset gate scales the hidden part of the new gate only
        ir, iz, i_n = np.split(gi, 3, axis=-1)
        hr, hz, h_n = np.split(gh, 3, axis=-1)
        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
        n = np.tanh(i_n + r * h_n)
        return (1 - z) * n + z * h, c
    total = gi + gh
    return (np.tanh(total) if nonlinearity == "tanh" else np.maximum(total, 0)), c


def recurrent(x, weights, cell: str = "LSTM", nonlinearity: str = "tanh"):
    """The output sequence of a stacked (bidirectional) recurrent layer for ``x`` (batch x steps x features).

    ``weights[layer][direction]`` is (w_ih, w_hh, b_ih, b_hh, w_hr) in PyTorch's layouts (None where
    absent); states start at zero, as the modules' do without ``hx``.

    >>> w = [[(np.ones((4, 2)), np.ones((4, 1)), None, None, None)]]
    >>> recurrent(np.zeros((1, 3, 2)), w).shape
    (1, 3, 1)
    """
    y = np.asarray(x)
    for layer in weights:
        outputs = []
        for direction, (w_ih, w_hh, b_ih, b_hh, w_hr) in enumerate(layer):
            h = np.zeros((y.shape[0], w_hh.shape[1]), dtype=y.dtype)
            c = np.zeros((y.shape[0], w_hh.shape[0] // 4), dtype=y.dtype) if cell == "LSTM" else None
            steps = range(y.shape[1] - 1, -1, -1) if direction else range(y.shape[1])
            out = np.empty((y.shape[0], y.shape[1], h.shape[1]), dtype=y.dtype)
            for t in steps:
                h, c = _step(cell, nonlinearity, y[:, t], h, c, w_ih, w_hh, b_ih, b_hh, w_hr)
                out[:, t] = h
            outputs.append(out)
        y = np.concatenate(outputs, axis=-1) if len(outputs) > 1 else outputs[0]
    return y.astype(np.asarray(x).dtype, copy=False)
