"""Fixtures shared by the test suite; what they build comes from tests/helpers.py.

The graded classes are built and graded once per session: every chapter's full,
untouched and partial learners in one submitted/ tree, graded once by our grader and
once by ``nbgrader autograde``, and shared by every test that needs a chapter graded.
nbgrader's autograde is the suite's longest step (it runs every solution notebook), so
it starts in the background as soon as the tests are collected, while the other tests
use the machine's second core, and the tests that compare with it wait for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

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
    # The tests that wait for nbgrader's background autograde go last, so that the others run meanwhile.
    items.sort(key=lambda item: "nbgrader_courses" in getattr(item, "fixturenames", ()))
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA device; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


def pytest_collection_finish(session):
    if any("nbgrader_courses" in getattr(item, "fixturenames", ()) for item in session.items):
        config = session.config
        # Two autogrades side by side, each over half of the chapters in a course folder of
        # its own (nbgrader's database is one SQLite file): nbgrader runs one kernel at a
        # time, and the machine's second core would otherwise wait.
        for chapters in NBGRADER_HALVES:
            course = Path(tempfile.mkdtemp(prefix="autograder-nbgrader-"))
            config.add_cleanup(lambda course=course: shutil.rmtree(course, ignore_errors=True))
            shutil.copy(ROOT / "nbgrader_config.py", course)
            shutil.copytree(ROOT / "solutions", course / "solutions")
            write_class(course / "submitted", [BY_NAME[name] for name in chapters])
            autograde = subprocess.Popen(
                [sys.executable, "-m", "tests.autograde_class", str(course), *chapters],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            config.add_cleanup(autograde.kill)  # a run stopped early does not leave nbgrader running
            config.stash.setdefault(_AUTOGRADES, []).append((course, chapters, autograde))


# Halves of about equal nbgrader time (its kernels run each notebook top to bottom), each
# autograded in this order: the capstone after the chapters whose notebooks it imports.
NBGRADER_HALVES = [
    ("data_infrastructure", "gpu_training", "serving", "capstone"),
    ("software_testing", "system_design", "structured_code"),
]


def _every_chapter_course(config) -> Path:
    """A course folder whose submitted/ holds every chapter's full, untouched and partial learners (made once)."""
    if _COURSE not in config.stash:
        course = Path(tempfile.mkdtemp(prefix="autograder-course-"))
        config.add_cleanup(lambda: shutil.rmtree(course, ignore_errors=True))
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "solutions", course / "solutions")
        write_class(course / "submitted", CHAPTERS)
        config.stash[_COURSE] = course
    return config.stash[_COURSE]


_COURSE = pytest.StashKey[Path]()
_AUTOGRADES = pytest.StashKey[list]()


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
def every_chapter_course(request) -> Path:
    """An nbgrader course folder whose submitted/ holds every chapter's full, untouched and partial learners."""
    return _every_chapter_course(request.config)


@pytest.fixture(scope="session")
def graded(every_chapter_course) -> dict[tuple[str, str], SubmissionResult]:
    """Our grader's results for that class by (student, chapter), graded once into ``course/graded``.

    With ``--out``, so that a test of the command line pointed there reuses them instead of grading again.
    """
    results = grade_class(every_chapter_course / "submitted", hidden_tests_dir(), out=every_chapter_course / "graded", workers=2)
    return {(result.student, result.assignment): result for result in results}


@pytest.fixture(scope="session")
def nbgrader_courses(request) -> dict[str, Path]:
    """The nbgrader course folder of each chapter, once the autogrades started at collection have finished."""
    courses = {}
    for course, chapters, autograde in request.config.stash[_AUTOGRADES]:
        out, err = autograde.communicate()
        assert autograde.returncode == 0, f"nbgrader's autograde of {', '.join(chapters)} failed:\n{err}"
        (course / "points.jsonl").write_text(out)
        courses.update(dict.fromkeys(chapters, course))
    return courses


@pytest.fixture(scope="session")
def nbgrader_points(nbgrader_courses) -> dict[tuple[str, str], dict[tuple[str, str], float]]:
    """nbgrader's points for the class by (student, chapter), then (notebook, cell)."""
    points: dict = {}
    for course in set(nbgrader_courses.values()):
        for line in (course / "points.jsonl").read_text().splitlines():
            student, chapter, notebook, cell, score = json.loads(line)
            points.setdefault((student, chapter), {})[notebook, cell] = score
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
