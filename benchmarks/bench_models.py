"""Your own models, timed: the engine on models of several sizes and the generic fallback, each
against the per-point torch.nn loop of other loss-landscape tools, measured in the same run.

    python benchmarks/bench_models.py            # 51 x 51 planes, N = 1000, T = 50
    python benchmarks/bench_models.py --quick    # 11 x 11, N = 200, T = 20: a smoke run

- per-point: a copy of the user's module, its weights set at each grid point with
  ``vector_to_parameters``, one forward pass and ``.item()``; timed on ``--sample`` points and
  scaled to the grid;
- engine: ``landscape.evaluate`` over the whole plane (the fused kernel where it runs, float32);
- generic: ``landscape.slice_module`` (torch.func, vmap where the module allows), on an LSTM, whose
  fused torch.nn kernel has no batching rule, and on a small 1-D convolution.

Writes its table to benchmarks/results.md (--out). Times are the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import torch
from torch import nn
from torch.nn.utils import vector_to_parameters

import landscape as ls
from landscape.evaluate import evaluate
from landscape.tasks import TaskData

from results import write_results

SIZES = [(8, 8, 1), (1, 32, 2), (16, 64, 1)]  # (I, H, L) of issue-sized LSTMs


class Net(nn.Module):
    def __init__(self, I: int, H: int, L: int):
        super().__init__()
        self.rnn, self.head = nn.LSTM(I, H, num_layers=L, batch_first=True), nn.Linear(H, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])[:, 0]


class Conv(nn.Module):
    def __init__(self, I: int):
        super().__init__()
        self.conv, self.out = nn.Conv1d(I, 16, 5), nn.Linear(16, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.conv(x.transpose(1, 2))).mean(-1))[:, 0]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_point(module, x, y, plane, sample: int) -> float:
    """Seconds per grid point of the per-point loop, on the plane's first ``sample`` points."""
    m = copy.deepcopy(module)
    loss = nn.functional.binary_cross_entropy_with_logits
    pts = plane.points(0, sample).float()
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in pts:
            vector_to_parameters(p, m.parameters())
            loss(m(x), y).item()
    return (time.perf_counter() - t0) / sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sample", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    args = ap.parse_args()
    res, N, T = (11, 200, 20) if args.quick else (51, 1000, 50)
    torch.manual_seed(0)
    rows = []
    for I, H, L in SIZES:
        net = Net(I, H, L)
        x = torch.randn(N, T, I)
        y = (x[:, 0, 0] > 0).float()
        cell, theta = ls.from_modules(net)
        plane = ls.random_plane(theta, cell=cell, res=(res, res))
        data = TaskData(x.double(), y.double(), T, "bce")
        pp = per_point(net, x, y, plane, args.sample)
        evaluate(cell, data, ls.random_plane(theta, cell=cell, res=(2, 2)))  # the kernel built and probed
        eng = best(lambda: evaluate(cell, data, plane), args.repeat) / res**2  # noqa: B023
        gen = None
        if H <= 8:  # the fallback is the per-point loop's speed: time it on the small model only
            sub = ls.random_plane(theta, cell=cell, res=(args.sample, 1 + 1), seed=1)
            loss = nn.functional.binary_cross_entropy_with_logits
            gen = best(lambda: ls.slice_module(net, loss, x, y, sub), args.repeat) / (2 * args.sample)  # noqa: B023
        rows.append((f"lstm ({I}, {H}, {L})", cell.n_params, pp, eng, gen))
    conv = Conv(8)
    x = torch.randn(N, T, 8)
    y = (x[:, 0, 0] > 0).float()
    theta = ls.module_vector(conv)
    plane = ls.random_plane(theta, filters=ls.module_filters(conv), res=(res, res))
    loss = nn.functional.binary_cross_entropy_with_logits
    pp = per_point(conv, x, y, plane, args.sample)
    gen = best(lambda: ls.slice_module(conv, loss, x, y, plane), args.repeat) / res**2
    rows.append(("conv1d (8 -> 16, k 5)", int(theta.numel()), pp, None, gen))

    head = "# bench_models"
    lines = [
        head + f" ({platform.machine()}, {torch.get_num_threads()} threads)",
        "",
        f"`python benchmarks/bench_models.py{' --quick' if args.quick else ''}`: random planes of "
        f"{res} x {res}, N = {N}, T = {T}, float32; per-point times from {args.sample} points, the "
        f"best of {args.repeat} runs.",
        "",
        "| model (I, H, L) | parameters | per-point s/point | engine s/point | engine / per-point | "
        "generic s/point | generic / per-point |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, P, pp, eng, gen in rows:
        e = "-" if eng is None else f"{eng:.2e} | {pp / eng:.1f}x"
        g = "-" if gen is None else f"{gen:.2e} | {gen / pp:.2f}x the time"
        lines.append(
            f"| {name} | {P} | {pp:.2e} | {e if eng is not None else '- | -'} | "
            f"{g if gen is not None else '- | -'} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    write_results(args.out, head, table)


if __name__ == "__main__":
    main()
