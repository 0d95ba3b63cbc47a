"""Cells against independent references: torch.nn modules point by point, and a scalar loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.evaluate import chunk_size

CELLS = ("rnn", "lstm", "gru")
RTOL = 1e-9  # float64 against float64; the observed differences are ~1e-15


def grid_thetas(plane: ls.Plane) -> np.ndarray:
    """origin + x[j] d1 + y[i] d2 for every (i, j), from the plane's documented definition."""
    o, d1, d2 = (t.numpy() for t in (plane.origin, plane.d1, plane.d2))
    return o + plane.x[None, :, None] * d1 + plane.y[:, None, None] * d2  # (ny, nx, P)


def axis_thetas(cell: str, center: np.ndarray, names, xname, yname, xs, ys) -> np.ndarray:
    """Centre with the two named scalars replaced by the grid coordinates: (ny, nx, P)."""
    out = np.broadcast_to(center, (len(ys), len(xs), len(center))).copy()
    out[:, :, names.index(xname)] = xs[None, :]
    out[:, :, names.index(yname)] = ys[:, None]
    return out


def check_grid(ref, cell, x, y, result, thetas):
    ny, nx = result.loss.shape
    assert thetas.shape[:2] == (ny, nx)
    for i in range(ny):
        for j in range(nx):
            loss, acc = ref.loss(cell, thetas[i, j], x, y)
            np.testing.assert_allclose(result.loss[i, j], loss, rtol=RTOL, atol=0)
            assert result.accuracy[i, j] == acc


@pytest.mark.parametrize("cell", CELLS)
def test_layout_is_documented_state_dict_order(cell, ref):
    assert ls.get_cell(cell).param_names == ref.names(cell)


# The plane's axes per cell: a recurrent weight and a gate bias, not the defaults' ranges.
AXES = {"rnn": ("w_ih", "b_hh"), "lstm": ("w_hh_g", "b_ih_f"), "gru": ("w_hh_z", "b_hh_n")}


def _datasets(own_data):
    path, x_own, y_own = own_data
    lat = ls.make_data("latching", 9, n=20, noise=0.3, seed=3)
    rel = ls.make_data("relay", 8, n=20, noise=0.3, seed=4)
    x_ld, y_ld = ls.load_data(str(path))
    own = ls.data_from_arrays(x_ld, y_ld, 7)
    return [
        ("latching", lat, lat.x.numpy(), lat.y.numpy()),
        ("relay", rel, rel.x.numpy(), rel.y.numpy()),
        ("own", own, x_own[:, :7], y_own),
    ]


@pytest.mark.parametrize("cell", CELLS)
def test_axis_plane_matches_torch(cell, ref, own_data):
    c = ls.get_cell(cell)
    center = ls.init_params(c, seed=7)
    xname, yname = AXES[cell]
    plane = ls.axis_plane(c, center, x=xname, y=yname, xrange=(-3.0, 2.5), yrange=(-1.5, 4.0), res=(4, 3))
    thetas = axis_thetas(cell, center.numpy(), list(c.param_names), xname, yname, plane.x, plane.y)
    for _, data, x, y in _datasets(own_data):
        result = ls.evaluate(c, data, plane, dtype=torch.float64)
        assert result.loss.shape == (3, 4) and result.loss.dtype == np.float64
        check_grid(ref, cell, x, y, result, thetas)


@pytest.mark.parametrize("cell", CELLS)
def test_random_plane_matches_torch(cell, ref, own_data):
    c = ls.get_cell(cell)
    center = ls.init_params(c, seed=11)
    plane = ls.random_plane(center, seed=5, norm="filter", xrange=(-2.0, 1.0), yrange=(-1.0, 3.0), res=(3, 4))
    assert torch.equal(plane.origin, center)
    thetas = grid_thetas(plane)
    for _, data, x, y in _datasets(own_data):
        result = ls.evaluate(c, data, plane, dtype=torch.float64)
        check_grid(ref, cell, x, y, result, thetas)


@pytest.mark.parametrize("cell", CELLS)
def test_chunking_does_not_change_results(cell, ref):
    """One point per chunk, a few points per chunk (not dividing the grid), all in one chunk."""
    c = ls.get_cell(cell)
    data = ls.make_data("latching", 6, n=16, seed=2)
    plane = ls.axis_plane(c, ls.init_params(c, seed=1), res=(5, 3))
    sizes = {}
    for mem in (1, None, 1 << 30):
        if mem is None:  # find a budget that gives 4 points per chunk
            mem = next(m for m in range(1, 1 << 20, 64) if chunk_size(c, 16, torch.float64, m) == 4)
        sizes[mem] = chunk_size(c, 16, torch.float64, mem)
        result = ls.evaluate(c, data, plane, dtype=torch.float64, mem=mem)
        check_grid(ref, cell, data.x.numpy(), data.y.numpy(), result, grid_thetas(plane))
    assert sorted(sizes.values())[:2] == [1, 4]


@pytest.mark.parametrize("cell", CELLS)
def test_float32_close_to_float64(cell):
    c = ls.get_cell(cell)
    data = ls.make_data("relay", 10, n=32, seed=0)
    plane = ls.axis_plane(c, ls.init_params(c), res=(3, 4))
    r32 = ls.evaluate(c, data, plane, dtype=torch.float32)
    r64 = ls.evaluate(c, data, plane, dtype=torch.float64)
    assert r32.loss.dtype == np.float32
    np.testing.assert_allclose(r32.loss, r64.loss, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_losses_gradcheck(cell):
    """Autograd through the vectorized cells against finite differences."""
    c = ls.get_cell(cell)
    data = ls.make_data("latching", 4, n=5, noise=0.5, seed=0)
    theta = torch.stack([ls.init_params(c, seed=s) for s in (0, 1)]).requires_grad_(True)  # (2, P)
    assert torch.autograd.gradcheck(lambda t: ls.losses(c, data, t)[0], (theta,))


@pytest.mark.parametrize("cell", CELLS)
def test_per_row_gradient_matches_torch_module(cell, ref):
    """The gradient of losses(...).sum() w.r.t. each row is that model's own gradient."""
    c = ls.get_cell(cell)
    data = ls.make_data("relay", 6, n=12, noise=0.4, seed=9)
    theta = torch.stack([ls.init_params(c, seed=s) for s in (3, 4, 5)]).requires_grad_(True)  # (3, P)
    ls.losses(c, data, theta)[0].sum().backward()
    for g in range(3):
        _, want = ref.grad(cell, theta[g], data.x, data.y)
        np.testing.assert_allclose(theta.grad[g].numpy(), want, rtol=1e-9, atol=1e-12)


def test_pascanu_matches_scalar_loop(ref):
    c = ls.get_cell("pascanu")
    assert c.param_names == ("w", "b")
    plane = ls.axis_plane(c, ls.init_params(c), xrange=(4.5, 5.5), yrange=(-3.0, -2.0), res=(4, 5))
    for length in (1, 5, 20):
        data = ls.make_data("pascanu", length)
        result = ls.evaluate(c, data, plane, dtype=torch.float64)
        assert result.accuracy is None and result.loss.shape == (5, 4)
        want = np.array([[ref.pascanu(w, b, length) for w in plane.x] for b in plane.y])
        np.testing.assert_allclose(result.loss, want, rtol=1e-12, atol=1e-15)


def test_pascanu_wall_at_w5(ref):
    """At w = 5 the map has two stable fixed points for b in about (-2.656, -2.344) (Pascanu et
    al. 2013, section 2.3): at T = 50 the loss jumps across the basin boundary, which the
    scalar loop locates; the grid on either side agrees with it."""
    c = ls.get_cell("pascanu")
    bs = np.linspace(-2.7, -2.3, 9)
    plane = ls.axis_plane(c, ls.init_params(c), xrange=(4.999, 5.001), yrange=(-2.7, -2.3), res=(3, 9))
    result = ls.evaluate(c, ls.make_data("pascanu", 50), plane, dtype=torch.float64)
    col = result.loss[:, 1]  # w = 5 exactly (middle of a symmetric range around 5)
    assert plane.x[1] == pytest.approx(5.0, abs=1e-12)
    want = np.array([ref.pascanu(plane.x[1], b, 50) for b in plane.y])
    np.testing.assert_allclose(col, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(plane.y, bs, atol=1e-12)
    jumps = np.abs(np.diff(col))
    assert jumps.max() > 10 * np.median(jumps)  # one cliff, not a smooth slope
