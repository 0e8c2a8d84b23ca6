"""Drivers of the serving chapter: the learner's app served, validation, and the micro-batcher's scenarios."""

from __future__ import annotations


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
