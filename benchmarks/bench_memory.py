"""Memory within ``--mem`` at every model size: the peak resident memory of ``python -m
landscape.slice`` runs, each in its own process, above the same run with chunks of one grid
point (``--mem 1K``: torch, the data, the kernel, the figures, one model's temporaries), against
the chunk budget ``--mem``.

    python benchmarks/bench_memory.py            # 3 LSTM sizes x 2 backends x loss / gradients
    python benchmarks/bench_memory.py --quick    # one size: a smoke run

A ratio at or below 1 means the grid's chunks stayed inside the budget they were given. Writes its
table to benchmarks/results.md (--out).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

from results import write_results

SIZES = [(8, 8, 1), (1, 32, 2), (16, 64, 1)]  # (I, H, L)


def peak_mib(args: list[str]) -> float:
    """Peak resident memory (MiB) of one command, in a fresh process of its own."""
    code = (
        "import resource, sys; from landscape.slice import main; rc = main(sys.argv[1:]); "
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{out.stderr}")
    line = [x for x in out.stdout.splitlines() if x.startswith("PEAK")][-1]
    return int(line.split()[1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mem", default="128M", help="the chunk budget given to every run")
    ap.add_argument("--res", type=int, default=21)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--len", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    args = ap.parse_args()
    mem_mib = {"K": 1 / 1024, "M": 1, "G": 1024}[args.mem[-1].upper()] * float(args.mem[:-1])
    sizes = SIZES[:1] if args.quick else SIZES
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for I, H, L in sizes:
            rng = np.random.default_rng(0)
            data = os.path.join(tmp, f"d{I}.npz")
            x = rng.standard_normal((args.samples, args.len, I))
            np.savez(data, x=x, y=(x[:, 0, 0] > 0).astype(np.float64))
            common = [
                "--cell",
                "lstm",
                "--units",
                str(H),
                "--layers",
                str(L),
                "--data",
                data,
                "--len",
                str(args.len),
                "--plane",
                "random",
                "--quiet",
                "--format",
                "png",
                "--out",
                tmp,
            ]
            for backend in ("reference", "fused"):
                for grad in (False, True):
                    extra = ["--backend", backend] + (["--grad"] if grad else [])
                    grid = ["--res", str(args.res), "--name", "run"]
                    base = peak_mib([*common, *extra, *grid, "--mem", "1K"])  # one point per chunk
                    full = peak_mib([*common, *extra, *grid, "--mem", args.mem])
                    rows.append(
                        (
                            f"lstm ({I}, {H}, {L})",
                            backend,
                            "loss + grad" if grad else "loss",
                            base,
                            full,
                            (full - base) / mem_mib,
                        )
                    )
                    print(rows[-1], flush=True)
    head = (
        "| model (I, H, L) | backend | maps | peak MiB, chunks of 1 point | peak MiB, --mem "
        "| (peak - one point's) / --mem |\n| --- | --- | --- | --- | --- | --- |\n"
    )
    table = head + "".join(
        f"| {m} | {b} | {g} | {base:.0f} | {full:.0f} | {r:.2f} |\n" for m, b, g, base, full, r in rows
    )
    text = (
        f"# bench_memory ({platform.machine()}, {os.cpu_count()} cores)\n\n"
        f"`python benchmarks/bench_memory.py{' --quick' if args.quick else ''}`: peak resident memory of "
        f"`landscape.slice` on {args.res} x {args.res} random planes, N = {args.samples}, "
        f"T = {args.len}, "
        f"float32, `--mem {args.mem}`, above the same run in chunks of one grid point (`--mem 1K`).\n\n"
        + table
    )
    print(table)
    write_results(args.out, "bench_memory", text)


if __name__ == "__main__":
    main()
