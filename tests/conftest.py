"""Fixtures shared by the test suite; what they build comes from tests/helpers.py.

The graded classes are built and graded once per session: every chapter's full,
untouched and partial learners in one submitted/ tree, graded once by our grader and
once by ``nbgrader autograde``, and shared by every test that needs a chapter graded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from autograder.batch import grade_class
from autograder.paths import ROOT, hidden_tests_dir
from autograder.results import SubmissionResult
from autograder.signing import KEY_VARIABLE
from tests.helpers import (
    BROWSER_FLAGS,
    BY_NAME,
    CHAPTER,
    CHAPTERS,
    CHROMEDRIVER,
    CHROMIUM,
    INSTALL,
    nbgrader,
    write_class,
    write_numbers_course,
)

# `make check` leaves out the tests marked slow; a test that takes longer than this is slow.
SLOW_SECONDS = 5.0
_marked_slow: set[str] = set()
_seconds: dict[str, float] = {}


def pytest_configure(config):
    # Results are signed with a key the tests make for themselves, not the developer's own.
    key_folder = tempfile.mkdtemp(prefix="autograder-test-key-")
    config.add_cleanup(lambda: shutil.rmtree(key_folder, ignore_errors=True))
    os.environ[KEY_VARIABLE] = str(Path(key_folder) / "signing-key")


def pytest_collection_modifyitems(config, items):
    import torch

    # Browser tests have a lane of their own (after the book build), outside `make check` too.
    _marked_slow.update(item.nodeid for item in items if "slow" in item.keywords or "browser" in item.keywords)
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA device; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


def pytest_runtest_logreport(report):
    _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Name the tests whose slow marker is wrong, so that `make check` stays quick without a timed assertion."""
    unmarked = sorted(node for node, seconds in _seconds.items() if seconds > SLOW_SECONDS and node not in _marked_slow)
    if unmarked:
        terminalreporter.write_sep("-", f"took more than {SLOW_SECONDS:g} s but not marked slow")
        for node in unmarked:
            terminalreporter.write_line(f"{_seconds[node]:6.1f} s  {node}")


@pytest.fixture
def course(tmp_path) -> tuple[Path, Path]:
    """Hidden tests for an assignment `numbers`, and a class of four learners who handed it in."""
    return write_numbers_course(tmp_path)


@pytest.fixture
def class_of_three(tmp_path) -> Path:
    """The data-infrastructure chapter's full, untouched and partial learners: an nbgrader submitted/ tree."""
    return write_class(tmp_path / "submitted", [BY_NAME[CHAPTER]])


@pytest.fixture(scope="session")
def every_chapter_course(tmp_path_factory) -> Path:
    """An nbgrader course folder whose submitted/ holds every chapter's full, untouched and partial learners."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    write_class(course / "submitted", CHAPTERS)
    return course


@pytest.fixture(scope="session")
def graded(every_chapter_course) -> dict[tuple[str, str], SubmissionResult]:
    """Our grader's results for that class by (student, chapter), graded once into ``course/graded``.

    With ``--out``, so that a test of the command line pointed there reuses them instead of grading again.
    """
    results = grade_class(every_chapter_course / "submitted", hidden_tests_dir(), out=every_chapter_course / "graded", workers=2)
    return {(result.student, result.assignment): result for result in results}


@pytest.fixture(scope="session")
def nbgrader_points(every_chapter_course) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
    """nbgrader's points for the same class by (student, chapter), then (notebook, cell): one autograde for all chapters."""
    for chapter in CHAPTERS:
        nbgrader(every_chapter_course, "generate_assignment", chapter.name, "--force")
    nbgrader(every_chapter_course, "autograde", "*", "--force")
    points = {}
    with Gradebook(f"sqlite:///{every_chapter_course / 'gradebook.db'}") as gradebook:
        for chapter in CHAPTERS:
            for student in ("full", "zero", "partial"):
                points[student, chapter.name] = {
                    (notebook, cell.name): gradebook.find_grade(cell.name, notebook, chapter.name, student).score
                    for notebook in chapter.exercises
                    for cell in gradebook.find_notebook(notebook, chapter.name).grade_cells
                }
    return points


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium, driven by Selenium, that reaches nothing outside loopback: one for every browser test."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"The browser test needs Debian's Chromium and its driver, and {', '.join(missing)} is missing. "
            f"Install them with `{INSTALL}` (README, 'Two commands'), or point CHROMIUM_BIN and CHROMEDRIVER_BIN at them."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    # Console messages of every level, read back with get_log("browser").
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()
