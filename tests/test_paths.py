"""Descent paths (plain and clipped), window exits, their drawing, colour scales, and bad CLI input.

References are hand-written: Algorithm 1 of Pascanu et al. on plain numbers, gradient-descent
loops on the closed-form gradient of Pascanu's map, and loops using autograd through torch.nn.
"""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

import landscape as ls
import landscape.slice as cli
from landscape.trajectories import window_exit

from references import pascanu_descent

# ---------------------------------------------------------------- independent references


RNN_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def rnn_grad(theta: np.ndarray, data) -> tuple[float, np.ndarray]:
    """Loss and gradient of an nn.RNN(1, 1) + nn.Linear(1, 1) in float64, in state_dict order."""
    rnn = nn.RNN(1, 1, batch_first=True).double()
    head = nn.Linear(1, 1).double()
    t = [torch.tensor([v], dtype=torch.float64) for v in theta]
    rnn.load_state_dict({"weight_ih_l0": t[0][:, None], "weight_hh_l0": t[1][:, None],
                         "bias_ih_l0": t[2], "bias_hh_l0": t[3]})
    head.load_state_dict({"weight": t[4][:, None], "bias": t[5]})
    out, _ = rnn(data.x.to(torch.float64)[:, :, None])
    z = head(out[:, -1, :])[:, 0]
    y = data.y.to(torch.float64)
    loss = (torch.nn.functional.softplus(z) - y * z).mean()
    loss.backward()
    params = dict(rnn.named_parameters())
    g = torch.cat([params[k].grad.reshape(-1) for k in RNN_KEYS] + [head.weight.grad.reshape(-1),
                                                                  head.bias.grad.reshape(-1)])
    return float(loss.detach()), g.numpy()


PASCANU = ls.get_cell("pascanu")
FIG6 = dict(xrange=(4.5, 5.5), yrange=(-3.0, -2.0))  # Pascanu et al.'s Figure 6 window


def pascanu_plane(res=(3, 3)):
    return ls.axis_plane(PASCANU, torch.tensor([5.0, -2.5], dtype=torch.float64), x="w", y="b",
                         res=res, **FIG6)


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


def test_plain_descent_on_pascanu_matches_hand_loop():
    plane = pascanu_plane()
    data = ls.make_data("pascanu", 20)
    runs = ls.descend(PASCANU, data, plane, start=(4.8, -2.4), lr=1.0, steps=10)
    assert set(runs) == {"plain"}
    coords, losses, norms, _ = pascanu_descent(4.8, -2.4, 20, 1.0, 10)
    p = runs["plain"]
    assert p.coords.shape == (11, 2) and p.loss.shape == p.grad_norm.shape == p.off.shape == (11,)
    np.testing.assert_allclose(p.coords, coords, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p.loss, losses, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(p.grad_norm, norms, rtol=1e-8, atol=1e-15)
    np.testing.assert_array_equal(p.off, 0.0)
    assert not np.allclose(coords[-1], coords[0])  # it did move


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
    np.testing.assert_allclose(runs["plain"].coords, pascanu_descent(4.8, -2.4, 20, 1.0, 10)[0],
                               rtol=1e-10, atol=1e-12)


def test_rnn_axis_plane_moves_only_the_two_plane_parameters():
    cell = ls.get_cell("rnn")
    data = ls.make_data("latching", 10, n=16, noise=0.2, seed=3)
    center = torch.tensor([0.7, 0.4, -0.3, 0.2, 1.5, -0.1], dtype=torch.float64)
    plane = ls.axis_plane(cell, center, x="w_hh", y="b_hh", xrange=(-2.0, 2.0), yrange=(-2.0, 2.0),
                          res=(3, 3))
    out = ls.paths_for_lengths(cell, [data], plane, start=(0.4, 0.2), lr=0.5, steps=5, clip=0.05)
    assert out["path_plain"].shape == out["path_clip"].shape == (1, 6, 2)
    for name in ("plain", "clip"):
        np.testing.assert_array_equal(out[f"path_{name}_off"], 0.0)
    # hand loop: autograd through nn.RNN, only w_hh (index 1) and b_hh (index 3) updated
    for name, clip in (("plain", None), ("clip", 0.05)):
        theta = center.numpy().copy()
        theta[[1, 3]] = (0.4, 0.2)
        for s in range(6):
            loss, g = rnn_grad(theta, data)
            moving = g[[1, 3]]
            norm = float(np.linalg.norm(moving))
            assert out[f"path_{name}"][0, s] == pytest.approx(theta[[1, 3]], rel=1e-9, abs=1e-12)
            assert out[f"path_{name}_loss"][0, s] == pytest.approx(loss, rel=1e-9)
            assert out[f"path_{name}_grad_norm"][0, s] == pytest.approx(norm, rel=1e-8)
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
            _, g = rnn_grad(theta, data)
            norm = np.linalg.norm(g)
            assert p.grad_norm[s] == pytest.approx(norm, rel=1e-8)
            if clip is not None and norm >= clip:
                g = g * (clip / norm)
            theta = theta - 1.0 * g


def test_paths_for_lengths_stacks_one_run_per_length():
    plane = pascanu_plane()
    datas = [ls.make_data("pascanu", n) for n in (3, 7)]
    out = ls.paths_for_lengths(PASCANU, datas, plane, start=(5.1, -2.2), lr=0.5, steps=3, clip=0.5)
    fields = ("", "_loss", "_grad_norm", "_off")
    assert set(out) == {f"path_{n}{f}" for n in ("plain", "clip") for f in fields}
    assert out["path_plain"].shape == (2, 4, 2) and out["path_clip_loss"].shape == (2, 4)
    for k, n in enumerate((3, 7)):
        coords, losses, _, _ = pascanu_descent(5.1, -2.2, n, 0.5, 3, clip=0.5)
        np.testing.assert_allclose(out["path_clip"][k], coords, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(out["path_clip_loss"][k], losses, rtol=1e-9, atol=1e-15)


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
    assert step == 1
    assert edge[0] == pytest.approx(4.5) or edge[0] == pytest.approx(5.5) or \
        edge[1] == pytest.approx(-3.0) or edge[1] == pytest.approx(-2.0)
    assert window_exit(clip, FIG6["xrange"], FIG6["yrange"]) == (None, None)


# ---------------------------------------------------------------- window_exit


@pytest.mark.parametrize(("coords", "step", "edge"), [
    ([[0.5, 0.5], [0.6, 0.6], [1.5, 0.6]], 2, [1.0, 0.6]),  # through the right edge
    ([[0.5, 0.5], [1.5, 2.5]], 1, [0.75, 1.0]),  # out past a corner: the top is crossed first
    ([[0.2, 0.5], [0.2, -0.5], [0.3, 0.5]], 1, [0.2, 0.0]),  # bottom; coming back does not count
    ([[0.9, 0.1], [0.5, 0.5], [-1.5, 0.5]], 2, [0.0, 0.5]),  # left edge
])
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


# ---------------------------------------------------------------- renderers


def path_surface() -> ls.Surface:
    """Two lengths; the plain path leaves the window at step 2 for the second only."""
    x, y = np.linspace(0.0, 1.0, 6), np.linspace(0.0, 1.0, 5)
    loss = np.random.default_rng(0).random((2, 5, 6))
    plain = np.array([[[0.2, 0.2], [0.3, 0.3], [0.4, 0.4], [0.5, 0.5]],
                      [[0.2, 0.2], [0.6, 0.5], [1.4, 0.7], [3.0, 0.9]]])
    clip = np.array([[[0.2, 0.2], [0.25, 0.25], [0.3, 0.3], [0.35, 0.35]]] * 2)
    extra = {"path_plain": plain, "path_clip": clip,
             "path_plain_loss": np.full((2, 4), 0.5), "path_clip_loss": np.full((2, 4), 0.4),
             "path_plain_grad_norm": np.ones((2, 4)), "path_clip_grad_norm": np.ones((2, 4)),
             "path_plain_off": np.zeros((2, 4)), "path_clip_off": np.zeros((2, 4))}
    return ls.Surface(loss, x, y, np.array([10, 50]), "w", "b", {"cell": "pascanu"}, None, extra)


def _draw(fig) -> None:
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def test_plot_surface_draws_paths_and_marks_the_exit():
    fig = ls.plot_facets(path_surface())
    _draw(fig)
    ax0, ax1 = fig.axes[:2]
    assert not any(line.get_marker() == "X" for line in ax0.lines)
    xs = [line for line in ax1.lines if line.get_marker() == "X"]
    assert len(xs) == 1
    np.testing.assert_allclose(np.ravel(xs[0].get_xydata()), [1.0, 0.6], atol=1e-12)  # on the edge
    texts0 = [t.get_text() for t in ax0.get_legend().get_texts()]
    texts1 = [t.get_text() for t in ax1.get_legend().get_texts()]
    assert not any("leaves the window" in t for t in texts0)
    assert any("leaves the window" in t and "2" in t for t in texts1)
    # the plain line is cut at the edge: nothing drawn outside the window
    long_lines = [line for line in ax1.lines if len(line.get_xydata()) > 1]
    assert len(long_lines) == 2
    for line in long_lines:
        assert np.nanmax(line.get_xydata()[:, 0]) <= 1.0 + 1e-12


def test_plot_surface_without_paths_option_draws_none():
    fig = ls.plot_facets(path_surface(), paths=False)
    assert all(len(ax.lines) == 0 for ax in fig.axes[:2])


def test_interactive_figure_has_path_traces_and_consistent_frames():
    fig = ls.interactive_figure(path_surface())
    kinds = [type(t).__name__ for t in fig.data]
    assert kinds == ["Surface", "Heatmap", "Scatter3d", "Scatter", "Scatter3d", "Scatter"]  # two paths
    steps = fig.layout.sliders[0].steps
    assert len(steps) == len(fig.frames) == 2
    for step, frame in zip(steps, fig.frames, strict=True):
        assert step.method == "animate" and list(step.args[0]) == [frame.name]
        assert [type(t).__name__ for t in frame.data] == kinds  # every frame updates the same traces
        assert list(frame.traces) == list(range(len(kinds)))
    # the exiting plain path (second length) is cut where it leaves, in 3-D and on the heatmap
    exiting = [t for t in fig.frames[1].data if "leaves the window" in (t.name or "")]
    assert len(exiting) == 2 and all(len(t.x) == 2 for t in exiting)
    assert not any("leaves the window" in (t.name or "") for t in fig.frames[0].data)


# ---------------------------------------------------------------- colour scales


def panel_titles(fig, n: int) -> list[str]:
    return [ax.get_title() for ax in fig.axes[:n]]


def test_clip_scale_counts_clipped_cells_in_titles():
    rng = np.random.default_rng(1)
    loss = rng.random((2, 10, 10))
    loss[0, 3, 3] = 1e6
    loss[1, 0, 0] = -1e6
    s = ls.Surface(loss, np.arange(10.0), np.arange(10.0), np.array([1, 2]), "a", "b")
    fig = ls.plot_facets(s, scale="clip")
    _draw(fig)
    # the documented colour range: 1st to 99th percentile of all finite values
    lo, hi = np.percentile(loss, [1, 99])
    for k, title in enumerate(panel_titles(fig, 2)):
        n_out = int(np.count_nonzero((loss[k] < lo) | (loss[k] > hi)))
        assert n_out >= 1
        assert f"{n_out} clipped" in title
    lin = ls.plot_facets(s, scale="linear")
    assert not any("clipped" in t for t in panel_titles(lin, 2))


def test_log_scale_says_how_many_cells_are_hidden():
    loss = np.full((2, 3, 4), 0.5)
    loss[0, 0, :3] = [0.0, -1.0, -0.0]
    s = ls.Surface(loss, np.arange(4.0), np.arange(3.0), np.array([5, 6]), "a", "b")
    fig = ls.plot_facets(s, scale="log")
    _draw(fig)
    t0, t1 = panel_titles(fig, 2)
    assert "3 <= 0 hidden" in t0
    assert "hidden" not in t1


def test_unknown_scale_is_an_input_error():
    s = ls.Surface(np.ones((1, 2, 2)), np.arange(2.0), np.arange(2.0), np.array([1]), "a", "b")
    with pytest.raises(ls.InputError, match="scale"):
        ls.plot_facets(s, scale="cubic")


def nonfinite_surface() -> ls.Surface:
    loss = np.random.default_rng(2).random((3, 4, 5))
    loss[0, 1, 1] = np.nan
    loss[0, 3, 4] = np.inf
    loss[1, 0, 0] = -np.inf
    loss[1, 2, 2] = 0.0
    loss[2] = np.nan  # a whole panel lost
    gn = np.abs(loss) + 1.0
    gn[0, 2, 3] = np.inf
    s = ls.Surface(loss, np.linspace(0, 1, 5), np.linspace(0, 1, 4), np.array([1, 2, 3]), "a", "b",
                   {}, None, {"grad_norm": gn})
    s.extra.update(ls.cliff_metrics(s))
    return s


@pytest.mark.parametrize("scale", ["linear", "log", "clip"])
def test_nonfinite_cells_never_crash_plot_surface(scale):
    s = nonfinite_surface()
    fig = ls.plot_facets(s, scale=scale)
    _draw(fig)
    titles = panel_titles(fig, 3)
    assert "2 non-finite" in titles[0] and "1 non-finite" in titles[1] and "20 non-finite" in titles[2]
    _draw(ls.plot_facets(s, what="grad_norm", scale=scale))


def test_nonfinite_cells_never_crash_plot_cliffs_or_interactive(tmp_path):
    s = nonfinite_surface()
    _draw(ls.plot_cliffs(s))
    fig = ls.interactive_figure(s)
    assert len(fig.data) == 2 and len(fig.frames) == 3
    page = ls.write_html(fig, str(tmp_path / "p.html"))
    with open(page, encoding="utf-8") as f:
        assert "<html>" in f.read(200)
    # a path that stopped on a non-finite loss is drawn up to where it stopped
    s.extra.update({"path_plain": np.array([[[0.5, 0.5], [0.6, 0.6], [np.nan, np.nan]]] * 3),
                    "path_plain_loss": np.array([[0.1, 0.2, np.nan]] * 3)})
    _draw(ls.plot_facets(s))
    fig = ls.interactive_figure(s)
    assert all(sum(isinstance(t, go.Scatter3d) for t in f.data) == 1 for f in fig.frames)


def test_plot_cliffs_on_a_flat_sweep_gives_no_warning():
    s = ls.Surface(np.full((2, 3, 4), 0.3), np.arange(4.0), np.arange(3.0), np.array([5, 10]), "a", "b")
    s.extra.update(ls.cliff_metrics(s))
    assert (s.extra["cliff_max_jump"] == 0).all()
    _draw(ls.plot_cliffs(s))  # filterwarnings=error turns the warning into a failure


# ---------------------------------------------------------------- CLI paths and bad input

BASE = ["--cell", "pascanu", "--len", "50", "--xrange", "4.5:5.5", "--yrange", "-3:-2", "--res", "3,5",
        "--quiet"]


def test_cli_start_writes_both_paths(tmp_path, capsys):
    out = tmp_path / "out"
    args = [*BASE, "--start", "5.0,-2.6124", "--lr", "0.01", "--steps", "5", "--clip", "1.0",
            "--dtype", "float64", "--name", "p", "--out", str(out)]
    assert cli.main(args) == 0
    capsys.readouterr()
    with np.load(out / "p.npz", allow_pickle=False) as f:
        assert f["path_plain"].shape == f["path_clip"].shape == (1, 6, 2)
        coords, _, _, _ = pascanu_descent(*WALL_START, 50, 0.01, 5)
        np.testing.assert_allclose(f["path_plain"][0], coords, rtol=1e-7, atol=1e-10)
        clipped, _, _, _ = pascanu_descent(*WALL_START, 50, 0.01, 5, clip=1.0)
        np.testing.assert_allclose(f["path_clip"][0], clipped, rtol=1e-7, atol=1e-10)
    assert (out / "p.png").exists() and (out / "p.html").exists()


@pytest.mark.parametrize("bad", [
    ["--start", "1"],
    ["--start", "a,b"],
    ["--start", "1,2,3"],
    ["--start", "nan,1"],
    ["--start", "5,-2.6", "--lr", "0"],
    ["--start", "5,-2.6", "--lr", "-0.1"],
    ["--start", "5,-2.6", "--steps", "0"],
    ["--start", "5,-2.6", "--clip", "-1"],
    ["--start", "5,-2.6", "--clip", "0"],
    ["--threshold", "0"],
    ["--threshold", "-2"],
    ["--threshold", "nan"],
])
def test_cli_bad_path_options_exit_2_with_one_line(bad, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([*BASE, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m landscape.slice: error:")
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("bad", [["--steps", "1.5"], ["--lr", "fast"], ["--threshold", "x"]])
def test_cli_unparsable_numbers_are_usage_errors(bad, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        cli.main([*BASE, *bad, "--out", str(out)])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists() or not any(out.iterdir())
