"""Drivers: given code that a judged hidden test runs beside the learner's code, with ``learner.beside``.

Some scenarios cannot be played from the judge through stand-ins: a DataLoader that forks
workers around the learner's dataset, a stream that counts how far the learner's code
read it. A driver plays such a scenario in the learner's worker and returns what the
test needs, by value. A driver's own findings come from the process that runs the
learner's code, so a submission could change them as it could its own return values:
drivers report facts, and the hidden tests judge them (see the threat model in
how_to_use.md). Under a self-check or nbgrader, the same drivers run in the notebook's
process, so all modes give equal points.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable

import duckdb
import pyarrow as pa

from autograder.mutation import compile_version, run_learner_tests


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


def seeded_model(model_class, seed: int, *args, **kwargs):
    """``model_class(*args, **kwargs)`` with its weights drawn from ``seed``, leaving torch's global generator as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(*args, **kwargs)


def call_watching(function, *args, **kwargs) -> tuple[object, list[int]]:
    """``function(*args, **kwargs)``, and the positions of the arguments whose tensors or arrays it changed.

    Arguments cross into the learner's process by value, so the judge cannot see them
    changed: a part that must leave its data alone is watched here, where it runs.
    """
    before = [_snapshot(arg) for arg in args]
    result = function(*args, **kwargs)
    return result, [i for i, (arg, old) in enumerate(zip(args, before)) if not _same(_snapshot(arg), old)]


def _snapshot(value):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    return None


def _same(a, b) -> bool:
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return True


def draw_examples(strategy, n: int) -> list | None:
    """``n`` examples of the learner's Hypothesis strategy, the same on every run; None if it is not a strategy."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.strategies import SearchStrategy

    if not isinstance(strategy, SearchStrategy):
        return None
    examples = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example):
        examples.append(example)

    collect()
    return examples


def learner_test_names(learner) -> list[str]:
    """The test functions the learner wrote, across all the modules their notebook exported."""
    return [name for name, value in learner.everything().items() if name.startswith("test") and inspect.isfunction(value)]


def run_learner_tests_on(learner, reference: Callable, source: str | None) -> dict[str, str | None]:
    """The learner's tests that ask for ``reference``'s name as a fixture, run on ``source`` (None: on the reference).

    ``source`` is a version of the reference's source (``mutation.version_source``): a
    correct copy or a mutant, compiled here as the reference was. Per test, None if it
    passed, else why it failed.
    """
    version = reference if source is None else compile_version(reference, source)
    return run_learner_tests(learner.everything(), reference.__name__, version)
