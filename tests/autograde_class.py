"""nbgrader's autograde of a class, as a process of its own: ``python -m tests.autograde_class COURSE``.

The suite starts it in the background as soon as its tests are collected (tests/conftest.py):
it runs every chapter's solutions, which is the suite's longest step, while the other tests use
the machine's other core. It prints nbgrader's points as JSON lines, one per graded cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from tests.helpers import CHAPTERS, nbgrader

STUDENTS = ("full", "zero", "partial")


def autograde(course: Path) -> None:
    for chapter in CHAPTERS:
        nbgrader(course, "generate_assignment", chapter.name, "--force")
    nbgrader(course, "autograde", "*", "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for chapter in CHAPTERS:
            for student in STUDENTS:
                for notebook in chapter.exercises:
                    for cell in gradebook.find_notebook(notebook, chapter.name).grade_cells:
                        score = gradebook.find_grade(cell.name, notebook, chapter.name, student).score
                        print(json.dumps([student, chapter.name, notebook, cell.name, score]))


if __name__ == "__main__":
    autograde(Path(sys.argv[1]))
