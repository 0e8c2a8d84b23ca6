"""Where the course keeps things, in one place.

Hidden tests normally ship inside this package, like an answer key at the back of a
textbook. An instructor running a graded course keeps them elsewhere and points the
graders at them with ``--hidden-tests DIR`` or the ``AUTOGRADER_HIDDEN_TESTS``
environment variable (``nbgrader_config.py`` sets it for nbgrader).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = "cardfraud"  # the learner package that the exercises export into
ROOT = Path(__file__).resolve().parent.parent  # the course repository
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
GIVEN_CODE = [ROOT / "casestudy", ROOT / "booktools"]  # the course's own code, which learners call but did not write
HINTS = Path(__file__).resolve().parent / "hints"
HIDDEN_TESTS_VARIABLE = "AUTOGRADER_HIDDEN_TESTS"
PACKAGED_HIDDEN_TESTS = Path(__file__).resolve().parent / "hidden_tests"


def hidden_tests_dir(override: str | Path | None = None) -> Path:
    """The folder of hidden tests: the argument, else the environment, else the package's own."""
    chosen = override or os.environ.get(HIDDEN_TESTS_VARIABLE) or PACKAGED_HIDDEN_TESTS
    path = Path(chosen)
    if not path.is_dir():
        raise FileNotFoundError(f"hidden tests folder {path} does not exist (set by --hidden-tests or ${HIDDEN_TESTS_VARIABLE})")
    return path


def hidden_test_file(chapter: str, exercise: str, hidden_dir: Path) -> Path:
    """``<hidden tests>/<chapter>/test_<exercise>.py``: the same stem as the notebook."""
    return hidden_dir / chapter / f"test_{exercise}.py"


def exercises_of(chapter: str, hidden_dir: Path) -> list[str]:
    """The exercise notebooks (by stem) that a chapter's hidden tests expect."""
    return sorted(p.stem.removeprefix("test_") for p in (hidden_dir / chapter).glob("test_*.py"))
