"""Pascanu's map by hand: loss and gradient by the forward-mode chain rule, and gradient descent
on them, in plain Python floats. Independent of ``landscape``; imported by the tests that check
gradients, cliffs and descent paths (``tests/`` is on pytest's ``pythonpath``)."""

from __future__ import annotations

import math

import numpy as np

TARGET = 0.7


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def pascanu_grad(w: float, b: float, length: int) -> tuple[float, float, float]:
    """E = (sigmoid(x_T) - 0.7)^2 of x_t = w sigmoid(x_{t-1}) + b, x_0 = 0.5, and (dE/dw, dE/db)."""
    x, dw, db = 0.5, 0.0, 0.0
    for _ in range(length):
        s = _sig(x)
        ds = s * (1.0 - s)
        dw, db = s + w * ds * dw, 1.0 + w * ds * db
        x = w * s + b
    s = _sig(x)
    c = 2.0 * (s - TARGET) * s * (1.0 - s)
    return (s - TARGET) ** 2, c * dw, c * db


def pascanu_descent(w, b, length, lr, steps, clip=None):
    """Plain gradient descent on the closed form; with ``clip``, Algorithm 1 (rescale when
    ||g|| >= clip). Returns coords (S + 1, 2), losses and norms (S + 1,), and the clipped steps."""
    coords, losses, norms, clipped = [(w, b)], [], [], []
    for step in range(steps + 1):
        e, gw, gb = pascanu_grad(w, b, length)
        norm = math.hypot(gw, gb)
        losses.append(e)
        norms.append(norm)
        if step == steps:
            break
        if clip is not None and norm >= clip:
            gw, gb = gw * clip / norm, gb * clip / norm
            clipped.append(step)
        w, b = w - lr * gw, b - lr * gb
        coords.append((w, b))
    return np.array(coords), np.array(losses), np.array(norms), clipped
