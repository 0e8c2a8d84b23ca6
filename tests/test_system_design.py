"""The system-design chapter's given code: the business's costs, the labelled payments, drift in the data."""

import numpy as np

from casestudy.costs import FraudCosts, reviewed, total_cost
from casestudy.training import labelled_payments
from casestudy.warehouse import generate_warehouse
from tests.helpers import typical_mistakes_tests


def test_analysts_review_the_highest_flagged_scores_of_each_day_up_to_their_capacity():
    "Are at most `capacity` flagged payments reviewed per day, highest score first, and none below the threshold?"
    scores = np.array([0.9, 0.1, 0.8, 0.95, 0.5, 0.7])
    days = np.array([1, 1, 1, 2, 2, 1])
    assert reviewed(scores, days, 0.6, 2).tolist() == [True, False, True, True, False, False]
    assert reviewed(scores, days, 0.0, 1).tolist() == [True, False, False, True, False, False]
    assert not reviewed(scores, days, 1.0, 5).any() and reviewed([], [], 0.5, 3).size == 0


def test_a_missed_fraud_costs_its_amount_and_the_fee_and_a_review_its_cost():
    "Does the cost count each unreviewed fraud's amount plus the fee, and every review?"
    costs = FraudCosts(chargeback_fee=20, review_cost=3)
    is_fraud, amounts = np.array([1, 0, 1, 0]), np.array([100.0, 5.0, 40.0, 7.0])
    assert total_cost(is_fraud, amounts, np.array([1, 1, 0, 0]), costs) == 40 + 20 + 2 * 3
    assert total_cost(is_fraud, amounts, np.zeros(4), costs) == 140 + 40


CHAPTER = "system_design"

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start).
# Each mistake is one that the chapter's lessons or hints warn about, and a visible test catches it.
MISTAKES = {
    "threshold_ignores_capacity": (
        "decisions",
        "choose_threshold",
        [("reviewed(scores, days, threshold, costs.daily_capacity)", "reviewed(scores, days, threshold, len(scores))")],
        ["With room for one review a day", "Finds the cheapest threshold on random days"],
    ),
    "threshold_ties_keep_the_lowest": (
        "decisions",
        "choose_threshold",
        [("if cost < best_cost:", "if cost <= best_cost:")],
        ["Reviews small frauds", "Finds the cheapest threshold on random days"],
    ),
    "calibration_unweighted": (
        "decisions",
        "calibration_error",
        [("error += in_bin.mean() * abs(", "error += 1 / len(np.unique(index)) * abs(")],
        ["Weights each bin's gap", "Uses `bins` equal-width bins"],
    ),
    "bootstrap_unpaired": (
        "decisions",
        "compare_models",
        [
            (
                "means = difference[rng.integers(0, len(difference), (resamples, len(difference)))].mean(axis=1)",
                "draw = lambda x: x[rng.integers(0, len(x), (resamples, len(x)))].mean(axis=1)\n    means = draw(b) - draw(a)",
            )
        ],
        [
            "Resamples days, the same for both models",
            "Switches to b when it saves",
            "Gives a 95% interval",
            "Keeps a when b costs",
        ],
    ),
    "decides_on_the_mean": (
        "decisions",
        "compare_models",
        [('"switch to b" if high < 0 else', '"switch to b" if difference.mean() < 0 else')],
        ["Switches to b when it saves", "Gives a 95% interval of the right width"],
    ),
    "psi_without_a_floor": (
        "monitoring_and_release",
        "psi",
        [("np.maximum(np.bincount(", "(np.bincount("), (", 1e-4)\n        for x in", ")\n        for x in")],
        ["Gives 0 for a sample against itself", "Floors each share at 1e-4", "Merges equal quantile edges"],
    ),
    "psi_bins_of_both_samples": (
        "monitoring_and_release",
        "psi",
        [("np.quantile(expected, np.arange", "np.quantile(np.concatenate([expected, actual]), np.arange")],
        ["Gives 0 for a sample against itself", "Floors each share", "Merges equal quantile edges"],
    ),
    "threshold_interpolates": (
        "monitoring_and_release",
        "alert_threshold",
        [("return float(values[values.size - 1 - allowed])", "return float(np.quantile(values, 1 - false_alarm_rate))")],
        ["Returns the (k+1)-th largest value", "Finds the threshold on hundreds of normal days"],
    ),
    "registry_writes_in_place": (
        "monitoring_and_release",
        "model_registry",
        [
            (
                'handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".registry-")\n'
                '        with os.fdopen(handle, "w") as f:\n'
                "            f.write(text)\n"
                "        os.replace(temporary, self.path)",
                "self.path.write_text(text)",
            )
        ],
        ["A save that fails halfway"],
    ),
    "registry_writes_in_place_with_os_write": (
        "monitoring_and_release",
        "model_registry",
        [
            (
                'handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".registry-")\n'
                '        with os.fdopen(handle, "w") as f:\n'
                "            f.write(text)\n"
                "        os.replace(temporary, self.path)",
                "handle = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)\n"
                "        os.write(handle, text.encode())\n"
                "        os.close(handle)",
            )
        ],
        ["A save that fails halfway"],
    ),
    "registry_forgets_on_restart": (
        "monitoring_and_release",
        "model_registry",
        [("if self.path.exists():", "if False:")],
        ["Keeps versions, stages and history", "A save that fails halfway"],
    ),
    "psi_edges_to_the_bin_below": (
        "monitoring_and_release",
        "psi",
        [('side="right"', 'side="left"')],
        ["Gives 0 for a sample against itself", "Merges equal quantile edges"],
    ),
    "psi_ignores_bins": (
        "monitoring_and_release",
        "psi",
        [("np.arange(1, bins) / bins", "np.arange(1, 10) / 10")],
        ["Gives 0 for a sample against itself", "Merges equal quantile edges"],
    ),
    "online_counts_the_same_moment": (
        "online_features",
        "online_velocity",
        [("before = [(t, a) for t, a in recent if t < ts]", "before = [(t, a) for t, a in recent if t <= ts]")],
        ["A card's first payment has no history", "On generated streams of three cards", "On generated streams (ties"],
    ),
    "online_hour_without_its_start": (
        "online_features",
        "online_velocity",
        [("last_hour = [a for t, a in before if t >= ts - HOUR]", "last_hour = [a for t, a in before if t > ts - HOUR]")],
        ["A payment exactly one hour before counts", "On generated streams of three cards"],
    ),
    "online_forgets_a_day_early": (
        "online_features",
        "online_velocity",
        [("while recent and recent[0][0] < ts - MONTH:", "while recent and recent[0][0] <= ts - MONTH:")],
        ["The 30-day count and mean", "After a year of daily payments", "On generated streams (ties"],
    ),
    "skew_missing_on_both_sides_differs": (
        "online_features",
        "feature_skew",
        [
            (
                "differs = one_missing | ((gap > 0) & ~np.isclose(b, o, rtol=rtol, atol=0))",
                "differs = ~np.isclose(b, o, rtol=rtol, atol=0)",
            )
        ],
        ["Counts the share of payments that differ", "Missing on both sides is equal"],
    ),
    "skew_by_row_position": (
        "online_features",
        "feature_skew",
        [
            (
                'both = batch.merge(online, on="transaction_id", suffixes=("_batch", "_online")).sort_values("transaction_id")',
                'both = pd.concat([batch.add_suffix("_batch").rename(columns={"transaction_id_batch": "transaction_id"}), '
                'online.drop(columns="transaction_id").add_suffix("_online")], axis=1)',
            )
        ],
        ["Counts the share of payments that differ", "Raises ValueError when the payments differ"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(CHAPTER, MISTAKES)


def test_labelled_payments_come_in_a_fixed_order(tmp_path):
    "Are the labelled payments the same rows in the same order on every call (a model fitted on them depends on it)?"
    warehouse = generate_warehouse(tmp_path / "w", 20_000, seed=0)
    first, second = (labelled_payments(warehouse, "2025-07-01").df() for _ in range(2))
    assert first.equals(second) and first.transaction_id.is_monotonic_increasing
