"""Ahead-of-time compiles of the GPU engine's kernel for a CUDA architecture, on a machine without
a GPU: Triton's whole pipeline (TTIR, TTGIR, LLVM, PTX) and the ``ptxas`` inside the triton wheel
report each variant's registers and spills.

    python -m landscape.engine.gpu_aot [--arch 90] [--json]

Each variant is a cell (and gate function), a floating-point type, with or without tangents,
compiled at the launch shape the engine takes for it (``landscape.engine.gpu.launch_shape``).
The exit status is 1 if any variant spills registers inside a loop (its time loop, or a loop
within it), or fails to compile; spills outside every loop are reported, and allowed. Runs in its own process:
``TRITON_INTERPRET`` must be unset here (the kernels are compiled, not interpreted).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

__all__ = ["VARIANTS", "compile_variant", "main"]

# (cell code name, gates, gate function, objective) of every one-unit variant the engine runs
CELLS = [
    ("rnn", 1, "sigmoid", "bce"),
    ("lstm", 4, "sigmoid", "bce"),
    ("lstm", 4, "hard_sigmoid", "bce"),
    ("gru", 3, "sigmoid", "bce"),
    ("gru", 3, "hard_sigmoid", "bce"),
    ("gru_before", 3, "sigmoid", "bce"),
    ("gru_before", 3, "hard_sigmoid", "keras"),
    ("pascanu", 1, "sigmoid", "pascanu"),
]
P = {"rnn": 6, "lstm": 18, "gru": 14, "gru_before": 14, "pascanu": 2}
VARIANTS = [
    dict(cell=c, gates=k, gate=g, objective=o, dtype=dt, tangents=tang, rows=False)
    for c, k, g, o in CELLS
    for dt in ("fp32", "fp64")
    for tang in (False, True)
] + [dict(cell="lstm", gates=4, gate="sigmoid", objective="bce", dtype="fp32", tangents=True, rows=True)]
# the backward kernel (every cell but Pascanu's map, which takes tangents)
VARIANTS += [
    dict(cell=c, gates=k, gate=g, objective=o, dtype=dt, backward=True, rows=rows)
    for c, k, g, o in CELLS
    if c != "pascanu"
    for dt in ("fp32", "fp64")
    for rows in ((False, True) if (c, g, dt) == ("lstm", "sigmoid", "fp32") else (False,))
]
# a sweep of lengths from one pass (the loss and accuracy after each)
VARIANTS += [
    dict(cell=c, gates=k, gate="sigmoid", objective=o, dtype="fp32", tangents=False, rows=False, stops=True)
    for c, k, o in (("lstm", 4, "bce"), ("gru", 3, "keras"), ("pascanu", 1, "pascanu"))
]
# the fast-math variant (the GPU's tanh.approx.f32; float32 only), forward and backward
VARIANTS += [
    dict(
        cell=c,
        gates=k,
        gate="sigmoid",
        objective="bce",
        dtype="fp32",
        tangents=False,
        rows=False,
        fast=True,
        backward=back,
    )
    for c, k in (("rnn", 1), ("lstm", 4), ("gru", 3))
    for back in (False, True)
]
# models of H units, I inputs, L layers (``gpu_units_kernels``): forward, forward recording every
# step (for the backward kernel), backward; each at its own launch shape (N = 1000)
UNIT_CELLS = CELLS[:7]
VARIANTS += (
    [
        dict(cell=c, gates=k, gate=g, objective="bce", dtype=dt, units=H, inputs=H, pass_=what, rows=False)
        for c, k, g, _ in UNIT_CELLS
        for dt in ("fp32", "fp64")
        for H in ((8, 64) if (c, g) in (("lstm", "sigmoid"), ("gru", "sigmoid")) else (8,))
        for what in ("forward", "backward")
    ]
    + [
        dict(
            cell="lstm", gates=4, gate="sigmoid", objective="bce", dtype=dt, units=H, inputs=H, pass_="record"
        )
        | dict(rows=False)
        for dt, H in (("fp32", 8), ("fp64", 64))
    ]
    + [
        dict(
            cell="lstm", gates=4, gate="sigmoid", objective="bce", dtype="fp32", units=8, inputs=I, pass_=what
        )
        | extra
        for what in ("forward", "backward")
        for I, extra in ((8, dict(rows=True)), (8, dict(rows=False, fast=True)), (64, dict(rows=False)))
    ]
    + [
        dict(
            cell="gru",
            gates=3,
            gate="sigmoid",
            objective="bce",
            dtype="fp32",
            units=8,
            inputs=8,
            pass_="forward",
        )
        | dict(rows=False, stops=True)
    ]
)


def compile_variant(v: dict, arch: int = 90) -> dict:
    """Compile one variant for sm_<arch>; its registers, spill bytes and seconds."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import gpu, gpu_kernels

    size = 8 if v["dtype"] == "fp64" else 4
    N, G = 1000, 1 << 20
    common = dict(
        CELL=gpu.CODES[v["cell"]],
        gates=v["gates"],
        GATE=gpu.GATE_CODES[v["gate"]],
        OBJ=gpu.OBJECTIVE_CODES[v["objective"]],
        HAS_X=v["cell"] != "pascanu",
        HAS_ROWS=v["rows"],
        HAS_LEN=v["rows"],
        FAST=v.get("fast", False),
    )
    if "units" in v:
        from . import gpu_units, gpu_units_kernels

        BG = 1
        BN, HP, KP = gpu_units.units_shape(N, v["units"], v["inputs"], size, backward=v["pass_"] != "forward")
        const = dict(
            CELL=common["CELL"],
            gates=v["gates"],
            GATE=common["GATE"],
            HAS_ROWS=v["rows"],
            HAS_LEN=v["rows"],
            FAST=common["FAST"],
            BN=BN,
            HP=HP,
            KP=KP,
        )
        if v["pass_"] == "backward":
            fn = gpu_units_kernels.units_bptt_kernel
        else:
            fn = gpu_units_kernels.units_kernel
            const.update(HAS_STOPS=v.get("stops", False), RECORD=v["pass_"] == "record")
        ints = {"N", "T", "P", "I", "H", "L", "K_STOPS", "xs_g", "xs_n", "NB"}
    elif v.get("backward"):
        fn = gpu_kernels.bptt_kernel
        BG, BN = gpu._bptt_shape(G, N, size)
        const = dict(common, NS=2 if v["cell"] == "lstm" else 1, BG=BG, BN=BN)
        ints = {"G", "N", "T", "P", "S", "K", "LANES", "xs_g", "xs_n", "ys_g"}
    else:
        fn = gpu_kernels.recur_kernel
        D = min(P[v["cell"]], gpu.MAX_DIRECTIONS[size]) if v["tangents"] else 0
        BG, BN = gpu.launch_shape(
            G, 1 if v["cell"] == "pascanu" else N, D, itemsize=size, fast=v.get("fast", False)
        )
        const = dict(
            common, TANG=v["tangents"], HAS_STOPS=v.get("stops", False), BG=BG, BN=BN, DP=gpu._pow2(max(D, 1))
        )
        ints = {"G", "N", "T", "P", "D", "K_STOPS", "xs_g", "xs_n", "ys_g"}
    sig = {}
    for name in fn.arg_names:
        if name in const:
            sig[name] = "constexpr"
        elif name in ints:
            sig[name] = "i32"
        elif name in ("rows_ptr", "len_ptr", "stops_ptr"):
            sig[name] = "*i64"
        else:
            sig[name] = "*" + v["dtype"]
    t0 = time.perf_counter()
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): c for k, c in const.items()})
    options = {"num_warps": gpu.NUM_WARPS}
    if "units" in v:
        options["maxnreg"] = gpu_units.MAX_REGISTERS
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    ptx = kernel.asm["ptx"]
    target = re.search(r"^\.target\s+(\S+)", ptx, re.M).group(1).rstrip(",")
    ptxas = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "k.ptx"
        path.write_text(ptx)
        out = subprocess.run(
            [str(ptxas), "-v", "--gpu-name", target, str(path), "-o", str(pathlib.Path(d) / "k.o")],
            capture_output=True,
            text=True,
            check=True,
        )
        sass = subprocess.run(
            [str(ptxas.parent / "cuobjdump"), "-sass", str(pathlib.Path(d) / "k.o")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    report = out.stdout + out.stderr
    regs = int(re.search(r"Used (\d+) registers", report).group(1))
    stores = int(re.search(r"(\d+) bytes spill stores", report).group(1))
    loads = int(re.search(r"(\d+) bytes spill loads", report).group(1))
    if ("tanh.approx" in ptx) != bool(v.get("fast")):  # the switch is what decides it
        raise RuntimeError(f"tanh.approx {'missing from' if v.get('fast') else 'found in'} the PTX")
    return dict(
        v,
        BG=BG,
        BN=BN,
        regs=regs,
        spill_stores=stores,
        spill_loads=loads,
        loop_spills=loop_spills(sass),
        seconds=time.perf_counter() - t0,
    )


def loop_spills(sass: str) -> int:
    """Local-memory accesses (register spills: STL, LDL) inside a loop of the machine code: between
    a backward branch's target and the branch. A spill outside every loop (a value kept across the
    time loop, stored once before it and loaded once after) costs nothing that shows."""
    code = [(int(m.group(1), 16), m.group(2)) for m in re.finditer(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    loops = []
    for at, ins in code:
        b = re.search(r"\bBRA\s+(?:`\()?0x([0-9a-f]+)", ins)
        if b and int(b.group(1), 16) < at:
            loops.append((int(b.group(1), 16), at))
    return sum(
        1 for at, ins in code if re.search(r"\b(STL|LDL)\b", ins) and any(a <= at <= z for a, z in loops)
    )


def _name(v: dict) -> str:
    if "units" in v:
        what = f"H{v['units']}I{v['inputs']}/{v['pass_']}"
    else:
        what = "backward" if v.get("backward") else ("tangents" if v["tangents"] else "loss")
    parts = [v["cell"], v["gate"], v["objective"], v["dtype"], what]
    extra = (["rows+lengths"] if v["rows"] else []) + (["stops"] if v.get("stops") else [])
    return "/".join(parts + extra + (["fast-math"] if v.get("fast") else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m landscape.engine.gpu_aot", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--arch", type=int, default=90, help="CUDA compute capability times 10 (90: H100/H200)")
    ap.add_argument("--json", action="store_true", help="one JSON object per variant")
    args = ap.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("gpu_aot: TRITON_INTERPRET=1 interprets kernels; unset it to compile them", file=sys.stderr)
        return 2
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # unset, triton 3.9 warns
    with tempfile.TemporaryDirectory(prefix="landscape-aot-") as cache:
        os.environ["TRITON_CACHE_DIR"] = cache  # compiled afresh, and nothing left in the user's cache
        return _report(args)


def _report(args) -> int:
    bad = 0
    for v in VARIANTS:
        try:
            r = compile_variant(v, args.arch)
        except Exception as e:  # a failed compile is a row of the report, and a failure
            r = dict(v, error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        bad += bool(r.get("error") or r.get("loop_spills"))
        if args.json:
            print(json.dumps(r), flush=True)
        elif "error" in r:
            print(f"{_name(v):48} FAILED {r['error']}", flush=True)
        else:
            print(
                f"{_name(v):48} block {r['BG']}x{r['BN']:<4} {r['regs']:3d} registers, "
                f"spills {r['spill_stores']}/{r['spill_loads']} bytes ({r['loop_spills']} in loops), "
                f"{r['seconds']:.1f} s",
                flush=True,
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
