"""The interactive explorer (Plotly): one self-contained HTML page that works offline.

Left, a 3-D surface with its contours projected on the floor; right, the same length as a
heatmap. A slider and a play button step through the lengths; the z range and colour scale are
fixed over all lengths (linear or log10), so stepping shows the landscape change, not the scale.
Hovering either view names the two parameters and gives their values, the loss and, where the
surface has them, the accuracy and gradient norm. Descent and training paths are lines on the
surface and on the heatmap. A caption names the cell, task, plane and configuration.

Grids larger than ``max_points`` per axis are shown with a stride (the .npz keeps full
resolution), and the numbers are embedded as float32, so a 201 x 201 sweep stays a few MB
(float64 where a value would overflow float32, so no finite loss shows as infinite).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .._errors import InputError, check_type
from ..planes import window_exit
from ..surface import Surface
from ..words import MAX_DISPLAY, PATH_STYLES, Z_SCALES
from .plot import _length_colors
from .style import html_name

__all__ = ["interactive_figure", "caption_lines", "MAX_DISPLAY", "Z_SCALES"]

_CONFIG_KEYS = ("samples", "noise", "center", "norm", "seed", "dtype", "lr", "steps", "clip")


def caption_lines(surface: Surface) -> str:
    """The caption: cell, task, plane, then the rest of the configuration that shaped the surface."""
    c = surface.config
    rest = ", ".join(f"{k} {c[k]}" for k in _CONFIG_KEYS if k in c and c[k] not in (None, ""))
    return surface.caption() + (f"<br><span style='font-size:11px'>{rest}</span>" if rest else "")


def interactive_figure(
    surface: Surface, *, z_scale: str = "linear", max_points: int = MAX_DISPLAY
) -> go.Figure:
    """The explorer's figure: a surface and a heatmap per length as animation frames."""
    return _interactive_figure(check_type(surface, Surface, "surface"), z_scale, max_points)


def _z(loss: np.ndarray, z_scale: str) -> tuple[np.ndarray, np.ndarray, str, float, float]:
    """The loss with non-finite values as gaps, the heights drawn, their name and their range."""
    loss = np.where(np.isfinite(loss), loss, np.nan)
    if z_scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            z_all = np.where(loss > 0, np.log10(loss), np.nan)
        zname = "log10 loss"
    else:
        z_all, zname = loss, "loss"
    finite = z_all[np.isfinite(z_all)]
    zmin, zmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return loss, z_all, zname, zmin, zmin + 1.0 if zmax <= zmin else zmax


def _interactive_figure(surface: Surface, z_scale: str, max_points: int) -> go.Figure:
    """``interactive_figure`` past its check of the surface."""
    if z_scale not in Z_SCALES:
        raise InputError(f"unknown z scale {z_scale!r}; valid: {', '.join(Z_SCALES)}")
    if int(max_points) != max_points or max_points < 2:
        raise InputError(f"max_points {max_points} must be an integer >= 2")
    if surface.is_line:
        return _line_figure(surface, z_scale)
    ny, nx = surface.loss.shape[1:]
    sy, sx = math.ceil(ny / max_points), math.ceil(nx / max_points)  # display stride
    x, y = surface.x[::sx], surface.y[::sy]
    loss, z_all, zname, zmin, zmax = _z(surface.loss[:, ::sy, ::sx], z_scale)
    note = "" if (sx, sy) == (1, 1) else f" (shown at {len(y)} x {len(x)} of {ny} x {nx} points)"
    title = caption_lines(surface) + note
    maps = surface.maps()
    kinds = [n for n in PATH_STYLES if n in surface.paths]
    xlim, ylim = (surface.x[0], surface.x[-1]), (surface.y[0], surface.y[-1])
    exits = {n: [window_exit(c, xlim, ylim)[0] for c in surface.paths[n].coords] for n in kinds}
    xname, yname = html_name(surface.xlabel), html_name(surface.ylabel)
    # hover values beyond z ride in customdata; on a linear z axis the loss is z itself
    fields = ([("loss", loss)] if z_scale == "log" else []) + [
        (n, maps[n][:, ::sy, ::sx]) for n in ("accuracy", "grad_norm") if n in maps
    ]
    hover = _hover([name for name, _ in fields], z_scale, xname, yname)
    # float32 halves the page; where a value would overflow it, the page keeps float64 instead
    big = max(
        [
            float(np.nanmax(np.abs(np.where(np.isfinite(v), v, 0.0)), initial=0.0))
            for v in (z_all, *(v for _, v in fields))
        ]
    )
    page_dtype = np.float64 if big > float(np.finfo(np.float32).max) else np.float32

    def traces(k: int) -> list:
        length = int(surface.lengths[k])
        custom = (
            np.stack([v[k] for _, v in fields], axis=-1).astype(page_dtype)  # (ny', nx', m)
            if fields
            else None
        )
        z = z_all[k].astype(page_dtype)
        out = [
            go.Surface(
                x=x,
                y=y,
                z=z,
                customdata=custom,
                cmin=zmin,
                cmax=zmax,
                colorscale="Viridis",
                colorbar=dict(title=dict(text=zname), x=0.56, len=0.75),
                name=f"L = {length}",
                hovertemplate=hover + f"<extra>L = {length}</extra>",
                scene="scene",
                contours=dict(z=dict(show=True, usecolormap=True, project=dict(z=True))),
            ),
            go.Heatmap(
                x=x,
                y=y,
                z=z,
                customdata=custom,
                zmin=zmin,
                zmax=zmax,
                colorscale="Viridis",
                showscale=False,
                name=f"L = {length}",
                hovertemplate=hover + f"<extra>L = {length}</extra>",
                xaxis="x",
                yaxis="y",
            ),
        ]
        return out + _paths(surface, k, {n: exits[n][k] for n in kinds}, z_scale, xname, yname)

    names = [str(int(n)) for n in surface.lengths]
    frames = [traces(k) for k in range(len(names))]
    fig = go.Figure(data=frames[0])
    fig.frames = [
        go.Frame(name=name, data=data, traces=list(range(len(data))))
        for name, data in zip(names, frames, strict=True)
    ]
    _layout(
        fig,
        names,
        title=title,
        xname=xname,
        yname=yname,
        zname=zname,
        zrange=[zmin, zmax],
        xrange=[x[0], x[-1]],
        yrange=[y[0], y[-1]],
    )
    return fig


def _line_figure(surface: Surface, z_scale: str) -> go.Figure:
    """The explorer of a line surface (an interpolation): the loss against alpha at every length,
    the accuracy on a second axis below; the legend shows and hides lengths, the hover gives the
    point's alpha, loss and accuracy, and A and B are marked. Every point is shown (a line is
    light)."""
    maps = surface.maps()
    xname = html_name(surface.xlabel)
    acc = maps.get("accuracy")
    fig = go.Figure()
    n = len(surface.lengths)
    for k, (length, rgba) in enumerate(zip(surface.lengths, _length_colors(n), strict=True)):
        color = "rgb({}, {}, {})".format(*(int(255 * v) for v in rgba[:3]))  # the static figure's colours
        loss = np.where(np.isfinite(surface.loss[k, 0]), surface.loss[k, 0], np.nan)
        fig.add_trace(
            go.Scatter(
                x=surface.x,
                y=loss,
                mode="lines",
                name=f"L = {int(length)}",
                legendgroup=str(k),
                line=dict(color=color, width=2),
                hovertemplate=f"{xname} = %{{x:.4g}}<br>loss = %{{y:.5g}}<extra>L = {int(length)}</extra>",
                yaxis="y",
            )
        )
        if acc is not None:
            fig.add_trace(
                go.Scatter(
                    x=surface.x,
                    y=acc[k, 0],
                    mode="lines",
                    name=f"accuracy L = {int(length)}",
                    legendgroup=str(k),
                    showlegend=False,
                    yaxis="y2",
                    line=dict(color=color, width=1.5, dash="dash"),
                    hovertemplate=f"{xname} = %{{x:.4g}}<br>accuracy = %{{y:.4g}}"
                    f"<extra>L = {int(length)}</extra>",
                )
            )
    marks = surface.marks()
    fig.update_layout(
        title=dict(text=caption_lines(surface), x=0.01, y=0.98, yanchor="top"),
        xaxis=dict(
            title=dict(text=xname + (" (A to B)" if marks else "")), range=[surface.x[0], surface.x[-1]]
        ),
        yaxis=dict(
            domain=[0.4, 1.0] if acc is not None else [0.0, 1.0],
            title=dict(text="loss"),
            type="log" if z_scale == "log" else "linear",
        ),
        yaxis2=dict(domain=[0.0, 0.32], title=dict(text="accuracy"), range=[-0.02, 1.02], anchor="x"),
        shapes=[
            dict(
                type="line",
                xref="x",
                yref="paper",
                x0=a,
                x1=a,
                y0=0,
                y1=1,
                line=dict(color="gray", width=1, dash="dot"),
            )
            for _, a, _ in marks
        ],
        annotations=[
            dict(x=a, y=1.0, xref="x", yref="paper", text=f"<b>{name}</b>", showarrow=False, yanchor="bottom")
            for name, a, _ in marks
        ],
        margin=dict(l=10, r=10, t=80, b=10),
        height=560,
        hovermode="x unified",
    )
    return fig


def _hover(names: list[str], z_scale: str, xname: str, yname: str) -> str:
    """The hover text of a grid point: its coordinates, the loss, then ``names`` from customdata."""
    return (
        f"{xname} = %{{x:.4g}}<br>{yname} = %{{y:.4g}}"
        + ("" if z_scale == "log" else "<br>loss = %{z:.5g}")
        + "".join(f"<br>{name} = %{{customdata[{m}]:.5g}}" for m, name in enumerate(names))
    )


def _layout(
    fig: go.Figure,
    names: list[str],
    *,
    title: str,
    xname: str,
    yname: str,
    zname: str,
    zrange: list,
    xrange: list,
    yrange: list,
) -> None:
    """The page around the traces: the 3-D scene and the heatmap side by side, a slider over the
    lengths and Play/Pause buttons under them."""
    anim = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    steps = [dict(method="animate", label=n, args=[[n], anim]) for n in names]
    play = dict(
        frame=dict(duration=900, redraw=True), transition=dict(duration=0), fromcurrent=True, mode="immediate"
    )
    fig.update_layout(
        title=dict(text=title, x=0.01, y=0.98, yanchor="top"),
        scene=dict(
            domain=dict(x=[0.0, 0.55], y=[0.12, 1.0]),
            xaxis_title=xname,
            yaxis_title=yname,
            zaxis=dict(title=dict(text=zname), range=zrange),
        ),
        xaxis=dict(domain=[0.66, 1.0], title=dict(text=xname), range=xrange),
        yaxis=dict(domain=[0.22, 0.9], title=dict(text=yname), range=yrange),
        sliders=[
            dict(
                active=0,
                currentvalue=dict(prefix="sequence length L = "),
                steps=steps,
                x=0.1,
                len=0.9,
                y=0.0,
                pad=dict(t=10),
            )
        ],
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                x=0.0,
                y=0.0,
                xanchor="left",
                yanchor="top",
                pad=dict(t=10),
                showactive=False,
                buttons=[
                    dict(label="Play", method="animate", args=[None, play]),
                    dict(label="Pause", method="animate", args=[[None], anim]),
                ],
            )
        ],
        margin=dict(l=10, r=10, t=70, b=10),
        height=620,
        legend=dict(x=0.66, y=1.0, yanchor="bottom"),
    )


def _paths(surface: Surface, k: int, exits: dict, z_scale: str, xname: str, yname: str) -> list:
    """Descent paths at length k, on the surface (3-D, at their own loss) and on the heatmap,
    cut at ``exits`` (name -> the step where the path leaves the window, or None); ``xname``,
    ``yname`` name the axes in the page. Every length has the same traces, so frames line up."""
    out = []
    for name, step in exits.items():
        c, z = surface.paths[name].coords[k], surface.paths[name].loss[k]
        end = len(c) if step is None else step
        if z_scale == "log":
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(z > 0, np.log10(z), np.nan)
        label, color, dashed = PATH_STYLES[name]
        label += "" if step is None else f" (leaves the window at step {step})"
        line = dict(color=color, width=4, dash="dash" if dashed else "solid")
        tip = f"{name} step %{{customdata}}<br>{xname} = %{{x:.4g}}<br>{yname} = %{{y:.4g}}<extra></extra>"
        out.append(
            go.Scatter3d(
                x=c[:end, 0],
                y=c[:end, 1],
                z=z[:end],
                mode="lines+markers",
                name=label,
                line=line,
                marker=dict(size=2, color=color),
                legendgroup=name,
                customdata=np.arange(end),
                hovertemplate=tip,
                scene="scene",
            )
        )
        out.append(
            go.Scatter(
                x=c[:end, 0],
                y=c[:end, 1],
                mode="lines",
                line=line,
                legendgroup=name,
                showlegend=False,
                customdata=np.arange(end),
                hovertemplate=tip,
                name=label,
            )
        )
    return out
