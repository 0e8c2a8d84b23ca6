"""Measuring speed honestly: warm up first, repeat, report the best run.

Every comparison in the book and in ``benchmarks/`` goes through these helpers, so
"ours vs theirs" is always measured the same way, in one process, side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """How long something took, and how many items it handled in that time."""

    label: str
    seconds: float
    items: int | None = None

    @property
    def per_second(self) -> float:
        """Items per second (rows, samples, requests), for throughput comparisons."""
        if self.items is None:
            raise ValueError(f"{self.label!r} was timed without an item count")
        return self.items / self.seconds


def measure(
    label: str,
    run: Callable[[], object],
    repeat: int = 3,
    warmup: int = 1,
    items: int | None = None,
) -> Timing:
    """Time ``run()``: ``warmup`` untimed calls, then the fastest of ``repeat`` calls.

    The fastest run is the one least disturbed by the rest of the machine; warm-up
    keeps one-off costs (imports, caches, lazy initialisation) out of the figure.
    """
    for _ in range(warmup):
        run()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return Timing(label, best, items)


def ratio(faster: Timing, slower: Timing) -> float:
    """How many times faster ``faster`` ran than ``slower``, as wall-clock time."""
    return slower.seconds / faster.seconds
