"""Hostile input through the command lines and the API: one line, exit 2 (130/143 for signals),
no traceback, and no file left behind."""

import io
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import landscape as ls
from landscape import latching, render
from landscape import slice as cli
from landscape.cells import classification_loss

from harness import one_line

SMALL = ["--res", "3", "--len", "3", "--samples", "20", "--quiet", "--format", "png"]


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--seed", "18446744073709551616"], ["--seed", "4294967295"]),
        (["--seed", str(2**70)], ["--seed"]),
        (["--seed", "-1", "--center", "trained"], ["--seed"]),
        (["--res", "100000"], ["GiB", "limit"]),
        (["--len", "1000000", "--samples", "1000"], ["GiB", "limit"]),
        (["--len", "30000", "--samples", "1000", "--res", "4000"], ["cell-steps", "limit"]),
        (["--samples", "1000000000"], ["--samples", "GiB"]),
        (["--res", ""], ["--res"]),
        (["--mem", ""], ["--mem"]),
        (["--xrange", ""], ["--xrange"]),
        (["--mem", "100000G"], ["--mem", "GiB"]),
        (["--name", "../x"], ["--name"]),
        (["--name", "/abs/x"], ["--name"]),
        (["--name", "n" * 300], ["--name"]),
        (["--width", "20", "--dpi", "2400"], ["pixels", "20000"]),
        (["--center", "trained", "--samples", "2"], ["empty", "samples"]),
    ],
)
def test_slice_refuses(argv, needles, tmp_path, capsys):
    code = cli.main([*SMALL, *argv, "--out", str(tmp_path / "o")])
    one_line(capsys, code, *needles)
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


@pytest.mark.parametrize(
    "argv,needles",
    [
        (["--seed", "-1"], ["--seed"]),
        (["--samples", "2"], ["--samples"]),
        (["--cells", "rnn,rnn"], ["rnn"]),
        (["--epochs", "1000000000"], ["optimizer steps", "limit"]),
        (["--samples", "1000000000"], ["GiB"]),
    ],
)
def test_latching_refuses(argv, needles, tmp_path, capsys):
    code = latching.main(
        [
            "--cells",
            "rnn",
            "--tasks",
            "latching",
            "--lengths",
            "3",
            "--samples",
            "20",
            "--repeats",
            "1",
            "--epochs",
            "1",
            "--quiet",
            *argv,
            "--out",
            str(tmp_path / "o"),
        ]
    )
    one_line(capsys, code, *needles)
    assert not (tmp_path / "o").exists()


def test_quick_keeps_what_is_given(tmp_path, capsys):
    assert (
        latching.main(
            [
                "--quick",
                "--lengths",
                "7",
                "--cells",
                "rnn",
                "--tasks",
                "latching",
                "--samples",
                "20",
                "--repeats",
                "1",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert "L=7" in capsys.readouterr().out


def test_api_raises_input_error():
    cell = ls.get_cell("rnn")
    for bad in (-1, 2**64, 1.5, "3"):
        with pytest.raises(ls.InputError, match="seed"):
            ls.init_params(cell, seed=bad)
        with pytest.raises(ls.InputError, match="seed"):
            ls.make_data("latching", 5, seed=bad)
    with pytest.raises(ls.InputError, match="seed"):
        ls.random_plane(ls.init_params(cell), seed=-3)
    x = np.zeros((4, 5))
    with pytest.raises(ls.InputError, match="0 and 1"):
        ls.data_from_arrays(x, np.array([0, 1, 2, 1]), 3)
    with pytest.raises(ls.InputError, match="real"):
        ls.data_from_arrays(x + 1j, np.array([0, 1, 0, 1]), 3)
    with pytest.raises(ls.InputError, match="empty"):
        ls.train.train_ensemble(cell, [ls.make_data("latching", 3, n=2)], progress=False)
    with pytest.raises(ls.InputError, match="valid"):
        ls.SliceConfig(cell="transformer")
    with pytest.raises(ls.InputError, match="lengths"):
        ls.SliceConfig(lengths=(5, -1))


def test_nan_logits_give_nan_accuracy():
    logits = torch.tensor([[1.0, float("nan"), -2.0], [0.5, -0.5, 2.0]])
    loss, acc = classification_loss(logits, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.isnan(acc[0]) and torch.isnan(loss[0])
    assert acc[1].item() == pytest.approx(2 / 3)
    # an infinite logit is a certain answer, right (loss 0) or wrong (loss inf), never NaN
    loss, acc = classification_loss(torch.tensor([[float("inf"), float("-inf")]]), torch.tensor([1.0, 1.0]))
    assert loss.item() == float("inf") and acc.item() == 0.5


def test_overflowing_logits(tmp_path, capsys):
    """Readout weights of +-1e300 (+-inf in float32): an infinite logit is a certain answer (loss 0
    or +inf, accuracy a number); a NaN logit (inf - inf) gives NaN loss and NaN accuracy."""
    assert (
        cli.main(
            [
                "--x",
                "w_out",
                "--y",
                "b_out",
                "--xrange=-1e300:1e300",
                "--yrange=-1e300:1e300",
                *SMALL,
                "--res",
                "9",
                "--out",
                str(tmp_path),
                "--name",
                "s",
            ]
        )
        == 0
    )
    with np.load(tmp_path / "s.npz") as f:
        loss, acc = f["loss"], f["accuracy"]
    np.testing.assert_array_equal(np.isnan(acc), np.isnan(loss))
    assert np.isinf(loss).any() and np.isnan(loss).any() and np.isfinite(acc).any()


def inflating_npz(path, shape=(100000, 100000)):
    """An .npz whose one array claims 80 GB in its header (a zip bomb's cheap cousin)."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f8", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", head.getvalue() + b"\0" * 64)
        z.writestr("y.npy", head.getvalue() + b"\0" * 64)


def test_files_that_would_inflate_are_refused_before_loading(tmp_path, capsys):
    bomb = tmp_path / "bomb.npz"
    inflating_npz(bomb)
    one_line(capsys, cli.main([*SMALL, "--data", str(bomb), "--out", str(tmp_path / "o")]), "GiB", "limit")
    one_line(capsys, render.main([str(bomb), "--out", str(tmp_path / "o")]), "GiB", "limit")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_long_sweep_has_a_short_default_name(tmp_path, capsys):
    lengths = ",".join(str(n) for n in range(1, 62))
    assert (
        cli.main(
            [
                "--cell",
                "pascanu",
                "--len",
                lengths,
                "--res",
                "3",
                "--quiet",
                "--format",
                "png",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    names = os.listdir(tmp_path)
    assert names and max(len(n) for n in names) < 100 and any("61-lengths" in n for n in names)


# The run signals itself while it writes its files: the surface is staged beside its final name,
# the figures not yet drawn. It lists the folder then, so the test knows there was a file to clear.
WRITING = """
import os, signal, sys, time
from landscape import figures, slice as cli
write, out = figures._write_figures, sys.argv[1]
def signalled(*args, **kwargs):
    print("staged:", *sorted(os.listdir(out)), flush=True)
    os.kill(os.getpid(), int(sys.argv[2]))
    time.sleep(30)  # the signal lands here
    return write(*args, **kwargs)
figures._write_figures = signalled
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig,code,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signals_are_one_line_and_leave_no_file(sig, code, word, tmp_path):
    out = tmp_path / "o"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            WRITING,
            str(out),
            str(int(sig)),
            "--cell",
            "lstm",
            "--len",
            "5",
            "--res",
            "5",
            "--samples",
            "20",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    staged = [ln for ln in proc.stdout.splitlines() if ln.startswith("staged:")]
    assert staged and ".npz" in staged[0], proc.stdout  # a surface file was there to clear
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []


def test_trained_checkpoints_by_default_name_do_not_repeat_the_length(tmp_path, capsys):
    assert (
        cli.main(
            [
                "--center",
                "trained",
                "--len",
                "4",
                "--res",
                "3",
                "--samples",
                "20",
                "--epochs",
                "1",
                "--quiet",
                "--format",
                "png",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    pts = sorted(p.name for p in tmp_path.glob("*.pt"))
    assert pts == ["rnn_latching_w_hh-b_hh_L4.pt"], pts


def good_surface(tmp_path):
    surf = ls.slice_surface(
        ls.SliceConfig(cell="pascanu", lengths=(3, 5), res=(3, 4), start=(5.0, -2.5), steps=3)
    )
    with np.load(surf.save(str(tmp_path / "good.npz"))) as f:
        return dict(f)


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda a: a.update(lengths=np.array([3.0, np.nan])), "lengths"),
        (lambda a: a.update(lengths=np.array([3.0, np.inf])), "lengths"),
        (lambda a: a.update(loss=a["loss"] + 1j), "real"),
        (lambda a: a.update(config=np.array("5")), "JSON object"),
        (lambda a: a.update(config=np.array("null")), "JSON object"),
        (lambda a: a.pop("path_plain"), "path_plain_loss"),
        (lambda a: a.update(path_plain=a["path_plain"][:, :, :1]), "path_plain"),
        (lambda a: a.update(cliff_max_jump=np.zeros(7)), "cliff_max_jump"),
        (lambda a: a.update(x=np.array([1.0, 1.7e308, 1.79e308])), "x"),
    ],
)
def test_render_refuses_crafted_surface_files(change, needle, tmp_path, capsys):
    arrays = good_surface(tmp_path)
    change(arrays)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    one_line(capsys, render.main([str(bad), "--out", str(tmp_path / "o")]), needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "tensor", [lambda: torch.tensor([0.5]).to_sparse(), lambda: torch.empty(1, device="meta")]
)
def test_checkpoints_with_sparse_or_meta_tensors(tensor, tmp_path, capsys):
    rnn, head = ls.to_modules("rnn")
    sd = rnn.state_dict()
    sd["bias_hh_l0"] = tensor()
    torch.save({"cell": "rnn", "rnn": sd, "head": head.state_dict()}, tmp_path / "c.pt")
    code = cli.main([*SMALL, "--center", str(tmp_path / "c.pt"), "--out", str(tmp_path / "o")])
    one_line(capsys, code, "bias_hh_l0")


def test_a_run_lands_whole_or_not_at_all(tmp_path, capsys):
    """A folder named like the .npz: nothing of the run is kept, not even the figures drawn before."""
    (tmp_path / "s.npz").mkdir()
    code = cli.main([*SMALL, "--format", "png,html", "--out", str(tmp_path), "--name", "s"])
    one_line(capsys, code, "s.npz", "folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]


@pytest.mark.slow
def test_a_killed_runs_temporaries_are_cleared(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".tmp-landscape-{dead.pid}-a1b2_c3d.npz"  # as atomic_write names them
    stale.write_bytes(b"half")
    other = tmp_path / f".tmp-landscape-{os.getpid()}-mine0000.png"  # this process's own: kept
    other.write_bytes(b"x")
    # named alike, but not as the toolkit names its temporaries, or not a file: a user's, kept
    users = [tmp_path / f".tmp-landscape-{dead.pid}-{name}" for name in ("notes.txt", "abc.npz")]
    for p in users:
        p.write_bytes(b"mine")
    folder = tmp_path / f".tmp-landscape-{dead.pid}-a1b2c3d4"
    folder.mkdir()
    (folder / "thesis.tex").write_text("thesis")
    assert cli.main([*SMALL, "--out", str(tmp_path), "--name", "s"]) == 0
    assert not stale.exists() and other.exists()
    assert all(p.read_bytes() == b"mine" for p in users) and (folder / "thesis.tex").read_text() == "thesis"


def test_page_keeps_values_beyond_float32():
    """A float64 loss of 1e300 must not show as +Inf on the page (float32 overflows at 3.4e38)."""
    surf = ls.slice_surface(ls.SliceConfig(cell="pascanu", lengths=(3,), res=(3, 4), dtype="float64"))
    surf.loss[0, 1, 1] = 1e300
    fig = ls.interactive_figure(surf)
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    assert z[1, 1] == 1e300 and np.isfinite(z).all()
    small = ls.interactive_figure(ls.slice_surface(ls.SliceConfig(cell="pascanu", lengths=(3,), res=(3, 4))))
    assert np.asarray(small.data[0].z).dtype == np.float32  # the compact page where nothing overflows


def test_gradient_maps_do_not_depend_on_mem():
    """Chunking by --mem must not change the numbers: the reference path runs its backward passes
    on fixed blocks of grid points (the fused path is chunk-independent by construction)."""
    from landscape.evaluate import chunk_size, evaluate

    cell = ls.get_cell("lstm")
    data = ls.make_data("latching", 20, n=100, seed=1)
    plane = ls.axis_plane(cell, ls.init_params(cell), res=(19, 17))
    mems = (1 << 30, 20_000_000, 10_000_000)
    assert len({chunk_size(cell, 100, torch.float32, m, length=20) for m in mems}) == 3
    runs = [evaluate(cell, data, plane, grad=True, backend="reference", mem=m) for m in mems]
    for key in ("loss", "accuracy", "grad_norm", "grad_x", "grad_y"):
        for r in runs[1:]:
            np.testing.assert_array_equal(getattr(r, key), getattr(runs[0], key))


def test_numpy_numbers_are_welcome_from_python():
    cfg = ls.SliceConfig(cell="pascanu", seed=np.int64(2), lengths=np.array([3, 5]), res=(3, 3))
    assert cfg.seed == 2 and cfg.lengths == (3, 5) and type(cfg.seed) is int
    assert torch.equal(ls.init_params("rnn", seed=np.int64(3)), ls.init_params("rnn", seed=3))
    assert ls.slice_surface(cfg).config["lengths"] == [3, 5]  # a JSON-ready record


@pytest.mark.parametrize("lo,hi", [(0.0, 0.9), (0.69310, 0.69316), (1e5, 1.5e5), (0.0, 3e7), (1e-5, 3e-5)])
def test_paper_colour_bar_ticks_carry_the_digits_they_need(lo, hi):
    """Each tick label, times the bar's multiplier, is its tick's value, and one decimal fewer
    would lose a tick's value: no digit more than needed, none fewer."""
    from landscape.figures.style import use_style

    surf = ls.slice_surface(ls.SliceConfig(cell="pascanu", lengths=(3, 5), res=(5, 5)))
    surf.loss[...] = np.linspace(lo, hi, surf.loss.size).reshape(surf.loss.shape)
    with use_style("paper"):
        fig = ls.plot_facets(surf)
        fig.draw_without_rendering()  # lays the ticks and the multiplier out, as saving does
        bar = fig.axes[-1].yaxis
        offset = bar.get_offset_text().get_text().replace("\u2212", "-")
        scale = 10.0 ** float(offset.split("10^{")[1].split("}")[0]) if "10^" in offset else 1.0
        ticks = [
            (
                t.get_position()[1],
                t.get_text().replace("$", "").replace("\\mathdefault", "").strip("{}").replace("\u2212", "-"),
            )
            for t in bar.get_ticklabels()
            if t.get_text()
        ]
    assert len(ticks) >= 3
    decimals = max(len(s.split(".")[1]) if "." in s else 0 for _, s in ticks)
    for value, text in ticks:
        assert float(text) * scale == pytest.approx(value, rel=1e-9, abs=1e-12 * max(abs(hi), 1))
    if decimals:
        assert any(round(v / scale, decimals - 1) != pytest.approx(v / scale, abs=1e-12) for v, _ in ticks)


@pytest.mark.slow
def test_a_long_sweep_shows_a_bounded_facet_grid():
    """500 lengths: the facet grid shows MAX_PANELS of them, evenly spread, first and last kept."""
    from landscape.figures.plot import MAX_PANELS

    surf = ls.slice_surface(ls.SliceConfig(cell="pascanu", lengths=tuple(range(1, 501)), res=(3, 3)))
    fig = ls.plot_facets(surf)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == MAX_PANELS and titles[0] == "L = 1" and titles[-1] == "L = 500"
    assert f"{MAX_PANELS} of 500 lengths shown" in fig.get_suptitle()


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=5),
    st.floats(),
    st.integers(-(10**30), 10**30),
    st.lists(st.integers(-5, 5), max_size=3),
    st.tuples(st.floats(), st.floats(), st.floats()),
    st.just(torch.zeros(2)),
)


def input_error_or_success(call):
    """Junk at a public boundary: accepted, or answered with InputError, never anything else."""
    try:
        call()
    except ls.InputError:
        pass


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(
        [
            "cell",
            "lengths",
            "res",
            "xrange",
            "start",
            "samples",
            "mem",
            "lr",
            "steps",
            "clip",
            "seed",
            "dtype",
            "device",
            "norm",
            "epochs",
            "tile_rows",
        ]
    ),
    junk=JUNK,
)
def test_config_fields_take_junk_as_input_errors(field, junk):
    input_error_or_success(lambda: ls.SliceConfig(**{field: junk}))


@settings(max_examples=60, deadline=None)
@given(which=st.integers(0, 8), junk=JUNK)
def test_public_functions_take_junk_as_input_errors(which, junk):
    cell = ls.get_cell("rnn")
    th = ls.init_params(cell)
    data = ls.make_data("latching", 4, n=6)
    plane = ls.axis_plane(cell, th, res=(3, 3))
    calls = [
        lambda: ls.make_data("latching", junk),
        lambda: ls.make_data("latching", 4, n=junk),
        lambda: ls.axis_plane(cell, th, res=junk),
        lambda: ls.axis_plane(cell, th, xrange=junk),
        lambda: ls.random_plane(th, seed=junk),
        lambda: ls.losses(cell, data, junk),
        lambda: ls.evaluate(cell, data, plane, mem=junk),
        lambda: ls.descend(cell, data, plane, start=(0.0, 0.0), lr=0.1, steps=junk),
        lambda: ls.descend(cell, data, plane, start=junk, lr=0.1, steps=1),
    ]
    big = isinstance(junk, (int, float)) and not isinstance(junk, bool) and abs(junk) > 1000
    assume(not (which in (0, 1, 7) and big))  # a valid but large size runs (its bounds are tested above)
    input_error_or_success(calls[which])
