"""``python -m casestudy data OUT``: generate the company's warehouse as Parquet files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from casestudy.warehouse import generate_warehouse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m casestudy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="generate the warehouse as Parquet")
    data.add_argument("out", type=Path)
    data.add_argument(
        "--rows", type=int, default=20_000, help="number of transactions (default 20,000)"
    )
    data.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warehouse = generate_warehouse(args.out, n_transactions=args.rows, seed=args.seed)
    print(f"wrote {warehouse.n_transactions:,} transactions to {warehouse.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
