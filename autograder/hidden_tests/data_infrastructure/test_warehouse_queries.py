"""Hidden tests of exercises/data_infrastructure/warehouse_queries.ipynb.

Expected answers come from pandas, written independently of the SQL in the reference
solution, so a test and the reference cannot share a mistake.
"""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from autograder.tables import assert_columns, assert_same_rows, frame_of
from casestudy.warehouse import TABLES, tiny_warehouse

FEATURE_COLUMNS = [
    "transaction_id",
    "ts",
    "card_id",
    "amount",
    "card_txn_count_1h",
    "amount_vs_card_avg_30d",
    "is_foreign",
]


def read(warehouse, table: str) -> pd.DataFrame:
    return pd.read_parquet(warehouse.path(table))


# --- Part 1: open_warehouse -------------------------------------------------------


@pytest.mark.graded("open_warehouse", points=1, visible=True)
def test_open_warehouse_creates_views(learner, warehouse):
    "Creates the four tables as views, not copies."
    con = learner.open_warehouse(warehouse.root)
    kinds = dict(con.sql("SELECT table_name, table_type FROM information_schema.tables").fetchall())
    for table in TABLES:
        assert table in kinds, f"the connection has no `{table}`; it has {sorted(kinds) or 'nothing'}"
        assert kinds[table] == "VIEW", f"`{table}` is a {kinds[table]}, not a VIEW: it copies the data into memory"


@pytest.mark.graded("open_warehouse", points=1)
def test_open_warehouse_reads_every_file(learner, warehouse):
    "Reads every row of every table, and keeps the month partition column."
    con = learner.open_warehouse(warehouse.root)
    for table in TABLES:
        expected = len(read(warehouse, table))
        got = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert got == expected, f"`{table}` has {got} rows but the Parquet files hold {expected}"
    columns = con.sql("SELECT * FROM transactions LIMIT 0").columns
    assert "month" in columns, f"`transactions` should keep the `month` column from the folder names; it has {columns}"
    months = con.execute("SELECT count(DISTINCT month) FROM transactions").fetchone()[0]
    assert months == 7, f"`transactions` should span the 7 month folders, but has {months} distinct months"


@pytest.mark.graded("open_warehouse", points=1)
def test_open_warehouse_rejects_missing_folder(learner, tmp_path):
    "Raises FileNotFoundError naming the folder when there is no warehouse."
    empty = tmp_path / "no-warehouse-here"
    empty.mkdir()
    try:
        learner.open_warehouse(empty)
    except FileNotFoundError as e:
        assert "no-warehouse-here" in str(e), f"the FileNotFoundError should name the folder; its message was {str(e)!r}"
    else:
        raise AssertionError("open_warehouse returned a connection for a folder without a warehouse")


# --- Part 2: fraud_rate_by_category -----------------------------------------------


def expected_fraud_rates(warehouse) -> pd.DataFrame:
    t = read(warehouse, "transactions").merge(read(warehouse, "merchants"), on="merchant_id")
    t["fraud"] = t["transaction_id"].isin(read(warehouse, "chargebacks")["transaction_id"])
    rates = t.groupby("category").agg(n_transactions=("fraud", "size"), n_fraud=("fraud", "sum")).reset_index()
    rates["fraud_rate"] = rates["n_fraud"] / rates["n_transactions"]
    return rates.sort_values(["fraud_rate", "category"], ascending=[False, True]).reset_index(drop=True)


@pytest.mark.graded("fraud_rate_by_category", points=1, visible=True)
def test_fraud_rate_shape(learner, con):
    "Returns one row per category with the four columns asked for."
    got = frame_of(learner.fraud_rate_by_category(con), "fraud_rate_by_category")
    assert_columns(got, ["category", "n_transactions", "n_fraud", "fraud_rate"], "fraud_rate_by_category")
    assert got["category"].is_unique, "each category should appear once"
    assert len(got) == 10, f"there are 10 merchant categories, but the result has {len(got)} rows"
    # Three grocery payments, one of them disputed, and two fuel payments that were not.
    small = learner.beside(
        tiny_warehouse,
        transactions={"transaction_id": [1, 2, 3, 4, 5], "merchant_id": [1, 1, 1, 2, 2]},
        merchants={"merchant_id": [1, 2], "category": ["grocery", "fuel"]},
        chargebacks={"transaction_id": [2]},
    )
    rows = frame_of(learner.fraud_rate_by_category(small), "fraud_rate_by_category").set_index("category")
    counts = {category: (int(row.n_transactions), int(row.n_fraud)) for category, row in rows.iterrows()}
    assert counts == {"grocery": (3, 1), "fuel": (2, 0)}, (
        "3 grocery payments (1 with a chargeback) and 2 fuel payments (none) should give "
        f"{{'grocery': (3, 1), 'fuel': (2, 0)}} as (n_transactions, n_fraud); got {counts}: a payment without a "
        "chargeback must still count, which an inner join to chargebacks drops"
    )


@pytest.mark.graded("fraud_rate_by_category", points=1)
def test_fraud_rate_values(learner, con, warehouse):
    "Counts payments and chargebacks per category right, riskiest first."
    got = frame_of(learner.fraud_rate_by_category(con), "fraud_rate_by_category")
    assert_same_rows(got, expected_fraud_rates(warehouse), "fraud_rate_by_category", key="category")


# --- Part 3: transaction_features -------------------------------------------------


def expected_features(warehouse) -> pd.DataFrame:
    t = read(warehouse, "transactions").drop(columns="month", errors="ignore")
    t = t.merge(read(warehouse, "merchants"), on="merchant_id").merge(read(warehouse, "cards"), on="card_id")
    t = t.sort_values(["card_id", "ts"]).reset_index(drop=True)
    count_1h = np.zeros(len(t), dtype=np.int64)
    ratio = np.full(len(t), np.nan)
    for _, rows in t.groupby("card_id").indices.items():
        ts = t["ts"].to_numpy()[rows]
        amount = t["amount"].to_numpy()[rows]
        position = np.arange(len(rows))
        count_1h[rows] = position - np.searchsorted(ts, ts - np.timedelta64(1, "h"), side="left")
        start = np.searchsorted(ts, ts - np.timedelta64(30, "D"), side="left")
        running = np.concatenate([[0.0], np.cumsum(amount)])
        n = position - start
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio[rows] = np.where(n > 0, amount / ((running[position] - running[start]) / n), np.nan)
    t["card_txn_count_1h"] = count_1h
    t["amount_vs_card_avg_30d"] = ratio
    t["is_foreign"] = t["country"] != t["home_country"]
    return t[FEATURE_COLUMNS].sort_values("transaction_id").reset_index(drop=True)


def tiny_card_history(learner):
    """One card, one merchant abroad and one at home; payments placed on the window edges."""
    start = datetime(2025, 3, 1, 10, 0)
    offsets = [
        timedelta(0),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=1, seconds=1),
        timedelta(hours=2, minutes=30),
    ]
    return learner.beside(
        tiny_warehouse,
        cards={"card_id": [1], "home_country": ["FR"], "card_type": ["debit"], "credit_limit": [None]},
        merchants={"merchant_id": [1, 2], "category": ["grocery", "travel"], "country": ["FR", "US"]},
        transactions={
            "transaction_id": [11, 12, 13, 14, 15],
            "ts": [start + o for o in offsets],
            "card_id": [1] * 5,
            "merchant_id": [1, 1, 2, 1, 1],
            "amount": [10.0, 30.0, 200.0, 20.0, 40.0],
            "channel": ["in_store"] * 5,
        },
        chargebacks={"transaction_id": [13], "reported_at": [start + timedelta(days=9)]},
    )


@pytest.mark.graded("transaction_features", points=1, visible=True)
def test_features_shape(learner, con, warehouse):
    "Returns one row per payment with the seven columns, ordered by transaction_id."
    got = frame_of(learner.transaction_features(con), "transaction_features")
    assert_columns(got, FEATURE_COLUMNS, "transaction_features")
    n = len(read(warehouse, "transactions"))
    assert len(got) == n, f"there are {n} payments, but transaction_features returned {len(got)} rows"
    assert got["transaction_id"].is_monotonic_increasing, "rows should be ordered by transaction_id"


@pytest.mark.graded("transaction_features", points=1, visible=True)
def test_features_window_edges(learner):
    "Counts earlier payments within the hour, edge included, and never the payment itself."
    got = frame_of(learner.transaction_features(tiny_card_history(learner)), "transaction_features")
    counts = got["card_txn_count_1h"].tolist()
    assert counts == [0, 1, 2, 2, 0], (
        "payments at 10:00, 10:30, 11:00, 11:00:01 and 12:30 should have 0, 1, 2, 2 and 0 earlier payments "
        f"within the hour before them; got {counts}"
    )
    foreign = got["is_foreign"].tolist()
    assert foreign == [False, False, True, False, False], f"only the payment at the US merchant is foreign; got {foreign}"
    ratio = got["amount_vs_card_avg_30d"].tolist()
    assert pd.isna(ratio[0]), f"the card's first payment has no history, so its ratio should be NULL; got {ratio[0]!r}"
    assert ratio[1] == pytest.approx(3.0), f"30.0 after one payment of 10.0 should give 3.0; got {ratio[1]!r}"


@pytest.mark.graded("transaction_features", points=1)
def test_features_match_reference(learner, con, warehouse):
    "Matches an independent computation on the case-study data."
    got = frame_of(learner.transaction_features(con), "transaction_features")
    assert_same_rows(got, expected_features(warehouse), "transaction_features", key="transaction_id")


@pytest.mark.graded("transaction_features", points=1)
def test_features_ignore_the_future(learner):
    "A later payment never changes the features of an earlier one."
    before = frame_of(learner.transaction_features(tiny_card_history(learner)), "transaction_features")
    con = tiny_card_history(learner)
    con.execute("INSERT INTO transactions VALUES (16, TIMESTAMP '2025-03-01 10:15:00', 1, 2, 999.0, 'online')")
    after = frame_of(learner.transaction_features(con), "transaction_features")
    after = after[after["transaction_id"] != 16].reset_index(drop=True)
    earlier = before["ts"] < pd.Timestamp("2025-03-01 10:15:00")
    assert_same_rows(after[earlier.to_numpy()], before[earlier], "features of payments made before a new one")


# --- Part 4: time_split -----------------------------------------------------------

TRAIN_END, TEST_END = datetime(2025, 4, 1), datetime(2025, 5, 15)


def expected_split(warehouse, train_end, test_end, maturity_days):
    t = read(warehouse, "transactions")[["transaction_id", "ts"]]
    reports = read(warehouse, "chargebacks")
    train = t[t["ts"] < train_end - timedelta(days=maturity_days)].copy()
    known = reports[reports["reported_at"] < train_end]["transaction_id"]
    train["label"] = train["transaction_id"].isin(known).astype("int32")
    test = t[(t["ts"] >= train_end) & (t["ts"] < test_end)].copy()
    test["label"] = test["transaction_id"].isin(reports["transaction_id"]).astype("int32")
    order = ["ts", "transaction_id"]
    return train.sort_values(order).reset_index(drop=True), test.sort_values(order).reset_index(drop=True)


def split_frames(learner, con, *args):
    result = learner.time_split(con, *args)
    assert not isinstance(result, list), "time_split returned a list; return a tuple (train, test)"
    assert isinstance(result, tuple) and len(result) == 2, "time_split should return two results: (train, test)"
    frames = frame_of(result[0], "time_split's train"), frame_of(result[1], "time_split's test")
    for name, frame in zip(("train", "test"), frames):
        if "label" in frame:
            assert pd.api.types.is_integer_dtype(frame["label"]) and not pd.api.types.is_bool_dtype(frame["label"]), (
                f"the {name} label should be an integer, 1 for fraud and 0 otherwise, not {frame['label'].dtype}: "
                "cast it with ::INTEGER"
            )
    return frames


@pytest.mark.graded("time_split", points=1, visible=True)
def test_split_labels_known_at_train_end(learner):
    "Labels training rows only with chargebacks reported before train_end."
    con = learner.beside(
        tiny_warehouse,
        transactions={
            "transaction_id": [1, 2, 3, 4],
            "ts": [datetime(2025, 1, 5), datetime(2025, 1, 20), datetime(2025, 3, 10), datetime(2025, 4, 2)],
        },
        chargebacks={
            "transaction_id": [1, 2, 4],
            "reported_at": [datetime(2025, 1, 15), datetime(2025, 4, 20), datetime(2025, 4, 9)],
        },
    )
    train, test = split_frames(learner, con, datetime(2025, 4, 1), datetime(2025, 5, 1), 30)
    assert train["transaction_id"].tolist() == [1, 2], (
        "with train_end 2025-04-01 and 30 days of maturity, training rows are those before 2025-03-02: "
        f"payments 1 and 2; got {train['transaction_id'].tolist()}"
    )
    assert train["label"].tolist() == [1, 0], (
        "payment 1 was reported before train_end (label 1); payment 2 only after it (label 0 at training time); "
        f"got labels {train['label'].tolist()}"
    )
    assert test["transaction_id"].tolist() == [4] and test["label"].tolist() == [1], (
        "the test set holds payment 4 (2025-04-02) with its chargeback as label 1; "
        f"got ids {test['transaction_id'].tolist()} and labels {test['label'].tolist()}"
    )


@pytest.mark.graded("time_split", points=1)
def test_split_has_no_overlap(learner, con, warehouse):
    "Keeps training rows before the maturity gap and test rows inside [train_end, test_end)."
    train, test = split_frames(learner, con, TRAIN_END, TEST_END, 21)
    expected_train, expected_test = expected_split(warehouse, TRAIN_END, TEST_END, 21)
    assert len(train) == len(expected_train), f"train should have {len(expected_train)} rows, has {len(train)}"
    assert len(test) == len(expected_test), f"test should have {len(expected_test)} rows, has {len(test)}"
    assert not set(train["transaction_id"]) & set(test["transaction_id"]), "a payment is in both train and test"


@pytest.mark.graded("time_split", points=1)
def test_split_matches_reference(learner, con, warehouse):
    "Matches an independent computation, labels and order included."
    train, test = split_frames(learner, con, TRAIN_END, TEST_END, 30)
    expected_train, expected_test = expected_split(warehouse, TRAIN_END, TEST_END, 30)
    assert_same_rows(train, expected_train, "time_split's train", key="transaction_id")
    assert_same_rows(test, expected_test, "time_split's test", key="transaction_id")
