"""The chapter's point-in-time feature query: DuckDB (the reference solution) vs pandas.

Three contestants compute the same three features for every payment of one warehouse:

- ``duckdb``: the reference ``transaction_features(con)``, window functions in SQL;
- ``pandas-rolling``: the textbook pandas idiom, ``groupby("card_id").rolling("1h", closed="left")``;
- ``pandas-searchsorted``: hand-vectorised pandas + NumPy, binary search over one sorted
  (card, time) key and running sums; the fastest pandas approach we know.

Every contestant starts from the Parquet files and ends with the full result in memory
as a pandas DataFrame ordered by ``transaction_id`` (DuckDB's ``.df()`` included), so
they do the same work. Each one runs in its own process, which gives it the same cold
start and lets us read its peak memory. Before any figure is printed, every
contestant's result is checked against DuckDB's (row count and every 100th row).

    .venv/bin/python benchmarks/feature_query.py                 # 10M payments
    .venv/bin/python benchmarks/feature_query.py --rows 1000000 --data /tmp/wh1m
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from common import machine, peak_rss_mb, reference, warehouse_at

from autograder.tables import assert_same_rows
from booktools.timing import Timing, measure, ratio
from casestudy.warehouse import Warehouse, warehouse_connection

COLUMNS = ["transaction_id", "ts", "card_id", "amount", "card_txn_count_1h", "amount_vs_card_avg_30d", "is_foreign"]
HOUR_US = 3_600 * 1_000_000
DAYS_30_US = 30 * 24 * HOUR_US
SAMPLE_EVERY = 100  # rows compared between contestants: every 100th by transaction_id


def duckdb_features(warehouse: Warehouse) -> pd.DataFrame:
    con = warehouse_connection(warehouse)
    con.execute("SET enable_progress_bar = false")
    # .df() runs the whole query and hands over the same thing the pandas contestants build.
    return reference("warehouse").transaction_features(con).df()


def read_joined(warehouse: Warehouse) -> pd.DataFrame:
    """Payments with ``is_foreign``, read and joined the way a pandas user would."""
    payments = pd.read_parquet(
        warehouse.path("transactions"), columns=["transaction_id", "ts", "card_id", "merchant_id", "amount"]
    )
    merchants = pd.read_parquet(warehouse.path("merchants"), columns=["merchant_id", "country"])
    cards = pd.read_parquet(warehouse.path("cards"), columns=["card_id", "home_country"])
    frame = payments.merge(merchants, on="merchant_id").merge(cards, on="card_id")
    frame["is_foreign"] = frame["country"] != frame["home_country"]
    return frame


def pandas_rolling_features(warehouse: Warehouse) -> pd.DataFrame:
    frame = read_joined(warehouse).sort_values(["card_id", "ts"], ignore_index=True)
    # closed="left" makes each window [ts - w, ts): earlier payments only, as in the SQL.
    # The result comes back grouped by card in the frame's (card, ts) order, hence to_numpy().
    history = frame.groupby("card_id").rolling("1h", on="ts", closed="left")["amount"]
    frame["card_txn_count_1h"] = history.count().fillna(0).astype("int64").to_numpy()
    mean_30d = frame.groupby("card_id").rolling("30D", on="ts", closed="left")["amount"].mean().to_numpy()
    frame["amount_vs_card_avg_30d"] = frame["amount"] / mean_30d  # NaN where no earlier payment
    return frame[COLUMNS].sort_values("transaction_id", ignore_index=True)


def pandas_searchsorted_features(warehouse: Warehouse) -> pd.DataFrame:
    frame = read_joined(warehouse)
    # One int64 key per payment, card first and time second, so that each card's history
    # is one contiguous, sorted run and a window's start is one binary search away.
    ts = frame["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
    ts -= ts.min()
    stride = int(ts.max()) + DAYS_30_US + 1  # wider than any window, so cards never mix
    card = frame["card_id"].to_numpy()
    if (int(card.max()) + 1) * stride >= 2**63:
        raise OverflowError("too many cards for one int64 (card, time) key; run pandas-searchsorted on fewer rows")
    key = card * stride + ts
    order = np.argsort(key, kind="stable")
    key = key[order]
    # Money is whole cents: running sums in int64 cents are exact, so window sums are too.
    cents = np.concatenate([[0], np.cumsum(np.round(frame["amount"].to_numpy()[order] * 100).astype(np.int64))])
    end = np.searchsorted(key, key, "left")  # first payment at this very moment: excluded
    start_1h = np.searchsorted(key, key - HOUR_US, "left")
    start_30d = np.searchsorted(key, key - DAYS_30_US, "left")
    n_30d = end - start_30d
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_30d = (cents[end] - cents[start_30d]) / 100 / n_30d  # NaN where no earlier payment
    count_1h, mean = np.empty_like(end), np.empty(len(key))
    count_1h[order], mean[order] = end - start_1h, mean_30d  # back to the frame's row order
    frame["card_txn_count_1h"] = count_1h
    frame["amount_vs_card_avg_30d"] = frame["amount"] / mean
    return frame[COLUMNS].sort_values("transaction_id", ignore_index=True)


CONTESTANTS = {
    "duckdb": duckdb_features,
    "pandas-rolling": pandas_rolling_features,
    "pandas-searchsorted": pandas_searchsorted_features,
}


def run_contestant(name: str, root: Path, repeat: int, sample: Path) -> None:
    """In a child process: time one contestant, keep a sample of its result, report as JSON."""
    warehouse = Warehouse(root, n_transactions=0, seed=0, days=0)
    kept: dict[str, pd.DataFrame] = {}

    def run() -> None:
        kept.clear()  # drop the previous result first, so the peak is one run's worth
        kept["result"] = CONTESTANTS[name](warehouse)

    # Best of `repeat` runs without a separate warm-up: at 10M rows every run is long
    # enough that one-off costs hardly count, and the best run has none of them.
    timing = measure(name, run, repeat=repeat, warmup=0)
    result = kept["result"]
    result.iloc[::SAMPLE_EVERY].to_parquet(sample)
    print(json.dumps({"seconds": timing.seconds, "rows": len(result), "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="payments in the generated warehouse")
    parser.add_argument("--data", help="warehouse folder: reused if it holds one, else generated there")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contestant; the best one counts")
    parser.add_argument("--contestant", choices=CONTESTANTS, help=argparse.SUPPRESS)  # the child process's job
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contestant:
        return run_contestant(args.contestant, Path(args.data), args.repeat, args.sample)

    print(machine())
    with warehouse_at(args.data, args.rows) as warehouse, tempfile.TemporaryDirectory(prefix="bench-samples-") as tmp:
        timings: dict[str, Timing] = {}
        memory: dict[str, float] = {}
        samples: dict[str, pd.DataFrame] = {}
        for name in CONTESTANTS:
            print(f"running {name} ...", flush=True)
            sample = Path(tmp) / f"{name}.parquet"
            command = [sys.executable, __file__, "--contestant", name, "--data", str(warehouse.root)]
            child = subprocess.run(
                [*command, "--repeat", str(args.repeat), "--sample", str(sample)], capture_output=True, text=True
            )
            if child.returncode:
                sys.exit(f"{name} failed:\n{child.stderr}")
            report = json.loads(child.stdout.strip().splitlines()[-1])
            timings[name] = Timing(name, report["seconds"], report["rows"])
            memory[name] = report["peak_rss_mb"]
            samples[name] = pd.read_parquet(sample)

        # An honest race: everyone computed the same answer (floats to 1e-9, NULL = NULL).
        rows = timings["duckdb"].items
        for name, sample in samples.items():
            assert timings[name].items == rows, f"{name} returned {timings[name].items:,} rows, DuckDB {rows:,}"
            assert_same_rows(sample, samples["duckdb"], f"{name} vs duckdb", rtol=1e-9)
        print(f"all contestants agree with DuckDB on {rows:,} rows (every {SAMPLE_EVERY}th row compared)\n")

        print(f"{rows:,} payments, best of {args.repeat} run(s) each, one process per contestant")
        print(f"{'contestant':<21}{'seconds':>9}{'rows/s':>13}{'peak MiB':>10}  DuckDB speed-up")
        for name, timing in timings.items():
            versus = "-" if name == "duckdb" else f"{ratio(timings['duckdb'], timing):.1f}x"
            print(f"{name:<21}{timing.seconds:>9.2f}{timing.per_second:>13,.0f}{memory[name]:>10,.0f}  {versus}")


if __name__ == "__main__":
    main()
