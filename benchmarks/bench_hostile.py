"""Hostile input, counted by class: how many cases the command lines and the API answer as promised.

    python benchmarks/bench_hostile.py                 # every case, a table by class
    python benchmarks/bench_hostile.py --list          # and each case that is not handled
    python benchmarks/bench_hostile.py --classes 8,9   # only the tile and kernel-cache classes
    PYTHONPATH=/path/to/an/older/checkout python benchmarks/bench_hostile.py   # the same cases, then

The promise: a bad input gets one line on stderr and exit status 2 (130 for Ctrl-C, 143 for
SIGTERM), no traceback, and no file left in the output folder; a good but extreme input gets
honest numbers (NaN where undefined, nothing shown that the data do not hold). Every command
case runs in a process of its own, under a memory cap and a time limit, so a case that would
allocate gigabytes or never end counts as not handled instead of taking the machine down.
The API cases call the public functions and count those that raise ``landscape.InputError``.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import numpy as np

CAP = 6 << 30  # bytes of address space a case may use
LIMIT = 120  # seconds a case may run
SMALL = ["--res", "3", "--len", "3", "--samples", "20", "--quiet", "--format", "png"]
LATCH = [
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
]


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def run_command(
    module: str, argv: list[str], tmp: str, *, sig: int | None = None, env: dict | None = None
) -> tuple[int, str]:
    """Run ``python -m landscape.<module> argv`` (``{tmp}`` filled in); with ``sig``, send it after
    a few seconds. Returns the exit status and stderr."""
    argv = [a.replace("{tmp}", tmp) for a in argv]
    cmd = [sys.executable, "-m", f"landscape.{module}", *argv]
    extra = {k: v.replace("{tmp}", tmp) for k, v in (env or {}).items()}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_cap,
        env={
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "LANDSCAPE_CACHE": os.path.join(tmp, "cache"),
            **extra,
        },
        cwd=tmp,  # not the checkout's folder, which `-m` would put before PYTHONPATH
    )
    if sig is not None:
        time.sleep(6.0)
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        return -9, "timed out\n" + err
    return proc.returncode, err


def refused(
    module: str,
    argv: list[str],
    code: int = 2,
    sig: int | None = None,
    keep: tuple = (),
    setup=None,
    env: dict | None = None,
):
    """A case that must be refused: `code`, one line, no traceback, nothing new in {tmp}/o, and
    what was there before (the folders ``keep``, what ``setup(tmp)`` made) left as it was."""

    def check(tmp: str) -> str:
        for name in keep:
            os.makedirs(os.path.join(tmp, "o", name))
        cleanup = setup(tmp) if setup else None
        out = os.path.join(tmp, "o")
        before = _tree(out)
        try:
            status, err = run_command(module, [*argv, "--out", "{tmp}/o"], tmp, sig=sig, env=env)
        finally:
            if callable(cleanup):
                cleanup()
        lines = [ln for ln in err.splitlines() if ln.strip() and "\r" not in ln and "it/s]" not in ln]
        after = _tree(out)
        if status != code:
            return f"exit {status}: {(lines or ['(no output)'])[-1][:120]}"
        if len(lines) != 1 or "Traceback" in err:
            return f"{len(lines)} lines on stderr: {(lines or [''])[-1][:120]}"
        if any(after.get(k) != v for k, v in before.items()):
            return "changed or removed what was there before the run"
        if set(after) - set(before):
            return f"left {', '.join(sorted(set(after) - set(before))[:3])}"
        return ""

    return check


def computed(module: str, argv: list[str], test: str):
    """A case that must run (exit 0) and whose surface file passes ``test`` (Python over ``f``)."""

    def check(tmp: str) -> str:
        status, err = run_command(module, [*argv, "--out", "{tmp}/o", "--name", "s"], tmp)
        if status != 0:
            return f"exit {status}: {(err.strip().splitlines() or [''])[-1][:120]}"
        with np.load(os.path.join(tmp, "o", "s.npz")) as f:
            ok = eval(test, {"np": np, "f": f})  # noqa: S307 - the battery's own expressions
        return "" if ok else f"fails {test}"

    return check


def _tree(folder: str) -> dict:
    """Every entry under ``folder`` (without following links) -> its kind and content."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, folder)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
            else:
                out[rel] = ("dir" if os.path.isdir(p) else "other", None)
    return out


def _arrays(path: str) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in ("loss", "accuracy", "grad_norm", "grad_x", "grad_y") if k in f}


def same_as_clean(module: str, argv: list[str], setup, env: dict | None = None):
    """A case that must run (exit 0) after ``setup(tmp)`` has crafted its ground (and ``cleanup``),
    to the same arrays as the same command on clean ground, and without running planted code
    ({tmp}/PWNED stays absent)."""

    def check(tmp: str) -> str:
        clean = os.path.join(tmp, "clean")
        status, err = run_command(
            module, [*argv, "--out", clean, "--name", "s"], tmp, env={"LANDSCAPE_CACHE": clean + "-cache"}
        )
        if status != 0:
            return f"clean run: exit {status}: {(err.strip().splitlines() or [''])[-1][:100]}"
        cleanup = setup(tmp)
        try:
            status, err = run_command(module, [*argv, "--out", "{tmp}/o", "--name", "s"], tmp, env=env)
        finally:
            if callable(cleanup):
                cleanup()
        if os.path.exists(os.path.join(tmp, "PWNED")):
            return "ran code planted in the cache"
        if status != 0:
            return f"exit {status}: {(err.strip().splitlines() or [''])[-1][:120]}"
        a, b = _arrays(os.path.join(clean, "s.npz")), _arrays(os.path.join(tmp, "o", "s.npz"))
        if sorted(a) != sorted(b) or not all(np.array_equal(a[k], b[k], equal_nan=True) for k in a):
            return "a result that differs from the clean run's"
        return ""

    return check


TILED = ["--cell", "rnn", "--res", "9", "--len", "5,10", "--samples", "20", "--grad", "--tile-rows", "2"]
TILED += ["--quiet", "--format", "png"]
PARTIAL = textwrap.dedent("""
    import os, sys
    import landscape.tiles as tiles
    from landscape import slice as cli
    n = [0]
    def count():
        n[0] += 1
        if n[0] >= 3:
            os._exit(9)
    try:
        from landscape.rundir import RunDir  # tiles recorded as they land: killed after the record
        save = RunDir.save
        def saved(self, t, a):
            save(self, t, a)
            count()
        RunDir.save = saved
    except ImportError:  # earlier versions wrote a tile with atomic_write alone
        write = tiles.atomic_write
        def written(path, fn, **k):
            out = write(path, fn, **k)
            if os.path.basename(path).startswith("tile_"):
                count()
            return out
        tiles.atomic_write = written
    cli.main(sys.argv[1:])
""")


def _partial(tmp: str, argv: list[str]) -> None:
    """Run the tiled job until three tiles have landed, then kill it: a run directory to resume."""
    argv = [a.replace("{tmp}", tmp) for a in argv]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "LANDSCAPE_CACHE": os.path.join(tmp, "cache")}
    subprocess.run(
        [sys.executable, "-c", PARTIAL, *argv], env=env, capture_output=True, timeout=LIMIT, cwd=tmp
    )


def crafted_tile(craft):
    """Setup: a killed tiled run, then ``craft(tile_path, tmp)`` done to its first tile."""

    def setup(tmp: str):
        _partial(tmp, [*TILED, "--out", "{tmp}/o", "--name", "s"])
        tiles = sorted(n for n in os.listdir(os.path.join(tmp, "o", "s.tiles")) if n.startswith("tile_"))
        craft(os.path.join(tmp, "o", "s.tiles", tiles[0]), tmp)

    return setup


def _resave(change):
    def craft(path: str, tmp: str) -> None:
        with np.load(path) as f:
            arrays = dict(f)
        arrays = change(arrays)
        os.remove(path)
        np.savez(path, **arrays)

    return craft


def _other_seed(path: str, tmp: str) -> None:
    other = os.path.join(tmp, "other")
    _partial(tmp, [*TILED, "--seed", "7", "--out", other, "--name", "s"])
    src = os.path.join(other, "s.tiles", os.path.basename(path))
    with open(src, "rb") as f, open(path, "wb") as g:
        g.write(f.read())


def _fifo_tile(path: str, tmp: str) -> None:
    os.remove(path)
    os.mkfifo(path)


def _link_tile(path: str, tmp: str) -> None:
    target = os.path.join(tmp, "outside.npz")
    os.replace(path, target)
    os.symlink(target, path)


def _user_tree(tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "o", "s.tiles", "chapter1"))
    with open(os.path.join(tmp, "o", "s.tiles", "thesis.tex"), "w") as f:
        f.write("thesis")
    with open(os.path.join(tmp, "o", "s.tiles", "chapter1", "data.csv"), "w") as f:
        f.write("1,2,3")


def _linked_run_dir(tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "elsewhere"))
    with open(os.path.join(tmp, "elsewhere", "notes.txt"), "w") as f:
        f.write("mine")
    os.makedirs(os.path.join(tmp, "o"))
    os.symlink(os.path.join(tmp, "elsewhere"), os.path.join(tmp, "o", "s.tiles"))


def _fifo_manifest(tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "o", "s.tiles"))
    os.mkfifo(os.path.join(tmp, "o", "s.tiles", "manifest.json"))


def _deep_manifest(tmp: str) -> None:
    os.makedirs(os.path.join(tmp, "o", "s.tiles"))
    with open(os.path.join(tmp, "o", "s.tiles", "manifest.json"), "w") as f:
        f.write("[" * 100000 + "]" * 100000)


PLANTED = """
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen("%s", "w");
    if (f) { fputs("ran", f); fclose(f); }
}
int ls_abi(void) { return 4; }
"""


def _cache_path(tmp: str, build: bool = False) -> str:
    """Where this checkout's kernel is cached under {tmp}/cache (built there first, with ``build``)."""
    env = {**os.environ, "LANDSCAPE_CACHE": os.path.join(tmp, "cache")}
    code = f"import landscape.engine.build as k; print(k.build() if {build} else k._library_path())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp)
    return done.stdout.strip().splitlines()[-1]


def planted(kind: str, mode: int = 0o700):
    """Setup: something other than the kernel at its cache path, in a cache folder of ``mode``: a
    library whose constructor writes {tmp}/PWNED, one without the kernel's symbols, the kernel cut
    short, a link to libm, or random bytes."""

    def setup(tmp: str) -> None:
        path = _cache_path(tmp, build=kind == "truncated")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if kind in ("constructor", "nosymbols"):
            src = os.path.join(tmp, "planted.c")
            with open(src, "w") as f:
                f.write(PLANTED.replace("%s", os.path.join(tmp, "PWNED")))
                if kind == "constructor":  # every entry point the kernel has, so that it is used
                    for sym in ("ls_run", "ls_vmath", "ls_args_size", "ls_compiler"):
                        f.write(f"int {sym}(void) {{ return 1; }}\n")
            subprocess.run(["cc", "-shared", "-fPIC", "-o", path, src], check=True)
        elif kind == "truncated":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 3)
        elif kind == "libm":
            libm = next(
                p
                for p in (
                    "/lib/x86_64-linux-gnu/libm.so.6",
                    "/lib/aarch64-linux-gnu/libm.so.6",
                    "/usr/lib/libm.so.6",
                )
                if os.path.exists(p)
            )
            os.symlink(libm, path)
        elif kind == "random":
            with open(path, "wb") as f:
                f.write(np.random.default_rng(0).bytes(200000))
        os.chmod(os.path.dirname(path), mode)

    return setup


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BLOCKED_WORKER = (
    "import sys; sys.modules['landscape'] = None; from distributed.cli.dask_worker import main; main()"
)


def scheduler(workers: str):
    """Setup: a Dask scheduler at {tmp}/port's port with no worker, or with one that lacks the
    package; returns its cleanup."""

    def setup(tmp: str):
        port = _free_port()
        with open(os.path.join(tmp, "port"), "w") as f:
            f.write(str(port))
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(port), "--no-dashboard"]
        procs = [
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp)
        ]
        time.sleep(4)
        if workers == "blocked":
            worker = [
                sys.executable,
                "-c",
                BLOCKED_WORKER,
                f"tcp://127.0.0.1:{port}",
                "--no-nanny",
                "--nthreads",
                "1",
                "--no-dashboard",
            ]
            procs.append(
                subprocess.Popen(
                    worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp
                )
            )
            time.sleep(4)

        def cleanup():
            for p in procs:
                p.kill()
                p.wait()

        return cleanup

    return setup


def at_scheduler(setup_workers: str):
    """A refused case against a live scheduler started by its setup ({port} filled in)."""
    setup = scheduler(setup_workers)

    def check(tmp: str) -> str:
        cleanup = setup(tmp)
        try:
            with open(os.path.join(tmp, "port")) as f:
                port = f.read()
            argv = [*SMALL, "--tile-rows", "1", "--scheduler", f"tcp://127.0.0.1:{port}"]
            return refused("slice", argv)(tmp)
        finally:
            cleanup()

    return check


def _bomb(path: str) -> None:
    """An .npz whose arrays claim 80 GB each in their headers."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", head.getvalue() + b"\0" * 64)
        z.writestr("y.npy", head.getvalue() + b"\0" * 64)


def _files(tmp: str) -> None:
    """The crafted inputs that cases name as {tmp}/...: data files, surfaces, checkpoints."""
    import torch

    import landscape as ls

    _bomb(os.path.join(tmp, "bomb.npz"))
    np.savez(os.path.join(tmp, "labels2.npz"), x=np.zeros((6, 5)), y=np.array([0, 1, 2, 0, 1, 0]))
    np.savez(os.path.join(tmp, "nan.npz"), x=np.full((6, 5), np.nan), y=np.array([0, 1, 0, 1, 0, 1]))
    np.savez(os.path.join(tmp, "complex_x.npz"), x=np.ones((6, 5)) + 1j, y=np.array([0, 1, 0, 1, 0, 1]))
    with open(os.path.join(tmp, "junk.npz"), "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    surf = ls.slice_surface(
        ls.SliceConfig(cell="pascanu", lengths=(3, 5), res=(3, 4), start=(5.0, -2.5), steps=3)
    )
    good = os.path.join(tmp, "good.npz")
    surf.save(good)
    with np.load(good) as f:
        arrays = dict(f)
    crafted = {
        "lengths_nan": dict(lengths=np.array([3.0, np.nan])),
        "lengths_inf": dict(lengths=np.array([3.0, np.inf])),
        "complex": dict(loss=arrays["loss"] + 1j),
        "config5": dict(config=np.array("5")),
        "confignull": dict(config=np.array("null")),
        "pathshape": dict(path_plain=arrays["path_plain"][:, :, :1]),
        "cliffshape": dict(cliff_max_jump=np.zeros(7)),
        "xhuge": dict(x=np.array([1.0, 1.7e308, 1.79e308])),
    }
    for name, change in crafted.items():
        np.savez(os.path.join(tmp, f"{name}.npz"), **{**arrays, **change})
    np.savez(
        os.path.join(tmp, "nopathloss.npz"), **{k: v for k, v in arrays.items() if k != "path_plain_loss"}
    )
    rnn, head = ls.to_modules("rnn")
    for name, tensor in (
        ("sparse", torch.tensor([0.5]).to_sparse()),
        ("meta", torch.empty(1, device="meta")),
    ):
        sd = rnn.state_dict()
        sd["bias_hh_l0"] = tensor
        torch.save({"cell": "rnn", "rnn": sd, "head": head.state_dict()}, os.path.join(tmp, f"{name}.pt"))
    torch.save({"cell": "rnn", "rnn": {}, "head": {}}, os.path.join(tmp, "empty.pt"))


def cases() -> dict[str, list[tuple[str, object]]]:
    """Class -> [(case, check)]. A check returns "" when the case is handled, else why not."""
    S, R, L = "slice", "render", "latching"
    c: dict[str, list] = defaultdict(list)
    tb = c["1 tracebacks instead of one line"]
    for seed in ("18446744073709551616", str(2**70), "-1"):
        tb.append((f"slice --seed {seed}", refused(S, [*SMALL, "--seed", seed])))
    tb.append(
        ("slice --center trained --seed -1", refused(S, [*SMALL, "--center", "trained", "--seed", "-1"]))
    )
    tb.append(("latching --seed -1", refused(L, [*LATCH, "--seed", "-1"])))
    tb.append(("latching --seed 2**70", refused(L, [*LATCH, "--seed", str(2**70)])))
    for name in ("sparse", "meta", "empty"):
        tb.append((f"slice --center {name}.pt", refused(S, [*SMALL, "--center", f"{{tmp}}/{name}.pt"])))
    for name in (
        "lengths_nan",
        "lengths_inf",
        "complex",
        "config5",
        "confignull",
        "nopathloss",
        "pathshape",
        "cliffshape",
        "xhuge",
        "junk",
    ):
        tb.append((f"render {name}.npz", refused(R, [f"{{tmp}}/{name}.npz"])))
    tb.append(("slice --data junk.npz", refused(S, [*SMALL, "--data", "{tmp}/junk.npz"])))
    size = c["2 sizes without bounds"]
    for argv in (
        ["--res", "100000"],
        ["--len", "1000000", "--samples", "1000"],
        ["--samples", "1000000000"],
        ["--cell", "lstm", "--res", "71", "--len", "100", "--grad", "--mem", "64G"],
        ["--len", "30000", "--samples", "1000", "--res", "4000"],
        ["--width", "20", "--dpi", "2400"],
        ["--mem", "100000G"],
        ["--data", "{tmp}/bomb.npz"],
        ["--center", "trained", "--epochs", "1000000000"],
    ):
        size.append((f"slice {' '.join(argv)[:60]}", refused(S, [*SMALL, *argv])))
    size.append(("render bomb.npz", refused(R, ["{tmp}/bomb.npz"])))
    many = ",".join(str(n) for n in range(1, 501))
    size.append(
        (
            "slice --len 1,...,500 ends, in time",
            computed(S, [*SMALL, "--len", many], "len(f['lengths']) == 500"),
        )
    )
    size.append(("latching --epochs 1000000000", refused(L, [*LATCH, "--epochs", "1000000000"])))
    size.append(("latching --samples 1000000000", refused(L, [*LATCH, "--samples", "1000000000"])))
    left = c["3 a failed run leaves files"]
    left.append(
        (
            "slice into a folder named like its .npz",
            refused(S, [*SMALL, "--format", "png,html", "--name", "s"], keep=("s.npz",)),
        )
    )
    left.append(("slice --name of 250 characters", refused(S, [*SMALL, "--name", "n" * 250])))
    slow = ["--cell", "lstm", "--len", "400", "--res", "301", "--backend", "reference", "--quiet"]
    for cmd, argv in (
        (S, slow),
        (L, ["--cells", "lstm", "--lengths", "200", "--samples", "2000", "--quiet"]),
    ):
        left.append((f"{cmd}: Ctrl-C", refused(cmd, argv, 130, signal.SIGINT)))
        left.append((f"{cmd}: SIGTERM", refused(cmd, argv, 143, signal.SIGTERM)))
    nan = c["4 NaN shown as a number"]
    huge = ["--x", "w_out", "--y", "b_out", "--xrange=-1e300:1e300", "--yrange=-1e300:1e300", "--res", "9"]
    nan.append(
        (
            "accuracy NaN where the loss is",
            computed(S, [*SMALL, *huge], "(np.isnan(f['accuracy']) == np.isnan(f['loss'])).all()"),
        )
    )
    nan.append(
        (
            "float64 loss stays finite",
            computed(S, [*SMALL, *huge, "--dtype", "float64"], "np.isfinite(f['loss']).sum() > 0"),
        )
    )
    bad = c["5 bad input accepted"]
    for argv in (
        ["--res", ""],
        ["--mem", ""],
        ["--xrange", ""],
        ["--name", "../x"],
        ["--name", "/tmp/abs"],
        ["--center", "trained", "--samples", "2"],
        ["--data", "{tmp}/labels2.npz"],
        ["--data", "{tmp}/nan.npz"],
        ["--len", "-3"],
        ["--len", "3:1"],
        ["--cell", "transformer"],
        ["--xrange", "1:-1"],
        ["--res", "1"],
        ["--seed", "1.5"],
    ):
        bad.append((f"slice {' '.join(argv)}", refused(S, [*SMALL, *argv])))
    bad.append(("latching --samples 2", refused(L, [*LATCH, "--samples", "2"])))
    bad.append(("latching --cells rnn,rnn", refused(L, [*LATCH, "--cells", "rnn,rnn"])))
    bad.append(("latching --lengths 0", refused(L, [*LATCH, "--lengths", "0"])))
    bad.append(("render missing file", refused(R, ["{tmp}/nothing.npz"])))
    bad.append(("render --kind bogus", refused(R, ["{tmp}/good.npz", "--kind", "bogus"])))
    c["5 bad input accepted (API)"] = api_cases()
    small = c["7 smaller"]
    small.append(
        (
            "61-length default name fits",
            computed(
                S,
                [
                    "--cell",
                    "pascanu",
                    "--res",
                    "3",
                    "--quiet",
                    "--format",
                    "png",
                    "--len",
                    ",".join(str(n) for n in range(1, 62)),
                ],
                "f['loss'].shape[0] == 61",
            ),
        )
    )
    c["8 tiles and run directories"] = tile_cases()
    c["9 kernel cache"] = cache_cases()
    c["10 cluster addresses"] = cluster_cases()
    data = c["11 data"]
    data.append(("slice --data complex.npz", refused(S, [*SMALL, "--data", "{tmp}/complex_x.npz"])))
    for argv in (["--threshold", "nan"], ["--clip", "inf"], ["--noise", "nan"], ["--lr", "nan"]):
        data.append((f"slice {' '.join(argv)}", refused(S, [*SMALL, *argv])))
    data.append(("slice --len of 20000 entries", refused(S, [*SMALL, "--len", ",".join(["3"] * 20000)])))
    for argv in (["--val", "nan"], ["--lr", "inf"], ["--noise", "nan"], ["--success", "nan"]):
        data.append((f"latching {' '.join(argv)}", refused(L, [*LATCH, *argv])))
    data.append(("render --at nan", refused(R, ["{tmp}/good.npz", "--at", "nan"])))
    c["11 data (API)"] = api_cases(DATA_CALLS)
    return c


def tile_cases() -> list:
    """A user's folder where the run directory goes, and every kind of crafted tile or manifest."""
    S = "slice"
    job = [*TILED, "--name", "s"]
    cases = [
        ("a user's folder named like the run directory", refused(S, job, setup=_user_tree)),
        ("run directory a link to elsewhere", refused(S, job, setup=_linked_run_dir)),
        ("manifest.json a FIFO", refused(S, job, setup=_fifo_manifest)),
        ("manifest nested 100000 deep", refused(S, job, setup=_deep_manifest)),
    ]
    f32 = lambda a: {k: v.astype(np.float32) for k, v in a.items()}  # noqa: E731
    crafts = {
        "from another seed's run": _other_seed,
        "NaN of the right shape": _resave(lambda a: {k: np.full_like(v, np.nan) for k, v in a.items()}),
        "int": _resave(lambda a: {k: v.astype(np.int64) for k, v in a.items()}),
        "bool": _resave(lambda a: {k: v > 0 for k, v in a.items()}),
        "float16": _resave(lambda a: {k: v.astype(np.float16) for k, v in a.items()}),
        "float64": _resave(lambda a: {k: v.astype(np.float64) for k, v in f32(a).items()}),
        "complex": _resave(lambda a: {k: v + 1j for k, v in a.items()}),
        "string": _resave(lambda a: {k: v.astype(str) for k, v in a.items()}),
        "without accuracy": _resave(lambda a: {k: v for k, v in a.items() if k != "accuracy"}),
        "without grad_norm": _resave(lambda a: {k: v for k, v in a.items() if k != "grad_norm"}),
        "without grad_x": _resave(lambda a: {k: v for k, v in a.items() if k != "grad_x"}),
        "a FIFO": _fifo_tile,
        "a link out of the run directory": _link_tile,
    }
    for name, craft in crafts.items():
        cases.append((f"tile {name}: computed again", same_as_clean(S, TILED, crafted_tile(craft))))
    return cases


KERNEL = ["--cell", "rnn", "--res", "51", "--len", "100", "--samples", "1000", "--quiet", "--format", "png"]


def cache_cases() -> list:
    """Things planted at the kernel's cache path: never run, rebuilt, the same result."""
    fused = [*SMALL, "--backend", "fused"]
    return [
        ("library with a constructor", same_as_clean("slice", fused, planted("constructor"))),
        ("the same in a cache of mode 1777", same_as_clean("slice", fused, planted("constructor", 0o1777))),
        ("the kernel truncated", same_as_clean("slice", fused, planted("truncated"))),
        ("a library without the symbols", same_as_clean("slice", fused, planted("nosymbols"))),
        ("a link to libm", same_as_clean("slice", fused, planted("libm"))),
        ("random bytes, --backend auto", same_as_clean("slice", KERNEL, planted("random"))),
    ]


def cluster_cases() -> list:
    """Scheduler addresses that are not, schedulers that cannot serve, too many local workers."""
    cases = []
    for address in (
        "not-an-address",
        "",
        "127.0.0.1",
        "ucx://127.0.0.1:8786",
        "inproc://x",
        "tls://127.0.0.1:8786",
        "tcp://127.0.0.1:1",
    ):
        cases.append((f"--scheduler {address!r}", refused("slice", [*SMALL, "--scheduler", address])))
    cases.append(("a scheduler without workers", at_scheduler("none")))
    cases.append(("workers without the package", at_scheduler("blocked")))
    cases.append(("--workers 256", refused("slice", [*SMALL, "--workers", "256"])))
    return cases


API = textwrap.dedent("""
    import numpy as np, torch, landscape as ls
    from landscape.tasks import TaskData
    cell = ls.get_cell("rnn"); th = ls.init_params(cell); data = ls.make_data("latching", 5, n=10)
    plane = ls.axis_plane(cell, th, res=(3, 3))
    surf = ls.slice_surface(ls.SliceConfig(cell="pascanu", lengths=(3,), res=(3, 3)))
    try:
        {call}
        print("accepted")
    except ls.InputError:
        print("ok")
    except Exception as e:
        print(type(e).__name__, str(e).splitlines()[0][:100] if str(e) else "")
""")

API_CALLS = [
    'ls.make_data("latching", "5")',
    'ls.make_data("latching", 5.5)',
    'ls.make_data("latching", 5, n=-1)',
    'ls.make_data("latching", 5, noise=float("nan"))',
    'ls.get_cell(["rnn"])',
    "ls.get_task(None)",
    "ls.data_from_arrays(np.zeros((4, 5)), np.array([0, 1, 2, 1]), 3)",
    "ls.data_from_arrays(np.zeros((4, 5)) + 1j, np.array([0, 1, 0, 1]), 3)",
    "ls.data_from_arrays(np.full((4, 5), np.nan), np.array([0, 1, 0, 1]), 3)",
    "ls.data_from_arrays(np.zeros((4, 5)), np.array([0, 1, 0, 1]), 2.5)",
    "ls.balanced_split(np.array([0, 1, 0, 1]), 2.0, seed=0)",
    "ls.balanced_split(np.array([0, 1, 0, 1]), 0.5, seed=-1)",
    "ls.init_params(cell, seed=-1)",
    'ls.init_params(cell, init="bad")',
    "ls.init_params(42)",
    'ls.to_modules("rnn", torch.zeros(3))',
    'ls.save_checkpoint("/tmp/x.pt", "rnn", torch.zeros(2))',
    "ls.axis_plane(cell, th, res=-1)",
    "ls.axis_plane(cell, th, xrange=(1, 2, 3))",
    "ls.axis_plane(cell, torch.zeros(2))",
    'ls.axis_plane(cell, th, x="nope")',
    "ls.random_plane(th, res=0)",
    "ls.random_plane(th, seed=-3)",
    "ls.random_plane(torch.zeros(2, 3))",
    'ls.random_plane(th, norm="bad")',
    'ls.random_plane(th, xrange="a")',
    "ls.losses(cell, data, torch.zeros(5, 2))",
    "ls.losses(cell, None, torch.zeros(5, 6))",
    "ls.losses(cell, data, [[0.0] * 6])",
    "ls.loss_and_grad(cell, data, torch.zeros(5, 2))",
    "ls.evaluate(cell, data, None)",
    "ls.evaluate(cell, data, plane, mem=-1)",
    'ls.evaluate(cell, data, plane, device="tpu")',
    'ls.evaluate(cell, data, plane, dtype="float16")',
    'ls.evaluate(cell, data, plane, backend="gpu")',
    "ls.compute_surface(cell, plane, [], progress=False)",
    "ls.compute_surface(cell, plane, [1], progress=False)",
    'ls.compute_surface(cell, plane, [data], dtype="x", progress=False)',
    'ls.load_surface("/nonexistent.npz")',
    'ls.load_checkpoint("/nonexistent.pt", "rnn")',
    "ls.cliff_metrics(None)",
    "ls.cliff_table(None, {})",
    "ls.plot_facets(None)",
    'ls.plot_facets(surf, what="nothing")',
    'ls.plot_facets(surf, scale="bogus")',
    "ls.plot_surface3d(None)",
    "ls.interactive_figure(None)",
    'ls.write_html(None, "/tmp/x.html")',
    'ls.save_figure(None, "/tmp/x.png")',
    "ls.descend(cell, data, plane, start=(0, 0), lr=-1, steps=3)",
    "ls.descend(cell, data, plane, start=(0, 0), lr=0.1, steps=10**12)",
    "ls.descend(cell, data, plane, start=(0, 0), lr=0.1, steps=3, clip=0)",
    "ls.descend(cell, data, plane, start=5, lr=0.1, steps=3)",
    "ls.clip_gradient(torch.ones(2), -1)",
    "ls.paths_for_lengths(cell, [], plane, start=(0, 0), lr=0.1, steps=2)",
    "ls.SliceConfig(res=-3)",
    "ls.SliceConfig(lengths=())",
    "ls.SliceConfig(lengths=5.5)",
    'ls.SliceConfig(samples="a")',
    "ls.SliceConfig(xrange=3)",
    'ls.SliceConfig(lr="x")',
    "ls.SliceConfig(steps=2.5)",
    'ls.SliceConfig(device="tpu")',
    'ls.slice_surface({"cell": "rnn"})',
]


DATA_CALLS = [
    "ls.losses(cell, TaskData(torch.zeros(4, 5, dtype=torch.complex64), torch.tensor([0., 1, 0, 1]), 5, "
    '"bce"), th[None])',
    'ls.losses(cell, TaskData(torch.zeros(4, 5), torch.tensor([0., 1, 2, 1]), 5, "bce"), th[None])',
    'ls.losses(cell, TaskData(torch.zeros(4, 5), torch.tensor([0., 1, 0, 1]), 5, "mse"), th[None])',
    'ls.losses(cell, TaskData(torch.zeros(4, 3), torch.tensor([0., 1, 0, 1]), 5, "bce"), th[None])',
    "ls.losses(cell, data, th[None].half())",
    "ls.losses(cell, data, th[None].bfloat16())",
    "ls.random_plane(th.half())",
]


def api_cases(calls: list[str] = API_CALLS) -> list:
    def case(call: str):
        def check(tmp: str) -> str:
            proc = subprocess.run(
                [sys.executable, "-c", API.format(call=call)],
                capture_output=True,
                text=True,
                timeout=LIMIT,
                cwd=tmp,
                preexec_fn=_cap,
            )
            out = (proc.stdout.strip().splitlines() or [proc.stderr.strip().splitlines()[-1]])[-1]
            return "" if out == "ok" else out

        return check

    return [(call, case(call)) for call in calls]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print every case that is not handled")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at once")
    ap.add_argument("--classes", default=None, help="only these classes, by number: 8,9,10,11")
    ap.add_argument("--skip", default=None, help="leave out the cases whose name contains this text")
    args = ap.parse_args()
    import landscape

    print(f"landscape from {os.path.dirname(landscape.__file__)}")
    with tempfile.TemporaryDirectory() as root:
        shared = os.path.join(root, "shared")
        os.makedirs(shared)
        _files(shared)

        def one(item):
            k, (name, check) = item
            tmp = os.path.join(root, str(k))
            os.makedirs(tmp)
            for entry in os.listdir(shared):  # each case its own folder, the crafted inputs linked in
                os.link(os.path.join(shared, entry), os.path.join(tmp, entry))
            try:
                return check(tmp)
            except Exception as e:  # a check that could not even read the result
                return f"{type(e).__name__}: {e}"[:140]

        table = cases()
        if args.classes:
            table = {k: v for k, v in table.items() if k.split()[0] in args.classes.split(",")}
        if args.skip:  # e.g. "--workers 256" against a version that starts 256 processes
            table = {k: [(n, ch) for n, ch in v if args.skip not in n] for k, v in table.items()}
        flat = [(cls, name, check) for cls, items in table.items() for name, check in items]
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, enumerate((n, ch) for _, n, ch in flat)))
    print("\n| class | cases | handled | not handled |\n| --- | --- | --- | --- |")
    totals = [0, 0]
    for cls in table:
        got = [r for (c, _, _), r in zip(flat, results, strict=True) if c == cls]
        ok = sum(r == "" for r in got)
        totals[0] += len(got)
        totals[1] += ok
        print(f"| {cls} | {len(got)} | {ok} | {len(got) - ok} |")
    print(f"| all | {totals[0]} | {totals[1]} | {totals[0] - totals[1]} |")
    if args.list:
        for (cls, name, _), r in zip(flat, results, strict=True):
            if r:
                print(f"- [{cls.split()[0]}] {name}: {r}")


if __name__ == "__main__":
    main()
