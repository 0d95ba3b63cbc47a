"""The toolkit's numbers on fixed problems, saved to compare two versions of it.

    python benchmarks/snapshot.py --save new.npz                    # this checkout
    PYTHONPATH=/path/to/other python benchmarks/snapshot.py --save old.npz
    python benchmarks/snapshot.py --compare new.npz old.npz         # the largest differences

Loss and gradient-norm maps of rnn, lstm, gru and pascanu (31 x 29 axis planes, T = 50, N = 300)
on both engines in float32 and float64, and the weights of lstm and gru ensembles of 1 and 8
units trained for 2 epochs on both engines: what a change of the engine may move only by
rounding, and the reference path not at all.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def snapshot() -> dict[str, np.ndarray]:
    import landscape as ls
    from landscape.train import train_ensemble

    out = {}
    for name in ("rnn", "lstm", "gru", "pascanu"):
        cell = ls.get_cell(name)
        d = ls.make_data("pascanu" if name == "pascanu" else "latching", 50, n=300, seed=1)
        plane = ls.axis_plane(cell, ls.init_params(cell), res=(31, 29))
        for dt in (torch.float32, torch.float64):
            for b in ("reference", "fused"):
                r = ls.evaluate(cell, d, plane, dtype=dt, grad=True, backend=b)
                out[f"{name}_{str(dt)[6:]}_{b}_loss"] = r.loss
                out[f"{name}_{str(dt)[6:]}_{b}_grad_norm"] = r.grad_norm
    for name in ("lstm", "gru"):
        cell = ls.get_cell(name)
        datas = [ls.make_data("latching", n, n=200, seed=2) for n in (5, 12)]
        for b in ("reference", "fused"):
            for H in (1, 8):
                res = train_ensemble(
                    cell,
                    datas,
                    repeats=2,
                    seed=3,
                    epochs=2,
                    batch=16,
                    lr=1e-2,
                    hidden=H,
                    dtype=torch.float32,
                    backend=b,
                    progress=False,
                )
                out[f"train_{name}_{b}_H{H}"] = res.theta.numpy()
    return out


def compare(a: str, b: str) -> None:
    with np.load(a) as x, np.load(b) as y:
        for k in x.files:
            u, v = x[k], y[k]
            fin = np.isfinite(u) & np.isfinite(v)
            d = np.abs(u - v)[fin]
            rel = d / (np.abs(v[fin]) + 1e-300)
            same = np.array_equal(np.isfinite(u), np.isfinite(v))
            print(
                f"{k:32s} identical {np.array_equal(u, v, equal_nan=True)!s:5s}  max abs {d.max():.2e}  "
                f"max rel {rel.max():.2e}  same non-finite {same}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", help="write this checkout's snapshot to this .npz")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="print the differences of two snapshots")
    args = ap.parse_args()
    if args.save:
        np.savez(args.save, **snapshot())
    if args.compare:
        compare(*args.compare)


if __name__ == "__main__":
    main()
