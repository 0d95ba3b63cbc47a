"""Cliff metrics: how steep the walls of a surface are, at each length, and where they stand.

Per length: the largest gradient norm (with gradient maps), the largest loss jump between two
neighbouring grid cells, the share of the plane whose gradient norm exceeds a threshold, and
where the steepest wall lies: the midpoint of the largest jump, in the plane's coordinates.
Non-finite cells are left out of every metric and counted instead.
"""

from __future__ import annotations

import numpy as np

from ._errors import check_type
from .surface import Surface

__all__ = ["cliff_metrics", "cliff_table", "CLIFF_KEYS"]

CLIFF_KEYS = ("cliff_max_grad", "cliff_max_grad_x", "cliff_max_grad_y", "cliff_max_jump",
              "cliff_wall_x", "cliff_wall_y", "cliff_share", "cliff_nonfinite")


def _nanargmax(a: np.ndarray) -> tuple[int, ...] | None:
    finite = np.where(np.isfinite(a), a, -np.inf)
    k = int(np.argmax(finite))
    return None if not np.isfinite(finite.flat[k]) else np.unravel_index(k, a.shape)


def cliff_metrics(surface: Surface, *, threshold: float = 1.0) -> dict[str, np.ndarray]:
    """Per-length metrics, each an (n_len,) float array (NaN where undefined)."""
    check_type(surface, Surface, "surface")
    n = len(surface.lengths)
    out = {k: np.full(n, np.nan) for k in CLIFF_KEYS}
    x, y = surface.x, surface.y
    gn = surface.extra.get("grad_norm")
    for k in range(n):
        z = surface.loss[k].astype(np.float64)  # (ny, nx)
        out["cliff_nonfinite"][k] = np.count_nonzero(~np.isfinite(z))
        with np.errstate(invalid="ignore"):  # inf - inf is NaN, and left out below
            jx = np.abs(np.diff(z, axis=1))  # (ny, nx - 1): between (i, j) and (i, j + 1)
            jy = np.abs(np.diff(z, axis=0))  # (ny - 1, nx): between (i, j) and (i + 1, j)
        best = [(jx[idx], x[idx[1]:idx[1] + 2].mean(), y[idx[0]]) for idx in [_nanargmax(jx)] if idx]
        best += [(jy[idx], x[idx[1]], y[idx[0]:idx[0] + 2].mean()) for idx in [_nanargmax(jy)] if idx]
        if best:
            jump, wx, wy = max(best, key=lambda b: b[0])
            out["cliff_max_jump"][k], out["cliff_wall_x"][k], out["cliff_wall_y"][k] = jump, wx, wy
        if gn is not None:
            g = gn[k].astype(np.float64)
            idx = _nanargmax(g)
            if idx:
                out["cliff_max_grad"][k] = g[idx]
                out["cliff_max_grad_x"][k], out["cliff_max_grad_y"][k] = x[idx[1]], y[idx[0]]
                finite = np.isfinite(g)
                out["cliff_share"][k] = np.count_nonzero(g[finite] > threshold) / np.count_nonzero(finite)
    return out


def cliff_table(surface: Surface, metrics: dict[str, np.ndarray], *, threshold: float = 1.0) -> str:
    """The metrics as a small fixed-width table, one row per length."""
    check_type(surface, Surface, "surface")
    check_type(surface, Surface, "surface")
    xl, yl = surface.xlabel, surface.ylabel
    head = (f"{'L':>5} {'max |grad|':>11} {'at (' + xl + ', ' + yl + ')':>24} {'max jump':>10} "
            f"{'wall at (' + xl + ', ' + yl + ')':>26} {'|grad|>' + format(threshold, 'g'):>10} "
            f"{'non-finite':>10}")
    rows = [head]
    for k, length in enumerate(surface.lengths):
        m = {key: v[k] for key, v in metrics.items()}
        at = f"({m['cliff_max_grad_x']:.4g}, {m['cliff_max_grad_y']:.4g})"
        wall = f"({m['cliff_wall_x']:.4g}, {m['cliff_wall_y']:.5g})"
        rows.append(f"{int(length):5d} {m['cliff_max_grad']:11.3e} {at:>24} {m['cliff_max_jump']:10.3e} "
                    f"{wall:>26} {m['cliff_share']:10.2%} {int(m['cliff_nonfinite']):10d}")
    return "\n".join(rows)
