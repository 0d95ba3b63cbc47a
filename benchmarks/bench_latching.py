"""The latching experiment's full default protocol, timed, against one-at-a-time torch.nn training.

    python benchmarks/bench_latching.py                 # rnn, lstm, gru on latching, posted protocol
    python benchmarks/bench_latching.py --lengths 2,50,200 --repeats 5 --samples 2000

Runs landscape.latching.run_experiment (all repeats and lengths of a cell as one vectorized
ensemble) and times each cell. The baseline trains single models the usual way (torch.nn module,
torch.optim.Adam, one batch at a time) for --baseline-steps steps at a few lengths, in the same
run; its time per model-step, times the protocol's model-steps, estimates the one-at-a-time
run. Prints both and their ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import landscape as ls
from landscape.latching import POSTED_LENGTHS, run_experiment, summarize, table


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="rnn,lstm,gru")
    ap.add_argument("--lengths", default=",".join(map(str, POSTED_LENGTHS)))
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--baseline-steps", type=int, default=30)
    args = ap.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    steps = args.epochs * -(-int(args.samples * 0.8) // args.batch)
    print(f"protocol: N = {args.samples}, {args.repeats} repeats, {len(lengths)} lengths "
          f"({lengths[0]}..{lengths[-1]}), {args.epochs} epochs, batch {args.batch}: "
          f"{steps} steps per model; {torch.get_num_threads()} threads", flush=True)
    total, total_base = 0.0, 0.0
    rows = []
    for cell in args.cells.split(","):
        t0 = time.perf_counter()
        rows += run_experiment(cells=[cell], tasks=["latching"], lengths=lengths, samples=args.samples,
                               repeats=args.repeats, epochs=args.epochs, batch=args.batch, lr=1e-3,
                               optimizer="adam", val_frac=0.2, noise=0.1, success=0.9, seed=0,
                               keras_split=False, progress=False)
        t = time.perf_counter() - t0
        probe = sorted({lengths[0], lengths[len(lengths) // 2], lengths[-1]})
        per_step = [baseline_step_time(cell, n, args.baseline_steps, args.batch) for n in probe]
        # a step's cost grows about linearly with length: interpolate the probes over every length
        base = args.repeats * steps * float(np.sum(np.interp(lengths, probe, per_step)))
        total, total_base = total + t, total_base + base
        print(f"{cell:5} landscape {t:8.1f} s   one-at-a-time torch.nn (estimated) {base:9.0f} s   "
              f"ratio {base / t:6.1f}", flush=True)
    print(f"all   landscape {total:8.1f} s ({total / 60:.1f} min)   one-at-a-time {total_base:9.0f} s "
          f"({total_base / 3600:.1f} h)   ratio {total_base / total:6.1f}")
    print(table(summarize(rows)))


if __name__ == "__main__":
    main()
