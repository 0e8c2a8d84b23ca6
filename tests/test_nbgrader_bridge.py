"""The nbgrader bridge: `nbgrader autograde` and `python -m autograder grade` give identical points.

Both graders grade one class (every chapter's full, untouched and partial learners,
built by ``tests/helpers.py``) once per session; each chapter is then compared here.
"""

import csv
import json
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder.__main__ import main
from autograder.paths import SOLUTIONS
from tests.helpers import BY_NAME, CHAPTERS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda chapter: chapter.name)
def test_autograde_and_grade_agree(chapter, graded, nbgrader_points):
    "Do nbgrader's cell scores equal our grader's part scores for a full, a zero and a partial submission?"
    for student in ("full", "zero", "partial"):
        assert nbgrader_points[student, chapter.name] == graded[student, chapter.name].part_scores(), student
    assert graded["partial", chapter.name].part_scores() == chapter.partial_points
    assert graded["full", chapter.name].score == chapter.full_points
    assert graded["zero", chapter.name].score == 0


def test_points_people_give_in_nbgrader_reach_the_results_and_the_class_sheet(
    every_chapter_course, graded, nbgrader_courses, tmp_path
):
    "Given nbgrader's gradebook with a person's points for a design document, do results.json and the CSV hold them?"
    design = BY_NAME["system_design"]
    gradebook, out, sheet = tmp_path / "gradebook.db", tmp_path / "graded", tmp_path / "grades.csv"
    shutil.copy(nbgrader_courses[design.name] / "gradebook.db", gradebook)  # autograded once, at collection
    shutil.copytree(every_chapter_course / "graded", out)  # reused: nothing is graded again
    with Gradebook(f"sqlite:///{gradebook}") as book:
        grade = book.find_grade("design_document", "online_features", design.name, "full")
        grade.manual_score = 3.0
        book.find_comment("design_document", "online_features", design.name, "full").manual_comment = "No feedback loop."
        book.db.commit()
    learner = every_chapter_course / "submitted" / "full" / design.name
    args = ["grade", str(learner), "--out", str(out), "--gradebook", str(gradebook), "--csv", str(sheet)]
    assert main(args) == 0

    stored = json.loads((out / "full" / design.name / "results.json").read_text())
    (test,) = [t for t in stored["extra_data"]["tests"] if t["manual"]]
    assert (test["score"], test["output"]) == (3.0, "graded by a person: 3 of 4. No feedback loop.")
    (row,) = csv.DictReader(sheet.read_text().splitlines())
    automatic = design.full_points
    assert {k: float(row[k]) for k in ("score", "automatic_score", "manual_score", "manual_max_score", "manual_pending")} == {
        "score": automatic + 3,
        "automatic_score": automatic,
        "manual_score": 3.0,
        "manual_max_score": design.written_points,
        "manual_pending": 0.0,
    }


def test_every_solution_runs_top_to_bottom_under_nbgrader(nbgrader_courses):
    "Did every cell of every reference solution run without an error when nbgrader autograded the full learner?"
    # The full learner hands in the solutions, and nbgrader runs every cell of them: the
    # check that `pytest --nbval-lax solutions/` makes, without running them a second time.
    autograded = {path.relative_to(course / "autograded" / "full"): path for course in set(nbgrader_courses.values())
                  for path in (course / "autograded" / "full").rglob("*.ipynb")}  # fmt: skip
    assert sorted(autograded) == sorted(p.relative_to(SOLUTIONS) for p in SOLUTIONS.glob("*/*.ipynb"))
    for name, path in sorted(autograded.items()):
        cells = nbformat.read(path, as_version=4).cells
        assert any(cell.get("outputs") for cell in cells), f"{name} was not run"
        for index, cell in enumerate(cells):
            for output in cell.get("outputs", []):
                assert output.output_type != "error", f"{name}, cell {index}: {output.ename}: {output.evalue}"
