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
from .trajectories import window_exit

__all__ = ["plot_surface", "plot_cliffs", "save_figure", "color_norm", "SCALES", "FORMATS"]

SCALES = ("linear", "log", "clip")
FORMATS = ("png", "pdf", "svg")
PATH_STYLES = {"plain": dict(color="tab:red", ls="-", label="plain GD"),
               "clip": dict(color="white", ls="--", label="clipped GD"),
               "train": dict(color="tab:orange", ls="-", label="training path")}


def color_norm(values: np.ndarray, scale: str, *, clip: tuple[float, float] = (1.0, 99.0)) -> Normalize:
    """One colour scale for all panels, from the finite values (positive ones for log).

    ``clip`` scale: percentiles ``clip`` of the finite values bound the colours; cells beyond
    them saturate and are counted by the caller.
    """
    if scale not in SCALES:
        raise InputError(f"unknown colour scale {scale!r}; valid: {', '.join(SCALES)}")
    finite = values[np.isfinite(values)]
    if scale == "log":
        finite = finite[finite > 0]
    if finite.size == 0:
        return LogNorm(1e-3, 1.0) if scale == "log" else Normalize(0.0, 1.0)
    if scale == "clip":
        lo, hi = (float(v) for v in np.percentile(finite, clip))
    else:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-6 or 1e-6)
    return LogNorm(lo, hi) if scale == "log" else Normalize(lo, hi)


def _panel_note(z: np.ndarray, norm: Normalize, scale: str) -> str:
    """What the colours do not show: non-finite cells, and cells outside the colour range."""
    finite = np.isfinite(z)
    notes = []
    if (~finite).any():
        notes.append(f"{np.count_nonzero(~finite)} non-finite")
    if scale == "log" and (finite & (z <= 0)).any():
        notes.append(f"{np.count_nonzero(finite & (z <= 0))} <= 0 hidden")
    if scale == "clip":
        out = np.count_nonzero(finite & ((z < norm.vmin) | (z > norm.vmax)))
        notes.append(f"{out} clipped")
    return f" ({', '.join(notes)})" if notes else ""


def _draw_paths(ax, surface: Surface, k: int) -> None:
    xlim, ylim = (surface.x[0], surface.x[-1]), (surface.y[0], surface.y[-1])
    for name, style in PATH_STYLES.items():
        coords = surface.extra.get(f"path_{name}")
        if coords is None:
            continue
        c = coords[k]  # (S + 1, 2)
        step, edge = window_exit(c, xlim, ylim)
        shown = c[:step] if step is None else np.vstack([c[:step], edge])
        label = style["label"] + ("" if step is None else f" (leaves the window at step {step})")
        ax.plot(shown[:, 0], shown[:, 1], color=style["color"], ls=style["ls"], lw=1.3, label=label)
        ax.plot(*c[0], "o", color=style["color"], ms=4)
        if step is not None:
            ax.plot(*edge, marker="X", color=style["color"], ms=8, mec="black", mew=0.5)
    if any(f"path_{n}" in surface.extra for n in PATH_STYLES):
        ax.legend(fontsize="x-small", loc="upper right", framealpha=0.6)


def plot_surface(surface: Surface, *, what: str = "loss", scale: str = "linear", ncols: int = 3,
                 cmap: str = "viridis", paths: bool = True) -> Figure:
    """A heatmap per length, on one shared colour scale, with labelled axes and a colourbar.

    Non-finite cells (overflow on a cliff) are left blank, never filled in, and counted in the
    panel's title, as are cells a clipped scale saturates. Descent paths in the surface are drawn
    on top; a path that leaves the window is cut at the edge and marked with an X there.
    """
    maps = surface.maps()
    if what not in maps:
        raise InputError(f"surface has no {what!r} map; valid: {', '.join(maps)}")
    values = maps[what]
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
        mesh = ax.pcolormesh(surface.x, surface.y, np.ma.masked_invalid(z), shading="nearest",
                             cmap=cmap, norm=norm, rasterized=True)
        if paths:
            _draw_paths(ax, surface, k)
        ax.set_xlim(surface.x[0], surface.x[-1])
        ax.set_ylim(surface.y[0], surface.y[-1])
        ax.set_title(f"L = {int(surface.lengths[k])}" + _panel_note(z, norm, scale), fontsize="medium")
        ax.set_xlabel(surface.xlabel)
        ax.set_ylabel(surface.ylabel)
    extend = "both" if scale == "clip" else "neither"
    fig.colorbar(mesh, ax=axes, label=what + {"log": " (log scale)", "clip": " (clipped)"}.get(scale, ""),
                 shrink=0.9, extend=extend)
    if surface.caption():
        fig.suptitle(surface.caption(), fontsize="medium")
    return fig


def plot_cliffs(surface: Surface) -> Figure:
    """Cliff steepness against sequence length (log scale), from the surface's cliff metrics."""
    if "cliff_max_jump" not in surface.extra:
        raise InputError("surface has no cliff metrics; compute them with landscape.cliffs.cliff_metrics")
    e, lengths = surface.extra, surface.lengths
    fig = Figure(figsize=(4.6, 3.2), layout="constrained")
    ax = fig.subplots()
    if np.isfinite(e["cliff_max_grad"]).any():
        ax.plot(lengths, e["cliff_max_grad"], "o-", label="largest gradient norm")
    ax.plot(lengths, e["cliff_max_jump"], "s--", label="largest jump between neighbours")
    shown = np.concatenate([e["cliff_max_grad"], e["cliff_max_jump"]])
    if (np.isfinite(shown) & (shown > 0)).any():  # a flat sweep has nothing to put on a log axis
        ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("cliff steepness")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if surface.caption():
        ax.set_title(surface.caption(), fontsize="medium")
    return fig


def save_figure(fig: Figure, path: str, *, dpi: int = 150) -> str:
    """Write a figure atomically in the format its extension names (png, pdf, svg)."""
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    if ext not in FORMATS:
        raise InputError(f"unknown figure format {ext!r}; valid: {', '.join(FORMATS)}")
    atomic_write(path, lambda f: fig.savefig(f, format=ext, dpi=dpi))
    return path
