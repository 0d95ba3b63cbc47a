"""Ctrl-C and SIGTERM while a command is still starting: one line and status 130 or 143.

``python -m landscape.slice`` imports torch, numpy and matplotlib before its ``main`` runs, and a
signal there would print a long traceback (or, inside torch's import, hang). Nothing has been
written yet, so the process can simply leave. Imported first by the package, and active only
when a ``landscape`` module runs as a command; ``_cli.report_errors`` takes over once the
command's body runs, so that files under way are cleaned up.
"""

import os
import signal
import sys
import threading


def _leave(signum, frame) -> None:
    prog = "python -m " + sys.orig_argv[2]
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    os.write(2, f"{prog}: {word} while starting\n".encode())
    os._exit(128 + signum)


def install() -> None:
    """Leave quietly on SIGINT and SIGTERM, when this process is ``python -m landscape.<command>``."""
    argv = getattr(sys, "orig_argv", [])
    if (
        len(argv) >= 3
        and argv[1] == "-m"
        and argv[2].startswith("landscape.")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _leave)
        signal.signal(signal.SIGTERM, _leave)
