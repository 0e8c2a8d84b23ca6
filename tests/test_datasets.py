"""datasets: the case-study warehouse is deterministic, sized by one knob and learnable."""

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
