"""Inside an exercise notebook: self-checks, hints, and the nbgrader bridge.

The first code cell of every exercise notebook names its exercise::

    from autograder.notebook import Exercise
    exercise = Exercise("data_infrastructure/warehouse_queries")

then each graded part's test cell calls ``exercise.check("part")``, which runs the
part's *visible* tests against the functions the notebook has defined. In the
instructor's source the same cell also calls ``exercise.score("part")`` inside its
hidden-tests region: that runs every test of the part and ends the cell with the
points earned, which nbgrader reads as the cell's partial credit.

A notebook that builds on the learner's earlier notebooks calls
``exercise.use_modules()`` in its first cell: it exports them into the learner package,
or the course's reference where one fails its tests (see uses.py).
"""

from __future__ import annotations

import importlib
import os
import sys
import tomllib
from collections import Counter
from pathlib import Path

from autograder.export import export_notebook
from autograder.paths import HINTS, PACKAGE, hidden_test_file, hidden_tests_dir
from autograder.pytest_plugin import LearnerCode
from autograder.results import NOT_ATTEMPTED, PASSED, GradedTest
from autograder.runner import run_in_process
from autograder.uses import failing_tests_in_process, package_root, used_by, why_reference
from autograder.visible import graded_parts


class Exercise:
    """One exercise notebook's self-checks, hints and scores."""

    def __init__(self, name: str):
        chapter, _, exercise = name.partition("/")
        if not chapter or not exercise:
            raise ValueError(
                f"name the exercise as 'chapter/notebook', e.g. 'data_infrastructure/warehouse_queries', not {name!r}"
            )
        self.chapter, self.exercise = chapter, exercise
        self._hints_given: Counter[str] = Counter()

    def check(self, part: str) -> None:
        """Run the part's visible tests against this notebook's code and say how it went."""
        namespace = sys._getframe(1).f_globals
        verdicts = self._run(part, namespace, visible_only=True)
        if verdicts is not None:
            print(self._check_report(part, verdicts))

    def use_modules(self) -> None:
        """Export the notebooks this one builds on into the learner package, and import it from there.

        Each is your own when it passes every test of it that this installation has, else
        the course's reference, so that a mistake there is not paid for again here. The
        package is importable in this kernel and in what it starts (``!python -m cardfraud``).
        """
        root = package_root(Path.cwd())
        for used in used_by(self.chapter, self.exercise, hidden_tests_dir()):
            mine = used.learner_copy(Path.cwd())
            missing = f"is not in {mine.parent}"
            failed = failing_tests_in_process(mine, used, hidden_test_file(used.chapter, used.exercise, hidden_tests_dir()))
            if failed == []:
                export_notebook(mine, root)
                print(f"{used.module(mine)}: your {mine.name}, exported into {root / PACKAGE}")
            elif used.reference().exists():
                export_notebook(used.reference(), root)
                print(
                    f"{used.module()}: the course's reference, because {why_reference(used, failed, missing)}; "
                    f"finish it and run this cell again to use your own"
                )
            else:  # an installed course (Colab) has no reference solutions
                print(
                    f"This notebook imports the code of {used}.ipynb, but {why_reference(used, failed, missing)}, and this "
                    f"installation has no reference to use instead: put your finished {used.exercise}.ipynb in "
                    f"{mine.parent} and run this cell again"
                )
        self._import_package_from(root)

    @staticmethod
    def _import_package_from(root: Path) -> None:
        """Import the learner package from ``root`` here, and in the processes this kernel starts."""
        sys.path[:] = [str(root), *(p for p in sys.path if p != str(root))]
        paths = [str(root), *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(root))]
        os.environ["PYTHONPATH"] = os.pathsep.join(paths)
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]  # a module exported again since it was imported
        importlib.invalidate_caches()

    def score(self, part: str) -> float:
        """Points earned on every test of the part (for nbgrader's partial credit)."""
        namespace = sys._getframe(1).f_globals
        # Tests that run the notebook's code as a program (`python -m cardfraud`) need it on
        # disk: nbgrader runs the submitted file, so that file is what they must find.
        notebook, root = Path.cwd() / f"{self.exercise}.ipynb", package_root(Path.cwd())
        if used_by(self.chapter, self.exercise, hidden_tests_dir()) and notebook.exists():
            export_notebook(notebook, root)
            self._import_package_from(root)
        verdicts = self._run(part, namespace, visible_only=False) or []
        points = round(sum(v.score for v in verdicts), 6)
        print(f"{part}: {points:g} of {sum(v.max_score for v in verdicts):g} points")
        return points

    def hint(self, part: str) -> None:
        """Print the part's next hint; each call reveals one more."""
        hints = self._hints().get(part)
        if hints is None:
            print(f"There is no part named {part!r} here. Parts with hints: {', '.join(self._hints()) or 'none'}.")
            return
        given = self._hints_given[part]
        if given >= len(hints):
            print(f"That was the last hint for `{part}`. All of them again:")
            for number, text in enumerate(hints, 1):
                print(f"  {number}. {text}")
            return
        self._hints_given[part] += 1
        print(f"Hint {given + 1} of {len(hints)} for `{part}`: {hints[given]}")

    def _run(self, part: str, namespace: dict, visible_only: bool) -> list[GradedTest] | None:
        try:
            test_file = hidden_test_file(self.chapter, self.exercise, hidden_tests_dir())
        except FileNotFoundError as e:
            print(f"The self-check needs the course's tests, which are not installed here: {e}")
            return None
        if not test_file.exists():
            print(f"No tests found for {self.chapter}/{self.exercise} (looked for {test_file}).")
            return None
        # Read from the file, not run: a misspelt name is answered at once, with the right ones.
        parts = graded_parts(test_file.read_text())
        if part not in parts:
            print(f"There is no part named {part!r} in {self.chapter}/{self.exercise}; its parts are {', '.join(parts)}.")
            return None
        return run_in_process(test_file, LearnerCode(namespace, "this notebook"), part=part, visible_only=visible_only)

    def _check_report(self, part: str, verdicts: list[GradedTest]) -> str:
        if all(v.status == NOT_ATTEMPTED for v in verdicts):
            return (
                f"`{part}` is not attempted yet: replace `raise NotImplementedError()` in its cell with your code, "
                "run that cell, then run this one again."
            )
        lines = [f"Self-check of `{part}` ({len(verdicts)} visible test{'s' if len(verdicts) > 1 else ''}):"]
        for v in verdicts:
            lines.append(f"  {'✓' if v.status == PASSED else '✗'} {v.name}")
            if v.status != PASSED:
                lines.append(f"      {v.output}")
        passed = sum(v.status == PASSED for v in verdicts)
        if passed == len(verdicts):
            lines.append("The visible tests pass. Hidden tests check more cases when your work is graded.")
        else:
            lines.append(
                f"{len(verdicts) - passed} of {len(verdicts)} visible tests fail. Fix the first one above and run "
                f'the cells again. Stuck? exercise.hint("{part}") gives a hint.'
            )
        return "\n".join(lines)

    def _hints(self) -> dict[str, list[str]]:
        path = HINTS / self.chapter / f"{self.exercise}.toml"
        if not path.exists():
            return {}
        with path.open("rb") as f:
            return {part: table["hints"] for part, table in tomllib.load(f).items()}
