"""The course's integrity: notebooks, hidden tests and hints agree with one another."""

import ast
import re
from collections import defaultdict

import nbformat
import pytest

from autograder.notebook import Exercise
from autograder.paths import EXERCISES, HINTS, SOLUTIONS, exercises_of, hidden_test_file, hidden_tests_dir
from autograder.uses import used_by
from autograder.written import written_parts
from tests.helpers import CHAPTERS, hidden_test_points

SOLUTION_NOTEBOOKS = sorted(SOLUTIONS.glob("*/*.ipynb"))
HIDDEN = hidden_tests_dir()


def graded_cells(path, kind: str = "code"):
    """Graded cells by part: code cells run the tests; Markdown ones are written answers that people grade."""
    nb = nbformat.read(path, as_version=4)
    return {
        c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == kind
    }


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_points_equal_hidden_test_points(path):
    "Is each graded cell worth exactly the points of its part's hidden tests (or its written part), so nbgrader and grade agree?"
    points, _ = hidden_test_points(HIDDEN / path.parent.name / f"test_{path.stem}.py")
    assert graded_cells(path) == points
    written = {part.part: part.points for part in written_parts(path.parent.name, HIDDEN) if part.notebook == path.stem}
    assert graded_cells(path, "markdown") == written


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_part_has_a_visible_test_and_hints(path):
    "Can a learner self-check and get hints on every graded part?"
    _, visible = hidden_test_points(HIDDEN / path.parent.name / f"test_{path.stem}.py")
    hints = Exercise(f"{path.parent.name}/{path.stem}")._hints()
    for part in graded_cells(path):
        assert visible.get(part), f"{part} has no visible test"
        assert len(hints.get(part, [])) >= 2, f"{part} needs at least two hints in {HINTS}"


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.stem)
def test_graded_cells_check_and_score_their_part(path):
    "Does each graded cell self-check its own part and score it inside a hidden-tests region?"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            part = meta["grade_id"]
            assert meta.get("locked"), f"the test cell of {part} must be locked"
            assert cell.source.startswith(f'exercise.check("{part}")'), cell.source
            assert re.search(rf'### BEGIN HIDDEN TESTS\nexercise.score\("{part}"\)\n### END HIDDEN TESTS', cell.source)


def test_every_hidden_assert_explains_itself():
    "Does every assert in the hidden tests carry a message, since learners see only messages?"
    for path in HIDDEN.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assert):
                assert node.msg is not None, f"{path.name}, line {node.lineno}: assert without a message"


def test_chapters_have_enough_exercise():
    "Does each skill's chapter have at least two notebooks with three or more graded parts each (the capstone, one)?"
    by_chapter = defaultdict(list)
    for path in SOLUTION_NOTEBOOKS:
        by_chapter[path.parent.name].append(len(graded_cells(path)))
    for chapter, parts in by_chapter.items():
        # The capstone teaches no new skill: its one notebook joins the notebooks of the others.
        notebooks = 1 if chapter == "capstone" else 2
        assert len(parts) >= notebooks and min(parts) >= 3, f"{chapter}: parts per notebook {parts}"


@pytest.mark.parametrize("path", [*SOLUTION_NOTEBOOKS, *sorted(EXERCISES.glob("*/*.ipynb"))], ids=str)
def test_notebooks_are_committed_without_outputs(path):
    "Are notebooks stored without outputs, so diffs stay readable and no answer leaks through an output?"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_exercises_hold_no_solutions():
    "Is there no solution or hidden-test region left in any released exercise?"
    for path in EXERCISES.glob("*/*.ipynb"):
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "HIDDEN TESTS", "exercise.score("):
            assert marker not in text, f"{path}: {marker}"


def test_book_shows_exercises_unexecuted():
    "Do the book's execution exclude patterns match every exercise and solution notebook?"
    from pathlib import PurePosixPath

    import yaml

    from autograder.paths import ROOT

    patterns = yaml.safe_load((ROOT / "_config.yml").read_text())["execute"]["exclude_patterns"]
    notebooks = [*SOLUTION_NOTEBOOKS, *EXERCISES.glob("*/*.ipynb")]
    # myst-nb matches each pattern against the notebook's absolute path, from the right.
    unmatched = [p for p in notebooks if not any(PurePosixPath(p.as_posix()).match(pattern) for pattern in patterns)]
    assert notebooks and not unmatched


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_install_cells_install_this_repository(path):
    """The Colab launch button opens a notebook where the course is not installed: its install cell must name our repository."""
    import yaml

    from autograder.paths import ROOT

    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    for cell in nbformat.read(path, as_version=4).cells:
        for url in re.findall(r"git\+(https://\S+?)[\"'\s]", cell.source):
            assert url == repository, f"{path.name} installs from {url}, but the book's repository is {repository}"


def test_every_chapter_has_a_row_in_the_suites_table():
    "Is every chapter of solutions/ in tests/helpers.py's CHAPTERS, with the exercises and full points its hidden tests plan?"
    assert {c.name for c in CHAPTERS} == {p.name for p in SOLUTIONS.iterdir() if p.is_dir()}
    for chapter in CHAPTERS:
        assert sorted(chapter.exercises) == exercises_of(chapter.name, HIDDEN), chapter.name
        planned = sum(sum(hidden_test_points(hidden_test_file(chapter.name, e, HIDDEN))[0].values()) for e in chapter.exercises)
        assert planned == chapter.full_points, chapter.name
        written = written_parts(chapter.name, HIDDEN)
        assert sum(part.points for part in written) == chapter.written_points, chapter.name
        assert {part for _, part in chapter.partial_points} == {
            part for e in chapter.exercises for part in hidden_test_points(hidden_test_file(chapter.name, e, HIDDEN))[0]
        } | {part.part for part in written}, chapter.name


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_that_builds_on_another_declares_it_where_both_graders_read_it(path):
    "Does a notebook call exercise.use_modules() exactly when uses.toml declares what it builds on, and do those notebooks exist?"
    used = used_by(path.parent.name, path.stem, HIDDEN)
    first_cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"][:2]
    calls = any("exercise.use_modules()" in source for source in first_cells)
    # nbgrader runs the cell; our grader reads uses.toml: without both, their points could differ.
    assert calls == bool(used), (
        f"{path.stem}: uses.toml declares {used or 'nothing'}, the notebook's first cells {'call' if calls else 'do not call'} use_modules()"
    )
    for notebook in used:
        assert notebook.reference().exists() and notebook.exercise != path.stem, notebook
        # Another chapter's notebook is graded alone, so it may not build on others itself.
        assert notebook.chapter == path.parent.name or not used_by(notebook.chapter, notebook.exercise, HIDDEN), notebook
