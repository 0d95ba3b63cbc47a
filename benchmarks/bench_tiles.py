"""One large sweep as tiles: in this process against a local Dask cluster of worker processes.

    python benchmarks/bench_tiles.py                  # gru, 201 x 201, T = 50, 100, 200, N = 1000
    python benchmarks/bench_tiles.py --workers 4 --res 301

Both runs compute the same tiles (the same surface, checked), in the same run, one after the
other; the ratio is in-process time / cluster time. On a machine with as many cores as workers,
the in-process run already uses every core through torch's threads, so the cluster can only
pay its start-up; a cluster helps with more cores than one process uses, or more machines.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from landscape import slice as cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell", default="gru")
    ap.add_argument("--len", default="50,100,200")
    ap.add_argument("--res", default="201")
    ap.add_argument("--samples", default="1000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tile-rows", default="8")
    args = ap.parse_args()
    job = [
        "--cell",
        args.cell,
        "--len",
        args.len,
        "--res",
        args.res,
        "--samples",
        args.samples,
        "--tile-rows",
        args.tile_rows,
        "--quiet",
        "--format",
        "png",
    ]
    with tempfile.TemporaryDirectory() as out:
        times = {}
        runs = (("in-process", []), (f"{args.workers} workers", ["--workers", str(args.workers)]))
        for label, extra in runs:
            t0 = time.perf_counter()
            assert cli.main([*job, *extra, "--out", out, "--name", label.replace(" ", "_")]) == 0
            times[label] = time.perf_counter() - t0
        loss = []
        for n in times:
            with np.load(os.path.join(out, f"{n.replace(' ', '_')}.npz")) as f:
                loss.append(f["loss"])
        same = np.array_equal(*loss)
    (l1, t1), (l2, t2) = times.items()
    print(
        f"{args.cell} {args.res} x {args.res}, lengths {args.len}, N = {args.samples}, "
        f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}: {l1} {t1:.1f} s, "
        f"{l2} {t2:.1f} s, "
        f"speed-up {t1 / t2:.2f}x, same surface: {same}"
    )


if __name__ == "__main__":
    main()
