"""The GPU engine (Triton kernels, ``landscape.engine.gpu``), run on CPU tensors under Triton's
interpreter through the tests' switch: every cell variant against the reference path (float64
tight, float32 as close to float64 as the reference path is), gradients (backpropagation through
time by segments) against autograd on the reference path, against forward-mode tangents and
against central finite differences, every input layout (shared, per-model,
indexed rows, per-model lengths), ragged launch shapes, NaN-padded inputs and NaN-filled outputs,
hostile values; the whole pipeline (grids, gradient maps, training) through ``backend='fused'``;
and an ahead-of-time compile of every kernel variant for sm_90 without register spills in loops."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.backends import loss_and_grad, losses
from landscape.engine import gpu
from landscape.engine.door import one_logit
from landscape.units import model_losses, readout_loss

from references import padded

if importlib.util.find_spec("triton") is None:
    if os.environ.get("LANDSCAPE_REQUIRE_TRITON"):
        pytest.fail("triton must be installed here (the gpu extra)", pytrace=False)
    pytest.skip("triton is not installed (the gpu extra)", allow_module_level=True)
if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("these tests interpret the kernels on CPU tensors", allow_module_level=True)

pytestmark = pytest.mark.slow  # interpreted kernels: about a minute on 2 cores

VARIANTS = {
    "rnn": {},
    "lstm": {},
    "gru": {},
    "gru-before": {"gru_reset": "before"},
    "lstm-hard": {"gate": "hard_sigmoid"},
    "gru-before-hard-softmax2": {"gru_reset": "before", "gate": "hard_sigmoid", "head": "softmax2"},
    "lstm-softmax2": {"head": "softmax2"},
    "pascanu": {},
}


def cell_of(name: str) -> ls.Cell:
    return ls.get_cell(name.split("-")[0], **VARIANTS[name])


def data_for(cell, length, n, dtype):
    task = "pascanu" if cell.name == "pascanu" else "latching"
    return ls.make_data(task, length, n=n, noise=0.2, seed=length).to(dtype, "cpu")


def thetas(cell, G, dtype, scale=1.5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    base = ls.init_params(cell, seed=3)
    return (base + scale * torch.randn(G, len(base), generator=gen, dtype=torch.float64)).to(dtype)


def rel_err(a, truth):
    return ((a.double() - truth).abs() / (truth.abs() + 1e-3)).max().item()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_equals_the_reference_path(name, dtype, on_cpu):
    cell = cell_of(name)
    for length, n, G in ((1, 5, 3), (13, 21, 6)):
        d = data_for(cell, length, n, dtype)
        theta = thetas(cell, G, dtype)
        lr, ar, gr = loss_and_grad(cell, d, theta, backend="reference")
        lf, af, gf = loss_and_grad(cell, d, theta, backend="fused")
        assert not torch.isnan(lf).any() and not torch.isnan(gf).any()  # every entry written
        if dtype == torch.float64:
            np.testing.assert_allclose(lf.numpy(), lr.numpy(), rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(gf.numpy(), gr.numpy(), rtol=1e-10, atol=1e-13)
        else:  # both paths round: the GPU engine must be as close to float64 as the reference path
            l64, _, g64 = loss_and_grad(cell, d.to(torch.float64, "cpu"), theta.double(), backend="reference")
            assert rel_err(lf, l64) <= 4 * rel_err(lr, l64) + 1e-5
            # its float32 gradients: 0.4e-5 to 6.6e-5 relative at T = 13, where the reference path's
            # are 0.15e-5 to 2.5e-5: up to 6 times as far (Keras's GRU with hard sigmoid gates and
            # clipped probabilities), 3.2 for the others; each lane's sums over the steps and the
            # block's over the samples add in another order than torch's reductions
            assert rel_err(gf, g64) <= 8 * rel_err(gr, g64) + 1e-5
        if ar is None:
            assert af is None
        else:
            assert np.abs(af.numpy() - ar.numpy()).max() <= (0 if dtype == torch.float64 else 2 / n)
        lo, _ = losses(cell, d, theta, backend="fused")
        assert torch.equal(lo, lf)  # the loss does not depend on whether gradients are asked


@pytest.mark.parametrize("name", ["rnn", "lstm-hard", "gru-before", "pascanu"])
def test_gradients_match_finite_differences(name, on_cpu):
    cell = cell_of(name)
    d = data_for(cell, 9, 7, torch.float64)
    theta = thetas(cell, 2, torch.float64, scale=0.7, seed=1)
    _, _, g = loss_and_grad(cell, d, theta, backend="fused")
    eps = 1e-6
    for j in range(theta.shape[1]):
        e = torch.zeros_like(theta)
        e[:, j] = eps
        up, _ = losses(cell, d, theta + e, backend="fused")
        down, _ = losses(cell, d, theta - e, backend="fused")
        np.testing.assert_allclose(g[:, j].numpy(), ((up - down) / (2 * eps)).numpy(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("block", [(2, 4), (4, 8), None])
@pytest.mark.parametrize("name", ["lstm", "gru-before-hard-softmax2"])
def test_layouts_and_ragged_launch_shapes(name, block, on_cpu):
    """Shared inputs, each model's own, indexed rows with per-model lengths, at launch shapes that
    leave partial blocks of models and samples; inputs inside NaN padding, outputs NaN-filled."""
    cell, dtype = cell_of(name), torch.float64
    G, N, T = 5, 11, 9
    gen = torch.Generator().manual_seed(2)
    theta = thetas(cell, G, dtype)
    one = one_logit(cell, theta)
    X = torch.randn(G, N, T, generator=gen, dtype=dtype)
    Y = (torch.rand(G, N, generator=gen) < 0.5).to(dtype)
    eye = torch.eye(one.shape[1], dtype=dtype)
    # each model's own inputs, against the reference path model by model
    loss, acc, d = gpu.run_triton(cell, one, padded(X), padded(Y), steps=T, directions=eye, block=block)
    for g in range(G):
        data = ls.data_from_arrays(X[g].numpy(), Y[g].numpy(), T)
        lr, ar = model_losses(cell, theta[g : g + 1], data)
        assert loss[g].item() == pytest.approx(lr.item(), rel=1e-12, abs=1e-14)
        assert acc[g].item() == ar.item()
    assert not torch.isnan(d).any()
    # the gradient by backpropagation through time (segments of 3 steps here) and by tangents:
    # two independent derivations of the same numbers
    lb, ab, gb = gpu.run_triton(cell, one, padded(X), padded(Y), steps=T, grad=True, block=block)
    np.testing.assert_allclose(gb.numpy(), d.numpy(), rtol=1e-10, atol=1e-13)
    assert torch.equal(lb, loss) and torch.equal(ab, acc)
    # rows of a table and each model's own length (training's layout)
    R = 17
    table, labels = (
        torch.randn(R, T, generator=gen, dtype=dtype),
        (torch.rand(R, generator=gen) < 0.5).to(dtype),
    )
    rows = torch.randint(0, R, (G, N), generator=gen)
    lengths = torch.tensor([1, 9, 4, 0, 6])
    args = dict(steps=T, rows=padded(rows), lengths=lengths, block=block)
    loss, acc, d = gpu.run_triton(cell, one, padded(table), padded(labels), directions=eye, **args)
    _, _, gb = gpu.run_triton(cell, one, padded(table), padded(labels), grad=True, **args)
    np.testing.assert_allclose(gb.numpy(), d.numpy(), rtol=1e-10, atol=1e-13)
    for g in range(G):
        n = int(lengths[g])
        x = table[rows[g], :n]
        if n == 0:  # no step: the state is its initial zero, read out as the reference path reads it
            lr, ar = readout_loss(cell, theta[g : g + 1], torch.zeros(1, N, dtype=dtype), labels[rows[g]])
            assert loss[g].item() == pytest.approx(lr.item(), rel=1e-12) and acc[g].item() == ar.item()
            continue
        data = ls.data_from_arrays(x.numpy(), labels[rows[g]].numpy(), n)
        lr, ar = model_losses(cell, theta[g : g + 1], data)
        assert loss[g].item() == pytest.approx(lr.item(), rel=1e-12, abs=1e-14), g
        assert acc[g].item() == ar.item()


@pytest.mark.parametrize("name", ["lstm", "gru-before-hard-softmax2", "pascanu"])
def test_a_sweep_of_lengths_from_one_pass(name, on_cpu):
    """The loss and accuracy after each of several steps from one pass, in blocks of samples that
    each add to the sums (N = 11 in blocks of 4): each length's own pass on the reference path."""
    from landscape.backends import prefix_losses

    cell = cell_of(name)
    task = "pascanu" if cell.name == "pascanu" else "latching"
    d = data_for(cell, 9, 11, torch.float64)
    theta = thetas(cell, 3, torch.float64)
    stops = [1, 4, 9]
    one = one_logit(cell, theta)
    loss, acc, _ = gpu.run_triton(
        cell, one, d.x, d.y, steps=9, objective=d.objective, stops=stops, block=(2, 4)
    )
    swept = prefix_losses(cell, d, theta, stops, "fused")
    for k, n in enumerate(stops):
        short = (
            d
            if n == 9
            else (
                ls.make_data(task, n)
                if task == "pascanu"
                else ls.data_from_arrays(d.x[:, :n].numpy(), d.y.numpy(), n)
            )
        )
        lr, ar = losses(cell, short.to(torch.float64, "cpu"), theta, backend="reference")
        np.testing.assert_allclose(loss[:, k].numpy(), lr.numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(swept[k][0].numpy(), lr.numpy(), rtol=1e-12, atol=1e-15)
        if ar is not None:
            assert torch.equal(acc[:, k], ar) and torch.equal(swept[k][1], ar)
    with pytest.raises(ls.InputError, match="must end at the 9 steps"):
        gpu.run_triton(cell, one, d.x, d.y, steps=9, objective=d.objective, stops=[1, 4])


def test_hostile_values_stay_in_their_own_model(on_cpu):
    """A NaN parameter spoils its model's loss only; huge weights and infinite inputs give what the
    reference path gives (0, inf or NaN where it does)."""
    cell = ls.get_cell("lstm")
    d = data_for(cell, 6, 9, torch.float64)
    theta = thetas(cell, 4, torch.float64)
    theta[1, 3] = float("nan")
    theta[2] *= 1e30
    theta[3, -2] = float("inf")
    with np.errstate(all="ignore"):
        lf, af = losses(cell, d, theta, backend="fused")
    lr, ar = losses(cell, d, theta, backend="reference")
    assert torch.isnan(lf[1]) and torch.isnan(af[1])
    np.testing.assert_allclose(lf[[0, 2, 3]].numpy(), lr[[0, 2, 3]].numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(af[[0, 2]].numpy(), ar[[0, 2]].numpy())


def test_the_pipeline_runs_through_the_gpu_engine(on_cpu, monkeypatch):
    """A sweep with gradient maps and a training run, backend='fused', on the GPU engine's code:
    the same numbers as the reference path; and the engine is what ran."""
    calls = []
    real = gpu.run_triton

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gpu, "run_triton", counted)
    cell = ls.get_cell("gru")
    datas = [data_for(cell, n, 8, torch.float64) for n in (3, 7)]
    plane = ls.axis_plane(cell, ls.init_params(cell), xrange=(-2, 2), yrange=(-1, 1), res=(5, 4))
    kw = dict(grad=True, dtype=torch.float64, progress=False)
    fused = ls.compute_surface(cell, plane, datas, backend="fused", **kw)
    assert calls
    ref = ls.compute_surface(cell, plane, datas, backend="reference", **kw)
    np.testing.assert_allclose(fused.loss, ref.loss, rtol=1e-12)
    np.testing.assert_allclose(fused.grads.norm, ref.grads.norm, rtol=1e-9, atol=1e-12)
    runs = [
        ls.train_ensemble(
            cell,
            datas[:1],
            repeats=2,
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


def test_what_the_gpu_engine_does_not_run_is_refused_or_left_to_the_reference(on_cpu):
    cell = ls.get_cell("lstm", head="softmax", classes=3)
    theta = torch.zeros(2, cell.n_params, dtype=torch.float64)
    with pytest.raises(ls.InputError, match="softmax readout: the GPU engine reduces one logit"):
        gpu.run_triton(cell, theta, torch.zeros(4, 6), torch.zeros(4), steps=6)
    assert "up to 64 units" in gpu.refuses(ls.get_cell("lstm", hidden=65))


@pytest.mark.slow
def test_every_kernel_variant_compiles_for_sm90_without_spills_in_loops():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    out = subprocess.run(
        [sys.executable, "-m", "landscape.engine.gpu_aot", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows and len(rows) == len(__import__("landscape.engine.gpu_aot").engine.gpu_aot.VARIANTS), (
        out.stderr
    )
    bad = [r for r in rows if r.get("error") or r["loop_spills"]]
    assert out.returncode == 0 and not bad, bad
    assert {r["pass_"] for r in rows if "units" in r} == {"forward", "record", "backward"}
    assert max(r["units"] for r in rows if "units" in r) == gpu.MAX_UNITS


def test_spills_are_found_inside_loops_only():
    from landscape.engine.gpu_aot import loop_spills

    sass = """
        /*0010*/                   STL [R1], R0 ;
        /*0020*/                   FADD R2, R2, R3 ;
        /*0030*/                   LDL R4, [R1+0x4] ;
        /*0040*/              @P0 BRA 0x20 ;
        /*0050*/                   LDL.LU R4, [R1] ;
        /*0060*/                   BRA 0x60;
    """
    assert loop_spills(sass) == 1  # the load at 0x30 is in the loop 0x20..0x40; the others are not
    assert loop_spills(sass.replace("0x20 ;", "0x10 ;")) == 2


def test_the_commands_run_through_the_gpu_engine(on_cpu, tmp_path, capsys, monkeypatch):
    """landscape.slice (a sweep with gradient maps) and landscape.latching (training) with
    --backend fused on the GPU engine's code: the same arrays as the reference path, and the
    engine is what ran."""
    from landscape import latching
    from landscape import slice as cli

    from harness import run_cli

    calls = []
    real = gpu.run_triton
    monkeypatch.setattr(gpu, "run_triton", lambda *a, **k: calls.append(1) or real(*a, **k))
    common = [
        "--cell",
        "lstm",
        "--len",
        "3,6",
        "--res",
        "4",
        "--samples",
        "12",
        "--grad",
        "--dtype",
        "float64",
    ]
    common += ["--quiet", "--format", "png"]
    for b in ("fused", "reference"):
        code, _, err = run_cli(cli.main, [*common, "--backend", b, "--out", str(tmp_path / b)], capsys)
        assert code == 0, err
    assert calls
    (f,) = (tmp_path / "fused").glob("*.npz")
    with np.load(f) as a, np.load(tmp_path / "reference" / f.name) as r:
        for key in ("loss", "accuracy", "grad_norm", "grad_x", "grad_y"):
            np.testing.assert_allclose(a[key], r[key], rtol=1e-9, atol=1e-12, err_msg=key)
    calls.clear()
    argv = ["--cells", "gru", "--tasks", "latching", "--lengths", "3", "--samples", "20", "--repeats", "2"]
    argv += [
        "--epochs",
        "1",
        "--dtype",
        "float64",
        "--quiet",
        "--backend",
        "fused",
        "--out",
        str(tmp_path / "l"),
    ]
    code, _, err = run_cli(latching.main, argv, capsys)
    assert code == 0 and calls, err
