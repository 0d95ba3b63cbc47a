"""Keras's default initialization of SimpleRNN, LSTM, GRU and Dense, in torch.nn's layout.

The posted experiment built ``SimpleRNN(H)``, ``LSTM(H)`` or ``GRU(H)`` and ``Dense(K)`` with Keras's
defaults, which differ from torch.nn's uniform U(-1/sqrt(H), 1/sqrt(H)):

- input kernel (1, G*H): ``glorot_uniform``, U(-l, l) with l = sqrt(6 / (1 + G*H));
- recurrent kernel (H, G*H): ``orthogonal``: for H = 1 a SimpleRNN's weight is exactly +1 or -1,
  and a one-unit LSTM's (1, 4) row is a random unit vector;
- biases zero, but an LSTM's forget gate starts at 1 (``unit_forget_bias=True``); Keras keeps one
  bias (bias_hh is 0 here), and a GRU with ``reset_after=True`` two (both 0);
- Dense kernel (H, K): ``glorot_uniform``; bias 0.

Keras's gate orders (LSTM i, f, c, o; GRU z, r, h) are mapped to torch.nn's (i, f, g, o; r, z, n).
Draws come from a seeded ``torch.Generator``: the same seed gives the same model, with Keras's
distributions (tests compare them with Keras's own initializers), not Keras's random stream.
"""

from __future__ import annotations

import math

import torch

from ._errors import InputError

__all__ = ["INITS", "check_init", "keras_theta", "glorot_uniform", "orthogonal"]

INITS = ("torch", "keras")


def check_init(init: str) -> str:
    """An initialization's name, or InputError naming it and the valid ones."""
    if init not in INITS:
        raise InputError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    return init


# torch.nn's gate block k comes from Keras's gate block KERAS_GATE[cell][k]
KERAS_GATE = {"rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}


def glorot_uniform(shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Keras's glorot_uniform for a (fan_in, fan_out) kernel."""
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * limit


def orthogonal(shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """Keras's orthogonal initializer: Q of a Gaussian matrix's QR, signs fixed by R's diagonal."""
    rows, cols = shape
    a = torch.randn(max(rows, cols), min(rows, cols), generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    return q.T if rows < cols else q


def keras_theta(cell, hidden: int = 1, *, seed: int = 0, inputs: int = 1, layers: int = 1) -> torch.Tensor:
    """Keras's defaults for ``cell`` (``layers`` stacked layers of ``hidden`` units on ``inputs``
    features, then its readout) as a flat (P,) float64 vector in torch.nn's ``state_dict`` order:
    weight_ih_l<l>, weight_hh_l<l>, bias_ih_l<l>, bias_hh_l<l> for each layer, weight, bias."""
    order = KERAS_GATE[cell.name]
    G, H, K = len(order), int(hidden), cell.n_out
    gen = torch.Generator().manual_seed(int(seed))
    bias = torch.zeros(G * H, dtype=torch.float64)
    if cell.name == "lstm":
        bias[H : 2 * H] = 1.0  # unit_forget_bias

    def torch_rows(m: torch.Tensor) -> torch.Tensor:  # (.., G*H) in Keras's order -> (G*H, ..) torch's
        blocks = m.T.reshape(G, H, -1)
        return blocks[list(order)].reshape(G * H, -1)

    parts = []
    for k in range(layers):  # Keras builds the layers in order, each drawing its kernels
        kernel = glorot_uniform((inputs if k == 0 else H, G * H), gen)  # Keras's (input, G*H), its gate order
        recurrent = orthogonal((H, G * H), gen)  # (H, G*H)
        parts += [
            torch_rows(kernel).reshape(-1),
            torch_rows(recurrent).reshape(-1),
            torch_rows(bias[None])[:, 0],
            torch.zeros(G * H, dtype=torch.float64),
        ]
    dense = glorot_uniform((H, K), gen)  # (H, K)
    return torch.cat([*parts, dense.T.reshape(-1), torch.zeros(K, dtype=torch.float64)])
