"""Drivers of the structured-code chapter: components for the learner's registry, and the learner's command line run as a user would."""

from __future__ import annotations


def fraudnet() -> str:
    return "a FraudNet"


def trees() -> str:
    return "boosted trees"


def register(registry, name: str, component) -> bool:
    """Decorate ``component`` with ``registry.register(name)``; whether the decorator gave it back unchanged."""
    return registry.register(name)(component) is component


def found(registry, name: str) -> str:
    """Call the component that ``registry.get(name)`` returns: what it answers says which one it was."""
    return registry.get(name)()


def parsed(parser, argv: list[str]) -> tuple[dict | None, int | None, str]:
    """``parser.parse_args(argv)``: (its values, with paths as text; None, the exit code, what it printed) if it exits."""
    import contextlib
    import io
    from pathlib import PurePath

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            values = vars(parser.parse_args(argv))
    except SystemExit as e:
        return None, e.code, printed.getvalue()
    return {k: str(v) if isinstance(v, PurePath) else v for k, v in values.items() if not callable(v)}, None, printed.getvalue()


def call_main(main, argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process, as ``python -m cardfraud`` would run it: (exit code, standard output, standard error)."""
    import contextlib
    import io
    import logging

    out, err = io.StringIO(), io.StringIO()
    # The handler that main's logging.basicConfig adds writes to this call's stderr: removed
    # after it, so that later logs do not land in a closed buffer (or in a notebook's cell).
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors and --help
            code = e.code
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)
    return code, out.getvalue(), err.getvalue()


def run_command(args: list[str], cwd: str, timeout: float = 50) -> tuple[int, str, str]:
    """``python -m cardfraud ARGS`` in a process of its own, in ``cwd``, as a user would type it.

    The package is the one under grading (the learner's export); its folder is put on the
    new process's PYTHONPATH. Returns (exit code, standard output, standard error).
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cardfraud

    root = str(Path(cardfraud.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run(
        [sys.executable, "-m", "cardfraud", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    last_line = done.stderr.strip().rpartition("\n")[2]
    if done.returncode != 0 and last_line.startswith("NotImplementedError"):
        # An untouched part stopped the program: the test is "not attempted", as in the worker itself.
        raise NotImplementedError("`python -m cardfraud` stopped at a part that is not written yet")
    return done.returncode, done.stdout, done.stderr
