"""Planes: the 2-D grids of parameter vectors ``origin + x[j] * d1 + y[i] * d2``.

An *axis* plane varies two named scalars over absolute ranges (its origin holds the centre with
those two entries set to 0, and d1, d2 are unit vectors, so a coordinate is the parameter's
value). A *random* plane follows seeded Gaussian directions over all parameters, normalized
(``none``, ``filter`` or ``model``) and then orthogonalized, so that (0, 0) is exactly the centre.

For one-unit models every row of every torch weight or bias tensor is a single number, so
Li et al.'s filter normalization reduces to ``|d_k| = |theta_k|`` for each scalar. Unlike their
code, biases are not zeroed: half of a one-unit model's parameters are biases, and the walls of
Pascanu's map lie along one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ._errors import ConfigError, InputError, check_int, check_real, check_seed, check_vector
from .cells import Cell

__all__ = [
    "Plane",
    "axis_plane",
    "random_plane",
    "pca_plane",
    "line_plane",
    "through_plane",
    "grid_coords",
    "NORMS",
    "check_res",
    "window_exit",
    "filter_rows",
    "check_param",
    "LINE_RANGE",
    "LINE_RES",
]

NORMS = ("filter", "model", "none")
MAX_RES = 10**6  # grid points along one axis
MAX_COORD = 1e300  # keeps sums of two coordinates (cell edges, midpoints) from overflowing
LINE_RANGE = (-0.25, 1.25)  # an interpolation's default window: A at 0, B at 1, a quarter beyond each
LINE_RES = 61  # its default points along a line: a step of 0.025, so that 0 and 1 are grid points


@dataclass(frozen=True)
class Plane:
    """A grid of parameter vectors. ``points(k0, k1)`` gives rows k0..k1-1 of the flattened grid,
    where flat index k = i * nx + j is the point (x[j], y[i]), so results reshape to (ny, nx)."""

    origin: torch.Tensor  # (P,) float64
    d1: torch.Tensor  # (P,) direction along x
    d2: torch.Tensor  # (P,) direction along y
    x: np.ndarray  # (nx,)
    y: np.ndarray  # (ny,)
    xlabel: str
    ylabel: str
    kind: str  # "axis", "random", "pca", "line" (one row: y == [0], d2 == 0) or "through"
    marks: tuple = ()  # (name, x, y) of the models an interpolation passes: A, B (and C)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y), len(self.x)

    def points(self, k0: int, k1: int) -> torch.Tensor:
        """Parameter vectors of flat grid indices [k0, k1): (k1 - k0, P) float64."""
        k = torch.arange(k0, k1)
        a = torch.from_numpy(self.x)[k % len(self.x)]  # (g,)
        b = torch.from_numpy(self.y)[k // len(self.x)]  # (g,)
        return self.origin + a[:, None] * self.d1 + b[:, None] * self.d2  # (g, P)

    def project(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Plane coordinates of parameter vectors (..., P) and their distance off the plane."""
        v = theta.to(torch.float64) - self.origin
        a = v @ self.d1 / (self.d1 @ self.d1)
        if self.kind == "line":  # a line: no second direction
            b = torch.zeros_like(a)
        else:
            b = v @ self.d2 / (self.d2 @ self.d2)
        off = torch.linalg.vector_norm(v - a[..., None] * self.d1 - b[..., None] * self.d2, dim=-1)
        return a, b, off


def grid_coords(lo: float, hi: float, n: int) -> np.ndarray:
    """n points from lo to hi, both included; the midpoint of a symmetric range is exactly 0."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and max(abs(lo), abs(hi)) <= MAX_COORD):
        raise InputError(
            f"range {lo}:{hi} must be two finite numbers LO:HI with LO < HI, each within +-{MAX_COORD:g}"
        )
    if int(n) != n or n < 2:
        raise InputError(f"resolution {n} must be an integer >= 2")
    c = lo + (hi - lo) * (np.arange(n, dtype=np.float64) / (n - 1))
    c[-1] = hi
    return c


def check_res(res, name: str = "res") -> tuple[int, int]:
    """(nx, ny) from a pair or one number (a square grid); each an integer >= 2."""
    pair = (res, res) if isinstance(res, numbers.Real) else res
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise InputError(f"{name} {res!r} must be (nx, ny) or one number, each an integer >= 2")
    return tuple(check_int(n, name, lo=2, hi=MAX_RES) for n in pair)


def check_range(r, name: str) -> tuple[float, float]:
    """(lo, hi) of two real numbers; grid_coords checks that they are finite and ordered."""
    if (
        isinstance(r, (str, bytes))
        or not isinstance(r, Sequence)
        or len(r) != 2
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in r)
    ):
        raise InputError(f"{name} {r!r} must be two numbers (lo, hi)")
    return float(r[0]), float(r[1])


def axis_plane(
    cell: Cell,
    center: torch.Tensor,
    *,
    x: str | None = None,
    y: str | None = None,
    xrange: tuple[float, float] | None = None,
    yrange: tuple[float, float] | None = None,
    res: tuple[int, int] | None = None,
) -> Plane:
    """The plane of two named parameters over absolute ranges; the others stay at ``center``."""
    dx, dy, dxr, dyr, dres = cell.default_plane
    x, y = x or dx, y or dy
    check_vector(center, cell.n_params, "center")
    for name in (x, y):
        check_param(cell, name)
    if cell.index(x) == cell.index(y):
        raise InputError(
            f"the two axes must be different parameters, both are {x!r}" + (f" and {y!r}" if x != y else "")
        )
    res = check_res(dres if res is None else res)
    xrange = check_range(dxr if xrange is None else xrange, "xrange")
    yrange = check_range(dyr if yrange is None else yrange, "yrange")
    return _axis_plane(cell, center, x, y, xrange, yrange, res)


def _axis_plane(
    cell: Cell,
    center: torch.Tensor,
    x: str,
    y: str,
    xrange: tuple[float, float],
    yrange: tuple[float, float],
    res: tuple[int, int],
) -> Plane:
    """``axis_plane`` past its checks, every default resolved."""
    ix, iy = cell.index(x), cell.index(y)
    origin = center.to(torch.float64).clone()
    origin[[ix, iy]] = 0.0
    d1, d2 = torch.zeros_like(origin), torch.zeros_like(origin)
    d1[ix], d2[iy] = 1.0, 1.0
    return Plane(origin, d1, d2, grid_coords(*xrange, res[0]), grid_coords(*yrange, res[1]), x, y, "axis")


def check_param(cell: Cell, name) -> int:
    """The flat index of a named parameter of the cell, or InputError naming the valid names."""
    k = cell.index(name)
    if k is None:
        raise InputError(
            f"unknown parameter {name!r} for a {cell.name} model of {cell.size_text()}; "
            f"valid: {cell.names_hint()}"
        )
    return k


def filter_rows(cell: Cell | None, P: int) -> torch.Tensor:
    """The filter of every scalar of the flat vector, as (P,) integer ids: each row of a weight
    matrix is one filter (Li et al. 2018); each scalar of a bias vector, and of a one-unit model
    (whose every row is one number), is its own. Without a cell, every scalar is its own."""
    if cell is None or not cell.sized:
        return torch.arange(P)
    ids, k = [], 0
    for _, _, shape in cell.tensors:
        cols = shape[1] if len(shape) == 2 else 1
        ids.append(torch.arange(k, k + shape[0]).repeat_interleave(cols))
        k += shape[0]
    return torch.cat(ids)


def _normalize(d: torch.Tensor, theta: torch.Tensor, norm: str, rows: torch.Tensor) -> torch.Tensor:
    if norm == "none":
        return d
    if norm == "model":
        return d * (torch.linalg.vector_norm(theta) / torch.linalg.vector_norm(d))
    if rows.numel() == d.numel() and bool((rows == torch.arange(d.numel())).all()):
        return d * (theta.abs() / d.abs())  # filter: each scalar is one row of a torch tensor
    # filter: |d_row| = |theta_row| for every row (filter_rows), each direction row scaled whole
    n = int(rows.max()) + 1
    dn = torch.zeros(n, dtype=d.dtype).index_add_(0, rows, d * d).sqrt()
    tn = torch.zeros(n, dtype=d.dtype).index_add_(0, rows, theta * theta).sqrt()
    return d * (tn / dn)[rows]


def random_plane(
    center: torch.Tensor,
    *,
    seed: int = 0,
    norm: str = "filter",
    xrange: tuple[float, float] = (-1.0, 1.0),
    yrange: tuple[float, float] = (-1.0, 1.0),
    res: tuple[int, int] = (51, 51),
    cell: Cell | None = None,
    filters: torch.Tensor | None = None,
) -> Plane:
    """Seeded Gaussian directions, normalized, then d2 made orthogonal to d1 (keeping its norm).

    ``filter`` normalization scales each filter of a direction to the norm of the same filter of
    the centre: a row of a weight matrix of ``cell`` (``filter_rows``); without a cell, or for one
    unit, each scalar; or as ``filters`` (P,) ids say (``landscape.generic.module_filters`` of
    any module). A draw whose normalized directions are parallel (possible with filter
    normalization when the model has few nonzero parameters) is replaced by the next draw of the
    same generator.
    """
    if norm not in NORMS:
        raise InputError(f"unknown normalization {norm!r}; valid: {', '.join(NORMS)}")
    theta = check_vector(center, None if cell is None else cell.n_params, "center")
    xrange, yrange = check_range(xrange, "xrange"), check_range(yrange, "yrange")
    if filters is not None and (
        not isinstance(filters, torch.Tensor)
        or filters.shape != theta.shape
        or filters.is_floating_point()
        or int(filters.min()) < 0
    ):
        raise InputError(f"filters must be ({theta.numel()},) non-negative integer ids, one per parameter")
    return _random_plane(theta, check_seed(seed), norm, xrange, yrange, check_res(res), cell, filters)


def _random_plane(
    center: torch.Tensor,
    seed: int,
    norm: str,
    xrange: tuple[float, float],
    yrange: tuple[float, float],
    res: tuple[int, int],
    cell: Cell | None = None,
    filters: torch.Tensor | None = None,
) -> Plane:
    """``random_plane`` past its checks."""
    theta, (nx, ny) = center.to(torch.float64), res
    rows = filter_rows(cell, theta.numel()) if filters is None else filters.long()
    if norm != "none" and int((theta != 0).sum()) < 2:
        raise ConfigError(
            "norm", "needs at least two nonzero parameters at the centre; use {norm=none}", value=norm
        )
    gen = torch.Generator().manual_seed(seed)
    for _ in range(1000):
        d1 = _normalize(torch.randn(theta.shape, generator=gen, dtype=torch.float64), theta, norm, rows)
        d2 = _normalize(torch.randn(theta.shape, generator=gen, dtype=torch.float64), theta, norm, rows)
        n2 = torch.linalg.vector_norm(d2)
        d2 = d2 - (d2 @ d1) / (d1 @ d1) * d1  # Gram-Schmidt, after normalization
        if torch.linalg.vector_norm(d2) > 1e-6 * n2:
            d2 = d2 * (n2 / torch.linalg.vector_norm(d2))
            break
    else:  # pragma: no cover - needs a 1000-fold run of parallel draws
        raise InputError(f"could not draw two independent directions with norm {norm!r}")
    return Plane(
        theta.clone(), d1, d2, grid_coords(*xrange, nx), grid_coords(*yrange, ny), "d1", "d2", "random"
    )


def pca_plane(
    path: torch.Tensor,
    *,
    res: tuple[int, int] = (51, 51),
    xrange: tuple[float, float] | None = None,
    yrange: tuple[float, float] | None = None,
    margin: float = 0.25,
) -> tuple[Plane, np.ndarray]:
    """The plane of a training path's first two principal components (Li et al. 2018).

    path: (R, P) parameters along training, the last row the final model, which is the centre.
    d1, d2 are unit vectors along the first two principal components of (theta_i - theta_final);
    the default ranges cover the projected path with a ``margin``. Returns the plane and the
    explained variance ratio of the two components.
    """
    if not isinstance(path, torch.Tensor) or path.ndim != 2 or not path.is_floating_point():
        raise InputError(
            f"path must be a real (R, P) tensor of recorded parameters, not {type(path).__name__}"
        )
    return _pca_plane(check_real(path, "path"), check_res(res), xrange, yrange, margin)


def _pca_plane(
    path: torch.Tensor,
    res: tuple[int, int],
    xrange: tuple[float, float] | None,
    yrange: tuple[float, float] | None,
    margin: float = 0.25,
) -> tuple[Plane, np.ndarray]:
    """``pca_plane`` past its checks."""
    path, (nx, ny) = path.to(torch.float64), res
    if path.shape[0] < 3:
        raise InputError(f"a pca plane needs at least 3 recorded training points, got {path.shape[0]}")
    center = path[-1]
    diff = (path - center).numpy()  # (R, P)
    centred = diff - diff.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    if len(s) < 2 or s[1] <= 1e-12 * max(s[0], 1e-300):
        raise InputError("a pca plane: the training path spans fewer than two directions")
    var = s**2 / np.sum(s**2)
    d1, d2 = (torch.from_numpy(v.copy()) for v in vt[:2])
    coords = diff @ vt[:2].T  # (R, 2)

    def cover(c: np.ndarray) -> tuple[float, float]:
        span = max(float(np.abs(c).max()), 1e-6) * (1 + margin)
        return -span, span

    plane = Plane(
        center.clone(),
        d1,
        d2,
        grid_coords(*(xrange or cover(coords[:, 0])), nx),
        grid_coords(*(yrange or cover(coords[:, 1])), ny),
        "pc1",
        "pc2",
        "pca",
    )
    return plane, var[:2]


def _snap(c: np.ndarray, at: tuple[float, ...]) -> np.ndarray:
    """Grid coordinates within a millionth of a step of the points ``at`` set to them exactly, so
    that an interpolation's grid holds its models themselves, not neighbours off by a rounding."""
    c = c.copy()
    tol = 1e-6 * (c[-1] - c[0]) / max(len(c) - 1, 1)
    for v in at:
        k = int(np.argmin(np.abs(c - v)))
        if abs(c[k] - v) <= tol:
            c[k] = v
    return c


def _window(lo: float, hi: float, n: int) -> tuple[float, float]:
    """An interpolation's default window of n points: it covers the models' coordinates [lo, hi]
    (0 and 1 among them) with about a quarter of their span beyond each side, on a step of 1/k
    for a whole k, so that 0 and 1 are grid points (LINE_RANGE for the default 61). Where n is
    too few for that, the span with its margins, 0 and 1 off the grid."""
    span = hi - lo
    k = math.floor((n - 1) / (1.5 * span))
    first, last = math.floor(lo * k + 1e-9), math.ceil(hi * k - 1e-9)
    if k < 1 or last - first > n - 1:
        return lo - 0.25 * span, hi + 0.25 * span
    start = first - ((n - 1) - (last - first)) // 2
    return start / k, (start + n - 1) / k


def _models(vectors, n: int, P: int | None) -> list[torch.Tensor]:
    if not isinstance(vectors, (list, tuple)) or len(vectors) != n:
        raise InputError(
            f"an interpolation of {n} models takes {n} parameter vectors, not {type(vectors).__name__}"
        )
    out = [check_vector(v, None, f"model {'ABC'[k]}").to(torch.float64) for k, v in enumerate(vectors)]
    if P is not None and out[0].numel() != P:
        raise InputError(f"model A has {out[0].numel()} parameters; the cell's models have {P}")
    for k, v in enumerate(out[1:], 1):
        if v.shape != out[0].shape:
            raise InputError(f"model {'ABC'[k]} has {v.numel()} parameters; model A has {out[0].numel()}")
        if bool((v == out[0]).all()):
            raise InputError(f"models A and {'ABC'[k]} are the same point: there is nothing between them")
    return out


def line_plane(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    res: int = LINE_RES,
    xrange: tuple[float, float] | None = None,
    cell: Cell | None = None,
) -> Plane:
    """The line from model ``a`` to model ``b`` (Goodfellow et al. 2015): ``a + alpha * (b - a)``
    at ``res`` values of alpha over ``xrange`` (default: about -0.25 to 1.25, LINE_RANGE at the
    default res), so alpha = 0 is A and 1 is B, exactly, wherever they fall on the grid. One
    row: ``y == [0]``, ``d2 == 0``; results reshape to (1, res)."""
    P = None if cell is None else cell.n_params
    a, b = _models([a, b], 2, P)
    nx = check_int(res, "res", lo=2, hi=MAX_RES)
    return _line_plane(a, b, None if xrange is None else check_range(xrange, "xrange"), nx)


def _line_plane(a: torch.Tensor, b: torch.Tensor, xrange: tuple[float, float] | None, nx: int) -> Plane:
    """``line_plane`` past its checks; a range of None takes the default window."""
    x = _snap(grid_coords(*(xrange or _window(0.0, 1.0, nx)), nx), (0.0, 1.0))
    return Plane(
        a.clone(),
        b - a,
        torch.zeros_like(a),
        x,
        np.zeros(1),
        "alpha",
        "",
        "line",
        (("A", 0.0, 0.0), ("B", 1.0, 0.0)),
    )


def through_plane(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    *,
    res: tuple[int, int] = (51, 51),
    xrange: tuple[float, float] | None = None,
    yrange: tuple[float, float] | None = None,
    cell: Cell | None = None,
) -> Plane:
    """The plane through three models (Garipov et al. 2018): origin A, ``d1 = b - a`` and ``d2`` the
    part of ``c - a`` orthogonal to it, so that A is (0, 0), B is (1, 0) and C is (c_x, 1), with
    distances drawn true. The default window covers the three with about a quarter of margin,
    A and B on its grid."""
    P = None if cell is None else cell.n_params
    a, b, c = _models([a, b, c], 3, P)
    xrange = None if xrange is None else check_range(xrange, "xrange")
    yrange = None if yrange is None else check_range(yrange, "yrange")
    return _through_plane(a, b, c, xrange, yrange, check_res(res))


def _through_plane(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    xrange: tuple[float, float] | None,
    yrange: tuple[float, float] | None,
    res: tuple[int, int],
) -> Plane:
    """``through_plane`` past its checks."""
    d1 = b - a
    cx = float((c - a) @ d1 / (d1 @ d1))
    d2 = (c - a) - cx * d1
    if float(torch.linalg.vector_norm(d2)) <= 1e-12 * float(torch.linalg.vector_norm(c - a)):
        raise InputError("models A, B and C lie on one line: they span no plane; use a line plane of two")
    xrange = xrange or _window(min(0.0, cx), max(1.0, cx), res[0])
    yrange = yrange or _window(0.0, 1.0, res[1])
    x = _snap(grid_coords(*xrange, res[0]), (0.0, 1.0))
    y = _snap(grid_coords(*yrange, res[1]), (0.0, 1.0))
    return Plane(
        a.clone(),
        d1,
        d2,
        x,
        y,
        "alpha",
        "beta",
        "through",
        (("A", 0.0, 0.0), ("B", 1.0, 0.0), ("C", cx, 1.0)),
    )


def _sweep_planes(
    cell: Cell,
    centers: list[torch.Tensor],
    kind: str,
    *,
    axes: tuple[str, str],
    xrange: tuple[float, float] | None,
    yrange: tuple[float, float] | None,
    res: tuple[int, int],
    seed: int,
    norm: str,
    paths: np.ndarray | None = None,
    models: list[list[torch.Tensor]] | None = None,
) -> tuple[list[Plane], list[str]]:
    """One plane per length of a sweep, all with the same grid and labels, and lines to tell the
    user: ``kind`` "axis" (over the two parameters ``axes``) or "random" around each length's
    centre, or "pca" of each length's training path ``paths`` (n_len, R, P), in one square window,
    the widest that covers every length's path, or "line" / "through" each length's ``models``
    ([A, B] or [A, B, C]), in one window that covers every length's. Arguments are checked (a
    SliceConfig); a range of None takes its default."""
    if kind == "line":
        return [_line_plane(*m, xrange, res[0]) for m in models], []
    if kind == "through":
        first = [_through_plane(*m, xrange, yrange, res) for m in models]
        lo = min(p.x[0] for p in first) if xrange is None else xrange[0]
        hi = max(p.x[-1] for p in first) if xrange is None else xrange[1]
        planes = [_through_plane(*m, (lo, hi), yrange, res) for m in models]
        norm = torch.linalg.vector_norm
        notes = [
            f"model C lies at alpha = {p.marks[2][1]:.4g} along A to B, |B - A| = "
            f"{float(norm(p.d1)):.4g}, and {float(norm(p.d2)):.4g} off that line"
            for p in planes
        ]
        return planes, notes
    if kind == "axis":
        dxr, dyr = cell.default_plane[2:4]
        return [_axis_plane(cell, c, *axes, xrange or dxr, yrange or dyr, res) for c in centers], []
    if kind == "random":
        return [
            _random_plane(c, seed, norm, xrange or (-1.0, 1.0), yrange or (-1.0, 1.0), res, cell)
            for c in centers
        ], []
    fits = [_pca_plane(torch.from_numpy(p), res, xrange, yrange) for p in paths]
    span = max(max(pl.x[-1], pl.y[-1]) for pl, _ in fits)  # a square window: pc2 is often tiny
    planes = [
        replace(
            pl,
            x=pl.x if xrange else grid_coords(-span, span, len(pl.x)),
            y=pl.y if yrange else grid_coords(-span, span, len(pl.y)),
        )
        for pl, _ in fits
    ]
    notes = [
        f"pc1 and pc2 explain {var[0]:.1%} and {var[1]:.1%} of the training path's variance"
        for _, var in fits
    ]
    return planes, notes


def window_exit(coords: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]) -> tuple:
    """Where a path first leaves the window: (step, point on the edge), or (None, None).

    A NaN point (a run stopped on a non-finite loss) ends the path without leaving.
    """
    (x0, x1), (y0, y1) = xlim, ylim
    for s in range(1, len(coords)):
        (ax, ay), (bx, by) = coords[s - 1], coords[s]
        if not np.isfinite([bx, by]).all():
            return None, None
        if x0 <= bx <= x1 and y0 <= by <= y1:
            continue
        t = 1.0  # fraction of the segment inside the window
        for p, q, lo, hi in ((ax, bx, x0, x1), (ay, by, y0, y1)):
            if q < lo:
                t = min(t, (lo - p) / (q - p))
            elif q > hi:
                t = min(t, (hi - p) / (q - p))
        return s, np.array([ax + t * (bx - ax), ay + t * (by - ay)])
    return None, None
