"""A sweep of lengths from one pass: the states after every length kept along one pass over the
longest sequences (where each length's data are the first steps of the same sequences, a user's
file), against a pass of its own per length, as sweeps ran before, in the same run.

    python benchmarks/bench_prefix.py            # lengths 10, 20, .., 200
    python benchmarks/bench_prefix.py --quick    # a smoke run

The ratio is the time of a pass per length over the time of one pass; the work of a pass per
length is the sum of the lengths, one pass's the longest (2100 against 200 steps: up to 10.5x).
Both give the same arrays (tests/test_evaluate_prefix.py); this checks it again. Writes its table to
benchmarks/results.md (--out).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from landscape.cells import get_cell
from landscape.evaluate import _evaluate, _evaluate_prefixes, prefix_sweep
from landscape.planes import random_plane
from landscape.tasks import _from_arrays

from results import write_results

# (cell, hidden, inputs, backend, res)
CASES = [
    ("lstm", 1, 1, "fused", 51),
    ("gru", 1, 1, "fused", 51),
    ("rnn", 1, 1, "reference", 21),
    ("lstm", 8, 8, "fused", 21),
    ("lstm", 8, 8, "reference", 11),
]


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    args = ap.parse_args()
    lengths = list(range(10, 201, 10)) if not args.quick else [5, 10, 20]
    n = args.samples if not args.quick else 100
    rows = []
    for name, H, I, backend, res in CASES[:2] if args.quick else CASES:
        cell = get_cell(name, hidden=H, inputs=I)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, max(lengths), I) if I > 1 else (n, max(lengths)))
        y = (rng.random(n) < 0.5).astype(np.float64)
        datas = [_from_arrays(x, y, L, cell.objective).to(torch.float32, "cpu") for L in lengths]
        center = torch.from_numpy(rng.normal(scale=0.5, size=cell.n_params))
        plane = random_plane(center, seed=0, res=(res, res))
        assert prefix_sweep([plane] * len(datas), datas)
        opts = dict(dtype=torch.float32, device="cpu", mem=1 << 30, backend=backend)
        _evaluate(cell, datas[0], plane, **opts, grad=False)  # the kernel built, caches warm

        def each(cell=cell, datas=datas, plane=plane, opts=opts):
            return [_evaluate(cell, d, plane, **opts, grad=False) for d in datas]

        def once(cell=cell, datas=datas, plane=plane, opts=opts):
            return _evaluate_prefixes(cell, datas[-1], plane, lengths, **opts)

        a, b = each(), once()
        same = all(np.array_equal(p.loss, q.loss) for p, q in zip(a, b, strict=True))
        t_each, t_once = best(each, args.reps), best(once, args.reps)
        rows.append(
            (f"{name} ({I}, {H}, 1)", backend, f"{res} x {res}", t_each, t_once, t_each / t_once, same)
        )
        print(rows[-1], flush=True)
    head = (
        "| model (I, H, L) | backend | grid | a pass per length (s) | one pass (s) | ratio "
        "| same arrays |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    table = head + "".join(
        f"| {m} | {be} | {g} | {te:.2f} | {to:.2f} | {r:.1f}x | {'yes' if s else 'no'} |\n"
        for m, be, g, te, to, r, s in rows
    )
    text = (
        f"# bench_prefix ({platform.machine()}, {os.cpu_count()} cores)\n\n"
        f"`python benchmarks/bench_prefix.py{' --quick' if args.quick else ''}`: a sweep of lengths "
        f"{lengths[0]}, {lengths[1]}, .., {lengths[-1]} ({len(lengths)} lengths) over a file of N = {n} "
        f"sequences, float32, random planes; the best of {args.reps} runs of each.\n\n" + table
    )
    print(table)
    write_results(args.out, "bench_prefix", text)


if __name__ == "__main__":
    main()
