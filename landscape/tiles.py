"""Sweeps as independent tiles: resumable after any interruption, and runnable on a Dask cluster.

A sweep's grid splits into tiles, each a block of grid rows at one length. Every finished tile is
written atomically into a run directory beside the output (``<name>.tiles/``,
``landscape.rundir``), whose manifest records the sweep's whole configuration and marks the
directory as made here. Running the same command again computes only the tiles that are missing
or do not match their record; a run directory made by a different configuration, or a folder
this toolkit did not make, is refused, never mixed or removed. When the surface is assembled and
written, what the run made is removed.

Tiles run in this process by default (no Dask import), on a local cluster of worker processes
(``workers``), or on an existing ``dask.distributed`` scheduler (``scheduler``, an address such as
``tcp://host:8786``, checked by ``check_scheduler`` before any work); Dask is the optional extra
``rnn-landscape[distributed]``. The connection and the first worker each wait at most ``timeout``
seconds, and every worker must import this package at this version, before the run directory is
made. Results are written by this process as they arrive, so a worker that dies only costs its
own tiles, which Dask runs again elsewhere.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
from contextlib import closing
from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError
from ._version import __version__
from .cells import get_cell
from .evaluate import _evaluate, _evaluate_prefixes, prefix_sweep
from .planes import Plane
from .rundir import RunDir, Tile
from .tasks import TaskData

__all__ = [
    "Tile",
    "make_tiles",
    "compute_tile",
    "compute_prefix_tiles",
    "run_tiles",
    "RunDir",
    "check_scheduler",
    "scheduler_address",
    "TIMEOUT",
]

FIELDS = ("loss", "accuracy", "grad_norm", "grad_x", "grad_y")


def make_tiles(n_lengths: int, ny: int, rows: int) -> list[Tile]:
    """Blocks of ``rows`` grid rows at every length, in a fixed order."""
    return [Tile(k, r0, min(ny, r0 + rows)) for k in range(n_lengths) for r0 in range(0, ny, rows)]


def compute_tile(cell_spec: dict, data: TaskData, plane: Plane, tile: Tile, opts: dict) -> dict:
    """One tile's maps (rows r0..r1 of the plane at one length). A plain function of plain data,
    so that a Dask worker can run it: the cell travels as its name and variant. ``opts`` are
    ``run_tiles``'s (a resolved backend; ``data`` in their dtype on their device)."""
    if opts.get("threads"):
        torch.set_num_threads(opts["threads"])
    sub = replace(plane, y=plane.y[tile.r0 : tile.r1])  # the rows of this tile; points follow y
    res = _evaluate(
        get_cell(**cell_spec),
        data,
        sub,
        dtype=opts["dtype"],
        device=opts["device"],
        mem=opts["mem"],
        grad=opts["grad"],
        backend=opts["backend"],
    )
    return {k: getattr(res, k) for k in FIELDS if getattr(res, k) is not None}


def compute_prefix_tiles(
    cell_spec: dict, data: TaskData, plane: Plane, tiles: list[Tile], lengths: list[int], opts: dict
) -> list[dict]:
    """The maps of several tiles of the same rows, each at its own length, from one pass over
    ``data`` (the longest length's sequences, of which each length's data are the first steps:
    ``landscape.evaluate.prefix_sweep``); the numbers ``compute_tile`` gives each of them."""
    if opts.get("threads"):
        torch.set_num_threads(opts["threads"])
    t0 = tiles[0]
    sub = replace(plane, y=plane.y[t0.r0 : t0.r1])
    top = max(lengths)  # a resumed block may miss only its short lengths: read no further than they need
    cut = (
        data
        if top == data.length
        else replace(data, x=None if data.x is None else data.x[:, :top], length=top)
    )
    res = _evaluate_prefixes(
        get_cell(**cell_spec),
        cut,
        sub,
        lengths,
        dtype=opts["dtype"],
        device=opts["device"],
        mem=opts["mem"],
        backend=opts["backend"],
    )
    return [{k: getattr(r, k) for k in FIELDS if getattr(r, k) is not None} for r in res]


def _jobs(
    spec: dict, planes: list[Plane], datas: list[TaskData], todo: list[Tile], opts: dict
) -> list[tuple]:
    """The work for the tiles ``todo``: (tiles, function, arguments) each, a tile alone, or the
    missing tiles of a block of rows together where every length comes from one pass."""
    if opts["grad"] or not prefix_sweep(planes, datas):
        return [((t,), _one_tile, (spec, datas[t.k], planes[t.k], t, opts)) for t in todo]
    rows: dict[tuple[int, int], list[Tile]] = {}
    for t in todo:
        rows.setdefault((t.r0, t.r1), []).append(t)
    top = max(datas, key=lambda d: d.length)
    return [
        (tuple(ts), compute_prefix_tiles, (spec, top, planes[0], ts, [datas[t.k].length for t in ts], opts))
        for ts in rows.values()
    ]


def _one_tile(*args) -> list[dict]:
    return [compute_tile(*args)]


TIMEOUT = 30.0  # seconds to reach a Dask scheduler, and then for its first worker
SCHEMES = ("tcp",)  # Dask's comms the toolkit connects over (tls needs certificates it does not take)
_ADDRESS = re.compile(
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?"
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]]+)(?::(?P<port>[0-9]+))?"
)
_HOST = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def check_scheduler(address) -> str:
    """A Dask scheduler's address as ``tcp://HOST:PORT`` (the scheme may be left out), or
    InputError naming what is wrong with it: the scheme, the host or the port."""
    normal, why = scheduler_address(address)
    if normal is None:
        raise InputError(f"scheduler address {str(address)[:80]!r} {why}")
    return normal


def scheduler_address(address) -> tuple[str | None, str]:
    """``(tcp://HOST:PORT, "")`` for a valid scheduler address, else ``(None, why not)``."""
    m = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    want = "give tcp://HOST:PORT, such as tcp://127.0.0.1:8786"
    if m is None:
        return None, f"is not an address; {want}"
    scheme, host, port = (m["scheme"] or "tcp").lower(), m["host"], m["port"]
    if scheme not in SCHEMES:
        return None, f"has scheme {scheme!r}, which is not supported; valid: {', '.join(SCHEMES)} ({want})"
    if not (host.startswith("[") or _HOST.fullmatch(host)):
        return None, f"has {host[:40]!r}, which is not a host name or IP address; {want}"
    if port is None or not 1 <= int(port) <= 65535:
        return None, f"needs a port from 1 to 65535; {want}"
    return f"{scheme}://{host}:{int(port)}", ""


@contextlib.contextmanager
def _cluster(scheduler: str | None, workers: int | None, timeout: float):
    """A Dask client on the scheduler at ``scheduler`` or on a local cluster of ``workers``
    processes, once at least one worker is there and every worker imports this package at this
    version; closed (with a cluster it started) whatever happens."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError(
            "scheduler and workers need Dask: pip install 'rnn-landscape[distributed]'"
        ) from None
    client = cluster = None
    where = f"the Dask scheduler at {scheduler}" if scheduler else "the local Dask cluster"
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError) as e:
                raise InputError(f"cannot reach {where} within {timeout:g} s: {e}") from None
        else:
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )  # any free port: never one in use
            client = Client(cluster)
        try:
            client.wait_for_workers(1, timeout=timeout)
        except TimeoutError:
            start = f"dask worker {scheduler}" if scheduler else "fewer workers"
            raise InputError(
                f"{where} has no worker after {timeout:g} s; start one ({start}) or give a longer timeout"
            ) from None
        _check_workers(client, where)
        yield client
    finally:  # a cluster this run started never outlives it
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _check_workers(client, where: str) -> None:
    """Every worker imports this package at this version (a worker without it would die on the
    first tile, and the run would wait for ever)."""
    found = client.run(importlib.import_module, "landscape._version", on_error="return")
    lacking = sorted(w for w, v in found.items() if isinstance(v, BaseException))
    if lacking:
        raise InputError(
            f"{len(lacking)} worker(s) of {where} cannot import landscape ({lacking[0]}); "
            "install rnn-landscape where the workers run"
        )
    versions = client.run(_version, on_error="return")
    other = sorted((w, v) for w, v in versions.items() if v != __version__)
    if other:
        raise InputError(
            f"{len(other)} worker(s) of {where} run landscape {other[0][1]!s:.40}, not "
            f"{__version__} ({other[0][0]}); install the same version there"
        )


def _version() -> str:
    return __version__


def _results(client, jobs: list[tuple]):
    """(tile, maps) of each tile of the jobs ``(tiles, function, arguments)`` as its job finishes:
    on the Dask ``client``, or computed here in turn (None)."""
    if client is None:
        for tiles, fn, args in jobs:
            yield from zip(tiles, fn(*args), strict=True)
        return
    from dask.distributed import as_completed

    futures = {client.submit(fn, *args, pure=False): tiles for tiles, fn, args in jobs}
    for fut in as_completed(futures):
        yield from zip(futures[fut], fut.result(), strict=True)


def run_tiles(
    cell,
    planes: list[Plane],
    datas: list[TaskData],
    run_dir: str,
    manifest: dict,
    *,
    rows: int | None,
    opts: dict,
    scheduler: str | None = None,
    workers: int | None = None,
    timeout: float = TIMEOUT,
    progress: bool = True,
) -> tuple[dict, RunDir]:
    """Compute every tile that ``run_dir`` does not hold yet (in process, or on Dask), save each as
    it arrives, and assemble the maps: name -> (n_len, ny, nx), with the ``RunDir`` (whose
    ``remove`` clears what the run made once its result is safe). ``rows`` grid rows per tile
    (None: ``default_rows``) join the ``manifest``; ``opts`` are ``evaluate``'s, with the backend
    resolved for the whole sweep (``landscape.backends.resolve_backend``). A new run directory
    that no tile reached is removed again when the run fails."""
    if opts.get("backend") not in ("reference", "fused"):
        raise InputError(
            f"run_tiles needs a resolved backend, 'reference' or 'fused', not "
            f"{opts.get('backend')!r} (landscape.backends.resolve_backend decides one)"
        )
    datas = [d.to(opts["dtype"], opts["device"]) for d in datas]  # once, not in every tile
    ny, nx = planes[0].shape
    rows = rows or default_rows(ny)
    tiles = make_tiles(len(datas), ny, rows)
    fields = [
        "loss",
        *(["accuracy"] if datas[0].objective != "pascanu" else []),
        *(FIELDS[2:] if opts["grad"] else []),
    ]
    expect = dict(nx=nx, fields=fields, dtype=torch.empty(0, dtype=opts["dtype"]).numpy().dtype.name)
    scheduler = check_scheduler(scheduler) if scheduler else None
    dask = scheduler or workers
    with _cluster(scheduler, workers, timeout) if dask else contextlib.nullcontext() as client:
        run = RunDir(run_dir, {**manifest, "tile_rows": rows}, tiles, expect)
        for note in run.notes:
            print(note)
        done, landed = dict(run.done), 0
        spec = dict(
            name=cell.name,
            head=cell.head or "logit",
            gru_reset=cell.reset,
            gate=cell.gate,
            hidden=cell.hidden,
            inputs=cell.inputs,
            layers=cell.layers,
        )
        todo = [t for t in tiles if done[t] is None]
        jobs = _jobs(spec, planes, datas, todo, opts)
        try:
            with tqdm(
                total=len(tiles),
                initial=len(tiles) - len(todo),
                unit="tile",
                disable=not progress,
                desc=f"{cell.name} tiles",
                leave=False,
            ) as bar:
                print(f"tiles: {len(tiles) - len(todo)} of {len(tiles)} already done, {len(todo)} to compute")
                with closing(_results(client, jobs)) as results:  # a failure here still closes the cluster
                    for t, arrays in results:
                        run.save(t, arrays)
                        done[t], landed = arrays, landed + 1
                        bar.update(1)
        except BaseException:
            if run.new and not landed:  # nothing to resume: what this run made goes
                run.remove()
            raise
    out = {k: np.empty((len(datas), ny, nx), dtype=expect["dtype"]) for k in fields}
    for t in tiles:
        for k in fields:
            out[k][t.k, t.r0 : t.r1] = done[t][k]
    return out, run


def default_rows(ny: int) -> int:
    """Rows per tile: about 32 tiles per length (never where they run: a run resumed on another
    number of workers keeps its tiles)."""
    return max(1, math.ceil(ny / 32))
