"""The fused kernel against independent references: torch.nn modules with copied weights, the
readable reference path, a plain scalar loop for Pascanu's map, and central finite differences."""

import os

import numpy as np
import pytest
import torch

import landscape as ls
from landscape import fused
from landscape.evaluate import evaluate, loss_and_grad, losses

from references import pascanu_grad

if not fused.available():
    if os.environ.get("LANDSCAPE_REQUIRE_FUSED"):
        pytest.fail(f"the fused kernel must build here: {fused.unavailable_reason()}", pytrace=False)
    pytest.skip(f"no fused kernel: {fused.unavailable_reason()}", allow_module_level=True)

GEN = torch.Generator().manual_seed(7)


def random_theta(cell, G, dtype, scale=1.5):
    base = ls.init_params(cell, seed=3)
    return (base + scale * torch.randn(G, len(base), generator=GEN, dtype=torch.float64)).to(dtype)


def task_data(cell, length, n):
    name = cell if isinstance(cell, str) else cell.name
    return ls.make_data("pascanu" if name == "pascanu" else "latching", length, n=n, seed=length)


TOL = {torch.float64: dict(rtol=1e-12, atol=1e-13), torch.float32: dict(rtol=2e-5, atol=2e-6)}


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("length", [1, 7, 23])
def test_loss_matches_torch_nn(name, length, ref):
    """N = 37 and lengths that are not multiples of the 16-lane blocks: partial blocks at every edge."""
    cell = ls.get_cell(name)
    d = task_data(name, length, 37)
    theta = random_theta(cell, 5, torch.float64)
    loss, acc = losses(cell, d, theta, backend="fused")
    for g in range(5):
        want, want_acc = ref.loss(name, theta[g].tolist(), d.x.numpy(), d.y.numpy())
        assert loss[g].item() == pytest.approx(want, rel=1e-12, abs=1e-14)
        assert acc[g].item() == want_acc


def test_pascanu_matches_scalar_loop(ref):
    cell = ls.get_cell("pascanu")
    theta = torch.tensor([[5.0, -2.5], [4.6, -2.612], [5.4, -3.0], [-3.0, 1.0]], dtype=torch.float64)
    for length in (1, 10, 50):
        loss, _ = losses(cell, ls.make_data("pascanu", length), theta, backend="fused")
        for g, (w, b) in enumerate(theta.tolist()):
            assert loss[g].item() == pytest.approx(ref.pascanu(w, b, length), rel=1e-12, abs=1e-15)


def _rel_err(a, truth):
    return ((a.double() - truth).abs() / (truth.abs() + 1e-3)).max().item()


def variant(name):
    """'gru-before' is the GRU of Keras before 2.3; 'lstm2' an LSTM with Keras's two-logit readout."""
    return {"gru-before": ls.get_cell("gru", gru_reset="before"),
            "lstm2": ls.get_cell("lstm", head="softmax2")}.get(name) or ls.get_cell(name)


CELLS = ["rnn", "lstm", "gru", "pascanu", "gru-before", "lstm2"]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_equals_reference_path(name, dtype):
    cell = variant(name)
    for length, n, G in ((1, 5, 3), (19, 33, 21), (50, 200, 4)):
        d = task_data(cell, length, n).to(dtype, "cpu")
        theta = random_theta(cell, G, dtype)
        lr, ar, gr = loss_and_grad(cell, d, theta, backend="reference")
        lf, af, gf = loss_and_grad(cell, d, theta, backend="fused")
        if dtype == torch.float64:
            np.testing.assert_allclose(lf.numpy(), lr.numpy(), **TOL[dtype])
            np.testing.assert_allclose(gf.numpy(), gr.numpy(), **TOL[dtype])
        else:  # in float32 both paths round; the fused one must be as close to float64 as the reference
            l64, _, g64 = loss_and_grad(cell, d.to(torch.float64, "cpu"), theta.double(), backend="reference")
            assert _rel_err(lf, l64) <= 4 * _rel_err(lr, l64) + 1e-5
            assert _rel_err(gf, g64) <= 4 * _rel_err(gr, g64) + 1e-5
        if ar is not None:
            # accuracy counts signs of logits: a logit within rounding of 0 may flip in float32
            assert np.abs(af.numpy() - ar.numpy()).max() <= (0 if dtype == torch.float64 else 2 / n)
        lo, _ = losses(cell, d, theta, backend="fused")
        assert torch.equal(lo, lf)  # the loss does not depend on whether gradients are asked


@pytest.mark.parametrize("name", CELLS)
def test_gradient_matches_finite_differences(name):
    cell = variant(name)
    d = task_data(cell, 12, 9).to(torch.float64, "cpu")
    theta = random_theta(cell, 2, torch.float64, scale=0.7)
    _, _, g = loss_and_grad(cell, d, theta, backend="fused")
    eps = 1e-6
    for j in range(theta.shape[1]):
        e = torch.zeros_like(theta)
        e[:, j] = eps
        up, _ = losses(cell, d, theta + e, backend="fused")
        down, _ = losses(cell, d, theta - e, backend="fused")
        np.testing.assert_allclose(g[:, j].numpy(), ((up - down) / (2 * eps)).numpy(), rtol=1e-6, atol=1e-9)


def test_pascanu_gradient_matches_chain_rule():
    cell = ls.get_cell("pascanu")
    theta = torch.tensor([[5.0, -2.6125], [4.7, -2.3]], dtype=torch.float64)
    _, _, g = loss_and_grad(cell, ls.make_data("pascanu", 50), theta, backend="fused")
    for row, (w, b) in zip(g.tolist(), theta.tolist(), strict=True):
        _, dw, db = pascanu_grad(w, b, 50)
        assert row == pytest.approx([dw, db], rel=1e-9)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_own_inputs_and_lengths_per_model(name, ref):
    """Training's layout: every model its own (N, T) batch, labels and length; states freeze after it."""
    cell = ls.get_cell(name)
    G, N, T = 6, 10, 13
    lengths = torch.tensor([13, 1, 5, 13, 8, 2])
    x = torch.randn(G, N, T, generator=GEN, dtype=torch.float64)
    y = (torch.rand(G, N, generator=GEN) < 0.5).to(torch.float64)
    theta = random_theta(cell, G, torch.float64)
    hT, g = fused.run_fused(cell, theta, x, y=y, lengths=lengths, steps=T, grad=True)
    for m in range(G):
        n = int(lengths[m])
        d = ls.data_from_arrays(x[m].numpy(), y[m].numpy(), n)
        want, _ = ref.loss(name, theta[m].tolist(), d.x.numpy(), d.y.numpy())
        got = torch.nn.functional.binary_cross_entropy_with_logits(theta[m, -2] * hT[m] + theta[m, -1], y[m])
        assert got.item() == pytest.approx(want, rel=1e-12)
        _, _, g_ref = loss_and_grad(cell, d, theta[m : m + 1], backend="reference")
        np.testing.assert_allclose(g[m].numpy(), g_ref[0].numpy(), rtol=1e-11, atol=1e-13)


def test_grid_maps_equal_reference_and_do_not_depend_on_chunks_or_threads():
    cell = ls.get_cell("gru")
    d = ls.make_data("latching", 17, n=50, seed=2)
    plane = ls.random_plane(ls.init_params(cell, seed=1), seed=4, res=(9, 7))
    ref = evaluate(cell, d, plane, dtype=torch.float64, grad=True, backend="reference")
    out = evaluate(cell, d, plane, dtype=torch.float64, grad=True, backend="fused")
    for key in ("loss", "accuracy", "grad_norm", "grad_x", "grad_y"):
        np.testing.assert_allclose(getattr(out, key), getattr(ref, key), rtol=1e-11, atol=1e-13)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        small = evaluate(cell, d, plane, dtype=torch.float64, grad=True, backend="fused", mem=5000)
    finally:
        torch.set_num_threads(threads)
    for key in ("loss", "grad_norm", "grad_x", "grad_y"):
        np.testing.assert_array_equal(getattr(small, key), getattr(out, key))


def test_non_finite_values_stay_non_finite():
    """Saturated gates and overflowing exponentials: NaN and Inf mean the same as on the reference path."""
    cell = ls.get_cell("lstm")
    d = ls.make_data("latching", 6, n=20, seed=0)
    theta = random_theta(cell, 4, torch.float64)
    theta[0] *= 1e5
    theta[1, -2] = float("inf")
    theta[2, 0] = float("nan")
    theta[3, 5] = -1e300
    lr, _ = losses(cell, d, theta, backend="reference")
    lf, _ = losses(cell, d, theta, backend="fused")
    np.testing.assert_allclose(lf.numpy(), lr.numpy(), rtol=1e-12, equal_nan=True)


def test_backend_choice():
    assert fused.resolve_backend("auto", work=1e3) == "reference"
    assert fused.resolve_backend("auto", work=1e12) == "fused"
    assert fused.resolve_backend("reference", work=1e12) == "reference"
    with pytest.raises(ls.InputError, match="valid backends: auto, reference, fused"):
        fused.resolve_backend("fast")
    with pytest.raises(ls.InputError, match="runs on the CPU"):
        fused.resolve_backend("fused", device="meta")


def test_slice_command_with_fused_backend(tmp_path, capsys):
    from landscape.slice import main

    common = ["--cell", "lstm", "--len", "9", "--res", "6,5", "--samples", "30", "--grad", "--quiet",
              "--format", "png", "--out", str(tmp_path)]
    assert main([*common, "--backend", "fused", "--name", "f"]) == 0
    assert main([*common, "--backend", "reference", "--name", "r"]) == 0
    with np.load(tmp_path / "f.npz") as f, np.load(tmp_path / "r.npz") as r:
        for key in ("loss", "grad_norm", "grad_x", "grad_y"):
            np.testing.assert_allclose(f[key], r[key], rtol=2e-5, atol=2e-6)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([*common, "--backend", "quick"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quick" in err[0] and "fused" in err[0]


def test_bad_arguments_are_refused_before_the_kernel():
    """The C entry point trusts its arguments; run_fused checks every shape and index first."""
    cell = ls.get_cell("lstm")
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    good = random_theta(cell, 3, torch.float64)
    for kwargs, needle in ((dict(theta=torch.randn(3, 40, dtype=torch.float64)), "theta"),
                           (dict(theta=good[:, :5]), "theta"),
                           (dict(lengths=torch.tensor([3])), "lengths"),
                           (dict(rows=torch.tensor([[0, 9]] * 3)), "rows"),
                           (dict(y=torch.zeros(2, dtype=torch.float64)), "y"),
                           (dict(x=torch.randn(5, dtype=torch.float64)), "x"),
                           (dict(steps=-3), "steps")):
        args = dict(theta=good, x=x, y=y, steps=5, grad=True) | kwargs
        theta = args.pop("theta")
        with pytest.raises(ls.InputError, match=needle):
            fused.run_fused(cell, theta, args.pop("x"), **args)


def test_gradient_maps_of_a_grid_larger_than_a_block():
    """A chunk of many grid points on the fused path (regression: only its first 64 were kept)."""
    cell = ls.get_cell("rnn")
    d = ls.make_data("latching", 6, n=20, seed=0)
    plane = ls.axis_plane(cell, ls.init_params(cell), res=(13, 11))  # 143 points in one chunk
    ref = evaluate(cell, d, plane, dtype=torch.float64, grad=True, backend="reference")
    out = evaluate(cell, d, plane, dtype=torch.float64, grad=True, backend="fused")
    for key in ("loss", "accuracy", "grad_norm", "grad_x", "grad_y"):
        np.testing.assert_allclose(getattr(out, key), getattr(ref, key), rtol=1e-11, atol=1e-13)
