"""The nbgrader bridge: `nbgrader autograde` and `python -m autograder grade` give identical points."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.course import ROOT, hidden_tests_dir
from autograder.grade import grade
from tests.conftest import CHAPTER, PARTIAL_POINTS

pytestmark = pytest.mark.slow


def nbgrader(course, *args):
    # nbgrader runs `alembic` by name to set up its database: it must be on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"]
    done = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_autograde_and_grade_agree(class_of_three, tmp_path):
    "Do nbgrader's cell scores equal our grader's part scores for a full, a zero and a partial submission?"
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    shutil.copytree(class_of_three, course / "submitted")
    nbgrader(course, "generate_assignment", CHAPTER, "--force")
    nbgrader(course, "autograde", CHAPTER, "--force")

    ours = {r.student: r.part_scores() for r in grade(course / "submitted", hidden_tests_dir())}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        theirs = {
            student: {
                (notebook, cell): gradebook.find_grade(cell, notebook, CHAPTER, student).score for notebook, cell in ours[student]
            }
            for student in ("full", "zero", "partial")
        }
    assert theirs == ours
    assert ours["partial"] == PARTIAL_POINTS
    assert sum(ours["full"].values()) == 22 and sum(ours["zero"].values()) == 0
