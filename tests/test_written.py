"""Written answers that people grade: pending until they do, apart from the automatic points, and never lost."""

import pytest

from autograder.paths import hidden_tests_dir
from autograder.results import FAILED, NOT_ATTEMPTED, PASSED, PENDING, SubmissionResult, format_table
from autograder.written import MAX_WORDS, WRITTEN_PARTS, apply_scores, grade_written, written_parts
from tests.helpers import answer_cell, released, solution, write

CHAPTER = "system_design"

DESIGN = written_parts(CHAPTER, hidden_tests_dir())


def verdict(tmp_path, nb) -> tuple[str, str]:
    (test,) = grade_written(write(nb, tmp_path / "online_features.ipynb"), DESIGN)
    assert test.manual and test.score == 0 and test.part == "design_document"
    return test.status, test.output


def test_the_chapter_declares_its_design_document():
    "Does the system-design chapter declare one written part of 4 points in the online-features notebook?"
    assert [(p.part, p.notebook, p.points) for p in DESIGN] == [("design_document", "online_features", 4.0)]


def test_a_written_answer_waits_for_a_person_and_the_stub_is_not_attempted(tmp_path):
    "Is the reference's answer pending, and the released stub, an emptied cell or no notebook not attempted?"
    assert verdict(tmp_path, solution("online_features", CHAPTER))[0] == PENDING
    assert verdict(tmp_path, released("online_features", CHAPTER)) == (
        NOT_ATTEMPTED,
        "not written yet: the cell still holds no answer",
    )
    emptied = released("online_features", CHAPTER)
    answer_cell(emptied, "design_document").source = "  \n"
    assert verdict(tmp_path, emptied)[0] == NOT_ATTEMPTED
    (missing,) = grade_written(None, DESIGN)
    assert missing.status == NOT_ATTEMPTED and "not handed in" in missing.output


def test_a_deleted_cell_a_broken_notebook_and_a_pasted_book_are_named(tmp_path):
    "Does a deleted answer cell, a notebook that is not JSON, or an answer far too long get a verdict that says why?"
    deleted = solution("online_features", CHAPTER)
    deleted.cells = [c for c in deleted.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "design_document"]
    assert verdict(tmp_path, deleted) == (
        NOT_ATTEMPTED,
        "the cell for this written answer is missing from the notebook: was it deleted?",
    )
    broken = tmp_path / "broken" / "online_features.ipynb"
    broken.parent.mkdir()
    broken.write_text("{ not json")
    (test,) = grade_written(broken, DESIGN)
    assert test.status == NOT_ATTEMPTED and "not valid notebook JSON" in test.output
    pasted = solution("online_features", CHAPTER)
    answer_cell(pasted, "design_document").source = "word " * (MAX_WORDS + 1)
    assert verdict(tmp_path, pasted)[0] == FAILED


def test_a_damaged_declaration_is_refused_with_its_path(tmp_path):
    "Does a written_parts.toml without points say which file is wrong, and a chapter without one owe nothing?"
    (tmp_path / "chapter").mkdir()
    assert written_parts("chapter", tmp_path) == []
    (tmp_path / "chapter" / WRITTEN_PARTS).write_text('[essay]\nnotebook = "n"\nname = "An essay"\n')
    with pytest.raises(ValueError, match=WRITTEN_PARTS):
        written_parts("chapter", tmp_path)


def test_a_persons_points_replace_pending_and_are_kept_apart(tmp_path):
    "Do a person's points (capped at the part's) and comment replace pending, counted as manual points, not automatic?"
    result = SubmissionResult(
        "ada",
        CHAPTER,
        grade_written(write(solution("online_features", CHAPTER), tmp_path / "online_features.ipynb"), DESIGN),
    )
    assert "1 written answer(s) worth 4 points await grading by a person" in format_table([result])
    key = ("ada", CHAPTER, "online_features", "design_document")
    assert apply_scores(result, {key: (3.0, "The feedback loop is missing.")})
    (test,) = result.tests
    assert (test.score, test.status, test.output) == (3.0, FAILED, "graded by a person: 3 of 4. The feedback loop is missing.")
    assert (result.manual_score, result.automatic_score, result.score, result.pending) == (3.0, 0.0, 3.0, [])
    assert not apply_scores(result, {key: (3.0, "The feedback loop is missing.")}), "nothing changed: nothing to rewrite"
    assert apply_scores(result, {key: (9.0, "")}) and result.tests[0].score == 4.0 and result.tests[0].status == PASSED
    untouched = SubmissionResult("bo", CHAPTER, grade_written(None, DESIGN))
    assert not apply_scores(untouched, {("bo", *key[1:]): (4.0, "")}), "no answer: no points, whatever the gradebook says"
