"""The capstone: each typical mistake loses exactly its points, and a visible test catches it; a learner whose
earlier chapters fail is graded on the capstone's own code, with the references named."""

import subprocess
import sys

import pytest

from tests.helpers import BY_NAME, mkdir, partial_warehouse_queries, references_in_class_sheet, typical_mistakes_tests, write

CHAPTER = "capstone"
USED = [
    "data_infrastructure/training_data",
    "data_infrastructure/warehouse_queries",
    "gpu_training/resume_and_measure",
    "gpu_training/training_step",
    "serving/scoring_service",
]

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start).
# Each is a mistake the lesson (chapters/capstone/one_system.md) or the part's text warns about.
MISTAKES = {
    "category_counted_from_one": (
        "end_to_end",
        "model_inputs",
        [
            (
                "list_position($categories, m.category)::BIGINT - 1 AS category",
                "list_position($categories, m.category)::BIGINT AS category",
            )
        ],
        ["Category as its 0-based index", "On a generated warehouse"],
    ),
    "resume_result_ignored": (
        "end_to_end",
        "train_model",
        [
            (
                "first = resume(checkpoint, model, optimizer, scheduler)",
                "resume(checkpoint, model, optimizer, scheduler)\n    first = 0",
            )
        ],
        ["Train one epoch, then ask", "Called again once finished"],
    ),
    "abroad_sent_as_a_float": (
        "end_to_end",
        "score_with_service",
        [('"abroad": bool(row.abroad)', '"abroad": float(row.abroad)')],
        ["600 rows", "512 rows", "A bundle folder that does not exist"],
    ),
    "ship_on_the_point_estimate": (
        "end_to_end",
        "ship_decision",
        [('"ship": bool(low > bar)', '"ship": bool(auc(labels, scores) > bar)')],
        ["A model clearly above the bar ships"],
    ),
    "bootstrap_without_replacement": (
        "end_to_end",
        "ship_decision",
        [("sample = rng.integers(0, len(labels), len(labels))", "sample = rng.permutation(len(labels))")],
        ["A model clearly above the bar ships", "The interval matches a 95%"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(CHAPTER, MISTAKES)


@pytest.mark.slow
def test_a_learner_whose_earlier_chapters_fail_is_graded_on_the_capstone_alone(graded, tmp_path):
    "With the data, GPU and serving notebooks failing tests, is the capstone graded on its own code, the references named?"
    # The class's partial learner hands in each chapter's partial notebook: every used notebook fails a test.
    partial, full = graded["partial", CHAPTER], graded["full", CHAPTER]
    assert partial.part_scores() == BY_NAME[CHAPTER].partial_points
    assert sorted(partial.references) == USED and full.references == []
    assert any("reference cardfraud.warehouse" in m and "time_split" in m for m in partial.messages), partial.messages
    assert references_in_class_sheet([partial, full], tmp_path) == {"partial": USED, "full": []}


@pytest.mark.slow
def test_the_notebook_imports_each_chapters_module_or_its_reference(tmp_path):
    "Does the capstone's first cell find the learner's notebooks in the other chapters' folders, and say for each whose code it uses?"
    write(partial_warehouse_queries(), mkdir(tmp_path / "exercises" / "data_infrastructure") / "warehouse_queries.ipynb")
    # In a process of its own, as in a kernel: the used notebook's tests start DuckDB's and
    # PyTorch's threads, which later forks of this test process must not inherit.
    cell = f"from autograder.notebook import Exercise; Exercise({CHAPTER + '/end_to_end'!r}).use_modules()"
    done = subprocess.run(
        [sys.executable, "-c", cell], cwd=mkdir(tmp_path / "exercises" / CHAPTER), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    said = done.stdout.splitlines()
    assert said[0].startswith("cardfraud.warehouse: the course's reference, because your warehouse_queries.ipynb"), said
    assert "time_split" in said[0], said
    assert any(
        line.startswith("cardfraud.service: the course's reference, because scoring_service.ipynb is not in") for line in said
    ), said
    assert sorted(p.stem for p in (tmp_path / "exercises" / "cardfraud").glob("*.py")) == [
        "__init__",
        "checkpoints",
        "service",
        "training",
        "training_data",
        "warehouse",
    ]
