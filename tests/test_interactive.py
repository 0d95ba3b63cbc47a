"""The plotly explorer of ``landscape/figures/interactive.py`` on hand-made surfaces: descent paths and
their frames, non-finite cells."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

import landscape as ls

STOPPED = {
    "plain": ls.PathRun(
        np.array([[[0.5, 0.5], [0.6, 0.6], [np.nan, np.nan]]] * 3), np.array([[0.1, 0.2, np.nan]] * 3)
    )
}  # stopped on a non-finite loss


def test_interactive_figure_has_path_traces_and_consistent_frames(path_surface):
    fig = ls.interactive_figure(path_surface)
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


def test_nonfinite_cells_and_a_stopped_path(nonfinite_surface, tmp_path):
    s = nonfinite_surface
    fig = ls.interactive_figure(s)
    assert [type(t).__name__ for t in fig.data] == ["Surface", "Heatmap"] and len(fig.frames) == 3
    page = ls.write_html(fig, str(tmp_path / "p.html"))
    with open(page, encoding="utf-8") as f:
        assert "<html>" in f.read(200)
    # a path that stopped on a non-finite loss is drawn up to where it stopped
    s = s.with_parts(paths=STOPPED)
    fig = ls.interactive_figure(s)
    for frame in fig.frames:
        (path,) = [t for t in frame.data if isinstance(t, go.Scatter3d)]
        xyz = np.array([path.x, path.y, path.z], dtype=float).T
        np.testing.assert_array_equal(xyz[np.isfinite(xyz).all(axis=1)], [[0.5, 0.5, 0.1], [0.6, 0.6, 0.2]])
