"""Grade: submissions in, points per hidden test out; one bad submission never stops a batch.

A submission is one learner's work on one assignment (a chapter folder of notebooks).
PATH may be a single notebook, a learner's folder, or an nbgrader ``submitted/`` tree::

    exercises/data_infrastructure/warehouse_queries.ipynb    one notebook
    exercises/data_infrastructure/                           one learner, one chapter
    exercises/                                               one learner, every chapter
    submitted/<student>/<assignment>/<notebook>.ipynb        a class
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from autograder.export import ExportError, export_notebook
from autograder.paths import exercises_of, hidden_test_file
from autograder.pytest_plugin import shorten
from autograder.results import PASSED, GradedTest, SubmissionResult
from autograder.runner import planned_tests, run_in_subprocess
from autograder.sandbox import Limits
from autograder.uses import Used, substitution_message, used_by
from autograder.written import grade_written, written_parts

NOT_SUBMITTED = "was not submitted"  # after the notebook's name, in a submission's messages


@dataclass
class Submission:
    student: str
    assignment: str
    notebooks: dict[str, Path] = field(default_factory=dict)  # exercise name -> notebook
    whole_assignment: bool = True  # False when one notebook was asked for: grade only it


def discover(path: Path) -> list[Submission]:
    """Every (student, assignment) under ``path``, with its notebooks by exercise name."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".ipynb":
            raise ValueError(f"{path} is not a notebook (.ipynb)")
        notebooks = [path]
        base = path.parent
    elif path.is_dir():
        notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        base = path
    else:
        raise FileNotFoundError(f"{path} does not exist")
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (.ipynb) found under {path}")
    found: dict[tuple[str, str], Submission] = {}
    for notebook in notebooks:
        student, assignment = _owner(notebook, base, path.is_file())
        submission = found.setdefault((student, assignment), Submission(student, assignment, whole_assignment=path.is_dir()))
        submission.notebooks[notebook.stem] = notebook
    return list(found.values())


def _owner(notebook: Path, base: Path, single_file: bool) -> tuple[str, str]:
    """(student, assignment) from where a notebook sits: .../<student>/<assignment>/<notebook>."""
    if single_file:
        return notebook.parent.parent.name or "learner", notebook.parent.name
    parts = notebook.relative_to(base).parts
    if len(parts) == 1:
        return base.parent.name or "learner", base.name
    if len(parts) == 2:
        return base.name, parts[0]
    return "/".join(parts[:-2]), parts[-2]


def grade_submission(
    submission: Submission,
    hidden_dir: Path,
    limits: Limits = Limits(),
) -> SubmissionResult:
    """Grade every exercise of the submission's chapter; missing notebooks score zero."""
    result = SubmissionResult(submission.student, submission.assignment)
    expected = exercises_of(submission.assignment, hidden_dir)
    if not submission.whole_assignment:
        expected = [e for e in expected if e in submission.notebooks]
    if not expected:
        result.messages.append(
            f"no hidden tests for an assignment named {submission.assignment!r}: is this folder from this course?"
        )
    for exercise in sorted(set(submission.notebooks) - set(expected)):
        if expected:
            result.messages.append(f"{exercise}.ipynb is not an exercise of {submission.assignment}; it was not graded")
    written = written_parts(submission.assignment, hidden_dir)
    uses = {exercise: used_by(submission.assignment, exercise, hidden_dir) for exercise in expected}
    # Another chapter's notebook that these build on is graded on its own, before this
    # submission's clock starts: its time is not this submission's.
    elsewhere = {
        used: _failed_elsewhere(used, submission.notebooks[exercise], hidden_dir, limits)
        for exercise in expected
        if exercise in submission.notebooks
        for used in uses[exercise]
        if used.chapter != submission.assignment
    }
    deadline = time.monotonic() + limits.submission_seconds
    # A notebook that others build on is graded first: its verdicts decide whose code they import.
    for exercise in sorted(expected, key=lambda e: bool(uses[e])):
        notebook = submission.notebooks.get(exercise)
        test_file = hidden_test_file(submission.assignment, exercise, hidden_dir)
        started = time.monotonic()
        remaining = deadline - started
        if remaining > 0:
            notebook_limits = replace(limits, notebook_seconds=min(limits.notebook_seconds, remaining))
            dependencies = []
            for used in uses[exercise]:
                failed = elsewhere[used] if used in elsewhere else _failed_here(used, submission, result)
                if failed == []:
                    dependencies.append(
                        used.learner_copy(notebook.parent) if used in elsewhere else submission.notebooks[used.exercise]
                    )
                else:
                    dependencies.append(used.reference())
                    if notebook is not None:
                        result.references.append(str(used))
                        result.messages.append(substitution_message(exercise, used, failed))
            tests, problems = _grade_notebook(notebook, exercise, test_file, notebook_limits, dependencies)
            if notebook is not None and not uses[exercise] and notebook_limits == limits:
                _remember(notebook, test_file, limits, (tests, problems))
            if notebook is not None:
                result.seconds[exercise] = round(time.monotonic() - started, 2)
        else:
            why = f"not graded: the submission used up its time limit ({limits.submission_seconds:g} s for all its notebooks)"
            tests, problems = _not_run(test_file, exercise, why), [why]
        result.messages += [f"{exercise}: {problem}" for problem in problems]
        result.tests.extend(tests)
        # Read by the grader itself, not run: a written answer is text for a person.
        result.tests.extend(grade_written(notebook, [part for part in written if part.notebook == exercise]))
    return result


def _failed_here(used: Used, submission: Submission, result: SubmissionResult) -> list[str] | None:
    """The parts whose tests the learner's copy of ``used``, of this chapter, fails (graded already); None if not submitted."""
    if used.exercise not in submission.notebooks:
        return None
    return [t.part for t in result.tests if t.notebook == used.exercise and t.status != PASSED]


def _failed_elsewhere(used: Used, notebook: Path, hidden_dir: Path, limits: Limits) -> list[str] | None:
    """The parts whose tests the learner's copy of ``used``, of another chapter, fails; None if it is not there.

    The copy sits where the learner's folders put it: beside the chapter folder of
    ``notebook`` (``<student>/<chapter>/<exercise>.ipynb``). It is graded alone, or its
    verdicts are taken from this process's earlier grading of the same file.
    """
    learner_copy = used.learner_copy(notebook.parent)
    if not learner_copy.exists():
        return None
    test_file = hidden_test_file(used.chapter, used.exercise, hidden_dir)
    tests, _ = _remembered(learner_copy, test_file, limits) or _remember(
        learner_copy, test_file, limits, _grade_notebook(learner_copy, used.exercise, test_file, limits)
    )
    return [t.part for t in tests if t.status != PASSED]


# Verdicts of notebooks graded alone in this process, by file, content and limits: a class
# run grades a learner's data chapter once, for its own score and for the capstone's choice.
_graded: dict[tuple, tuple[list[GradedTest], list[str]]] = {}
_graded_lock = threading.Lock()


def _key(notebook: Path, test_file: Path, limits: Limits) -> tuple:
    return (str(notebook.resolve()), hashlib.sha256(notebook.read_bytes()).hexdigest(), str(test_file), limits)


def _remembered(notebook: Path, test_file: Path, limits: Limits) -> tuple[list[GradedTest], list[str]] | None:
    with _graded_lock:
        return _graded.get(_key(notebook, test_file, limits))


def _remember(notebook: Path, test_file: Path, limits: Limits, verdicts: tuple[list[GradedTest], list[str]]):
    with _graded_lock:
        _graded[_key(notebook, test_file, limits)] = verdicts
    return verdicts


def _grade_notebook(
    notebook: Path | None, exercise: str, test_file: Path, limits: Limits, dependencies: list[Path] = ()
) -> tuple[list[GradedTest], list[str]]:
    """The notebook's verdicts, and what went wrong with it as a whole (one message each).

    ``dependencies`` are the notebooks whose code it imports (the learner's or the
    reference, chosen by the caller): exported into its package first.
    """
    if notebook is None:
        why = f"{exercise}.ipynb {NOT_SUBMITTED}"
        return _not_run(test_file, exercise, why), [why]
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="autograder-export-") as package_root:
        try:
            for dependency in dependencies:
                export_notebook(dependency, package_root)
            exported = export_notebook(notebook, package_root, skipped=problems)
        except ExportError as e:
            return _not_run(test_file, exercise, str(e)), [*problems, str(e)]
        modules = [".".join(m.relative_to(package_root).with_suffix("").parts) for m in exported]
        tests, problem = run_in_subprocess(test_file, Path(package_root), modules, limits=limits)
    for test in tests:
        test.notebook = exercise
    return tests, [*problems, *filter(None, [problem])]


def _not_run(test_file: Path, exercise: str, why: str) -> list[GradedTest]:
    """Every planned test of a notebook that could not run, failed with the reason: no process is started for it."""
    return [replace(t, output=shorten(why), notebook=exercise) for t in planned_tests(test_file).values()]
