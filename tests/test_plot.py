"""The matplotlib renderers of ``landscape/figures/plot.py`` on hand-made surfaces: descent paths and their
window exits, the colour scales and what their titles count, non-finite cells."""

from __future__ import annotations

import io

import numpy as np
import pytest

import landscape as ls


def _draw(fig) -> None:
    fig.savefig(io.BytesIO(), format="png", dpi=40)


def panel_titles(fig, n: int) -> list[str]:
    return [ax.get_title() for ax in fig.axes[:n]]


# ---------------------------------------------------------------- descent paths


def test_plot_surface_draws_paths_and_marks_the_exit(path_surface):
    fig = ls.plot_facets(path_surface)
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


def test_plot_surface_without_paths_option_draws_none(path_surface):
    fig = ls.plot_facets(path_surface, paths=False)
    assert all(len(ax.lines) == 0 for ax in fig.axes[:2])


# ---------------------------------------------------------------- colour scales


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


# ---------------------------------------------------------------- non-finite cells


@pytest.mark.parametrize("scale", ["linear", "log", "clip"])
def test_nonfinite_cells_never_crash_plot_surface(scale, nonfinite_surface):
    s = nonfinite_surface
    fig = ls.plot_facets(s, scale=scale)
    _draw(fig)
    titles = panel_titles(fig, 3)
    assert "2 non-finite" in titles[0] and "1 non-finite" in titles[1] and "20 non-finite" in titles[2]
    _draw(ls.plot_facets(s, what="grad_norm", scale=scale))


def test_plot_cliffs_draws_the_metrics_of_nonfinite_panels_as_gaps(nonfinite_surface):
    e = nonfinite_surface.cliffs
    fig = ls.plot_cliffs(nonfinite_surface)
    _draw(fig)  # filterwarnings=error: a warning fails too
    (ax,) = fig.axes
    grad, jump = (line.get_ydata() for line in ax.lines)
    np.testing.assert_array_equal(grad, e.max_grad)
    np.testing.assert_array_equal(jump, e.max_jump)
    assert np.isfinite(jump[:2]).all() and np.isnan(jump[2])  # the lost panel is a gap, not a value
    assert ax.get_yscale() == "log"


def test_path_stopped_on_a_nonfinite_loss_is_drawn_up_to_the_stop(nonfinite_surface):
    s = nonfinite_surface.with_parts(
        paths={
            "plain": ls.PathRun(
                np.array([[[0.5, 0.5], [0.6, 0.6], [np.nan, np.nan]]] * 3), np.array([[0.1, 0.2, np.nan]] * 3)
            )
        }
    )
    fig = ls.plot_facets(s)
    _draw(fig)
    for ax in fig.axes[:3]:
        (line,) = [line for line in ax.lines if len(line.get_xydata()) > 1]
        xy = line.get_xydata()
        np.testing.assert_array_equal(xy[np.isfinite(xy).all(axis=1)], [[0.5, 0.5], [0.6, 0.6]])


def test_plot_cliffs_on_a_flat_sweep_gives_no_warning():
    s = ls.Surface(np.full((2, 3, 4), 0.3), np.arange(4.0), np.arange(3.0), np.array([5, 10]), "a", "b")
    s = s.with_parts(cliffs=ls.cliff_metrics(s))
    assert (s.cliffs.max_jump == 0).all()
    _draw(ls.plot_cliffs(s))  # filterwarnings=error turns the warning into a failure
