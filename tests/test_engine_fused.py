"""The fused kernel against independent references: torch.nn modules with copied weights, the
readable reference path, a plain scalar loop for Pascanu's map, and central finite differences."""

import os
import sys

import numpy as np
import pytest
import torch

import landscape as ls
from landscape import units
from landscape.backends import loss_and_grad, losses, resolve_backend
from landscape.cells import classification_loss
from landscape.engine import fused
from landscape.evaluate import evaluate, grid_work
from landscape.train import train_ensemble
from landscape.units import forward_logits, init_theta, n_params

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
    """'gru-before' is the GRU of Keras before 2.3; 'lstm2' an LSTM with Keras's two-logit readout;
    '-hard' Keras 2's hard_sigmoid gates."""
    return {
        "gru-before": ls.get_cell("gru", gru_reset="before"),
        "lstm2": ls.get_cell("lstm", head="softmax2"),
        "lstm-hard": ls.get_cell("lstm", gate="hard_sigmoid"),
        "gru-before-hard": ls.get_cell("gru", gru_reset="before", gate="hard_sigmoid"),
    }.get(name) or ls.get_cell(name)


CELLS = ["rnn", "lstm", "gru", "pascanu", "gru-before", "lstm2", "lstm-hard", "gru-before-hard"]


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
    assert resolve_backend("auto", work=1e3) == "reference"
    assert resolve_backend("auto", work=1e12) == "fused"
    assert resolve_backend("reference", work=1e12) == "reference"
    with pytest.raises(ls.InputError, match="valid backends: auto, reference, fused"):
        resolve_backend("fast")
    with pytest.raises(ls.InputError, match="runs on the CPU"):
        resolve_backend("fused", device="meta")


def test_auto_decides_once_for_the_whole_sweep(monkeypatch):
    """A sweep whose lengths each fall below the threshold but together reach it runs every length
    on the kernel, as its tiles would: the same bits as forcing 'fused'."""
    cell = ls.get_cell("gru")
    datas = [ls.make_data("latching", n, n=30, seed=1) for n in (4, 12)]
    plane = ls.axis_plane(cell, ls.init_params(cell), res=(6, 5))
    work = grid_work([plane] * 2, datas, False)
    monkeypatch.setattr(sys.modules["landscape.backends"], "COMPILE_WORTH", work)  # no length reaches it
    assert resolve_backend("auto", work=grid_work([plane], datas[1:], False)) == "reference"
    surface_module, seen = sys.modules["landscape.surface"], []
    evaluate_one = surface_module._evaluate

    def spy(*args, **kwargs):
        seen.append(kwargs["backend"])
        return evaluate_one(*args, **kwargs)

    monkeypatch.setattr(surface_module, "_evaluate", spy)
    run = {
        b: ls.compute_surface(cell, plane, datas, backend=b, progress=False).loss for b in ("auto", "fused")
    }
    assert seen == ["fused"] * 4  # both lengths, under 'auto' as under 'fused'
    assert np.array_equal(run["auto"], run["fused"])


def test_slice_command_with_fused_backend(tmp_path, capsys):
    from landscape.slice import main

    common = [
        "--cell",
        "lstm",
        "--len",
        "9",
        "--res",
        "6,5",
        "--samples",
        "30",
        "--grad",
        "--quiet",
        "--format",
        "png",
        "--out",
        str(tmp_path),
    ]
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
    for kwargs, needle in (
        (dict(theta=torch.randn(3, 40, dtype=torch.float64)), "theta"),
        (dict(theta=good[:, :5]), "theta"),
        (dict(lengths=torch.tensor([3])), "lengths"),
        (dict(rows=torch.tensor([[0, 9]] * 3)), "rows"),
        (dict(y=torch.zeros(2, dtype=torch.float64)), "y"),
        (dict(x=torch.randn(5, dtype=torch.float64)), "x"),
        (dict(steps=-3), "steps"),
    ):
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


# ---- models of H > 1 units (_fused_units.h) against landscape.units and autograd ----------------

# every cell, both GRU resets and both readouts ("2": Keras's two-logit softmax head)
UNIT_CELLS = ["rnn", "lstm", "gru", "gru-before", "rnn2", "lstm2", "gru-before2"]


def unit_cell(name):
    head = "softmax2" if name.endswith("2") else "logit"
    base = name.rstrip("2")
    if base == "gru-before":
        return ls.get_cell("gru", gru_reset="before", head=head)
    return ls.get_cell(base, head=head)


def unit_problem(cell, H, dtype, G=5, N=21, T=19, R=40):
    """Training's layout: a table X (R, T) and Y (R,), each model reading its own rows (G, N) and
    length; N = 21 is no multiple of a block, lengths 1, 7 and 19 no multiple of anything."""
    theta = torch.stack([init_theta(cell, H, seed=s) for s in range(G)])
    theta = (theta + 0.5 * torch.randn(theta.shape, generator=GEN, dtype=torch.float64)).to(dtype)
    X = torch.randn(R, T, generator=GEN, dtype=torch.float64).to(dtype)
    Y = (torch.rand(R, generator=GEN) < 0.5).to(dtype)
    rows = torch.randint(0, R, (G, N), generator=GEN)
    lengths = torch.tensor([19, 1, 7, 19, 12, 3, 7, 1][:G]).clamp(max=T)
    return theta, X, Y, rows, lengths


def unit_reference(cell, H, theta, X, Y, rows, lengths):
    """Loss, accuracy and gradient on the reference path (landscape.units) by autograd."""
    with torch.enable_grad():
        th = theta.detach().clone().requires_grad_(True)
        logits = forward_logits(cell, th, X[rows], lengths, H)
        loss, acc = classification_loss(logits, Y[rows], clip=cell.clip)
        (g,) = torch.autograd.grad(loss.sum(), th)
    return loss.detach(), acc, g


def unit_fused(cell, H, theta, X, Y, rows, lengths, grad=True):
    hT, g = fused.run_fused(
        cell, theta, X, y=Y, rows=rows, lengths=lengths, steps=X.shape[1], grad=grad, hidden=H
    )
    assert hT.shape == (*rows.shape, H)
    loss, acc = units.readout_loss(cell, theta, hT, Y[rows])
    return loss, acc, g


@pytest.mark.parametrize(
    "name,H", [(n, H) for n in UNIT_CELLS for H in (2, 3, 5)] + [("lstm", 16), ("gru-before2", 16)]
)  # one larger size for two cells
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_units_equal_reference_path_and_autograd(name, H, dtype):
    cell = unit_cell(name)
    problem = unit_problem(cell, H, dtype)
    lf, af, gf = unit_fused(cell, H, *problem)
    lr, ar, gr = unit_reference(cell, H, *problem)
    if dtype == torch.float64:
        np.testing.assert_allclose(lf.numpy(), lr.numpy(), **TOL[dtype])
        np.testing.assert_allclose(gf.numpy(), gr.numpy(), rtol=1e-10, atol=1e-13)
        assert torch.equal(af, ar)
    else:  # in float32 both paths round; the fused one must be as close to float64 as the reference
        l64, _, g64 = unit_reference(cell, H, *(t.double() if t.is_floating_point() else t for t in problem))
        assert _rel_err(lf, l64) <= 4 * _rel_err(lr, l64) + 1e-5
        assert _rel_err(gf, g64) <= 4 * _rel_err(gr, g64) + 1e-5
    lo, _, none = unit_fused(cell, H, *problem, grad=False)
    assert none is None and torch.equal(lo, lf)  # the loss does not depend on whether gradients are asked


@pytest.mark.parametrize("name", UNIT_CELLS)
def test_units_gradient_matches_finite_differences(name):
    cell, H = unit_cell(name), 3
    theta, X, Y, rows, lengths = unit_problem(cell, H, torch.float64, G=2, N=5, T=7)
    _, _, g = unit_fused(cell, H, theta, X, Y, rows, lengths)
    eps = 1e-6
    for j in range(theta.shape[1]):
        e = torch.zeros_like(theta)
        e[:, j] = eps
        up, _, _ = unit_fused(cell, H, theta + e, X, Y, rows, lengths, grad=False)
        down, _, _ = unit_fused(cell, H, theta - e, X, Y, rows, lengths, grad=False)
        np.testing.assert_allclose(g[:, j].numpy(), ((up - down) / (2 * eps)).numpy(), rtol=1e-6, atol=1e-9)


def test_units_shared_and_own_inputs():
    """x (N, T) shared by every model and (G, N, T) each model's own give what rows give."""
    cell, H = ls.get_cell("gru"), 4
    theta, X, Y, rows, lengths = unit_problem(cell, H, torch.float64, G=3, N=9, T=11)
    want = unit_fused(cell, H, theta, X, Y, rows, lengths)
    own = fused.run_fused(cell, theta, X[rows], y=Y[rows], lengths=lengths, steps=11, grad=True, hidden=H)
    shared = fused.run_fused(cell, theta, X[:9], y=Y[:9], lengths=lengths, steps=11, grad=True, hidden=H)
    assert torch.equal(units.readout_loss(cell, theta, own[0], Y[rows])[0], want[0])
    assert torch.equal(own[1], want[2])
    first = unit_fused(cell, H, theta, X, Y, torch.arange(9).expand(3, 9), lengths)
    assert torch.equal(shared[1], first[2])


def test_units_do_not_depend_on_threads_or_chunks():
    """Each model's gradient is summed in sample order by one thread: bit for bit the same."""
    cell, H = ls.get_cell("lstm"), 6
    theta, X, Y, rows, lengths = unit_problem(cell, H, torch.float64, G=8, N=37, T=19)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = unit_fused(cell, H, theta, X, Y, rows, lengths)
        torch.set_num_threads(max(2, threads))
        many = unit_fused(cell, H, theta, X, Y, rows, lengths)
    finally:
        torch.set_num_threads(threads)
    parts = [unit_fused(cell, H, theta[a:b], X, Y, rows[a:b], lengths[a:b]) for a, b in ((0, 3), (3, 8))]
    for k in (0, 2):
        assert torch.equal(one[k], many[k])
        assert torch.equal(one[k], torch.cat([p[k] for p in parts]))


def test_units_non_finite_values_stay_non_finite():
    cell, H = ls.get_cell("lstm"), 3
    theta, X, Y, rows, lengths = unit_problem(cell, H, torch.float64, G=4, N=6, T=8)
    theta[0] *= 1e5
    theta[1, -2] = float("inf")
    theta[2, 0] = float("nan")
    theta[3, 20] = -1e300
    lf, _, _ = unit_fused(cell, H, theta, X, Y, rows, lengths, grad=False)
    lr, _, _ = unit_reference(cell, H, theta, X, Y, rows, lengths)
    np.testing.assert_allclose(lf.numpy(), lr.numpy(), rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    "name,init", [("rnn", "torch"), ("lstm2", "torch"), ("gru", "torch"), ("gru-before", "keras")]
)
def test_units_training_equals_reference_training(name, init):
    cell, H = unit_cell(name), 3
    datas = [ls.make_data("latching", n, n=40, seed=10 + k) for k, n in enumerate([7, 3, 1])]
    runs = {
        b: train_ensemble(
            cell,
            datas,
            repeats=2,
            seed=3,
            epochs=2,
            batch=8,
            lr=0.05,
            hidden=H,
            init=init,
            dtype=torch.float64,
            backend=b,
            progress=False,
        )
        for b in ("fused", "reference")
    }
    assert runs["fused"].config["backend"] == "fused"
    np.testing.assert_allclose(
        runs["fused"].theta.numpy(), runs["reference"].theta.numpy(), rtol=1e-9, atol=1e-11
    )
    np.testing.assert_allclose(runs["fused"].val_loss, runs["reference"].val_loss, rtol=1e-10)


def test_units_bad_arguments():
    cell = ls.get_cell("gru")
    x, y = torch.randn(4, 5, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ls.InputError, match="theta"):
        fused.run_fused(cell, torch.zeros(2, n_params(cell, 3)), x, y=y, steps=5, hidden=2)
    with pytest.raises(ls.InputError, match="units"):
        fused.run_fused(cell, torch.zeros(2, n_params(cell, 3)), x, y=y, steps=5, hidden=65)
    with pytest.raises(ls.InputError, match="cannot be trained"):
        fused.run_fused(ls.get_cell("pascanu"), torch.zeros(2, 2), None, steps=5, hidden=2)
