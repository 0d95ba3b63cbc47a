"""The posted experiment in real Keras beside ``python -m landscape.latching --protocol keras``.

    python examples/keras_side_by_side.py                   # corrected split (data shuffled first)
    python examples/keras_side_by_side.py --keras-split     # the posted split (label-ordered data)

Keras 3 on its torch backend (``pip install "rnn-landscape[keras]"``) trains SimpleRNN(1) or LSTM(1)
+ Dense(2, softmax) with Keras's defaults (Adam lr 1e-3, sparse categorical cross-entropy, batch
16, 5 epochs, validation_split 0.2, shuffle) on the toolkit's latching data, a few repeats per
length; the toolkit trains the same protocol (``--protocol keras``) with more repeats. Prints the
two success curves (final validation accuracy >= 0.9) side by side with their binomial standard
errors and the run times, and draws figures/keras_side_by_side[_split].png.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import landscape as ls  # noqa: E402
from landscape.experiment import ExperimentConfig, run_experiment, summarize  # noqa: E402

LAYERS = {
    "rnn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": lambda units: keras.layers.GRU(units, reset_after=False),
}


def keras_success(
    cell: str, length: int, *, samples: int, repeats: int, seed: int, keras_split: bool
) -> list[float]:
    """Final validation accuracy of ``repeats`` Keras models trained as posted."""
    data = ls.make_data("latching", length, n=samples, seed=seed + length)  # the toolkit's data
    x, y = data.x.numpy()[:, :, None].astype("float32"), data.y.numpy().astype("int64")
    accs = []
    for r in range(repeats):
        order = (
            np.argsort(-y, kind="stable")
            if keras_split  # positives first, as posted
            else np.random.default_rng(seed * 1000 + r).permutation(len(y))
        )
        keras.utils.set_random_seed(seed * 1000 + r)
        model = keras.Sequential(
            [keras.Input((length, 1)), LAYERS[cell](1), keras.layers.Dense(2, activation="softmax")]
        )
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        hist = model.fit(
            x[order], y[order], batch_size=16, epochs=5, validation_split=0.2, shuffle=True, verbose=0
        )
        accs.append(hist.history["val_accuracy"][-1])
    return accs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", default="rnn,lstm")
    ap.add_argument("--lengths", default="2,5,10,20,40")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--keras-repeats", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=30, help="repeats of the toolkit's run")
    ap.add_argument("--keras-split", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "figures"))
    args = ap.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    cells = args.cells.split(",")
    t0 = time.perf_counter()
    cfg = ExperimentConfig(
        cells=cells,
        tasks=["latching"],
        lengths=lengths,
        samples=args.samples,
        repeats=args.repeats,
        epochs=5,
        batch=16,
        lr=1e-3,
        optimizer="adam-keras",
        val_frac=0.2,
        noise=0.1,
        success=0.9,
        seed=args.seed,
        keras_split=args.keras_split,
        init="keras",
        head="softmax2",
        gru_reset="before",
        split="shuffled",
    )
    rows = run_experiment(cfg, progress=False)
    t_ours = time.perf_counter() - t0
    ours = summarize(rows)
    theirs, t1 = {}, time.perf_counter()
    for cell in cells:
        theirs[cell] = [
            keras_success(
                cell,
                n,
                samples=args.samples,
                repeats=args.keras_repeats,
                seed=args.seed,
                keras_split=args.keras_split,
            )
            for n in lengths
        ]
    t_keras = time.perf_counter() - t1
    split = "posted split (label-ordered data)" if args.keras_split else "corrected split (shuffled data)"
    print(f"latching, N = {args.samples}, 5 epochs, batch 16, {split}; success = val. acc. >= 0.9")
    print(
        f"toolkit --protocol keras: {args.repeats} repeats in {t_ours:.1f} s; "
        f"Keras {keras.__version__} (torch backend): {args.keras_repeats} repeats in {t_keras:.1f} s"
    )
    print(f"{'cell':5} {'L':>4} {'Keras':>14} {'toolkit':>14} {'|diff|':>7} {'2 s.e.':>7}")
    fig = Figure(figsize=(6.9, 2.6), layout="constrained")
    axes = fig.subplots(1, len(cells), squeeze=False)[0]
    for ax, cell in zip(axes, cells, strict=True):
        mine = ours[("latching", cell)].success
        keras_p = np.array([np.mean(np.array(a) >= 0.9) for a in theirs[cell]])
        for n, pk, po in zip(lengths, keras_p, mine, strict=True):
            pbar = (pk * args.keras_repeats + po * args.repeats) / (args.keras_repeats + args.repeats)
            se2 = 2 * np.sqrt(max(pbar * (1 - pbar), 1e-12) * (1 / args.keras_repeats + 1 / args.repeats))
            print(
                f"{cell:5} {n:4d} {pk:8.2f} ({args.keras_repeats:2d}) {po:8.2f} ({args.repeats:2d}) "
                f"{abs(pk - po):7.2f} {se2:7.2f}"
            )
        ax.plot(lengths, keras_p, "o-", label=f"Keras ({args.keras_repeats} repeats)")
        ax.plot(lengths, mine, "s--", label=f"--protocol keras ({args.repeats})")
        ax.set(title=cell, xlabel="sequence length T", ylim=(-0.05, 1.05), xscale="log")
        ax.set_ylabel("frequency of success")
        ax.legend(fontsize=7)
    stem = "keras_side_by_side" + ("_split" if args.keras_split else "")
    path = os.path.normpath(os.path.join(args.out, stem + ".png"))
    ls.save_figure(fig, path, dpi=150)
    print(path)


if __name__ == "__main__":
    main()
