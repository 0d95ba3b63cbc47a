"""The engine table: every cell variant on every engine against an independent reference, in one
parametrized test.

Rows are (cell, variant, size); the engines are the readable reference path and the fused kernel;
the references are torch.nn modules with copied weights where torch.nn has the variant (rnn, lstm,
gru with the reset gate after its product, one logit or two), and where it does not (Keras's reset
gate before the product, Keras 2.1's hard sigmoid, Pascanu's map) a plain float64 loop over the
steps written out here from the equations. Losses and accuracies to 1e-12 in float64; gradients
against the reference's autograd to 1e-10."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import landscape as ls
from landscape.backends import loss_and_grad, losses
from landscape.engine import fused

from references import pascanu_grad, torch_modules

ENGINES = ["reference", "fused"]
# (cell, variant, hidden units): the variants each engine must hold
ROWS = [
    ("rnn", {}, 1),
    ("rnn", {}, 3),
    ("lstm", {}, 1),
    ("lstm", {}, 3),
    ("gru", {}, 1),
    ("gru", {}, 3),
    ("rnn", {"head": "softmax2"}, 1),
    ("lstm", {"head": "softmax2"}, 2),
    ("gru", {"head": "softmax2"}, 1),
    ("gru", {"gru_reset": "before"}, 1),
    ("gru", {"gru_reset": "before"}, 3),
    ("lstm", {"gate": "hard_sigmoid"}, 1),
    ("gru", {"gate": "hard_sigmoid", "gru_reset": "before", "head": "softmax2"}, 2),
    ("pascanu", {}, 1),
]


def _id(row) -> str:
    name, variant, hidden = row
    return "-".join([name, *(f"{k}={v}" for k, v in variant.items()), f"H{hidden}"])


def _loop_logits(name: str, variant: dict, flat: torch.Tensor, x: torch.Tensor, hidden: int) -> torch.Tensor:
    """The cell by its equations, one step at a time, on torch.nn's parameter layout: (N, classes)."""
    rnn, head = torch_modules(
        name, flat, hidden=hidden, classes=2 if variant.get("head") == "softmax2" else 1
    )
    w_ih, w_hh = rnn.weight_ih_l0[:, 0], rnn.weight_hh_l0
    b_ih, b_hh = rnn.bias_ih_l0, rnn.bias_hh_l0
    if variant.get("gate") == "hard_sigmoid":

        def gate(v):
            return torch.clamp(0.2 * v + 0.5, 0.0, 1.0)
    else:
        gate = torch.sigmoid
    H = hidden
    h = torch.zeros(x.shape[0], H, dtype=torch.float64)
    c = torch.zeros_like(h)
    for t in range(x.shape[1]):
        xi = x[:, t, None] * w_ih + b_ih  # (N, gates * H)
        if name == "rnn":
            h = torch.tanh(xi + h @ w_hh.T + b_hh)
        elif name == "lstm":
            hh = h @ w_hh.T + b_hh
            i, f, g, o = ((xi + hh)[:, k * H : (k + 1) * H] for k in range(4))
            c = gate(f) * c + gate(i) * torch.tanh(g)
            h = gate(o) * torch.tanh(c)
        else:
            hh = h @ w_hh.T + b_hh
            r = gate(xi[:, :H] + hh[:, :H])
            z = gate(xi[:, H : 2 * H] + hh[:, H : 2 * H])
            if variant.get("gru_reset") == "before":  # Keras's reset_after=False: r scales h first
                n = torch.tanh(xi[:, 2 * H :] + (r * h) @ w_hh[2 * H :].T + b_hh[2 * H :])
            else:
                n = torch.tanh(xi[:, 2 * H :] + r * hh[:, 2 * H :])
            h = (1 - z) * n + z * h
    return head(h)


def _reference(name: str, variant: dict, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, hidden: int):
    """Loss, accuracy and gradient of one model by the independent references."""
    flat = flat.detach().clone().requires_grad_(True)
    in_torch = variant.get("gru_reset", "after") == "after" and variant.get("gate", "sigmoid") == "sigmoid"
    if in_torch:  # torch.nn itself
        classes = 2 if variant.get("head") == "softmax2" else 1
        rnn, head = torch_modules(name, flat.detach(), hidden=hidden, classes=classes)
        params = [*rnn.parameters(), *head.parameters()]
        out, _ = rnn(x[:, :, None])
        z = head(out[:, -1])
        loss = _loss(z, y)
        grads = torch.autograd.grad(loss, params)
        g = torch.cat([p.reshape(-1) for p in grads])
    else:
        z = _loop_logits(name, variant, flat, x, hidden)
        loss = _loss(z, y)

        # the loop built its modules from a detached copy: differentiate it by finite differences
        # of the loop itself instead (central, h = 1e-6, float64)
        def f(v):
            return float(_loss(_loop_logits(name, variant, v, x, hidden), y).detach())

        g = torch.tensor([_central(f, flat.detach(), k) for k in range(flat.numel())])
    pred = z[:, 1] > z[:, 0] if z.shape[1] == 2 else z[:, 0] > 0
    acc = float((pred == (y == 1)).double().mean())
    return float(loss.detach()), acc, g


def _loss(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if z.shape[1] == 2:
        return F.cross_entropy(z, y.long())
    return F.binary_cross_entropy_with_logits(z[:, 0], y)


def _central(f, v: torch.Tensor, k: int, h: float = 1e-6) -> float:
    e = torch.zeros_like(v)
    e[k] = h
    return (f(v + e) - f(v - e)) / (2 * h)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("row", ROWS, ids=_id)
def test_engine_table(row, engine):
    name, variant, hidden = row
    if engine == "fused" and not fused.available():
        pytest.skip(f"the fused kernel is not built here: {fused.unavailable_reason()}")
    cell = ls.get_cell(name, hidden=hidden, **variant)
    G = 3
    if name == "pascanu":
        data = ls.make_data("pascanu", 20)
        theta = torch.tensor([[5.0, -2.6], [4.7, -2.4], [6.1, -3.0]], dtype=torch.float64)
        got, _ = losses(cell, data, theta, backend=engine)
        want = [(pascanu_grad(float(w), float(b), 20)) for w, b in theta.tolist()]
        np.testing.assert_allclose(got.numpy(), [w[0] for w in want], rtol=1e-12, atol=1e-15)
        _, _, g = loss_and_grad(cell, data, theta, backend=engine)
        np.testing.assert_allclose(g.numpy(), [w[1:] for w in want], rtol=1e-10, atol=1e-13)
        return
    data = ls.make_data("latching", 7, n=24, noise=0.3, seed=5).to(torch.float64, "cpu")
    gen = torch.Generator().manual_seed(len(_id(row)))
    theta = (torch.rand(G, cell.n_params, generator=gen, dtype=torch.float64) - 0.5) * 2.0
    got_loss, got_acc = losses(cell, data, theta, backend=engine)
    _, _, got_grad = loss_and_grad(cell, data, theta, backend=engine)
    for m in range(G):
        loss, acc, g = _reference(name, variant, theta[m], data.x, data.y, hidden)
        assert math.isclose(float(got_loss[m]), loss, rel_tol=1e-12, abs_tol=1e-15), (
            m,
            float(got_loss[m]),
            loss,
        )
        assert float(got_acc[m]) == acc
        exact = variant.get("gru_reset", "after") == "after" and variant.get("gate", "sigmoid") == "sigmoid"
        np.testing.assert_allclose(
            got_grad[m].numpy(), g.numpy(), rtol=1e-10 if exact else 1e-6, atol=1e-12 if exact else 1e-8
        )


def test_on_cuda_fused_and_auto_take_the_gpu_engine_where_it_runs(monkeypatch):
    """The dispatch on a CUDA device, without one: 'auto' takes the GPU engine where it is
    available and runs the model, else the reference path; 'fused' where it cannot run is one
    line with the reason; a model neither engine runs is refused on CUDA as on the CPU."""
    from landscape.backends import kernel_refuses, resolve_backend
    from landscape.engine import gpu

    monkeypatch.setattr(gpu, "available", lambda device="cuda": True)
    assert resolve_backend("auto", device="cuda", work=1.0) == "fused"  # whatever the work
    assert resolve_backend("fused", device="cuda") == "fused"
    assert resolve_backend("reference", device="cuda") == "reference"
    data = [ls.make_data("latching", 5, n=8)]
    assert kernel_refuses(ls.get_cell("lstm", hidden=4, layers=2), data, "cuda") == ""  # H units, on both
    big = ls.get_cell("lstm", hidden=65)
    why = kernel_refuses(big, data, "cuda")
    assert "up to 64 units" in why and why == kernel_refuses(big, data, "cpu")
    assert resolve_backend("auto", device="cuda", why_not=why) == "reference"
    with pytest.raises(ls.InputError, match="up to 64 units"):
        resolve_backend("fused", device="cuda", why_not=why)
    monkeypatch.setattr(gpu, "available", lambda device="cuda": False)
    monkeypatch.setattr(gpu, "unavailable_reason", lambda device="cuda": "no CUDA device is available")
    assert resolve_backend("auto", device="cuda") == "reference"
    with pytest.raises(
        ls.InputError, match="cannot run on cuda: no CUDA device is available; valid here: auto, reference"
    ):
        resolve_backend("fused", device="cuda")
