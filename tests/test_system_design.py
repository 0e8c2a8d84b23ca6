"""The system-design chapter's given code: the business's costs, the labelled payments, drift in the data."""

import numpy as np

from casestudy.costs import FraudCosts, reviewed, total_cost


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
