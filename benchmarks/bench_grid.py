"""Whole-grid pass against the per-point torch.nn loop that other loss-landscape tools run.

    python benchmarks/bench_grid.py                      # rnn, lstm, gru; 51 x 51; T = 10, 50
    python benchmarks/bench_grid.py --cells lstm --lens 50 --res 21

For each cell and length, both ways evaluate the same axis plane on the same data in float32:
the baseline sets the weights of a live nn.RNN/LSTM/GRU + nn.Linear at every grid point, runs a
forward pass and calls .item(); landscape runs the whole grid in vectorized chunks. It prints
both times, their ratio (baseline / landscape) and the largest difference between the two
surfaces. Times are the best of --repeat runs, measured in the same process, so the ratio holds
on a busy machine where absolute times do not.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import landscape as ls


def per_point(cell, data, plane) -> np.ndarray:
    """The peers' way: mutate one live module per grid point."""
    rnn, head = ls.to_modules(cell)
    names = cell.param_names
    ny, nx = plane.shape
    out = np.empty(ny * nx)
    x = data.x.float()[:, :, None]  # (N, T, 1)
    y = data.y.float()
    params = [p for m in (rnn, head) for p in m.parameters()]
    with torch.no_grad():
        for k in range(ny * nx):
            theta = plane.points(k, k + 1)[0].float()
            i = 0
            for p in params:
                p.copy_(theta[i : i + p.numel()].reshape(p.shape))
                i += p.numel()
            h, _ = rnn(x)
            logits = head(h[:, -1])[:, 0]
            out[k] = F.binary_cross_entropy_with_logits(logits, y).item()
    assert i == len(names)
    return out.reshape(ny, nx)


def best_time(fn, repeat: int, *args) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--lens", default="10,50")
    ap.add_argument("--res", type=int, default=51)
    ap.add_argument("--samples", type=int, default=1000, help="sequences in the data (N)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"grid {args.res} x {args.res}, N = {args.samples}, float32, {torch.get_num_threads()} threads")
    print(f"{'cell':5} {'T':>4} {'per-point s':>12} {'landscape s':>12} {'ratio':>7} {'max |diff|':>11}")
    for name in args.cells.split(","):
        cell = ls.get_cell(name)
        theta = ls.init_params(cell, seed=0)
        plane = ls.axis_plane(cell, theta, res=(args.res, args.res))
        for length in map(int, args.lens.split(",")):
            data = ls.make_data("latching", length, n=args.samples, seed=0)
            t_ref, ref = best_time(per_point, max(1, args.repeat - 1), cell, data, plane)
            t_ls, res = best_time(ls.evaluate, args.repeat, cell, data, plane)
            diff = float(np.max(np.abs(res.loss - ref)))
            print(f"{name:5} {length:4d} {t_ref:12.3f} {t_ls:12.3f} {t_ref / t_ls:7.1f} {diff:11.2e}",
                  flush=True)


if __name__ == "__main__":
    main()
