"""The GPU engine for models of H units, I inputs and L layers (``landscape.engine.gpu_units``), run
on CPU tensors under Triton's interpreter through the tests' switch: states, losses and gradients
against torch.nn with copied weights; the variants torch.nn lacks (Keras's GRU before 2.3, hard
sigmoid gates, the two-logit readout) against the reference path and central finite differences;
every input layout with NaN-padded inputs and NaN-filled outputs; several chunks of models; a sweep
of lengths from one pass; hostile values; and training through ``backend='fused'``."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.backends import loss_and_grad, losses
from landscape.engine import fused, gpu_units
from landscape.units import forward_logits, init_theta

from references import padded
from sized_models import problem, torch_nn, torch_nn_grad

if importlib.util.find_spec("triton") is None:
    if os.environ.get("LANDSCAPE_REQUIRE_TRITON"):
        pytest.fail("triton must be installed here (the gpu extra)", pytrace=False)
    pytest.skip("triton is not installed (the gpu extra)", allow_module_level=True)
if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("these tests interpret the kernels on CPU tensors", allow_module_level=True)

pytestmark = pytest.mark.slow  # interpreted kernels

TOL = {torch.float64: dict(rtol=1e-11, atol=1e-13), torch.float32: dict(rtol=3e-4, atol=3e-5)}


@pytest.mark.parametrize("size", [(2, 3, 1), (1, 2, 2)], ids=lambda s: f"I{s[0]}H{s[1]}L{s[2]}")
@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_states_losses_and_gradients_match_torch_nn(name, size, on_cpu):
    cell = ls.get_cell(name)
    I, H, L = size
    nets, theta, x, y, lengths = problem(cell, I, H, L, torch.float64, G=2, N=6, T=5)
    want_h, want_loss = torch_nn(nets, x, y, lengths)
    want_grad = torch_nn_grad(cell, nets, want_loss, H, I, L)
    for dtype in (torch.float64, torch.float32):
        th, xd, yd = theta.to(dtype), x.to(dtype), y.to(dtype)
        h = gpu_units.run_units(cell, th, xd, steps=5, lengths=lengths, hidden=H, inputs=I, layers=L)
        np.testing.assert_allclose(h.double().numpy(), want_h.detach().numpy(), **TOL[dtype])
        t = th.clone().requires_grad_(True)
        loss, _ = fused.kernel_losses(cell, t, xd, yd, lengths=lengths, steps=5, hidden=H, inputs=I, layers=L)
        (g,) = torch.autograd.grad(loss.sum(), t)
        np.testing.assert_allclose(loss.double().detach().numpy(), want_loss.detach().numpy(), **TOL[dtype])
        np.testing.assert_allclose(g.double().numpy(), want_grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("variant", ["gru-before-hard", "lstm-hard-softmax2", "gru-softmax2"])
def test_variants_without_torch_nn_match_the_reference_and_finite_differences(variant, on_cpu):
    kw = dict(
        gate="hard_sigmoid" if "hard" in variant else "sigmoid",
        head="softmax2" if "softmax2" in variant else "logit",
    )
    if "before" in variant:
        kw["gru_reset"] = "before"
    cell = ls.get_cell(variant.split("-")[0], **kw)
    I, H, L = 2, 3, 2
    gen = torch.Generator().manual_seed(5)
    theta = torch.stack([init_theta(cell, H, seed=s, inputs=I, layers=L) for s in range(2)])
    theta = theta + 0.3 * torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    X = torch.randn(8, 4, I, generator=gen, dtype=torch.float64)
    Y = (torch.rand(8, generator=gen) < 0.5).to(torch.float64)
    rows, lengths = torch.tensor([[0, 1, 2, 3, 4], [3, 4, 5, 6, 7]]), torch.tensor([4, 3])

    def ref_loss(th):
        z = forward_logits(cell, th, X[rows], lengths, H, inputs=I, layers=L)
        return ls.cells.classification_loss(z, Y[rows], clip=cell.clip)[0]

    def gpu_loss(th):
        return fused.kernel_losses(
            cell, th, X, Y, rows=rows, lengths=lengths, steps=4, hidden=H, inputs=I, layers=L
        )[0]

    np.testing.assert_allclose(gpu_loss(theta).numpy(), ref_loss(theta).numpy(), rtol=1e-12)
    t = theta.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(gpu_loss(t).sum(), t)
    t = theta.clone().requires_grad_(True)
    (gr,) = torch.autograd.grad(ref_loss(t).sum(), t)
    np.testing.assert_allclose(g.numpy(), gr.numpy(), rtol=1e-10, atol=1e-13)
    if variant != "gru-before-hard":
        return  # (one variant's finite differences: each is two interpreted passes)
    eps = 1e-6
    for j in range(0, theta.shape[1], 17):
        e = torch.zeros_like(theta)
        e[:, j] = eps
        fd = (gpu_loss(theta + e) - gpu_loss(theta - e)) / (2 * eps)
        np.testing.assert_allclose(g[:, j].numpy(), fd.numpy(), rtol=1e-6, atol=1e-9)


def test_layouts_chunks_and_padding(on_cpu, monkeypatch):
    """Shared inputs, each model's own and indexed rows with per-model lengths, read from inside
    NaN padding (a read past an end shows), outputs NaN-filled (an unwritten entry shows), in one
    chunk of models and in several."""
    cell = ls.get_cell("lstm")
    I, H, L = 3, 2, 2
    nets, theta, x, y, lengths = problem(cell, I, H, L, torch.float64, G=3, N=5, T=5)
    want_h, _ = torch_nn(nets, x, y, lengths)
    size = dict(hidden=H, inputs=I, layers=L)
    own = gpu_units.run_units(cell, theta, padded(x), steps=5, lengths=lengths, **size)
    np.testing.assert_allclose(own.numpy(), want_h.detach().numpy(), **TOL[torch.float64])
    table = x.reshape(15, 5, I)  # every model's samples as rows of one table
    rows = torch.arange(15).reshape(3, 5)
    by_rows = gpu_units.run_units(
        cell, theta, padded(table), steps=5, rows=padded(rows), lengths=padded(lengths), **size
    )
    assert torch.equal(by_rows, own)
    shared = gpu_units.run_units(cell, theta, padded(x[0]), steps=5, **size)
    full = torch.tensor([5, 5, 5])
    want_shared, _ = torch_nn(nets, x[0].expand(3, -1, -1, -1), y, full)
    np.testing.assert_allclose(shared.numpy(), want_shared.detach().numpy(), **TOL[torch.float64])
    monkeypatch.setattr(gpu_units, "SCRATCH_BYTES", 1)  # a chunk of one model at a time
    assert torch.equal(gpu_units.run_units(cell, theta, x, steps=5, lengths=lengths, **size), own)
    t = theta.clone().requires_grad_(True)
    lo, _ = fused.kernel_losses(cell, t, table, y.reshape(15), rows=rows, lengths=lengths, steps=5, **size)
    (g1,) = torch.autograd.grad(lo.sum(), t)
    monkeypatch.setattr(gpu_units, "SCRATCH_BYTES", 1 << 28)
    t = theta.clone().requires_grad_(True)
    lo2, _ = fused.kernel_losses(cell, t, table, y.reshape(15), rows=rows, lengths=lengths, steps=5, **size)
    (g2,) = torch.autograd.grad(lo2.sum(), t)
    assert torch.equal(lo, lo2) and torch.equal(g1, g2)


def test_several_blocks_of_samples_per_model(on_cpu, monkeypatch):
    """Small tiles: each model's samples in blocks of 4 (programs g NB + nb), a partial last one."""
    monkeypatch.setattr(gpu_units, "UNIT_TILE_BYTES", 64)
    assert gpu_units.units_shape(10, 2, 2, 8)[0] == gpu_units.units_shape(10, 2, 2, 8, backward=True)[0] == 4
    cell = ls.get_cell("gru")
    I, H, L = 2, 2, 2
    nets, theta, x, y, lengths = problem(cell, I, H, L, torch.float64, G=2, N=10, T=5)
    want_h, want_loss = torch_nn(nets, x, y, lengths)
    want_grad = torch_nn_grad(cell, nets, want_loss, H, I, L)
    h = gpu_units.run_units(cell, theta, x, steps=5, lengths=lengths, hidden=H, inputs=I, layers=L)
    np.testing.assert_allclose(h.numpy(), want_h.detach().numpy(), **TOL[torch.float64])
    t = theta.clone().requires_grad_(True)
    loss, _ = fused.kernel_losses(cell, t, x, y, lengths=lengths, steps=5, hidden=H, inputs=I, layers=L)
    (g,) = torch.autograd.grad(loss.sum(), t)
    np.testing.assert_allclose(g.numpy(), want_grad.numpy(), **TOL[torch.float64])


def test_a_sweep_of_lengths_from_one_pass(on_cpu):
    cell = ls.get_cell("gru", hidden=2, inputs=2)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 5, 2, generator=gen, dtype=torch.float64)
    y = (torch.rand(6, generator=gen) < 0.5).to(torch.float64)
    data = ls.TaskData(x, y, 5, "bce")
    theta = torch.stack([init_theta(cell, 2, seed=s, inputs=2) for s in range(2)])
    swept = ls.backends.prefix_losses(cell, data, theta, [1, 3, 5], "fused")
    for k, length in enumerate([1, 3, 5]):
        lo, acc = losses(cell, ls.TaskData(x[:, :length], y, length, "bce"), theta, backend="reference")
        np.testing.assert_allclose(swept[k][0].numpy(), lo.numpy(), rtol=1e-12)
        assert torch.equal(swept[k][1], acc)


def test_hostile_values_stay_in_their_model(on_cpu):
    cell = ls.get_cell("lstm", hidden=2)
    data = ls.make_data("latching", 4, n=5, seed=3).to(torch.float64, "cpu")
    theta = torch.stack([init_theta(cell, 2, seed=s) for s in range(3)])
    theta[1, 3] = float("nan")
    theta[2, 5] = 1e300  # saturates, finite
    with np.errstate(all="ignore"):
        lo, acc, g = loss_and_grad(cell, data, theta, backend="fused")
    lr, ar, gr = loss_and_grad(cell, data, theta, backend="reference")
    assert torch.isnan(lo[1]) and torch.isnan(g[1]).all()
    np.testing.assert_allclose(lo[[0, 2]].numpy(), lr[[0, 2]].numpy(), rtol=1e-12)
    np.testing.assert_allclose(g[[0, 2]].numpy(), gr[[0, 2]].numpy(), rtol=1e-9, atol=1e-12)


def test_training_through_the_gpu_engine_equals_the_reference(on_cpu):
    cell = ls.get_cell("gru", hidden=2, layers=2)
    data = ls.make_data("latching", 4, n=8, seed=4).to(torch.float64, "cpu")
    runs = [
        ls.train_ensemble(
            cell,
            [data],
            repeats=1,
            epochs=2,
            batch=4,
            lr=1e-2,
            dtype=torch.float64,
            backend=b,
            progress=False,
        )
        for b in ("fused", "reference")
    ]
    np.testing.assert_allclose(runs[0].theta.numpy(), runs[1].theta.numpy(), rtol=1e-9, atol=1e-11)
    assert runs[0].config["backend"] == "fused"


def test_bad_sizes_are_one_clear_error(on_cpu):
    cell = ls.get_cell("lstm")
    theta = torch.zeros(2, ls.units.n_params(cell, 2, inputs=3))
    with pytest.raises(ls.InputError, match="3 features"):
        gpu_units.run_units(cell, theta, torch.zeros(4, 5), steps=5, hidden=2, inputs=3)
    with pytest.raises(ls.InputError, match="theta must be"):
        gpu_units.run_units(cell, theta, torch.zeros(4, 5, 3), steps=5, hidden=2, inputs=3, layers=2)
    with pytest.raises(ls.InputError, match="exceeds the inputs' 5 steps"):
        gpu_units.run_units(cell, theta, torch.zeros(4, 5, 3), steps=6, hidden=2, inputs=3)
    with pytest.raises(ls.InputError, match="stops"):
        gpu_units.run_units(cell, theta, torch.zeros(4, 5, 3), steps=5, hidden=2, inputs=3, stops=[3, 2])
