"""Command-line plumbing shared by ``landscape.slice``, ``landscape.render`` and
``landscape.latching``: the one-line parser, error reporting, and parsers of lists, ranges, sizes
and the figure options. The commands import this module and the library, never each other."""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable

from ._errors import DTYPES, ConfigError, InputError
from ._io import page_size
from .figures.options import FigureOptions
from .figures.style import STYLES
from .options import as_flag
from .planes import MAX_COORD
from .words import FORMATS, MAX_DISPLAY, Z_SCALES

__all__ = [
    "OneLineParser",
    "report_errors",
    "print_paths",
    "choices",
    "parse_lengths",
    "parse_range",
    "parse_res",
    "parse_point",
    "parse_files",
    "finite_float",
    "parse_mem",
    "join_negative_values",
    "add_figure_options",
    "figure_options",
    "figure_flag",
    "DTYPES",
]


class Terminated(BaseException):  # not an Exception: no broad handler may swallow it
    """SIGTERM, raised where the program stands so that every temporary file is cleaned up."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def report_errors(
    prog: str, body: Callable[[], list[str] | None], flag: Callable[[str], str] = as_flag
) -> int:
    """Run a command's body and print the paths it returns, one a line: bad input (or an
    unwritable output) is one line on stderr, status 2, a configuration's field said as its
    ``flag``;
    Ctrl-C and SIGTERM are one line and status 130 and 143, after the writes under way have
    removed their temporary files (``_io.atomic_write``)."""
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _terminate) if main else None
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
    try:
        paths = body()
        if paths:
            print_paths(paths)
    except ConfigError as e:  # the library names fields; the command says them as its flags
        print(f"{prog}: error: {e.render(flag)}", file=sys.stderr)
        return 2
    except (InputError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prog}: error: out of memory; give a smaller --mem, --res or --samples", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; files being written were not kept", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{prog}: terminated; files being written were not kept", file=sys.stderr)
        return 143
    finally:
        if main:
            signal.signal(signal.SIGTERM, old)
            signal.signal(signal.SIGINT, old_int)
    return 0


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def print_paths(paths: list[str]) -> None:
    """The size of each explorer page written, then every path, one per line (paths come last)."""
    for p in paths:
        if p.endswith(".html"):
            print(f"explorer page: {page_size(p)}")
    print(*paths, sep="\n")


def finite_float(text: str) -> float:
    """An argparse type: a finite number (NaN and Inf are refused, in one line)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return v


def choices(text: str, valid: tuple[str, ...], option: str) -> tuple[str, ...]:
    """'a,b' -> ('a', 'b'), each one of ``valid``."""
    items = tuple(v for v in text.split(",") if v)
    for v in items:
        if v not in valid:
            raise InputError(f"{option} {v!r} is unknown; valid: {', '.join(valid)}")
    if not items:
        raise InputError(f"{option} is empty; valid: {', '.join(valid)}")
    return items


def parse_lengths(text: str, option: str = "--len") -> list[int]:
    """'50' or '5,10,20' -> [5, 10, 20]; every length a positive integer (``option`` names the
    flag in errors)."""
    out = []
    for part in text.split(","):
        try:
            n = int(part)
        except ValueError:
            raise InputError(
                f"{option} {text!r}: {part!r} is not an integer; "
                "give a length such as 50 or a list such as 5,10,20"
            ) from None
        if n < 1:
            raise InputError(f"{option} {text!r}: length {n} must be a positive integer")
        out.append(n)
    return out


def parse_files(text: str, option: str = "--to") -> tuple[str, ...]:
    """'B.pt' or 'B.pt,C.keras' -> the file names (checked by the configuration)."""
    parts = tuple(text.split(","))
    if not all(parts):
        raise InputError(f"{option} {text!r}: give model files separated by commas, such as B.pt,C.pt")
    return parts


def parse_range(text: str, option: str) -> tuple[float, float]:
    """'LO:HI' -> (lo, hi) with finite lo < hi."""
    parts = text.split(":")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or not (max(abs(lo), abs(hi)) <= MAX_COORD) or not lo < hi:
        raise InputError(
            f"{option} {text!r} is not a range; give LO:HI with LO < HI, each finite "
            f"and within +-{MAX_COORD:g}, such as -4:4"
        )
    return lo, hi


def parse_res(text: str) -> tuple[int, int]:
    """'51' -> (51, 51); '201,2001' -> (nx, ny) = (201, 2001); each at least 2."""
    parts = text.split(",")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        vals = []
    if len(vals) == 1:
        vals *= 2
    if len(vals) != 2 or min(vals) < 2:
        raise InputError(f"--res {text!r}: give N or NX,NY with integers >= 2, such as 51 or 201,2001")
    return vals[0], vals[1]


def parse_point(text: str, option: str) -> tuple[float, float]:
    """'A,B' -> (a, b), two finite numbers."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        a = b = float("nan")
    if not (abs(a) < float("inf") and abs(b) < float("inf")):
        raise InputError(
            f"{option} {text!r}: give two finite numbers X,Y in the plane's coordinates, such as 5,-2.7"
        )
    return a, b


def parse_mem(text: str) -> int:
    """'1G', '512M', '65536' -> bytes (> 0)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)i?[bB]?\s*", text)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    n = int(float(m.group(1)) * scale[m.group(2).lower()]) if m else 0
    if n <= 0:
        raise InputError(f"--mem {text!r}: give a positive size such as 1G, 512M or 65536")
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    if ram and n > ram // 2:
        raise InputError(
            f"--mem {text!r} is more than half of this machine's {ram / 2**30:.0f} GiB; "
            f"give at most {ram // 2 >> 20}M"
        )
    return n


def join_negative_values(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """Let ``--xrange -4:4`` through: argparse would take '-4:4' for an option."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def add_figure_options(ap: argparse.ArgumentParser) -> None:
    """The options that choose how figures look, shared by landscape.slice and landscape.render."""
    ap.add_argument(
        "--format",
        default=None,
        metavar="FMT[,FMT...]",
        help=f"figure formats: {', '.join((*FORMATS, 'html'))} (default png,html)",
    )
    ap.add_argument(
        "--style",
        choices=tuple(STYLES),
        default="screen",
        help="paper: LaTeX serif fonts at 8 pt, embedded TrueType, column widths; screen: larger",
    )
    ap.add_argument(
        "--width",
        default=None,
        metavar="single|double|INCHES",
        help="figure width: single (3.3 in) or double (6.9 in) column, or inches",
    )
    ap.add_argument("--dpi", type=int, default=None, help="PNG resolution (default 300 paper, 150 screen)")
    ap.add_argument("--z-scale", choices=Z_SCALES, default="linear", help="z axis of the HTML explorer")
    ap.add_argument(
        "--max-points",
        type=int,
        default=MAX_DISPLAY,
        help="points per axis shown in the HTML (a stride beyond; the .npz keeps all)",
    )


FIGURE_FLAGS = {"kinds": "--kind", "formats": "--format"}  # FigureOptions' fields whose flag is not theirs


def figure_flag(name: str) -> str:
    """A FigureOptions field as the commands' flag."""
    return FIGURE_FLAGS.get(name) or as_flag(name)


def figure_options(args: argparse.Namespace, **fields) -> FigureOptions:
    """The figures' options from the parsed ones (``--format`` says the static formats and the
    explorer together); ``fields`` are the command's own (kinds, scale, ...)."""
    fmts = ("png", "html") if args.format is None else choices(args.format, (*FORMATS, "html"), "--format")
    return FigureOptions(
        formats=tuple(f for f in fmts if f != "html"),
        html="html" in fmts,
        style=args.style,
        width=args.width,
        dpi=args.dpi,
        z_scale=args.z_scale,
        max_points=args.max_points,
        **fields,
    )
