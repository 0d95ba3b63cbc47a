"""Pascanu, Mikolov and Bengio 2013, Fig. 6: the wall in E_50 and what gradient clipping does.

    python examples/pascanu_fig6.py

The paper's setup: x_t = w * sigmoid(x_{t-1}) + b, x_0 = 0.5, E_T = (sigmoid(x_T) - 0.7)^2, over
w in [4.5, 5.5] and b in [-3, -2], at 0.001 in b (the wall is about 1e-3 wide). Writes into
figures/:
- pascanu_fig6.png/.pdf: E_50 with a plain and a clipped gradient-descent path that start on the
  same side of the wall;
- pascanu_wall_by_length.png/.pdf: the same window at lengths 1 to 100, with the paths;
- pascanu_cliffs.png/.pdf: cliff steepness against length;
and prints the cliff table and where each path went.
"""

import numpy as np
import torch

import landscape as ls

WINDOW = dict(x="w", y="b", xrange=(4.5, 5.5), yrange=(-3.0, -2.0), res=(201, 1001))
START, LR, STEPS, CLIP = (5.0, -2.64), 0.01, 30, 1.0


def sweep(lengths: list[int]) -> ls.Surface:
    cell = ls.get_cell("pascanu")
    plane = ls.axis_plane(cell, ls.init_params(cell), **WINDOW)
    datas = [ls.make_data("pascanu", n) for n in lengths]
    surf = ls.compute_surface(
        cell, plane, datas, dtype=torch.float64, grad=True, config={"cell": "pascanu", "task": "pascanu"}
    )
    surf = surf.with_parts(
        paths=ls.paths_for_lengths(cell, datas, plane, start=START, lr=LR, steps=STEPS, clip=CLIP)
    )
    return surf.with_parts(cliffs=ls.cliff_metrics(surf))


def save(fig, stem: str) -> None:
    for ext in ("png", "pdf"):
        print(ls.save_figure(fig, f"figures/{stem}.{ext}", dpi=200))


def main() -> None:
    surf = sweep([50])
    j = int(np.argmin(np.abs(surf.x - 5.0)))  # the column w = 5
    col = surf.loss[0, :, j]
    k = int(np.argmax(np.abs(np.diff(col))))
    print(
        f"T = 50, w = 5: the wall lies between b = {surf.y[k]:.4f} and b = {surf.y[k + 1]:.4f}, "
        f"where E_50 jumps from {col[k]:.3f} to {col[k + 1]:.3f}"
    )
    for name in ("plain", "clip"):
        c, g = surf.paths[name].coords[0], surf.paths[name].grad_norm[0]
        far = float(np.max(np.abs(c - c[0]).max(axis=1)))
        print(
            f"{name:5} path from (w, b) = {START}: largest gradient norm {np.nanmax(g):.3g}, "
            f"ends at ({c[-1, 0]:.3f}, {c[-1, 1]:.3f}), farthest {far:.3f} from the start"
        )
    save(ls.plot_facets(surf), "pascanu_fig6")

    surf = sweep([1, 5, 10, 20, 30, 50, 75, 100])
    print(ls.cliff_table(surf))
    save(ls.plot_facets(surf, ncols=4), "pascanu_wall_by_length")
    save(ls.plot_cliffs(surf), "pascanu_cliffs")


if __name__ == "__main__":
    main()
