"""Helpers for the book's lesson pages: code that more than one page runs, kept in one place.

A lesson page shows a reader what a tool prints, and the book build, which executes
every page, is one of the course's tests. So a helper here prints what the reader needs
to see *and* checks the outcome the page describes: when a run that the text says
fails starts passing, or the other way round, the build fails instead of publishing a
page that contradicts itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PytestRun:
    """What one pytest run ended with."""

    exit_code: int
    counts: dict[str, int]  # from pytest's last line, e.g. {"failed": 1, "passed": 3}


def run_pytest(
    project: str | Path, *args: str, expect: int = 0, env: Mapping[str, str | None] | None = None
) -> PytestRun:
    """Run ``python -m pytest ARGS`` in ``project``, print its report, and check its exit code.

    pytest runs in a fresh Python process, as it would from a terminal. ``expect`` is
    the exit code the page says the run ends with (0: every test passed; 1: some
    failed; 2: interrupted, e.g. by a collection error; see ``pytest.ExitCode``); any
    other code raises AssertionError. ``env`` sets variables for the run, and removes
    those mapped to None.
    """
    project = Path(project)
    environment = {
        **os.environ,
        # Plugins installed for other chapters (nbval, for notebooks) take seconds to
        # load, and the lessons' small projects need none of them.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        # Pages rewrite a file within the same second: stale bytecode must not hide the edit.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--color=no", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=environment,
    )
    report = (result.stdout + result.stderr).rstrip()
    # The project is a temporary folder: its random name would only distract the reader.
    print(report.replace(str(project), "demo"))
    print(f"\n(exit code {result.returncode})")
    if result.returncode != expect:
        raise AssertionError(
            f"pytest in {project} with arguments {list(args)} exited with code "
            f"{result.returncode}, but the page says it exits with {int(expect)}: "
            "the text no longer describes what pytest does"
        )
    last_line = result.stdout.rstrip().rsplit("\n", 1)[-1]
    counts = {
        outcome: int(n)
        for n, outcome in re.findall(
            r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed)", last_line
        )
    }
    return PytestRun(result.returncode, counts)


def write_files(root: str | Path, files: Mapping[str, str]) -> None:
    """Write a lesson's small project: each file's text, dedented, under ``root``."""
    for name, text in files.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def run_shell(
    line: str,
    cwd: str | Path,
    expect: int = 0,
    env: Mapping[str, str] | None = None,
    streams: bool = False,
    root: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``line`` with bash in ``cwd`` as a terminal would; show its output; check its exit code.

    ``python`` is the page's Python. The output is shown as a terminal shows it,
    interleaved, or with ``streams`` as standard output and standard error apart. With
    ``root`` (the page's temporary folder), the prompt shows ``cwd`` relative to it and
    the output shows the folder as ``demo``. Raises AssertionError unless the exit code
    is ``expect``: the page says how the command ends.
    """
    cwd = Path(cwd)
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        # Unbuffered, so that prints and log lines keep the order in which they happened.
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "COLUMNS": "90",  # argparse wraps its help to the terminal's width
        **(env or {}),
    }
    result = subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if streams else subprocess.STDOUT,
    )
    where = f"[{cwd.relative_to(root).as_posix()}]" if root else ""
    print(f"{where}$ {line}")
    shown = {"": result.stdout}
    if streams:
        shown = {"standard output:\n": result.stdout, "standard error:\n": result.stderr}
    for heading, text in shown.items():
        print(heading + (text.rstrip().replace(str(root), "demo") if root else text.rstrip()))
    print(f"(exit code {result.returncode})\n")
    if result.returncode != expect:
        raise AssertionError(
            f"`{line}` in {cwd} exited with {result.returncode}, but the page says {expect}"
        )
    return result
