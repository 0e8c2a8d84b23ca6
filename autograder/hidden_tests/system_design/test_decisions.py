"""Hidden tests of exercises/system_design/decisions.ipynb.

The expected thresholds are found here, by trying every candidate with the given cost
rules (``casestudy.costs``); the bootstrap is checked against what statistics says of
it (where its interval must lie, how wide it must be), not against one sequence of
random numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from autograder.judge import type_name
from casestudy.costs import FraudCosts, reviewed, total_cost

# --- Part 1: choose_threshold ---------------------------------------------------------------------


def cheapest(scores, is_fraud, amounts, days, costs: FraudCosts) -> tuple[float, float]:
    """(threshold, cost): every candidate tried, highest first, so that a tie keeps the highest."""
    best = (math.inf, total_cost(is_fraud, amounts, np.zeros(len(scores), bool), costs))
    for threshold in np.unique(scores)[::-1]:
        cost = total_cost(is_fraud, amounts, reviewed(scores, days, threshold, costs.daily_capacity), costs)
        if cost < best[1]:
            best = (float(threshold), cost)
    return best


def threshold_of(learner, scores, is_fraud, amounts, days, costs) -> float:
    threshold = learner.choose_threshold(scores, is_fraud, amounts, days, costs)
    assert isinstance(threshold, float), f"choose_threshold should return a float, but returned a {type_name(threshold)}"
    return threshold


def assert_cheapest(learner, scores, is_fraud, amounts, days, costs, case: str) -> None:
    want, want_cost = cheapest(scores, is_fraud, amounts, days, costs)
    got = threshold_of(learner, scores, is_fraud, amounts, days, costs)
    got_cost = total_cost(is_fraud, amounts, reviewed(scores, days, got, costs.daily_capacity), costs)
    assert got == want, (
        f"{case}: the cheapest threshold is {want:g} (total cost {want_cost:g}); yours, {got:g}, costs {got_cost:g}"
        + (" (a tie: return the highest of the cheapest)" if math.isclose(got_cost, want_cost) else "")
    )


@pytest.mark.graded("choose_threshold", points=1, visible=True)
def test_more_flags_than_the_analysts_can_review_save_nothing(learner):
    "With room for one review a day, flagging below the day's top score costs more and catches nothing more."
    scores = np.array([0.9, 0.8, 0.7, 0.2])
    is_fraud = np.array([0, 1, 1, 0])
    amounts = np.array([50.0, 100.0, 100.0, 10.0])
    days = np.array([1, 1, 1, 1])
    costs = FraudCosts(chargeback_fee=20.0, review_cost=3.0, daily_capacity=1)
    assert_cheapest(learner, scores, is_fraud, amounts, days, costs, "one review a day, the top score legitimate")


@pytest.mark.graded("choose_threshold", points=1, visible=True)
def test_the_fee_counts_and_ties_keep_the_highest_threshold(learner):
    "Reviews small frauds because of the chargeback fee; of equally cheap thresholds, returns the highest."
    scores = np.array([0.6, 0.5, 0.4, 0.3, 0.1])
    is_fraud = np.array([1, 0, 1, 0, 0])
    amounts = np.array([2.0, 30.0, 2.0, 30.0, 30.0])
    days = np.array([1, 1, 2, 2, 2])
    costs = FraudCosts(chargeback_fee=20.0, review_cost=3.0, daily_capacity=5)
    assert_cheapest(learner, scores, is_fraud, amounts, days, costs, "two small frauds, a 20 fee, reviews at 3")
    assert_cheapest(learner, scores, is_fraud, amounts, days, FraudCosts(0.0, 3.0, 5), "the same payments without a fee")
    # With room for one review, 0.9, 0.8 and 0.7 all review the same payment: they cost the same.
    one_a_day = FraudCosts(chargeback_fee=20.0, review_cost=3.0, daily_capacity=1)
    scores, is_fraud, amounts = np.array([0.9, 0.8, 0.7]), np.array([1, 0, 0]), np.array([100.0, 5.0, 5.0])
    assert_cheapest(learner, scores, is_fraud, amounts, np.zeros(3, int), one_a_day, "three thresholds, one cost")


@pytest.mark.graded("choose_threshold", points=1)
def test_the_cheapest_threshold_on_random_days(learner):
    "Finds the cheapest threshold on random days of payments, for costs and capacities the notebook never used."
    rng = np.random.default_rng(11)
    for case, costs in enumerate([FraudCosts(55.0, 7.0, 3), FraudCosts(5.0, 1.0, 12), FraudCosts(20.0, 40.0, 2)]):
        n = 400
        is_fraud = (rng.random(n) < 0.08).astype(int)
        scores = np.clip(rng.normal(0.2 + 0.5 * is_fraud, 0.2), 0, 1).round(3)  # rounded: ties
        amounts = rng.gamma(2.0, 40.0, n).round(2)
        days = rng.integers(0, 10, n)
        assert_cheapest(learner, scores, is_fraud, amounts, days, costs, f"random case {case + 1} ({costs})")


@pytest.mark.graded("choose_threshold", points=1)
def test_without_fraud_nothing_is_flagged_and_inputs_are_left_alone(learner):
    "Flags nothing (math.inf) when no payment is fraud, and leaves the arrays it was given unchanged."
    scores = np.array([0.3, 0.9, 0.1])
    given = scores.copy()
    threshold = threshold_of(learner, scores, np.zeros(3, int), np.ones(3), np.zeros(3, int), FraudCosts())
    assert threshold == math.inf, f"with no fraud every review is wasted: return math.inf, not {threshold:g}"
    assert np.array_equal(scores, given), "choose_threshold changed the scores it was given: work on a copy"


# --- Part 2: calibration_error --------------------------------------------------------------------


def error_of(learner, scores, labels, bins=10) -> float:
    error = learner.calibration_error(np.asarray(scores, dtype=float), np.asarray(labels), bins)
    assert isinstance(error, float), f"calibration_error should return a float, but returned a {type_name(error)}"
    return error


@pytest.mark.graded("calibration_error", points=1, visible=True)
def test_weights_each_bin_by_its_payments(learner):
    "Weights each bin's gap by its share of the payments, skips empty bins, and puts a score of 1.0 in the last bin."
    # Bin [0.1, 0.2): 8 payments scored 0.1, 2 frauds (gap 0.15); bin [0.9, 1]: 2 scored 1.0, 1 fraud (gap 0.5).
    scores = [0.1] * 8 + [1.0] * 2
    labels = [1, 1, 0, 0, 0, 0, 0, 0] + [1, 0]
    got = error_of(learner, scores, labels)
    assert math.isclose(got, 0.8 * 0.15 + 0.2 * 0.5, abs_tol=1e-9), (
        f"8 payments scored 0.1 with 2 frauds and 2 scored 1.0 with 1 fraud: ECE = 0.8 * 0.15 + 0.2 * 0.5 = 0.22; got {got:g}"
    )


@pytest.mark.graded("calibration_error", points=1, visible=True)
def test_calibrated_scores_have_almost_no_error_and_bad_input_is_refused(learner):
    "Gives nearly 0 for scores that are their own fraud rate, and refuses empty input and scores outside [0, 1]."
    rng = np.random.default_rng(5)
    scores = rng.random(20_000)
    labels = (rng.random(20_000) < scores).astype(int)
    got = error_of(learner, scores, labels)
    assert got < 0.02, f"scores drawn as their own probabilities should have an ECE near 0; got {got:.3f}"
    for bad, why in (([], "no scores"), ([0.5, 1.5], "a score of 1.5"), ([-0.1, 0.5], "a score of -0.1")):
        with pytest.raises(ValueError):
            learner.calibration_error(np.array(bad, dtype=float), np.zeros(len(bad), int), 10)
            pytest.fail(f"calibration_error should raise ValueError for {why}")


@pytest.mark.graded("calibration_error", points=1)
def test_bins_are_equal_width_and_their_number_counts(learner):
    "Uses `bins` equal-width bins: the same scores give a different error with 2 bins than with 10."
    scores = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]
    labels = [0, 0, 0, 1, 0, 1, 1, 1, 1, 1]
    for bins in (10, 2, 4):
        index = np.minimum((np.array(scores) * bins).astype(int), bins - 1)
        want = sum(
            (index == k).mean() * abs(np.array(scores)[index == k].mean() - np.array(labels)[index == k].mean())
            for k in np.unique(index)
        )
        got = error_of(learner, scores, labels, bins)
        assert math.isclose(got, want, abs_tol=1e-9), (
            f"with bins={bins}, equal-width bins of [0, 1] give an ECE of {want:.4f}; got {got:.4f}"
        )


# --- Part 3: compare_models -----------------------------------------------------------------------


def compared(learner, a, b, resamples=2000, seed=0):
    result = learner.compare_models(np.asarray(a, dtype=float), np.asarray(b, dtype=float), resamples, seed)
    assert len(result) == 4, f"compare_models should return a Comparison of 4 fields, got {result!r}"
    difference, low, high, decision = result
    assert all(isinstance(v, float) for v in (difference, low, high)), (
        f"difference, low and high should be floats; got {[type_name(v) for v in (difference, low, high)]}"
    )
    assert decision in ("switch to b", "keep a"), f'decision should be "switch to b" or "keep a", not {decision!r}'
    return difference, low, high, decision


def shared_days(seed: int, n: int, saving: float, noise: float = 5.0):
    """Daily costs of two models facing the same days: a shared swing of ±100, and a little noise of their own."""
    rng = np.random.default_rng(seed)
    day = rng.normal(500, 100, n)
    return day + rng.normal(0, noise, n), day - saving + rng.normal(0, noise, n)


@pytest.mark.graded("compare_models", points=1, visible=True)
def test_a_clear_saving_switches_and_a_tie_keeps(learner):
    "Switches to b when it saves on nearly every day; keeps a when both cost the same, or b's saving is within the noise."
    a, b = shared_days(1, 30, saving=20.0)
    difference, low, high, decision = compared(learner, a, b)
    assert math.isclose(difference, float(np.mean(b - a)), rel_tol=1e-9), (
        f"difference should be the mean of b - a over the days, {np.mean(b - a):.3f}; got {difference:.3f}"
    )
    assert low <= difference <= high < 0 and decision == "switch to b", (
        f"b saves about 20 a day, every day: the interval should lie below 0 and the decision be 'switch to b'; "
        f"got [{low:.2f}, {high:.2f}] and {decision!r}"
    )
    same = compared(learner, a, a)
    assert same[1:] == (0.0, 0.0, "keep a"), f"two identical models: the interval is [0, 0] and the decision 'keep a'; got {same}"
    rng = np.random.default_rng(3)
    a = rng.normal(300, 40, 60)
    b = a + rng.normal(-2, 30, 60)  # b is cheaper on average here, by less than the days vary
    difference, low, high, decision = compared(learner, a, b)
    assert low < 0 < high and decision == "keep a", (
        f"b is cheaper by {-difference:.2f} a day on average, but the interval [{low:.2f}, {high:.2f}] should include 0 "
        f"(the days vary by ±30): decide on the interval, not on the mean; got {decision!r}"
    )


@pytest.mark.graded("compare_models", points=1, visible=True)
def test_the_bootstrap_is_paired_by_day(learner):
    "Resamples days, the same for both models: days that swing by ±100 for both do not widen the interval."
    a, b = shared_days(2, 60, saving=3.0, noise=2.0)
    _, low, high, decision = compared(learner, a, b)
    paired_width = 2 * 1.96 * np.std(b - a) / np.sqrt(len(a))
    assert high - low < 2 * paired_width, (
        f"the models face the same days, so their difference varies little (the interval should be about "
        f"{paired_width:.1f} wide); yours is {high - low:.1f} wide: resample the days once for both models"
    )
    assert decision == "switch to b", f"b saves 3 a day on every day (±2): the decision should be 'switch to b', not {decision!r}"


@pytest.mark.graded("compare_models", points=1)
def test_the_interval_has_its_coverage_and_the_seed_repeats_it(learner):
    "Gives a 95% interval of the right width around the mean difference, the same for the same seed; refuses bad input."
    rng = np.random.default_rng(7)
    a = rng.normal(300, 40, 200)
    b = a + rng.normal(-1.0, 30, 200)  # a saving far smaller than the noise
    first = compared(learner, a, b, resamples=4000, seed=3)
    assert compared(learner, a, b, resamples=4000, seed=3) == first, "the same arguments should give the same result"
    difference, low, high, decision = first
    width = 2 * 1.96 * np.std(b - a) / np.sqrt(len(a))
    assert 0.8 * width < high - low < 1.2 * width and low < difference < high, (
        f"a 95% percentile interval of the mean difference over 200 days should be about {width:.2f} wide around "
        f"{difference:.2f}; got [{low:.2f}, {high:.2f}] (the 2.5th and 97.5th percentiles of the resampled means?)"
    )
    assert decision == "keep a", f"the interval [{low:.2f}, {high:.2f}] includes 0: the decision should be 'keep a'"
    for bad_a, bad_b, why in (([1.0, 2.0], [1.0], "unequal lengths"), ([1.0], [2.0], "a single day")):
        with pytest.raises(ValueError):
            learner.compare_models(np.array(bad_a), np.array(bad_b), 100, 0)
            pytest.fail(f"compare_models should raise ValueError for {why}")


@pytest.mark.graded("compare_models", points=1)
def test_a_dearer_challenger_is_not_adopted(learner):
    "Keeps a when b costs more, however sure the interval is."
    a, b = shared_days(4, 40, saving=-15.0)
    difference, low, high, decision = compared(learner, a, b)
    assert 0 < low <= difference <= high and decision == "keep a", (
        f"b costs about 15 more a day: the interval should lie above 0 and the decision be 'keep a'; "
        f"got [{low:.2f}, {high:.2f}] and {decision!r}"
    )
