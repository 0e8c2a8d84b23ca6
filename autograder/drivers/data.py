"""Drivers of the data-infrastructure chapter: relations to write out, DataLoader workers, endless streams."""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa


def relation_of(table: pa.Table) -> duckdb.DuckDBPyRelation:
    """``table`` as a DuckDB relation, in its row order: what a part that writes a relation out is handed."""
    con = duckdb.connect()
    con.register("rows", table)
    return con.sql("SELECT * FROM rows")


def read_with_dataloader(dataset, num_workers: int) -> list:
    """Every batch that a DataLoader with ``num_workers`` forked workers reads from ``dataset`` (already batched)."""
    from torch.utils.data import DataLoader

    return list(DataLoader(dataset, batch_size=None, num_workers=num_workers, multiprocessing_context="fork"))


class CountingStream:
    """An endless stream that remembers how far it has been read."""

    def __init__(self):
        self.read = 0

    def __iter__(self):
        for i in itertools.count():
            self.read = i + 1
            yield i


def first_of_endless_stream(shuffled, buffer_size: int, seed: int) -> tuple[int, int]:
    """``shuffled`` (the learner's) over an endless stream: its first item, and how many items it read to give it."""
    stream = CountingStream()
    first = next(iter(shuffled(stream, buffer_size, seed)))
    return first, stream.read
