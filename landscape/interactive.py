"""Interactive figures (Plotly): a 3-D surface per length with a slider, in one offline HTML file."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ._io import atomic_write
from .surface import Surface
from .trajectories import window_exit

__all__ = ["interactive_figure", "write_html", "MAX_DISPLAY"]

MAX_DISPLAY = 201  # points per axis shown in the page; the surface file keeps full resolution


def interactive_figure(surface: Surface, *, max_points: int = MAX_DISPLAY) -> go.Figure:
    """One go.Surface per length (the first shown) and a slider over lengths.

    The z axis and colour scale are fixed over all lengths so that stepping through lengths
    shows the surface change, not the scale. Grids larger than ``max_points`` per axis are
    shown with a stride, and the caption says so. Non-finite cells are gaps.
    """
    ny, nx = surface.loss.shape[1:]
    sy, sx = math.ceil(ny / max_points), math.ceil(nx / max_points)
    x, y = surface.x[::sx], surface.y[::sy]
    z_all = np.where(np.isfinite(surface.loss), surface.loss, np.nan)[:, ::sy, ::sx]
    finite = z_all[np.isfinite(z_all)]
    zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    fig = go.Figure()
    extras = [(name, surface.maps()[name]) for name in ("accuracy", "grad_norm") if name in surface.maps()]
    groups = []  # trace indices shown at each length
    for k, length in enumerate(surface.lengths):
        hover = (f"{surface.xlabel} = %{{x:.4g}}<br>{surface.ylabel} = %{{y:.4g}}"
                 f"<br>loss = %{{z:.5g}}")
        custom = None
        if extras:
            custom = np.stack([v[k, ::sy, ::sx] for _, v in extras], axis=-1)  # (ny', nx', m)
            hover += "".join(f"<br>{name} = %{{customdata[{m}]:.4g}}" for m, (name, _) in enumerate(extras))
        first = len(fig.data)
        fig.add_trace(go.Surface(
            x=x, y=y, z=z_all[k], customdata=custom, visible=(k == 0), cmin=zmin, cmax=zmax,
            colorscale="Viridis", colorbar=dict(title=dict(text="loss")), name=f"L = {int(length)}",
            hovertemplate=hover + f"<extra>L = {int(length)}</extra>",
            contours=dict(z=dict(show=True, usecolormap=True, project=dict(z=True))),
        ))
        _add_paths(fig, surface, k, visible=(k == 0))
        groups.append(range(first, len(fig.data)))
    steps = [dict(method="update", label=str(int(length)),
                  args=[{"visible": [i in groups[k] for i in range(len(fig.data))]}])
             for k, length in enumerate(surface.lengths)]
    title = surface.caption()
    if (sx, sy) != (1, 1):
        title += f" (shown at {len(y)} x {len(x)} of {ny} x {nx} points)"
    fig.update_layout(
        title=dict(text=title),
        sliders=[dict(active=0, currentvalue=dict(prefix="sequence length L = "), steps=steps,
                      pad=dict(t=30))],
        scene=dict(xaxis_title=surface.xlabel, yaxis_title=surface.ylabel,
                   zaxis=dict(title=dict(text="loss"), range=[zmin, zmax])),
        margin=dict(l=0, r=0, t=50, b=0),
    )
    return fig


PATH_COLORS = {"plain": "crimson", "clip": "white", "train": "orange"}


def _add_paths(fig: go.Figure, surface: Surface, k: int, *, visible: bool) -> None:
    """Descent paths as 3-D lines at their own loss, cut where they leave the window."""
    xlim, ylim = (surface.x[0], surface.x[-1]), (surface.y[0], surface.y[-1])
    for name, color in PATH_COLORS.items():
        coords = surface.extra.get(f"path_{name}")
        if coords is None:
            continue
        c, z = coords[k], surface.extra[f"path_{name}_loss"][k]
        step, _ = window_exit(c, xlim, ylim)
        end = len(c) if step is None else step
        label = f"{name} GD" + ("" if step is None else f" (leaves the window at step {step})")
        fig.add_trace(go.Scatter3d(
            x=c[:end, 0], y=c[:end, 1], z=z[:end], mode="lines+markers", visible=visible, name=label,
            line=dict(color=color, width=5, dash="solid" if name == "plain" else "dash"),
            marker=dict(size=2, color=color), customdata=np.arange(end),
            hovertemplate=f"{name} step %{{customdata}}<br>{surface.xlabel} = %{{x:.4g}}"
                          f"<br>{surface.ylabel} = %{{y:.4g}}<br>loss = %{{z:.5g}}<extra></extra>"))


def write_html(fig: go.Figure, path: str) -> str:
    """Write a self-contained page (plotly.js inlined, no CDN, no MathJax) atomically."""
    html = fig.to_html(include_plotlyjs=True, include_mathjax=False, full_html=True,
                       config={"displaylogo": False})
    atomic_write(path, lambda f: f.write(html.encode("utf-8")))
    return path
