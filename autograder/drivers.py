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
    return value if isinstance(value, (int, float, str, type(None))) else None


def _same(a, b) -> bool:
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN is NaN


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


def serve_app(app):
    """``booktools.loopback.serve(app)``: the learner's app served on loopback, from their process, for a ``with`` block.

    The judge shares the worker's network namespace: it sends its requests, and times
    them, from its own process.
    """
    from booktools.loopback import serve

    return serve(app)


class CountingCalls:
    """``function``, counting how often it is called: is a model loaded once, at start-up?"""

    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


def validated(model, data) -> tuple[dict | None, list[dict] | None]:
    """A pydantic ``model`` on ``data``: (its dump, None) if it accepts it, else (None, its errors' loc, msg and type)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data).model_dump(), None
    except ValidationError as e:
        return None, [{"loc": tuple(error["loc"]), "msg": error["msg"], "type": error["type"]} for error in e.errors()]


def app_to_measure():
    """A small app with the kinds of routes that metrics must tell apart."""
    import asyncio

    from fastapi import FastAPI, HTTPException

    app = FastAPI()

    @app.get("/ok")
    async def ok():
        return {"ok": True}

    @app.post("/echo")
    async def echo(body: dict):
        return body

    @app.get("/slow")
    async def slow():
        await asyncio.sleep(0.03)
        return {"slow": True}

    @app.get("/items/{item_id}")
    async def item(item_id: int):
        if item_id == 0:
            raise HTTPException(status_code=404, detail="no item 0")
        return {"item": item_id}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("a bug in a handler")

    return app


def run_coroutine(function, *args, deadline_s: float, **kwargs):
    """``function(*args, **kwargs)``, a coroutine function of the learner's, run to its end within ``deadline_s``.

    In a thread with an event loop of its own (``booktools.loopback.run_async``): TimeoutError past the deadline.
    """
    from booktools.loopback import run_async

    return run_async(function(*args, **kwargs), deadline_s)


# --- The serving chapter's micro-batcher, played in scenarios: each returns what the test judges.


class Recorder:
    """A batch function that notes each batch (its items, when it ran) and doubles every item."""

    def __init__(self, seconds: float = 0.0, poison: object = None):
        self.batches: list[list] = []
        self.seconds, self.poison = seconds, poison

    def __call__(self, items: list) -> list:
        import time

        self.batches.append(list(items))
        if self.seconds:
            time.sleep(self.seconds)  # the model's arithmetic: it holds whatever thread runs it
        if self.poison is not None and self.poison in items:
            raise ValueError(f"cannot score {self.poison!r}")
        return [2 * item for item in items]


def _run(coroutine, timeout: float = 3.0):
    from booktools.loopback import run_async

    return run_async(coroutine, timeout)


def batcher_many_callers(batcher_class) -> tuple[list, list[int]]:
    """100 concurrent callers, max_batch 16: what each got back, and the sizes of the batches predicted."""
    import asyncio

    recorder = Recorder()

    async def scenario():
        async with batcher_class(recorder, max_batch=16, max_wait_ms=50) as batcher:
            return await asyncio.gather(*(batcher.submit(i) for i in range(100)))

    return _run(scenario()), [len(b) for b in recorder.batches]


def batcher_lone_request(batcher_class) -> tuple[object, float]:
    """One request, max_wait_ms 30: its result, and the seconds it took."""
    import time

    async def scenario():
        async with batcher_class(Recorder(), max_batch=64, max_wait_ms=30) as batcher:
            start = time.monotonic()
            result = await batcher.submit(21)
            return result, time.monotonic() - start

    return _run(scenario())


def batcher_late_item(batcher_class) -> tuple[list, list[list]]:
    """A second item 20 ms after the first, max_wait_ms 150: the results, and the batches."""
    import asyncio

    recorder = Recorder()

    async def scenario():
        async with batcher_class(recorder, max_batch=8, max_wait_ms=150) as batcher:
            first = asyncio.create_task(batcher.submit(1))
            await asyncio.sleep(0.02)
            return await asyncio.gather(first, batcher.submit(2))

    return _run(scenario()), recorder.batches


def batcher_steady_trickle(batcher_class) -> float:
    """Items every 10 ms for 0.6 s, max_wait_ms 50: the seconds until the first item was answered."""
    import asyncio
    import time

    async def scenario():
        async with batcher_class(Recorder(), max_batch=1000, max_wait_ms=50) as batcher:
            start, answered = time.monotonic(), []
            first = asyncio.create_task(batcher.submit(0))
            first.add_done_callback(lambda _: answered.append(time.monotonic() - start))
            others = []
            for i in range(1, 60):  # a steady trickle, for 0.6 s
                await asyncio.sleep(0.01)
                others.append(asyncio.create_task(batcher.submit(i)))
            await asyncio.gather(first, *others)
            return answered[0]

    return _run(scenario())


def batcher_failures(batcher_class) -> tuple[list, list]:
    """A batch that raises for item 13, then a caller who gives up: what the three callers got, then what two later ones got.

    An exception comes back as ("raised", its class name, its message).
    """
    import asyncio

    recorder = Recorder(seconds=0.05, poison=13)

    async def scenario():
        async with batcher_class(recorder, max_batch=8, max_wait_ms=20) as batcher:
            outcomes = await asyncio.gather(*(batcher.submit(i) for i in (11, 12, 13)), return_exceptions=True)
            impatient = asyncio.create_task(batcher.submit(5))
            await asyncio.sleep(0.03)  # its batch is now running (for 50 ms)
            impatient.cancel()
            await asyncio.sleep(0.1)
            return outcomes, await asyncio.gather(*(batcher.submit(i) for i in (1, 2)), return_exceptions=True)

    def plain(outcome):
        return ("raised", type(outcome).__name__, str(outcome)) if isinstance(outcome, BaseException) else outcome

    outcomes, later = _run(scenario())
    return [plain(o) for o in outcomes], [plain(o) for o in later]


def batcher_heartbeat(batcher_class) -> tuple[object, float]:
    """A 300 ms batch while a heartbeat ticks every 10 ms: the result, and the longest the loop went without a tick."""
    import asyncio
    import time

    async def scenario():
        async with batcher_class(Recorder(seconds=0.3), max_batch=4, max_wait_ms=1) as batcher:
            job = asyncio.create_task(batcher.submit(3))
            longest, last = 0.0, time.monotonic()
            while not job.done():  # a heartbeat: how long does the loop go without running it?
                await asyncio.sleep(0.01)
                now = time.monotonic()
                longest, last = max(longest, now - last), now
            return await job, longest

    return _run(scenario())


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
