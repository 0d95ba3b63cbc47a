"""Surfaces (compute, save, load) and the renderers (matplotlib, plotly), NaN/Inf included."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import landscape as ls
from landscape.figures.interactive import interactive_figure


def _surface(nan_cells=(), inf_cells=(), accuracy=True, lengths=(5, 10), ny=4, nx=3):
    rng = np.random.default_rng(0)
    loss = rng.uniform(0.1, 2.0, size=(len(lengths), ny, nx))
    for k, i, j in nan_cells:
        loss[k, i, j] = np.nan
    for k, i, j, v in inf_cells:
        loss[k, i, j] = v
    acc = rng.uniform(0, 1, size=loss.shape) if accuracy else None
    return ls.Surface(
        loss,
        np.linspace(-1, 1, nx),
        np.linspace(0, 3, ny),
        np.array(lengths),
        "w_hh",
        "b_hh",
        {"cell": "rnn", "task": "latching", "plane": "axis", "seed": 3},
        acc,
    )


def test_compute_surface_stacks_lengths(ref):
    c = ls.get_cell("gru")
    center = ls.init_params(c, seed=2)
    plane = ls.axis_plane(c, center, res=(3, 4))
    datas = [ls.make_data("relay", n, n=16, seed=1) for n in (2, 5, 9)]
    surf = ls.compute_surface(c, plane, datas, dtype=torch.float64, progress=False, config={"seed": 1})
    assert surf.loss.shape == surf.accuracy.shape == (3, 4, 3)
    np.testing.assert_array_equal(surf.lengths, [2, 5, 9])
    assert surf.lengths.dtype == np.int64
    assert surf.config == {"seed": 1, "version": ls.__version__}
    assert (surf.xlabel, surf.ylabel) == ("w_hh_n", "b_hh_z")
    for k, d in enumerate(datas):
        for i, j in [(0, 0), (3, 2), (1, 2)]:
            theta = center.numpy().copy()
            theta[c.param_names.index("w_hh_n")] = plane.x[j]
            theta[c.param_names.index("b_hh_z")] = plane.y[i]
            loss, acc = ref.loss("gru", theta, d.x.numpy(), d.y.numpy())
            assert surf.loss[k, i, j] == pytest.approx(loss, rel=1e-10)
            assert surf.accuracy[k, i, j] == acc


def test_surface_rejects_wrong_shapes():
    with pytest.raises(ls.InputError):
        ls.Surface(np.zeros((1, 3, 4)), np.zeros(3), np.zeros(4), np.array([5]), "a", "b")
    with pytest.raises(ls.InputError):
        ls.Surface(
            np.zeros((1, 4, 3)),
            np.zeros(3),
            np.zeros(4),
            np.array([5]),
            "a",
            "b",
            accuracy=np.zeros((1, 3, 4)),
        )


@pytest.mark.parametrize("accuracy", [True, False])
def test_save_load_round_trip(tmp_path, accuracy):
    surf = _surface(nan_cells=[(0, 1, 1)], inf_cells=[(1, 0, 2, np.inf)], accuracy=accuracy)
    g = np.arange(24.0).reshape(2, 4, 3)
    surf = surf.with_parts(grads=ls.Grads(g, -g, 2 * g))
    path = str(tmp_path / "s.npz")
    assert surf.save(path) == path
    with np.load(path, allow_pickle=False) as f:  # readable without pickle
        assert set(f.files) >= {"loss", "x", "y", "lengths", "xlabel", "ylabel", "config"}
        assert json.loads(str(f["config"])) == surf.config
    back = ls.load_surface(path)
    np.testing.assert_array_equal(back.loss, surf.loss)  # NaN in the same places
    np.testing.assert_array_equal(back.x, surf.x)
    np.testing.assert_array_equal(back.y, surf.y)
    np.testing.assert_array_equal(back.lengths, surf.lengths)
    assert (back.xlabel, back.ylabel) == (surf.xlabel, surf.ylabel)
    assert back.config == surf.config
    if accuracy:
        np.testing.assert_array_equal(back.accuracy, surf.accuracy)
    else:
        assert back.accuracy is None
    for part in ("norm", "x", "y"):
        np.testing.assert_array_equal(getattr(back.grads, part), getattr(surf.grads, part))
    assert back.paths == {} and back.cliffs is None and back.trained_centers is None
    assert [p.name for p in tmp_path.iterdir()] == ["s.npz"]  # no temporary left


def test_load_surface_rejects_broken_files(tmp_path):
    good = _surface()
    good.save(str(tmp_path / "good.npz"))
    arrays = dict(np.load(tmp_path / "good.npz"))
    cases = {
        "junk": None,
        "nokeys": {k: v for k, v in arrays.items() if k not in ("loss", "lengths")},
        "badjson": {**arrays, "config": np.array("{not json")},
        "badshape": {**arrays, "x": np.zeros(7)},
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.npz"
        if content is None:
            path.write_bytes(np.random.default_rng(1).bytes(500))
        else:
            np.savez(path, **content)
        with pytest.raises(ls.InputError, match="shape" if name == "badshape" else name):
            ls.load_surface(str(path))


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_plot_surface_counts_non_finite_cells():
    surf = _surface(nan_cells=[(0, 0, 0), (0, 3, 2)], inf_cells=[(0, 1, 1, np.inf), (1, 2, 0, -np.inf)])
    fig = ls.plot_facets(surf)
    assert isinstance(fig, Figure)
    titles = _titles(fig)
    assert titles[0] == "L = 5 (3 non-finite)"
    assert titles[1] == "L = 10 (1 non-finite)"
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert panels[0].get_xlabel() == "$w_{hh}$" and panels[0].get_ylabel() == "$b_{hh}$"


def test_plot_surface_finite_titles_and_log_scale():
    surf = _surface(lengths=(3, 6, 9, 12))
    surf.loss[2, 0, 0] = 0.0  # hidden on a log scale
    fig = ls.plot_facets(surf, scale="log", ncols=3)
    assert _titles(fig) == ["L = 3", "L = 6", "L = 9 (1 <= 0 hidden)", "L = 12"]
    assert "rnn" in fig._suptitle.get_text()


def test_plot_surface_all_non_finite():
    surf = _surface(lengths=(4,))
    surf.loss[:] = np.nan
    surf.loss[0, 0, 0] = np.inf
    for scale in ("linear", "log"):
        fig = ls.plot_facets(surf, scale=scale)
        assert _titles(fig) == ["L = 4 (12 non-finite)"]


def test_plot_surface_rejects_bad_options():
    with pytest.raises(ls.InputError, match="scale"):
        ls.plot_facets(_surface(), scale="cubic")
    with pytest.raises(ls.InputError, match="accuracy"):
        ls.plot_facets(_surface(accuracy=False), what="accuracy")


@pytest.mark.slow
def test_renderers_write_files_with_non_finite_values(tmp_path):
    surf = _surface(nan_cells=[(0, 0, 0)], inf_cells=[(1, 3, 2, np.inf), (1, 0, 1, -np.inf)])
    png = ls.save_figure(ls.plot_facets(surf), str(tmp_path / "a.png"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ls.save_figure(ls.plot_facets(surf), str(tmp_path / "a.svg"))
    with pytest.raises(ls.InputError, match="bmp"):
        ls.save_figure(ls.plot_facets(surf), str(tmp_path / "a.bmp"))
    page = ls.interactive_figure(surf)
    html = Path(ls.write_html(page, str(tmp_path / "a.html"))).read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, flags=re.I)
    assert "plotly.js v" in html  # the bundle is inlined
    call = html[html.rindex("Plotly.newPlot(") :]  # the figure: valid JSON, no bare NaN/Infinity
    assert "NaN" not in call and "Infinity" not in call


def test_interactive_figure_traces_and_gaps():
    surf = _surface(nan_cells=[(0, 2, 1)], inf_cells=[(1, 3, 0, np.inf)])
    fig = interactive_figure(surf)
    assert [type(t).__name__ for t in fig.data] == ["Surface", "Heatmap"]
    z0, z1 = (np.asarray(f.data[0].z, dtype=float) for f in fig.frames)
    assert z0.shape == (4, 3) and np.isnan(z0[2, 1]) and np.isnan(z1[3, 0])
    np.testing.assert_array_equal(np.asarray(fig.frames[1].data[1].z, dtype=float), z1)  # heatmap = surface
    finite = surf.loss[np.isfinite(surf.loss)]
    for f in fig.frames:  # one fixed colour and z range for every length
        assert f.data[0].cmin == finite.min() and f.data[0].cmax == finite.max()
        assert f.data[1].zmin == finite.min() and f.data[1].zmax == finite.max()
    assert tuple(fig.layout.scene.zaxis.range) == (finite.min(), finite.max())
    assert [s.label for s in fig.layout.sliders[0].steps] == ["5", "10"]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]


def test_interactive_figure_strides_large_grids():
    surf = _surface(lengths=(5,), ny=9, nx=7)
    fig = interactive_figure(surf, max_points=4)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (3, 4)
    np.testing.assert_array_equal(z, surf.loss[0, ::3, ::2].astype(np.float32))
    assert "shown at" in fig.layout.title.text
