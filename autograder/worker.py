"""The learner's side of judged grading: their code, loaded in the sandbox, answering the judge's requests.

The judge (``judge.py``) runs the hidden tests and never the learner's code. Each
time a test uses ``learner``, a request comes here over a socket: look up one of the
learner's names, call something, read an attribute, take an item... The answer goes
back by value where the codec allows it (numbers, arrays, tables, tensors), and as a
reference to an object kept here otherwise (a model, a connection, an iterator), which
later requests can name. Exceptions go back by value, with where in the learner's code
they rose.

The worker is a *session*: a process forked, for each session the judge asks for, from
a *zygote* that was confined before any learner code or hidden test was loaded (see
``sandbox.confine_worker``). A session whose call ran out of time is killed, and the
next request starts a fresh one, as in a test run that starts the learner's code again.
"""

from __future__ import annotations

import operator
import os
import signal
import socket
import sys
from collections.abc import Callable

from autograder import codec
from autograder.codec import Ref
from autograder.pytest_plugin import LearnerCode, is_not_implemented, learner_location
from autograder.sandbox import kill_process_group

# What a request may do to an object held here, besides reading and setting attributes
# and calling: the operations that the hidden tests use on the learner's objects.
OPERATIONS: dict[str, Callable] = {
    "len": len,
    "iter": iter,
    "next": next,
    "list": list,
    "repr": repr,
    "str": str,
    "bool": bool,
    "getitem": operator.getitem,
    "setitem": operator.setitem,
    "contains": operator.contains,
    "eq": operator.eq,
    "enter": lambda obj: obj.__enter__(),
    "exit": lambda obj: obj.__exit__(None, None, None),
}


class Worker:
    """Answers requests against the learner's code, keeping what cannot be sent back by value."""

    def __init__(self, learner: LearnerCode):
        self.learner = learner
        # Kept alive here, so that id() names each one for as long; number 0 is the learner's
        # code itself, which the judge hands to drivers (judge.LEARNER).
        self._objects: dict[int, object] = {0: learner}
        self._ids: dict[int, int] = {id(learner): 0}
        self._next_id = 0

    def keep(self, obj) -> Ref:
        number = self._ids.get(id(obj))
        if number is None:
            self._next_id += 1
            number = self._ids[id(obj)] = self._next_id
            self._objects[number] = obj
        kind = type(obj)
        return Ref(number, f"{kind.__module__}.{kind.__qualname__}")

    def resolve(self, ref: Ref):
        try:
            return self._objects[ref.id]
        except KeyError:
            raise codec.CodecError(f"a request names object {ref.id}, which this worker does not hold") from None

    def answer(self, request):
        kind, *arguments = request
        if kind == "learner":
            (name,) = arguments
            return getattr(self.learner, name)
        if kind == "getattr":
            obj, name = arguments
            return getattr(obj, name)
        if kind == "setattr":
            obj, name, value = arguments
            setattr(obj, name, value)
            return None
        if kind == "call":
            function, args, kwargs = arguments
            return function(*args, **kwargs)
        if kind == "op":
            name, obj, *args = arguments
            return OPERATIONS[name](obj, *args)
        raise codec.CodecError(f"a request of unknown kind {kind!r}")

    def release(self, numbers) -> None:
        for number in numbers:
            obj = self._objects.pop(number, None) if number != 0 else None
            if obj is not None:
                del self._ids[id(obj)]


def serve(connection: socket.socket, load: Callable[[], LearnerCode]) -> None:
    """Load the learner's code, say whether that worked, then answer requests until the judge hangs up."""
    try:
        worker = Worker(load())
        reply = ("ok", None)
    except BaseException as e:
        worker, reply = None, ("raised", _raised(e))
    codec.send(connection, codec.encode(reply))
    while worker is not None:
        message = codec.receive(connection)
        if message is None:
            return
        try:
            released, request = codec.decode(message, resolve=worker.resolve, allow_given=True)
            worker.release(released)
            reply = ("ok", worker.answer(request))
        except BaseException as e:  # the learner's code may raise anything, SystemExit included
            reply = ("raised", _raised(e))
        try:
            answer = codec.encode(reply, keep=worker.keep)
        except (codec.CodecError, RecursionError) as e:
            answer = codec.encode(("raised", _raised(e)))
        codec.send(connection, answer)


def _raised(error: BaseException) -> codec.RaisedError:
    return codec.raised(error, learner_location(error), is_not_implemented(error))


def run_zygote(control: socket.socket, modules: list[str]) -> None:
    """In the confined process: start a session each time the judge asks, and end one when told.

    The judge writes ``start`` and gets back, over the same socket, the new session's pid
    and its end of a fresh socket pair; ``kill PID`` ends a session and its process group.
    Nothing of the learner's runs here, so a session that breaks leaves this process able
    to start the next.
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # ended sessions are reaped by the kernel
    # Process 1 of its PID namespace: the kernel drops the signals its sessions send it
    # unless it handles them, and Python handles SIGINT. It handles none.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        command = control.recv(64).decode(errors="replace").split()
        if not command:
            os._exit(0)  # the judge is done
        if command[0] == "kill" and len(command) == 2 and command[1].isdigit():
            kill_process_group(int(command[1]))
        elif command[0] == "start":
            judge_end, session_end = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                control.close()
                judge_end.close()
                _run_session(session_end, modules)
            session_end.close()
            socket.send_fds(control, [str(pid).encode()], [judge_end.fileno()])
            judge_end.close()


def _run_session(connection: socket.socket, modules: list[str]) -> None:
    from autograder.pytest_plugin import load_modules

    # A process group of its own: the learner's code may kill its own group, which must not
    # be the judge's. What it leaves running at the end goes with the grading's PID
    # namespace, or its cgroup (sandbox.remove_cgroup).
    os.setpgid(0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the learner's subprocesses are waited for as usual
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve(connection, lambda: load_modules(modules))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
