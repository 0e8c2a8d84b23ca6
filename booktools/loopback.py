"""A real server on loopback, started and stopped in one ``with``; coroutines run from anywhere.

Serving exercises are graded against a real HTTP server, not an in-process imitation:
uvicorn serves the app on 127.0.0.1 (the only network a grading sandbox has), on a port
the system picks, in a background thread, and always stops when the ``with`` ends::

    with serve(app) as server:
        httpx.get(f"{server.url}/health")

The same helper serves the lessons, the notebooks' demonstrations, the hidden tests and
the course's own tests. Everything has a deadline, so a broken app fails a test instead
of hanging it.

``run_async(coroutine)`` runs a coroutine to completion in a thread with an event loop
of its own: it works the same in a script, in pytest and inside Jupyter, whose own
event loop is already running and refuses ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

HOST = "127.0.0.1"  # loopback only: nothing outside this machine can reach a test server


class ServerDidNotStart(Exception):
    """The app did not serve: its start-up failed or took too long (the message says why)."""


@dataclass
class RunningServer:
    """A server that ``serve`` started: where to reach it, and what it logged."""

    url: str
    port: int
    _log: list[str] = field(default_factory=list, repr=False)

    @property
    def errors(self) -> list[str]:
        """The errors the server logged so far (an app's exceptions, with their tracebacks)."""
        return list(self._log)

    def last_error(self, wait: float = 0.5) -> str:
        """The last line of the last error logged, e.g. ``ValueError: ...``; empty if none.

        A server sends its 500 before it logs the exception behind it, so this waits up
        to ``wait`` seconds for the log to arrive.
        """
        deadline = time.monotonic() + wait
        while not self._log and time.monotonic() < deadline:
            time.sleep(0.01)
        for entry in reversed(self._log):
            lines = [line for line in entry.strip().splitlines() if line.strip()]
            if lines:
                return lines[-1].strip()
        return ""


@contextmanager
def serve(
    app: Any, startup_timeout: float = 10.0, shutdown_timeout: float = 5.0
) -> Iterator[RunningServer]:
    """Serve the ASGI ``app`` with uvicorn on 127.0.0.1 until the ``with`` block ends.

    Runs the app's lifespan: start-up first (raising ServerDidNotStart, with the app's
    own error message, if it fails or lasts more than ``startup_timeout`` seconds),
    shutdown at the end.
    """
    # A socket bound here, on a port the system picks, is handed to uvicorn: no race
    # with another process for a "free" port between choosing it and binding it.
    # IPPROTO_TCP said explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on connections whose protocol reads as TCP, and with it on, every response waits
    # 40 ms for the client's delayed acknowledgement of its headers.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="h11",
        loop="asyncio",
        ws="none",
        lifespan="on",
        log_config=None,  # leave the process's logging configuration alone
        access_log=False,
        # A request still running when the test ends is cut off after this, not waited for.
        timeout_graceful_shutdown=1,
    )
    server = _QuickServer(config)
    running = RunningServer(url=f"http://{HOST}:{port}", port=port)
    thread = threading.Thread(
        target=_run, args=(server, sock), name=f"loopback-server-{port}", daemon=True
    )
    recorder = _ErrorRecorder(running._log, thread)
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(recorder)
    try:
        thread.start()
        _wait_until_started(server, thread, running, startup_timeout)
        yield running
    finally:
        _stop(server, thread, shutdown_timeout)
        uvicorn_log.removeHandler(recorder)
        sock.close()


def run_async(coroutine: Coroutine, timeout: float = 30.0) -> Any:
    """Run ``coroutine`` in a new thread with its own event loop; return its result or raise.

    After ``timeout`` seconds it is cancelled and TimeoutError is raised. A coroutine
    that blocks its loop (``time.sleep`` instead of ``await asyncio.sleep``) cannot be
    cancelled: the thread is then left behind, and TimeoutError raised all the same.
    """
    outcome: dict[str, Any] = {}

    async def bounded():
        return await asyncio.wait_for(coroutine, timeout)

    def target():
        try:
            outcome["result"] = asyncio.run(bounded())
        except BaseException as e:  # handed to the caller's thread, whatever it is
            outcome["error"] = e

    thread = threading.Thread(target=target, name="run-async", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)
    if thread.is_alive():
        raise TimeoutError(
            f"did not finish within {timeout:g} s, and blocks its event loop "
            "(time.sleep or a busy loop?)"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


class _QuickServer(uvicorn.Server):
    """uvicorn's server, looking for the signal to stop every 5 ms instead of every 100 ms.

    Tests start and stop a server each: the stop should not take longer than the test.
    """

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            await asyncio.sleep(0.005)


def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        server.run(sockets=[sock])
    except SystemExit:
        pass  # uvicorn exits this way when the app's start-up fails; the log says why
    except BaseException as e:
        server.failure = e  # type: ignore[attr-defined]


def _wait_until_started(
    server: uvicorn.Server, thread: threading.Thread, running: RunningServer, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            reason = "\n".join(running.errors) or repr(
                getattr(server, "failure", "no error was logged")
            )
            raise ServerDidNotStart(f"the app did not start:\n{reason}")
        if time.monotonic() > deadline:
            raise ServerDidNotStart(
                f"the app did not start within {timeout:g} s "
                "(is its start-up, the lifespan, stuck?)"
            )
        time.sleep(0.002)


def _stop(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    server.should_exit = True
    thread.join(timeout)
    if thread.is_alive():
        # Requests that do not end: stop without waiting for them. A thread stuck in
        # the app's own code cannot be stopped; it is a daemon and dies with the process.
        server.force_exit = True
        thread.join(timeout)


class _ErrorRecorder(logging.Handler):
    """Keeps the errors that one server's thread logs, tracebacks included."""

    def __init__(self, sink: list[str], thread: threading.Thread):
        super().__init__(level=logging.ERROR)
        self.sink, self.thread = sink, thread
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread.ident:
            self.sink.append(self.format(record))
