"""Cliff metrics: how steep the walls of a surface are, at each length, and where they stand.

Per length: the largest gradient norm (with gradient maps), the largest loss jump between two
neighbouring grid cells, the share of the plane whose gradient norm exceeds a threshold, and
where the steepest wall lies: the midpoint of the largest jump, in the plane's coordinates.
Non-finite cells are left out of every metric and counted instead.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from ._errors import check_type
from .surface import Cliffs, Surface

__all__ = ["cliff_metrics", "cliff_table"]


def _nanargmax(a: np.ndarray) -> tuple[int, ...] | None:
    if a.size == 0:  # no neighbours along an axis of one point (a line's y)
        return None
    finite = np.where(np.isfinite(a), a, -np.inf)
    k = int(np.argmax(finite))
    return None if not np.isfinite(finite.flat[k]) else np.unravel_index(k, a.shape)


def cliff_metrics(surface: Surface, *, threshold: float = 1.0) -> Cliffs:
    """Per-length metrics, each an (n_len,) float array (NaN where undefined); the gradient's
    metrics need the surface's gradient maps. ``surface.with_parts(cliffs=...)`` keeps them."""
    return _cliff_metrics(check_type(surface, Surface, "surface"), threshold)


def _cliff_metrics(surface: Surface, threshold: float) -> Cliffs:
    """``cliff_metrics`` past its check."""
    n = len(surface.lengths)
    out = {f.name: np.full(n, np.nan) for f in fields(Cliffs)}
    x, y = surface.x, surface.y
    gn = None if surface.grads is None else surface.grads.norm
    for k in range(n):
        z = surface.loss[k].astype(np.float64)  # (ny, nx)
        out["nonfinite"][k] = np.count_nonzero(~np.isfinite(z))
        with np.errstate(invalid="ignore"):  # inf - inf is NaN, and left out below
            jx = np.abs(np.diff(z, axis=1))  # (ny, nx - 1): between (i, j) and (i, j + 1)
            jy = np.abs(np.diff(z, axis=0))  # (ny - 1, nx): between (i, j) and (i + 1, j)
        best = [(jx[idx], x[idx[1] : idx[1] + 2].mean(), y[idx[0]]) for idx in [_nanargmax(jx)] if idx]
        best += [(jy[idx], x[idx[1]], y[idx[0] : idx[0] + 2].mean()) for idx in [_nanargmax(jy)] if idx]
        if best:
            out["max_jump"][k], out["wall_x"][k], out["wall_y"][k] = max(best, key=lambda b: b[0])
        if gn is not None:
            g = gn[k].astype(np.float64)
            idx = _nanargmax(g)
            if idx:
                out["max_grad"][k] = g[idx]
                out["max_grad_x"][k], out["max_grad_y"][k] = x[idx[1]], y[idx[0]]
                finite = np.isfinite(g)
                out["share"][k] = np.count_nonzero(g[finite] > threshold) / np.count_nonzero(finite)
    return Cliffs(**out)


def cliff_table(surface: Surface, metrics: Cliffs | None = None, *, threshold: float = 1.0) -> str:
    """The metrics (by default the surface's own) as a small fixed-width table, one row per length."""
    check_type(surface, Surface, "surface")
    m = check_type(metrics if metrics is not None else surface.cliffs, Cliffs, "metrics")
    return _cliff_table(surface, m, threshold)


def _cliff_table(surface: Surface, m: Cliffs, threshold: float) -> str:
    """``cliff_table`` past its checks."""
    xl, yl = surface.xlabel, surface.ylabel
    where = xl if surface.is_line else f"({xl}, {yl})"  # a line has one coordinate
    head = (
        f"{'L':>5} {'max |grad|':>11} {'at ' + where:>24} {'max jump':>10} "
        f"{'wall at ' + where:>26} {'|grad|>' + format(threshold, 'g'):>10} "
        f"{'non-finite':>10}"
    )
    rows = [head]
    for k, length in enumerate(surface.lengths):
        at = f"({m.max_grad_x[k]:.4g}, {m.max_grad_y[k]:.4g})"
        wall = f"({m.wall_x[k]:.4g}, {m.wall_y[k]:.5g})"
        if surface.is_line:
            at, wall = f"{m.max_grad_x[k]:.4g}", f"{m.wall_x[k]:.4g}"
        rows.append(
            f"{int(length):5d} {m.max_grad[k]:11.3e} {at:>24} {m.max_jump[k]:10.3e} "
            f"{wall:>26} {m.share[k]:10.2%} {int(m.nonfinite[k]):10d}"
        )
    return "\n".join(rows)
