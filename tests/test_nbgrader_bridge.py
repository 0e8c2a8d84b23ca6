"""The nbgrader bridge: `nbgrader autograde` and `python -m autograder grade` give identical points."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.batch import grade_class
from autograder.course import ROOT, hidden_tests_dir
from tests.conftest import (
    CHAPTER,
    GPU_CHAPTER,
    GPU_PARTIAL_POINTS,
    PARTIAL_POINTS,
    SERVING_CHAPTER,
    SERVING_PARTIAL_POINTS,
    TESTING_CHAPTER,
    TESTING_PARTIAL_POINTS,
)

pytestmark = pytest.mark.slow


def nbgrader(course, *args):
    # nbgrader runs `alembic` by name to set up its database: it must be on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"]
    done = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def autograde(course_root, submitted, chapter):
    """nbgrader's and our points per (notebook, part), for every student of a chapter's class."""
    course = course_root / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copytree(submitted, course / "submitted")
    nbgrader(course, "generate_assignment", chapter, "--force")
    nbgrader(course, "autograde", chapter, "--force")

    ours = {r.student: r.part_scores() for r in grade_class(course / "submitted", hidden_tests_dir())}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        theirs = {
            student: {(notebook, cell): gradebook.find_grade(cell, notebook, chapter, student).score for notebook, cell in parts}
            for student, parts in ours.items()
        }
    return theirs, ours


def test_autograde_and_grade_agree(class_of_three, tmp_path):
    "Do nbgrader's cell scores equal our grader's part scores for a full, a zero and a partial submission?"
    theirs, ours = autograde(tmp_path, class_of_three, CHAPTER)
    assert theirs == ours
    assert ours["partial"] == PARTIAL_POINTS
    assert sum(ours["full"].values()) == 22 and sum(ours["zero"].values()) == 0


def test_autograde_and_grade_agree_on_mutation_points(testing_class, tmp_path):
    "Do nbgrader and our grader give the same points to learners' own tests, graded by the bugs they catch?"
    theirs, ours = autograde(tmp_path, testing_class, TESTING_CHAPTER)
    assert theirs == ours
    assert ours["partial"] == TESTING_PARTIAL_POINTS
    assert sum(ours["full"].values()) == 24 and sum(ours["zero"].values()) == 0


def test_autograde_and_grade_agree_on_training_code(gpu_class, tmp_path):
    "Do nbgrader and our grader agree on the GPU chapter, where tests run training steps and time them?"
    theirs, ours = autograde(tmp_path, gpu_class, GPU_CHAPTER)
    assert theirs == ours
    assert ours["partial"] == GPU_PARTIAL_POINTS
    assert sum(ours["full"].values()) == 22 and sum(ours["zero"].values()) == 0


def test_autograde_and_grade_agree_on_services(serving_class, tmp_path):
    "Do nbgrader and our grader agree on the serving chapter, where tests start servers and time requests?"
    theirs, ours = autograde(tmp_path, serving_class, SERVING_CHAPTER)
    assert theirs == ours
    assert ours["partial"] == SERVING_PARTIAL_POINTS
    assert sum(ours["full"].values()) == 30 and sum(ours["zero"].values()) == 0
