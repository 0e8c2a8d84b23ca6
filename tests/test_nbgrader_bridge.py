"""The nbgrader bridge: `nbgrader autograde` and `python -m autograder grade` give identical points.

Both graders grade one class (every chapter's full, untouched and partial learners,
built by ``tests/helpers.py``) once per session; each chapter is then compared here.
"""

import pytest

from tests.helpers import CHAPTERS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda chapter: chapter.name)
def test_autograde_and_grade_agree(chapter, graded, nbgrader_points):
    "Do nbgrader's cell scores equal our grader's part scores for a full, a zero and a partial submission?"
    for student in ("full", "zero", "partial"):
        assert nbgrader_points[student, chapter.name] == graded[student, chapter.name].part_scores(), student
    assert graded["partial", chapter.name].part_scores() == chapter.partial_points
    assert graded["full", chapter.name].score == chapter.full_points
    assert graded["zero", chapter.name].score == 0
