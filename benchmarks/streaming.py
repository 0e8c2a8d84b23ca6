"""Feeding PyTorch: streamed Parquet batches (the reference solution) vs per-row loading.

A training set (six features and a label per payment, from the chapter's feature
query) is written as Parquet shards with the reference ``write_shards``. Then four
loaders deliver it as float32 ``(features [B, 6], labels [B])`` batches of the same size:

- the reference ``ParquetStream`` through ``DataLoader(batch_size=None)``: it decodes
  whole Parquet batches and turns each into tensors with a few NumPy calls;
- the same with ``num_workers=2``;
- the common research baseline: a map-style ``Dataset`` over a pandas DataFrame already
  in memory, whose ``__getitem__`` returns one row as tensors (``DataFrame.iloc``), and
  ``DataLoader(batch_size=B)`` collating rows into batches;
- the same baseline made as cheap as a per-row dataset gets: NumPy arrays, one row each.

The stream is timed over every row, reading from disk; the per-row loaders only over
their first ``--baseline-rows`` rows (they are slow), with the DataFrame loaded before
the clock starts. Both choices favour the baseline. Before timing, the first batch of
every loader is checked to be identical, so they all deliver the same data.

    .venv/bin/python benchmarks/streaming.py                     # 4M rows
    .venv/bin/python benchmarks/streaming.py --rows 1000000 --data /tmp/wh1m
"""

from __future__ import annotations

import argparse
import itertools
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from common import machine, reference, warehouse_at
from torch.utils.data import DataLoader, Dataset

from booktools.timing import Timing, measure
from casestudy.warehouse import Warehouse, warehouse_connection

FEATURES = ["amount", "card_txn_count_1h", "amount_vs_card_avg_30d", "is_foreign", "hour", "is_online"]
LABEL = "is_fraud"
# Features stored as REAL (float32), the dtype the model trains on; the label as a 0/1
# INTEGER, as the chapter's splits write it. A first payment has no 30-day
# average; it counts as a usual amount (1.0). Labels here are every chargeback known:
# point-in-time labels are the chapter's subject, not this benchmark's.
TRAINING_SET = """
    SELECT f.amount::REAL AS amount,
           f.card_txn_count_1h::REAL AS card_txn_count_1h,
           coalesce(f.amount_vs_card_avg_30d, 1.0)::REAL AS amount_vs_card_avg_30d,
           f.is_foreign::REAL AS is_foreign,
           hour(f.ts)::REAL AS hour,
           (t.channel = 'online')::REAL AS is_online,
           (c.transaction_id IS NOT NULL)::INTEGER AS is_fraud
    FROM features AS f
    JOIN transactions AS t USING (transaction_id)
    LEFT JOIN chargebacks AS c USING (transaction_id)
    ORDER BY f.transaction_id
"""


def write_training_set(warehouse: Warehouse, out_dir: Path, rows_per_shard: int) -> list[Path]:
    con = warehouse_connection(warehouse)
    con.execute("SET enable_progress_bar = false")
    reference("warehouse").transaction_features(con).create_view("features")
    return reference("training_data").write_shards(con.sql(TRAINING_SET), out_dir, rows_per_shard)


class DataFrameRows(Dataset):
    """The research baseline: a DataFrame in memory, one row per ``__getitem__``."""

    def __init__(self, frame: pd.DataFrame):
        # Split once here: selecting columns per row (frame.iloc[i][FEATURES]) is 10x slower still.
        self.features = frame[FEATURES]
        self.labels = frame[LABEL]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.tensor(self.features.iloc[index].to_numpy(np.float32))
        return features, torch.tensor(self.labels.iloc[index], dtype=torch.float32)


class ArrayRows(Dataset):
    """The same baseline at its cheapest: columns already in NumPy, so a row is a slice."""

    def __init__(self, frame: pd.DataFrame):
        self.features = frame[FEATURES].to_numpy(np.float32, copy=True)  # writable: PyTorch warns on read-only views
        self.labels = frame[LABEL].to_numpy(np.float32, copy=True)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.features[index]), torch.tensor(self.labels[index])


def consume(loader: DataLoader, batches: int | None = None) -> int:
    """Pull ``batches`` batches (all, if None) as a training loop would; return the rows seen."""
    return sum(len(labels) for _, labels in itertools.islice(loader, batches))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4_000_000, help="payments in the warehouse, so rows in the training set")
    parser.add_argument("--data", help="warehouse folder: reused if it holds one, else generated there")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per batch, for every loader")
    parser.add_argument("--rows-per-shard", type=int, default=500_000)
    parser.add_argument("--baseline-rows", type=int, default=200_000, help="rows timed for the per-row loaders")
    args = parser.parse_args()
    print(machine())
    size = args.batch_size

    with warehouse_at(args.data, args.rows) as warehouse, tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        paths = write_training_set(warehouse, Path(tmp), args.rows_per_shard)
        frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)  # untimed
        rows = len(frame)
        print(f"training set: {rows:,} rows x {len(FEATURES)} features in {len(paths)} Parquet shards")

        stream = reference("training_data").ParquetStream(paths, FEATURES, LABEL, batch_size=size)
        streams = {
            "ParquetStream": DataLoader(stream, batch_size=None),
            "ParquetStream, 2 workers": DataLoader(stream, batch_size=None, num_workers=2),
        }
        per_row = {
            "per-row DataFrame.iloc": DataLoader(DataFrameRows(frame), batch_size=size),
            "per-row NumPy": DataLoader(ArrayRows(frame), batch_size=size),
        }

        # Same data, same order, same dtypes: every loader's first batch is identical.
        first_x, first_y = next(iter(streams["ParquetStream"]))
        for name, loader in {**streams, **per_row}.items():
            x, y = next(iter(loader))
            assert torch.equal(x, first_x) and torch.equal(y, first_y), f"{name} delivers different batches"
        assert consume(streams["ParquetStream"]) == rows, "the stream lost or repeated rows"

        timings: dict[str, Timing] = {}
        for name, loader in streams.items():
            timings[name] = measure(name, lambda loader=loader: consume(loader), repeat=3, warmup=1, items=rows)
        batches = math.ceil(min(args.baseline_rows, rows) / size)
        timed = min(batches * size, rows)  # whole batches, as a training loop pulls them
        for name, loader in per_row.items():
            # Long runs: best of two, no warm-up needed (the first batch above already warmed up).
            timings[name] = measure(name, lambda loader=loader: consume(loader, batches), repeat=2, warmup=0, items=timed)

        print(f"\nbatches of {size}; streams timed over all {rows:,} rows, per-row loaders over their first {timed:,}")
        print(f"{'loader':<27}{'rows timed':>12}{'seconds':>9}{'rows/s':>13}  stream speed-up")
        for name, timing in timings.items():
            # Throughput, not timing.ratio(): the loaders were timed over different numbers of rows.
            versus = "-" if name in streams else f"{timings['ParquetStream'].per_second / timing.per_second:.0f}x"
            print(f"{name:<27}{timing.items:>12,}{timing.seconds:>9.2f}{timing.per_second:>13,.0f}  {versus}")


if __name__ == "__main__":
    main()
