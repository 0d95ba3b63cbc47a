"""Which weight planes grow cliffs as the sequence grows, for one-unit rnn, lstm and gru?

    python examples/cliffs_by_cell.py

Each cell sits at torch.nn's initialization (seed 0) on information latching (N = 200, noise
0.1); for a few planes per cell the gradient-norm map is computed at lengths 5 to 100. Prints
the largest gradient norm per plane and length, and writes into figures/:
- cliffs_by_cell.png/.pdf: the largest gradient norm against length, one panel per cell;
- latching_<cell>.png/.pdf: the loss over the cell's steepest plane at every length.
"""

import numpy as np
from matplotlib.figure import Figure

import landscape as ls

LENGTHS = [5, 10, 20, 50, 100]
PLANES = {
    "rnn": [("w_hh", "b_hh"), ("w_ih", "w_hh"), ("w_hh", "w_out")],
    "lstm": [("w_hh_g", "b_hh_f"), ("w_hh_f", "b_hh_f"), ("w_hh_g", "w_hh_o"), ("w_ih_i", "w_hh_g")],
    "gru": [("w_hh_n", "b_hh_z"), ("w_hh_n", "b_hh_n"), ("w_hh_z", "b_hh_z"), ("w_ih_n", "w_hh_n")],
}
RANGE, RES, SAMPLES = (-4.0, 4.0), (41, 41), 200


def save(fig, stem: str) -> None:
    for ext in ("png", "pdf"):
        print(ls.save_figure(fig, f"figures/{stem}.{ext}", dpi=200))


def main() -> None:
    datas = [ls.make_data("latching", n, n=SAMPLES, seed=0) for n in LENGTHS]
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    axes = fig.subplots(1, len(PLANES), sharey=True)
    print(f"largest gradient norm over the plane [-4, 4]^2 at L = {LENGTHS}")
    for ax, (name, planes) in zip(axes, PLANES.items(), strict=True):
        cell = ls.get_cell(name)
        center = ls.init_params(cell, seed=0)
        steepest, steepest_surf = -1.0, None
        for x, y in planes:
            plane = ls.axis_plane(cell, center, x=x, y=y, xrange=RANGE, yrange=RANGE, res=RES)
            surf = ls.compute_surface(
                cell,
                plane,
                datas,
                grad=True,
                config={"cell": name, "task": "latching", "plane": f"{x} x {y}"},
            )
            surf = surf.with_parts(cliffs=ls.cliff_metrics(surf))
            g = surf.cliffs.max_grad
            print(f"  {name:4} {x:>7} x {y:<7} " + " ".join(f"{v:9.3g}" for v in g))
            ax.plot(LENGTHS, g, "o-", label=f"{x} x {y}")
            if g[-1] > steepest:
                steepest, steepest_surf = g[-1], surf
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.set_title(f"{name}, latching", fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small")
        save(ls.plot_facets(steepest_surf, ncols=5), f"latching_{name}")
        print(
            f"  {name}: steepest at L = {LENGTHS[-1]}: {steepest_surf.config['plane']}, "
            f"share of cells with |grad| > 1: {np.round(steepest_surf.cliffs.share, 3)}"
        )
    axes[0].set_ylabel("largest gradient norm")
    save(fig, "cliffs_by_cell")


if __name__ == "__main__":
    main()
