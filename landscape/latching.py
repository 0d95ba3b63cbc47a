"""How often does a one-unit RNN, LSTM or GRU learn to latch? ``python -m landscape.latching``.

The experiment of the question that started this project, done right (``landscape.experiment``):
for each cell, task and sequence length, train ``--repeats`` models (all of them as one vectorized
ensemble per cell and task), each on its own class-balanced, shuffled split, and report the
frequency of successful training (final validation accuracy >= ``--success``) and the mean final
validation accuracy.
``--keras-split`` reproduces the posted artifact: the validation set is the last 20% of data
ordered by label, so it holds one class only.

Writes ``<name>.csv`` (one row per trained model), ``<name>.png``/``.pdf`` (success frequency
and mean accuracy with a standard-deviation band, against length) and ``<name>.html``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from dataclasses import asdict, replace

from ._cli import OneLineParser, report_errors
from ._io import atomic_write, one_run
from .experiment import COLUMNS, QUICK, ExperimentConfig, run_experiment, summarize, table
from .options import add_options, flag_of, given_options

__all__ = ["main", "build_parser", "parse"]


def build_parser() -> OneLineParser:
    """The options: every field of ``ExperimentConfig`` (its flag, help and default written there;
    a value not given is the preset's), then the preset and where the files go."""
    ap = OneLineParser(
        prog="python -m landscape.latching",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(ap, ExperimentConfig, defaults=False)
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"a one-minute preset: {', '.join(f'--{k} {_text(v)}' for k, v in QUICK.items())} "
        "(options given explicitly win)",
    )
    ap.add_argument("--out", default="figures", help="output folder")
    ap.add_argument(
        "--name",
        default=None,
        help="output stem (default latching, latching_keras with --keras-split; "
        "keras_protocol, keras_protocol_split)",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap


def _text(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def parse(argv: list[str] | None) -> tuple[ExperimentConfig, argparse.Namespace]:
    """The options -> the experiment (its protocol's and preset's values, and over them the options
    given explicitly) and the command's own options."""
    args = build_parser().parse_args(argv)
    given = given_options(ExperimentConfig, args)  # a bad value: a ConfigError, said as its flag by main
    return replace(ExperimentConfig.preset(given.get("protocol", "torch"), quick=args.quick), **given), args


def _flag(name: str) -> str:
    return flag_of(ExperimentConfig, name)


def run(cfg: ExperimentConfig, args: argparse.Namespace) -> list[str]:
    """Train every model, print the success table, write the CSV and the figures; the paths."""
    t0 = time.perf_counter()
    rows = run_experiment(cfg, progress=not args.quiet)
    elapsed = time.perf_counter() - t0
    summary = summarize(rows)
    split = {
        "ordered": "Keras' split (last 20% of ordered data)",
        "shuffled": "last 20% of shuffled data",
        "stratified": "stratified shuffled split",
    }[cfg.split_used]
    size = "one-unit models" if cfg.units == 1 else f"{cfg.units}-unit models"
    title = (
        f"{cfg.protocol} protocol, {size}, N = {cfg.samples}, {cfg.repeats} repeats, "
        f"{cfg.epochs} epochs, {cfg.optimizer} lr {cfg.lr:g}, {split}"
    )
    seeds = set(cfg.tasks) - {"latching", "relay"}
    criterion = f"val. acc. >= {cfg.success}" + (
        "; longlag, adding: every validation sequence right" if seeds else ""
    )
    print(f"frequency of success ({criterion}), trained in {elapsed:.1f} s:")
    print(table(summary))
    default = ("keras_protocol" if cfg.protocol == "keras" else "latching") + (
        ("_split" if cfg.protocol == "keras" else "_keras") if cfg.keras_split else ""
    )
    stem = os.path.join(args.out, args.name or default)
    from .figures import write_pages  # the drawing libraries load when there is a figure to draw
    from .figures.success import plot_success, success_page

    fig, page = plot_success(summary, title=title), success_page(summary, title=title)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(asdict(r) for r in rows)
    return [
        atomic_write(stem + ".csv", lambda f: f.write(buf.getvalue().encode())),
        *write_pages(stem, fig, page, formats=("png", "pdf"), dpi=200),
    ]


def main(argv: list[str] | None = None) -> int:
    def body() -> None:
        cfg, args = parse(argv)
        with one_run(args.out):  # the CSV and the figures land together, or none does
            paths = run(cfg, args)
        print(*paths, sep="\n")

    return report_errors("python -m landscape.latching", body, _flag)


if __name__ == "__main__":
    sys.exit(main())
