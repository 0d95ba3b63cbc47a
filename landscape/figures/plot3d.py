"""The 3-D renderer: one length as a surface over the plane, its contours projected on the floor."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._errors import check_type
from ..surface import Surface
from .plot import _length_index, _panel_note, _title, _two_d, _values, color_norm
from .style import math_name

__all__ = ["plot_surface3d"]


def plot_surface3d(
    surface: Surface,
    *,
    length: int | None = None,
    what: str = "loss",
    scale: str = "linear",
    cmap: str = "viridis",
    width: float | None = None,
    title: bool = True,
    max_points: int = 81,
    elev: float = 28.0,
    azim: float = -130.0,
) -> Figure:
    """One length as a 3-D surface with its contours projected on the floor.

    ``scale`` log draws log10 of the values; the grid is drawn at most ``max_points`` per axis
    (a stride, stated in the title), since a vector file of a denser mesh is heavy and no sharper.
    """
    check_type(surface, Surface, "surface")
    _two_d(surface, "3-D surface")
    k = _length_index(surface, length)
    w = width or 5.5
    fig = Figure(figsize=(w, w * 0.85), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    z = _values(surface, what)[k]
    norm = color_norm(z, scale)
    ny, nx = z.shape
    sy, sx = math.ceil(ny / max_points), math.ceil(nx / max_points)
    zz = z[::sy, ::sx].astype(float)
    if scale == "log":
        with np.errstate(divide="ignore", invalid="ignore"):
            zz = np.where(zz > 0, np.log10(zz), np.nan)
        lo, hi = math.log10(norm.vmin), math.log10(norm.vmax)
    else:
        lo, hi = norm.vmin, norm.vmax
        if scale == "clip":
            zz = np.clip(zz, lo, hi)
    X, Y = np.meshgrid(surface.x[::sx], surface.y[::sy])
    zm = np.ma.masked_invalid(zz)
    ax.plot_surface(
        X,
        Y,
        zm,
        cmap=cmap,
        vmin=lo,
        vmax=hi,
        rstride=1,
        cstride=1,
        linewidth=0,
        antialiased=False,
        rasterized=True,
    )
    floor = lo - 0.15 * (hi - lo)
    if np.isfinite(zz).sum() > 3:
        ax.contour(X, Y, zm, zdir="z", offset=floor, cmap=cmap, levels=10, linewidths=0.6)
    ax.set_zlim(floor, hi)
    ax.set_xlabel(math_name(surface.xlabel))
    ax.set_ylabel(math_name(surface.ylabel))
    ax.set_zlabel({"log": f"log10 {what}"}.get(scale, what))
    for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
        axis.set_major_locator(MaxNLocator(4))
    ax.view_init(elev=elev, azim=azim)
    ax.set_box_aspect(None, zoom=0.82)  # room inside the axes for the tick and axis labels
    stride = "" if (sx, sy) == (1, 1) else f", every {max(sx, sy)}th point"
    ax.set_title(f"L = {int(surface.lengths[k])}" + _panel_note(z, norm, scale) + stride)
    _title(surface, fig, title)
    return fig
