"""Descent paths (plain and clipped, Pascanu et al. Algorithm 1), window exits and cliff metrics.

References: Pascanu's map differentiated by hand (forward-mode chain rule in plain Python),
torch.nn modules with autograd for the gated cells, and hand-made surfaces with known walls.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import landscape as ls
from landscape import slice as cli
from landscape.cliffs import cliff_metrics
from landscape.trajectories import window_exit

from references import pascanu_descent


def test_clip_gradient_is_algorithm_1():
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0], [0.0, 0.0]], dtype=torch.float64)
    out = ls.clip_gradient(g, 5.0).numpy()
    want = []
    for row in g.numpy():
        n = np.linalg.norm(row)
        want.append(row * 5.0 / n if n >= 5.0 else row)
    np.testing.assert_allclose(out, want, rtol=1e-15)
    assert np.allclose(np.linalg.norm(out[[0, 2]], axis=1), 5.0)


@pytest.mark.parametrize("start,length", [((5.0, -2.5), 10), ((4.8, -2.62), 20), ((5.3, -2.1), 3)])
def test_pascanu_descent_matches_hand_derivative(start, length):
    c = ls.get_cell("pascanu")
    plane = ls.axis_plane(c, ls.init_params(c), res=(3, 3))
    paths = ls.descend(c, ls.make_data("pascanu", length), plane, start=start, lr=0.2, steps=15, clip=0.5)
    assert set(paths) == {"plain", "clip"}
    for name, clip in (("plain", None), ("clip", 0.5)):
        coords, losses, norms, _ = pascanu_descent(*start, length, 0.2, 15, clip)
        p = paths[name]
        assert p.coords.shape == (16, 2)
        np.testing.assert_allclose(p.coords, coords, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(p.loss, losses, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(p.grad_norm, norms, rtol=1e-8, atol=1e-12)
        np.testing.assert_array_equal(p.off, 0.0)


def test_descend_without_clip_has_only_plain():
    c = ls.get_cell("pascanu")
    plane = ls.axis_plane(c, ls.init_params(c), res=(3, 3))
    paths = ls.descend(c, ls.make_data("pascanu", 5), plane, start=(5.0, -2.5), lr=0.1, steps=3)
    assert set(paths) == {"plain"}


def test_rnn_axis_descent_moves_only_the_plane_parameters(ref):
    """On an axis plane only the two named scalars move; gradients from torch.nn autograd."""
    c = ls.get_cell("rnn")
    data = ls.make_data("latching", 6, n=16, seed=0)
    center = ls.init_params(c, seed=1)
    plane = ls.axis_plane(c, center, x="w_hh", y="b_ih", res=(3, 3))
    lr, steps, start = 0.5, 6, (-1.0, 0.5)
    p = ls.descend(c, data, plane, start=start, lr=lr, steps=steps)["plain"]
    values = dict(zip(ref.slots("rnn"), center.tolist(), strict=True))
    w, b = start
    for step in range(steps + 1):
        np.testing.assert_allclose(p.coords[step], [w, b], rtol=1e-9, atol=1e-12)
        rnn, head = ref.modules("rnn", {**values, "w_hh": w, "b_ih": b})
        out, _ = rnn(data.x[:, :, None])
        z = head(out[:, -1, :])[:, 0]
        loss = (nn.functional.softplus(z) - data.y * z).mean()
        loss.backward()
        assert p.loss[step] == pytest.approx(loss.item(), rel=1e-10)
        gw, gb = rnn.weight_hh_l0.grad.item(), rnn.bias_ih_l0.grad.item()
        assert p.grad_norm[step] == pytest.approx(math.hypot(gw, gb), rel=1e-8)
        w, b = w - lr * gw, b - lr * gb
    np.testing.assert_array_equal(p.off, 0.0)


def test_random_plane_descent_leaves_the_plane():
    c = ls.get_cell("gru")
    plane = ls.random_plane(ls.init_params(c, seed=2), seed=0, res=(3, 3))
    p = ls.descend(c, ls.make_data("relay", 5, n=16), plane, start=(0.0, 0.0), lr=0.5, steps=4)["plain"]
    np.testing.assert_array_equal(p.coords[0], [0.0, 0.0])
    assert p.off[0] == 0.0 and p.off[-1] > 0.0  # every parameter moves, not only the two directions


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(lr=float("nan")), dict(steps=0), dict(steps=2.5),
                                    dict(clip=0.0), dict(clip=-1.0)])
def test_descend_rejects_bad_options(kwargs):
    c = ls.get_cell("pascanu")
    plane = ls.axis_plane(c, ls.init_params(c), res=(3, 3))
    opts = {**dict(start=(5.0, -2.5), lr=0.1, steps=3), **kwargs}
    with pytest.raises(ls.InputError):
        ls.descend(c, ls.make_data("pascanu", 5), plane, **opts)


def test_window_exit():
    coords = np.array([[0.0, 0.0], [0.5, 0.5], [1.5, 0.5], [2.0, 2.0]])
    step, edge = window_exit(coords, (-1.0, 1.0), (-1.0, 1.0))
    assert step == 2
    np.testing.assert_allclose(edge, [1.0, 0.5])
    step, edge = window_exit(coords[:2], (-1.0, 1.0), (-1.0, 1.0))
    assert step is None and edge is None
    diag = np.array([[0.0, 0.0], [2.0, 4.0]])  # leaves through the top edge first
    step, edge = window_exit(diag, (-1.0, 1.0), (-1.0, 1.0))
    np.testing.assert_allclose(edge, [0.5, 1.0])
    stopped = np.array([[0.0, 0.0], [np.nan, np.nan], [np.nan, np.nan]])
    assert window_exit(stopped, (-1.0, 1.0), (-1.0, 1.0)) == (None, None)


def _wall_surface():
    """Loss 0 left of x = 0.25 and 1 right of it at L = 3; a smooth ramp along y at L = 6."""
    x, y = np.linspace(-1, 1, 5), np.linspace(0, 2, 3)
    loss = np.zeros((2, 3, 5))
    loss[0, :, 3:] = 1.0  # the wall between x[2] = 0 and x[3] = 0.5
    loss[1] = 0.1 * y[:, None] + 0.0 * x[None, :]
    loss[1, 2, 4] = np.nan
    return ls.Surface(loss, x, y, np.array([3, 6]), "w", "b")


def test_cliff_metrics_on_a_known_wall():
    surf = _wall_surface()
    m = cliff_metrics(surf)
    assert m["cliff_max_jump"][0] == 1.0
    assert m["cliff_wall_x"][0] == pytest.approx(0.25)  # midpoint between x = 0 and x = 0.5
    assert m["cliff_nonfinite"].tolist() == [0, 1]
    assert m["cliff_max_jump"][1] == pytest.approx(0.1)
    assert m["cliff_wall_y"][1] in (0.5, 1.5)
    assert np.isnan(m["cliff_max_grad"]).all()  # no gradient maps in this surface
    surf.extra["grad_norm"] = np.abs(surf.loss) * 10
    m = cliff_metrics(surf, threshold=5.0)
    assert m["cliff_max_grad"].tolist() == [10.0, pytest.approx(2.0)]
    assert m["cliff_share"][0] == pytest.approx(6 / 15)
    assert m["cliff_share"][1] == 0.0


def test_cli_descent_paths_in_surface_file(tmp_path, capsys):
    args = ["--quiet", "--out", str(tmp_path), "--cell", "pascanu", "--len", "5,10", "--res", "3",
            "--dtype", "float64", "--start", "5.2,-2.4", "--lr", "0.3", "--steps", "8", "--clip", "0.2",
            "--name", "p"]
    assert cli.main(args) == 0
    capsys.readouterr()
    surf = ls.load_surface(str(tmp_path / "p.npz"))
    assert surf.extra["path_plain"].shape == surf.extra["path_clip"].shape == (2, 9, 2)
    for k, length in enumerate((5, 10)):
        for name, clip in (("plain", None), ("clip", 0.2)):
            coords, losses, _, _ = pascanu_descent(5.2, -2.4, length, 0.3, 8, clip)
            np.testing.assert_allclose(surf.extra[f"path_{name}"][k], coords, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(surf.extra[f"path_{name}_loss"][k], losses, rtol=1e-9, atol=1e-14)
    assert surf.config["start"] == [5.2, -2.4] and surf.config["clip"] == 0.2


def test_cli_negative_start(tmp_path, capsys):
    args = ["--quiet", "--out", str(tmp_path), "--res", "3", "--len", "4", "--samples", "8",
            "--start", "-1,0.5", "--steps", "2", "--name", "r"]
    assert cli.main(args) == 0
    capsys.readouterr()
    surf = ls.load_surface(str(tmp_path / "r.npz"))
    np.testing.assert_allclose(surf.extra["path_plain"][0, 0], [-1.0, 0.5])


@pytest.mark.parametrize("args,needle", [
    (["--start", "1"], "'1'"), (["--start", "a,b"], "'a,b'"), (["--start", "nan,1"], "'nan,1'"),
    (["--start", "1,2,3"], "'1,2,3'"), (["--start", "0,0", "--lr", "0"], "--lr"),
    (["--start", "0,0", "--steps", "0"], "--steps"), (["--start", "0,0", "--clip", "-1"], "--clip"),
    (["--threshold", "0"], "--threshold"), (["--threshold", "nan"], "--threshold"),
    (["--scale", "cubic"], "'cubic'"), (["--start", "9,0"], "9,0"),
])
def test_cli_bad_path_options(args, needle, tmp_path, capsys):
    out_dir = tmp_path / "out"
    try:
        code = cli.main(["--quiet", "--out", str(out_dir), "--res", "3", "--len", "4", "--samples", "8",
                         *args])
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    assert code == 2 and cap.out == "" and "Traceback" not in cap.err
    assert cap.err.count("\n") == 1 and needle in cap.err, cap.err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_cliff_metrics_leave_out_infinite_cells():
    """Regression: np.diff of two neighbouring inf cells warned 'invalid value in subtract'."""
    surf = _wall_surface()
    surf.loss[0, 0, :2] = np.inf  # two neighbouring overflowed cells
    surf.loss[0, 1, 0] = -np.inf
    m = cliff_metrics(surf)  # filterwarnings = error: any RuntimeWarning fails here
    assert m["cliff_nonfinite"][0] == 3
    assert m["cliff_max_jump"][0] == 1.0 and m["cliff_wall_x"][0] == pytest.approx(0.25)
