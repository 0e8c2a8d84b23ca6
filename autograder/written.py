"""Written answers: the parts of a notebook that people grade, and the points they give.

A design cannot be graded by a test. Such a part is a Markdown cell that nbgrader knows
as a "manually graded answer" (its ``grade_id`` is the part's name), and the chapter's
hidden tests folder declares it in ``written_parts.toml``, so that a notebook from which
the cell was deleted still owes it::

    [design_document]
    notebook = "online_features"
    points = 4
    name = "A design document for account takeover, graded with the rubric"

The grader checks only that there is an answer to read: a written one is *pending*
(zero points, told apart from the automatic score), an empty one or the stub that the
release left in the cell is *not attempted*. The points come from people, in nbgrader's
formgrader; ``grade --gradebook`` reads them from nbgrader's database into the results.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from autograder.export import ExportError, read_notebook
from autograder.results import FAILED, NOT_ATTEMPTED, PASSED, PENDING, GradedTest, SubmissionResult

WRITTEN_PARTS = "written_parts.toml"  # in a chapter's folder of hidden tests
STUB = "YOUR ANSWER HERE"  # what nbgrader's release leaves in a written answer's cell
AWAITING = "written: awaiting grading by a person"
MAX_WORDS = 2_000  # far beyond any asked length: a cell this long was pasted, not written for the part


@dataclass(frozen=True)
class WrittenPart:
    part: str  # the answer cell's nbgrader grade_id
    notebook: str  # the exercise (notebook stem) that holds it
    points: float
    name: str  # what a person grades, for the results and the class report


def written_parts(chapter: str, hidden_dir: Path) -> list[WrittenPart]:
    """The written parts that ``<hidden_dir>/<chapter>/written_parts.toml`` declares (none without the file)."""
    path = Path(hidden_dir) / chapter / WRITTEN_PARTS
    if not path.is_file():
        return []
    try:
        declared = tomllib.loads(path.read_text())
        return [
            WrittenPart(part, str(spec["notebook"]), float(spec["points"]), str(spec["name"])) for part, spec in declared.items()
        ]
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(
            f"{path} is not a table of written parts (notebook, points, name for each): {type(e).__name__}: {e}"
        ) from None


def grade_written(notebook: Path | None, parts: list[WrittenPart]) -> list[GradedTest]:
    """One test per written part of the notebook: pending when an answer is there to grade, else not attempted."""
    problem, cells = "", {}
    if notebook is None:
        problem = "the notebook was not handed in"
    else:
        try:
            cells = {
                cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source
                for cell in read_notebook(notebook).cells
                if cell.cell_type == "markdown" and isinstance(cell.metadata.get("nbgrader"), dict)
            }
        except ExportError as e:
            problem = str(e)
    return [_verdict(part, problem, cells.get(part.part)) for part in parts]


def _verdict(part: WrittenPart, problem: str, answer: str | None) -> GradedTest:
    def test(status: str, output: str) -> GradedTest:
        return GradedTest(part.part, part.name, 0.0, part.points, status, output, notebook=part.notebook, manual=True)

    if problem:
        return test(NOT_ATTEMPTED, f"no written answer to grade: {problem}")
    if answer is None:
        return test(NOT_ATTEMPTED, "the cell for this written answer is missing from the notebook: was it deleted?")
    text = answer.strip()
    if not text or text == STUB:
        return test(NOT_ATTEMPTED, "not written yet: the cell still holds no answer")
    if len(text.split()) > MAX_WORDS:
        return test(FAILED, f"the answer runs to {len(text.split()):,} words, more than {MAX_WORDS:,}: it is not graded")
    return test(PENDING, AWAITING)


def gradebook_scores(gradebook: Path) -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """(student, assignment, notebook, part) -> (points, comment) for every answer a person has graded in nbgrader."""
    from nbgrader.api import Gradebook  # only for instructors who grade with nbgrader

    gradebook = Path(gradebook)
    if not gradebook.is_file():
        raise FileNotFoundError(f"{gradebook} does not exist: give nbgrader's gradebook.db (in the course's folder)")
    scores = {}
    with Gradebook(f"sqlite:///{gradebook.resolve()}") as book:
        for assignment in book.assignments:
            for submission in assignment.submissions:
                for notebook in submission.notebooks:
                    comments = {comment.name: comment.comment for comment in notebook.comments}
                    for grade in notebook.grades:
                        if grade.manual_score is not None:
                            key = (submission.student.id, assignment.name, notebook.name, grade.name)
                            scores[key] = (float(grade.manual_score), comments.get(grade.name) or "")
    return scores


def apply_scores(result: SubmissionResult, scores: dict[tuple[str, str, str, str], tuple[float, str]]) -> bool:
    """Give the written parts of ``result`` the points people gave them; True if anything changed."""
    changed = False
    for i, test in enumerate(result.tests):
        given = scores.get((result.student, result.assignment, test.notebook, test.part))
        if not test.manual or given is None or test.status == NOT_ATTEMPTED:
            continue
        points, comment = given
        points = min(max(points, 0.0), test.max_score)
        status = PASSED if points == test.max_score else FAILED
        output = f"graded by a person: {points:g} of {test.max_score:g}" + (f". {comment}" if comment else "")
        if (test.score, test.status, test.output) != (points, status, output):
            result.tests[i] = GradedTest(
                test.part, test.name, points, test.max_score, status, output, test.visible, test.notebook, manual=True
            )
            changed = True
    return changed
