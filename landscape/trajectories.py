"""Gradient-descent paths on a plane, plain and with Pascanu et al.'s gradient-norm clipping.

Algorithm 1 of Pascanu, Mikolov and Bengio 2013: ``g = dE/dtheta``; if ``||g|| >= threshold``,
``g = threshold * g / ||g||``; ``theta -= lr * g`` (L2 norm of the whole moving gradient).

On an axis plane only the two plane parameters move, so the path lies in the plotted plane. On a
random plane every parameter moves; the path is projected onto the plane and its distance off
the plane is kept. Both runs go as one batch of two models.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from ._errors import InputError, check_device, check_dtype, check_int, check_number, check_type
from .backends import _losses, _work, kernel_refuses, resolve_backend, unit_work
from .cells import Cell, as_cell
from .planes import Plane, check_range
from .surface import PathRun
from .tasks import TaskData
from .units import model_losses

__all__ = ["Path", "descend", "clip_gradient", "paths_for_lengths", "MAX_STEPS"]

MAX_STEPS = 100_000  # descent steps of one path


@dataclass
class Path:
    coords: np.ndarray  # (S + 1, 2): plane coordinates (a, b) at every step
    loss: np.ndarray  # (S + 1,): the loss there
    grad_norm: np.ndarray  # (S + 1,): the norm of the moving gradient there (before clipping)
    off: np.ndarray  # (S + 1,): distance off the plane (0 on an axis plane)


def clip_gradient(g: torch.Tensor, threshold: float) -> torch.Tensor:
    """Algorithm 1 on each row of g (G, P): rescale rows whose L2 norm is >= threshold."""
    return _clip(g, check_number(threshold, "threshold", lo=0.0, above=True))


def _clip(g: torch.Tensor, threshold: float) -> torch.Tensor:
    """``clip_gradient`` past its check."""
    norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)  # (G, 1)
    return torch.where(norm >= threshold, g * (threshold / norm), g)


def descend(
    cell: Cell,
    data: TaskData,
    plane: Plane,
    *,
    start: tuple[float, float],
    lr: float,
    steps: int,
    clip: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
) -> dict[str, Path]:
    """Gradient descent from ``start`` (plane coordinates): {"plain": Path, "clip": Path}.

    A path whose loss or gradient becomes non-finite stops there; its remaining entries are NaN.
    """
    cell = as_cell(cell)
    check_type(data, TaskData, "data")
    check_type(plane, Plane, "plane")
    lr = check_number(lr, "lr", lo=0.0, above=True)
    steps = check_int(steps, "steps", lo=1, hi=MAX_STEPS)
    clip = None if clip is None else check_number(clip, "clip", lo=0.0, above=True)
    start = check_range(start, "start")
    dtype, device = check_dtype(dtype), check_device(device)
    return _descend(cell, data, plane, start=start, lr=lr, steps=steps, clip=clip, dtype=dtype, device=device)


def _descend(
    cell: Cell,
    data: TaskData,
    plane: Plane,
    *,
    start: tuple[float, float],
    lr: float,
    steps: int,
    clip: float | None,
    dtype: torch.dtype,
    device: str,
) -> dict[str, Path]:
    """``descend`` past its checks."""
    names = ["plain"] + (["clip"] if clip is not None else [])
    origin, d1, d2 = (v.to(device=device, dtype=dtype) for v in (plane.origin, plane.d1, plane.d2))
    mask = (d1 != 0) | (d2 != 0) if plane.kind == "axis" else torch.ones_like(d1, dtype=torch.bool)
    theta = (origin + start[0] * d1 + start[1] * d2).expand(len(names), -1).clone()  # (R, P)
    work = 3 * _work(data, theta) * unit_work(cell)
    backend = resolve_backend("auto", device=device, work=work, why_not=kernel_refuses(cell, [data], device))
    d = data.to(dtype, device)
    thetas, losses_, norms = [], [], []
    for step in range(steps + 1):
        loss, _, g = _losses(cell, d, theta, backend, grad=True)  # (R,), _, (R, P)
        g = torch.where(mask, g, torch.zeros_like(g))
        thetas.append(theta.clone())
        losses_.append(loss)
        norms.append(torch.linalg.vector_norm(g, dim=-1))
        if step == steps:
            break
        if "clip" in names:
            g[1:] = _clip(g[1:], clip)
        bad = ~(torch.isfinite(loss) & torch.isfinite(g).all(-1))  # (R,)
        theta = torch.where(bad[:, None], torch.full_like(theta, float("nan")), theta - lr * g)
    th = torch.stack(thetas).to(torch.float64).cpu()  # (S + 1, R, P)
    a, b, off = plane.project(th)  # (S + 1, R) each
    ls = torch.stack(losses_).to(torch.float64).cpu()
    gn = torch.stack(norms).to(torch.float64).cpu()
    return {
        name: Path(
            torch.stack([a[:, r], b[:, r]], -1).numpy(), ls[:, r].numpy(), gn[:, r].numpy(), off[:, r].numpy()
        )
        for r, name in enumerate(names)
    }


def paths_for_lengths(
    cell: Cell, datas: list[TaskData], plane: Plane | list[Plane], **kwargs
) -> dict[str, PathRun]:
    """``descend`` at every length: {"plain": PathRun, "clip": PathRun (when clipping is asked
    for)}, each stacking the lengths' runs. One plane, or one per length."""
    if not isinstance(datas, (list, tuple)) or not datas:
        raise InputError("datas must be a non-empty list of TaskData, one per length")
    planes = plane if isinstance(plane, list) else [plane] * len(datas)
    runs = [descend(cell, d, p, **kwargs) for p, d in zip(planes, datas, strict=True)]
    return _stack_runs(runs)


def _sweep_paths(
    cell: Cell,
    datas: list[TaskData],
    planes: list[Plane],
    *,
    descent: dict | None = None,
    trained: np.ndarray | None = None,
) -> dict[str, PathRun]:
    """A sweep's paths, one plane per length, by name: with ``descent`` (``descend``'s options)
    "plain" (and "clip"), and with a recorded training path ``trained`` (n_len, R, P) projected on
    each length's plane, "train", with no gradient norms and the loss of the slice's data (on the
    reference path). Arguments are checked (a SliceConfig, or the public functions)."""
    paths = (
        {}
        if descent is None
        else _stack_runs([_descend(cell, d, p, **descent) for p, d in zip(planes, datas, strict=True)])
    )
    if trained is not None:
        coords, loss, off = [], [], []
        for p, d, th in zip(planes, datas, trained, strict=True):
            theta = torch.from_numpy(th)  # (R, P)
            a, b, o = p.project(theta)
            coords.append(torch.stack([a, b], -1).numpy())
            off.append(o.numpy())
            with torch.no_grad():
                loss.append(model_losses(cell, theta, d)[0].numpy())
        paths["train"] = PathRun(np.stack(coords), np.stack(loss), None, np.stack(off))
    return paths


def _stack_runs(runs: list[dict[str, Path]]) -> dict[str, PathRun]:
    """Each length's paths stacked by name."""
    return {
        name: PathRun(*(np.stack([getattr(r[name], f.name) for r in runs]) for f in fields(PathRun)))
        for name in runs[0]
    }
