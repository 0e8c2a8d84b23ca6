"""Helpers for hidden tests, shared by every chapter.

Failure messages are addressed to the learner: they say what was expected and what
came back, never show the test's code, and never reveal the reference answer beyond
the first row that differs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from autograder.datasets import Warehouse

TABLES = ("cards", "merchants", "transactions", "chargebacks")


def warehouse_connection(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    """The tests' own connection to a generated warehouse: one view per table.

    Parts that query the warehouse get this connection, not the learner's
    ``open_warehouse``, so one mistake is not punished twice.
    """
    con = duckdb.connect()
    for table in TABLES:
        hive = ", hive_partitioning = true" if table == "transactions" else ""
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{warehouse.glob(table)}'{hive})")
    return con


def tiny_warehouse(**tables: Mapping[str, Sequence]) -> duckdb.DuckDBPyConnection:
    """A connection holding small hand-made tables, for edge cases a generator rarely hits."""
    con = duckdb.connect()
    for name, columns in tables.items():
        con.register(f"_{name}", pa.table(dict(columns)))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
        con.unregister(f"_{name}")
    return con


def frame_of(result: object, what: str) -> pd.DataFrame:
    """A DataFrame from whatever a part returned (DuckDB relation, Arrow table, DataFrame)."""
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, duckdb.DuckDBPyRelation):
        return result.df()
    if isinstance(result, pa.Table):
        return result.to_pandas()
    raise AssertionError(f"{what} should return a DuckDB relation or a DataFrame, but returned {type(result).__name__}")


def assert_columns(frame: pd.DataFrame, expected: Sequence[str], what: str) -> None:
    got = list(frame.columns)
    assert got == list(expected), f"{what} should have the columns {list(expected)} in that order, but has {got}"


def assert_same_rows(
    got: pd.DataFrame,
    expected: pd.DataFrame,
    what: str,
    ordered: bool = True,
    key: str | None = None,
    rtol: float = 1e-9,
) -> None:
    """Compare result sets: same columns, same rows; floats within ``rtol``; NULL equals NULL.

    ``ordered`` says whether row order is part of the answer. Without it both sides
    are sorted by all columns (or ``key``) first.
    """
    assert_columns(got, expected.columns, what)
    assert len(got) == len(expected), f"{what} should have {len(expected)} rows, but has {len(got)}"
    if not ordered:
        by = [key] if key else list(expected.columns)
        got = got.sort_values(by, kind="stable")
        expected = expected.sort_values(by, kind="stable")
    got, expected = got.reset_index(drop=True), expected.reset_index(drop=True)
    for column in expected.columns:
        mismatch = _mismatches(got[column], expected[column], rtol)
        if mismatch.any():
            row = int(np.flatnonzero(mismatch)[0])
            where = f" (row with {key} = {expected[key][row]})" if key else f" (row {row})"
            raise AssertionError(
                f"{what}: column `{column}` is wrong{where}: expected {expected[column][row]!r}, got {got[column][row]!r}"
                f"; {int(mismatch.sum())} of {len(expected)} rows differ in this column"
            )


def _mismatches(got: pd.Series, expected: pd.Series, rtol: float) -> np.ndarray:
    got_null, expected_null = got.isna().to_numpy(), expected.isna().to_numpy()
    if pd.api.types.is_numeric_dtype(expected) and not pd.api.types.is_bool_dtype(expected):
        try:
            a = got.astype("float64").to_numpy()
        except (TypeError, ValueError):
            return np.ones(len(got), dtype=bool)
        b = expected.astype("float64").to_numpy()
        close = np.isclose(a, b, rtol=rtol, atol=0.0, equal_nan=True)
        return ~close | (got_null != expected_null)
    both_null = got_null & expected_null
    equal = (got.astype(object).to_numpy() == expected.astype(object).to_numpy()) | both_null
    return ~equal
