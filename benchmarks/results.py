"""Writes one benchmark's section of benchmarks/results.md, keeping the other sections."""

from __future__ import annotations

import os


def write_results(path: str, head: str, section: str) -> None:
    """Replace the section that starts with the line ``head`` (or append it), atomically."""
    old = open(path).read() if os.path.exists(path) else ""
    parts = ["# " + p.removeprefix("# ").strip() + "\n" for p in ("\n" + old).split("\n# ") if p.strip()]
    kept = [p for p in parts if not p.startswith(head)]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join([*kept, section]))
    os.replace(tmp, path)
