"""Grading a class: `python -m autograder grade --workers 2` vs `nbgrader autograde`, same points.

Builds a class of ``--students`` submissions of the data-infrastructure chapter (two
notebooks each), of mixed quality as a real class hands them in:

- full: the reference solution;
- untouched: the released exercise;
- partial: some parts answered, some of them with a typical mistake;
- broken: a notebook that is not valid JSON, or whose answer has a syntax error;
- looping: a part whose function never returns.

Both graders get the same time limit (``--timeout`` seconds per cell for nbgrader, per
test for ours). The script checks that every learner gets the same points for every
part from both, then reports the wall time of each and their ratio, measured in one run.

    .venv/bin/python benchmarks/grading.py                  # 60 learners: about 30 minutes, mostly nbgrader
    .venv/bin/python benchmarks/grading.py --students 12    # a quick look
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from common import machine
from nbgrader.api import Gradebook

from autograder.batch import grade_class
from autograder.paths import EXERCISES, ROOT, SOLUTIONS, hidden_tests_dir
from autograder.sandbox import Limits
from booktools.timing import Timing, ratio

CHAPTER = "data_infrastructure"
NOTEBOOKS = ("warehouse_queries", "training_data")
# (notebook, answer cell, text in the reference answer, replacement): mistakes learners make.
MISTAKES = [
    ("warehouse_queries", "transaction_features_answer", "INTERVAL 1 MICROSECOND PRECEDING", "CURRENT ROW"),
    ("warehouse_queries", "open_warehouse_answer", "if not (root", "if False and not (root"),
    ("training_data", "shuffled_answer", "rng.shuffle(buffer)", "buffer.reverse()"),
]
LOOP = ("training_data", "shuffled_answer", "rng = random.Random(seed)", "while True:\n        pass")


def answers(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def learner_notebook(kind: str, notebook: str, rng: random.Random) -> bytes:
    """One notebook of a learner of the given kind."""
    reference = nbformat.read(SOLUTIONS / CHAPTER / f"{notebook}.ipynb", as_version=4)
    released = nbformat.read(EXERCISES / CHAPTER / f"{notebook}.ipynb", as_version=4)
    if kind == "full":
        return nbformat.writes(reference).encode()
    if kind == "untouched":
        return nbformat.writes(released).encode()
    if kind == "broken":
        if rng.random() < 0.5:
            return b'{"cells": [ this is not json'
        cell = next(iter(answers(reference).values()))
        cell.source = cell.source.replace("### BEGIN SOLUTION", "### BEGIN SOLUTION\n    return (")
        return nbformat.writes(reference).encode()
    learned = answers(released)
    for grade_id, cell in answers(reference).items():
        if kind == "looping" or rng.random() < 0.6:
            learned[grade_id].source = cell.source
    for mistake_notebook, grade_id, find, replace in [*MISTAKES, *([LOOP] if kind == "looping" else [])]:
        if mistake_notebook == notebook and (kind == "looping" or rng.random() < 0.5):
            learned[grade_id].source = learned[grade_id].source.replace(find, replace)
    return nbformat.writes(released).encode()


def build_class(submitted: Path, students: int, seed: int) -> None:
    rng = random.Random(seed)
    kinds = ["full", "untouched", "partial", "partial", "broken", "looping"]
    for index in range(students):
        kind = "looping" if index % 10 == 9 else kinds[index % 5]
        for notebook in NOTEBOOKS:
            path = submitted / f"{kind}-{index:03d}" / CHAPTER / f"{notebook}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(learner_notebook(kind, notebook, rng))


def nbgrader_points(course: Path, timeout: int) -> dict[str, dict[tuple[str, str], float]]:
    """Run nbgrader autograde over the class; points per learner and (notebook, part)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*nbgrader, "generate_assignment", CHAPTER, "--force", "--log-level=ERROR"], cwd=course, env=env, check=True)
    # It exits non-zero when some submission could not be graded (the broken ones): expected here.
    autograde = ["autograde", CHAPTER, "--force", f"--ExecutePreprocessor.timeout={timeout}", "--log-level=CRITICAL"]
    subprocess.run([*nbgrader, *autograde], cwd=course, env=env, capture_output=True)
    points: dict[str, dict[tuple[str, str], float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in sorted(p.name for p in (course / "submitted").iterdir()):
            points[student] = {}
            for notebook in NOTEBOOKS:
                for cell in gradebook.find_notebook(notebook, CHAPTER).grade_cells:
                    try:
                        score = gradebook.find_grade(cell.name, notebook, CHAPTER, student).score
                    except Exception:  # nbgrader records nothing for a notebook it could not run
                        score = 0.0
                    points[student][(notebook, cell.name)] = round(score, 6)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per cell (nbgrader) and per test (ours)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine())

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(SOLUTIONS, course / "solutions")
        build_class(course / "submitted", args.students, args.seed)
        print(f"a class of {args.students} learners, {args.students * len(NOTEBOOKS)} notebooks")

        start = time.perf_counter()
        limits = Limits(test_seconds=args.timeout)
        ours = {
            r.student: r.part_scores()
            for r in grade_class(course / "submitted", hidden_tests_dir(), limits, workers=args.workers)
        }
        ours_time = Timing(f"autograder grade --workers {args.workers}", time.perf_counter() - start, args.students)
        print(f"{ours_time.label}: {ours_time.seconds:.1f} s")

        start = time.perf_counter()
        theirs = nbgrader_points(course, args.timeout)
        theirs_time = Timing("nbgrader autograde", time.perf_counter() - start, args.students)
        print(f"{theirs_time.label}: {theirs_time.seconds:.1f} s")

    differences = [
        f"{student} {part}: ours {ours[student].get(part, 0.0)}, nbgrader {theirs[student].get(part, 0.0)}"
        for student in sorted(theirs)
        for part in sorted(set(theirs[student]) | set(ours.get(student, {})))
        if abs(ours.get(student, {}).get(part, 0.0) - theirs[student].get(part, 0.0)) > 1e-6
    ]
    if differences:
        print("POINTS DIFFER:\n" + "\n".join(differences))
        sys.exit(1)
    total = sum(sum(parts.values()) for parts in ours.values())
    print(f"points agree for every learner and part ({total:g} points in all)")
    print(f"{ours_time.per_second * 60:.1f} vs {theirs_time.per_second * 60:.1f} learners per minute")
    print(f"ours is {ratio(ours_time, theirs_time):.1f}x faster than nbgrader autograde")


if __name__ == "__main__":
    main()
