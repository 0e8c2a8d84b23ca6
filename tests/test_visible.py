"""visible-tests: a learners' copy keeps the self-checks and loses the hidden tests."""

import shutil

import pytest

from autograder.notebook import Exercise
from autograder.paths import hidden_tests_dir
from autograder.visible import keep_visible_tests, strip_hidden_tests
from tests.helpers import hidden_test_points


def test_only_visible_tests_remain(tmp_path):
    "Are hidden tests removed, with their decorators, while visible tests, fixtures and helpers stay?"
    source = """import pytest

def helper():
    return 1

@pytest.mark.graded("a", points=2, visible=True)
def test_seen(learner):
    "Seen."
    assert helper() == 1, "helper"

@pytest.mark.graded("a", points=1)
def test_secret(learner):
    "Secret."
    assert False, "secret"
"""
    stripped, removed = keep_visible_tests(source)
    assert removed == 1
    assert "test_secret" not in stripped and "secret" not in stripped
    assert "def helper" in stripped and "test_seen" in stripped


@pytest.mark.slow
def test_self_check_works_on_a_learners_copy(tmp_path, monkeypatch, capsys):
    "Does the self-check still run on a copy whose hidden tests were stripped?"
    copy = tmp_path / "hidden_tests"
    shutil.copytree(hidden_tests_dir(), copy)
    assert strip_hidden_tests(copy) > 0
    for path in copy.rglob("test_*.py"):
        points, visible = hidden_test_points(path)
        assert all(visible.values())
    monkeypatch.setenv("AUTOGRADER_HIDDEN_TESTS", str(copy))
    Exercise("data_infrastructure/training_data").check("shuffled")
    out = capsys.readouterr().out
    assert "(2 visible tests)" in out and "does not define `shuffled`" in out
