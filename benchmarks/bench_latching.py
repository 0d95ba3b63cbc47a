"""The latching experiment's full default protocol, timed, against one-at-a-time torch.nn training.

    python benchmarks/bench_latching.py                 # rnn, lstm, gru on latching, posted protocol
    python benchmarks/bench_latching.py --lengths 2,50,200 --repeats 5 --samples 2000

Runs landscape.experiment.run_experiment (all repeats and lengths of a cell as one vectorized
ensemble, on the fused kernel where it runs: --backend) and times each cell. Two baselines, in
the same run:
- one at a time: single models trained the usual way (torch.nn module, torch.optim.Adam, one
  batch at a time) for --baseline-steps steps at a few lengths; time per model-step, times the
  protocol's model-steps, estimates the one-at-a-time run;
- the reference path: the same ensemble through the readable torch path and autograd, on a
  smaller protocol (--ratio-lengths, --repeats, N = 2000) timed both ways.
Prints the times and ratios and writes them to benchmarks/results.md.

Models of H > 1 units (--units, default 2,4,8,16; --units-only skips the rest): the same small
ensemble trained on the reference path (torch batched matrix products and autograd) and on the
fused kernel, in the same run, for each cell and H; prints fused/reference time ratios.

    python benchmarks/bench_latching.py --units-only
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

import landscape as ls
from landscape.engine import fused
from landscape.experiment import POSTED_LENGTHS, ExperimentConfig, run_experiment, summarize, table

from results import write_results


def baseline_step_time(cell: str, length: int, steps: int, batch: int) -> float:
    """Seconds per optimizer step of one torch.nn model trained alone (Keras' Adam settings)."""
    data = ls.make_data("latching", length, n=batch * steps, seed=0)
    rnn, head = ls.to_modules(cell)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=1e-3, eps=1e-7)
    x, y = data.x.float()[:, :, None], data.y.float()
    t0 = time.perf_counter()
    for s in range(steps):
        b = slice(s * batch, (s + 1) * batch)
        out, _ = rnn(x[b])
        loss = F.binary_cross_entropy_with_logits(head(out[:, -1])[:, 0], y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def units_ratios(args) -> list[str]:
    """Table rows: each cell and H, seconds of training on the reference path and on the fused one."""
    lengths = [int(v) for v in args.units_lengths.split(",")]
    small = dict(
        tasks=["latching"],
        lengths=lengths,
        samples=args.units_samples,
        repeats=args.units_repeats,
        epochs=1,
        batch=args.batch,
        lr=1e-3,
        optimizer="adam",
        val_frac=0.2,
        noise=0.1,
        success=0.9,
        seed=0,
        keras_split=False,
    )
    print(
        f"H > 1: lengths {lengths}, N = {args.units_samples}, {args.units_repeats} repeats, 1 epoch, "
        f"batch {args.batch}, float32",
        flush=True,
    )
    lines = []
    fused.available()  # build the kernel before any timing
    for cell in args.cells.split(","):
        for H in (int(v) for v in args.units.split(",")):
            times = {}
            for backend in ("reference", "fused"):
                times[backend] = float("inf")
                for _ in range(args.units_tries):  # the best of a few: other work on the machine only adds
                    t0 = time.perf_counter()
                    run_experiment(
                        ExperimentConfig(**small, cells=[cell], units=H, backend=backend), progress=False
                    )
                    times[backend] = min(times[backend], time.perf_counter() - t0)
            ratio = times["fused"] / times["reference"]
            line = (
                f"| {cell} | {H} | {times['reference']:.2f} | {times['fused']:.2f} | {ratio:.3f} | "
                f"{1 / ratio:.1f}x |"
            )
            lines.append(line)
            print(line, flush=True)
    return lines


def write_units(args, lines: list[str]) -> None:
    head = "| cell | H | reference s | fused s | fused / reference | speed-up |"
    section = "\n".join(
        [
            "# bench_latching units (cpu)",
            "",
            f"`python benchmarks/bench_latching.py --units-only` ({torch.get_num_threads()} threads): "
            f"lengths {args.units_lengths}, N = {args.units_samples}, {args.units_repeats} repeats, 1 epoch, "
            f"batch {args.batch}, float32; the same ensemble on both paths, in the same run, the best of "
            f"{args.units_tries} runs each.",
            "",
            head,
            "|" + " --- |" * (head.count("|") - 1),
            *lines,
            "",
        ]
    )
    write_results(args.out, "# bench_latching units (cpu)", section)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--lengths", default=",".join(map(str, POSTED_LENGTHS)))
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--baseline-steps", type=int, default=30)
    ap.add_argument("--backend", default="auto", choices=("auto", "reference", "fused"))
    ap.add_argument(
        "--ratio-lengths", default="2,50,200", help="lengths of the smaller protocol timed on both paths"
    )
    ap.add_argument("--units", default="2,4,8,16", help="hidden sizes H > 1 timed on both paths")
    ap.add_argument("--units-lengths", default="10,50,200")
    ap.add_argument("--units-samples", type=int, default=2000)
    ap.add_argument("--units-repeats", type=int, default=4)
    ap.add_argument("--units-tries", type=int, default=2, help="runs per path and H; the fastest counts")
    ap.add_argument("--units-only", action="store_true", help="only the H > 1 measurement")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results.md"))
    args = ap.parse_args()
    if args.units:
        write_units(args, units_ratios(args))
    if args.units_only:
        print(f"wrote {args.out}")
        return
    lengths = [int(v) for v in args.lengths.split(",")]
    steps = args.epochs * -(-int(args.samples * 0.8) // args.batch)
    print(
        f"protocol: N = {args.samples}, {args.repeats} repeats, {len(lengths)} lengths "
        f"({lengths[0]}..{lengths[-1]}), {args.epochs} epochs, batch {args.batch}: "
        f"{steps} steps per model; {torch.get_num_threads()} threads",
        flush=True,
    )
    total, total_base = 0.0, 0.0
    rows, lines = [], []
    for cell in args.cells.split(","):
        t0 = time.perf_counter()
        rows += run_experiment(
            ExperimentConfig(
                cells=[cell],
                tasks=["latching"],
                lengths=lengths,
                samples=args.samples,
                repeats=args.repeats,
                epochs=args.epochs,
                batch=args.batch,
                lr=1e-3,
                optimizer="adam",
                val_frac=0.2,
                noise=0.1,
                success=0.9,
                seed=0,
                keras_split=False,
                backend=args.backend,
            ),
            progress=False,
        )
        t = time.perf_counter() - t0
        probe = sorted({lengths[0], lengths[len(lengths) // 2], lengths[-1]})
        per_step = [baseline_step_time(cell, n, args.baseline_steps, args.batch) for n in probe]
        # a step's cost grows about linearly with length: interpolate the probes over every length
        base = args.repeats * steps * float(np.sum(np.interp(lengths, probe, per_step)))
        total, total_base = total + t, total_base + base
        small_lengths = [int(v) for v in args.ratio_lengths.split(",")]
        small = dict(
            cells=[cell],
            tasks=["latching"],
            lengths=small_lengths,
            samples=2000,
            repeats=args.repeats,
            epochs=args.epochs,
            batch=args.batch,
            lr=1e-3,
            optimizer="adam",
            val_frac=0.2,
            noise=0.1,
            success=0.9,
            seed=0,
            keras_split=False,
        )
        times = {}
        for backend in ("reference", "fused"):
            t1 = time.perf_counter()
            run_experiment(ExperimentConfig(**small, backend=backend), progress=False)
            times[backend] = time.perf_counter() - t1
        line = (
            f"| {cell} | {t:.1f} | {base:.0f} | {base / t:.0f}x | {times['reference']:.2f} | "
            f"{times['fused']:.2f} | {times['reference'] / times['fused']:.1f}x |"
        )
        lines.append(line)
        print(line, flush=True)
    summary = (
        f"all three cells: {total:.1f} s ({total / 60:.1f} min); one at a time (estimated) "
        f"{total_base:.0f} s ({total_base / 3600:.1f} h), ratio {total_base / total:.0f}x"
    )
    print(summary)
    print(table(summarize(rows)))
    head = (
        "| cell | protocol s | one-at-a-time s (est.) | ratio | small: reference s | small: fused s | ratio |"
    )
    section = "\n".join(
        [
            "# bench_latching (cpu)",
            "",
            f"`python benchmarks/bench_latching.py` ({torch.get_num_threads()} threads): N = {args.samples}, "
            f"{args.repeats} repeats, {len(lengths)} lengths ({lengths[0]}..{lengths[-1]}), "
            f"{args.epochs} epochs, batch {args.batch}, backend {args.backend}. Small protocol: lengths "
            f"{args.ratio_lengths}, {args.repeats} repeats, N = 2000.",
            "",
            head,
            "|" + " --- |" * (head.count("|") - 1),
            *lines,
            "",
            summary,
            "",
            "```",
            table(summarize(rows)),
            "```",
            "",
        ]
    )
    write_results(args.out, "# bench_latching (cpu)", section)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
