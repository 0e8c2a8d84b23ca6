"""grade: full marks for the solutions, zero for the exercises, partial credit in between, no batch stopped."""

import csv
import json
import shutil

import pytest

from autograder import sandbox
from autograder.__main__ import main
from autograder.batch import grade_class
from autograder.grade import discover
from autograder.paths import SOLUTIONS, hidden_tests_dir
from autograder.results import NOT_ATTEMPTED, PENDING
from tests.helpers import CHAPTER, CHAPTERS, write


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda chapter: chapter.name)
def test_solutions_earn_full_marks(chapter, graded):
    "Does every graded part of every chapter earn full marks on the reference solution, its written answers pending?"
    result = graded["full", chapter.name]
    failing = [f"{t.notebook}:{t.part}: {t.name}: {t.output}" for t in result.tests if t.score < t.max_score and not t.manual]
    assert not failing, "\n".join(failing)
    assert result.automatic_score == result.automatic_max_score == result.score == chapter.full_points and not result.messages
    assert result.manual_max_score == chapter.written_points and all(t.status == PENDING for t in result.tests if t.manual)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda chapter: chapter.name)
def test_untouched_exercises_earn_zero(chapter, graded):
    "Does every graded part earn zero on the untouched exercise, each test (and written answer) saying it is not attempted?"
    result = graded["zero", chapter.name]
    assert result.score == 0 and result.max_score == chapter.full_points + chapter.written_points
    assert all(t.status == NOT_ATTEMPTED for t in result.tests)
    assert all(t.output == "not attempted yet" for t in result.tests if not t.manual)


@pytest.mark.slow
def test_class_gets_full_zero_and_partial_points(every_chapter_course, graded, tmp_path):
    "Does a submitted/ tree grade each student, with partial credit per part, and write JSON and CSV?"
    # Pointed at the results the session graded: nothing is graded twice.
    args = ["grade", str(every_chapter_course / "submitted"), "--out", str(every_chapter_course / "graded")]
    assert main([*args, "--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "c.csv")]) == 0
    payload = json.loads((tmp_path / "r.json").read_text())
    results = {(s["student"], s["assignment"]): s for s in payload["submissions"]}
    expected = {
        (student, chapter.name): points
        for chapter in CHAPTERS
        for student, points in (("full", chapter.full_points), ("zero", 0), ("partial", sum(chapter.partial_points.values())))
    }
    assert {key: result["score"] for key, result in results.items()} == expected
    assert all(results["full", c.name]["max_score"] == c.full_points + c.written_points for c in CHAPTERS)
    test = results["partial", CHAPTER]["tests"][0]
    assert set(test) == {"name", "score", "max_score", "output", "visibility", "status"}
    rows = list(csv.DictReader((tmp_path / "c.csv").read_text().splitlines()))
    assert {(r["student"], r["assignment"], float(r["score"])) for r in rows} == {
        (*key, points) for key, points in expected.items()
    }


@pytest.mark.slow
def test_one_broken_submission_does_not_stop_the_batch(every_chapter_course, graded, tmp_path):
    "Does a corrupt notebook get zero with a clear message while the others are graded normally?"
    submitted, out = tmp_path / "submitted", tmp_path / "graded"
    shutil.copytree(every_chapter_course / "submitted" / "full" / CHAPTER, submitted / "full" / CHAPTER)
    shutil.copytree(every_chapter_course / "submitted" / "zero" / CHAPTER, submitted / "zero" / CHAPTER)
    shutil.copytree(every_chapter_course / "graded", out)  # the full learner's results are reused, not graded again
    (submitted / "zero" / CHAPTER / "warehouse_queries.ipynb").write_text("{ this is not json")
    results = {r.student: r for r in grade_class(submitted, hidden_tests_dir(), out=out)}
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


def test_check_sandbox_lists_what_this_system_gives(capsys):
    "Does `grade --check-sandbox` list each protection with yes or no, the signing key's hiding place included?"
    assert main(["grade", "--check-sandbox"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(sandbox.protections()) and all(line[:3] in ("yes", "no ") for line in lines)
    assert any("signing key out of sight" in line for line in lines)


def test_require_sandbox_refuses_without_namespaces(tmp_path, monkeypatch, capsys):
    "Where the system forbids namespaces, does --require-sandbox refuse to grade, saying what is missing, and does a plain run warn?"
    monkeypatch.setattr(sandbox, "namespaces_available", lambda: False)
    monkeypatch.setattr(sandbox, "private_tmp_available", lambda: False)
    assert main(["grade", str(tmp_path), "--require-sandbox"]) == 2
    assert "does not give network, process and mount namespaces" in capsys.readouterr().err
    main(["grade", str(tmp_path)])
    assert "warning: this system does not give a private /tmp" in capsys.readouterr().err
