"""datasets: the case-study warehouse is deterministic, sized by one knob and learnable."""

import hashlib

import pandas as pd
import pytest

from casestudy.warehouse import generate_warehouse, warehouse_connection


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return generate_warehouse(tmp_path_factory.mktemp("w") / "w", n_transactions=30_000, seed=1)


def test_same_seed_same_tables(tmp_path):
    "Does the same seed give identical tables, and another seed different ones?"
    first = generate_warehouse(tmp_path / "a", 3_000, seed=5)
    second = generate_warehouse(tmp_path / "b", 3_000, seed=5)
    other = generate_warehouse(tmp_path / "c", 3_000, seed=6)
    for table in ("cards", "merchants", "chargebacks"):
        pd.testing.assert_frame_equal(pd.read_parquet(first.path(table)), pd.read_parquet(second.path(table)))
    same = pd.read_parquet(first.path("transactions")).equals(pd.read_parquet(second.path("transactions")))
    different = pd.read_parquet(first.path("transactions")).equals(pd.read_parquet(other.path("transactions")))
    assert same and not different


def test_size_knob_and_schema(warehouse):
    "Does the warehouse hold exactly the requested number of payments, with the documented columns?"
    con = warehouse_connection(warehouse)
    assert con.execute("SELECT count(*), count(DISTINCT transaction_id) FROM transactions").fetchone() == (30_000, 30_000)
    assert con.sql("SELECT * FROM transactions").columns == [
        "transaction_id",
        "ts",
        "card_id",
        "merchant_id",
        "amount",
        "channel",
        "month",
    ]
    assert con.sql("SELECT * FROM cards").columns == ["card_id", "home_country", "card_type", "credit_limit"]
    orphans = con.execute(
        "SELECT count(*) FROM transactions t ANTI JOIN cards USING (card_id) ANTI JOIN merchants USING (merchant_id)"
    ).fetchone()[0]
    assert orphans == 0


def test_labels_arrive_late_but_never_early(warehouse):
    "Is every chargeback reported after its payment and no later than the snapshot?"
    con = warehouse_connection(warehouse)
    early, late = con.execute(
        "SELECT count(*) FILTER (WHERE c.reported_at <= t.ts), count(*) FILTER (WHERE c.reported_at > $snapshot) "
        "FROM chargebacks c JOIN transactions t USING (transaction_id)",
        {"snapshot": pd.Timestamp(warehouse.snapshot).to_pydatetime()},
    ).fetchone()
    assert (early, late) == (0, 0)


def test_fraud_is_learnable(warehouse):
    "Do the planted patterns show: risky categories, bursts and foreign merchants carry far more fraud?"
    con = warehouse_connection(warehouse)
    risky, safe = con.execute(
        """
        SELECT avg((c.transaction_id IS NOT NULL)::INT) FILTER (WHERE m.category IN ('travel', 'electronics', 'gift_cards', 'online_gaming')),
               avg((c.transaction_id IS NOT NULL)::INT) FILTER (WHERE m.category NOT IN ('travel', 'electronics', 'gift_cards', 'online_gaming'))
        FROM transactions t JOIN merchants m USING (merchant_id) LEFT JOIN chargebacks c USING (transaction_id)
        """
    ).fetchone()
    assert risky > 4 * safe
    foreign, home = con.execute(
        """
        SELECT avg((ch.transaction_id IS NOT NULL)::INT) FILTER (WHERE m.country <> k.home_country),
               avg((ch.transaction_id IS NOT NULL)::INT) FILTER (WHERE m.country = k.home_country)
        FROM transactions t JOIN merchants m USING (merchant_id) JOIN cards k USING (card_id)
        LEFT JOIN chargebacks ch USING (transaction_id)
        """
    ).fetchone()
    assert foreign > 4 * home


def test_rejects_a_used_folder(warehouse):
    "Does generating into a folder that already holds data refuse, rather than mix two warehouses?"
    with pytest.raises(FileExistsError):
        generate_warehouse(warehouse.root, 100)


def contents(warehouse) -> str:
    """A digest of every table's rows, in a fixed order: equal digests, equal data."""
    con = warehouse_connection(warehouse)
    rows = [
        con.sql(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        for table in ("cards", "merchants", "transactions", "chargebacks")
    ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_without_drift_every_seed_gives_the_data_it_always_gave(tmp_path):
    "Does the drift knob, off by default, leave the data of a seed exactly as it was before the knob existed?"
    before_the_knob = "123e163ea9385ee0848b7fe6faae9a834b320e145eef3660269f0b0e2b5d76df"
    assert contents(generate_warehouse(tmp_path / "a", 5_000, seed=7)) == before_the_knob
    assert contents(generate_warehouse(tmp_path / "b", 5_000, seed=7, drift=0.0)) == before_the_knob
    with pytest.raises(ValueError, match="drift must be between 0 and 1"):
        generate_warehouse(tmp_path / "c", 5_000, drift=1.5)


def test_with_drift_the_fraud_of_the_last_month_no_longer_looks_like_the_first(tmp_path):
    "With drift, does fraud move home and to ordinary merchants, and slow its bursts, month by month?"
    con = warehouse_connection(generate_warehouse(tmp_path / "w", 60_000, seed=0, drift=1.0))
    by_month = con.sql(
        """
        SELECT month(t.ts) AS m, avg((mc.country <> c.home_country)::INT) AS abroad,
               avg((mc.category IN ('travel', 'electronics', 'gift_cards', 'online_gaming'))::INT) AS risky
        FROM transactions AS t JOIN chargebacks USING (transaction_id)
        JOIN merchants AS mc USING (merchant_id) JOIN cards AS c USING (card_id)
        WHERE month(t.ts) IN (1, 6) GROUP BY m ORDER BY m
        """
    ).fetchall()
    (_, abroad_first, risky_first), (_, abroad_last, risky_last) = by_month
    assert abroad_last < abroad_first - 0.15 and risky_last < risky_first - 0.15, by_month
