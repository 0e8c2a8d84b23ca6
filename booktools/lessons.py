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
