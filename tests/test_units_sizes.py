"""Models of any size, nn.RNN/LSTM/GRU(input_size=I, hidden_size=H, num_layers=L) + nn.Linear(H, K),
on both engines and in both dtypes, against torch.nn with copied weights, autograd through
torch.nn, central finite differences and gradcheck."""

import os

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.engine import fused
from landscape.units import final_states, forward_logits, init_theta, n_params

from sized_models import problem, torch_nn, torch_nn_grad

if not fused.available():
    if os.environ.get("LANDSCAPE_REQUIRE_FUSED"):
        pytest.fail(f"the fused kernel must build here: {fused.unavailable_reason()}", pytrace=False)
    pytest.skip(f"no fused kernel: {fused.unavailable_reason()}", allow_module_level=True)

SIZES = [(3, 1, 1), (1, 1, 2), (3, 4, 1), (2, 5, 2), (1, 3, 3)]  # (I, H, L)
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-12), torch.float32: dict(rtol=3e-4, atol=3e-5)}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"I{s[0]}H{s[1]}L{s[2]}")
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_both_engines_match_torch_nn(name, size, dtype):
    cell = ls.get_cell(name)
    I, H, L = size
    nets, theta, x, y, lengths = problem(cell, I, H, L, dtype)
    want_h, want_loss = torch_nn(nets, x, y, lengths)
    want_grad = torch_nn_grad(cell, nets, want_loss, H, I, L)  # torch.nn's own, in the flat order
    th = theta.to(dtype)
    ref_h = final_states(cell, th, x.to(dtype), lengths, H, inputs=I, layers=L)  # (G, H, N)
    np.testing.assert_allclose(ref_h.transpose(1, 2).double().numpy(), want_h.detach().numpy(), **TOL[dtype])
    hT, _ = fused.run_fused(
        cell, th, x.to(dtype), y=y.to(dtype), lengths=lengths, steps=x.shape[2], hidden=H, inputs=I, layers=L
    )
    np.testing.assert_allclose(hT.double().numpy(), want_h.detach().numpy(), **TOL[dtype])
    for fast in (False, True):
        t = th.clone().requires_grad_(True)
        if fast:
            loss, _ = fused.kernel_losses(
                cell,
                t,
                x.to(dtype),
                y.to(dtype),
                lengths=lengths,
                steps=x.shape[2],
                hidden=H,
                inputs=I,
                layers=L,
            )
        else:
            z = forward_logits(cell, t, x.to(dtype), lengths, H, inputs=I, layers=L)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y.to(dtype), reduction="none")
            loss = loss.mean(1)
        (g,) = torch.autograd.grad(loss.sum(), t)
        np.testing.assert_allclose(loss.double().detach().numpy(), want_loss.detach().numpy(), **TOL[dtype])
        np.testing.assert_allclose(g.double().numpy(), want_grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("variant", ["gru-before", "lstm2", "rnn2", "lstm-hard", "gru-hard"])
def test_variants_of_any_size_agree_between_engines(variant):
    """Keras's GRU before 2.3, the two-logit readout and Keras 2's hard_sigmoid gates have no
    torch.nn module: the two engines against each other, and the kernel's gradient against finite
    differences of the reference."""
    gate = "hard_sigmoid" if variant.endswith("-hard") else "sigmoid"
    variant = variant.removesuffix("-hard")
    base, head = variant.rstrip("2"), "softmax2" if variant.endswith("2") else "logit"
    cell = (
        ls.get_cell("gru", gru_reset="before", head=head)
        if base == "gru-before"
        else ls.get_cell(base, head=head, gate=gate)
    )
    I, H, L = 2, 3, 2
    gen = torch.Generator().manual_seed(5)
    theta = torch.stack([init_theta(cell, H, seed=s, inputs=I, layers=L) for s in range(2)])
    theta = theta + 0.3 * torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    X = torch.randn(8, 6, I, generator=gen, dtype=torch.float64)
    Y = (torch.rand(8, generator=gen) < 0.5).to(torch.float64)
    rows, lengths = torch.tensor([[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]]), torch.tensor([6, 4])

    def ref_loss(th):
        z = forward_logits(cell, th, X[rows], lengths, H, inputs=I, layers=L)
        return ls.cells.classification_loss(z, Y[rows], clip=cell.clip)[0]

    def kernel_loss(th):
        return fused.kernel_losses(
            cell, th, X, Y, rows=rows, lengths=lengths, steps=6, hidden=H, inputs=I, layers=L
        )[0]

    np.testing.assert_allclose(kernel_loss(theta).numpy(), ref_loss(theta).numpy(), rtol=1e-12)
    t = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(kernel_loss(t).sum(), t)
    eps = 1e-6
    for j in range(0, theta.shape[1], 7):
        e = torch.zeros_like(theta)
        e[:, j] = eps
        fd = (ref_loss(theta + e) - ref_loss(theta - e)) / (2 * eps)
        np.testing.assert_allclose(g[:, j].numpy(), fd.numpy(), rtol=1e-6, atol=1e-9)
    assert torch.autograd.gradcheck(kernel_loss, (t,), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_sizes_are_checked():
    cell = ls.get_cell("lstm")
    x, theta = torch.zeros(4, 5, 3), torch.zeros(2, n_params(cell, 2, inputs=3))
    with pytest.raises(ls.InputError, match="3 features"):
        fused.run_fused(cell, theta, x[..., 0], steps=5, hidden=2, inputs=3)
    with pytest.raises(ls.InputError, match="theta"):
        fused.run_fused(cell, theta, x, steps=5, hidden=2, inputs=3, layers=2)
    with pytest.raises(ls.InputError, match="layers 0"):
        init_theta(cell, 2, layers=0)
