"""Any ``nn.Module``, sliced: the fallback for models the engine does not know.

The recognized recurrent models (``landscape.params.from_modules``) run on the vectorized engine.
Every other module is sliced point by point through ``torch.func.functional_call``: the plane's
parameter vectors are cut into the module's named parameters and the user's ``loss_fn(outputs,
targets)`` scores each, vectorized over a chunk of grid points with ``torch.func.vmap`` where the
module allows it, and one point at a time where it does not (torch.nn's fused RNN kernels have no
batching rule), so no module is turned away.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from ._errors import InputError, check_int, check_type
from .planes import Plane

__all__ = ["module_vector", "module_filters", "slice_module"]


def _named(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    check_type(module, nn.Module, "module")
    params = [(n, p) for n, p in module.named_parameters()]
    if not params:
        raise InputError(f"the {type(module).__name__} has no parameters to slice")
    return params


def module_vector(module: nn.Module) -> torch.Tensor:
    """The module's parameters as one flat (P,) float64 vector, in ``named_parameters`` order."""
    return torch.cat([p.detach().reshape(-1).to(torch.float64) for _, p in _named(module)])


def module_filters(module: nn.Module) -> torch.Tensor:
    """(P,) filter ids of the flat vector for Li et al.'s normalization (``random_plane(...,
    filters=)``): each row of a parameter of two or more dimensions is one filter, each scalar of
    a vector its own."""
    ids, k = [], 0
    for _, p in _named(module):
        rows = p.shape[0] if p.ndim >= 2 else p.numel()
        ids.append(torch.arange(k, k + rows).repeat_interleave(p.numel() // max(rows, 1)))
        k += rows
    return torch.cat(ids)


def slice_module(
    module: nn.Module,
    loss_fn: Callable,
    inputs,
    targets,
    plane: Plane,
    *,
    chunk: int = 64,
    vectorize: bool = True,
) -> np.ndarray:
    """The loss ``loss_fn(module(inputs), targets)`` at every point of ``plane``, whose vectors
    are the module's flat parameters (``module_vector``): (ny, nx) float64 NumPy array. The module
    is not changed. ``inputs`` is one tensor or a tuple of the forward's arguments; ``chunk`` grid
    points are vectorized at a time with ``torch.func.vmap`` (``vectorize``), falling back to one
    point at a time where the module has no batching rule."""
    named = _named(module)
    check_type(plane, Plane, "plane")
    P = sum(p.numel() for _, p in named)
    if plane.d1.numel() != P:
        raise InputError(
            f"the plane's models have {plane.d1.numel()} parameters; the {type(module).__name__} has {P}"
        )
    if not callable(loss_fn):
        raise InputError(f"loss_fn must be callable, not {type(loss_fn).__name__}")
    chunk = check_int(chunk, "chunk", lo=1)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    dtype, device = named[0][1].dtype, named[0][1].device
    sizes = [p.numel() for _, p in named]

    def loss_at(flat: torch.Tensor) -> torch.Tensor:
        parts = torch.split(flat, sizes)
        params = {n: v.reshape(p.shape) for (n, p), v in zip(named, parts, strict=True)}
        return loss_fn(functional_call(module, params, args), targets)

    ny, nx = plane.shape
    out = np.empty(ny * nx)
    batched = vmap(loss_at) if vectorize else None
    with torch.no_grad():
        for k0 in range(0, ny * nx, chunk):
            pts = plane.points(k0, min(ny * nx, k0 + chunk)).to(device=device, dtype=dtype)
            if batched is not None:
                try:
                    out[k0 : k0 + len(pts)] = batched(pts).double().cpu().numpy()
                    continue
                except (RuntimeError, NotImplementedError, ValueError):
                    batched = None  # no batching rule for this module: one point at a time from here
            out[k0 : k0 + len(pts)] = [float(loss_at(p)) for p in pts]
    return out.reshape(ny, nx)
