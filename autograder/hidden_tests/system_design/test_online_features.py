"""Hidden tests of exercises/system_design/online_features.ipynb.

The reference is the data chapter's SQL (``casestudy.features``), run on the same
payments: the online features must equal it payment for payment. Hypothesis writes the
streams, from gaps chosen to land on the windows' edges (one microsecond, an hour, thirty
days) and on the same moment, so that ties arrive in whatever order it picked. Its
examples are derandomized, so that every learner is graded on the same streams, and it
keeps no database: grading writes nothing beside the tests.
"""

from __future__ import annotations

import datetime
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.judge import type_name
from casestudy.features import amount_vs_card_avg_30d, card_velocity
from casestudy.warehouse import tiny_warehouse

START = datetime.datetime(2025, 3, 1, 9, 0)
GAPS = [
    datetime.timedelta(0),
    datetime.timedelta(microseconds=1),
    datetime.timedelta(seconds=1),
    datetime.timedelta(minutes=30),
    datetime.timedelta(hours=1) - datetime.timedelta(microseconds=1),
    datetime.timedelta(hours=1),
    datetime.timedelta(hours=1, microseconds=1),
    datetime.timedelta(days=29, hours=23),
    datetime.timedelta(days=30),
    datetime.timedelta(days=30, microseconds=1),
]
VELOCITY = ("n_prev_1h", "amount_prev_1h")
HISTORY = ("n_prev_30d", "avg_prev_30d", "amount_vs_card_avg_30d")
STREAMS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def streams(draw) -> list[tuple[int, int, datetime.datetime, float]]:
    """(transaction_id, card_id, ts, amount) in arrival order: by time, ties in any order, ids not in arrival order."""
    n = draw(st.integers(1, 12))
    gaps = draw(st.lists(st.sampled_from(GAPS), min_size=n, max_size=n))
    cards = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    amounts = draw(st.lists(st.sampled_from([0.5, 1.0, 12.5, 80.0, 999.99]), min_size=n, max_size=n))
    ids = draw(st.permutations(range(1, n + 1)))
    moments = [START + sum(gaps[: i + 1], datetime.timedelta(0)) for i in range(n)]
    return list(zip(ids, cards, moments, amounts, strict=True))


def sql_features(stream) -> dict[int, dict]:
    """The SQL features of every payment of ``stream``, by transaction_id."""
    ids, cards, moments, amounts = zip(*stream, strict=True)
    con = tiny_warehouse(transactions={"transaction_id": ids, "card_id": cards, "ts": moments, "amount": amounts})
    both = card_velocity(con).df().merge(amount_vs_card_avg_30d(con).df(), on="transaction_id")
    both = both.astype(object).where(both.notna(), None)
    return {int(row["transaction_id"]): row for row in both.to_dict("records")}


def observed(learner, stream) -> list[dict]:
    online = learner.OnlineFeatures()
    features = []
    for _, card, ts, amount in stream:
        values = online.observe(card, ts, amount)
        assert isinstance(values, dict), f"observe should return a dict, but returned a {type_name(values)}"
        features.append(values)
    return features


def same(want, got) -> bool:
    if want is None or got is None:
        return want is None and got is None
    return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-9)


def describe(stream) -> str:
    return "; ".join(f"card {card} at {ts:%Y-%m-%d %H:%M:%S.%f} for {amount:g}" for _, card, ts, amount in stream)


def assert_features(learner, stream, names, case: str) -> None:
    want = sql_features(stream)
    for i, (values, (transaction, card, ts, _)) in enumerate(zip(observed(learner, stream), stream, strict=True)):
        for name in names:
            assert name in values, f"{case}: observe returned no {name!r} (it returned the keys {sorted(values)})"
            wanted = int if name.startswith("n_") else float
            assert values[name] is None or (isinstance(values[name], wanted) and not isinstance(values[name], bool)), (
                f"{case}: observe returned {name} as a {type_name(values[name])}; return a Python {wanted.__name__} "
                f"({wanted.__name__}(...) turns a NumPy number into one)"
            )
            assert same(want[transaction][name], values[name]), (
                f"{case}: for payment {i + 1} of the stream [{describe(stream)}] (card {card} at {ts:%H:%M:%S.%f} "
                f"on {ts:%Y-%m-%d}), {name} = {values[name]!r}, but the SQL gives {want[transaction][name]!r}"
            )


# --- Part 1: online_velocity -----------------------------------------------------------------------


@pytest.mark.graded("online_velocity", points=1, visible=True)
def test_a_first_payment_and_payments_at_the_same_moment(learner):
    "A card's first payment has no history; a payment at the very same moment as another is not before it."
    stream = [(1, 7, START, 10.0), (2, 7, START, 20.0), (3, 7, START + datetime.timedelta(seconds=1), 5.0)]
    assert_features(learner, stream, VELOCITY, "one card, two payments at the same moment, then one a second later")


@pytest.mark.graded("online_velocity", points=1, visible=True)
def test_the_hour_starts_exactly_one_hour_before(learner):
    "A payment exactly one hour before counts; one a microsecond earlier does not; other cards never count."
    hour = datetime.timedelta(hours=1)
    stream = [
        (1, 7, START - datetime.timedelta(microseconds=1), 40.0),
        (2, 7, START, 10.0),
        (3, 8, START + datetime.timedelta(minutes=30), 99.0),
        (4, 7, START + hour, 25.0),
    ]
    assert_features(learner, stream, VELOCITY, "window edges")


@pytest.mark.graded("online_velocity", points=1)
@STREAMS
@given(stream=streams())
def test_velocity_equals_the_sql_on_generated_streams(learner, stream):
    "On generated streams of three cards (ties in any order, gaps on the window's edges), equals card_velocity's SQL."
    assert_features(learner, stream, VELOCITY, "a generated stream")


@pytest.mark.graded("online_velocity", points=1)
def test_a_payment_older_than_the_cards_last_is_refused(learner):
    "A payment that arrives after a later one of the same card raises ValueError and changes nothing; other cards' clocks differ."
    online = learner.OnlineFeatures()
    online.observe(7, START, 10.0)
    online.observe(8, START - datetime.timedelta(hours=2), 10.0)  # another card's clock: fine
    with pytest.raises(ValueError):
        online.observe(7, START - datetime.timedelta(seconds=1), 10.0)
        pytest.fail("card 7 paid at 09:00:00; a payment of card 7 at 08:59:59 that arrives after it should raise ValueError")
    after = online.observe(7, START + datetime.timedelta(minutes=1), 10.0)["n_prev_1h"]
    assert after == 1, f"the refused payment should leave the state unchanged: one payment in the hour before, not {after}"


# --- Part 2: online_history ------------------------------------------------------------------------


@pytest.mark.graded("online_history", points=1, visible=True)
def test_the_thirty_days_before(learner):
    "The 30-day count and mean: None without history, payments exactly 30 days before counted, the payment itself not."
    month = datetime.timedelta(days=30)
    stream = [
        (1, 7, START, 30.0),
        (2, 7, START + datetime.timedelta(days=1), 90.0),
        (3, 7, START + month, 60.0),  # the first payment, exactly 30 days before, still counts
        (4, 7, START + month + datetime.timedelta(microseconds=1), 60.0),  # now it does not
    ]
    assert_features(learner, stream, HISTORY, "one card over thirty days")


@pytest.mark.graded("online_history", points=1, visible=True)
def test_the_state_forgets_what_no_window_needs(learner):
    "After a year of daily payments of two cards and one of a third, holds each card's last 30 days: 31 + 31 + 1."
    online = learner.OnlineFeatures()
    online.observe(9, START, 10.0)
    for day in range(365):
        for card in (7, 8):
            online.observe(card, START + datetime.timedelta(days=day), 10.0)
    held = online.remembered()
    assert isinstance(held, int), f"remembered should return an int, but returned a {type_name(held)}"
    assert held == 63, (
        f"the state holds {held} payments, where it needs 63: for cards 7 and 8, the 31 payments of the last 30 days "
        "(one exactly 30 days before the newest still counts); for card 9, its one payment. Older payments are never "
        "in a window again, and a service that keeps them runs out of memory"
    )


@pytest.mark.graded("online_history", points=1)
@STREAMS
@given(stream=streams())
def test_history_equals_the_sql_on_generated_streams(learner, stream):
    "On generated streams (ties, gaps of thirty days give or take a microsecond), equals amount_vs_card_avg_30d's SQL."
    assert_features(learner, stream, HISTORY, "a generated stream")


# --- Part 3: feature_skew --------------------------------------------------------------------------


def skew_of(learner, batch: pd.DataFrame, online: pd.DataFrame, rtol: float = 1e-9) -> pd.DataFrame:
    report = learner.feature_skew(batch, online, rtol)
    assert isinstance(report, pd.DataFrame), f"feature_skew should return a DataFrame, but returned a {type_name(report)}"
    features = [c for c in batch.columns if c != "transaction_id"]
    assert list(report.index) == features, f"one row per feature, in batch's order {features}; got {list(report.index)}"
    missing = {"mismatch_rate", "max_abs_diff", "worst_transaction"} - set(report.columns)
    assert not missing, f"the report has no column {sorted(missing)} (its columns: {list(report.columns)})"
    return report


def is_none(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


@pytest.mark.graded("feature_skew", points=1, visible=True)
def test_rates_differences_and_the_worst_payment(learner):
    "Counts the share of payments that differ, the largest difference and its payment, matched by id (not by row)."
    # avg is missing on both sides for payment 1, as for a card's first payment: equal, not a mismatch.
    batch = pd.DataFrame({"transaction_id": [1, 2, 3, 4], "n_prev_1h": [0, 1, 2, 0], "avg": [None, 20.0, 30.0, 40.0]})
    online = pd.DataFrame({"transaction_id": [4, 3, 2, 1], "n_prev_1h": [0, 3, 1, 0], "avg": [40.0, 30.0, 20.0, None]})
    report = skew_of(learner, batch, online)
    assert math.isclose(report.loc["n_prev_1h", "mismatch_rate"], 0.25), (
        f"one payment of four differs in n_prev_1h (transaction 3: 2 against 3); mismatch_rate = "
        f"{report.loc['n_prev_1h', 'mismatch_rate']!r}: did you compare rows by position, not by transaction_id?"
    )
    assert math.isclose(report.loc["n_prev_1h", "max_abs_diff"], 1.0), "n_prev_1h's largest difference is 1"
    assert report.loc["n_prev_1h", "worst_transaction"] == 3, "n_prev_1h's worst payment is transaction 3"
    assert report.loc["avg", "mismatch_rate"] == 0 and report.loc["avg", "max_abs_diff"] == 0, (
        "avg never differs: missing on both sides (payment 1) is equal"
    )
    assert is_none(report.loc["avg", "worst_transaction"]), "with no mismatch, worst_transaction is None"


@pytest.mark.graded("feature_skew", points=1)
def test_missing_values_and_the_tolerance(learner):
    "Missing on both sides is equal, on one side a mismatch that is the worst; differences within rtol do not count."
    batch = pd.DataFrame({"transaction_id": [1, 2, 3, 4], "ratio": [None, 2.0, 1.0, 5.0]})
    online = pd.DataFrame({"transaction_id": [1, 2, 3, 4], "ratio": [None, None, 1.0 + 1e-12, 9.0]})
    report = skew_of(learner, batch, online, rtol=1e-9)
    row = report.loc["ratio"]
    assert math.isclose(row["mismatch_rate"], 0.5), (
        f"payments 2 (a value against a missing one) and 4 (5 against 9) differ, 1 and 3 do not: 0.5; got {row['mismatch_rate']!r}"
    )
    assert math.isclose(row["max_abs_diff"], 4.0), f"the largest difference between two values is 4; got {row['max_abs_diff']!r}"
    assert row["worst_transaction"] == 2, (
        "a value missing online is a worse skew than any difference between two values: the worst payment is 2"
    )


@pytest.mark.graded("feature_skew", points=1)
def test_tables_that_cannot_be_compared_are_refused(learner):
    "Raises ValueError when the payments differ, repeat or online lacks a feature; ties for the worst keep the smallest id."
    batch = pd.DataFrame({"transaction_id": [1, 2, 3], "n": [0, 0, 0]})
    with pytest.raises(ValueError):
        learner.feature_skew(batch, pd.DataFrame({"transaction_id": [1, 2, 3, 3], "n": [0, 0, 0, 0]}), 1e-9)
        pytest.fail("online holds payment 3 twice (an at-least-once log): feature_skew should raise ValueError")
    with pytest.raises(ValueError):
        learner.feature_skew(batch, pd.DataFrame({"transaction_id": [1, 2, 4], "n": [0, 0, 0]}), 1e-9)
        pytest.fail("payment 3 is only in batch and 4 only online: feature_skew should raise ValueError")
    with pytest.raises(ValueError):
        learner.feature_skew(batch, pd.DataFrame({"transaction_id": [1, 2, 3], "m": [0, 0, 0]}), 1e-9)
        pytest.fail("online has no column n, a feature of batch: feature_skew should raise ValueError")
    report = skew_of(learner, batch, pd.DataFrame({"transaction_id": [3, 2, 1], "n": [1, 1, 0]}))
    assert report.loc["n", "worst_transaction"] == 2, "payments 2 and 3 differ by 1 each: the smallest id, 2, is the worst"
    assert np.isclose(report.loc["n", "mismatch_rate"], 2 / 3), "two payments of three differ"
