"""A loss of closed form: the mean squared error of a linear model is a quadratic in its
parameters, so over any plane theta = o + a d1 + b d2 it is c00 + 2 a c01 + 2 b c02 + a^2 c11
+ 2 a b c12 + b^2 c22, with c_ij the mean products of the residual at o and the directions'
outputs. Both planes of a generic module and the axis planes of its flat vector are checked
against that formula to 1e-12 in float64."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import landscape as ls
from landscape.planes import grid_coords


def closed_form(X, y, origin, d1, d2, a, b):
    """The quadratic surface from the data and the plane alone: X (N, I), theta = (w, bias)."""
    Xb = np.hstack([X, np.ones((len(X), 1))])  # the bias as one more input of value 1
    r0, r1, r2 = Xb @ origin - y, Xb @ d1, Xb @ d2
    r = (r0, r1, r2)
    c = {f"{i}{j}": np.mean(r[i] * r[j]) for i in range(3) for j in range(i, 3)}
    A, B = np.meshgrid(a, b)  # (ny, nx): a along x, b along y
    return c["00"] + 2 * A * c["01"] + 2 * B * c["02"] + A**2 * c["11"] + 2 * A * B * c["12"] + B**2 * c["22"]


def test_a_random_plane_of_a_linear_model_is_its_closed_form_quadratic():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 4)), rng.normal(size=50)
    model = nn.Linear(4, 1).double()
    center = ls.module_vector(model)
    plane = ls.random_plane(center, seed=3, res=(9, 7), norm="none")
    got = ls.slice_module(
        model, lambda out, t: ((out[:, 0] - t) ** 2).mean(), torch.from_numpy(X), torch.from_numpy(y), plane
    )
    want = closed_form(X, y, plane.origin.numpy(), plane.d1.numpy(), plane.d2.numpy(), plane.x, plane.y)
    assert got.shape == (7, 9)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_an_axis_plane_is_the_quadratic_with_unit_directions():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(30, 2)), rng.normal(size=30)
    model = nn.Linear(2, 1).double()
    origin = ls.module_vector(model).clone()
    origin[[0, 2]] = 0.0  # the swept weight and the bias sit at 0, so coordinates are their values
    d1, d2 = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    d1[0], d2[2] = 1.0, 1.0
    a, b = grid_coords(-3.0, 3.0, 13), grid_coords(-2.0, 2.0, 5)
    plane = ls.Plane(origin, d1, d2, a, b, "w0", "bias", "axis")
    got = ls.slice_module(
        model,
        lambda out, t: ((out[:, 0] - t) ** 2).mean(),
        torch.from_numpy(X),
        torch.from_numpy(y),
        plane,
        vectorize=False,
    )
    np.testing.assert_allclose(
        got, closed_form(X, y, origin.numpy(), d1.numpy(), d2.numpy(), a, b), rtol=1e-12, atol=1e-12
    )
    # its minimum over the grid lies where the normal equations put it, to the grid's step
    i, j = np.unravel_index(np.argmin(got), got.shape)
    Xs = np.column_stack([X[:, 0], np.ones(len(X))])
    w0, bias = np.linalg.lstsq(Xs, y - X[:, 1] * origin[1].item(), rcond=None)[0]
    assert abs(a[j] - w0) <= 0.25 + 1e-12 and abs(b[i] - bias) <= 0.5 + 1e-12
