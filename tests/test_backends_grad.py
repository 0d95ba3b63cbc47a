"""Gradient maps of ``landscape.evaluate(grad=True)`` and ``landscape.loss_and_grad``.

Every reference here is independent of the package: finite differences of a loss computed with
plain ``torch.nn`` modules (or a scalar Python loop for Pascanu's map), autograd through those
modules, and the closed-form chain rule of Pascanu's map. Grid points are rebuilt by hand from
the plane's origin and directions (flat index k = i * nx + j is the point (x[j], y[i])).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

import landscape as ls

from references import pascanu_grad, pascanu_loss, torch_grad, torch_loss

# ---------------------------------------------------------------- independent references

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # rows per torch tensor (gate order i,f,g,o / r,z,n)
# documented flat index of a few named scalars: state_dict order, gate rows in torch's order
INDEX = {
    "rnn": {"w_ih": 0, "w_hh": 1, "b_ih": 2, "b_hh": 3, "w_out": 4, "b_out": 5},
    "lstm": {"w_hh_g": 6, "b_hh_f": 13, "w_out": 16, "b_out": 17},
    "gru": {"w_hh_n": 5, "b_hh_z": 10, "w_out": 12, "b_out": 13},
}


def n_params(cell: str) -> int:
    return 4 * GATES[cell] + 2


def ref_loss(cell: str, theta, data) -> float:
    if cell == "pascanu":
        return pascanu_loss(float(theta[0]), float(theta[1]), data.length)
    return torch_loss(cell, theta, data.x, data.y)[0]


def ref_grad(cell: str, theta, data) -> np.ndarray:
    """Autograd through torch.nn (or the closed form of Pascanu's map), in state_dict order."""
    if cell == "pascanu":
        _, gw, gb = pascanu_grad(float(theta[0]), float(theta[1]), data.length)
        return np.array([gw, gb])
    return torch_grad(cell, theta, data.x, data.y)[1]


def grid_point(plane, i: int, j: int) -> torch.Tensor:
    """The parameter vector at (x[j], y[i]), rebuilt from the plane's definition."""
    return plane.origin + float(plane.x[j]) * plane.d1 + float(plane.y[i]) * plane.d2


def fd_along(cell: str, theta: torch.Tensor, direction: torch.Tensor, data, h: float = 1e-6) -> float:
    up, down = ref_loss(cell, theta + h * direction, data), ref_loss(cell, theta - h * direction, data)
    return (up - down) / (2 * h)


def fd_grad(cell: str, theta: torch.Tensor, data, h: float = 1e-6) -> np.ndarray:
    eye = torch.eye(len(theta), dtype=torch.float64)
    return np.array([fd_along(cell, theta, eye[k], data, h) for k in range(len(theta))])


def center(cell: str, seed: int = 3) -> torch.Tensor:
    """A centre of our own choosing (uniform in [-1, 1], like torch's init), all nonzero."""
    gen = np.random.default_rng(seed)
    v = gen.uniform(-1.0, 1.0, size=n_params(cell))
    v[np.abs(v) < 0.1] = 0.5
    return torch.tensor(v, dtype=torch.float64)


def make_plane(cell: str, kind: str):
    c = ls.get_cell(cell)
    if cell == "pascanu":
        theta = torch.tensor([5.0, -2.5], dtype=torch.float64)
        if kind == "axis":
            return ls.axis_plane(c, theta, x="w", y="b", xrange=(4.6, 5.4), yrange=(-2.9, -2.1), res=(3, 3))
        return ls.random_plane(theta, seed=1, norm="none", xrange=(-0.3, 0.3), yrange=(-0.3, 0.3), res=(3, 3))
    theta = center(cell)
    if kind == "axis":
        x, y = {"rnn": ("w_hh", "b_hh"), "lstm": ("w_hh_g", "b_hh_f"), "gru": ("w_hh_n", "b_hh_z")}[cell]
        return ls.axis_plane(c, theta, x=x, y=y, xrange=(-2.0, 2.0), yrange=(-1.5, 1.5), res=(3, 4))
    return ls.random_plane(theta, seed=2, norm="filter", xrange=(-1.0, 1.0), yrange=(-1.0, 1.0), res=(3, 4))


def make_task_data(cell: str, task: str, length: int = 8):
    if cell == "pascanu":
        return ls.make_data("pascanu", length)
    return ls.make_data(task, length, n=16, noise=0.3, seed=5)


CASES = [
    ("rnn", "latching"),
    ("rnn", "relay"),
    ("lstm", "latching"),
    ("lstm", "relay"),
    ("gru", "latching"),
    ("gru", "relay"),
    ("pascanu", "pascanu"),
]


# ---------------------------------------------------------------- (a) finite differences


@pytest.mark.parametrize("kind", ["axis", "random"])
@pytest.mark.parametrize(("cell", "task"), CASES)
def test_grad_xy_match_finite_differences(cell, task, kind):
    plane = make_plane(cell, kind)
    data = make_task_data(cell, task)
    res = ls.evaluate(ls.get_cell(cell), data, plane, dtype=torch.float64, grad=True)
    ny, nx = plane.shape
    assert res.grad_x.shape == res.grad_y.shape == res.grad_norm.shape == (ny, nx)
    assert res.grad_x.dtype == np.float64
    d1, d2 = plane.d1.to(torch.float64), plane.d2.to(torch.float64)
    for i in range(ny):
        for j in range(nx):
            theta = grid_point(plane, i, j)
            assert res.loss[i, j] == pytest.approx(ref_loss(cell, theta, data), rel=1e-10, abs=1e-12)
            assert res.grad_x[i, j] == pytest.approx(fd_along(cell, theta, d1, data), rel=1e-5, abs=1e-7)
            assert res.grad_y[i, j] == pytest.approx(fd_along(cell, theta, d2, data), rel=1e-5, abs=1e-7)


def test_axis_plane_grad_x_is_the_named_partial():
    """On an axis plane grad_x/grad_y are the partials of the two named parameters."""
    plane = make_plane("lstm", "axis")
    data = make_task_data("lstm", "latching")
    res = ls.evaluate(ls.get_cell("lstm"), data, plane, dtype=torch.float64, grad=True)
    theta = grid_point(plane, 2, 1)
    g = fd_grad("lstm", theta, data)
    assert res.grad_x[2, 1] == pytest.approx(g[INDEX["lstm"]["w_hh_g"]], rel=1e-5, abs=1e-7)
    assert res.grad_y[2, 1] == pytest.approx(g[INDEX["lstm"]["b_hh_f"]], rel=1e-5, abs=1e-7)


@pytest.mark.parametrize(("cell", "task"), CASES)
def test_grad_norm_matches_finite_differences_over_all_parameters(cell, task):
    plane = make_plane(cell, "random")
    data = make_task_data(cell, task)
    res = ls.evaluate(ls.get_cell(cell), data, plane, dtype=torch.float64, grad=True)
    ny, nx = plane.shape
    for i, j in [(0, 0), (ny - 1, 1), (1, nx - 1)]:
        g = fd_grad(cell, grid_point(plane, i, j), data)
        assert res.grad_norm[i, j] == pytest.approx(np.linalg.norm(g), rel=1e-5, abs=1e-7)


# ---------------------------------------------------------------- (b) autograd through torch.nn


@pytest.mark.parametrize(("cell", "task"), [c for c in CASES if c[0] != "pascanu"])
def test_loss_and_grad_match_torch_nn_autograd(cell, task):
    plane = make_plane(cell, "random")
    data = make_task_data(cell, task, length=12)
    c = ls.get_cell(cell)
    res = ls.evaluate(c, data, plane, dtype=torch.float64, grad=True)
    ny, nx = plane.shape
    for i, j in [(0, 0), (1, 2), (ny - 1, nx - 1)]:
        theta = grid_point(plane, i, j)
        ref = ref_grad(cell, theta, data)
        loss, _, grad = ls.loss_and_grad(c, data, theta[None])
        assert tuple(grad.shape) == (1, n_params(cell))
        np.testing.assert_allclose(grad[0].numpy(), ref, rtol=1e-6, atol=1e-12)
        assert float(loss[0]) == pytest.approx(ref_loss(cell, theta, data), rel=1e-10)
        assert res.grad_norm[i, j] == pytest.approx(np.linalg.norm(ref), rel=1e-6)
        assert res.grad_x[i, j] == pytest.approx(float(ref @ plane.d1.numpy()), rel=1e-6, abs=1e-12)
        assert res.grad_y[i, j] == pytest.approx(float(ref @ plane.d2.numpy()), rel=1e-6, abs=1e-12)


def test_loss_and_grad_rows_are_independent_models():
    """A batch of different models gives each row its own torch.nn gradient."""
    cell = "gru"
    data = make_task_data(cell, "relay", length=10)
    thetas = torch.stack([center(cell, seed=s) for s in range(4)])
    _, _, grad = ls.loss_and_grad(ls.get_cell(cell), data, thetas)
    for r in range(4):
        np.testing.assert_allclose(grad[r].numpy(), ref_grad(cell, thetas[r], data), rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------- (c) Pascanu closed form


@pytest.mark.parametrize("length", [1, 2, 10, 30])
def test_pascanu_gradient_matches_closed_form_chain_rule(length):
    cell = ls.get_cell("pascanu")
    data = ls.make_data("pascanu", length)
    pts = [(5.0, -2.5), (4.6, -2.9), (5.3, -2.2), (1.0, 0.5), (-2.0, 1.0)]
    theta = torch.tensor(pts, dtype=torch.float64)
    loss, acc, grad = ls.loss_and_grad(cell, data, theta)
    assert acc is None
    for r, (w, b) in enumerate(pts):
        e, gw, gb = pascanu_grad(w, b, length)
        assert float(loss[r]) == pytest.approx(e, rel=1e-12, abs=1e-15)
        assert float(grad[r, 0]) == pytest.approx(gw, rel=1e-9, abs=1e-13)
        assert float(grad[r, 1]) == pytest.approx(gb, rel=1e-9, abs=1e-13)


def test_pascanu_grid_gradient_matches_closed_form():
    cell = ls.get_cell("pascanu")
    plane = ls.axis_plane(
        cell,
        torch.tensor([5.0, -2.5], dtype=torch.float64),
        x="w",
        y="b",
        xrange=(4.5, 5.5),
        yrange=(-3.0, -2.0),
        res=(4, 5),
    )
    data = ls.make_data("pascanu", 20)
    res = ls.evaluate(cell, data, plane, dtype=torch.float64, grad=True)
    for i, b in enumerate(plane.y):
        for j, w in enumerate(plane.x):
            e, gw, gb = pascanu_grad(float(w), float(b), 20)
            assert res.loss[i, j] == pytest.approx(e, rel=1e-10, abs=1e-15)
            assert res.grad_x[i, j] == pytest.approx(gw, rel=1e-8, abs=1e-12)
            assert res.grad_y[i, j] == pytest.approx(gb, rel=1e-8, abs=1e-12)
            assert res.grad_norm[i, j] == pytest.approx(math.hypot(gw, gb), rel=1e-8, abs=1e-12)


# ---------------------------------------------------------------- (d) the cliff grows with T


@functools.cache
def _pascanu_b_scan(length: int):
    """w in {4.999, 5, 5.001}, b over [-3, -2] in steps of 1e-4 (the wall is ~1e-3 wide)."""
    cell = ls.get_cell("pascanu")
    plane = ls.axis_plane(
        cell,
        torch.tensor([5.0, -2.5], dtype=torch.float64),
        x="w",
        y="b",
        xrange=(4.999, 5.001),
        yrange=(-3.0, -2.0),
        res=(3, 10001),
    )
    return plane, ls.evaluate(cell, ls.make_data("pascanu", length), plane, dtype=torch.float64, grad=True)


def test_pascanu_cliff_grows_by_orders_of_magnitude():
    plane1, r1 = _pascanu_b_scan(1)
    plane50, r50 = _pascanu_b_scan(50)
    assert plane1.x[1] == 5.0
    g1, g50 = np.abs(r1.grad_y[:, 1]), np.abs(r50.grad_y[:, 1])  # dE/db along b at w = 5
    assert np.isfinite(g50).all()
    assert g1.max() < 0.2
    assert g50.max() > 100
    assert g50.max() > 1000 * g1.max()
    # the independent closed form agrees where the map is steepest
    k = int(np.argmax(g50))
    assert r50.grad_y[k, 1] == pytest.approx(pascanu_grad(5.0, float(plane50.y[k]), 50)[2], rel=1e-6)


def test_pascanu_wall_position_at_t50():
    plane, r = _pascanu_b_scan(50)
    col = r.loss[:, 1]  # w = 5
    k = int(np.argmax(np.abs(np.diff(col))))
    wall = 0.5 * (plane.y[k] + plane.y[k + 1])
    assert abs(wall - (-2.612)) < 0.002
    # and the reference loop puts the jump in the same place
    ref = np.array([pascanu_grad(5.0, float(b), 50)[0] for b in plane.y[k - 2 : k + 4]])
    np.testing.assert_allclose(col[k - 2 : k + 4], ref, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- (e) chunking invariance


@pytest.mark.parametrize(("cell", "task"), [("lstm", "latching"), ("gru", "relay"), ("pascanu", "pascanu")])
def test_grad_maps_do_not_depend_on_chunking(cell, task):
    plane = make_plane(cell, "random")
    data = make_task_data(cell, task)
    c = ls.get_cell(cell)
    full = ls.evaluate(c, data, plane, dtype=torch.float64, grad=True)
    tiny = ls.evaluate(c, data, plane, dtype=torch.float64, grad=True, mem=1)
    odd = ls.evaluate(c, data, plane, dtype=torch.float64, grad=True, mem=40_000)
    for other in (tiny, odd):
        for name in ("loss", "grad_norm", "grad_x", "grad_y"):
            np.testing.assert_allclose(getattr(other, name), getattr(full, name), rtol=1e-12, atol=0)
        if full.accuracy is not None:
            np.testing.assert_array_equal(other.accuracy, full.accuracy)


def test_evaluate_without_grad_has_no_grad_maps():
    plane = make_plane("rnn", "axis")
    res = ls.evaluate(ls.get_cell("rnn"), make_task_data("rnn", "latching"), plane, dtype=torch.float64)
    assert res.grad_norm is None and res.grad_x is None and res.grad_y is None


def test_float32_grad_maps_close_to_reference():
    plane = make_plane("rnn", "axis")
    data = make_task_data("rnn", "latching")
    res = ls.evaluate(ls.get_cell("rnn"), data, plane, grad=True)
    assert res.grad_x.dtype == np.float32
    theta = grid_point(plane, 1, 1)
    ref = ref_grad("rnn", theta, data)
    assert res.grad_norm[1, 1] == pytest.approx(np.linalg.norm(ref), rel=1e-4, abs=1e-6)
    assert res.grad_x[1, 1] == pytest.approx(ref[INDEX["rnn"]["w_hh"]], rel=1e-4, abs=1e-6)
    assert res.grad_y[1, 1] == pytest.approx(ref[INDEX["rnn"]["b_hh"]], rel=1e-4, abs=1e-6)
