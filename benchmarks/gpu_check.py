"""One command for a lent GPU: correctness on the device against float64, a few launch shapes, and
the times of the per-point torch.nn loop (sampled and scaled), the reference path, the GPU engine
(Triton), loss + gradients, models of H units against the reference path, and training, within a
time budget.

    python benchmarks/gpu_check.py [--budget 270] [--out gpu_check.jsonl]
    python benchmarks/gpu_check.py --dry-run      # toy sizes on the CPU, kernels interpreted (CI)

Each row is written to the JSONL file as it finishes; a markdown table is printed last. Every
phase has its own share of the budget and runs isolated: a failure or a phase out of time is a row,
not an abort. It runs on whatever torch and triton the machine has (it needs no pins), with this
checkout's ``landscape`` on the path. Ratios are against baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

CELLS = [
    ("rnn", {}),
    ("lstm", {}),
    ("gru", {}),
    ("gru", {"gru_reset": "before"}),
    ("lstm", {"gate": "hard_sigmoid"}),
    ("gru", {"head": "softmax2"}),
    ("pascanu", {}),
]


class Report:
    def __init__(self, path: str):
        self.path, self.rows = path, []
        open(path, "w").close()

    def add(self, **row) -> None:
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")
        print(json.dumps(row, default=str), flush=True)


def phase(report: Report, name: str, deadline: float, fn, *args) -> None:
    """Run one phase if its time has not run out; its failure is a row."""
    if time.monotonic() > deadline:
        report.add(phase=name, status="skipped: out of budget")
        return
    t0 = time.monotonic()
    try:
        fn(report, deadline, *args)
    except Exception as e:  # isolated: the next phase runs
        report.add(phase=name, status=f"failed: {type(e).__name__}: {e}", trace=traceback.format_exc()[-800:])
    else:
        report.add(phase=name, status="done", seconds=round(time.monotonic() - t0, 2))


def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat: int = 1) -> float:
    best = math.inf
    for _ in range(repeat):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def check_correctness(report: Report, deadline: float, device: str, small: dict) -> None:
    """Every variant in float32 on the device against the reference path in float64 on the CPU."""
    import torch

    import landscape as ls
    from landscape.backends import loss_and_grad

    for name, kw in CELLS:
        if time.monotonic() > deadline:
            report.add(phase="correctness", cell=name, status="skipped: out of budget")
            continue
        cell = ls.get_cell(name, **kw)
        task = "pascanu" if name == "pascanu" else "latching"
        data = ls.make_data(task, small["T"], n=small["N"], noise=0.2, seed=1)
        gen = torch.Generator().manual_seed(0)
        base = ls.init_params(cell, seed=3)
        theta = base + torch.randn(small["G"], len(base), generator=gen, dtype=torch.float64)
        l64, _, g64 = loss_and_grad(cell, data.to(torch.float64, "cpu"), theta, backend="reference")
        lf, _, gf = loss_and_grad(
            cell, data.to(torch.float32, device), theta.float().to(device), backend="fused"
        )
        rel = lambda a, b: float(((a.double().cpu() - b).abs() / (b.abs() + 1e-3)).max())
        report.add(
            phase="correctness",
            cell=f"{name} {kw}" if kw else name,
            loss_rel_err=rel(lf, l64),
            grad_rel_err=rel(gf, g64),
            ok=rel(lf, l64) < 1e-3,
        )


def launch_shapes(report: Report, deadline: float, device: str, size: dict) -> None:
    """The forward pass of lstm at a few (models, samples) blocks per program."""
    import torch

    import landscape as ls
    from landscape.engine import gpu
    from landscape.engine.door import one_logit

    cell = ls.get_cell("lstm")
    data = ls.make_data("latching", size["lengths"][-1], n=size["N"], seed=1).to(torch.float32, device)
    G = size["G_shapes"]
    theta = (
        (ls.init_params(cell, seed=3) + torch.randn(G, cell.n_params, dtype=torch.float64)).float().to(device)
    )
    one = one_logit(cell, theta)
    for block in [None, (1, 256), (2, 256), (4, 256), (8, 128), (16, 64), (1, 1024)]:
        if time.monotonic() > deadline:
            break
        run = lambda b=block: gpu.run_triton(cell, one, data.x, data.y, steps=data.length, block=b)
        run()
        t = timed(run, device, 2)
        report.add(
            phase="launch shape",
            block=str(block or gpu.launch_shape(G, size["N"], 0)),
            G=G,
            seconds=t,
            cell_steps_per_s=G * size["N"] * size["lengths"][-1] / t,
        )


def per_point_loop(cell_name: str, theta, data, device: str, budget_s: float) -> tuple[float, int]:
    """Seconds per grid point of the torch.nn loop (one module per point), sampled for budget_s."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    mod = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell_name]
    rnn, head = mod(1, 1, batch_first=True).to(device), nn.Linear(1, 1).to(device)
    x = data.x.to(device)[:, :, None]
    y = data.y.to(device)
    params = [*rnn.parameters(), *head.parameters()]
    n, t0 = 0, time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - t0 < budget_s or n < 2:
            flat, k = theta[n % len(theta)], 0
            for p in params:
                p.copy_(flat[k : k + p.numel()].reshape(p.shape))
                k += p.numel()
            out, _ = rnn(x)
            F.binary_cross_entropy_with_logits(head(out[:, -1])[:, 0], y)
            n += 1
        sync(device)
    return (time.perf_counter() - t0) / n, n


def speed(report: Report, deadline: float, device: str, size: dict) -> None:
    """At res x res, N samples, each length: the per-point loop (sampled, scaled), the reference
    path (a chunk, scaled), the GPU engine over the whole grid, and loss + gradients (a chunk,
    scaled); every ratio against the loop measured here."""
    import torch

    import landscape as ls
    from landscape.backends import _losses

    res, N = size["res"], size["N"]
    for T in size["lengths"]:
        for name in ("rnn", "lstm", "gru"):
            if time.monotonic() > deadline:
                report.add(phase="speed", cell=name, T=T, status="skipped: out of budget")
                continue
            cell = ls.get_cell(name)
            data = ls.make_data("latching", T, n=N, seed=1).to(torch.float32, device)
            plane = ls.axis_plane(cell, ls.init_params(cell), res=(res, res))
            G = res * res
            theta = plane.points(0, res).to(device=device, dtype=torch.float32)  # (G, P): the whole grid
            loop_s, loop_n = per_point_loop(name, theta[:64].cpu(), data, device, size["loop_s"])
            k = min(G, size["chunk"])
            ref = timed(lambda c=cell, d=data, th=theta[:k]: _losses(c, d, th, "reference"), device) * G / k
            full = timed(lambda c=cell, d=data, th=theta: _losses(c, d, th, "fused"), device)
            fast_s = fast_err = None
            if device == "cuda":  # the fast-math variant (tanh.approx): its time and its distance
                from landscape.engine import gpu

                os.environ[gpu.FAST_MATH] = "1"
                try:
                    fast_s = timed(lambda c=cell, d=data, th=theta: _losses(c, d, th, "fused"), device)
                    lo_fast = _losses(cell, data, theta[:k], "fused")[0]
                finally:
                    os.environ.pop(gpu.FAST_MATH)
                lo = _losses(cell, data, theta[:k], "fused")[0]
                fast_err = float(((lo_fast - lo).abs() / (lo.abs() + 1e-3)).max())
            kg = min(G, size["chunk_grad"])
            grad = (
                timed(lambda c=cell, d=data, th=theta[:kg]: _losses(c, d, th, "fused", grad=True), device)
                * G
                / kg
            )
            steps = G * N * T
            report.add(
                phase="speed",
                cell=name,
                T=T,
                res=res,
                N=N,
                loop_points=loop_n,
                loop_s=loop_s * G,
                reference_s=ref,
                triton_s=full,
                triton_fast_s=fast_s,
                fast_rel_err=fast_err,
                triton_grad_s=grad,
                triton_over_loop=loop_s * G / full,
                cell_steps_per_s=steps / full,
                grad_over_loss=grad / full,
            )


UNIT_MODELS = [
    ("lstm", dict(hidden=8)),
    ("gru", dict(hidden=4, layers=2)),
    ("lstm", dict(hidden=32, inputs=4)),
]


def units(report: Report, deadline: float, device: str, size: dict) -> None:
    """Models of H units (the kernels of ``gpu_units``): float32 on the device against the
    reference path in float64 on the CPU, then the loss and loss + gradients of G models at the
    longest length on the reference path and on the GPU engine, the same G on both."""
    import torch

    import landscape as ls
    from landscape.backends import _losses, loss_and_grad
    from landscape.units import init_theta

    T, N, G = size["lengths"][-1], size["N"], size["G_units"]
    for name, kw in UNIT_MODELS:
        if time.monotonic() > deadline:
            report.add(phase="units", cell=name, **kw, status="skipped: out of budget")
            continue
        cell = ls.get_cell(name, **kw)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(N, T, cell.inputs, generator=gen, dtype=torch.float64)
        data = ls.TaskData(
            x if cell.inputs > 1 else x[..., 0], (torch.rand(N, generator=gen) < 0.5).double(), T, "bce"
        )
        base = init_theta(cell, cell.hidden, seed=3, inputs=cell.inputs, layers=cell.layers)
        theta = base + 0.3 * torch.randn(G, len(base), generator=gen, dtype=torch.float64)
        k = min(G, 8)
        l64, _, g64 = loss_and_grad(cell, data.to(torch.float64, "cpu"), theta[:k], backend="reference")
        d32, t32 = data.to(torch.float32, device), theta.float().to(device)
        lf, _, gf = loss_and_grad(cell, d32, t32[:k], backend="fused")
        rel = lambda a, b: float(((a.double().cpu() - b).abs() / (b.abs() + 1e-3)).max())

        def run(backend, grad, c=cell, d=d32, th=t32):
            return lambda: _losses(c, d, th, backend, grad=grad)

        ref, ref_grad = timed(run("reference", False), device), timed(run("reference", True), device)
        tri, tri_grad = timed(run("fused", False), device, 2), timed(run("fused", True), device, 2)
        report.add(
            phase="units",
            cell=f"{name} {kw}",
            G=G,
            N=N,
            T=T,
            loss_rel_err=rel(lf, l64),
            grad_rel_err=rel(gf, g64),
            reference_s=ref,
            reference_grad_s=ref_grad,
            triton_s=tri,
            triton_grad_s=tri_grad,
            triton_over_reference=ref / tri,
            grad_triton_over_reference=ref_grad / tri_grad,
        )


def training(report: Report, deadline: float, device: str, size: dict) -> None:
    """The latching protocol for three cells on the device: the quick preset (or toy sizes), then
    the full protocol if its work, scaled from the quick one's time, fits the phase's budget."""
    from dataclasses import replace

    import landscape as ls

    def work(c) -> float:
        return float(sum(c.lengths)) * c.samples * c.repeats * c.epochs * len(c.tasks)

    quick = replace(
        ls.ExperimentConfig.preset("torch", quick=True),
        cells=("rnn", "lstm", "gru"),
        device=device,
        backend="fused",
        **size.get("train", {}),
    )
    full = replace(ls.ExperimentConfig.preset("torch"), cells=quick.cells, device=device, backend="fused")
    runs = [("quick", quick)] + ([] if size.get("train") else [("full", full)])
    seconds = None
    for name, cfg in runs:
        if seconds is not None:
            guess = seconds * work(cfg) / work(quick)
            if time.monotonic() + guess > deadline:
                report.add(
                    phase="training", protocol=name, status=f"skipped: about {guess:.0f} s, over budget"
                )
                continue
        t0 = time.perf_counter()
        rows = ls.run_experiment(cfg, progress=False)
        took = time.perf_counter() - t0
        seconds = took if seconds is None else seconds
        report.add(
            phase="training",
            protocol=name,
            models=len(rows),
            seconds=took,
            lengths=list(cfg.lengths),
            samples=cfg.samples,
            repeats=cfg.repeats,
            epochs=cfg.epochs,
        )


def table(rows: list[dict]) -> str:
    speed_rows = [r for r in rows if r.get("phase") == "speed" and "triton_s" in r]
    out = [
        "| cell | T | per-point loop (s) | reference (s) | Triton (s) | Triton / loop | cell-steps/s |"
        " loss+grad / loss |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in speed_rows:
        out.append(
            f"| {r['cell']} | {r['T']} | {r['loop_s']:.3g} | {r['reference_s']:.3g} | {r['triton_s']:.3g} | "
            f"{r['triton_over_loop']:.0f}x | {r['cell_steps_per_s']:.2e} | {r['grad_over_loss']:.2f} |"
        )
    for r in rows:
        if r.get("phase") == "units" and "triton_s" in r:
            out.append(
                f"units {r['cell']} (G {r['G']}, N {r['N']}, T {r['T']}): loss "
                f"{r['reference_s']:.3g} s on the reference path, {r['triton_s']:.3g} s on Triton "
                f"({r['triton_over_reference']:.1f}x); loss+grad "
                f"{r['reference_grad_s']:.3g} s / {r['triton_grad_s']:.3g} s "
                f"({r['grad_triton_over_reference']:.1f}x); float32 error loss {r['loss_rel_err']:.1e}, "
                f"grad {r['grad_rel_err']:.1e}"
            )
        if r.get("phase") == "correctness" and "loss_rel_err" in r:
            out.append(f"correctness {r['cell']}: loss {r['loss_rel_err']:.1e}, grad {r['grad_rel_err']:.1e}")
        if r.get("phase") == "training" and "models" in r:
            out.append(f"training ({r['protocol']} protocol): {r['models']} models in {r['seconds']:.1f} s")
        if str(r.get("status", "")).startswith(("failed", "skipped")):
            out.append(f"{r['phase']}: {r['status']}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=270.0, help="seconds for everything")
    ap.add_argument("--out", default="gpu_check.jsonl", help="the JSONL file of rows")
    ap.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU, kernels interpreted")
    args = ap.parse_args(argv)
    if args.dry_run:
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ["LANDSCAPE_TRITON_ON_CPU"] = "1"
    import torch

    device = "cpu" if args.dry_run else "cuda"
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; --dry-run runs toy sizes on the CPU", file=sys.stderr)
        return 2
    small = dict(G=3, N=8, T=5) if args.dry_run else dict(G=64, N=200, T=50)
    size = (
        dict(
            res=4,
            N=6,
            lengths=(3,),
            loop_s=0.05,
            chunk=16,
            chunk_grad=4,
            G_shapes=8,
            G_units=2,
            train=dict(lengths=(2, 3), samples=10, repeats=2, epochs=1),
        )
        if args.dry_run
        else dict(
            res=501,
            N=1000,
            lengths=(50, 200),
            loop_s=2.0,
            chunk=2000,
            chunk_grad=4000,
            G_shapes=20000,
            G_units=256,
        )
    )
    report = Report(args.out)
    start = time.monotonic()
    try:
        import triton

        tv = triton.__version__
    except ImportError:
        tv = None
    report.add(
        phase="machine",
        torch=torch.__version__,
        triton=tv,
        device=(torch.cuda.get_device_name() if device == "cuda" else "cpu (interpreted)"),
        budget_s=args.budget,
    )
    shares = [
        ("correctness", check_correctness, small, 0.1),
        ("launch shapes", launch_shapes, size, 0.05),
        ("speed", speed, size, 0.4),
        ("units", units, size, 0.15),
        ("training", training, size, 0.3),
    ]
    used = 0.0
    for name, fn, sz, share in shares:
        used += share
        phase(report, name, start + used * args.budget, fn, device, sz)
    print(table(report.rows))
    failed = [r for r in report.rows if str(r.get("status", "")).startswith("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
