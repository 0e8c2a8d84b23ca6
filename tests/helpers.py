"""What the test suite shares: notebooks built in memory, the graded chapters' table, small hidden tests.

Tests import from here, never from one another; fixtures live in ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import http.server
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from autograder.batch import grade_class
from autograder.feedback import write_feedback
from autograder.paths import EXERCISES, ROOT, SOLUTIONS, hidden_tests_dir
from autograder.results import FAILED, PASSED, PENDING, GradedTest, SubmissionResult, write_csv, write_submission
from autograder.runner import planned_tests
from autograder.signing import load_key

CHAPTER = "data_infrastructure"  # the chapter that tests of the grader's machinery use when any will do


def code_cell(source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, **nbgrader}
    return cell


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def released(exercise: str, chapter: str = CHAPTER) -> nbformat.NotebookNode:
    return nbformat.read(EXERCISES / chapter / f"{exercise}.ipynb", as_version=4)


def solution(exercise: str, chapter: str = CHAPTER) -> nbformat.NotebookNode:
    return nbformat.read(SOLUTIONS / chapter / f"{exercise}.ipynb", as_version=4)


def answer_cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def with_reference_answers(exercise: str, parts: tuple[str, ...], chapter: str = CHAPTER) -> nbformat.NotebookNode:
    """The released notebook with the reference's answers to ``parts`` copied in, the rest untouched."""
    learner, reference = released(exercise, chapter), solution(exercise, chapter)
    for part in parts:
        answer_cell(learner, f"{part}_answer").source = answer_cell(reference, f"{part}_answer").source
    return learner


def mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- The partial learner of each chapter: some parts right, some with the mistakes its lessons warn about


def partial_warehouse_queries() -> nbformat.NotebookNode:
    """The learner's notebook with three of four parts answered, two of them with a typical mistake.

    Expected points: open_warehouse 2/3 (no check for a missing folder), fraud_rate_by_category
    2/2, transaction_features 2/4 (the window includes the payment itself), time_split 0/3.
    """
    learner = with_reference_answers("warehouse_queries", ("open_warehouse", "fraud_rate_by_category", "transaction_features"))
    opened = answer_cell(learner, "open_warehouse_answer")
    opened.source = opened.source.replace("if not (root", "if False and not (root")
    features = answer_cell(learner, "transaction_features_answer")
    features.source = features.source.replace("INTERVAL 1 MICROSECOND PRECEDING", "CURRENT ROW")
    return learner


# A learner whose tests of to_model_input check only the batch's shape and dtype: they
# catch two of the twelve planted bugs (channels last, float64).
SHAPE_AND_DTYPE_TESTS = """#| export tests.test_to_model_input
def test_shape_and_dtype(to_model_input):
    batch = to_model_input([np.zeros((30, 20, 3), np.uint8)], 16)
    assert batch.shape == (1, 3, 16, 16)
    assert batch.dtype == torch.float32
"""


def partial_preprocessing_tests() -> nbformat.NotebookNode:
    """Parts 1 and 3 answered from the reference, part 2 with a weak test suite: 3 + 1 + 3 points."""
    learner = with_reference_answers("preprocessing_tests", ("photo_batches", "check_model_input"), "software_testing")
    answer_cell(learner, "model_input_tests_answer").source = SHAPE_AND_DTYPE_TESTS
    return learner


def partial_training_step() -> nbformat.NotebookNode:
    """Three parts answered, two with a device mistake: no autocast in train_step, memory always pinned."""
    partial = with_reference_answers("training_step", ("train_step", "scaled_step", "make_loader"), "gpu_training")
    step, loader = answer_cell(partial, "train_step_answer"), answer_cell(partial, "make_loader_answer")
    step.source = step.source.replace("with autocast(device, amp_dtype):", "with contextlib.nullcontext():")
    loader.source = loader.source.replace('pin_memory=device.type == "cuda"', "pin_memory=True")
    return partial


def partial_scoring_service() -> nbformat.NotebookNode:
    """Three parts answered, two with a mistake: FastAPI's own 422 handler (a NaN in a request
    turns it into a 500) and histogram buckets that are not cumulative."""
    partial = with_reference_answers("scoring_service", ("schemas", "create_app", "instrument"), "serving")
    app, metrics = answer_cell(partial, "create_app_answer"), answer_cell(partial, "instrument_answer")
    app.source = app.source.replace("    @app.exception_handler(RequestValidationError)\n", "")
    metrics.source = metrics.source.replace('le="{bound}"}} {cumulative}\')', 'le="{bound}"}} {n}\')')
    return partial


def partial_decisions() -> nbformat.NotebookNode:
    """Two parts answered, one with a typical mistake: each bin's calibration gap counts the same,
    however few payments it holds."""
    partial = with_reference_answers("decisions", ("choose_threshold", "calibration_error"), "system_design")
    error = answer_cell(partial, "calibration_error_answer")
    error.source = error.source.replace("error += in_bin.mean() * abs(", "error += 1 / len(np.unique(index)) * abs(")
    return partial


def partial_config_and_registry() -> nbformat.NotebookNode:
    """Three parts answered, one with a typical mistake: an override reads any text as true for a bool."""
    partial = with_reference_answers("config_and_registry", ("load_config", "apply_override", "registry"), "structured_code")
    override = answer_cell(partial, "apply_override_answer")
    override.source = override.source.replace(
        'if kind is bool:\n            if text.lower() not in ("true", "false"):\n                raise ValueError(text)\n'
        '            value = text.lower() == "true"\n        else:\n            value = kind(text)',
        "value = kind(text)",
    )
    return partial


def partial_end_to_end() -> nbformat.NotebookNode:
    """Three parts answered, one with the mistake the lesson shows: `abroad` sent as 1.0, which the strict schema refuses."""
    partial = with_reference_answers("end_to_end", ("model_inputs", "score_with_service", "ship_decision"), "capstone")
    score = answer_cell(partial, "score_with_service_answer")
    score.source = score.source.replace('"abroad": bool(row.abroad)', '"abroad": float(row.abroad)')
    return partial


@dataclass(frozen=True)
class Chapter:
    """A graded chapter as the suite grades it: adding a chapter to the course is one row of CHAPTERS."""

    name: str
    exercises: tuple[str, ...]
    full_points: float  # what the reference solution earns, all notebooks together
    partial_exercise: str  # the notebook that the partial learner hands in half done
    partial: Callable[[], nbformat.NotebookNode]
    partial_points: dict[tuple[str, str], float]  # (notebook, part) -> points: every part of the chapter
    written_points: float = 0  # written answers that people grade: pending, so not in full_points
    # Notebooks the partial learner hands in solved (the others untouched): one that builds on the
    # partial notebook then shows that a mistake there is not paid for again (autograder/uses.py).
    partial_solved: tuple[str, ...] = ()


CHAPTERS = [
    Chapter(
        "data_infrastructure",
        ("warehouse_queries", "training_data"),
        22,
        "warehouse_queries",
        partial_warehouse_queries,
        {
            ("warehouse_queries", "open_warehouse"): 2.0,
            ("warehouse_queries", "fraud_rate_by_category"): 2.0,
            ("warehouse_queries", "transaction_features"): 2.0,
            ("warehouse_queries", "time_split"): 0.0,
            ("training_data", "write_shards"): 0.0,
            ("training_data", "parquet_stream"): 0.0,
            ("training_data", "shuffled"): 0.0,
        },
    ),
    Chapter(
        "software_testing",
        ("preprocessing_tests", "ml_tests"),
        24,
        "preprocessing_tests",
        partial_preprocessing_tests,
        {
            ("preprocessing_tests", "photo_batches"): 3.0,
            ("preprocessing_tests", "model_input_tests"): 1.0,
            ("preprocessing_tests", "check_model_input"): 3.0,
            ("ml_tests", "history_tests"): 0.0,
            ("ml_tests", "overfit_one_batch"): 0.0,
            ("ml_tests", "time_split_leaks"): 0.0,
        },
    ),
    Chapter(
        "gpu_training",
        ("training_step", "resume_and_measure"),
        22,
        "training_step",
        partial_training_step,
        {
            ("training_step", "train_step"): 3.0,
            ("training_step", "scaled_step"): 4.0,
            ("training_step", "make_loader"): 2.0,
            ("resume_and_measure", "save_checkpoint"): 0.0,
            ("resume_and_measure", "resume"): 0.0,
            ("resume_and_measure", "throughput"): 0.0,
        },
    ),
    Chapter(
        "serving",
        ("scoring_service", "latency_and_batching"),
        30,
        "scoring_service",
        partial_scoring_service,
        {
            ("scoring_service", "schemas"): 4.0,
            ("scoring_service", "create_app"): 8.0,
            ("scoring_service", "instrument"): 3.0,
            ("latency_and_batching", "latency_report"): 0.0,
            ("latency_and_batching", "micro_batcher"): 0.0,
            ("latency_and_batching", "load_test"): 0.0,
        },
    ),
    Chapter(
        "system_design",
        ("decisions", "monitoring_and_release", "online_features"),
        32,
        "decisions",
        partial_decisions,
        {
            ("decisions", "choose_threshold"): 4.0,
            ("decisions", "calibration_error"): 1.0,
            ("decisions", "compare_models"): 0.0,
            ("monitoring_and_release", "psi"): 0.0,
            ("monitoring_and_release", "alert_threshold"): 0.0,
            ("monitoring_and_release", "model_registry"): 0.0,
            ("online_features", "online_velocity"): 0.0,
            ("online_features", "online_history"): 0.0,
            ("online_features", "feature_skew"): 0.0,
            ("online_features", "design_document"): 0.0,
        },
        written_points=4,
    ),
    Chapter(
        "structured_code",
        ("config_and_registry", "command_line"),
        24,
        "config_and_registry",
        partial_config_and_registry,
        {
            ("config_and_registry", "load_config"): 3.0,
            ("config_and_registry", "apply_override"): 1.0,
            ("config_and_registry", "registry"): 3.0,
            ("config_and_registry", "compare_runs"): 0.0,
            # Full marks on the reference's cardfraud.experiment, which stands in for the broken one.
            ("command_line", "dump_config"): 3.0,
            ("command_line", "fingerprint"): 3.0,
            ("command_line", "build_parser"): 2.0,
            ("command_line", "main"): 4.0,
        },
        partial_solved=("command_line",),
    ),
    # Its partial learner's data, GPU and serving notebooks are those chapters' partial ones,
    # all failing some test: the references stand in for each (autograder/uses.py).
    Chapter(
        "capstone",
        ("end_to_end",),
        13,
        "end_to_end",
        partial_end_to_end,
        {
            ("end_to_end", "model_inputs"): 3.0,
            ("end_to_end", "train_model"): 0.0,
            ("end_to_end", "score_with_service"): 0.0,
            ("end_to_end", "ship_decision"): 3.0,
        },
    ),
]
BY_NAME = {chapter.name: chapter for chapter in CHAPTERS}


def write_class(submitted: Path, chapters: list[Chapter]) -> Path:
    """An nbgrader submitted/ tree of three learners, each handing in every chapter of ``chapters``.

    ``full`` hands in the solutions, ``zero`` the untouched exercises, and ``partial`` the
    chapter's partial notebook with its other exercises untouched (or solved: ``partial_solved``).
    """
    for chapter in chapters:
        for exercise in chapter.exercises:
            shutil.copy(SOLUTIONS / chapter.name / f"{exercise}.ipynb", mkdir(submitted / "full" / chapter.name))
            shutil.copy(EXERCISES / chapter.name / f"{exercise}.ipynb", mkdir(submitted / "zero" / chapter.name))
            if exercise != chapter.partial_exercise:
                folder = SOLUTIONS if exercise in chapter.partial_solved else EXERCISES
                shutil.copy(folder / chapter.name / f"{exercise}.ipynb", mkdir(submitted / "partial" / chapter.name))
        write(chapter.partial(), submitted / "partial" / chapter.name / f"{chapter.partial_exercise}.ipynb")
    return submitted


def grade_variants(submitted: Path, chapter: str, variants: dict) -> dict[str, SubmissionResult]:
    """One learner per variant, graded in one batch: the reference notebook with text edits in one part's answer cell.

    ``variants`` maps a learner's name to ``(exercise, part, [(old, new), ...], must_fail)``.
    """
    for student, (exercise, part, edits, _) in variants.items():
        nb = solution(exercise, chapter)
        cell = answer_cell(nb, f"{part}_answer")
        for old, new in edits:
            assert old in cell.source, f"{student}: the reference no longer contains {old!r}"
            cell.source = cell.source.replace(old, new)
        write(nb, submitted / student / chapter / f"{exercise}.ipynb")
    return {result.student: result for result in grade_class(submitted, hidden_tests_dir(), workers=2)}


def references_in_class_sheet(results: list[SubmissionResult], folder: Path) -> dict[str, list[str]]:
    """Each student's ``reference_code_used`` column, as the class CSV written into ``folder`` has it."""
    write_csv(results, folder / "grades.csv")
    rows = csv.DictReader((folder / "grades.csv").read_text().splitlines())
    return {row["student"]: sorted(row["reference_code_used"].split()) for row in rows}


def typical_mistakes_tests(chapter: str, mistakes: dict, caught_by_self_check: bool = True):
    """A chapter's typical mistakes as tests: a fixture that grades them all in one batch, and the test of each.

    ``mistakes`` maps a learner's name to ``(exercise, part, [(old, new), ...], must_fail)``:
    each loses exactly the points of the tests ``must_fail`` names and, with
    ``caught_by_self_check``, a visible test catches it, so that the learner's
    self-check does not pass it. Bind both in the chapter's test module::

        graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(CHAPTER, MISTAKES)
    """

    @pytest.fixture(scope="module")
    def graded_mistakes(tmp_path_factory):
        """Every mistake, graded in one batch (the reference and untouched exercises: tests/test_grade.py)."""
        return grade_variants(tmp_path_factory.mktemp("submitted"), chapter, mistakes)

    @pytest.mark.slow
    @pytest.mark.parametrize("student", mistakes)
    def test_a_typical_mistake_loses_exactly_its_points(graded_mistakes, student):
        exercise, _, _, must_fail = mistakes[student]
        result = graded_mistakes[student]
        assert_fails_exactly(result, exercise, must_fail)
        if caught_by_self_check:
            visible = [t.name for t in result.tests if t.visible and t.score < t.max_score]
            assert visible, f"{student}: no visible test catches this mistake, so the self-check would pass it"

    return graded_mistakes, test_a_typical_mistake_loses_exactly_its_points


def assert_fails_exactly(result, exercise: str, must_fail: list[str]) -> None:
    """The learner's tests of ``exercise`` that lost points are those ``must_fail`` names (by the start of their descriptions)."""
    # A variant hands in one notebook: the other notebooks' tests are not the point.
    tests = [t for t in result.tests if t.notebook == exercise and not t.manual]
    assert tests, f"{result.student}: no test of {exercise} ran"
    failed = sorted(t.name for t in tests if t.score < t.max_score)
    assert len(failed) == len(must_fail) and all(any(f.startswith(m) for f in failed) for m in must_fail), (
        f"{result.student}: expected exactly {must_fail} to fail, but these failed: {failed}"
    )


def hidden_test_points(path: Path) -> tuple[dict[str, float], dict[str, bool]]:
    """(part -> points, part -> has a visible test), from the tests pytest collects in the file."""
    points, visible = defaultdict(float), defaultdict(bool)
    for test in planned_tests(path).values():
        points[test.part] = round(points[test.part] + test.max_score, 6)
        visible[test.part] |= test.visible
    return dict(points), dict(visible)


# --- A tiny course of our own, for testing the grader's machinery in seconds

HIDDEN_NUMBERS = """
import pytest

@pytest.mark.graded("double", points=2, visible=True)
def test_doubles(learner):
    "Doubles a positive number."
    assert learner.double(2) == 4, f"double(2) should be 4, got {learner.double(2)!r}"

@pytest.mark.graded("double", points=1)
def test_negative(learner):
    "Doubles a negative number."
    assert learner.double(-1) == -2, "double(-1) should be -2"

@pytest.mark.graded("halve", points=1, visible=True)
def test_halves(learner):
    "Halves a number."
    assert learner.halve(4) == 2, "halve(4) should be 2"
"""


GOOD = "def double(x):\n    return 2 * x\n\ndef halve(x):\n    return x / 2"
HALF = "def double(x):\n    return 2 * x\n\ndef halve(x):\n    return x"


def write_numbers_course(root: Path) -> tuple[Path, Path]:
    """Hidden tests for an assignment `numbers`, and a class of four who handed it in: (hidden tests, submitted/).

    ann and cy earn 4 of 4 points, bob 3 (halve is wrong), dee 2 (double only, wrong for negatives).
    """
    hidden = root / "hidden"
    (hidden / "numbers").mkdir(parents=True)
    (hidden / "numbers" / "test_numbers.py").write_text(HIDDEN_NUMBERS)
    submitted = root / "submitted"
    for student, source in {"ann": GOOD, "bob": HALF, "cy": GOOD, "dee": "def double(x):\n    return abs(x) * 2"}.items():
        nb = notebook(code_cell("#| default_exp numbers"), code_cell(f"#| export\n{source}"))
        write(nb, submitted / student / "numbers" / "numbers.ipynb")
    return hidden, submitted


def write_graded_class(out: Path) -> dict[str, SubmissionResult]:
    """A class as ``grade --out`` leaves it (results signed with the tests' key, feedback pages), made without grading.

    Assignment ``numbers`` (parts double, 3 points; halve, 1; essay, 2, graded by hand)
    and ``words`` (part count, 1): ann has everything; bob's halve is wrong, his essay
    pending; cy's double fails for negatives, the same mistake as dee's in other numbers,
    and her halve timed out; dee did not submit ``words``; eve did not submit ``numbers``.
    """

    def test(part, name, points, status, output=""):
        return GradedTest(part, name, points if status == PASSED else 0.0, points, status, output, notebook="numbers")

    def numbers(double_negative, halve, essay):
        return [
            test("double", "Doubles a positive number.", 2, PASSED),
            test("double", "Doubles a negative number.", 1, *double_negative),
            test("halve", "Halves a number.", 1, *halve),
            test("essay", "Explains the choice.", 2, *essay),
        ]

    ok = (PASSED,)
    results = {
        "ann": SubmissionResult("ann", "numbers", numbers(ok, ok, ok), seconds={"numbers": 1.5}),
        "bob": SubmissionResult(
            "bob", "numbers", numbers(ok, (FAILED, "halve(4) should be 2, got 4"), (PENDING,)), seconds={"numbers": 2.0}
        ),
        "cy": SubmissionResult(
            "cy",
            "numbers",
            numbers((FAILED, "double(-1) should be -2, got 2"), (FAILED, "took longer than 3 s: is there an endless loop?"), ok),
            seconds={"numbers": 9.0},
        ),
        "dee": SubmissionResult(
            "dee", "numbers", numbers((FAILED, "double(-7) should be -14, got 14"), ok, ok), seconds={"numbers": 1.0}
        ),
    }
    words = {
        student: SubmissionResult(
            student, "words", [GradedTest("count", "Counts words.", 1.0, 1.0, PASSED, notebook="words")], seconds={"words": 0.5}
        )
        for student in ("ann", "bob", "cy", "eve")
    }
    key = load_key()
    for result in [*results.values(), *words.values()]:
        folder = out / result.student / result.assignment
        write_feedback(result, folder / "feedback.html")
        write_submission(result, folder / "results.json", "fingerprint", key)
    return {f"{r.student}/{r.assignment}": r for r in [*results.values(), *words.values()]}


def mixed_class(submitted: Path, students: int, seed: int = 0) -> None:
    """The grading benchmark's class of the data-infrastructure chapter: full, untouched, partial, broken and looping."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import grading
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    grading.build_class(submitted, students, seed)


def write_module(root: Path, source: str) -> None:
    """A learner package ``cardfraud`` with one module, ``numbers``, holding ``source``."""
    package = root / "cardfraud"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").touch()
    (package / "numbers.py").write_text(textwrap.dedent(source))


def nbgrader(course: Path, *args: str) -> None:
    """Run an nbgrader command in ``course``; fail with its output if it fails."""
    # nbgrader runs `alembic` by name to set up its database: it must be on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"]
    done = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


# --- Chromium, for the browser tests (the book's pages, the class report)

CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
INSTALL = "apt-get install -y chromium chromium-driver"

BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Containers give /dev/shm 64 MB, which long pages outgrow.
    "--disable-dev-shm-usage",
    # A proxy set in the environment must not see loopback traffic, and no name
    # outside loopback resolves: whatever a page fetches from elsewhere fails fast.
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,900",
]


# Lazy images load only when scrolled to; make them load now and wait until every image
# has loaded or failed, so that "not loaded" means broken.
SETTLE_IMAGES = """
const done = arguments[arguments.length - 1];
const images = [...document.images];
images.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
Promise.allSettled(images.map(i => i.decode())).then(() => done(null));
"""


def load(driver, base: str, path: str) -> tuple[list[str], list[str]]:
    """Open a page and return (console errors, resources outside loopback that it tried to load)."""
    driver.get_log("browser")  # forget what the previous page left
    driver.get(base + path)
    driver.execute_async_script(SETTLE_IMAGES)
    errors, external = [], []
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE":
            continue
        url = entry["message"].split(" ", 1)[0]
        if entry["source"] == "network" and not url.startswith(base):
            external.append(url)
        else:
            errors.append(entry["message"])
    return errors, external


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the test reports what matters; no access log
        pass


@contextlib.contextmanager
def served(folder: Path):
    """``folder`` over HTTP on a free loopback port, as a reader's browser would fetch it: yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
