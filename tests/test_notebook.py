"""notebook.Exercise: the self-check, hints and the score that nbgrader reads."""

import pytest

from autograder.notebook import Exercise
from tests.helpers import HIDDEN_NUMBERS


@pytest.fixture
def exercise(tmp_path, monkeypatch):
    (tmp_path / "chapter").mkdir()
    (tmp_path / "chapter" / "test_numbers.py").write_text(HIDDEN_NUMBERS)
    monkeypatch.setenv("AUTOGRADER_HIDDEN_TESTS", str(tmp_path))
    return Exercise("chapter/numbers")


def double(x):  # found by check() in this module's globals, as in a notebook
    return 2 * x


def halve(x):
    raise NotImplementedError()


def test_check_words_success_carefully(exercise, capsys):
    "Does a passing self-check say the visible tests pass, never that all tests passed?"
    exercise.check("double")
    out = capsys.readouterr().out
    assert "✓ Doubles a positive number." in out
    assert "The visible tests pass" in out
    assert "all tests" not in out.lower()
    assert "Doubles a negative number." not in out, "hidden tests must not be run or shown by the self-check"


def test_check_says_not_attempted(exercise, capsys):
    "Does the self-check of an untouched part say it is not attempted yet, with what to do?"
    exercise.check("halve")
    out = capsys.readouterr().out
    assert "not attempted yet" in out and "NotImplementedError" in out


def test_check_of_unknown_part(exercise, capsys, monkeypatch):
    "Is a misspelt part name reported at once, without running any test, with the names of the parts?"

    def no_run(*args, **kwargs):
        raise AssertionError("a misspelt part ran the tests")

    monkeypatch.setattr("autograder.notebook.run_in_process", no_run)
    exercise.check("dubble")
    out = capsys.readouterr().out
    assert "no part named 'dubble'" in out and "double" in out and "halve" in out, out


def test_score_counts_hidden_tests_too(exercise, capsys):
    "Does score() add up every test of the part, hidden ones included?"
    assert exercise.score("double") == 3.0  # 2 points visible + 1 hidden
    assert exercise.score("halve") == 0.0


def test_hints_come_one_at_a_time():
    "Does each hint() call reveal one more hint, and then repeat them all?"
    exercise = Exercise("data_infrastructure/warehouse_queries")
    outputs = []
    for _ in range(4):
        from contextlib import redirect_stdout
        from io import StringIO

        with redirect_stdout(StringIO()) as out:
            exercise.hint("open_warehouse")
        outputs.append(out.getvalue())
    assert outputs[0].startswith("Hint 1 of 3") and outputs[2].startswith("Hint 3 of 3")
    assert "last hint" in outputs[3]


def test_exercise_name_must_name_chapter_and_notebook():
    "Is a malformed exercise name rejected with an example of the right form?"
    with pytest.raises(ValueError, match="chapter/notebook"):
        Exercise("warehouse_queries")
