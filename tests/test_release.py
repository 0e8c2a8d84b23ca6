"""release: exercises/ is exactly what nbgrader generates from solutions/."""

import pytest

from autograder import release
from autograder.course import EXERCISES

pytestmark = pytest.mark.slow


def test_exercises_are_a_fresh_release():
    "Does exercises/ equal a fresh nbgrader release of solutions/ (python -m autograder release --check)?"
    assert release.stale_files() == []


def test_a_hand_edit_is_caught(tmp_path, monkeypatch):
    "Does --check name a released notebook that was edited by hand, and one that is missing?"
    copy = tmp_path / "exercises"
    release.generate(copy)
    edited = copy / "data_infrastructure" / "training_data.ipynb"
    edited.write_text(edited.read_text().replace("NotImplementedError", "NotImplementedErr"))
    (copy / "data_infrastructure" / "warehouse_queries.ipynb").unlink()
    monkeypatch.setattr(release, "EXERCISES", copy)
    stale = release.stale_files()
    assert "exercises/data_infrastructure/training_data.ipynb (differs)" in stale
    assert "exercises/data_infrastructure/warehouse_queries.ipynb (missing)" in stale
    assert EXERCISES.exists()
