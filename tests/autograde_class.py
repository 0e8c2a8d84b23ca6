"""nbgrader's autograde of a class, as a process of its own: ``python -m tests.autograde_class COURSE CHAPTER...``.

The suite starts it in the background as soon as its tests are collected (tests/conftest.py):
it runs every chapter's solutions, which is the suite's longest step, while the other tests use
the machine's other core. It prints nbgrader's points as JSON lines, one per graded cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nbgrader.api import Gradebook

from tests.helpers import BY_NAME, nbgrader

STUDENTS = ("full", "zero", "partial")


def autograde(course: Path, chapters: list[str]) -> None:
    for name in chapters:
        nbgrader(course, "generate_assignment", name, "--force")
    # One assignment at a time, in the order given: the capstone's notebook finds a learner's
    # earlier chapters in autograded/ only once they are graded (how_to_use.md tells instructors).
    for name in chapters:
        nbgrader(course, "autograde", name, "--force")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for chapter in (BY_NAME[name] for name in chapters):
            for student in STUDENTS:
                for notebook in chapter.exercises:
                    for cell in gradebook.find_notebook(notebook, chapter.name).grade_cells:
                        score = gradebook.find_grade(cell.name, notebook, chapter.name, student).score
                        print(json.dumps([student, chapter.name, notebook, cell.name, score]))


if __name__ == "__main__":
    autograde(Path(sys.argv[1]), sys.argv[2:])
