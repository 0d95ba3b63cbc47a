"""Static figures (matplotlib): take a Surface, return a Figure; never show or touch pyplot state."""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from ._errors import InputError
from ._io import atomic_write
from .surface import Surface

__all__ = ["plot_surface", "save_figure", "SCALES", "FORMATS"]

SCALES = ("linear", "log")
FORMATS = ("png", "pdf", "svg")


def _caption(surface: Surface) -> str:
    c = surface.config
    parts = [c.get("cell", ""), c.get("task", ""), f"{c['plane']} plane" if "plane" in c else ""]
    return ", ".join(p for p in parts if p)


def color_norm(values: np.ndarray, scale: str) -> Normalize:
    """One colour scale for all panels, from the finite values (positive ones for log)."""
    if scale not in SCALES:
        raise InputError(f"unknown colour scale {scale!r}; valid: {', '.join(SCALES)}")
    finite = values[np.isfinite(values)]
    if scale == "log":
        finite = finite[finite > 0]
    if finite.size == 0:
        return LogNorm(1e-3, 1.0) if scale == "log" else Normalize(0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-6 or 1e-6)
    return LogNorm(lo, hi) if scale == "log" else Normalize(lo, hi)


def plot_surface(surface: Surface, *, what: str = "loss", scale: str = "linear", ncols: int = 3,
                 cmap: str = "viridis") -> Figure:
    """A heatmap per length, on one shared colour scale, with labelled axes and a colourbar.

    Non-finite cells (overflow on a cliff) are left blank, never filled in, and counted in the
    panel's title.
    """
    values = surface.loss if what == "loss" else {"accuracy": surface.accuracy, **surface.extra}.get(what)
    if values is None:
        raise InputError(f"surface has no {what!r} array")
    n = len(surface.lengths)
    ncols = min(n, ncols)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.4 * ncols + 0.9, 2.9 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    norm = color_norm(values, scale)
    mesh = None
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.set_axis_off()
            continue
        z = values[k]
        bad = int(np.count_nonzero(~np.isfinite(z)))
        if scale == "log":
            bad_log = int(np.count_nonzero(np.isfinite(z) & (z <= 0)))
        mesh = ax.pcolormesh(surface.x, surface.y, np.ma.masked_invalid(z), shading="nearest",
                             cmap=cmap, norm=norm, rasterized=True)
        title = f"L = {int(surface.lengths[k])}"
        if bad:
            title += f" ({bad} non-finite)"
        if scale == "log" and bad_log:
            title += f" ({bad_log} <= 0 hidden)"
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(surface.xlabel)
        ax.set_ylabel(surface.ylabel)
    fig.colorbar(mesh, ax=axes, label=what + (" (log scale)" if scale == "log" else ""), shrink=0.9)
    if _caption(surface):
        fig.suptitle(_caption(surface), fontsize="medium")
    return fig


def save_figure(fig: Figure, path: str, *, dpi: int = 150) -> str:
    """Write a figure atomically in the format its extension names (png, pdf, svg)."""
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in FORMATS:
        raise InputError(f"unknown figure format {ext!r}; valid: {', '.join(FORMATS)}")
    atomic_write(path, lambda f: fig.savefig(f, format=ext, dpi=dpi))
    return path
