"""The tests' independent references: torch.nn modules holding a flat parameter vector, and
Pascanu's map by hand in plain Python floats.

Nothing here calls into ``landscape``. The layout of the flat vector is spelled out from the
documentation: the tensors in state_dict order (``weight_ih_l0, weight_hh_l0, bias_ih_l0,
bias_hh_l0`` of the recurrent module, then ``weight, bias`` of the ``nn.Linear`` head), each
flattened row-major, gate rows in torch's order (LSTM i, f, g, o; GRU r, z, n). The models are
plain ``torch.nn`` modules in float64 and the loss is written out by hand. ``tests/`` is on
pytest's ``pythonpath``, so a test imports these directly; ``conftest.py`` also hands them out as
the ``ref`` fixture.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
GATES = {"rnn": "", "lstm": "ifgo", "gru": "rzn"}
RNN_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
SHORT = {"weight_ih_l0": "w_ih", "weight_hh_l0": "w_hh", "bias_ih_l0": "b_ih", "bias_hh_l0": "b_hh"}

# ---------------------------------------------------------------- torch.nn


def param_names(cell: str) -> tuple[str, ...]:
    """The documented names of a one-unit model's scalars, in flat-vector order."""
    gates = GATES[cell] or [""]
    names = [f"{SHORT[key]}_{g}" if g else SHORT[key] for key in RNN_KEYS for g in gates]
    return (*names, "w_out", "b_out")


def _tensors(rnn: nn.Module, head: nn.Module) -> list[torch.Tensor]:
    """The parameters in the documented order, looked up by state_dict key."""
    return [getattr(rnn, key) for key in RNN_KEYS] + [head.weight, head.bias]


def torch_modules(cell: str, theta, *, hidden: int = 1, classes: int = 1) -> tuple[nn.Module, nn.Module]:
    """float64 ``nn.RNN/LSTM/GRU(1, hidden, batch_first=True)`` and ``nn.Linear(hidden, classes)``
    holding ``theta``: a flat vector in the documented order, or (one unit, one logit) a dict
    name -> float."""
    if isinstance(theta, dict):
        theta = [theta[name] for name in param_names(cell)]
    if isinstance(theta, torch.Tensor):
        flat = theta.detach().to(torch.float64).reshape(-1)
    else:
        flat = torch.as_tensor(np.asarray(theta, dtype=np.float64)).reshape(-1)
    rnn = MODULES[cell](1, hidden, batch_first=True).double()
    head = nn.Linear(hidden, classes).double()
    k = 0
    with torch.no_grad():
        for p in _tensors(rnn, head):
            p.copy_(flat[k : k + p.numel()].reshape(p.shape))
            k += p.numel()
    assert k == len(flat), f"{cell} with {hidden} units has {k} parameters, theta has {len(flat)}"
    return rnn, head


def torch_init(cell: str, seed: int, *, hidden: int = 1) -> tuple[nn.Module, nn.Module]:
    """``MODULES[cell](1, hidden, batch_first=True)`` and ``nn.Linear(hidden, 1)`` as torch
    initializes them after ``torch.manual_seed(seed)``; the caller's RNG is left alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODULES[cell](1, hidden, batch_first=True), nn.Linear(hidden, 1)


def flat_values(rnn: nn.Module, head: nn.Module) -> list[float]:
    """The scalars of two modules as a flat list in the documented order."""
    return [float(v) for p in _tensors(rnn, head) for v in p.detach().reshape(-1)]


def module_values(cell: str, rnn: nn.Module, head: nn.Module) -> dict[str, float]:
    """The scalars of a one-unit model, by documented name."""
    return dict(zip(param_names(cell), flat_values(rnn, head), strict=True))


def torch_logits(rnn: nn.Module, head: nn.Module, x) -> torch.Tensor:
    """head(h_T) of the modules on inputs x (N, T), all T steps used: (N, classes)."""
    out, _ = rnn(torch.as_tensor(x, dtype=torch.float64)[:, :, None])  # (N, T, hidden)
    return head(out[:, -1, :])  # (N, classes)


def _bce(z: torch.Tensor, y) -> torch.Tensor:
    """Mean BCE with logits: -y log s(z) - (1 - y) log(1 - s(z)) = log(1 + e^z) - y z."""
    y = torch.as_tensor(y, dtype=torch.float64)
    return (torch.logaddexp(torch.zeros_like(z), z) - y * z).mean()


def torch_loss(cell: str, theta, x, y) -> tuple[float, float]:
    """Mean BCE-with-logits of one unit and one logit on x (N, T) against y (N,) in {0, 1},
    and accuracy (logit > 0 predicts 1)."""
    with torch.no_grad():
        z = torch_logits(*torch_modules(cell, theta), x)[:, 0]  # (N,)
    acc = np.mean((z.numpy() > 0) == (np.asarray(y) == 1))
    return float(_bce(z, y)), float(acc)


def torch_grad(cell: str, theta, x, y) -> tuple[float, np.ndarray]:
    """The loss of ``torch_loss`` and its gradient by autograd, flat in the documented order."""
    rnn, head = torch_modules(cell, theta)
    loss = _bce(torch_logits(rnn, head, x)[:, 0], y)
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.reshape(-1) for p in _tensors(rnn, head)]).numpy()


# ---------------------------------------------------------------- Pascanu's map

TARGET = 0.7


def _sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def pascanu_grad(w: float, b: float, length: int) -> tuple[float, float, float]:
    """E = (sigmoid(x_T) - 0.7)^2 of x_t = w sigmoid(x_{t-1}) + b, x_0 = 0.5, and (dE/dw, dE/db)
    by the forward-mode chain rule."""
    x, dw, db = 0.5, 0.0, 0.0
    for _ in range(length):
        s = _sig(x)
        ds = s * (1.0 - s)
        dw, db = s + w * ds * dw, 1.0 + w * ds * db
        x = w * s + b
    s = _sig(x)
    c = 2.0 * (s - TARGET) * s * (1.0 - s)
    return (s - TARGET) ** 2, c * dw, c * db


def pascanu_loss(w: float, b: float, length: int) -> float:
    """E of Pascanu et al.'s map, the plain scalar loop of ``pascanu_grad``."""
    return pascanu_grad(w, b, length)[0]


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


# ---------------------------------------------------------------- buffers


def padded(t: torch.Tensor, pad: int = 32) -> torch.Tensor:
    """``t`` as a contiguous view inside a NaN-filled buffer: a read past either end shows as NaN
    (an index tensor's padding is -1, which points into its table's padding)."""
    fill = -1 if not t.is_floating_point() else float("nan")
    buf = torch.full((t.numel() + 2 * pad,), fill, dtype=t.dtype)
    buf[pad : pad + t.numel()] = t.reshape(-1)
    return buf[pad : pad + t.numel()].view(t.shape)
