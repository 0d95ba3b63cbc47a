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
  pascanu 1 sigmoid);
- in-register limit: the kernel's own vector tanh (sigmoid) on values already in registers
  (``ls_vmath`` with repeats, on every thread), divided the same way: what the kernel's
  arithmetic could reach if a step cost its transcendentals alone;
- clang: the fused loss with the kernel built by clang (where it is installed), beside the
  default compiler's;
- models of (I, H, L) = (3, 8, 1), (1, 32, 2), (8, 64, 1) (an LSTM and one logit, N = 1000,
  T = 50): the fused kernel's loss against the per-point torch.nn loop, per grid point of a
  51 x 51 plane, both timed on a sample of its points.

Prints cell-steps/s, the ratios against the per-point loop and the reference path, the gradient's
cost relative to the loss, the fraction of the limit and the largest difference from the
reference path, and writes the table to benchmarks/results.md (--out). Times are the best of
--repeat runs, so ratios hold on a busy machine where absolute times do not.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import landscape as ls
from landscape.engine import build as K
from landscape.engine.fused import kernel_losses
from landscape.evaluate import evaluate
from landscape.units import init_theta, modules, shapes

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


def inregister_limit() -> dict[str, float]:
    """Values per second of the kernel's vector tanh and sigmoid in registers, on every thread."""
    from concurrent.futures import ThreadPoolExecutor

    n_threads, reps = torch.get_num_threads(), 64
    x = np.linspace(-3, 3, 1 << 14, dtype=np.float32)
    rates = {}
    with ThreadPoolExecutor(n_threads) as pool:
        for fn in ("tanh", "sigmoid"):
            t, _ = best_time(
                lambda fn=fn: list(pool.map(lambda _: K.vmath(fn, x, reps), range(n_threads))), 5, "cpu"
            )
            rates[fn] = n_threads * x.size * reps / t
    return rates


class compiler:
    """The kernel built by another compiler inside the block (CC set, the library state fresh)."""

    def __init__(self, cc: str):
        self.cc = cc

    def __enter__(self):
        self.saved, self.env = dict(K._state), os.environ.get("CC")
        os.environ["CC"] = self.cc
        K._state.clear()
        if not K.available():
            raise RuntimeError(K.unavailable_reason())

    def __exit__(self, *exc):
        K._state.clear()
        K._state.update(self.saved)
        if self.env is None:
            os.environ.pop("CC", None)
        else:
            os.environ["CC"] = self.env


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
    run = lambda backend, grad: evaluate(
        cell,
        data,
        plane,
        device=args.device,
        grad=grad,  # noqa: E731
        backend=backend,
    )
    t_ref, ref = best_time(lambda: run("reference", False), args.repeat, args.device)
    t_fu, fu = best_time(lambda: run(fused_backend, False), args.repeat, args.device)
    t_gr, gr = best_time(lambda: run(fused_backend, True), args.repeat, args.device)
    fn = "sigmoid" if name == "pascanu" else "tanh"
    lim = limit[fn] / TRANSCENDENTALS[name]
    reg = limit.get("reg_" + fn, float("nan")) / TRANSCENDENTALS[name]
    t_cl = float("nan")
    if args.clang and args.device == "cpu":
        with compiler(args.clang):
            t_cl, _ = best_time(lambda: run("fused", False), args.repeat, args.device)
    diff = float(np.nanmax(np.abs(fu.loss - ref.loss)))
    return dict(
        cell=name,
        T=length,
        grid=f"{res}x{res}",
        per_point=t_pp,
        reference=t_ref,
        fused=t_fu,
        grad=t_gr,
        rate=steps / t_fu,
        ref_rate=steps / t_ref,
        limit=lim,
        reg=reg,
        clang=t_cl,
        diff=diff,
        grad_diff=float(np.nanmax(np.abs(gr.loss - ref.loss))),
    )


HEADER = (
    "| cell | T | grid | per-point loop s | reference s | fused s | fused / per-point | "
    "fused / reference | loss+grad / loss | fused cell-steps/s | reference cell-steps/s | "
    "limit cell-steps/s | fraction of limit | in-register limit | fraction of in-register | "
    "clang fused s | clang / default | max abs diff |"
)


def row_md(r: dict) -> str:
    return (
        f"| {r['cell']} | {r['T']} | {r['grid']} | {r['per_point']:.2f} | {r['reference']:.3f} | "
        f"{r['fused']:.3f} | {r['per_point'] / r['fused']:.1f}x | {r['reference'] / r['fused']:.2f}x | "
        f"{r['grad'] / r['fused']:.2f}x | {r['rate']:.3g} | {r['ref_rate']:.3g} | {r['limit']:.3g} | "
        f"{r['rate'] / r['limit']:.0%} | {r['reg']:.3g} | {r['rate'] / r['reg']:.0%} | "
        f"{r['clang']:.3f} | {r['clang'] / r['fused']:.2f}x | {r['diff']:.1e} |"
    )


SIZES = [(3, 8, 1), (1, 32, 2), (8, 64, 1)]  # (I, H, L)


def bench_size(size: tuple[int, int, int], args, limit: dict[str, float]) -> dict:
    """A 51 x 51 plane of LSTMs of one size: the kernel's loss against the per-point torch.nn loop
    (one module, its weights set at every point, a forward pass and .item()), per point."""
    I, H, L = size  # noqa: E741 - torch.nn's input_size, hidden_size, num_layers
    cell, res, T = ls.get_cell("lstm"), 51, 50
    gen = torch.Generator().manual_seed(0)
    center = init_theta(cell, H, seed=0, inputs=I, layers=L).float()
    keys = shapes(cell, H, inputs=I, layers=L)
    P = len(center)
    # the plane: two recurrent weights of the first layer, as an axis plane would take them
    k = keys[0][2][0] * keys[0][2][1]
    axes = torch.zeros(2, P)
    axes[0, k], axes[1, k + 1] = 1.0, 1.0
    u = torch.linspace(-2, 2, res)
    grid = torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    idx = torch.randperm(res * res, generator=gen)[: args.model_points]
    theta = center + grid[idx] @ axes  # (points, P)
    x = torch.randn(args.samples, T, I, generator=gen)
    y = (torch.rand(args.samples, generator=gen) < 0.5).float()
    rnn, head = modules(cell, H, inputs=I, layers=L)

    def per_point() -> list[float]:
        out = []
        params = [dict(rnn.named_parameters(), **dict(head.named_parameters()))[key] for _, key, _ in keys]
        with torch.no_grad():
            for th in theta:
                i = 0
                for p in params:
                    p.copy_(th[i : i + p.numel()].reshape(p.shape))
                    i += p.numel()
                h, _ = rnn(x)
                out.append(F.binary_cross_entropy_with_logits(head(h[:, -1])[:, 0], y).item())
        return out

    t_pp, want = best_time(per_point, 1, "cpu")
    xk = x[..., 0] if I == 1 else x  # the kernel's layout: (N, T) for one input, (N, T, I) for more
    with torch.no_grad():
        t_fu, (got, _) = best_time(
            lambda: kernel_losses(cell, theta, xk, y, steps=T, hidden=H, inputs=I, layers=L),
            args.repeat,
            "cpu",
        )
    t_gr, _ = best_time(
        lambda: (
            kernel_losses(
                cell, theta.clone().requires_grad_(True), xk, y, steps=T, hidden=H, inputs=I, layers=L
            )[0]
            .sum()
            .backward()
        ),
        args.repeat,
        "cpu",
    )
    n = len(idx)
    # the least time a point can take: its 5 transcendentals per unit, layer and step at the
    # kernel's in-register rate (every thread)
    bound = 5 * H * L * args.samples * T / limit.get("reg_tanh", float("nan"))
    return dict(
        size=f"({I}, {H}, {L})",
        P=P,
        points=n,
        per_point=t_pp / n,
        fused=t_fu / n,
        grad=t_gr / t_fu,
        bound=bound,
        diff=float(np.max(np.abs(got.numpy() - np.array(want)))),
    )


SIZE_HEADER = (
    "| lstm (I, H, L) | parameters | points timed | per-point loop s/point | fused s/point | "
    "fused / per-point | transcendental bound s/point | per-point / bound | loss+grad / loss | "
    "max abs diff |"
)


def size_md(r: dict) -> str:
    return (
        f"| {r['size']} | {r['P']} | {r['points']} | {r['per_point']:.4f} | {r['fused']:.4f} | "
        f"{r['per_point'] / r['fused']:.1f}x | {r['bound']:.4f} | {r['per_point'] / r['bound']:.1f}x | "
        f"{r['grad']:.2f}x | {r['diff']:.1e} |"
    )


def peak_memory(mem: str) -> str:
    """Peak resident memory of a 1001 x 1001, N = 1000, T = 200 rnn pass with gradients, in a child."""
    code = (
        "import resource, landscape.slice as s; "
        "s.main(['--cell', 'rnn', '--len', '200', '--res', '1001', '--grad', '--quiet', '--mem', "
        f"'{mem}', '--format', 'png', '--out', '/tmp/landscape-peak', '--name', 'peak']); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss = int(done.stdout.strip().splitlines()[-1]) / 2**20
    return (
        f"1001x1001, N = 1000, T = 200, rnn, --grad --mem {mem}: peak resident memory {rss:.2f} GiB "
        f"(whole process, figures included) in {time.perf_counter() - t0:.0f} s"
    )


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
    ap.add_argument(
        "--clang",
        default=shutil.which("clang") or "",
        help="the clang to build a second kernel with ('' for none)",
    )
    ap.add_argument(
        "--sizes",
        default=",".join(f"{i}x{h}x{n}" for i, h, n in SIZES),
        help="model sizes IxHxL of the LSTM rows ('' for none)",
    )
    ap.add_argument("--model-points", type=int, default=24, help="grid points timed per model size")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_grid: --device cuda: no CUDA device here")
    res = args.res or (501 if args.device == "cuda" else 101)
    lens = [50] if args.quick else [int(v) for v in args.lens.split(",")]
    if args.quick:
        res, args.pascanu_res = 41, 401
    limit = elementwise_limit(args.device)
    if args.device == "cpu":
        limit.update({f"reg_{k}": v for k, v in inregister_limit().items()})
    machine = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    reg = (
        f"; in registers, the kernel's tanh {limit['reg_tanh']:.3g}/s, sigmoid {limit['reg_sigmoid']:.3g}/s"
        if "reg_tanh" in limit
        else ""
    )
    cc = f"; default compiler {K.library().ls_compiler().decode()}" if args.device == "cpu" else ""
    print(
        f"{machine}; torch.tanh {limit['tanh']:.3g}/s, torch.sigmoid {limit['sigmoid']:.3g}/s{reg}; "
        f"N = {args.samples}, float32{cc}"
    )
    print(HEADER)
    rows = []
    for name in args.cells.split(","):
        for length in [50] if name == "pascanu" else lens:
            r = bench_row(name, length, args.pascanu_res if name == "pascanu" else res, args, limit)
            rows.append(r)
            print(row_md(r), flush=True)
    lines = [
        f"# bench_grid ({args.device})",
        "",
        f"`python benchmarks/bench_grid.py{' --quick' if args.quick else ''}"
        f"{' --device cuda' if args.device == 'cuda' else ''}` on {machine}; "
        f"torch.tanh {limit['tanh']:.3g} elements/s, torch.sigmoid {limit['sigmoid']:.3g} "
        f"elements/s{reg}{cc}; clang: {args.clang or 'none'}.",
        "",
        HEADER,
        HEADER_RULE,
        *[row_md(r) for r in rows],
    ]
    if args.sizes and args.device == "cpu":
        print(SIZE_HEADER)
        size_rows = []
        for text in args.sizes.split(","):
            r = bench_size(tuple(int(v) for v in text.split("x")), args, limit)
            size_rows.append(r)
            print(size_md(r), flush=True)
        lines += [
            "",
            f"Models of several sizes, 51 x 51 planes, N = {args.samples}, T = 50, float32:",
            "",
            SIZE_HEADER,
            "|" + " --- |" * (SIZE_HEADER.count("|") - 1),
            *[size_md(r) for r in size_rows],
        ]
    if args.peak:
        line = peak_memory("1G")
        print(line)
        lines += ["", line]
    write_results(args.out, f"# bench_grid ({args.device})", "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


HEADER_RULE = "|" + " --- |" * (HEADER.count("|") - 1)


if __name__ == "__main__":
    main()
