"""Regenerate the gallery in figures/ with one command.

    python examples/make_figures.py            # everything, about 1.5 minutes on 2 cores
    python examples/make_figures.py --fast     # skip the trained-model examples (about 20 s)

Runs, in order:
- examples/quickstart.py: Pascanu's wall and a one-unit RNN's latching landscape;
- examples/pascanu_fig6.py: the reproduction of Pascanu et al. 2013, Fig. 6, and its cliff table;
- the same sweep in the paper style (figures/paper/pascanu_sweep.pdf and _cliffs.pdf, at the
  width of a two-column paper's text), with its explorer page;
- examples/cliffs_by_cell.py: cliff formation across lengths for rnn, lstm and gru;
- a random-plane surface around a trained rnn at lengths 5, 20 and 50 (landscape.slice
  --center trained --plane random), re-rendered in the paper style as PDF (single and double
  column) by landscape.render, plus the explorer page figures/trained_rnn_random.html;
- examples/why_lstm_latching.py: success curves (posted vs correct split) and the landscapes
  around trained rnn and lstm models.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import time

from landscape import render
from landscape import slice as slice_cli

HERE = os.path.dirname(os.path.abspath(__file__))


def example(name: str) -> None:
    t0 = time.perf_counter()
    print(f"== examples/{name}", flush=True)
    runpy.run_path(os.path.join(HERE, name), run_name="__main__")
    print(f"   ({time.perf_counter() - t0:.0f} s)", flush=True)


def trained_random_plane() -> None:
    print("== trained rnn, random plane", flush=True)
    args = [
        "--cell",
        "rnn",
        "--task",
        "latching",
        "--len",
        "5,20,50",
        "--center",
        "trained",
        "--plane",
        "random",
        "--norm",
        "model",
        "--xrange",
        "-1:1",
        "--yrange",
        "-1:1",
        "--res",
        "81",
        "--grad",
        "--samples",
        "2000",
        "--epochs",
        "5",
        "--seed",
        "0",
        "--out",
        "figures",
        "--name",
        "trained_rnn_random",
        "--quiet",
        "--format",
        "png,html",
    ]
    if slice_cli.main(args) != 0:
        sys.exit(1)
    npz = os.path.join("figures", "trained_rnn_random.npz")
    for width in ("single", "double"):
        code = render.main(
            [
                npz,
                "--kind",
                "facets,surface",
                "--style",
                "paper",
                "--width",
                width,
                "--format",
                "pdf",
                "--out",
                "figures/paper",
                "--name",
                f"trained_rnn_random_{width}",
            ]
        )
        if code != 0:
            sys.exit(code)


def pascanu_paper() -> None:
    print("== pascanu sweep in the paper style", flush=True)
    args = [
        "--cell",
        "pascanu",
        "--len",
        "1,10,30,50",
        "--xrange",
        "4.5:5.5",
        "--yrange",
        "-3:-2",
        "--res",
        "101,401",
        "--dtype",
        "float64",
        "--grad",
        "--start",
        "5.0,-2.64",
        "--lr",
        "0.01",
        "--steps",
        "30",
        "--out",
        "figures/paper",
        "--name",
        "pascanu_sweep",
        "--quiet",
        "--style",
        "paper",
        "--width",
        "double",
        "--format",
        "pdf,png,html",
    ]
    if slice_cli.main(args) != 0:
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fast", action="store_true", help="skip the examples that train models")
    args = ap.parse_args()
    os.makedirs("figures", exist_ok=True)
    example("quickstart.py")
    example("pascanu_fig6.py")
    pascanu_paper()
    example("cliffs_by_cell.py")
    if not args.fast:
        trained_random_plane()
        example("why_lstm_latching.py")


if __name__ == "__main__":
    main()
