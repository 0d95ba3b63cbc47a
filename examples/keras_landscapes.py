"""Where Keras's initialization puts a one-unit model, relative to the walls, beside torch's.

    python examples/keras_landscapes.py          # about a minute on 2 cores

Part 1, the starts: for SEEDS initializations of each cell with torch.nn's defaults and with
Keras's (``init="keras"``, the Dense(2, softmax) readout), on latching data at L = 5, 20, 40:
the median gradient norm at the start (how much signal gradient descent gets there), the share of
starts on the plateau (loss within 0.01 of its value for a constant prediction, ln 2) and the
memory a start carries from the first step to the last, |d h_T / d x_1|, its median.

Part 2, the plane: the loss of a Keras-initialized SimpleRNN (w_hh = +1 exactly) and a torch one
over (w_hh, w_ih) at the same lengths, start marked -> figures/keras_landscape.png. The README's
Keras section quotes what this script prints.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

import landscape as ls

SEEDS, LENGTHS, N = 30, (5, 20, 40), 1000


def memory(cell, theta: torch.Tensor, length: int) -> float:
    """|d h_T / d x_1|: how much of the first input the final state still carries (one sample,
    inputs 0 after the first step, the model's own equations through autograd)."""
    x = torch.zeros(1, length, dtype=torch.float64)
    x[0, 0] = 1.0
    x.requires_grad_(True)
    p = {k: v for k, v in zip(cell.param_names, theta.to(torch.float64), strict=True)}
    h = ls.run(cell, p, x, length)
    (g,) = torch.autograd.grad(h.sum(), x)
    return abs(float(g[0, 0]))


def starts() -> None:
    print(f"starts: {SEEDS} seeds, latching N = {N}; median |grad|, plateau share, median |dh_T/dx_1|")
    for name in ("rnn", "lstm", "gru"):
        for init in ("torch", "keras"):
            cell = ls.get_cell(
                name,
                head="softmax2" if init == "keras" else "logit",
                gru_reset="before" if (init == "keras" and name == "gru") else "after",
            )
            thetas = torch.stack([ls.init_params(cell, seed=s, init=init) for s in range(SEEDS)])
            cols = []
            for n in LENGTHS:
                data = ls.make_data("latching", n, n=N, seed=n)
                loss, _, g = ls.loss_and_grad(cell, data, thetas, backend="reference")
                grad = torch.linalg.vector_norm(g, dim=1)
                plateau = float((torch.abs(loss - math.log(2)) < 0.01).double().mean())
                mem = float(np.median([memory(cell, t, n) for t in thetas]))
                cols.append(f"L={n}: {grad.median():.2e} {plateau:4.0%} {mem:.1e}")
            extra = ""
            if name == "rnn":
                w = thetas[:, cell.param_names.index("w_hh")]
                ones = float((w.abs() == 1).double().mean())
                extra = f"  (|w_hh| = 1 in {ones:.0%}, mean |w_hh| {w.abs().mean():.2f})"
            if name == "lstm":
                col = cell.param_names.index
                bias = thetas[:, col("b_ih_f")] + thetas[:, col("b_hh_f")]
                f = float(torch.sigmoid(bias).median())
                extra = f"  (forget gate at h = x = 0: median {f:.2f}; ^40 = {f**40:.1e})"
            print(f"  {name:4} {init:5} " + " | ".join(cols) + extra)


def plane() -> None:
    fig = Figure(figsize=(8.4, 5.0), layout="constrained")
    axes = fig.subplots(2, len(LENGTHS))
    datas = [ls.make_data("latching", n, n=N, seed=n) for n in LENGTHS]
    for row, init in zip(axes, ("keras", "torch"), strict=True):
        cell = ls.get_cell("rnn", head="softmax2" if init == "keras" else "logit")
        center = ls.init_params(cell, seed=0, init=init)
        plane = ls.axis_plane(cell, center, x="w_hh", y="w_ih", xrange=(-3, 3), yrange=(-3, 3), res=(61, 61))
        surf = ls.compute_surface(cell, plane, datas, progress=False)
        cx, cy = (center[cell.param_names.index(k)].item() for k in ("w_hh", "w_ih"))
        for k, (ax, n) in enumerate(zip(row, LENGTHS, strict=True)):
            im = ax.pcolormesh(surf.x, surf.y, surf.loss[k], cmap="viridis", vmin=0, vmax=1.0, shading="auto")
            ax.plot([cx], [cy], "r*", ms=9)
            ax.axvline(1.0, color="w", lw=0.6, ls=":")
            ax.axvline(-1.0, color="w", lw=0.6, ls=":")
            ax.set_title(f"{init} init, L = {n}", fontsize="small")
            ax.set_xlabel("w_hh")
            ax.set_ylabel("w_ih")
            i = int(np.argmin(np.abs(surf.y - cy)))
            j = int(np.argmin(np.abs(surf.x - cx)))
            good = surf.accuracy[k] >= 0.9  # the readout as initialized already separates the classes
            print(
                f"plane {init:5} L={n:3d}: start (w_hh {cx:+.2f}, w_ih {cy:+.2f}) "
                f"loss {surf.loss[k, i, j]:.3f} "
                f"accuracy {surf.accuracy[k, i, j]:.2f}; window with accuracy >= 0.9: {good.mean():.1%}, "
                f"at |w_hh| >= 1: {(good & (np.abs(surf.x)[None] >= 1)).mean():.1%}"
            )
    fig.colorbar(im, ax=axes, label="loss", shrink=0.8)
    print(ls.save_figure(fig, "figures/keras_landscape.png", dpi=150))


def main() -> None:
    starts()
    plane()


if __name__ == "__main__":
    main()
