"""The case study's data: a deterministic card-fraud warehouse.

A payments company's warehouse holds four tables:

- ``cards``: one row per payment card (its home country, type and credit limit);
- ``merchants``: one row per merchant (its category and country);
- ``transactions``: every card payment, partitioned by month (``month=2025-01/``);
- ``chargebacks``: the fraud reports, each arriving days or weeks after the payment.

Fraud is planted so that it can be learned from features a real team would build:
a stolen card is used in a burst of payments minutes apart, often abroad, at risky
merchant categories (electronics, gift cards, online gaming, travel), for amounts far
above the card's usual spend, at any hour of the night. Labels arrive late, as they do
in industry: a chargeback is reported a median of twelve days after the payment, some
fraud is never reported, and reports after the snapshot date are not in the warehouse
yet. That delay is what makes point-in-time correctness matter.

Everything is generated from a seed, so the same arguments give identical tables on
every machine, and nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

START = np.datetime64("2025-01-01T00:00:00", "us")
COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "NL", "BR", "IN"])
COUNTRY_WEIGHTS = np.array([0.34, 0.14, 0.13, 0.11, 0.09, 0.07, 0.07, 0.05])
CATEGORIES = np.array(
    [
        "grocery",
        "restaurants",
        "fuel",
        "pharmacy",
        "utilities",
        "fashion",
        "travel",
        "electronics",
        "gift_cards",
        "online_gaming",
    ]
)
CATEGORY_WEIGHTS = np.array([0.24, 0.2, 0.12, 0.07, 0.05, 0.11, 0.06, 0.07, 0.04, 0.04])
# How much a payment costs at each category, relative to the card's usual spend.
CATEGORY_PRICE = np.array([1.0, 0.8, 1.1, 0.7, 2.5, 2.0, 6.0, 5.0, 2.0, 0.6])
CATEGORY_ONLINE = np.array([0.05, 0.1, 0.02, 0.1, 0.6, 0.35, 0.6, 0.5, 0.7, 1.0])
RISKY_CATEGORIES = np.array([6, 7, 8, 9])  # travel, electronics, gift cards, gaming
# Share of payments by hour of day for legitimate spend: quiet nights, busy evenings.
HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3.5, 4.5, 5, 5.5]  # midnight to noon
    + [6.5, 6, 5.5, 5.5, 6, 6.5, 7, 6.5, 5, 4, 3, 2]  # noon to midnight
)
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()

FRAUD_SHARE = 0.012  # share of payments that are fraudulent
MEAN_BURST = 4.0  # payments per stolen-card episode, on average
REPORTED_SHARE = 0.92  # fraud that the cardholder eventually reports
FRIENDLY_FRAUD_SHARE = 0.001  # legitimate payments disputed anyway (label noise)
CHUNK_ROWS = 1_000_000  # transactions generated and written per chunk
US_PER_DAY = 86_400 * 1_000_000


@dataclass(frozen=True)
class Warehouse:
    """Where a generated warehouse lives, and what is in it."""

    root: Path
    n_transactions: int
    seed: int
    days: int
    drift: float = 0.0

    @property
    def snapshot(self) -> np.datetime64:
        """The moment the warehouse was copied: no chargeback after it is known."""
        return START + np.timedelta64(self.days, "D")

    def path(self, table: str) -> Path:
        """The Parquet file (or, for transactions, the partitioned folder) of a table."""
        if table == "transactions":
            return self.root / "transactions"
        return self.root / f"{table}.parquet"

    def glob(self, table: str) -> str:
        """A glob that DuckDB's ``read_parquet`` understands for a table."""
        if table == "transactions":
            return str(self.root / "transactions" / "*" / "*.parquet")
        return str(self.path(table))


def generate_warehouse(
    root: str | Path,
    n_transactions: int = 20_000,
    seed: int = 0,
    days: int = 182,
    progress: bool | None = None,
    drift: float = 0.0,
) -> Warehouse:
    """Write the case-study warehouse as Parquet under ``root`` and describe it.

    ``n_transactions`` is the size knob: 20,000 (the default) takes well under a
    second and suits tests; tens of millions suit benchmarks. ``progress`` shows a
    progress bar; by default it appears only for more than one chunk of rows.

    ``drift`` (0 to 1) makes the world change over the ``days``, as it does: fraudsters
    adapt to the model (fewer payments abroad and at risky merchants, slower bursts,
    smaller amounts) and customers' habits move (prices rise, more travel). At 0, the
    default, nothing changes, and every seed gives the data it always gave; at 1, by
    the last day the fraud no longer looks like the fraud of the first.
    """
    if n_transactions < 1:
        raise ValueError(f"n_transactions must be at least 1, got {n_transactions}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if not 0 <= drift <= 1:
        raise ValueError(f"drift must be between 0 and 1, got {drift}")
    root = Path(root)
    warehouse = Warehouse(root, n_transactions, seed, days, drift)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; pick a new folder for the warehouse")
    (root / "transactions").mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng([seed, 0])
    cards = _make_cards(rng, max(50, n_transactions // 40))
    merchants = _make_merchants(rng, max(40, n_transactions // 400))
    pq.write_table(_public(cards), warehouse.path("cards"))
    pq.write_table(_public(merchants), warehouse.path("merchants"))

    chunks = _chunk_sizes(n_transactions)
    if progress is None:
        progress = len(chunks) > 1
    bar = _progress_bar(len(chunks), progress)
    chargebacks = []
    first_id = 0
    for index, size in enumerate(chunks):
        chunk_rng = np.random.default_rng([seed, 1, index])
        transactions, fraud = _make_transactions(
            chunk_rng, size, first_id, days, cards, merchants, drift
        )
        _write_by_month(transactions, warehouse.path("transactions"), index)
        chargebacks.append(_make_chargebacks(chunk_rng, transactions, fraud, warehouse.snapshot))
        first_id += size
        bar.update(1)
    bar.close()
    pq.write_table(
        pa.table({k: np.concatenate([c[k] for c in chargebacks]) for k in chargebacks[0]}),
        warehouse.path("chargebacks"),
    )
    return warehouse


def _public(columns: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({k: v for k, v in columns.items() if not k.startswith("_")})


def _chunk_sizes(n: int) -> list[int]:
    full, rest = divmod(n, CHUNK_ROWS)
    return [CHUNK_ROWS] * full + ([rest] if rest else [])


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="generating transactions", unit="chunk", disable=not enabled)


def _make_cards(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    credit = rng.random(n) < 0.55
    home = rng.choice(len(COUNTRIES), n, p=COUNTRY_WEIGHTS)
    return {
        "card_id": np.arange(1, n + 1, dtype=np.int64),
        "home_country": COUNTRIES[home],
        "card_type": np.where(credit, "credit", "debit"),
        "credit_limit": np.where(credit, rng.choice([1000.0, 2500.0, 5000.0, 10000.0], n), np.nan),
        # Columns starting with "_" are hidden traits, never written out.
        "_home": home,
        "_scale": np.round(rng.lognormal(np.log(35), 0.5, n), 2),
        "_activity": rng.gamma(2.0, 1.0, n),
    }


def _make_merchants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    # Every (country, category) pair gets a merchant, so any payment can find one.
    n_pairs = len(COUNTRIES) * len(CATEGORIES)
    extra = max(0, n - n_pairs)
    country = np.concatenate(
        [
            np.repeat(np.arange(len(COUNTRIES)), len(CATEGORIES)),
            rng.choice(len(COUNTRIES), extra, p=COUNTRY_WEIGHTS),
        ]
    )
    category = np.concatenate(
        [
            np.tile(np.arange(len(CATEGORIES)), len(COUNTRIES)),
            rng.choice(len(CATEGORIES), extra, p=CATEGORY_WEIGHTS),
        ]
    )
    order = np.lexsort((category, country))  # grouped by country, then category
    return {
        "merchant_id": np.arange(1, len(order) + 1, dtype=np.int64),
        "category": CATEGORIES[category[order]],
        "country": COUNTRIES[country[order]],
        "_category": category[order],
        "_country": country[order],
    }


def _pick_merchants(
    rng: np.random.Generator,
    merchants: dict[str, np.ndarray],
    country: np.ndarray,
    risky_only: np.ndarray,
) -> np.ndarray:
    """A merchant index per payment, in the given country, risky categories if asked."""
    country_codes = merchants["_country"]
    risky = np.isin(merchants["_category"], RISKY_CATEGORIES)
    picked = np.empty(len(country), dtype=np.int64)
    for c in range(len(COUNTRIES)):
        for want_risky in (False, True):
            rows = np.flatnonzero((country == c) & (risky_only == want_risky))
            if rows.size == 0:
                continue
            pool = np.flatnonzero((country_codes == c) & (risky if want_risky else True))
            picked[rows] = pool[rng.integers(0, pool.size, rows.size)]
    return picked


def _make_transactions(
    rng: np.random.Generator,
    n: int,
    first_id: int,
    days: int,
    cards: dict[str, np.ndarray],
    merchants: dict[str, np.ndarray],
    drift: float = 0.0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    # Drift only scales what was drawn (by 1.0 when it is 0): the random draws, and so
    # the data of every seed without drift, stay as they were.
    n_cards = len(cards["card_id"])
    home = cards["_home"]
    n_fraud = int(round(n * FRAUD_SHARE)) if n >= 100 else 0
    n_normal = n - n_fraud

    # Legitimate spend: active cards pay more often, mostly at home, mostly by day.
    card = rng.choice(n_cards, n_normal, p=cards["_activity"] / cards["_activity"].sum())
    day = rng.integers(0, days, n_normal)
    hour = rng.choice(24, n_normal, p=HOUR_WEIGHTS)
    offset = day * US_PER_DAY + hour * 3_600_000_000 + rng.integers(0, 3_600_000_000, n_normal)
    later = drift * day / days  # 0 on the first day, ``drift`` on the last
    abroad = rng.random(n_normal) < 0.04 * (1 + 3 * later)
    country = np.where(abroad, rng.choice(len(COUNTRIES), n_normal, p=COUNTRY_WEIGHTS), home[card])
    merchant = _pick_merchants(rng, merchants, country, np.zeros(n_normal, bool))
    price = rng.lognormal(0.0, 0.6, n_normal) * (1 + 0.3 * later)

    # Stolen cards: bursts of payments minutes apart, abroad, at risky merchants.
    sizes = _burst_sizes(rng, n_fraud)
    episode = np.repeat(np.arange(len(sizes)), sizes)
    f_card = rng.integers(0, n_cards, len(sizes))[episode]
    f_start = rng.integers(0, days * US_PER_DAY - 6 * 3_600_000_000, len(sizes))
    f_later = drift * f_start[episode] / (days * US_PER_DAY)
    gaps = rng.exponential(8 * 60_000_000, n_fraud) * (1 + 5 * f_later)
    gaps = gaps.astype(np.int64) + 1_000_000
    first_in_episode = np.r_[True, episode[1:] != episode[:-1]] if n_fraud else np.zeros(0, bool)
    gaps[first_in_episode] = 0
    within = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.flatnonzero(first_in_episode)], sizes)
    f_offset = f_start[episode] + within
    f_abroad = rng.random(n_fraud) < 0.6 * (1 - 0.8 * f_later)
    f_country = np.where(f_abroad, rng.integers(0, len(COUNTRIES), n_fraud), home[f_card])
    f_risky = rng.random(n_fraud) < 0.75 * (1 - 0.7 * f_later)
    f_merchant = _pick_merchants(rng, merchants, f_country, f_risky)
    card_test = first_in_episode & (rng.random(n_fraud) < 0.5)  # a small probe charge first
    f_price = np.where(card_test, rng.uniform(0.03, 0.12, n_fraud), rng.uniform(3, 15, n_fraud))
    f_price = f_price * (1 - 0.7 * f_later)

    all_card = np.concatenate([card, f_card])
    all_merchant = np.concatenate([merchant, f_merchant])
    category = merchants["_category"][all_merchant]
    amount = (
        cards["_scale"][all_card] * CATEGORY_PRICE[category] * np.concatenate([price, f_price])
    )
    online_p = np.where(np.arange(n) < n_normal, CATEGORY_ONLINE[category], 0.85)
    is_fraud = np.arange(n) >= n_normal
    ts = START + np.concatenate([offset, f_offset]).astype("timedelta64[us]")

    order = np.argsort(ts, kind="stable")
    transactions = {
        "transaction_id": np.arange(first_id + 1, first_id + n + 1, dtype=np.int64),
        "ts": ts[order],
        "card_id": cards["card_id"][all_card][order],
        "merchant_id": merchants["merchant_id"][all_merchant][order],
        "amount": np.maximum(np.round(amount, 2), 0.5)[order],
        "channel": np.where(rng.random(n) < online_p, "online", "in_store")[order],
    }
    return transactions, is_fraud[order]


def _burst_sizes(rng: np.random.Generator, n_fraud: int) -> np.ndarray:
    """Episode lengths (at least one payment each) that add up to ``n_fraud``."""
    if n_fraud == 0:
        return np.zeros(0, dtype=np.int64)
    sizes = 1 + rng.poisson(MEAN_BURST - 1, n_fraud)  # n_fraud episodes always suffice
    ends = np.cumsum(sizes)
    keep = np.searchsorted(ends, n_fraud) + 1
    sizes = sizes[:keep]
    sizes[-1] -= ends[keep - 1] - n_fraud
    return sizes[sizes > 0]


def _make_chargebacks(
    rng: np.random.Generator,
    transactions: dict[str, np.ndarray],
    fraud: np.ndarray,
    snapshot: np.datetime64,
) -> dict[str, np.ndarray]:
    n = len(fraud)
    disputed = np.where(
        fraud, rng.random(n) < REPORTED_SHARE, rng.random(n) < FRIENDLY_FRAUD_SHARE
    )
    delay_days = rng.lognormal(np.log(12), 0.7, n)
    reported_at = transactions["ts"] + (delay_days * US_PER_DAY).astype("timedelta64[us]")
    # A report filed after the warehouse snapshot has not reached it yet.
    known = disputed & (reported_at <= snapshot)
    return {
        "transaction_id": transactions["transaction_id"][known],
        "reported_at": reported_at[known],
    }


def _write_by_month(transactions: dict[str, np.ndarray], folder: Path, chunk: int) -> None:
    table = pa.table(transactions)
    month = transactions["ts"].astype("datetime64[M]")
    for value in np.unique(month):
        rows = np.flatnonzero(month == value)
        part = folder / f"month={value}"
        part.mkdir(exist_ok=True)
        pq.write_table(
            table.take(rows), part / f"part-{chunk:05d}.parquet", row_group_size=256_000
        )


TABLES = ("cards", "merchants", "transactions", "chargebacks")


def warehouse_connection(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """The tests' own connection to a generated warehouse: one view per table.

    Parts that query the warehouse get this connection, not the learner's
    ``open_warehouse``, so one mistake is not punished twice.
    """
    con = duckdb.connect()
    for table in TABLES:
        hive = ", hive_partitioning = true" if table == "transactions" else ""
        # A view cannot take parameters: the name comes from TABLES and the path is quoted.
        path = warehouse.glob(table).replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}'{hive})")
    return con


def tiny_warehouse(**tables: Mapping[str, Sequence]) -> duckdb.DuckDBPyConnection:
    """A connection holding small hand-made versions of the warehouse's tables (``TABLES``).

    For the edge cases a generator rarely hits.
    """
    con = duckdb.connect()
    for name, columns in tables.items():
        # Table names cannot be parameters: only the warehouse's own tables are allowed.
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r}: the warehouse has {', '.join(TABLES)}")
        con.register(f"_{name}", pa.table(dict(columns)))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
    return con
