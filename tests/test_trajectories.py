"""Descent paths (plain and clipped, Algorithm 1 of Pascanu et al.), their window exits, and the
command line's path options: ``landscape/trajectories.py``.

References are hand-written: Algorithm 1 on plain numbers, gradient descent on the closed-form
gradient of Pascanu's map, and loops using autograd through torch.nn (``references.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import landscape as ls
import landscape.slice as cli
from landscape.planes import window_exit

from references import pascanu_descent, torch_grad

PASCANU = ls.get_cell("pascanu")
FIG6 = dict(xrange=(4.5, 5.5), yrange=(-3.0, -2.0))  # Pascanu et al.'s Figure 6 window


def pascanu_plane(res=(3, 3)):
    return ls.axis_plane(
        PASCANU, torch.tensor([5.0, -2.5], dtype=torch.float64), x="w", y="b", res=res, **FIG6
    )


# ---------------------------------------------------------------- clip_gradient


def test_clip_gradient_rescales_to_exactly_the_threshold():
    g = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0]], dtype=torch.float64)
    out = ls.clip_gradient(g, 1.0)
    expected = torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [-0.6, 0.8]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=1e-15, atol=0)
    assert torch.linalg.vector_norm(out[0]).item() == pytest.approx(1.0, rel=1e-15)
    assert torch.equal(out[1], g[1])  # below the threshold: untouched
    assert torch.isfinite(out).all()  # a zero row stays zero, no 0/0
    assert out.dtype == g.dtype


def test_clip_gradient_keeps_the_direction_in_many_dimensions():
    gen = torch.Generator().manual_seed(0)
    g = 10.0 * torch.randn(5, 18, generator=gen, dtype=torch.float64)
    out = ls.clip_gradient(g, 2.5)
    norms = torch.linalg.vector_norm(g, dim=1)
    for r in range(5):
        assert norms[r] > 2.5
        np.testing.assert_allclose(out[r].numpy(), (g[r] * (2.5 / norms[r])).numpy(), rtol=1e-14)
        cos = float(out[r] @ g[r] / (torch.linalg.vector_norm(out[r]) * norms[r]))
        assert cos == pytest.approx(1.0, abs=1e-14)


def test_clip_gradient_at_the_threshold_follows_algorithm_1():
    g = torch.tensor([[3.0, 4.0]], dtype=torch.float64)  # norm exactly 5
    out = ls.clip_gradient(g, 5.0)  # ||g|| >= threshold: g = 5 * g / 5 = g
    torch.testing.assert_close(out, g, rtol=0, atol=0)
    out = ls.clip_gradient(g, 5.0 + 1e-9)  # just below the threshold: unchanged
    assert torch.equal(out, g)
    out = ls.clip_gradient(g, 5.0 - 1e-9)  # just above: rescaled to the threshold
    assert torch.linalg.vector_norm(out).item() == pytest.approx(5.0 - 1e-9, rel=1e-15)


# ---------------------------------------------------------------- descend against hand loops


@pytest.mark.parametrize("start,length", [((5.0, -2.5), 10), ((4.8, -2.62), 20), ((5.3, -2.1), 3)])
def test_pascanu_descent_matches_hand_loop(start, length):
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


def test_clipped_descent_on_pascanu_matches_hand_loop():
    plane = pascanu_plane()
    data = ls.make_data("pascanu", 20)
    threshold = 0.2
    runs = ls.descend(PASCANU, data, plane, start=(4.8, -2.4), lr=1.0, steps=10, clip=threshold)
    coords, losses, norms, clipped = pascanu_descent(4.8, -2.4, 20, 1.0, 10, clip=threshold)
    assert 0 < len(clipped) < 10, "the reference must both clip and not clip"
    c = runs["clip"]
    np.testing.assert_allclose(c.coords, coords, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.loss, losses, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(c.grad_norm, norms, rtol=1e-8, atol=1e-15)  # before clipping
    # a clipped step moves exactly lr * threshold
    for s in clipped:
        assert np.linalg.norm(c.coords[s + 1] - c.coords[s]) == pytest.approx(threshold, rel=1e-9)
    # the plain run of the same call is the unclipped loop
    np.testing.assert_allclose(
        runs["plain"].coords, pascanu_descent(4.8, -2.4, 20, 1.0, 10)[0], rtol=1e-10, atol=1e-12
    )


def test_rnn_axis_plane_moves_only_the_two_plane_parameters():
    cell = ls.get_cell("rnn")
    data = ls.make_data("latching", 10, n=16, noise=0.2, seed=3)
    center = torch.tensor([0.7, 0.4, -0.3, 0.2, 1.5, -0.1], dtype=torch.float64)
    plane = ls.axis_plane(
        cell, center, x="w_hh", y="b_hh", xrange=(-2.0, 2.0), yrange=(-2.0, 2.0), res=(3, 3)
    )
    out = ls.paths_for_lengths(cell, [data], plane, start=(0.4, 0.2), lr=0.5, steps=5, clip=0.05)
    assert out["plain"].coords.shape == out["clip"].coords.shape == (1, 6, 2)
    for name in ("plain", "clip"):
        np.testing.assert_array_equal(out[name].off, 0.0)
    # hand loop: autograd through nn.RNN, only w_hh (index 1) and b_hh (index 3) updated
    for name, clip in (("plain", None), ("clip", 0.05)):
        theta = center.numpy().copy()
        theta[[1, 3]] = (0.4, 0.2)
        for s in range(6):
            loss, g = torch_grad("rnn", theta, data.x, data.y)
            moving = g[[1, 3]]
            norm = float(np.linalg.norm(moving))
            assert out[name].coords[0, s] == pytest.approx(theta[[1, 3]], rel=1e-9, abs=1e-12)
            assert out[name].loss[0, s] == pytest.approx(loss, rel=1e-9)
            assert out[name].grad_norm[0, s] == pytest.approx(norm, rel=1e-8)
            if clip is not None and norm >= clip:
                moving = moving * (clip / norm)
            theta[[1, 3]] -= 0.5 * moving


def test_random_plane_path_projects_and_measures_off_plane_distance():
    cell = ls.get_cell("rnn")
    data = ls.make_data("relay", 8, n=12, noise=0.2, seed=4)
    center = torch.tensor([0.7, 0.4, -0.3, 0.2, 1.5, -0.1], dtype=torch.float64)
    plane = ls.random_plane(center, seed=5, norm="filter", res=(3, 3))
    runs = ls.descend(cell, data, plane, start=(0.3, -0.2), lr=1.0, steps=4, clip=0.1)
    o, d1, d2 = (v.numpy() for v in (plane.origin, plane.d1, plane.d2))
    for name, clip in (("plain", None), ("clip", 0.1)):
        p = runs[name]
        assert (p.off >= 0).all()
        assert p.off[0] == pytest.approx(0.0, abs=1e-12)
        assert p.off[-1] > 1e-6  # every parameter moves, so the path leaves the plane
        theta = o + 0.3 * d1 - 0.2 * d2
        for s in range(5):
            v = theta - o
            a, b = v @ d1 / (d1 @ d1), v @ d2 / (d2 @ d2)
            off = np.linalg.norm(v - a * d1 - b * d2)
            assert p.coords[s] == pytest.approx([a, b], rel=1e-9, abs=1e-12)
            assert p.off[s] == pytest.approx(off, rel=1e-7, abs=1e-12)
            _, g = torch_grad("rnn", theta, data.x, data.y)
            norm = np.linalg.norm(g)
            assert p.grad_norm[s] == pytest.approx(norm, rel=1e-8)
            if clip is not None and norm >= clip:
                g = g * (clip / norm)
            theta = theta - 1.0 * g


def test_paths_for_lengths_stacks_one_run_per_length():
    plane = pascanu_plane()
    datas = [ls.make_data("pascanu", n) for n in (3, 7)]
    out = ls.paths_for_lengths(PASCANU, datas, plane, start=(5.1, -2.2), lr=0.5, steps=3, clip=0.5)
    assert set(out) == {"plain", "clip"}
    for run in out.values():  # every part of a descent path is there, one row per length
        assert run.loss.shape == run.grad_norm.shape == run.off.shape == (2, 4)
    assert out["plain"].coords.shape == (2, 4, 2) and out["clip"].loss.shape == (2, 4)
    for k, n in enumerate((3, 7)):
        coords, losses, _, _ = pascanu_descent(5.1, -2.2, n, 0.5, 3, clip=0.5)
        np.testing.assert_allclose(out["clip"].coords[k], coords, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["clip"].loss[k], losses, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    "kwargs",
    [dict(lr=0.0), dict(lr=float("nan")), dict(steps=0), dict(steps=2.5), dict(clip=0.0), dict(clip=-1.0)],
)
def test_descend_rejects_bad_options(kwargs):
    c = ls.get_cell("pascanu")
    plane = ls.axis_plane(c, ls.init_params(c), res=(3, 3))
    opts = {**dict(start=(5.0, -2.5), lr=0.1, steps=3), **kwargs}
    with pytest.raises(ls.InputError):
        ls.descend(c, ls.make_data("pascanu", 5), plane, **opts)


# ---------------------------------------------------------------- Pascanu's wall

# The wall of E_50 at w = 5 lies at b ~ -2.61235; this start is 5e-5 below it, where
# ||dE/dtheta|| ~ 8e2 (at -2.6125, 1.5e-4 below, it is only ~30 and one lr-0.01 step stays inside).
WALL_START = (5.0, -2.6124)


def test_plain_path_is_thrown_off_the_wall_and_clipped_path_stays():
    plane = pascanu_plane()
    data = ls.make_data("pascanu", 50)
    runs = ls.descend(PASCANU, data, plane, start=WALL_START, lr=0.01, steps=5, clip=1.0)
    _, _, norms, _ = pascanu_descent(*WALL_START, 50, 0.01, 5)
    assert norms[0] > 100  # the reference agrees that the start is on the wall
    plain, clip = runs["plain"].coords, runs["clip"].coords
    inside = lambda c: 4.5 <= c[0] <= 5.5 and -3.0 <= c[1] <= -2.0
    assert not all(inside(c) for c in plain if np.isfinite(c).all())
    assert np.max(np.linalg.norm(clip - np.array(WALL_START), axis=1)) < 0.1
    step, edge = window_exit(plain, FIG6["xrange"], FIG6["yrange"])
    # the first step goes up and right, through the top edge b = -2, on the reference's line
    coords, _, _, _ = pascanu_descent(*WALL_START, 50, 0.01, 1)
    t = (FIG6["yrange"][1] - WALL_START[1]) / (coords[1, 1] - WALL_START[1])
    assert step == 1 and 0 < t < 1
    np.testing.assert_allclose(edge, coords[0] + t * (coords[1] - coords[0]), rtol=1e-9)
    assert edge[1] == FIG6["yrange"][1] and FIG6["xrange"][0] < edge[0] < FIG6["xrange"][1]
    assert window_exit(clip, FIG6["xrange"], FIG6["yrange"]) == (None, None)


# ---------------------------------------------------------------- window_exit


@pytest.mark.parametrize(
    ("coords", "step", "edge"),
    [
        ([[0.5, 0.5], [0.6, 0.6], [1.5, 0.6]], 2, [1.0, 0.6]),  # through the right edge
        ([[0.5, 0.5], [1.5, 2.5]], 1, [0.75, 1.0]),  # out past a corner: the top is crossed first
        ([[0.2, 0.5], [0.2, -0.5], [0.3, 0.5]], 1, [0.2, 0.0]),  # bottom; coming back does not count
        ([[0.9, 0.1], [0.5, 0.5], [-1.5, 0.5]], 2, [0.0, 0.5]),  # left edge
    ],
)
def test_window_exit_finds_the_step_and_the_edge_point(coords, step, edge):
    s, e = window_exit(np.array(coords), (0.0, 1.0), (0.0, 1.0))
    assert s == step
    np.testing.assert_allclose(e, edge, rtol=1e-12, atol=1e-12)


def test_window_exit_inside_on_the_border_or_stopped():
    inside = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0], [0.0, 1.0]])  # the border is inside
    assert window_exit(inside, (0.0, 1.0), (0.0, 1.0)) == (None, None)
    stopped = np.array([[0.5, 0.5], [0.6, 0.6], [np.nan, np.nan], [np.nan, np.nan]])
    assert window_exit(stopped, (0.0, 1.0), (0.0, 1.0)) == (None, None)
    assert window_exit(np.array([[0.5, 0.5]]), (0.0, 1.0), (0.0, 1.0)) == (None, None)


# ---------------------------------------------------------------- the command line


def test_cli_descent_paths_in_surface_file(tmp_path, capsys):
    args = [
        "--quiet",
        "--out",
        str(tmp_path),
        "--cell",
        "pascanu",
        "--len",
        "5,10",
        "--res",
        "3",
        "--dtype",
        "float64",
        "--start",
        "5.2,-2.4",
        "--lr",
        "0.3",
        "--steps",
        "8",
        "--clip",
        "0.2",
        "--name",
        "p",
    ]
    assert cli.main(args) == 0
    capsys.readouterr()
    surf = ls.load_surface(str(tmp_path / "p.npz"))
    assert surf.paths["plain"].coords.shape == surf.paths["clip"].coords.shape == (2, 9, 2)
    for k, length in enumerate((5, 10)):
        for name, clip in (("plain", None), ("clip", 0.2)):
            coords, losses, _, _ = pascanu_descent(5.2, -2.4, length, 0.3, 8, clip)
            np.testing.assert_allclose(surf.paths[name].coords[k], coords, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(surf.paths[name].loss[k], losses, rtol=1e-9, atol=1e-14)
    assert surf.config["start"] == [5.2, -2.4] and surf.config["clip"] == 0.2
    assert (tmp_path / "p.png").is_file() and (tmp_path / "p.html").is_file()


def test_cli_negative_start(tmp_path, capsys):
    args = [
        "--quiet",
        "--out",
        str(tmp_path),
        "--res",
        "3",
        "--len",
        "4",
        "--samples",
        "8",
        "--start",
        "-1,0.5",
        "--steps",
        "2",
        "--name",
        "r",
    ]
    assert cli.main(args) == 0
    capsys.readouterr()
    surf = ls.load_surface(str(tmp_path / "r.npz"))
    np.testing.assert_allclose(surf.paths["plain"].coords[0, 0], [-1.0, 0.5])


BASE = [
    "--cell",
    "pascanu",
    "--len",
    "50",
    "--xrange",
    "4.5:5.5",
    "--yrange",
    "-3:-2",
    "--res",
    "3,5",
    "--quiet",
]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--start", "1"], "'1'"),
        (["--start", "a,b"], "'a,b'"),
        (["--start", "1,2,3"], "'1,2,3'"),
        (["--start", "nan,1"], "'nan,1'"),
        (["--start", "9,0"], "--start 9,0 lies outside"),
        (["--start", "5,-2.6", "--lr", "0"], "--lr"),
        (["--start", "5,-2.6", "--lr", "-0.1"], "--lr"),
        (["--start", "5,-2.6", "--steps", "0"], "--steps"),
        (["--start", "5,-2.6", "--clip", "-1"], "--clip"),
        (["--start", "5,-2.6", "--clip", "0"], "--clip"),
        (["--threshold", "0"], "--threshold"),
        (["--threshold", "-2"], "--threshold"),
    ],
)
def test_cli_bad_path_options_exit_2_with_one_line(args, needle, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([*BASE, *args, "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1, cap.err
    assert cap.err.startswith("python -m landscape.slice: error:") and needle in cap.err, cap.err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--steps", "1.5"], "'1.5'"),
        (["--lr", "fast"], "'fast'"),
        (["--threshold", "x"], "'x'"),
        (["--scale", "cubic"], "'cubic'"),
        (["--threshold", "nan"], "'nan'"),
        (["--clip", "inf"], "'inf'"),
        (["--lr=-inf"], "'-inf'"),
        (["--noise", "NaN"], "'NaN'"),
    ],
)
def test_cli_unparsable_path_options_are_usage_errors(args, needle, tmp_path, capsys):
    """argparse's own errors: SystemExit(2), one line."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli.main([*BASE, *args, "--out", str(out)])
    assert exc.value.code == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1 and needle in cap.err, cap.err
    assert not out.exists()
