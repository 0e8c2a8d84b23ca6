"""The sandbox around a graded submission: no network beyond this machine, no other grading's files, nothing left running."""

import importlib.util
import os
import re
import shutil
import socket
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from autograder import runner
from autograder.paths import ROOT
from autograder.results import FAILED
from autograder.runner import TAMPERED, run_in_subprocess
from autograder.sandbox import (
    BLOCKED,
    Limits,
    cgroups_available,
    install_network_guard,
    kill_process_group,
    namespaces_available,
    private_tmp_available,
)
from autograder.signing import KEY_VARIABLE, load_key
from tests.helpers import HIDDEN_NUMBERS, write_module

HIDDEN = """
import pytest

@pytest.mark.graded("net", points=1, visible=True)
def test_reaches_the_internet(learner):
    "Reaches another host."
    assert learner.fetch() == "ok", "fetch() should return 'ok'"

@pytest.mark.graded("loop", points=1, visible=True)
def test_talks_to_itself(learner):
    "Talks to a server on this machine."
    assert learner.echo(b"ping") == b"ping", "echo should return what it sent"

@pytest.mark.graded("spawn", points=1, visible=True)
def test_spawns(learner):
    "Leaves a process behind."
    assert learner.spawn() > 0
"""

LEARNER = """
import socket
import subprocess
import urllib.request

def fetch():
    return urllib.request.urlopen("http://93.184.215.14/", timeout=5).read() and "ok"

def echo(data):
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    connection, _ = server.accept()
    client.sendall(data)
    return connection.recv(100)

def spawn():
    return subprocess.Popen(["sleep", "300.25"]).pid
"""


@pytest.fixture(params=["namespace and guard", "guard only"])
def graded(request, tmp_path, monkeypatch):
    """The verdicts of a submission that calls out, talks to itself, and leaves a child running.

    Run with both layers where this machine allows a network namespace, and with the
    in-process guard alone, as on a CI runner that forbids namespaces.
    """
    if request.param == "guard only":
        monkeypatch.setattr(runner, "namespaces_available", lambda: False)
    elif not namespaces_available():
        pytest.skip("this machine does not allow network namespaces")
    hidden = tmp_path / "hidden" / "test_sandbox.py"
    hidden.parent.mkdir()
    hidden.write_text(HIDDEN)
    package = tmp_path / "pkg" / "cardfraud"
    package.mkdir(parents=True)
    (package / "__init__.py").touch()
    (package / "calls.py").write_text(textwrap.dedent(LEARNER))
    verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.calls"])
    return {v.part: v for v in verdicts}, problem


def test_network_is_refused_with_a_message(graded):
    "Does a submission that calls another host fail that test with a message saying the network is off?"
    verdicts, problem = graded
    assert problem is None
    assert verdicts["net"].score == 0
    assert BLOCKED in verdicts["net"].output


def test_loopback_stays_open(graded):
    "Can graded code still start a server on localhost and talk to it?"
    verdicts, _ = graded
    assert verdicts["loop"].score == 1, verdicts["loop"].output


def test_leftover_processes_are_killed(graded):
    "Is a process that the submission started and left running killed when its grading ends?"
    verdicts, _ = graded
    assert verdicts["spawn"].score == 1, verdicts["spawn"].output
    # Found by its command line: inside a PID namespace its process number means nothing here.
    for _ in range(50):
        if not any(b"300.25" in command for command in _command_lines()):
            return
        time.sleep(0.1)
    pytest.fail("the process the submission started is still running after grading ended")


def _command_lines():
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            yield path.read_bytes()
        except OSError:  # the process ended meanwhile
            continue


def test_guard_refuses_other_hosts_and_allows_loopback(monkeypatch):
    "Does the in-process guard refuse a remote address and a name lookup, but connect to localhost?"
    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, getattr(socket.socket, name))
    monkeypatch.setattr(socket, "getaddrinfo", socket.getaddrinfo)
    install_network_guard()
    with pytest.raises(PermissionError, match="network access is disabled"):
        socket.create_connection(("93.184.215.14", 80), timeout=1)
    with pytest.raises(PermissionError, match="cannot look up 'example.com'"):
        socket.getaddrinfo("example.com", 80)
    with socket.create_server(("127.0.0.1", 0)) as server:
        socket.create_connection(server.getsockname()).close()


def test_killing_an_empty_group_is_harmless():
    "Is cleaning up after a submission that left nothing behind a no-op?"
    kill_process_group(2**22 + 12345)


def test_overwriting_the_hidden_tests_changes_nothing(tmp_path):
    "Does a submission that tries to overwrite the hidden tests leave the real ones, and the next grading, intact?"
    hidden = tmp_path / "hidden" / "test_numbers.py"
    hidden.parent.mkdir()
    hidden.write_text(
        "import pytest\n\n"
        "@pytest.mark.graded('double', points=1, visible=True)\n"
        "def test_doubles(learner):\n"
        "    'Doubles.'\n"
        "    assert learner.double(2) == 4, 'double(2) should be 4'\n"
    )
    original = hidden.read_text()
    package = tmp_path / "pkg" / "cardfraud"
    package.mkdir(parents=True)
    (package / "__init__.py").touch()
    # A hostile import looks for the hidden tests in the grader's folders and on the
    # command line it inherited, and empties whatever it finds.
    (package / "evil.py").write_text(
        "import glob, sys\n"
        "for path in glob.glob('/tmp/autograder-grader-*/hidden/*/*.py') + [a for a in sys.argv if a.endswith('.py')]:\n"
        "    open(path, 'w').write('')\n"
        "def double(x):\n    return x\n"
    )
    verdicts, _ = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.evil"])
    assert [v.score for v in verdicts] == [0]
    assert hidden.read_text() == original


def test_a_file_past_the_size_limit_fails_only_its_own_test(tmp_path):
    "Does a submission that prints more than the file limit fail that test with a clear error, while the others pass?"
    hidden = tmp_path / "hidden" / "test_numbers.py"
    hidden.parent.mkdir()
    hidden.write_text(HIDDEN_NUMBERS)
    package = tmp_path / "pkg" / "cardfraud"
    package.mkdir(parents=True)
    (package / "__init__.py").touch()
    (package / "loud.py").write_text(
        "def double(x):\n    print('x' * 3 * 2**20)\n    return 2 * x\n\ndef halve(x):\n    return x / 2\n"
    )
    verdicts, _ = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.loud"], limits=Limits(file_mb=1))
    scores = {v.name: (v.score, v.output) for v in verdicts}
    assert scores["Halves a number."][0] == 1
    assert "File too large" in scores["Doubles a positive number."][1]


def apart(probes: str) -> tuple[str, str]:
    """``probes``, tests of the environment written as hidden tests, split into what runs where when graded.

    Graded code runs in the learner's worker, not in the judge that runs the hidden
    tests: each probe becomes a function of the learner's module (its `learner` parameter
    and its marker dropped), and a hidden test that calls it. A probe's failed assertion
    comes back to the judge as the test's failure.
    """
    names = re.findall(r"^def (test_\w+)\(learner\):", probes, flags=re.M)
    markers = re.findall(r"^(@pytest\.mark\.graded\(.*\))$", probes, flags=re.M)
    docs = re.findall(r"^def test_\w+\(learner\):\n    (\".*\")$", probes, flags=re.M)
    hidden = "import pytest\n" + "".join(
        f"\n\n{marker}\ndef {name}(learner):\n    {doc}\n    learner.{name}()\n"
        for marker, name, doc in zip(markers, names, docs)
    )
    learner = re.sub(r"^@pytest\.mark\.graded\(.*\)\n", "", probes, flags=re.M).replace("(learner):", "():")
    return hidden, learner


PRIVATE_TMP = """
import errno
import ctypes
import multiprocessing
import os

import pytest
import torch

@pytest.mark.graded("tmp", points=1, visible=True)
def test_other_gradings_are_out_of_sight(learner):
    "Sees no other grading's folder."
    assert not os.path.exists(NEIGHBOUR), "another grading's folder is visible"

@pytest.mark.graded("proc", points=1, visible=True)
def test_outside_processes_are_out_of_sight(learner):
    "Sees no process outside, nor the grader's command line."
    assert not os.path.exists(f"/proc/{GRADER}/cmdline"), "the grader's process is visible"

def hand_over(queue, received):
    queue.put(torch.ones(3))
    received.wait(10)  # the tensor's memory is handed over by this process, which must still be there

@pytest.mark.graded("workers", points=1, visible=True)
def test_worker_processes_hand_over_tensors(learner):
    "Hands a tensor over from a worker process, as DataLoader workers do."
    context = multiprocessing.get_context("fork")
    queue, received = context.Queue(), context.Event()
    worker = context.Process(target=hand_over, args=(queue, received))
    worker.start()
    tensor = queue.get(timeout=10)
    received.set()
    worker.join()
    assert tensor.sum() == 3

@pytest.mark.graded("undo", points=1, visible=True)
def test_the_sandbox_cannot_be_undone(learner):
    "Cannot unmount the private /tmp or /proc, mount anything, or undo any of it in namespaces of its own."
    libc = ctypes.CDLL(None, use_errno=True)
    for path in (b"/tmp", b"/proc", b"/dev/shm"):
        assert libc.umount2(path, 2) != 0, f"unmounted {path}"  # 2: MNT_DETACH
    assert libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0, "mounted a tmpfs"
    assert libc.unshare(0x00020000) != 0, "made a mount namespace"
    # A user namespace of its own gives capabilities again, but over mounts that the
    # kernel locks: what lies under them stays hidden.
    if libc.unshare(0x10000000 | 0x00020000) == 0:
        for path in (b"/tmp", b"/proc"):
            assert libc.umount2(path, 2) != 0, f"unmounted {path} in a namespace of its own"
        assert libc.mount(b"none", b"/", None, 0x20 | 0x1000, None) != 0, "made / writable in a namespace of its own"
    assert not os.path.exists(NEIGHBOUR), "another grading's folder is visible"

@pytest.mark.graded("size", points=1, visible=True)
def test_temporary_folders_are_limited(learner):
    "Fills /tmp and /var/tmp together up to the file limit (2 MiB), and /dev/shm up to it too, no further."
    for folder in ("/tmp", "/dev/shm"):
        with open(f"{folder}/a", "wb") as f:
            f.write(bytes(6 * 2**18))
        with pytest.raises(OSError) as full, open("/var/tmp/b" if folder == "/tmp" else f"{folder}/b", "wb") as f:
            f.write(bytes(3 * 2**18))
        assert full.value.errno == errno.ENOSPC, f"{folder}: {full.value}"

@pytest.mark.graded("hidden", points=1, visible=True)
def test_the_hidden_tests_are_out_of_sight(learner):
    "Finds no hidden test where the judge reads them."
    assert not os.path.exists(HIDDEN_TESTS), "the hidden tests are visible"

@pytest.mark.graded("judge", points=1, visible=True)
def test_the_judge_cannot_be_read_or_stopped(learner):
    "Cannot read the judge's memory or environment, nor stop it with a signal."
    for what in ("mem", "environ"):
        with pytest.raises(OSError):
            open(f"/proc/1/{what}", "rb").read(1)
    for sig in (2, 15, 19):  # SIGINT, SIGTERM, SIGSTOP: the kernel drops them for process 1, which handles none
        os.kill(1, sig)
"""


def test_graded_code_has_a_tmp_of_its_own(tmp_path):
    "Does graded code see a /tmp, /var/tmp and /dev/shm of its own, with a size limit, and none of the processes outside?"
    if not private_tmp_available():
        pytest.skip("this system allows no mount namespace inside a user namespace: graded code shares /tmp (the fallback)")
    neighbour = tmp_path / "autograder-grader-neighbour"
    neighbour.mkdir()
    hidden = tmp_path / "hidden" / "test_private.py"
    hidden.parent.mkdir()
    tests, probes = apart(PRIVATE_TMP)
    hidden.write_text(tests)
    write_module(
        tmp_path / "pkg", f"NEIGHBOUR, GRADER, HIDDEN_TESTS = {str(neighbour)!r}, {os.getpid()}, {str(hidden)!r}\n{probes}"
    )
    verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"], limits=Limits(file_mb=2))
    assert problem is None
    parts = ("tmp", "proc", "workers", "undo", "size", "hidden", "judge")
    assert {v.part: (v.score, v.output) for v in verdicts} == {p: (1, "") for p in parts}


def _chmod_and(change):
    def tamper(path: Path) -> None:
        path.chmod(0o644)  # the copy is read-only, which stops no process of the same user
        change(path)

    return tamper


def _plant_bytecode(path: Path) -> None:
    """A .pyc, which Python runs instead of the test file if the source's size and time recorded in it match."""
    pyc = Path(importlib.util.cache_from_source(str(path)))
    pyc.parent.mkdir()
    pyc.write_bytes(b"")


# How another process, graded at the same time without a private /tmp, could change a grading's files.
TAMPERING = {
    "tests deleted": Path.unlink,
    "tests emptied": _chmod_and(lambda path: path.write_text("")),
    "tests rewritten to pass": _chmod_and(lambda path: path.write_text(HIDDEN_NUMBERS.replace("assert ", "pass  # "))),
    "bytecode planted": _plant_bytecode,
}


@pytest.mark.parametrize("tampering", TAMPERING)
def test_changed_tests_fail_every_test_and_say_so(tmp_path, monkeypatch, tampering):
    "When the copy of the hidden tests changes behind the grader's back, does every test fail, saying so?"
    hidden = tmp_path / "hidden" / "test_numbers.py"
    hidden.parent.mkdir()
    hidden.write_text(HIDDEN_NUMBERS)
    write_module(tmp_path / "pkg", "def double(x):\n    return x\n\ndef halve(x):\n    return x\n")
    run = runner._run_killable

    def run_tampered(args, sandbox, modules, timeout, max_records):
        TAMPERING[tampering](Path(sandbox.tests) / hidden.name)
        return run(args, sandbox, modules, timeout, max_records)

    monkeypatch.setattr(runner, "_run_killable", run_tampered)
    verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
    assert problem == TAMPERED
    assert [(v.name, v.score, v.status, v.output) for v in verdicts] == [
        (name, 0, FAILED, TAMPERED) for name in ("Doubles a positive number.", "Doubles a negative number.", "Halves a number.")
    ]


def test_a_private_tmp_keeps_the_code_that_grading_imports():
    "A course cloned under /tmp, with its virtual environment, is mounted back behind a private /tmp, once, as its outermost folder."
    from autograder.sandbox import _outermost, code_folders

    course = str(Path(runner.__file__).resolve().parent.parent)
    assert course in code_folders()
    assert _outermost(["/tmp/clone/.venv", "/tmp/clone", "/tmp/autograder-grader-x", "/tmp/clone/autograder"]) == [
        "/tmp/clone",
        "/tmp/autograder-grader-x",
    ]


RUNTIME = """
import socket

import pytest

@pytest.mark.graded("agents", points=1, visible=True)
def test_the_users_agents_are_out_of_reach(learner):
    "Reaches no socket in the users' runtime folders (session bus, SSH and GPG agents)."
    with socket.socket(socket.AF_UNIX) as client:
        with pytest.raises(OSError):
            client.connect(BUS)
"""


def test_the_users_session_sockets_are_out_of_reach(tmp_path):
    "Is a socket in a user's runtime folder, where the session bus and the agents listen, out of graded code's reach?"
    if not private_tmp_available():
        pytest.skip("this system allows no mount namespace inside a user namespace")
    made_run_user = not os.path.isdir("/run/user")
    try:
        os.makedirs("/run/user", exist_ok=True)
        runtime = Path(tempfile.mkdtemp(prefix="4242", dir="/run/user"))  # as /run/user/<uid> is
    except OSError:
        pytest.skip("cannot make a folder under /run/user here")
    bus = runtime / "bus"
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(bus))
            server.listen()
            hidden = tmp_path / "hidden" / "test_runtime.py"
            hidden.parent.mkdir()
            tests, probes = apart(RUNTIME)
            hidden.write_text(tests)
            write_module(tmp_path / "pkg", f"BUS = {str(bus)!r}\n{probes}")
            verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
        assert problem is None
        assert [(v.score, v.output) for v in verdicts] == [(1, "")]
    finally:
        shutil.rmtree("/run/user" if made_run_user else runtime)


PROXIES = """
import os

import pytest

@pytest.mark.graded("proxy", points=1, visible=True)
def test_requests_to_loopback_go_straight_there(learner):
    "Sees no proxy setting, which would send its requests for 127.0.0.1 to a host it cannot reach."
    named = sorted(name for name in os.environ if name.lower().endswith("_proxy"))
    assert not named, f"proxy settings reach graded code: {named}"
"""


def test_graded_code_sees_no_proxy_settings(tmp_path, monkeypatch):
    "Do the grading machine's proxy settings stay out of graded code, whose only network is loopback (the capstone's service)?"
    for name in ("HTTP_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
    hidden = tmp_path / "hidden" / "test_proxies.py"
    hidden.parent.mkdir()
    tests, probes = apart(PROXIES)
    hidden.write_text(tests)
    write_module(tmp_path / "pkg", probes)
    verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
    assert problem is None
    assert [(v.score, v.output) for v in verdicts] == [(1, "")]


SIGNING_KEY = """
import os

import pytest

@pytest.mark.graded("key", points=1, visible=True)
def test_the_signing_key_is_out_of_sight(learner):
    "Finds neither the results' signing key nor its folder's contents."
    assert not os.path.exists(KEY), "the signing key is readable"
    assert os.listdir(os.path.dirname(KEY)) == [], "the signing key's folder shows its contents"
"""


def test_the_signing_key_is_out_of_sight(tmp_path, monkeypatch):
    "Can graded code read the key that signs results (kept outside /tmp, as by default in ~/.config)?"
    if not private_tmp_available():
        pytest.skip("this system allows no mount namespace inside a user namespace: the key is readable (not safe for credit)")
    keys = Path(tempfile.mkdtemp(prefix=".autograder-test-key-", dir=Path.home()))
    try:
        monkeypatch.setenv(KEY_VARIABLE, str(keys / "signing-key"))
        load_key()
        hidden = tmp_path / "hidden" / "test_key.py"
        hidden.parent.mkdir()
        tests, probes = apart(SIGNING_KEY)
        hidden.write_text(tests)
        write_module(tmp_path / "pkg", f"KEY = {str(keys / 'signing-key')!r}\n{probes}")
        verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
        assert problem is None
        assert [(v.score, v.output) for v in verdicts] == [(1, "")]
    finally:
        shutil.rmtree(keys)


HOST = """
import os
import sysconfig
import time

import pytest

def refused(path, flags):
    try:
        os.close(os.open(path, flags, 0o644))
    except OSError:
        return True
    return False

@pytest.mark.graded("host", points=1, visible=True)
def test_the_host_is_read_only(learner):
    "Can change nothing outside its own temporary folders: not Python's libraries, the course, the system, the cgroups."
    # Opened for appending, a file that exists is not changed; a probe that gets created is removed by the test outside.
    for path in (*PROBES, os.path.join(sysconfig.get_paths()["purelib"], PROBE_NAME)):
        assert refused(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND), f"could write {path}"
    with open("/tmp/scratch", "w") as f:
        f.write("its own /tmp stays writable")

@pytest.mark.graded("processes", points=1, visible=True)
def test_processes_are_capped(learner):
    "Cannot have more than the grading's processes at once, however many it starts."
    children = []
    try:
        for _ in range(4 * MAX_PROCESSES):
            pid = os.fork()
            if pid == 0:
                os.read(os.pipe()[0], 1)  # waits until it is killed
                os._exit(0)
            children.append(pid)
    except OSError:
        pass
    finally:
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    assert len(children) < MAX_PROCESSES, f"started {len(children)} processes"

@pytest.mark.graded("memory", points=1, visible=True)
def test_memory_is_capped_for_all_processes_together(learner):
    "Cannot use more memory in several processes than the grading may (each child stays under the cap per process)."
    ready, told = os.pipe()
    children = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            held = b"x" * (MEMORY_MB // 2 * 2**20)  # written, so it is resident
            os.write(told, b"1")
            os.read(os.pipe()[0], 1)  # waits until it is killed
            os._exit(len(held) and 0)
        children.append(pid)
    os.close(told)
    os.set_blocking(ready, False)
    holding, ended, deadline = 0, set(), time.monotonic() + 30
    while holding + len(ended) < len(children) and time.monotonic() < deadline:
        try:
            holding += len(os.read(ready, 4))
        except BlockingIOError:
            time.sleep(0.05)
        ended |= {pid for pid in set(children) - ended if os.waitpid(pid, os.WNOHANG) != (0, 0)}
    for pid in set(children) - ended:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert holding < len(children), f"{holding} processes held {MEMORY_MB // 2} MiB each"
"""


def test_a_grading_can_change_nothing_on_the_host_and_has_its_processes_and_memory_capped(tmp_path):
    "Can graded code write anywhere on the host outside its own /tmp, or go past the caps on processes and memory?"
    if not private_tmp_available() or not cgroups_available():
        pytest.skip("this system gives no private mounts or no cgroups: grading there is marked not safe for credit")
    name = f"autograder-probe-{os.getpid()}"
    outside = [
        ROOT / name,  # the course (its hidden tests, the grader's own code)
        Path(sys.prefix) / name,
        Path("/etc/passwd"),
        *Path("/sys/fs/cgroup").glob("*/cgroup.procs"),
        *Path("/sys/fs/cgroup").glob("cgroup.procs"),
    ]
    hidden = tmp_path / "hidden" / "test_host.py"
    hidden.parent.mkdir()
    limits = Limits(memory_mb=512, file_mb=64, processes=32)
    tests, probes = apart(HOST)
    hidden.write_text(tests)
    write_module(
        tmp_path / "pkg",
        f"PROBES, PROBE_NAME = {[str(p) for p in outside]!r}, {name!r}\n"
        f"MAX_PROCESSES, MEMORY_MB = {limits.processes}, {limits.memory_mb}\n{probes}",
    )
    try:
        verdicts, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"], limits=limits)
    finally:
        created = [p for p in (*outside, Path(sysconfig.get_paths()["purelib"]) / name) if p.name == name and p.exists()]
        for path in created:
            path.unlink()
    assert not created, f"graded code created {created}"
    assert problem is None
    assert {v.part: (v.score, v.output) for v in verdicts} == {p: (1, "") for p in ("host", "processes", "memory")}
