"""Whole-grid passes against the per-point torch.nn loop, and against the machine's elementwise limit.

    python benchmarks/bench_grid.py                 # rnn, lstm, gru 101x101 (T 50, 200); pascanu 2001x2001
    python benchmarks/bench_grid.py --quick         # 41x41 and 401x401: a one-minute smoke run
    python benchmarks/bench_grid.py --device cuda   # 501x501 on a GPU, where there is one
    python benchmarks/bench_grid.py --peak          # also: peak memory of a 1001x1001, T = 200 pass

Every row evaluates the same axis plane (w_hh x b_hh, or Pascanu's w x b) on the same latching
data (N = 1000) in float32, measured in one run:

- per-point: what other loss-landscape tools do, the weights of a live nn.RNN/LSTM/GRU + nn.Linear
  set at every grid point, a forward pass and .item() (Pascanu's map: a torch loop per point);
  timed on --sample points and scaled to the grid;
- reference: landscape's readable path (one tensor op per elementwise operation and step);
- fused: the compiled kernel, loss only, and loss + full gradient (grad_norm, grad_x, grad_y);
- limit: the measured throughput of torch.tanh (and torch.sigmoid) on a 4M-element array, as
  cell-steps/s, divided by the cell's count of transcendental functions (rnn 1, gru 3, lstm 5;
  pascanu 1 sigmoid).

Prints cell-steps/s, the ratios against the per-point loop and the reference path, the gradient's
cost relative to the loss, the fraction of the limit and the largest difference from the
reference path, and writes the table to benchmarks/results.md (--out). Times are the best of
--repeat runs, so ratios hold on a busy machine where absolute times do not.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import landscape as ls
from landscape.evaluate import evaluate

from results import write_results

TRANSCENDENTALS = {"rnn": 1, "gru": 3, "lstm": 5, "pascanu": 1}


def per_point(cell, data, plane, idx: np.ndarray, device: str) -> float:
    """The peers' way on the grid points ``idx``: mutate one live module per point, .item() each."""
    if cell.name == "pascanu":
        for k in idx:
            w, b = plane.points(int(k), int(k) + 1)[0].float().to(device)
            v = torch.tensor(0.5, device=device)
            for _ in range(data.length):
                v = w * torch.sigmoid(v) + b
            ((torch.sigmoid(v) - 0.7) ** 2).item()
        return len(idx)
    rnn, head = (m.to(device) for m in ls.to_modules(cell))
    params = [p for m in (rnn, head) for p in m.parameters()]
    x, y = data.x.float()[:, :, None].to(device), data.y.float().to(device)  # (N, T, 1), (N,)
    with torch.no_grad():
        for k in idx:
            theta = plane.points(int(k), int(k) + 1)[0].float()
            i = 0
            for p in params:
                p.copy_(theta[i : i + p.numel()].reshape(p.shape))
                i += p.numel()
            h, _ = rnn(x)
            F.binary_cross_entropy_with_logits(head(h[:, -1])[:, 0], y).item()
    return len(idx)


def best_time(fn, repeat: int, device: str):
    best, out = float("inf"), None
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def elementwise_limit(device: str) -> dict[str, float]:
    """Elements per second of torch.tanh and torch.sigmoid on a 4M-element float32 array."""
    x = torch.randn(1 << 22, device=device)
    out = torch.empty_like(x)
    rates = {}
    for f in (torch.tanh, torch.sigmoid):
        f(x, out=out)
        t, _ = best_time(lambda f=f: [f(x, out=out) for _ in range(10)], 5, device)
        rates[f.__name__] = 10 * x.numel() / t
    return rates


def plane_for(cell, res: int):
    theta = ls.init_params(cell, seed=0)
    return ls.axis_plane(cell, theta, res=(res, res))


def bench_row(name: str, length: int, res: int, args, limit: dict[str, float]) -> dict:
    cell = ls.get_cell(name)
    data = ls.make_data("pascanu" if name == "pascanu" else "latching", length, n=args.samples, seed=0)
    plane = plane_for(cell, res)
    n = 1 if data.x is None else data.x.shape[0]
    steps = res * res * n * length  # cell-steps of one pass
    rng = np.random.default_rng(0)
    idx = rng.choice(res * res, size=min(args.sample, res * res), replace=False)
    t_pp, _ = best_time(lambda: per_point(cell, data, plane, idx, args.device), 1, args.device)
    t_pp *= res * res / len(idx)
    fused_backend = "fused" if args.device == "cpu" else "reference"
    run = lambda backend, grad: evaluate(cell, data, plane, device=args.device, grad=grad,  # noqa: E731
                                         backend=backend)
    t_ref, ref = best_time(lambda: run("reference", False), args.repeat, args.device)
    t_fu, fu = best_time(lambda: run(fused_backend, False), args.repeat, args.device)
    t_gr, gr = best_time(lambda: run(fused_backend, True), args.repeat, args.device)
    lim = limit["sigmoid" if name == "pascanu" else "tanh"] / TRANSCENDENTALS[name]
    diff = float(np.nanmax(np.abs(fu.loss - ref.loss)))
    return dict(cell=name, T=length, grid=f"{res}x{res}", per_point=t_pp, reference=t_ref, fused=t_fu,
                grad=t_gr, rate=steps / t_fu, ref_rate=steps / t_ref, limit=lim, diff=diff,
                grad_diff=float(np.nanmax(np.abs(gr.loss - ref.loss))))


HEADER = ("| cell | T | grid | per-point loop s | reference s | fused s | fused / per-point | "
          "fused / reference | loss+grad / loss | fused cell-steps/s | reference cell-steps/s | "
          "limit cell-steps/s | fraction of limit | max abs diff |")


def row_md(r: dict) -> str:
    return (f"| {r['cell']} | {r['T']} | {r['grid']} | {r['per_point']:.2f} | {r['reference']:.3f} | "
            f"{r['fused']:.3f} | {r['per_point'] / r['fused']:.1f}x | {r['reference'] / r['fused']:.2f}x | "
            f"{r['grad'] / r['fused']:.2f}x | {r['rate']:.3g} | {r['ref_rate']:.3g} | {r['limit']:.3g} | "
            f"{r['rate'] / r['limit']:.0%} | {r['diff']:.1e} |")


def peak_memory(mem: str) -> str:
    """Peak resident memory of a 1001 x 1001, N = 1000, T = 200 rnn pass with gradients, in a child."""
    code = ("import resource, landscape.slice as s; "
            "s.main(['--cell', 'rnn', '--len', '200', '--res', '1001', '--grad', '--quiet', '--mem', "
            f"'{mem}', '--format', 'png', '--out', '/tmp/landscape-peak', '--name', 'peak']); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss = int(done.stdout.strip().splitlines()[-1]) / 2**20
    return (f"1001x1001, N = 1000, T = 200, rnn, --grad --mem {mem}: peak resident memory {rss:.2f} GiB "
            f"(whole process, figures included) in {time.perf_counter() - t0:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--cells", default="rnn,lstm,gru,pascanu")
    ap.add_argument("--lens", default="50,200", help="lengths of the rnn/lstm/gru rows")
    ap.add_argument("--res", type=int, default=None, help="grid side (default 101 on cpu, 501 on cuda)")
    ap.add_argument("--pascanu-res", type=int, default=2001)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=40, help="grid points timed for the per-point loop")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="41x41 and 401x401 grids, T = 50 only")
    ap.add_argument("--peak", action="store_true", help="also measure peak memory of a 1001x1001 pass")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_grid: --device cuda: no CUDA device here")
    res = args.res or (501 if args.device == "cuda" else 101)
    lens = [50] if args.quick else [int(v) for v in args.lens.split(",")]
    if args.quick:
        res, args.pascanu_res = 41, 401
    limit = elementwise_limit(args.device)
    machine = (torch.cuda.get_device_name() if args.device == "cuda"
               else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"{machine}; torch.tanh {limit['tanh']:.3g}/s, torch.sigmoid {limit['sigmoid']:.3g}/s; "
          f"N = {args.samples}, float32")
    print(HEADER)
    rows = []
    for name in args.cells.split(","):
        for length in ([50] if name == "pascanu" else lens):
            r = bench_row(name, length, args.pascanu_res if name == "pascanu" else res, args, limit)
            rows.append(r)
            print(row_md(r), flush=True)
    lines = [f"# bench_grid ({args.device})", "",
             f"`python benchmarks/bench_grid.py{' --quick' if args.quick else ''}"
             f"{' --device cuda' if args.device == 'cuda' else ''}` on {machine}; "
             f"torch.tanh {limit['tanh']:.3g} elements/s, torch.sigmoid {limit['sigmoid']:.3g} elements/s.",
             "", HEADER, HEADER_RULE,
             *[row_md(r) for r in rows]]
    if args.peak:
        line = peak_memory("1G")
        print(line)
        lines += ["", line]
    write_results(args.out, f"# bench_grid ({args.device})", "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


HEADER_RULE = "|" + " --- |" * (HEADER.count("|") - 1)


if __name__ == "__main__":
    main()
