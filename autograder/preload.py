"""What every graded notebook needs, imported once by the grading fork server.

Each notebook is graded in a process forked from a server that has already imported
these, so the libraries that hidden tests use (PyTorch, DuckDB, pandas, ...) are loaded
once per grading run instead of once per notebook: most of the grader's speed over a
kernel per notebook comes from here. Which libraries those are is read from the hidden
tests' own imports (those that ship with the package, and those of the run's
``--hidden-tests`` folder), so the grader knows nothing of any one course.
"""

import ast
import contextlib
import importlib
import os
from pathlib import Path

import pytest  # noqa: F401

import autograder.mutation  # noqa: F401
import autograder.pytest_plugin  # noqa: F401
import autograder.tables  # noqa: F401
from autograder.paths import HIDDEN_TESTS_VARIABLE, PACKAGED_HIDDEN_TESTS


def imported_modules(source: str) -> set[str]:
    """The absolute module names that a Python file imports, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _preload_hidden_tests_imports() -> None:
    folders = {PACKAGED_HIDDEN_TESTS, Path(os.environ.get(HIDDEN_TESTS_VARIABLE) or PACKAGED_HIDDEN_TESTS)}
    names = {name for folder in folders for path in folder.rglob("*.py") for name in imported_modules(path.read_text())}
    for name in sorted(names):
        # A module that fails here fails again, with a message, in the test that imports it.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


_preload_hidden_tests_imports()
