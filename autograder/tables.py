"""Table assertions for hidden tests, shared by every chapter.

Failure messages are addressed to the learner: they say what was expected and what
came back, never show the test's code, and never reveal the reference answer beyond
the first row that differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from autograder.judge import type_name


def frame_of(result: object, what: str) -> pd.DataFrame:
    """A DataFrame from whatever a part returned (DuckDB relation, Arrow table, DataFrame)."""
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, duckdb.DuckDBPyRelation) or type_name(result) == "DuckDBPyRelation":
        return result.df()  # of a relation the learner's worker keeps, the frame comes back by value
    if isinstance(result, pa.Table):
        return result.to_pandas()
    raise AssertionError(f"{what} should return a DuckDB relation or a DataFrame, but returned {type_name(result)}")


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

    ``key`` names a column that identifies rows: values are then matched by key and
    reported by key. ``ordered`` says whether row order is part of the answer.
    """
    assert_columns(got, expected.columns, what)
    assert len(got) == len(expected), f"{what} should have {len(expected)} rows, but has {len(got)}"
    if key:
        # Values first, matched by key, so a wrong value is reported as such and not as
        # a row out of place; then the order, if it is part of the answer.
        _assert_same_values(got.sort_values(key, kind="stable"), expected.sort_values(key, kind="stable"), what, key, rtol)
        if ordered:
            got_keys, expected_keys = got[key].tolist(), expected[key].tolist()
            assert got_keys == expected_keys, (
                f"{what} has the right rows in the wrong order: expected {key} {_show_list(expected_keys)}, "
                f"got {_show_list(got_keys)}"
            )
        return
    if not ordered:
        by = list(expected.columns)
        got, expected = got.sort_values(by, kind="stable"), expected.sort_values(by, kind="stable")
    _assert_same_values(got, expected, what, None, rtol)


def _assert_same_values(got: pd.DataFrame, expected: pd.DataFrame, what: str, key: str | None, rtol: float) -> None:
    got, expected = got.reset_index(drop=True), expected.reset_index(drop=True)
    if key:
        assert got[key].tolist() == expected[key].tolist(), (
            f"{what} should have one row per {key} in {_show_list(sorted(expected[key].tolist()))}; "
            f"got {_show_list(sorted(got[key].tolist()))}"
        )
    for column in expected.columns:
        mismatch = _mismatches(got[column], expected[column], rtol)
        if mismatch.any():
            row = int(np.flatnonzero(mismatch)[0])
            where = f" (row with {key} = {_show(expected[key][row])})" if key else f" (row {row})"
            raise AssertionError(
                f"{what}: column `{column}` is wrong{where}: expected {_show(expected[column][row])}, "
                f"got {_show(got[column][row])}; {int(mismatch.sum())} of {len(expected)} rows differ in this column"
            )


def _show(value: object) -> str:
    """A value as a learner would write it: 2, not np.int64(2); NULL for missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "NULL"
    if isinstance(value, pd.Timestamp):
        return str(value)
    return repr(value.item() if hasattr(value, "item") else value)


def _show_list(values: list, limit: int = 5) -> str:
    shown = ", ".join(_show(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


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
