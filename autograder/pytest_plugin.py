"""The pytest plugin that turns hidden tests into points.

A hidden test is an ordinary pytest function with one marker and one fixture::

    @pytest.mark.graded("open_warehouse", points=2, visible=True)
    def test_exposes_views(learner, warehouse):
        "Exposes the four tables as views."
        ...

``learner`` is the learner's code: when ``python -m autograder grade`` runs the tests,
a stand-in for the exported module, which runs in a worker apart from the tests
(``judge.RemoteLearner``); when a self-check or nbgrader runs them inside the kernel,
the notebook's namespace (``LearnerCode``). Both go through this one plugin, so a test
earns the same points in either. A test reaches the learner's code only through
``learner``; what it needs beside that code (a connection, a model) it builds with
``learner.beside(given_function, ...)``.

Tests of training code also take ``device``, the ``torch.device`` to train on: the CPU
unless the grader was started with ``--device cuda``. The same tests, worth the same
points, then run on the GPU.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from autograder.paths import GIVEN_CODE
from autograder.results import FAILED, NOT_ATTEMPTED, PASSED, GradedTest
from autograder.sandbox import DEFAULT_TEST_TIMEOUT


class LearnerCode:
    """The learner's functions, looked up by name with a clear error when one is missing.

    In a notebook they all live in one namespace. When graded, a notebook may have
    exported more than one module: its functions to the default module and, in the
    testing chapter, the learner's own tests to ``tests.test_<name>``. Those extra
    modules are imported only when a test asks for :meth:`everything`, so a broken
    test module costs the parts that grade tests, not the whole notebook.
    """

    def __init__(self, namespace: dict, where: str, extra_modules: Sequence[str] = ()):
        self._namespace = namespace
        self._where = where
        self._extra_modules = list(extra_modules)
        self.cache: dict = {}  # results that the tests of one grading run share, e.g. a baseline run

    def __getattr__(self, name: str):
        try:
            return self._namespace[name]
        except KeyError:
            raise MissingDefinition(
                f"{self._where} does not define `{name}`: did its `#| export` cell get deleted, renamed or not run?"
            ) from None

    def beside(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` of the given code, run beside the learner's code: here, in this process.

        The judge's ``RemoteLearner.beside`` runs it in the learner's worker instead, so a
        test that builds a connection or a model this way works in both.
        """
        return function(*args, **kwargs)

    def everything(self) -> dict:
        """Every name the learner defined, across all the modules their notebook exported."""
        merged = dict(self._namespace)
        for name in self._extra_modules:
            merged.update(vars(_import_learner_module(name)))
        return merged


class MissingDefinition(AttributeError):
    """The learner's code lacks a function or class that a part asks for."""


class LearnerLoadError(Exception):
    """The learner's code could not be loaded at all; every test reports why."""


class WorkerEnded(Exception):
    """In judged grading, the process running the learner's code ended while it was being asked something."""

    def __init__(self):
        super().__init__(
            "the process running your code ended during this call (did it call exit() or os._exit(), crash, "
            "or use more memory than allowed?)"
        )


class GarbledAnswer(Exception):
    """In judged grading, what came back from the learner's process is not an answer of the codec's."""

    def __init__(self, why: str):
        super().__init__(
            f"the process running your code answered with something that is not an answer ({why}): "
            "did your code write to a file descriptor or socket it did not open?"
        )


class TestTimeout(BaseException):
    """A single test ran past its time limit.

    A BaseException, like KeyboardInterrupt, so that learner code which catches
    ``Exception`` (a retry loop, a test that expects an error) cannot swallow it.
    """


def load_modules(names: Sequence[str]) -> LearnerCode:
    """The learner's exported modules: the first is imported now, the others when asked for."""
    first, *others = names
    return LearnerCode(vars(_import_learner_module(first)), f"your exported module `{first}`", others)


def _import_learner_module(name: str):
    """Import one of the learner's modules, turning any failure into a readable message."""
    try:
        return importlib.import_module(name)
    except SyntaxError as e:
        raise LearnerLoadError(f"your code has a syntax error: {e.msg} (line {e.lineno}: {(e.text or '').strip()})") from None
    except BaseException as e:  # a submission may raise anything, SystemExit included, at import
        if isinstance(e, NotImplementedError):
            # An untouched exercise cell: keep the cause so that the verdict says "not attempted".
            raise LearnerLoadError(f"`{name}` is not written yet") from e
        raise LearnerLoadError(f"your code raised {type(e).__name__} while loading `{name}`: {e}{learner_location(e)}") from None


class Grading:
    """Provides ``learner``, selects the tests to run and reports each test's verdict.

    ``report(event, test_id, result)`` hears of every selected test twice: once when it
    is "collected" (so a run killed midway still knows what it owed) and once when it
    has "finished".
    """

    def __init__(
        self,
        load_learner: Callable[[], LearnerCode],
        report: Callable[[str, str, GradedTest], None],
        part: str | None = None,
        visible_only: bool = False,
        test_timeout: float = DEFAULT_TEST_TIMEOUT,
        device: str = "cpu",
        time_limit: Callable | None = None,
    ):
        self._time_limit = time_limit or _time_limit  # judged grading brings its own (judge.time_limit)
        self._load_learner = load_learner
        self._device = device
        self._report = report
        self._part = part
        self._visible_only = visible_only
        self._test_timeout = test_timeout
        self._failures: dict[str, BaseException] = {}
        self._timed_out: dict[str, str] = {}  # part: the message of its test that ran out of time
        self._learner: LearnerCode | None = None
        self._load_error: LearnerLoadError | None = None

    @pytest.fixture
    def learner(self) -> LearnerCode:
        # Loaded once per run, lazily, so that a broken submission fails inside tests
        # (each reporting why) rather than breaking collection for the whole file.
        if self._learner is None and self._load_error is None:
            try:
                self._learner = self._load_learner()
            except LearnerLoadError as e:
                self._load_error = e
        if self._load_error is not None:
            raise self._load_error
        return self._learner

    @pytest.fixture
    def device(self):
        import torch  # only the chapters that train need it

        return torch.device(self._device)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        for item in items:
            if item.get_closest_marker("graded") is None:
                raise pytest.UsageError(f"hidden test {item.nodeid} has no @pytest.mark.graded(part, points=...) marker")
        selected = [item for item in items if self._selected(item)]
        deselected = [item for item in items if not self._selected(item)]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected
        for item in selected:
            part, points, visible = graded_marker(item)
            self._report("collected", item.nodeid, GradedTest(part, _description(item), 0.0, points, FAILED, "", visible))

    def _selected(self, item) -> bool:
        part, _, visible = graded_marker(item)
        return (self._part is None or part == self._part) and (visible or not self._visible_only)

    # The learner's code runs in setup (loading it) and in the call: both get a time limit.
    # Once a test of a part has run out of time, the part's later tests fail at once with
    # its message: code that loops would most likely loop again, and a class of looping
    # submissions would otherwise cost a full time limit per test.
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        part = graded_marker(item)[0]
        if part in self._timed_out:
            raise TestTimeout(f"{self._timed_out[part]} (not run: an earlier test of this part ran out of time)")
        with self._time_limit(self._test_timeout):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        with self._time_limit(self._test_timeout):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed and call.excinfo is not None and item.nodeid not in self._failures:
            self._failures[item.nodeid] = call.excinfo.value
            if isinstance(call.excinfo.value, TestTimeout):
                self._timed_out.setdefault(graded_marker(item)[0], str(call.excinfo.value))
        if call.when == "teardown":
            self._report("finished", item.nodeid, self._verdict(item))
        return report

    def _verdict(self, item) -> GradedTest:
        part, points, visible = graded_marker(item)
        name = _description(item)
        error = self._failures.get(item.nodeid)
        if error is None:
            return GradedTest(part, name, points, points, PASSED, "", visible)
        if is_not_implemented(error):
            return GradedTest(part, name, 0.0, points, NOT_ATTEMPTED, "not attempted yet", visible)
        return GradedTest(part, name, 0.0, points, FAILED, shorten(explain(error, Path(str(item.path)))), visible)


def shorten(message: str, limit: int = 2000) -> str:
    """A failure message of readable length, valid UTF-8 whatever the submission printed or returned."""
    message = message.encode("utf-8", errors="replace").decode("utf-8")
    return message if len(message) <= limit else message[:limit] + f" ... ({len(message) - limit:,} more characters)"


def graded_marker(item) -> tuple[str, float, bool]:
    marker = item.get_closest_marker("graded")
    part = marker.args[0] if marker.args else marker.kwargs["part"]
    return part, float(marker.kwargs.get("points", 1)), bool(marker.kwargs.get("visible", False))


def _description(item) -> str:
    """The test's docstring, first line; a parametrized test fills it in from its parameters."""
    doc = getattr(item.function, "__doc__", None)
    if not doc or not doc.strip():
        return item.name
    line = doc.strip().splitlines()[0]
    callspec = getattr(item, "callspec", None)
    return line.format(**callspec.params) if callspec else line


def is_not_implemented(error: BaseException) -> bool:
    while error is not None:
        if isinstance(error, NotImplementedError):
            return True
        error = error.__cause__ or error.__context__
    return False


def explain(error: BaseException, test_file: Path) -> str:
    """Why a test failed, in words for the learner, without the test's own code."""
    if isinstance(error, AssertionError):
        # Keep the test's own message; drop pytest's "assert ..." explanation, which
        # appears when an outer pytest session rewrote the test's asserts.
        message = str(error).split("\nassert ", 1)[0].strip()
        return message or "a check failed (the test gave no reason)"
    if isinstance(error, (LearnerLoadError, MissingDefinition, TestTimeout, WorkerEnded, GarbledAnswer)):
        return str(error)
    if isinstance(error, pytest.fail.Exception):
        return str(error.msg)
    if isinstance(error, pytest.skip.Exception):
        return f"skipped: {error.msg}"
    # The error's text is what may be long (DuckDB lists every candidate function); the
    # learner's line after it is what they need, so it is the text that gets shortened.
    return f"your code raised {type(error).__name__}: {shorten(str(error), 1500)}{learner_location(error, test_file)}"


def learner_location(error: BaseException, test_file: Path | None = None) -> str:
    """Where in the learner's code an error happened: the innermost frame that is theirs.

    For an error raised in the learner's worker and raised again by the judge, the
    worker found it (``judge.rebuild``).
    """
    if isinstance(getattr(error, "learner_where", None), str):
        return error.learner_where
    not_theirs = [Path(__file__).parent, *GIVEN_CODE, Path(sys.prefix), Path(sys.base_prefix)]
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = Path(frame.filename)
        if path == test_file or any(path.is_relative_to(p) for p in not_theirs):
            continue
        return f" (in {frame.name}, line {frame.lineno})" if frame.name != "<module>" else f" (line {frame.lineno})"
    return ""


TOOK_LONGER = "took longer than"  # how every timeout message starts: the class report counts them


def timeout_message(seconds: float) -> str:
    return f"{TOOK_LONGER} {seconds:g} s: is there an endless loop, or work on far more data than needed?"


@contextmanager
def _time_limit(seconds: float):
    """Raise TestTimeout in the running code after ``seconds`` (main thread, POSIX only)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise TestTimeout(timeout_message(seconds))

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the judge's use: ``python -m pytest -p autograder.pytest_plugin --judge-control-fd ...`` (see sandbox.run_judged)


def pytest_addoption(parser):
    group = parser.getgroup("autograder")
    group.addoption(
        "--judge-control-fd",
        type=int,
        help="grade as the judge: reach the learner's code through the worker zygote on this socket (see autograder/judge.py)",
    )
    group.addoption("--results-fd", type=int, help="write one JSON line per collected and finished test to this pipe")
    group.addoption("--exchange-folder", help="where tmp_path makes folders that the learner's code may write to")
    group.addoption("--part", help="run only the tests of this part")
    group.addoption("--test-timeout", type=float, default=DEFAULT_TEST_TIMEOUT, help="seconds per test")
    group.addoption("--device", default="cpu", help="the torch device that tests of training code use (default cpu)")


def pytest_configure(config):
    config.addinivalue_line("markers", "graded(part, points=1, visible=False): a hidden test and the points it is worth")
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped without one")
    control = config.getoption("judge_control_fd", None)
    if control is None:
        return
    from autograder.judge import ExchangeFolder, RemoteLearner, time_limit  # the judge's side imports this plugin

    results = config.getoption("results_fd")

    def report(event: str, test_id: str, result: GradedTest) -> None:
        # One line per test as it happens, so a killed run keeps what finished.
        line = memoryview((json.dumps({"event": event, "test_id": test_id, **result.__dict__}) + "\n").encode())
        while line:
            line = line[os.write(results, line) :]

    config.pluginmanager.register(ExchangeFolder(config.getoption("exchange_folder")), "autograder-exchange-folder")
    config.pluginmanager.register(
        Grading(
            partial(RemoteLearner, socket.socket(fileno=control)),
            report,
            part=config.getoption("part"),
            test_timeout=config.getoption("test_timeout"),
            device=config.getoption("device"),
            time_limit=time_limit,
        ),
        "autograder-grading",
    )
