"""What fraud costs the company, and what its analysts can check: scores become decisions here.

A fraud that goes through costs the company its amount (refunded to the cardholder)
plus the card network's chargeback fee. Payments that score at or above the decision
threshold are flagged and queued for the fraud analysts, who call the cardholder: a
reviewed fraud is blocked and costs only the review. The analysts review at most
``daily_capacity`` payments a day, the highest-scoring first; flagged payments beyond
that go through unreviewed, as if they had never been flagged. A threshold is worth
what it saves under this rule, which is why the fraud team asks for a threshold with
its cost, not for a model's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FraudCosts:
    """The business's numbers, as the fraud team gives them."""

    chargeback_fee: float = 20.0  # the card network's fee on each chargeback, besides the amount
    review_cost: float = 3.0  # an analyst's time for one flagged payment
    daily_capacity: int = 20  # payments the analysts can review in a day


def reviewed(scores: np.ndarray, days: np.ndarray, threshold: float, capacity: int) -> np.ndarray:
    """Which payments the analysts review: those flagged (score >= threshold), at most
    ``capacity`` a day, the highest scores of each day first (ties in the order given).

    ``days`` labels each payment's day (any sortable values: dates, day numbers).
    """
    scores, days = np.asarray(scores, dtype=float), np.asarray(days)
    flagged = np.flatnonzero(scores >= threshold)
    # Within each day, highest score first; then a payment's rank in its day's queue.
    order = flagged[np.lexsort((-scores[flagged], days[flagged]))]
    day_of = days[order]
    starts = np.r_[0, np.flatnonzero(day_of[1:] != day_of[:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    review = np.zeros(len(scores), dtype=bool)
    review[order[rank < capacity]] = True
    return review


def total_cost(
    is_fraud: np.ndarray, amounts: np.ndarray, review: np.ndarray, costs: FraudCosts
) -> float:
    """What the payments cost: each fraud not reviewed its amount plus the fee, each review
    its cost."""
    is_fraud, review = np.asarray(is_fraud, dtype=bool), np.asarray(review, dtype=bool)
    missed = is_fraud & ~review
    lost = np.asarray(amounts, dtype=float)[missed].sum() + costs.chargeback_fee * missed.sum()
    return float(lost + costs.review_cost * review.sum())
