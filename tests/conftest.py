"""Factories shared by the test suite: notebooks and submissions built in memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.course import EXERCISES, SOLUTIONS

CHAPTER = "data_infrastructure"


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


PARTIAL_POINTS = {
    ("warehouse_queries", "open_warehouse"): 2.0,
    ("warehouse_queries", "fraud_rate_by_category"): 2.0,
    ("warehouse_queries", "transaction_features"): 2.0,
    ("warehouse_queries", "time_split"): 0.0,
    ("training_data", "write_shards"): 0.0,
    ("training_data", "parquet_stream"): 0.0,
    ("training_data", "shuffled"): 0.0,
}


TESTING_CHAPTER = "software_testing"
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
    learner = with_reference_answers("preprocessing_tests", ("photo_batches", "check_model_input"), TESTING_CHAPTER)
    answer_cell(learner, "model_input_tests_answer").source = SHAPE_AND_DTYPE_TESTS
    return learner


TESTING_PARTIAL_POINTS = {
    ("preprocessing_tests", "photo_batches"): 3.0,
    ("preprocessing_tests", "model_input_tests"): 1.0,
    ("preprocessing_tests", "check_model_input"): 3.0,
    ("ml_tests", "history_tests"): 0.0,
    ("ml_tests", "overfit_one_batch"): 0.0,
    ("ml_tests", "time_split_leaks"): 0.0,
}


@pytest.fixture
def testing_class(tmp_path) -> Path:
    """A submitted/ tree for the testing chapter: full, untouched and partial (weak tests of to_model_input)."""
    return class_of_full_zero_partial(
        tmp_path, TESTING_CHAPTER, ("preprocessing_tests", "ml_tests"), "preprocessing_tests", partial_preprocessing_tests()
    )


@pytest.fixture
def class_of_three(tmp_path) -> Path:
    """An nbgrader submitted/ tree: one full, one untouched and one partial submission."""
    return class_of_full_zero_partial(
        tmp_path, CHAPTER, ("warehouse_queries", "training_data"), "warehouse_queries", partial_warehouse_queries()
    )


def class_of_full_zero_partial(
    tmp_path: Path, chapter: str, exercises: tuple[str, ...], partial_exercise: str, partial: nbformat.NotebookNode
) -> Path:
    """An nbgrader submitted/ tree of three learners for one chapter.

    ``full`` hands in the solutions, ``zero`` the untouched exercises, and ``partial``
    the ``partial`` notebook as its ``partial_exercise`` with the other exercises untouched.
    """
    submitted = tmp_path / "submitted"
    for exercise in exercises:
        shutil.copy(SOLUTIONS / chapter / f"{exercise}.ipynb", _mkdir(submitted / "full" / chapter))
        shutil.copy(EXERCISES / chapter / f"{exercise}.ipynb", _mkdir(submitted / "zero" / chapter))
        if exercise != partial_exercise:
            shutil.copy(EXERCISES / chapter / f"{exercise}.ipynb", _mkdir(submitted / "partial" / chapter))
    write(partial, submitted / "partial" / chapter / f"{partial_exercise}.ipynb")
    return submitted


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA device; this machine has none")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)


GPU_CHAPTER = "gpu_training"
# The partial learner's training_step: no autocast in train_step, memory always pinned.
GPU_PARTIAL_POINTS = {
    ("training_step", "train_step"): 3.0,
    ("training_step", "scaled_step"): 4.0,
    ("training_step", "make_loader"): 2.0,
    ("resume_and_measure", "save_checkpoint"): 0.0,
    ("resume_and_measure", "resume"): 0.0,
    ("resume_and_measure", "throughput"): 0.0,
}


@pytest.fixture
def gpu_class(tmp_path) -> Path:
    """A submitted/ tree for the GPU chapter: full, untouched, and partial (two device mistakes)."""
    partial = with_reference_answers("training_step", ("train_step", "scaled_step", "make_loader"), GPU_CHAPTER)
    step, loader = answer_cell(partial, "train_step_answer"), answer_cell(partial, "make_loader_answer")
    step.source = step.source.replace("with autocast(device, amp_dtype):", "with contextlib.nullcontext():")
    loader.source = loader.source.replace('pin_memory=device.type == "cuda"', "pin_memory=True")
    return class_of_full_zero_partial(tmp_path, GPU_CHAPTER, ("training_step", "resume_and_measure"), "training_step", partial)


SERVING_CHAPTER = "serving"
# The partial learner's scoring_service: FastAPI's own 422 handler (a NaN in a request
# turns it into a 500) and histogram buckets that are not cumulative.
SERVING_PARTIAL_POINTS = {
    ("scoring_service", "schemas"): 4.0,
    ("scoring_service", "create_app"): 8.0,
    ("scoring_service", "instrument"): 3.0,
    ("latency_and_batching", "latency_report"): 0.0,
    ("latency_and_batching", "micro_batcher"): 0.0,
    ("latency_and_batching", "load_test"): 0.0,
}


@pytest.fixture
def serving_class(tmp_path) -> Path:
    """A submitted/ tree for the serving chapter: full, untouched, and partial (two mistakes in the service)."""
    partial = with_reference_answers("scoring_service", ("schemas", "create_app", "instrument"), SERVING_CHAPTER)
    app, metrics = answer_cell(partial, "create_app_answer"), answer_cell(partial, "instrument_answer")
    app.source = app.source.replace("    @app.exception_handler(RequestValidationError)\n", "")
    metrics.source = metrics.source.replace('le="{bound}"}} {cumulative}\')', 'le="{bound}"}} {n}\')')
    return class_of_full_zero_partial(
        tmp_path, SERVING_CHAPTER, ("scoring_service", "latency_and_batching"), "scoring_service", partial
    )


def write_variants(submitted: Path, chapter: str, variants: dict) -> None:
    """One learner per variant: the reference notebook with text edits in one part's answer cell.

    ``variants`` maps a learner's name to ``(exercise, part, [(old, new), ...], must_fail)``.
    """
    for student, (exercise, part, edits, _) in variants.items():
        nb = solution(exercise, chapter)
        cell = answer_cell(nb, f"{part}_answer")
        for old, new in edits:
            assert old in cell.source, f"{student}: the reference no longer contains {old!r}"
            cell.source = cell.source.replace(old, new)
        write(nb, submitted / student / chapter / f"{exercise}.ipynb")


def assert_fails_exactly(result, exercise: str, must_fail: list[str]) -> None:
    """The learner's tests of ``exercise`` that lost points are those ``must_fail`` names (by the start of their descriptions)."""
    # A variant hands in one notebook: the other notebooks' tests are not the point.
    tests = [t for t in result.tests if t.notebook == exercise]
    assert tests, f"{result.student}: no test of {exercise} ran"
    failed = sorted(t.name for t in tests if t.score < t.max_score)
    assert len(failed) == len(must_fail) and all(any(f.startswith(m) for f in failed) for m in must_fail), (
        f"{result.student}: expected exactly {must_fail} to fail, but these failed: {failed}"
    )
