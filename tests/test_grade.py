"""grade: full marks for the solutions, zero for the exercises, partial credit in between, no batch stopped."""

import csv
import json
import shutil

import pytest

from autograder.__main__ import main
from autograder.batch import grade_class
from autograder.course import EXERCISES, SOLUTIONS, hidden_tests_dir
from autograder.grade import discover
from tests.conftest import CHAPTER, PARTIAL_POINTS, write

pytestmark = pytest.mark.slow


def test_solutions_earn_full_marks():
    "Does every graded part of every chapter earn full marks on the reference solution?"
    for result in grade_class(SOLUTIONS, hidden_tests_dir()):
        failing = [f"{t.notebook}:{t.part}: {t.name}: {t.output}" for t in result.tests if t.score < t.max_score]
        assert not failing, "\n".join(failing)
        assert result.max_score > 0 and not result.messages


def test_untouched_exercises_earn_zero():
    "Does every graded part earn zero on the untouched exercise, each test saying it is not attempted?"
    for result in grade_class(EXERCISES, hidden_tests_dir()):
        assert result.score == 0 and result.max_score > 0
        assert all(t.output == "not attempted yet" for t in result.tests)


def test_class_gets_full_zero_and_partial_points(class_of_three, tmp_path):
    "Does a submitted/ tree grade each student, with partial credit per part, and write JSON and CSV?"
    code = main(["grade", str(class_of_three), "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "c.csv")])
    assert code == 0
    payload = json.loads((tmp_path / "r.json").read_text())
    results = {s["student"]: s for s in payload["submissions"]}
    assert set(results) == {"full", "zero", "partial"}
    assert results["full"]["score"] == results["full"]["max_score"] == 22
    assert results["zero"]["score"] == 0
    assert results["partial"]["score"] == sum(PARTIAL_POINTS.values())
    test = results["partial"]["tests"][0]
    assert set(test) == {"name", "score", "max_score", "output", "visibility", "status"}
    rows = list(csv.DictReader((tmp_path / "c.csv").read_text().splitlines()))
    assert {(r["student"], float(r["score"])) for r in rows} == {("full", 22), ("zero", 0), ("partial", 6)}


def test_one_broken_submission_does_not_stop_the_batch(class_of_three):
    "Does a corrupt notebook get zero with a clear message while the others are graded normally?"
    (class_of_three / "zero" / CHAPTER / "warehouse_queries.ipynb").write_text("{ this is not json")
    results = {r.student: r for r in grade_class(class_of_three, hidden_tests_dir())}
    assert results["full"].score == 22
    broken = [t for t in results["zero"].tests if t.notebook == "warehouse_queries"]
    assert broken and all("not valid notebook JSON" in t.output for t in broken)
    assert any("not valid notebook JSON" in m for m in results["zero"].messages)


def test_missing_notebook_scores_zero_with_reason(tmp_path):
    "Is a notebook that was not handed in listed with zero points and the reason?"
    folder = tmp_path / "alice" / CHAPTER
    folder.mkdir(parents=True)
    shutil.copy(SOLUTIONS / CHAPTER / "training_data.ipynb", folder)
    (result,) = grade_class(tmp_path / "alice", hidden_tests_dir())
    missing = [t for t in result.tests if t.notebook == "warehouse_queries"]
    assert len(missing) == 12 and all(t.score == 0 and "was not submitted" in t.output for t in missing)
    assert result.score == 10


def test_single_notebook_writes_gradescope_json(tmp_path):
    "Does grading one notebook write Gradescope's results.json (score, max_score, tests)?"
    target = tmp_path / CHAPTER / "training_data.ipynb"
    target.parent.mkdir()
    shutil.copy(SOLUTIONS / CHAPTER / "training_data.ipynb", target)
    assert main(["grade", str(target), "--json", str(tmp_path / "results.json")]) == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["score"] == payload["max_score"] == 10
    assert {t["visibility"] for t in payload["tests"]} == {"visible", "after_published"}


def test_discovery_names_students_and_assignments(tmp_path):
    "Are students and assignments read from <student>/<assignment>/<notebook>.ipynb?"
    for student in ("ann", "bob"):
        write(__import__("nbformat").v4.new_notebook(), tmp_path / "submitted" / student / CHAPTER / "x.ipynb")
    found = {(s.student, s.assignment) for s in discover(tmp_path / "submitted")}
    assert found == {("ann", CHAPTER), ("bob", CHAPTER)}


def test_unknown_assignment_is_reported(tmp_path):
    "Is a folder that is not an assignment of this course reported rather than silently scored?"
    write(__import__("nbformat").v4.new_notebook(), tmp_path / "me" / "poetry" / "sonnet.ipynb")
    (result,) = grade_class(tmp_path / "me", hidden_tests_dir())
    assert result.max_score == 0 and "no hidden tests" in result.messages[0]
