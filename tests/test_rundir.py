"""A tiled sweep's run directory: a user's folder in its place is refused and survives byte for
byte; every tile is verified against its record before use and computed again when it does not
match (another seed's, NaN, another dtype, a missing field, a FIFO, a link); a finished run
removes only what it made."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from landscape import slice as cli
from landscape.rundir import JOURNAL, MANIFEST, RunDir

from harness import one_line

JOB = [
    "--cell",
    "rnn",
    "--res",
    "9",
    "--len",
    "5,10",
    "--samples",
    "20",
    "--grad",
    "--tile-rows",
    "2",
    "--quiet",
    "--format",
    "png",
    "--name",
    "s",
]
FIELDS = ("loss", "accuracy", "grad_norm", "grad_x", "grad_y")


def tree(folder):
    """Every entry under ``folder`` (links not followed) -> its kind and bytes."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = os.path.join(root, name)
            kind = "link" if os.path.islink(p) else "file" if os.path.isfile(p) else "dir"
            out[os.path.relpath(p, folder)] = (kind, _bytes(p) if kind == "file" else None)
    return out


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in FIELDS}


def killed_after(out, n, monkeypatch, argv=JOB):
    """Run the job until ``n`` tiles have landed (each recorded), then stop it as a kill would."""

    class Killed(BaseException):
        pass

    save, count = RunDir.save, [0]

    def saving(self, tile, maps):
        save(self, tile, maps)
        count[0] += 1
        if count[0] == n:
            raise Killed

    with monkeypatch.context() as m:
        m.setattr(RunDir, "save", saving)
        with pytest.raises(Killed):
            cli.main([*argv, "--out", str(out)])
    return sorted(p for p in (out / "s.tiles").iterdir() if p.name.startswith("tile_"))


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    assert cli.main([*JOB, "--out", str(out)]) == 0
    return arrays(out / "s.npz")


def test_a_users_folder_named_like_the_run_directory_survives_byte_for_byte(tmp_path, capsys):
    run = tmp_path / "s.tiles"
    (run / "chapter1").mkdir(parents=True)
    (run / "thesis.tex").write_text("thesis")
    (run / "chapter1" / "data.csv").write_text("1,2,3")
    before = tree(tmp_path)
    one_line(capsys, cli.main([*JOB, "--out", str(tmp_path)]), "s.tiles", "not a run directory made here")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("make", ["link", "fifo", "deep", "file"])
def test_a_run_directory_that_is_not_one_is_refused(make, tmp_path, capsys):
    run, elsewhere = tmp_path / "o" / "s.tiles", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("mine")
    run.parent.mkdir()
    if make == "link":
        run.symlink_to(elsewhere)
    elif make == "file":
        run.write_text("a file of the user's")
    else:
        run.mkdir()
        if make == "fifo":
            os.mkfifo(run / MANIFEST)  # opened blocking, this would hang the run
        else:
            (run / MANIFEST).write_text("[" * 100000 + "]" * 100000)
    before = tree(tmp_path)
    t0 = time.monotonic()
    one_line(capsys, cli.main([*JOB, "--out", str(tmp_path / "o")]), "s.tiles")
    assert time.monotonic() - t0 < 60
    assert tree(tmp_path) == before


def _resave(change):
    def craft(path, tmp_path, monkeypatch):
        with np.load(path) as f:
            maps = change(dict(f))
        path.unlink()
        np.savez(path, **maps)

    return craft


def _other_seed(path, tmp_path, monkeypatch):
    other = tmp_path / "other"
    killed_after(other, 3, monkeypatch, [*JOB, "--seed", "7"])
    path.write_bytes((other / "s.tiles" / path.name).read_bytes())


def _fifo(path, tmp_path, monkeypatch):
    path.unlink()
    os.mkfifo(path)


def _link(path, tmp_path, monkeypatch):
    target = tmp_path / "outside.npz"
    path.replace(target)
    path.symlink_to(target)


CRAFTS = {
    "another seed": _other_seed,
    "nan": _resave(lambda a: {k: np.full_like(v, np.nan) for k, v in a.items()}),
    "int": _resave(lambda a: {k: v.astype(np.int64) for k, v in a.items()}),
    "bool": _resave(lambda a: {k: v > 0 for k, v in a.items()}),
    "float16": _resave(lambda a: {k: v.astype(np.float16) for k, v in a.items()}),
    "float64": _resave(lambda a: {k: v.astype(np.float64) for k, v in a.items()}),
    "complex": _resave(lambda a: {k: v + 1j for k, v in a.items()}),
    "string": _resave(lambda a: {k: v.astype(str) for k, v in a.items()}),
    "no accuracy": _resave(lambda a: {k: v for k, v in a.items() if k != "accuracy"}),
    "no grad_norm": _resave(lambda a: {k: v for k, v in a.items() if k != "grad_norm"}),
    "no grad_x": _resave(lambda a: {k: v for k, v in a.items() if k != "grad_x"}),
    "fifo": _fifo,
    "link out": _link,
    "garbage": lambda path, tmp_path, monkeypatch: path.write_bytes(b"not a tile"),
}


@pytest.mark.slow
@pytest.mark.parametrize("craft", CRAFTS)
def test_a_crafted_tile_is_computed_again(craft, clean, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    finished = killed_after(out, 3, monkeypatch)
    assert len(finished) == 3
    CRAFTS[craft](finished[0], tmp_path, monkeypatch)
    capsys.readouterr()
    assert cli.main([*JOB, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "tiles: 2 of 10 already done" in said and "did not match their record" in said, said
    got = arrays(out / "s.npz")
    for k in FIELDS:
        np.testing.assert_array_equal(got[k], clean[k])
    assert not (out / "s.tiles").exists()
    if craft == "link out":
        assert (tmp_path / "outside.npz").exists()  # the link went, not what it pointed to


def test_a_journal_line_cut_short_costs_only_its_tile(clean, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    killed_after(out, 3, monkeypatch)
    journal = out / "s.tiles" / JOURNAL
    text = journal.read_bytes().rstrip(b"\n")
    journal.write_bytes(text[:-20])  # the last record torn, as a kill mid-write would leave it
    capsys.readouterr()
    assert cli.main([*JOB, "--out", str(out)]) == 0
    assert "tiles: 2 of 10 already done" in capsys.readouterr().out
    got = arrays(out / "s.npz")
    for k in FIELDS:
        np.testing.assert_array_equal(got[k], clean[k])


def test_a_finished_run_removes_only_what_it_made(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    killed_after(out, 2, monkeypatch)
    (out / "s.tiles" / "notes.txt").write_text("mine")  # put there by the user between the runs
    capsys.readouterr()
    assert cli.main([*JOB, "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "kept" in said and "notes.txt" in said, said
    assert sorted(p.name for p in (out / "s.tiles").iterdir()) == ["notes.txt"]
    assert (out / "s.tiles" / "notes.txt").read_text() == "mine"


def test_a_run_that_never_landed_a_tile_leaves_nothing(tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("landscape.tiles.compute_tile", fail)
    assert cli.main([*JOB, "--out", str(tmp_path)]) == 130
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_a_killed_runs_directory_in_the_making_is_cleared(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    making = tmp_path / f".tmp-landscape-{dead.pid}-a1b2c3d4"  # as mkdtemp names it
    making.mkdir()
    (making / MANIFEST).write_text("{}")
    users = tmp_path / f".tmp-landscape-{dead.pid}-e5f6g7h8"  # named alike, but holding a user's file
    users.mkdir()
    (users / "data.csv").write_text("1,2")
    assert cli.main([*JOB, "--out", str(tmp_path)]) == 0
    assert not making.exists() and (users / "data.csv").read_text() == "1,2"


def test_the_journal_and_manifest_are_regular_files_only(tmp_path, monkeypatch, capsys):
    out = tmp_path / "o"
    killed_after(out, 2, monkeypatch)
    journal = out / "s.tiles" / JOURNAL
    journal.unlink()
    os.mkfifo(journal)
    one_line(capsys, cli.main([*JOB, "--out", str(out)]), "tile journal", "not a regular file")
