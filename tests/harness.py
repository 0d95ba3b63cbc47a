"""The tests' one harness for the commands: run a command's ``main`` in process, read the paths it
printed, and hold an error to the toolkit's rule (one line on stderr, status 2, no traceback,
nothing written)."""

from __future__ import annotations

from pathlib import Path


def run_cli(main, args, capsys):
    """(exit status, stdout, stderr) of main(args); argparse's SystemExit counts as a status."""
    try:
        code = main(args)
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def printed_paths(stdout: str) -> list[str]:
    """The file paths main() printed: the last lines of stdout (a summary table may come first)."""
    lines = stdout.splitlines()
    paths = [line for line in lines if Path(line).suffix in {".npz", ".png", ".html"}]
    assert lines[len(lines) - len(paths) :] == paths, stdout
    return paths


def assert_one_line_error(code, out, err, needles, out_dir=None, prog=None):
    """Status 2, nothing on stdout (unless ``out`` is None: a run's progress may come first), one
    line on stderr (from ``prog``, when given) holding every needle, no traceback, and (with
    ``out_dir``) not even the output folder made."""
    assert code == 2, (code, err)
    assert out is None or out == "", out
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    if prog is not None:
        assert err.startswith(f"{prog}: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    if out_dir is not None:
        assert not out_dir.exists(), list(out_dir.iterdir())
    return err.strip()


def one_line(capsys, code, *needles) -> str:
    """``assert_one_line_error`` on what a command just printed on stderr, given its status; the line."""
    return assert_one_line_error(code, None, capsys.readouterr().err, needles)


def one_line_error(capsys, call, *needles) -> str:
    """``one_line`` of ``call()``, with what was printed before it set aside."""
    capsys.readouterr()
    return one_line(capsys, call(), *needles)
