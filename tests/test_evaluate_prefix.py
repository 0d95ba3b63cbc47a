"""Every length of a sweep from one pass: where each length's data are the first steps of the same
sequences (a user's file), the states after each length are kept along one pass. Each length's
numbers equal those of its own pass, bit for bit (on the reference path, to rounding for models of
several inputs), on both engines and in tiles; torch.nn with
copied weights agrees; the kernel refuses stops it cannot keep."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from landscape import slice as cli
from landscape.cells import get_cell
from landscape.engine.fused import run_fused
from landscape.evaluate import _evaluate, _evaluate_prefixes, prefix_sweep
from landscape.planes import random_plane
from landscape.tasks import _from_arrays, make_data
from landscape.units import modules

from harness import run_cli

SIZES = [
    ("rnn", {}),
    ("lstm", {}),
    ("gru", {}),
    ("gru", dict(gru_reset="before")),
    ("pascanu", {}),
    ("lstm", dict(hidden=4, inputs=3, layers=2)),
    ("gru", dict(hidden=3)),
    ("rnn", dict(head="softmax", classes=3)),
    ("lstm", dict(head="softmax2")),
]


def _data(cell, lengths, n=20, t=24, seed=0):
    rng = np.random.default_rng(seed)
    if cell.name == "pascanu":
        return [make_data("pascanu", L) for L in lengths]
    x = rng.normal(size=(n, t, cell.inputs)) if cell.inputs > 1 else rng.normal(size=(n, t))
    y = rng.integers(0, cell.n_out if cell.head == "softmax" else 2, size=n).astype(np.float64)
    return [_from_arrays(x, y, L, cell.objective) for L in lengths]


@pytest.mark.parametrize("name,kw", SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_each_length_is_the_bits_of_its_own_pass(name, kw, dtype):
    cell = get_cell(name, **kw)
    lengths = [13, 4, 24]  # in any order
    datas = [d.to(dtype, "cpu") for d in _data(cell, lengths)]
    center = torch.randn(cell.n_params, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    plane = random_plane(center, seed=1, res=(7, 5))
    assert prefix_sweep([plane] * 3, datas)
    backends = ["reference"] + (["fused"] if cell.head != "softmax" else [])
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == torch.float32 else dict(rtol=1e-14, atol=1e-15)
    for backend in backends:
        alone = [
            _evaluate(cell, d, plane, dtype=dtype, device="cpu", mem=1 << 30, grad=False, backend=backend)
            for d in datas
        ]
        one = _evaluate_prefixes(
            cell, datas[2], plane, lengths, dtype=dtype, device="cpu", mem=1 << 30, backend=backend
        )
        # chunks of a few points (the kept states make the chunks smaller than a length's own
        # pass: a value may differ in its last bits, as between any two chunkings)
        few = _evaluate_prefixes(
            cell, datas[2], plane, lengths, dtype=dtype, device="cpu", mem=4096, backend=backend
        )
        # the reference path makes the input terms of I > 1 features as one matrix product over
        # all the steps it reads: over more steps, a value may round in another last bit
        exact = backend == "fused" or cell.inputs == 1
        for a, b, c in zip(alone, one, few, strict=True):
            if exact:
                np.testing.assert_array_equal(a.loss, b.loss)
            np.testing.assert_allclose(b.loss, a.loss, **tol)
            np.testing.assert_allclose(c.loss, a.loss, **tol)
            if a.accuracy is not None and exact:
                np.testing.assert_array_equal(a.accuracy, b.accuracy)


@pytest.mark.parametrize("name,hidden,inputs,layers", [("lstm", 3, 2, 2), ("gru", 4, 1, 1), ("rnn", 1, 1, 1)])
def test_the_states_kept_along_the_way_are_torch_nn_s(name, hidden, inputs, layers):
    cell = get_cell(name, hidden=hidden, inputs=inputs, layers=layers)
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.normal(size=(6, 15, inputs)))
    theta = torch.from_numpy(rng.normal(scale=0.6, size=(2, cell.n_params)))
    stops = [1, 6, 15]
    hs, _ = run_fused(
        cell,
        theta,
        x if inputs > 1 else x[..., 0],
        steps=15,
        stops=stops,
        hidden=hidden,
        inputs=inputs,
        layers=layers,
    )
    for g in range(2):
        rnn, head = modules(cell, hidden, inputs=inputs, layers=layers)
        rnn, head = rnn.double(), head.double()
        torch.nn.utils.vector_to_parameters(theta[g], [*rnn.parameters(), *head.parameters()])
        with torch.no_grad():
            out, _ = rnn(x)  # (N, T, H): the top layer after every step
        for k, s in enumerate(stops):
            got = hs[g, k] if hidden > 1 or inputs > 1 or layers > 1 else hs[g, k][:, None]
            np.testing.assert_allclose(got.numpy(), out[:, s - 1].numpy(), rtol=1e-12, atol=1e-13)


def test_sweeps_it_does_not_serve():
    cell = get_cell("lstm")
    plane = random_plane(torch.zeros(cell.n_params, dtype=torch.float64) + 0.1, seed=1, res=(3, 3))
    other = random_plane(torch.zeros(cell.n_params, dtype=torch.float64) + 0.2, seed=1, res=(3, 3))
    own = _data(cell, [5, 9])
    assert prefix_sweep([plane, plane], own)
    assert not prefix_sweep([plane, other], own)  # a plane per length (trained centres)
    assert not prefix_sweep([plane], own[:1])
    generated = [make_data("latching", L, n=30, seed=0) for L in (5, 9)]  # new sequences at every length
    assert not prefix_sweep([plane, plane], generated)


def test_the_kernel_refuses_stops_it_cannot_keep():
    cell = get_cell("rnn")
    theta, x = torch.zeros(2, cell.n_params), torch.zeros(3, 8)
    for stops, kw in (([3, 2], {}), ([0, 8], {}), ([2, 5], {}), ([2, 8], dict(grad=True, y=torch.zeros(3)))):
        with pytest.raises(Exception, match="stops"):
            run_fused(cell, theta, x, steps=8, stops=stops, **kw)


def _npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in ("loss", "accuracy")}


@pytest.mark.slow
def test_a_sweep_of_a_users_file_is_each_lengths_run(tmp_path, capsys, own_data, monkeypatch):
    """The command's sweep over a file equals a run of each length alone, and tiles (resumed
    after a loss of some) equal both; the sweep makes no pass of its own per length."""
    path, _, _ = own_data
    base = [
        "--quiet",
        "--format",
        "png",
        "--data",
        str(path),
        "--res",
        "9,6",
        "--cell",
        "gru",
        "--backend",
        "fused",
        "--out",
        str(tmp_path),
    ]
    alone = []
    for L in (3, 7, 12):
        assert run_cli(cli.main, [*base, "--len", str(L), "--name", f"l{L}"], capsys)[0] == 0
        alone.append(_npz(tmp_path / f"l{L}.npz"))

    def no_pass_per_length(*args, **kwargs):
        raise AssertionError("a pass of its own for one length")

    monkeypatch.setattr("landscape.surface._evaluate", no_pass_per_length)
    monkeypatch.setattr("landscape.tiles.compute_tile", no_pass_per_length)
    assert run_cli(cli.main, [*base, "--len", "3,7,12", "--name", "sweep"], capsys)[0] == 0
    tiled = [*base, "--len", "3,7,12", "--name", "tiled", "--tile-rows", "2"]
    assert run_cli(cli.main, tiled, capsys)[0] == 0
    for name in ("sweep", "tiled"):
        got = _npz(tmp_path / f"{name}.npz")
        for k, a in enumerate(alone):
            for key in a:
                np.testing.assert_array_equal(got[key][k], a[key][0])
    assert not os.path.exists(tmp_path / "tiled.tiles")
