"""testing: result-set comparisons that tell the learner what is wrong."""

import pandas as pd
import pytest

from autograder.tables import assert_same_rows

EXPECTED = pd.DataFrame({"category": ["travel", "grocery"], "n": [5, 9], "rate": [0.5, 0.1]})


def test_wrong_value_is_reported_by_key():
    "Is a wrong value reported as that value, by key, even when it also changes the order?"
    got = pd.DataFrame({"category": ["grocery", "travel"], "n": [9, 50], "rate": [0.1, 0.05]})
    with pytest.raises(AssertionError, match=r"column `n` is wrong \(row with category = 'travel'\): expected 5, got 50"):
        assert_same_rows(got, EXPECTED, "q", key="category")


def test_right_rows_in_wrong_order():
    "Are the right rows in the wrong order reported as an ordering problem?"
    with pytest.raises(AssertionError, match="right rows in the wrong order"):
        assert_same_rows(EXPECTED.iloc[::-1], EXPECTED, "q", key="category")
    assert_same_rows(EXPECTED.iloc[::-1], EXPECTED, "q", key="category", ordered=False)


def test_floats_within_tolerance_and_nulls_equal():
    "Do floats compare within the tolerance, and does NULL equal NULL but not a number?"
    expected = pd.DataFrame({"x": [1.0, None]})
    assert_same_rows(pd.DataFrame({"x": [1.0 + 1e-12, None]}), expected, "q")
    with pytest.raises(AssertionError, match="expected NULL, got 0.0"):
        assert_same_rows(pd.DataFrame({"x": [1.0, 0.0]}), expected, "q")


def test_missing_row_is_named():
    "Is a missing key named when the row counts agree but the keys do not?"
    got = pd.DataFrame({"category": ["travel", "fuel"], "n": [5, 9], "rate": [0.5, 0.1]})
    with pytest.raises(AssertionError, match="one row per category"):
        assert_same_rows(got, EXPECTED, "q", key="category")
