"""The fraud model's training data: written once as Parquet shards, streamed into tensors.

The GPU chapter trains ``FraudNet`` with merchant embeddings on the warehouse's
payments. The features are ``features.NUMERIC``, those of the testing chapter,
computed point-in-time correct in DuckDB:

- ``log_amount_vs_card_avg_30d``: log of the amount over the card's mean of the 30
  days before (0 without history);
- ``log_payments_prev_1h``: ``log(1 + n)`` for the card's payments in the hour before;
- ``abroad``: 1 when the merchant's country is not the card's home country;
- ``night``: 1 between midnight and 6 a.m.

The labels are the chargebacks known on the training date, and only payments at least
30 days older than that date are used, so that most of their chargebacks had time to
arrive (the data-infrastructure chapter explains why). The rows are written in a
random order, so that any shard is a fair sample and streaming them needs only a
small shuffle; ``ShardStream`` hands out one shard per ``DataLoader`` worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from casestudy.features import NUMERIC, card_velocity
from casestudy.model import MerchantBatch
from casestudy.warehouse import CATEGORIES, Warehouse, warehouse_connection

__all__ = [
    "MATURITY_DAYS",
    "NUMERIC",
    "TRAIN_END",
    "ShardStream",
    "labelled_payments",
    "n_merchants",
    "read_shards",
    "write_training_shards",
]

TRAIN_END = "2025-05-01"
MATURITY_DAYS = 30


def n_merchants(warehouse: Warehouse) -> int:
    """Rows of the merchant embedding table: merchant ids run from 1 to the largest id."""
    sql = "SELECT max(merchant_id) + 1 FROM read_parquet(?)"
    return int(duckdb.sql(sql, params=[warehouse.glob("merchants")]).fetchall()[0][0])


def labelled_payments(warehouse: Warehouse, labels_known_on: str) -> duckdb.DuckDBPyRelation:
    """Every payment with the model's features and its label as known on ``labels_known_on``.

    Columns: ``transaction_id``, ``ts``, ``card_id``, ``amount``, ``category`` and
    ``merchant`` (int64 indices), the ``NUMERIC`` features (float32) and ``label``
    (float32, 1.0 for a chargeback reported before ``labels_known_on``), ordered by
    ``transaction_id``. Recent payments are included with the labels known so far:
    filter on ``ts`` to keep mature ones.
    """
    return _labelled(warehouse_connection(warehouse), labels_known_on)


def _labelled(con: duckdb.DuckDBPyConnection, known_on: str) -> duckdb.DuckDBPyRelation:
    card_velocity(con).create_view("velocity")
    return con.sql(
        """
        SELECT
            t.transaction_id,
            t.ts,
            t.card_id,
            t.amount,
            list_position($categories, m.category)::BIGINT - 1 AS category,
            t.merchant_id::BIGINT AS merchant,
            coalesce(ln(t.amount / avg(t.amount) OVER (
                PARTITION BY t.card_id ORDER BY t.ts
                RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING
            )), 0)::FLOAT AS log_amount_vs_card_avg_30d,
            ln(1 + v.n_prev_1h)::FLOAT AS log_payments_prev_1h,
            (m.country <> c.home_country)::FLOAT AS abroad,
            (hour(t.ts) < 6)::FLOAT AS night,
            -- A chargeback reported after that date was not known on it.
            (cb.reported_at IS NOT NULL AND cb.reported_at < $known_on::TIMESTAMP)::FLOAT
                AS label
        FROM transactions AS t
        JOIN merchants AS m USING (merchant_id)
        JOIN cards AS c USING (card_id)
        JOIN velocity AS v USING (transaction_id)
        LEFT JOIN chargebacks AS cb USING (transaction_id)
        -- In a fixed order: a model fitted on the same rows in another order may differ.
        ORDER BY t.transaction_id
        """,
        params={"categories": list(CATEGORIES), "known_on": known_on},
    )


def write_training_shards(
    warehouse: Warehouse,
    folder: str | Path,
    rows_per_shard: int = 50_000,
    train_end: str = TRAIN_END,
    seed: int = 0,
) -> list[Path]:
    """Write the training set as numbered Parquet shards in ``folder``; return their paths.

    Columns: ``category`` and ``merchant`` (int64 indices), the ``NUMERIC`` features
    (float32) and ``label`` (float32, 1.0 for a chargeback known on ``train_end``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    con = warehouse_connection(warehouse)
    _labelled(con, train_end).create_view("examples")
    columns = ", ".join(["category", "merchant", *NUMERIC, "label"])
    rows = con.sql(
        f"""
        SELECT {columns}
        FROM examples
        WHERE ts < $train_end::TIMESTAMP - INTERVAL ($maturity_days) DAYS
        -- A seeded hash gives a random order that is the same on every machine.
        ORDER BY hash(merchant, log_amount_vs_card_avg_30d, ts, $seed)
        """,
        params={"train_end": train_end, "maturity_days": MATURITY_DAYS, "seed": seed},
    ).to_arrow_table()
    paths = []
    for index, start in enumerate(range(0, rows.num_rows, rows_per_shard)):
        paths.append(folder / f"shard-{index:05d}.parquet")
        pq.write_table(rows.slice(start, rows_per_shard), paths[-1])
    return paths


def read_shards(paths: list[Path]) -> MerchantBatch:
    """Every row of the shards as one ``MerchantBatch`` in memory."""
    return _as_batch(pa.concat_tables(pq.read_table(path) for path in paths))


class ShardStream(IterableDataset):
    """``MerchantBatch``es streamed from Parquet shards.

    Each ``DataLoader`` worker reads its own share of the shards, in an order that
    changes every epoch (call ``set_epoch``) but is fixed by ``seed``. Workers hold a
    copy of the stream made when they start, so ``set_epoch`` reaches only workers
    started afterwards: with ``persistent_workers=True`` every epoch keeps the first
    epoch's order (the GPU chapter shows it). Give the
    ``DataLoader`` ``batch_size=None``: the batches are made here, from Arrow record
    batches, with one copy per column instead of one Python call per row.
    """

    def __init__(self, paths: list[Path], batch_size: int = 1024, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.paths, self.batch_size, self.seed, self.epoch = (
            [Path(p) for p in paths],
            batch_size,
            seed,
            0,
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[MerchantBatch]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.paths))
        worker = get_worker_info()
        mine = order if worker is None else order[worker.id :: worker.num_workers]
        for index in mine:
            for record_batch in pq.ParquetFile(self.paths[index]).iter_batches(
                batch_size=self.batch_size
            ):
                yield _as_batch(record_batch)


def _as_batch(table: pa.Table | pa.RecordBatch) -> MerchantBatch:
    # Arrow's memory is read-only and tensors are writable: one copy per column is the price.
    numeric = np.stack([table.column(name).to_numpy() for name in NUMERIC], axis=1)
    return MerchantBatch(
        torch.tensor(table.column("category").to_numpy()),
        torch.from_numpy(numeric),
        torch.tensor(table.column("merchant").to_numpy()),
        torch.tensor(table.column("label").to_numpy()),
    )
