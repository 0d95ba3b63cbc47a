"""Why does a one-unit LSTM seem to latch information worse than a one-unit SimpleRNN?

    python examples/why_lstm_latching.py            # about three minutes on 2 cores

Part 1, the data bug: the success curves of rnn, lstm and gru on information latching, trained
with the posted split (Keras' validation_split: the last 20% of label-ordered data, one class
only) and with a stratified shuffled split, side by side -> figures/why_success.png/.pdf.

Part 2, the landscape: for rnn and lstm at a short and a long length, REPEATS models are trained
(correct split); the one with the median final validation accuracy is the centre of a plane of
the two parameters that decide whether the cell can latch: for rnn its recurrent weight w_hh and
its input weight w_ih (Bengio et al. 1994: latching needs w_hh > 1 and an input strong enough to
push the state into one of the two attractors); for lstm its forget-gate bias b_hh_f (how much of
the cell state survives a step) and its input-to-candidate weight w_ih_g (how strongly the first
value is written). The loss, the region of validation accuracy >= 0.9, the centre and the
training path are drawn -> figures/why_landscape.png/.pdf. The numbers quoted in the README's
"Why" section are the lines this script prints.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

import landscape as ls
from landscape.experiment import ExperimentConfig, run_experiment, summarize, table
from landscape.figures.success import draw_success
from landscape.train import train_ensemble

LENGTHS = [2, 5, 10, 20, 40, 60]
PROTOCOL = dict(
    samples=4000,
    repeats=10,
    epochs=5,
    batch=16,
    lr=1e-3,
    optimizer="adam",
    val_frac=0.2,
    noise=0.1,
    success=0.9,
    seed=0,
)
SHORT, LONG, REPEATS = 5, 40, 10
PLANES = {"rnn": ("w_hh", "w_ih"), "lstm": ("b_hh_f", "w_ih_g")}
HALF, RES = 4.0, 61  # the plane spans centre +- HALF on both axes


def save(fig: Figure, stem: str) -> None:
    for ext in ("png", "pdf"):
        print(ls.save_figure(fig, f"figures/{stem}.{ext}", dpi=200))


def success_curves() -> None:
    fig = Figure(figsize=(8.4, 3.3), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, keras in zip(axes, (True, False), strict=True):
        cfg = ExperimentConfig(
            cells=["rnn", "lstm", "gru"], tasks=["latching"], lengths=LENGTHS, keras_split=keras, **PROTOCOL
        )
        rows = run_experiment(cfg, progress=False)
        summary = summarize(rows)
        name = "posted split (last 20% of ordered data)" if keras else "stratified shuffled split"
        print(f"frequency of success, {name}:\n{table(summary)}")
        print("mean final validation accuracy:")
        for (_, cell), s in summary.items():
            print(f"  {cell:5} " + " ".join(f"{v:6.2f}" for v in s.mean_acc))
        draw_success(ax, summary, "latching", title=name)
    axes[0].set_ylabel("frequency of success / accuracy")
    axes[1].legend(fontsize="x-small", loc="upper right")
    fig.suptitle(
        f"information latching, one unit, N = {PROTOCOL['samples']}, {PROTOCOL['repeats']} repeats, "
        f"{PROTOCOL['epochs']} epochs",
        fontsize="medium",
    )
    save(fig, "why_success")


def landscape_around_trained() -> None:
    fig = Figure(figsize=(8.4, 7.0), layout="constrained")
    axes = fig.subplots(2, 2)
    for row, (name, (px, py)) in enumerate(PLANES.items()):
        cell = ls.get_cell(name)
        for col, length in enumerate((SHORT, LONG)):
            data = ls.make_data(
                "latching", length, n=PROTOCOL["samples"], noise=PROTOCOL["noise"], seed=length
            )
            res = train_ensemble(
                cell,
                [data],
                repeats=REPEATS,
                seed=0,
                epochs=PROTOCOL["epochs"],
                batch=PROTOCOL["batch"],
                lr=PROTOCOL["lr"],
                record_every=50,
                progress=False,
            )
            acc = res.val_acc[:, -1]
            m = int(np.argsort(acc)[len(acc) // 2])  # the median model
            center = res.theta[m]
            ix, iy = cell.param_names.index(px), cell.param_names.index(py)
            cx, cy = float(center[ix]), float(center[iy])
            plane = ls.axis_plane(
                cell,
                center,
                x=px,
                y=py,
                xrange=(cx - HALF, cx + HALF),
                yrange=(cy - HALF, cy + HALF),
                res=(RES, RES),
            )
            surf = ls.compute_surface(
                cell,
                plane,
                [data],
                grad=True,
                dtype=torch.float64,
                progress=False,
                config={"cell": name, "task": "latching", "plane": f"{px} x {py}"},
            )
            loss, accm, gn = surf.loss[0], surf.accuracy[0], surf.grads.norm[0]
            c0 = (RES // 2, RES // 2)
            chance = float(np.log(2))
            print(
                f"{name:4} L={length:3}: {np.mean(acc >= 0.9):.0%} of {REPEATS} models succeed; "
                f"median model val. acc. {acc[m]:.3f}, {px} = {cx:+.2f}, {py} = {cy:+.2f}; "
                f"loss at centre {loss[c0]:.3f} "
                f"(chance {chance:.3f}), |grad| at centre {gn[c0]:.2e}; on the plane: min loss "
                f"{np.nanmin(loss):.3f}, share with accuracy >= 0.9 {np.mean(accm >= 0.9):.1%}, "
                f"share within 0.01 of chance {np.mean(np.abs(loss - chance) < 0.01):.1%}, "
                f"largest |grad| {np.nanmax(gn):.2e}"
            )
            if name == "lstm":
                names = cell.param_names
                b_f = float(center[names.index("b_ih_f")] + center[names.index("b_hh_f")])
                f = 1 / (1 + np.exp(-b_f))
                print(
                    f"     forget gate at h = x = 0: sigmoid({b_f:+.2f}) = {f:.3f}; "
                    f"the first value's share of the cell state after L steps ~ f^L = {f**length:.2e}"
                )
            ax = axes[row, col]
            im = ax.pcolormesh(surf.x, surf.y, loss, cmap="viridis", vmin=0.0, vmax=1.0, shading="nearest")
            if (accm >= 0.9).any():
                ax.contour(
                    surf.x, surf.y, (accm >= 0.9).astype(float), levels=[0.5], colors="w", linewidths=1
                )
            path = res.path[m]  # (R, P)
            ax.plot(path[:, ix], path[:, iy], "-", color="tab:red", lw=1.2)
            ax.plot(path[0, ix], path[0, iy], "o", color="tab:red", ms=4)
            ax.plot(cx, cy, "*", color="w", mec="k", ms=10)
            ax.set_xlim(surf.x[0], surf.x[-1])
            ax.set_ylim(surf.y[0], surf.y[-1])
            ax.set_xlabel(px)
            ax.set_ylabel(py)
            ax.set_title(f"{name}, L = {length}: median model, val. acc. {acc[m]:.2f}", fontsize="medium")
    fig.colorbar(im, ax=axes, shrink=0.6, label="loss (BCE) on all N sequences; white line: accuracy 0.9")
    fig.suptitle(
        "loss around trained one-unit models (star); red: the training path from its start (dot)",
        fontsize="medium",
    )
    save(fig, "why_landscape")


def main() -> None:
    success_curves()
    landscape_around_trained()


if __name__ == "__main__":
    main()
