"""Running a notebook's hidden tests, in this process or in a fresh one.

In this process: the self-check and the nbgrader bridge, inside the learner's kernel,
against the notebook's own namespace. In fresh processes: ``grade``, against the
exported module, with a wall-clock limit that kills the whole process group: the
tests run in a judge, apart from the learner's code (judge.py). Both use the same
plugin and so give the same points.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import select
import sys
import tempfile
import threading
import types
from functools import cache
from pathlib import Path

import pytest

from autograder import pytest_plugin
from autograder.pytest_plugin import Grading, LearnerCode, shorten
from autograder.results import FAILED, NOT_ATTEMPTED, PASSED, GradedTest
from autograder.sandbox import (
    DEFAULT_TEST_TIMEOUT,
    Limits,
    Sandbox,
    kill_process_group,
    namespaces_available,
    remove_cgroup,
    run_judged,
    tests_digest,
)
from autograder.signing import key_path

# One configuration for both ways of running: no cache, our own messages instead of
# pytest's assertion rewriting, no ini file picked up from wherever we happen to be, and
# no hunt for unraisable exceptions at the end (two full garbage collections, half a
# second in a process that holds PyTorch, for warnings that grading never shows).
PYTEST_ARGS = [
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:unraisableexception",
    "--assert=plain",
    "--import-mode=importlib",
    "-c",
    os.devnull,
]

FORGED = (
    "the results of this grading are not of the shape the judge writes (a verdict twice, one for a test that was not "
    "planned, or far more records than tests): nothing this run reported counts"
)
STATUSES = (PASSED, FAILED, NOT_ATTEMPTED)
# One record: a test's message is shortened to 2,000 characters before it is sent.
MAX_RECORD_BYTES = 64 * 1024
TAMPERED = (
    "the hidden tests were changed or removed before they could run, perhaps by a submission graded at the same time: "
    "regrade this submission with --workers 1 --force"
)


def run_in_process(
    test_file: Path,
    learner: LearnerCode,
    part: str | None = None,
    visible_only: bool = False,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
) -> list[GradedTest]:
    """Run the tests of ``test_file`` (optionally one part, visible ones only) against ``learner``."""
    verdicts: list[GradedTest] = []

    def keep_finished(event: str, test_id: str, result: GradedTest) -> None:
        if event == "finished":
            verdicts.append(result)

    plugin = Grading(lambda: learner, keep_finished, part=part, visible_only=visible_only, test_timeout=test_timeout)
    args = [str(test_file), "--rootdir", str(test_file.parent), "--capture=sys", *PYTEST_ARGS]
    # pytest's own report would clutter the notebook, and anything on stderr makes
    # nbgrader give the cell zero points: both are kept out of the cell's output.
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        code = pytest.main(args, plugins=[pytest_plugin, plugin])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RuntimeError(f"the hidden tests in {test_file} could not run (pytest exit code {code}):\n{out.getvalue()}")
    return verdicts


def planned_tests(test_file: Path) -> dict[str, GradedTest]:
    """The graded tests that ``test_file`` holds (parametrized cases one by one) by test id, without running them.

    Collected once per version of the hidden tests, in a process forked from the grading
    server: it has the libraries the tests import loaded already, where importing them
    here would cost seconds and memory, and pytest's modules from one collection do not
    linger to be mistaken for another folder's file of the same name.
    """
    return dict(_planned(test_file, tests_digest(test_file.parent)))


@cache
def _planned(test_file: Path, digest: str) -> dict[str, GradedTest]:
    """Keyed by ``digest`` too, so that hidden tests edited since are collected again."""
    receive, send = multiprocessing.Pipe(duplex=False)
    process = _fork_server().Process(target=_collect, args=(test_file, send), name="autograder-collect")
    _start_without_main(process)
    send.close()
    planned = receive.recv()
    process.join()
    if isinstance(planned, RuntimeError):
        raise planned
    return planned


def _collect(test_file: Path, send: multiprocessing.connection.Connection) -> None:
    planned: dict[str, GradedTest] = {}

    def keep_collected(event: str, test_id: str, result: GradedTest) -> None:
        planned[test_id] = result

    def no_learner() -> LearnerCode:
        raise RuntimeError("tests are only collected here, never run")

    plugin = Grading(no_learner, keep_collected)
    # Without other plugins, as in the graded process.
    args = [str(test_file), "--rootdir", str(test_file.parent), "--collect-only", "--disable-plugin-autoload", *PYTEST_ARGS]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()):
        code = pytest.main(args, plugins=[pytest_plugin, plugin])
    if code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        send.send(planned)
    else:
        send.send(
            RuntimeError(f"the hidden tests in {test_file} could not be collected (pytest exit code {code}):\n{out.getvalue()}")
        )


def run_in_subprocess(
    test_file: Path,
    package_root: Path,
    modules: list[str],
    limits: Limits = Limits(),
) -> tuple[list[GradedTest], str | None]:
    """Run ``test_file`` in a judge, against the learner's ``modules`` (importable from ``package_root``) in a worker.

    Both are forked from the grading server (see ``sandbox.run_judged``); the worker may
    use at most ``limits.memory_mb`` of address space besides the libraries it was
    forked with: a submission that allocates more gets a MemoryError in its own test
    instead of taking the machine down.

    Returns a verdict for every test the hidden tests plan and, if the run did not finish
    normally, a message saying why; tests that never ran then count as failed with that
    message, and so does every test of a run whose hidden tests were changed.
    """
    planned = planned_tests(test_file)
    collected, finished, forged, problem, timed_out = {}, {}, False, None, False
    # The submission works in a folder of its own; the judge's files (the data its tests
    # generate, the folder it shares with the worker, the log) sit in another.
    try:
        with (
            tempfile.TemporaryDirectory(prefix="autograder-run-") as work,
            tempfile.TemporaryDirectory(prefix="autograder-grader-") as grader,
        ):
            # The judge reads the hidden tests where they are: the learner's worker never
            # sees them (see sandbox.confine_worker). No traceback, no summary: pytest's
            # report, which quotes the hidden tests' code, stays out of the log.
            args = [str(test_file), "--rootdir", str(test_file.parent), "-p", "autograder.pytest_plugin", "--tb=no", "-rN"]
            args += [*PYTEST_ARGS, "--test-timeout", str(limits.test_seconds), "--device", limits.device]
            args += ["--basetemp", str(Path(grader) / "basetemp"), "--exchange-folder", str(Path(grader) / "exchange")]
            # CUDA reserves tens of GiB of address space at start-up, so on the GPU the cap
            # on address space would stop every test: it is left off (see the guide).
            memory_mb = limits.memory_mb if limits.device == "cpu" else None
            sandbox = Sandbox(
                work,
                str(package_root),
                grader,
                str(test_file.parent),
                tests_digest(test_file.parent),
                memory_mb,
                limits.file_mb,
                limits.processes,
                namespaces_available(),
                secret=str(key_path().parent),
            )
            # Each test reports two records: more than that, and then some, is no plugin's doing.
            problem, timed_out, reported = _run_killable(args, sandbox, modules, limits.notebook_seconds, 2 * len(planned) + 8)
            collected, finished, forged = _read_results(reported, planned)
    except FileNotFoundError:
        pass  # Without a private /tmp, another grading may remove this one's files: reported below.
    if forged:
        finished, problem = {}, FORGED
    elif collected != _by_points(planned):
        # A run collects exactly the planned tests before it loads the submission. One that
        # did not, unless it ran out of time first, had its tests or its results changed
        # from outside (or, far less likely, crashed while collecting: that problem is kept
        # too). Nothing it reported counts.
        finished = {}
        if not timed_out:
            problem = TAMPERED if problem is None else f"{TAMPERED} ({problem})"
    verdicts = [finished.get(key, _did_not_run(test, problem)) for key, test in planned.items()]
    if problem is None and len(finished) < len(planned):
        problem = "the test run stopped before every test had finished"
    return verdicts, problem


def _by_points(tests: dict[str, GradedTest]) -> dict[str, tuple[str, float]]:
    # Not by description: one formatted from a parameter may differ between processes.
    return {key: (test.part, test.max_score) for key, test in tests.items()}


@cache
def _fork_server() -> multiprocessing.context.BaseContext:
    # Heavy libraries are imported once, by the server; every notebook's process is
    # forked from it with them loaded (see autograder/preload.py).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["autograder.preload"])
    # A submission's DataLoader workers leave semaphores that its process, ended with
    # os._exit, never releases; the resource tracker (started with the server, with
    # these warning options) would report them to the instructor at exit. They are freed.
    sys.warnoptions.append("ignore::UserWarning:multiprocessing.resource_tracker")
    return context


def _run_killable(
    args: list[str], sandbox: Sandbox, modules: list[str], timeout: float, max_records: int
) -> tuple[str | None, bool, list[bytes] | None]:
    """Why the run did not end normally, if it did not; whether it ran out of time; and what it reported.

    The run reports its results over a pipe, one record per line, read as they come (at
    most ``max_records`` of them; None if it sent more): a file could be read back,
    rewritten or removed by the submission, or by another grading, after the fact.
    """
    receive, send = multiprocessing.Pipe(duplex=False)
    process = _fork_server().Process(target=run_judged, args=(args, sandbox, send, modules), name="autograder-notebook")
    _start_without_main(process)
    send.close()
    reader = _RecordReader(receive, max_records)
    process.join(timeout)
    timed_out = process.is_alive()
    problem = f"grading stopped after {timeout:g} s (the time limit per notebook)" if timed_out else None
    kill_process_group(process.pid)  # on time or not: whatever the submission left running
    process.join()
    remove_cgroup(sandbox)
    records = reader.stop()
    if problem is None and process.exitcode not in (0, 1, 5):
        tail = _tail(Path(sandbox.log)).splitlines()[-5:]
        problem = f"the test process ended abnormally (exit code {process.exitcode}): " + " / ".join(tail)
    return problem, timed_out, records


class _RecordReader:
    """Reads lines from a pipe in a thread of its own, so that the writer never waits on a full pipe.

    Bounded: a line longer than a record may be is skipped, and after ``max_records``
    lines the reader keeps draining the pipe but keeps nothing more (and reports None).
    It stops when the pipe closes or when told, since a process the submission left
    running elsewhere may hold the pipe open.
    """

    def __init__(self, connection: multiprocessing.connection.Connection, max_records: int):
        self._connection, self._max_records = connection, max_records
        self._records: list[bytes] | None = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, name="autograder-results", daemon=True)
        self._thread.start()

    def stop(self) -> list[bytes] | None:
        self._stopping.set()
        self._thread.join()
        self._connection.close()
        return self._records

    def _read(self) -> None:
        fd, pending, skipping = self._connection.fileno(), b"", False
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                if self._stopping.is_set():
                    return  # nothing more to read, and the run is over
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if skipping:
                    skipping = False  # the end of an overlong line
                elif len(line) <= MAX_RECORD_BYTES:
                    self._keep(line)
            if len(pending) > MAX_RECORD_BYTES:
                pending, skipping = b"", True

    def _keep(self, line: bytes) -> None:
        if self._records is not None and line:
            self._records.append(line)
            if len(self._records) > self._max_records:
                self._records = None


_STARTING = threading.Lock()


def _start_without_main(process: multiprocessing.process.BaseProcess) -> None:
    """Start ``process`` without the caller's ``__main__``.

    multiprocessing would import the script that called the grader into every new
    process (and fail outright when there is none, as under ``python -`` or in some
    notebooks), at the cost of that script's imports per notebook. The target needs
    none of it. The lock keeps threads that start processes at once from swapping
    ``__main__`` in and out under one another.
    """
    with _STARTING:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            sys.modules["__main__"] = main


def _tail(path: Path, size: int = 16_384) -> str:
    """The end of a file that may be huge (a submission that printed gigabytes)."""
    if not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode(errors="replace").strip()


def _read_results(
    records: list[bytes] | None, planned: dict[str, GradedTest]
) -> tuple[dict[str, tuple[str, float]], dict[str, GradedTest], bool]:
    """What a run reported: the tests it collected (part and points), the verdicts of those that finished, and
    whether its records show writing by someone other than the grading plugin (None: far more records than tests).

    The records come from the process that ran the submission, so they are read as
    untrusted input: each one checked, and a verdict keeps only the run's decision
    (score, clamped to the test's points; status; message). Part, name, points and
    visibility come from the planned tests. A verdict for a test that was not planned,
    or a second one for the same test, is no plugin's doing.
    """
    collected: dict[str, tuple[str, float]] = {}
    finished: dict[str, GradedTest] = {}
    if records is None:
        return collected, finished, True
    for line in records:
        record = _record(line)
        if record is None:
            continue  # not a record: the last line of a killed run may be cut short
        event, test_id = record["event"], record["test_id"]
        if event == "collected":
            collected[test_id] = (record["part"], record["max_score"])
        elif test_id not in planned or test_id in finished:
            return collected, finished, True
        else:
            test = planned[test_id]
            score = min(max(record["score"], 0.0), test.max_score)
            output = shorten(record["output"])
            finished[test_id] = GradedTest(test.part, test.name, score, test.max_score, record["status"], output, test.visible)
    return collected, finished, False


def _record(line: bytes) -> dict | None:
    """One line of the results as a record of the shape the plugin writes, or None."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None
    shape = {"event": str, "test_id": str, "part": str, "max_score": (int, float), "score": (int, float), "output": str}
    if not isinstance(record, dict) or any(not isinstance(record.get(key), kind) for key, kind in shape.items()):
        return None
    numbers = (record["score"], record["max_score"])
    if any(isinstance(n, bool) or not math.isfinite(n) for n in numbers) or record.get("status") not in STATUSES:
        return None
    return record if record["event"] in ("collected", "finished") else None


def _did_not_run(planned: GradedTest, problem: str | None) -> GradedTest:
    reason = problem or "this test did not run"
    return GradedTest(planned.part, planned.name, 0.0, planned.max_score, FAILED, reason, planned.visible)
