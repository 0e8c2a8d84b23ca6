"""Mutation grading: learners' own tests earn points for the planted bugs they catch, and only for those."""

import textwrap

import numpy as np
import pytest
from hypothesis import settings

from autograder.mutation import Mutant, equivalent_copy, run_learner_tests
from autograder.paths import hidden_test_file, hidden_tests_dir
from autograder.pytest_plugin import LearnerCode
from autograder.results import FAILED, NOT_ATTEMPTED, PASSED
from autograder.runner import run_in_process
from casestudy.images import letterbox

CHAPTER = "software_testing"
# (notebook, mutation-graded part, fixture name, points)
MUTATION_PARTS = [
    ("preprocessing_tests", "model_input_tests", "to_model_input", 6),
    ("ml_tests", "history_tests", "amount_vs_card_avg_30d", 6),
]


def learner_tests(source: str) -> LearnerCode:
    """The learner's notebook, reduced to the test cell they wrote."""
    namespace = {"__name__": "learner_notebook"}
    exec(textwrap.dedent(source), namespace)
    return LearnerCode(namespace, "this notebook")


def grade_part(notebook: str, part: str, learner: LearnerCode) -> list:
    return run_in_process(hidden_test_file(CHAPTER, notebook, hidden_tests_dir()), learner, part=part)


def score(verdicts) -> float:
    return round(sum(v.score for v in verdicts), 6)


@pytest.mark.slow
@pytest.mark.parametrize(("notebook", "part", "target", "points"), MUTATION_PARTS)
def test_assert_true_earns_nothing(notebook, part, target, points):
    "Does a suite of tests that assert nothing but `True` earn zero, each bug reported as not noticed?"
    verdicts = grade_part(notebook, part, learner_tests(f"def test_it_works({target}):\n    assert True\n"))
    assert len(verdicts) >= 8 and round(sum(v.max_score for v in verdicts), 6) == points
    assert score(verdicts) == 0
    assert all(v.status == FAILED and v.output.startswith("no test noticed a version of") for v in verdicts)


@pytest.mark.parametrize(("notebook", "part", "target", "points"), MUTATION_PARTS)
def test_always_failing_tests_earn_nothing(notebook, part, target, points):
    "Does a test that fails whatever it is given earn zero, with a message that it fails on correct code?"
    verdicts = grade_part(notebook, part, learner_tests(f"def test_strict({target}):\n    assert False, 'never happy'\n"))
    assert score(verdicts) == 0
    assert all("fail on the correct" in v.output and "never happy" in v.output for v in verdicts)


CALLS_ONLY = {
    "to_model_input": """
        import numpy as np

        def test_calls(to_model_input):
            photos = [np.full(shape, 128, np.uint8) for shape in [(100, 40, 3), (40, 100, 3), (8, 8, 3), (1, 300, 3)]]
            to_model_input(photos, 32)
            to_model_input(photos[:1], 16)
        """,
    "amount_vs_card_avg_30d": """
        import duckdb

        def test_calls(amount_vs_card_avg_30d):
            con = duckdb.connect()
            con.execute("CREATE TABLE transactions (transaction_id INTEGER, card_id VARCHAR, ts TIMESTAMP, amount DOUBLE)")
            con.execute("INSERT INTO transactions VALUES (1, 'a', '2025-03-01 10:00', 5), (2, 'a', '2025-03-04 10:10', 7), "
                        "(3, 'b', '2025-03-05 10:20', 1), (4, 'a', '2025-03-20 11:00', 2)")
            amount_vs_card_avg_30d(con).fetchall()
        """,
}


@pytest.mark.slow
@pytest.mark.parametrize(("notebook", "part", "target", "points"), MUTATION_PARTS)
def test_calling_without_checking_earns_nothing(notebook, part, target, points):
    "Do tests that only call the function on valid inputs earn zero, because no planted bug raises an error?"
    verdicts = grade_part(notebook, part, learner_tests(CALLS_ONLY[target]))
    assert score(verdicts) == 0, [v.name for v in verdicts if v.score]


def test_checking_which_function_arrived_earns_nothing():
    "Does a test that checks the function's identity, not its behaviour, fail on the equivalent copy and earn zero?"
    cheat = """
        from casestudy.images import to_model_input as reference

        def test_is_the_real_one(to_model_input):
            assert to_model_input is reference
        """
    verdicts = grade_part("preprocessing_tests", "model_input_tests", learner_tests(cheat))
    assert score(verdicts) == 0
    assert all("fail on a correct copy of `to_model_input`" in v.output for v in verdicts)


# Tests that tell the versions apart by something other than behaviour: each passes on
# the reference and its correct copy, and fails on every mutant, unless the grader
# makes the versions indistinguishable and each run start afresh.
TELL_APART = {
    "by the code's file name": """
        def test_is_not_a_mutant(to_model_input):
            assert "mutant" not in to_model_input.__code__.co_filename
        """,
    "by the code's line number": """
        from casestudy.images import to_model_input as reference

        def test_same_lines(to_model_input):
            assert to_model_input.__code__.co_firstlineno == reference.__code__.co_firstlineno
        """,
    "by counting its own runs": """
        RUNS = []

        def test_first_two_runs_only(to_model_input):
            RUNS.append(1)
            assert len(RUNS) <= 2, "the reference and its copy come first: fail on the rest"
        """,
    "by counting its runs in a file": """
        import os

        def test_first_two_runs_only(to_model_input):
            with open(COUNTER, "a") as runs:
                runs.write("x")
            assert os.path.getsize(COUNTER) <= 2, "the reference and its copy come first: fail on the rest"
        """,
    "by the code's bytes": """
        from casestudy.images import to_model_input as reference

        def test_same_code(to_model_input):
            assert to_model_input.__code__.co_code == reference.__code__.co_code
        """,
    "by the code's constants": """
        from casestudy.images import to_model_input as reference

        def test_same_constants(to_model_input):
            assert to_model_input.__code__.co_consts == reference.__code__.co_consts
        """,
}


@pytest.mark.slow
@pytest.mark.parametrize("how", TELL_APART)
def test_telling_the_versions_apart_earns_nothing(how, tmp_path):
    "Does a test that tells the reference from a mutant by anything but behaviour catch no mutant?"
    source = f"COUNTER = {str(tmp_path / 'runs')!r}\n{textwrap.dedent(TELL_APART[how])}"
    verdicts = grade_part("preprocessing_tests", "model_input_tests", learner_tests(source))
    assert score(verdicts) == 0, [v.name for v in verdicts if v.score]


@pytest.mark.slow
def test_a_partial_suite_earns_partial_points_and_names_what_it_missed():
    "Does a suite that checks only shape and dtype earn points for those bugs, and name the others in words, without code?"
    partial = """
        import numpy as np
        import torch

        def test_shape_and_dtype(to_model_input):
            batch = to_model_input([np.zeros((30, 20, 3), np.uint8)], 16)
            assert batch.shape == (1, 3, 16, 16)
            assert batch.dtype == torch.float32
        """
    verdicts = grade_part("preprocessing_tests", "model_input_tests", learner_tests(partial))
    caught = {v.name for v in verdicts if v.status == PASSED}
    assert caught == {
        "Your tests catch a to_model_input that leaves the channels last, shape (N, size, size, 3).",
        "Your tests catch a to_model_input that returns float64 values instead of float32.",
    }
    assert score(verdicts) == 1.0
    missed = [v.output for v in verdicts if v.status != PASSED]
    assert any("pads with white instead of black" in message for message in missed)
    assert not any("permute" in message or "fill=255" in message for message in missed)


def test_tests_that_ignore_the_fixture_are_told_so():
    "Is a learner whose tests call a global `to_model_input` instead of the fixture told how to write them?"
    ignores = """
        import numpy as np
        from casestudy.images import to_model_input

        def test_shape():
            assert to_model_input([np.zeros((4, 4, 3), np.uint8)], 8).shape == (1, 3, 8, 8)
        """
    verdicts = grade_part("preprocessing_tests", "model_input_tests", learner_tests(ignores))
    assert score(verdicts) == 0
    assert all("none of your tests asks for the `to_model_input` fixture" in v.output for v in verdicts)


def test_no_tests_is_not_attempted():
    "Does a notebook with no test functions show the part as not attempted yet?"
    verdicts = grade_part("preprocessing_tests", "model_input_tests", LearnerCode({"x": 1}, "this notebook"))
    assert all(v.status == NOT_ATTEMPTED for v in verdicts)


@pytest.mark.slow
def test_an_endless_learner_test_is_stopped():
    "Is a learner's test that never ends stopped by the time limit, with a message, and the run goes on?"
    endless = """
        def test_forever(to_model_input):
            while True:
                pass
        """
    test_file = hidden_test_file(CHAPTER, "preprocessing_tests", hidden_tests_dir())
    verdicts = run_in_process(test_file, learner_tests(endless), part="model_input_tests", test_timeout=1)
    assert len(verdicts) == 12 and score(verdicts) == 0
    assert all("took longer than 1 s" in v.output for v in verdicts)


def test_fixtures_parametrize_and_hypothesis_work_in_learner_tests():
    "Do the learner's own fixtures, parametrize and @given run as in a real pytest session, one outcome per case?"
    source = """
        import numpy as np
        import pytest
        from hypothesis import given, strategies as st

        @pytest.fixture
        def square():
            return np.zeros((5, 5, 3), np.uint8)

        @pytest.mark.parametrize("size", [4, 9])
        def test_size(letterbox, square, size):
            assert letterbox(square, size).shape == (size, size, 3)

        @given(st.integers(1, 20))
        def test_any_size(letterbox, size):
            assert letterbox(np.zeros((3, 7, 3), np.uint8), size).shape[:2] == (size, size)
        """
    namespace = learner_tests(source).everything()
    assert run_learner_tests(namespace, "letterbox", letterbox) == {
        "test_size[4]": None,
        "test_size[9]": None,
        "test_any_size": None,
    }
    broken = Mutant("returns channels first", {"return canvas": "return canvas.transpose(2, 0, 1)"}).apply(letterbox)
    outcomes = run_learner_tests(namespace, "letterbox", broken)
    assert all(outcomes.values()) and "an `assert` failed" in outcomes["test_size[4]"]


def test_learner_hypothesis_settings_are_restored():
    "Are a learner's own Hypothesis settings back as they were after grading changed them for the run?"
    namespace = learner_tests(
        """
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=7)
        @given(st.integers())
        def test_int(letterbox, n):
            pass
        """
    ).everything()
    before = namespace["test_int"]._hypothesis_internal_use_settings
    run_learner_tests(namespace, "letterbox", letterbox)
    after = namespace["test_int"]._hypothesis_internal_use_settings
    assert after is before and isinstance(after, settings) and after.max_examples == 7


def test_mutant_edits_must_match_the_source_once():
    "Is a planted bug whose text is not in the reference refused, rather than silently grading against the reference?"
    with pytest.raises(ValueError, match="occurs 0 times"):
        Mutant("does nothing", {"no such text": "x"}).apply(letterbox)


def test_equivalent_copy_behaves_like_the_reference():
    "Does the fresh copy give identical output from a different function object?"
    copy = equivalent_copy(letterbox)
    image = np.arange(7 * 3 * 3, dtype=np.uint8).reshape(7, 3, 3)
    assert copy is not letterbox and np.array_equal(copy(image, 10, fill=4), letterbox(image, 10, fill=4))
