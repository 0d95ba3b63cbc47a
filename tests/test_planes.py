"""Planes: seeded invariants of random directions, axis planes, grid coordinates, orientation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import landscape as ls
from landscape.planes import MAX_COORD, grid_coords

NORMS = ("filter", "model", "none")


def _dot_ok(d1, d2):
    return abs(float(d1 @ d2)) <= 1e-12 * float(torch.linalg.vector_norm(d1) * torch.linalg.vector_norm(d2))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "pascanu"])
@pytest.mark.parametrize("norm", NORMS)
def test_random_directions_orthogonal(cell, norm):
    c = ls.get_cell(cell)
    for seed in range(5):
        plane = ls.random_plane(ls.init_params(c, seed=seed), seed=seed, norm=norm, res=(3, 3))
        assert plane.d1.dtype == torch.float64 and plane.d1.shape == (len(c.param_names),)
        assert _dot_ok(plane.d1, plane.d2)
        assert plane.kind == "random" and (plane.xlabel, plane.ylabel) == ("d1", "d2")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_filter_norm_matches_each_scalar(cell):
    c = ls.get_cell(cell)
    theta = ls.init_params(c, seed=4)
    theta[2] = 0.0  # a zero parameter gets a zero direction
    plane = ls.random_plane(theta, seed=1, norm="filter", res=(3, 3))
    np.testing.assert_allclose(plane.d1.abs().numpy(), theta.abs().numpy(), rtol=1e-12, atol=0)
    assert plane.d1[2] == 0.0
    # Gram-Schmidt keeps d2's norm, which filter normalization made ||theta||
    np.testing.assert_allclose(
        float(torch.linalg.vector_norm(plane.d2)), float(torch.linalg.vector_norm(theta)), rtol=1e-12
    )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_model_norm(cell):
    c = ls.get_cell(cell)
    theta = ls.init_params(c, seed=6)
    plane = ls.random_plane(theta, seed=2, norm="model", res=(3, 3))
    tn = float(torch.linalg.vector_norm(theta))
    np.testing.assert_allclose(float(torch.linalg.vector_norm(plane.d1)), tn, rtol=1e-12)
    np.testing.assert_allclose(float(torch.linalg.vector_norm(plane.d2)), tn, rtol=1e-12)


def test_directions_are_gaussian_not_uniform():
    c = ls.get_cell("lstm")  # 18 parameters
    theta = ls.init_params(c)
    vals = torch.cat([ls.random_plane(theta, seed=s, norm="none", res=(2, 2)).d1 for s in range(60)])
    vals = vals.numpy()  # 1080 draws of N(0, 1)
    assert (vals < 0).any() and (vals > 0).any()
    assert abs(vals.mean()) < 0.15
    assert 0.9 < vals.std() < 1.1
    assert np.abs(vals).max() > 2.5  # a uniform draw on [-1, 1] or [0, 1] never gets there
    kurt = np.mean((vals - vals.mean()) ** 4) / vals.var() ** 2
    assert 2.5 < kurt < 3.6  # Gaussian 3, uniform 1.8


def test_random_plane_is_seeded():
    c = ls.get_cell("gru")
    theta = ls.init_params(c)
    a, b = (ls.random_plane(theta, seed=3, res=(3, 3)) for _ in range(2))
    other = ls.random_plane(theta, seed=4, res=(3, 3))
    assert torch.equal(a.d1, b.d1) and torch.equal(a.d2, b.d2)
    assert not torch.equal(a.d1, other.d1)


def test_random_plane_does_not_touch_global_rng():
    c = ls.get_cell("rnn")
    state = torch.get_rng_state()
    ls.random_plane(ls.init_params(c), seed=0, res=(3, 3))
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(
    "cell,task", [("rnn", "latching"), ("lstm", "relay"), ("gru", "latching"), ("pascanu", "pascanu")]
)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("res", [(3, 5), (5, 3), (7, 7)])
def test_random_plane_centre_is_theta0_exactly(cell, task, norm, res):
    c = ls.get_cell(cell)
    theta0 = ls.init_params(c, seed=2)
    data = ls.make_data(task, 6, n=12, seed=1)
    plane = ls.random_plane(theta0, seed=5, norm=norm, res=res)
    ny, nx = plane.shape
    assert plane.x[nx // 2] == 0.0 and plane.y[ny // 2] == 0.0
    assert torch.equal(plane.points(0, nx * ny)[(ny // 2) * nx + nx // 2], theta0)
    result = ls.evaluate(c, data, plane, dtype=torch.float64)
    want = ls.losses(c, data, theta0[None])[0]
    assert result.loss[ny // 2, nx // 2] == float(want[0])


def test_points_orientation_non_square():
    """Flat index k = i * nx + j is (x[j], y[i])."""
    c = ls.get_cell("rnn")
    plane = ls.random_plane(ls.init_params(c), seed=0, xrange=(-1.0, 2.0), yrange=(-3.0, 0.5), res=(3, 5))
    assert plane.shape == (5, 3) and len(plane.x) == 3 and len(plane.y) == 5
    pts = plane.points(0, 15).reshape(5, 3, -1)
    for i in range(5):
        for j in range(3):
            want = plane.origin + float(plane.x[j]) * plane.d1 + float(plane.y[i]) * plane.d2
            torch.testing.assert_close(pts[i, j], want, rtol=0, atol=1e-15)
    torch.testing.assert_close(plane.points(4, 9), plane.points(0, 15)[4:9], rtol=0, atol=0)


def test_evaluate_orientation_non_square():
    c = ls.get_cell("lstm")
    data = ls.make_data("latching", 5, n=10, seed=0)
    center = ls.init_params(c)
    plane = ls.axis_plane(
        c, center, x="w_hh_i", y="b_ih_o", xrange=(-2.0, 1.0), yrange=(0.0, 4.0), res=(3, 5)
    )
    result = ls.evaluate(c, data, plane, dtype=torch.float64)
    assert result.loss.shape == (5, 3)
    names = c.param_names
    for i, j in [(0, 2), (4, 0), (3, 1)]:
        theta = center.clone()
        theta[names.index("w_hh_i")] = plane.x[j]
        theta[names.index("b_ih_o")] = plane.y[i]
        assert result.loss[i, j] == pytest.approx(float(ls.losses(c, data, theta[None])[0][0]), rel=1e-12)


def test_axis_plane_coordinates_are_parameter_values():
    c = ls.get_cell("gru")
    center = ls.init_params(c, seed=1)
    plane = ls.axis_plane(
        c, center, x="b_hh_n", y="w_ih_r", xrange=(-1.0, 3.0), yrange=(2.0, 2.5), res=(5, 2)
    )
    assert plane.kind == "axis" and (plane.xlabel, plane.ylabel) == ("b_hh_n", "w_ih_r")
    np.testing.assert_array_equal(plane.x, [-1.0, 0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(plane.y, [2.0, 2.5])
    pts = plane.points(0, 10).reshape(2, 5, -1)
    ix, iy = c.param_names.index("b_hh_n"), c.param_names.index("w_ih_r")
    np.testing.assert_array_equal(pts[:, :, ix].numpy(), np.broadcast_to(plane.x, (2, 5)))
    np.testing.assert_array_equal(pts[:, :, iy].numpy(), np.broadcast_to(plane.y[:, None], (2, 5)))
    others = [k for k in range(len(center)) if k not in (ix, iy)]
    for k in others:
        assert torch.all(pts[:, :, k] == center[k])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(x="nope"),
        dict(y="w_out", x="w_out"),
        dict(xrange=(1.0, 1.0)),
        dict(yrange=(2.0, -2.0)),
        dict(xrange=(float("nan"), 1.0)),
        dict(res=(1, 5)),
        dict(res=(5, 0)),
    ],
)
def test_axis_plane_rejects_bad_input(kwargs):
    c = ls.get_cell("rnn")
    with pytest.raises(ls.InputError):
        ls.axis_plane(c, ls.init_params(c), **kwargs)


def test_random_plane_rejects_bad_input():
    c = ls.get_cell("rnn")
    with pytest.raises(ls.InputError, match="nope"):
        ls.random_plane(ls.init_params(c), norm="nope")
    one_nonzero = torch.zeros(len(c.param_names), dtype=torch.float64)
    one_nonzero[0] = 1.0
    for norm in ("filter", "model"):
        with pytest.raises(ls.InputError, match="none"):
            ls.random_plane(one_nonzero, norm=norm)
    plane = ls.random_plane(one_nonzero, norm="none", res=(3, 3))  # fine without normalization
    assert _dot_ok(plane.d1, plane.d2)


@pytest.mark.parametrize(
    "lo,hi,n", [(-4.0, 4.0, 51), (-1.0, 1.0, 3), (4.5, 5.5, 101), (-3.0, -2.0, 7), (0.0, 1.0, 2)]
)
def test_grid_coords(lo, hi, n):
    c = grid_coords(lo, hi, n)
    assert c.shape == (n,) and c.dtype == np.float64
    assert c[0] == lo and c[-1] == hi
    assert np.all(np.diff(c) > 0)
    np.testing.assert_allclose(c, np.linspace(lo, hi, n), rtol=0, atol=1e-14)
    if lo == -hi and n % 2:
        assert c[n // 2] == 0.0


def test_project_recovers_coordinates():
    c = ls.get_cell("gru")
    plane = ls.random_plane(ls.init_params(c), seed=3, norm="filter", res=(4, 3))
    pts = plane.points(0, 12)
    a, b, off = plane.project(pts)
    np.testing.assert_allclose(a.numpy(), np.tile(plane.x, 3), atol=1e-12)
    np.testing.assert_allclose(b.numpy(), np.repeat(plane.y, 4), atol=1e-12)
    assert float(off.max()) < 1e-12


def test_grid_coords_of_extreme_ranges():
    """Regression: hi - lo overflowed to inf for a range wider than the largest float, giving NaN
    coordinates. Beyond +-MAX_COORD a range is refused; up to it the coordinates are finite."""
    big = float(np.finfo(np.float64).max)
    with pytest.raises(ls.InputError, match="range"):
        grid_coords(-big, big, 5)  # both ends finite, LO < HI, but past MAX_COORD
    c = grid_coords(-MAX_COORD, MAX_COORD, 5)
    assert np.all(np.isfinite(c)) and np.all(np.diff(c) > 0)
    assert c[0] == -MAX_COORD and c[-1] == MAX_COORD and c[2] == 0.0
