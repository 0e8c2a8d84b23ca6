"""Behavioural features of the fraud model, as the feature pipeline computes them.

A stolen card is used in bursts, for amounts far above the card's usual spending.
``card_velocity`` counts, for every payment, the same card's payments in the hour
before it; ``amount_vs_card_avg_30d`` compares its amount with the card's mean over the
30 days before. Both must be point-in-time correct: a payment's features may only use
payments that happened strictly before it.

``NUMERIC`` names the model's numeric inputs, in the order the model reads them; the
training data, the model bundle and the scoring service all take the names from here.
"""

from __future__ import annotations

import duckdb

# The model's numeric features, in the order of the model's input columns:
# - log_amount_vs_card_avg_30d: ln(amount_vs_card_avg_30d), 0 when the card has no
#   payment in the 30 days before (amount_vs_card_avg_30d is the amount over the mean
#   amount of those payments);
# - log_payments_prev_1h: ln(1 + n_prev_1h), from card_velocity;
# - abroad: 1.0 when the merchant's country is not the card's home country;
# - night: 1.0 between midnight and 6 a.m.
NUMERIC = ["log_amount_vs_card_avg_30d", "log_payments_prev_1h", "abroad", "night"]


def card_velocity(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Per payment in ``transactions``: the card's activity in the hour before it.

    ``transactions`` needs the columns ``transaction_id``, ``card_id``, ``ts`` (a
    timestamp) and ``amount``. The result has one row per payment, ordered by
    ``transaction_id``, with the columns:

    - ``transaction_id``;
    - ``n_prev_1h`` (BIGINT): how many payments the same card made in the hour before
      this one: at or after ``ts - 1 hour`` and strictly before ``ts``. Payments at the
      very same moment are not "before" and are not counted;
    - ``amount_prev_1h`` (DOUBLE): the sum of their amounts, 0 when there are none.
    """
    return con.sql(
        """
        SELECT
            transaction_id,
            count(*) OVER last_hour AS n_prev_1h,
            coalesce(sum(amount) OVER last_hour, 0)::DOUBLE AS amount_prev_1h
        FROM transactions
        WINDOW last_hour AS (
            PARTITION BY card_id ORDER BY ts
            -- Ends just before the payment: the payment itself, and any at the same
            -- moment, happened "now", not before.
            RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING
        )
        ORDER BY transaction_id
        """
    )


def amount_vs_card_avg_30d(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """Per payment in ``transactions``: its amount against the card's 30 days before.

    A thief spends far more than the cardholder usually does, so the ratio of a
    payment's amount to the card's recent average is one of the model's features.
    ``transactions`` needs the columns ``transaction_id``, ``card_id``, ``ts`` and
    ``amount``. The result has one row per payment, ordered by ``transaction_id``:

    - ``transaction_id``;
    - ``n_prev_30d`` (BIGINT): the same card's payments at or after ``ts - 30 days``
      and strictly before ``ts`` (payments at the very same moment do not count);
    - ``avg_prev_30d`` (DOUBLE): the mean amount of those payments, NULL if there are
      none;
    - ``amount_vs_card_avg_30d`` (DOUBLE): ``amount / avg_prev_30d``, NULL if there are
      none. The model reads its log, ``log_amount_vs_card_avg_30d`` (see ``NUMERIC``).
    """
    return con.sql(
        """
        SELECT
            transaction_id,
            count(*) OVER history AS n_prev_30d,
            avg(amount) OVER history AS avg_prev_30d,
            amount / avg(amount) OVER history AS amount_vs_card_avg_30d
        FROM transactions
        WINDOW history AS (
            PARTITION BY card_id ORDER BY ts
            RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING
        )
        ORDER BY transaction_id
        """
    )
