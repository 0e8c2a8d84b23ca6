"""The hidden tests' side of judged grading: ``learner`` as a stand-in for code that runs elsewhere.

In judged grading the hidden tests run in the *judge*, a process that never loads the
learner's code, so nothing the learner writes can change a verdict. ``learner`` there
is a ``RemoteLearner``: ``learner.time_split(con, ...)`` sends a request to the
learner's worker (``worker.py``), sandboxed in a process of its own, and returns what
came back: a value (numbers, arrays, tables, tensors, read by ``codec.py``, which never
runs code to read them), or a ``Remote`` that stands for an object the worker keeps
(a model, a connection) and passes every use on to it. An exception the learner's code
raised is raised here again, as the same built-in class (so ``except FileNotFoundError``
in a test works) or as a stand-in class with the learner's class name.

A test that needs an object beside the learner's code (a DuckDB connection for their
query, a model for their training step) has it built there from given code:
``con = learner.beside(warehouse_connection, warehouse)``. A self-check in the notebook
uses a ``LearnerCode``, whose ``beside`` simply calls the function: the same tests, the
same points.
"""

from __future__ import annotations

import builtins
import importlib
import os
import re
import socket
import sys
import tempfile
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

import pytest

from autograder import codec
from autograder.codec import RaisedError, Ref
from autograder.pytest_plugin import (
    GarbledAnswer,
    LearnerLoadError,
    MissingDefinition,
    TestTimeout,
    WorkerEnded,
    timeout_message,
)


class ExchangeFolder:
    """``tmp_path`` in judged grading: a fresh folder where the learner's code, too, may write.

    The rest of the judge's temporary files (the data that session fixtures generate)
    are read-only to the learner's code, so that no submission can change the data
    that a test's expected answer is computed from.
    """

    def __init__(self, folder: str):
        self._folder = folder

    @pytest.fixture
    def tmp_path(self, request) -> Path:
        name = re.sub(r"\W", "_", request.node.name)[:30]
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self._folder))


# (seconds, time.monotonic() deadline) of the test running now; (0, None) between tests.
_DEADLINE: list = [0.0, None]


@contextmanager
def time_limit(seconds: float):
    """Fail what the learner's code does for the test running now after ``seconds``: the judge's way.

    The judge waits for the worker on a socket, with the time the test has left, rather
    than by an alarm signal: the learner's process could send the judge that signal.
    """
    _DEADLINE[:] = [seconds, time.monotonic() + seconds if seconds else None]
    try:
        yield
    finally:
        _DEADLINE[:] = [0.0, None]


def _remaining() -> float | None:
    return None if _DEADLINE[1] is None else max(0.0, _DEADLINE[1] - time.monotonic())


def _timeout() -> TestTimeout:
    return TestTimeout(timeout_message(_DEADLINE[0]))


LEARNER = Ref(0, "autograder.pytest_plugin.LearnerCode")  # the worker's number for the learner's code itself


class RemoteLearner:
    """The learner's code, reached through sessions of the worker that the zygote starts."""

    def __init__(self, control: socket.socket):
        self._control = control
        self._session: Session | None = None
        self.cache: dict = {}  # results that the tests of one grading run share, e.g. a baseline run
        self.session()  # loaded once, as in a grading beside the learner's code: a broken module fails every test at once

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)  # Python's own probes (copy, pickle, inspect), not the learner's names
        return self.session().request(("learner", name))

    def beside(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` of the given code, run beside the learner's code: what it makes stays there."""
        return self.session().request(("call", function, args, kwargs))

    def session(self) -> Session:
        """The worker session now serving requests: a fresh one if there is none or the last one broke."""
        if self._session is None or self._session.broken:
            if self._session is not None:
                self._session.close()
            self._session = Session(self._control)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


class Session:
    """One worker process holding the learner's loaded code, and the objects it returned."""

    def __init__(self, control: socket.socket):
        self._control = control
        self.broken = False
        self._released: list[int] = []
        # One stand-in per object the worker keeps (it names each object by one number), so
        # that ``iter(g) is g`` holds for a learner's generator, as in one process.
        self._remotes: weakref.WeakValueDictionary[int, Remote] = weakref.WeakValueDictionary()
        control.sendall(b"start")
        control.settimeout(_remaining())
        try:
            message, fds, _, _ = socket.recv_fds(control, 64, 1)
        except TimeoutError:
            raise _timeout() from None
        finally:
            control.settimeout(None)
        if len(fds) != 1 or not message.strip().isdigit():
            for fd in fds:
                os.close(fd)
            raise RuntimeError("the sandbox could not start a process for your code")
        self.pid = int(message)
        self._connection = socket.socket(fileno=fds[0])
        status, error = self._receive()
        if status != "ok":
            self.close()
            loading = rebuild(error)
            if isinstance(loading, LearnerLoadError):
                raise loading
            raise LearnerLoadError(f"your code could not be loaded: {type(loading).__name__}: {loading}") from loading

    def request(self, request):
        if self.broken:
            raise RuntimeError("this object of your code's was lost when the process running it was restarted")
        released, self._released = self._released, []
        try:
            message = codec.encode((released, request), keep=self._refer, allow_given=True, references=(Remote, RemoteLearner))
        except codec.CodecError as e:
            raise RuntimeError(f"the hidden test cannot hand this to your code: {e}") from None
        try:
            codec.send(self._connection, message)
            status, value = self._receive()
        except BaseException:  # the session may be mid-call, and cannot be trusted to answer the next request
            self.close()
            raise
        if status == "raised":
            raise rebuild(value)
        return value

    def _receive(self):
        try:
            message = codec.receive(self._connection, deadline=_DEADLINE[1])
            if message is None:
                raise WorkerEnded()
            reply = codec.decode(message, resolve=self._remote)
            if not (isinstance(reply, tuple) and len(reply) == 2 and reply[0] in ("ok", "raised")):
                raise codec.CodecError("not of the shape the judge asks for")
            if reply[0] == "raised" and not isinstance(reply[1], RaisedError):
                raise codec.CodecError("an error that is not an error")
        except TimeoutError:
            self.close()
            raise _timeout() from None
        except codec.CodecError as e:
            self.close()
            raise GarbledAnswer(str(e)) from None
        except WorkerEnded:
            self.close()
            raise
        return reply

    def _remote(self, ref: Ref) -> Remote:
        remote = self._remotes.get(ref.id)
        if remote is None:
            remote = self._remotes[ref.id] = Remote(self, ref)
            if ref.id in self._released:  # its last stand-in went since the last request: keep it after all
                self._released.remove(ref.id)
        return remote

    def _refer(self, remote: Remote | RemoteLearner) -> Ref:
        if isinstance(remote, RemoteLearner):
            return LEARNER  # a driver that runs the learner's code is handed it
        if not isinstance(remote, Remote):
            # Through a live object, the learner's code could walk to the judge's globals and run code there.
            raise codec.CodecError(f"a {type(remote).__name__} of the tests' own is live, and never crosses")
        if remote._session is not self:
            raise codec.CodecError("this object of your code's was lost when the process running it was restarted")
        return remote._ref

    def release(self, ref: Ref) -> None:
        if not self.broken:
            self._released.append(ref.id)

    def close(self) -> None:
        if not self.broken:
            self.broken = True
            try:
                self._control.sendall(f"kill {self.pid}".encode())
            except OSError:
                pass
        self._connection.close()


class Remote:
    """An object that the learner's code made and the worker keeps: every use is a request to it."""

    __slots__ = ("_session", "_ref", "__weakref__")

    def __init__(self, session: Session, ref: Ref):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_ref", ref)

    @property
    def remote_type(self) -> str:
        """The class of the object in the worker: ``duckdb.DuckDBPyConnection``."""
        return self._ref.type

    def _op(self, name: str, *args):
        return self._session.request(("op", name, self, *args))

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # Python's own probes, not the object's attributes
        return self._session.request(("getattr", self, name))

    def __setattr__(self, name: str, value) -> None:
        self._session.request(("setattr", self, name, value))

    def __call__(self, *args, **kwargs):
        return self._session.request(("call", self, args, kwargs))

    def __len__(self):
        return self._op("len")

    def __iter__(self):
        return self._op("iter")

    def __next__(self):
        return self._op("next")

    def __getitem__(self, key):
        return self._op("getitem", key)

    def __setitem__(self, key, value):
        self._op("setitem", key, value)

    def __contains__(self, item):
        return self._op("contains", item)

    def __eq__(self, other):
        return self._op("eq", other)

    __hash__ = object.__hash__

    def __bool__(self):
        return self._op("bool")

    def __enter__(self):
        return self._op("enter")

    def __exit__(self, *exc):
        self._op("exit")

    def __repr__(self):
        return self._op("repr")

    def __str__(self):
        return self._op("str")

    def __del__(self):
        self._session.release(self._ref)


def type_name(obj) -> str:
    """The short class name of ``obj``, or of the object a ``Remote`` stands for: for messages."""
    if isinstance(obj, Remote):
        return obj.remote_type.rsplit(".", 1)[-1]
    return type(obj).__name__


class LearnerError(Exception):
    """Stands in for an exception class of the learner's (or a library's) that the judge does not import."""


# Whose exception classes the judge raises as themselves: code that both sides import, read-only.
ERROR_MODULES = (*codec.GIVEN_MODULES, "booktools")


def rebuild(error: RaisedError) -> BaseException:
    """The exception the learner's code raised, as the judge raises it again."""
    grader_errors = {f"autograder.pytest_plugin.{c.__name__}": c for c in (LearnerLoadError, MissingDefinition, TestTimeout)}
    name = error.types[0].rsplit(".", 1)[-1]
    given = _given_error(error.types[0])
    if error.types[0] in grader_errors:
        rebuilt = grader_errors[error.types[0]](error.message)
    elif given is not None:
        rebuilt = given(error.message)
    else:
        base = _builtin_base(error.types)
        if error.types[0] == f"builtins.{base.__name__}":
            kind = base
        else:
            kind = type(name, (LearnerError,) if base is Exception else (base, LearnerError), {})
        try:
            rebuilt = kind(error.message)
        except TypeError:  # a built-in error that wants more than a message, such as UnicodeDecodeError
            rebuilt = type(name, (LearnerError,), {})(error.message)
    rebuilt.learner_where = error.where
    if error.not_implemented:
        rebuilt.__cause__ = NotImplementedError()
    return rebuilt


def _given_error(qualified: str) -> type[Exception] | None:
    """The exception class of the given code (``casestudy.serving.BundleError``) that ``qualified`` names, if it is one."""
    module, _, name = qualified.rpartition(".")
    if not any(module == m or module.startswith(m + ".") for m in ERROR_MODULES):
        return None
    kind = getattr(sys.modules.get(module) or importlib.import_module(module), name, None)
    return kind if isinstance(kind, type) and issubclass(kind, Exception) else None


def _builtin_base(types: tuple[str, ...]) -> type[Exception]:
    """The most derived built-in exception among ``types`` that a test may catch: Exception at least.

    Never SystemExit, KeyboardInterrupt or GeneratorExit: raised again here, they would
    stop the judge instead of failing one test.
    """
    for qualified in types:
        module, _, name = qualified.rpartition(".")
        kind = getattr(builtins, name, None) if module == "builtins" else None
        if isinstance(kind, type) and issubclass(kind, Exception):
            return kind
    return Exception
