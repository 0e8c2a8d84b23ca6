"""Hidden tests of exercises/serving/latency_and_batching.ipynb.

Asynchronous code runs through ``booktools.loopback.run_async``, in a thread with an
event loop of its own and a deadline: the same in the grader and inside Jupyter,
whose own loop is already running, and a batcher that waits forever fails its test
instead of hanging the run. The micro-batcher's scenarios are drivers
(``autograder/drivers.py``), played beside the learner's code. The load generator is
tested against small servers that each test starts on 127.0.0.1 and stops at its end.

Timings are checked with wide margins (a busy grading machine stalls threads for tens
of milliseconds); each bound separates a correct answer from the mistake it catches
by several times the margin.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from contextlib import contextmanager

import pytest
from fastapi import FastAPI, Response

from autograder.drivers.calls import call_watching, run_coroutine
from autograder.drivers.serving import (
    batcher_failures,
    batcher_heartbeat,
    batcher_late_item,
    batcher_lone_request,
    batcher_many_callers,
    batcher_steady_trickle,
)
from autograder.judge import type_name
from booktools.loopback import serve

# The micro-batcher's asynchronous scenarios are drivers, played in the learner's process
# (see autograder/judge.py); the load generator's target server runs here, in the judge, and is timed here.

# --- Part 1: latency_report ----------------------------------------------------------------------

KEYS = ["count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"]


def report_of(learner, values) -> dict:
    report = learner.latency_report(values)
    assert isinstance(report, dict) and sorted(report) == sorted(KEYS), (
        f"latency_report should return a dict with the keys {KEYS}; got {report if not isinstance(report, dict) else sorted(report)}"
    )
    return report


def assert_report(report: dict, expected: dict, sample: str) -> None:
    for key, want in expected.items():
        got = report[key]
        assert isinstance(got, int | float) and math.isclose(got, want, rel_tol=1e-9), (
            f"for {sample}, {key} should be {want:g}; got {got!r}"
        )


@pytest.mark.graded("latency_report", points=1, visible=True)
def test_report_on_one_to_a_hundred(learner):
    "Reports count, mean, nearest-rank p50/p95/p99 and max of 1..100 given in a shuffled order."
    values = list(range(1, 101))
    random.Random(4).shuffle(values)
    report = report_of(learner, [float(v) for v in values])
    assert_report(
        report, {"count": 100, "mean_ms": 50.5, "p50_ms": 50, "p95_ms": 95, "p99_ms": 99, "max_ms": 100}, "1, 2, ..., 100"
    )
    assert isinstance(report["count"], int), f"count should be an int, not {type(report['count']).__name__}"


@pytest.mark.graded("latency_report", points=1, visible=True)
def test_report_on_small_samples(learner):
    "Uses nearest rank, not interpolation, on small samples: [30, 10, 40, 20] and a single value."
    assert_report(
        report_of(learner, [30.0, 10.0, 40.0, 20.0]),
        {"count": 4, "mean_ms": 25, "p50_ms": 20, "p95_ms": 40, "p99_ms": 40, "max_ms": 40},
        "[30, 10, 40, 20] (nearest rank: the k-th smallest, k = ceil(p * n / 100))",
    )
    assert_report(
        report_of(learner, [12.5]),
        {"count": 1, "mean_ms": 12.5, "p50_ms": 12.5, "p95_ms": 12.5, "p99_ms": 12.5, "max_ms": 12.5},
        "a single latency [12.5]",
    )
    values = [float(v) for v in (7, 3, 9, 1, 5, 8, 2, 6, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)]
    assert_report(report_of(learner, values), {"p50_ms": 10, "p95_ms": 19, "p99_ms": 20}, "1, 2, ..., 20 in another order")


@pytest.mark.graded("latency_report", points=1)
def test_report_edge_cases(learner):
    "Leaves the caller's list in its order; raises ValueError for no latencies, a negative one or NaN."
    _, changed = learner.beside(call_watching, learner.latency_report, [5.0, 1.0, 3.0])
    assert not changed, "latency_report reordered the caller's list: sort a copy"
    for bad, what in (([], "an empty list"), ([3.0, -1.0], "a negative latency"), ([3.0, math.nan], "a NaN latency")):
        try:
            learner.latency_report(bad)
        except ValueError as e:
            assert str(e), f"the ValueError for {what} should say what is wrong"
            continue
        raise AssertionError(f"latency_report should raise ValueError for {what}")


# --- Part 2: MicroBatcher ---------------------------------------------------------------------


def run(learner, scenario, timeout_message: float = 3.0):
    """A scenario (a driver) played with the learner's MicroBatcher; one that never answers fails instead of hanging."""
    try:
        return learner.beside(scenario, learner.MicroBatcher)
    except TimeoutError:
        raise AssertionError(
            f"no answer within {timeout_message:g} s: does the worker wait for a full batch, or stop after its first batch?"
        ) from None


@pytest.mark.graded("micro_batcher", points=1, visible=True)
def test_each_caller_gets_its_own_result(learner):
    "Gives each of 100 concurrent callers its own result, in batches of at most max_batch, far fewer than 100."
    results, sizes = run(learner, batcher_many_callers)
    wrong = [i for i, r in enumerate(results) if r != 2 * i]
    assert not wrong, f"caller {wrong[0]} submitted {wrong[0]} and should get {2 * wrong[0]}, but got {results[wrong[0]]!r}"
    assert sizes and max(sizes) <= 16, f"batches should hold at most max_batch = 16 items; their sizes were {sizes}"
    assert sum(sizes) == 100, f"each item should be predicted exactly once; the batches held {sum(sizes)} items"
    assert len(sizes) <= 10, (
        f"100 items queued at once, max_batch 16: expected about 7 batches, got {len(sizes)} of sizes {sizes}"
    )


@pytest.mark.graded("micro_batcher", points=1, visible=True)
def test_lone_request_waits_at_most_max_wait(learner):
    "Answers a lone request after about max_wait_ms, without waiting for a full batch."
    result, seconds = run(learner, batcher_lone_request)
    assert result == 42, f"submit(21) should return 42, got {result!r}"
    assert seconds < 0.3, f"a lone request with max_wait_ms=30 took {seconds * 1000:.0f} ms; it should take about 30 ms"


@pytest.mark.graded("micro_batcher", points=1)
def test_waits_for_more_items(learner):
    "Waits up to max_wait_ms for more: an item sent 20 ms after the first joins its batch."
    results, batches = run(learner, batcher_late_item)
    assert results == [2, 4], "submit(1) and submit(2) should return 2 and 4"
    assert [len(b) for b in batches] == [2], (
        f"with max_wait_ms=150, an item that arrives 20 ms after the first should join its batch; the batches were {batches}"
    )


@pytest.mark.graded("micro_batcher", points=1)
def test_wait_counts_from_the_first_item(learner):
    "Closes a batch max_wait_ms after its first item, even while items keep arriving every 10 ms."
    seconds = run(learner, batcher_steady_trickle)
    assert seconds < 0.3, (
        f"with items arriving every 10 ms and max_wait_ms=50, the first item was answered after {seconds * 1000:.0f} ms: "
        "the wait must count from the batch's first item, not restart with each new one"
    )


@pytest.mark.graded("micro_batcher", points=1)
def test_survives_failed_batches_and_callers_who_give_up(learner):
    "Gives a failing batch's error to each of its callers, skips callers who gave up, and keeps working."
    outcomes, later = run(learner, batcher_failures)
    assert all(isinstance(o, tuple) and o[:2] == ("raised", "ValueError") and "13" in o[2] for o in outcomes), (
        f"predict_batch raised ValueError for the batch [11, 12, 13]: each of its callers should get that error; got {outcomes}"
    )
    assert later == [2, 4], (
        f"after a failed batch and a caller who gave up, submit(1) and submit(2) should still return 2 and 4; got "
        f"{[repr(x) for x in later]} (does an error, or a result set on a cancelled future, end the worker?)"
    )


@pytest.mark.graded("micro_batcher", points=1)
def test_keeps_the_event_loop_free(learner):
    "Runs predict_batch in a worker thread: the event loop keeps running while a batch is predicted."
    result, longest = run(learner, batcher_heartbeat)
    assert result == 6, f"submit(3) should return 6, got {result!r}"
    assert longest < 0.2, (
        f"while a 300 ms batch was predicted, the event loop stood still for {longest * 1000:.0f} ms: run predict_batch in a "
        "worker thread (asyncio.to_thread), or every other request waits for the model"
    )


# --- Part 3: load_test --------------------------------------------------------------------------


def target_app() -> tuple[FastAPI, list[float]]:
    """A server to load: /ok at once, /slow after 200 ms, /hang for 600 ms, /flaky 500 on every other request."""
    app, arrivals = FastAPI(), []
    counter = iter(range(1_000_000))

    @app.get("/ok")
    async def ok():
        arrivals.append(time.monotonic())
        return {"ok": True}

    @app.post("/ok")
    async def ok_post(body: dict):
        arrivals.append(time.monotonic())
        return {"echo": body}

    @app.get("/slow")
    async def slow():
        arrivals.append(time.monotonic())
        await asyncio.sleep(0.2)
        return {"slow": True}

    @app.get("/hang")
    async def hang():
        arrivals.append(time.monotonic())
        await asyncio.sleep(0.6)  # twice the tests' timeout
        return {"late": True}

    @app.get("/flaky")
    async def flaky():
        arrivals.append(time.monotonic())
        return Response(status_code=500 if next(counter) % 2 else 200)

    return app, arrivals


@contextmanager
def target():
    app, arrivals = target_app()
    with serve(app) as server:
        yield server.url, arrivals


def samples_of(learner, url: str, deadline: float, **options) -> tuple[list, float]:
    start = time.monotonic()
    try:
        samples = learner.beside(run_coroutine, learner.load_test, url, deadline_s=deadline, **options)
    except TimeoutError:
        raise AssertionError(f"load_test({options}) ran for over {deadline:g} s: it should stop on time") from None
    assert isinstance(samples, list), f"load_test should return a list of Sample, not {type_name(samples)}"
    return samples, time.monotonic() - start


@pytest.mark.graded("load_test", points=1, visible=True)
def test_sends_rate_times_duration_requests(learner):
    "Sends rate x duration requests (GET, or POST with the payload), one Sample each, due at i / rate."
    with target() as (url, arrivals):
        samples, _ = samples_of(learner, f"{url}/ok", 10, rate=40, duration=0.5)
        posted, _ = samples_of(learner, f"{url}/ok", 10, rate=20, duration=0.5, payload={"x": 1})
    assert len(samples) == 20, f"40 requests a second for 0.5 s is 20 requests; got {len(samples)} samples"
    assert len(posted) == 10 and all(s.status == 200 for s in posted), (
        f"with a payload, the requests should be POSTs of it as JSON, answered 200; got statuses {[s.status for s in posted]}"
    )
    assert len(arrivals) == 30, f"the server received {len(arrivals)} requests; 30 were due"
    for i, sample in enumerate(samples):
        assert sample.status == 200, f"request {i} should have status 200, got {sample.status!r}"
        assert math.isclose(sample.start_s, i / 40, abs_tol=1e-6), (
            f"request {i} was due at {i / 40:g} s; its start_s is {sample.start_s!r}"
        )
        assert 0 < sample.latency_ms < 2000, f"request {i}: latency_ms {sample.latency_ms!r} (milliseconds, from when it was due)"


@pytest.mark.graded("load_test", points=1, visible=True)
def test_open_loop(learner):
    "Keeps sending at the rate while a slow server (200 ms a request) falls behind: open loop."
    with target() as (url, arrivals):
        samples, seconds = samples_of(learner, f"{url}/slow", 10, rate=40, duration=0.5)
    assert len(arrivals) == 20, f"20 requests were due; the server received {len(arrivals)}"
    spread = arrivals[-1] - arrivals[0]
    assert 0.3 < spread < 0.75, (
        f"the 20 requests reached the server over {spread:.2f} s; sent at 40 a second they span 0.475 s. "
        + (
            "Send each request when it is due, without waiting for the previous answer"
            if spread >= 0.75
            else "Pace them: request i is due at i / rate"
        )
    )
    assert seconds < 1.6, f"with answers taking 200 ms, the test should end about 0.7 s after it started, not {seconds:.1f} s"
    assert all(s.status == 200 and s.latency_ms >= 190 for s in samples), (
        f"each request took at least 200 ms to answer; got {[(s.status, round(s.latency_ms)) for s in samples][:5]} ..."
    )


@pytest.mark.graded("load_test", points=1)
def test_stops_on_time(learner):
    "Gives up on requests after `timeout` seconds: status None, and the test ends on time."
    with target() as (url, _):
        samples, seconds = samples_of(learner, f"{url}/hang", 10, rate=20, duration=0.5, timeout=0.3)
    assert len(samples) == 10, f"10 requests were due; got {len(samples)} samples"
    assert seconds < 1.5, f"the last request was due at 0.45 s and given up 0.3 s later; load_test took {seconds:.1f} s"
    assert all(s.status is None for s in samples), (
        f"requests without an answer within the timeout should have status None; got {[s.status for s in samples]}"
    )
    assert all(250 <= s.latency_ms < 900 for s in samples), (
        f"a request given up after 0.3 s has a latency of about 300 ms; got {[round(s.latency_ms) for s in samples]}"
    )


@pytest.mark.graded("load_test", points=1)
def test_records_errors_and_refused_connections(learner):
    "Records 500s as they come and a server that is not there as status None, without raising."
    with target() as (url, _):
        samples, _ = samples_of(learner, f"{url}/flaky", 10, rate=40, duration=0.25)
        port = url.rsplit(":", 1)[1]
    statuses = sorted(s.status for s in samples)
    assert statuses == [200] * 5 + [500] * 5, f"/flaky answers 200 and 500 in turn: expected five of each, got {statuses}"
    # The server is stopped now: nothing listens on its port.
    refused, seconds = samples_of(learner, f"http://127.0.0.1:{port}/ok", 10, rate=20, duration=0.25, timeout=1.0)
    assert len(refused) == 5 and all(s.status is None for s in refused), (
        f"requests to a port where nothing listens should be recorded with status None; got {[s.status for s in refused]}"
    )
