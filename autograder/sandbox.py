"""The sandbox: every rule that a submission's code runs under while it is graded, top to bottom.

A notebook is graded by two processes (``run_judged``), forked from ``runner.py``'s
grading server: the *judge*, which runs the hidden tests and reports the verdicts, and
beside it the learner's *worker*, started from a zygote that is confined further before
any learner code or hidden test is loaded (see judge.py and worker.py). The rules, in
the order they are applied:

1. **Limits** (``Limits``): wall clock per notebook and per submission, time per test,
   memory on top of the preloaded libraries, the largest file and the size of /tmp.
2. **A process group and a cgroup of its own** (``run_judged``, ``enter_cgroup``): one
   signal stops the grading and everything it started; output goes to a log file that
   the grader reads the end of. Where the grader may make cgroups, the grading's
   processes, and their memory together, are capped, and it gets an equal CPU share.
3. **Fresh namespaces** (``enter_namespaces``, the ``unshare`` system call): the judge
   runs as process 1 of a PID namespace, in a network namespace with only a loopback
   interface. No call of any kind (Python, C, a subprocess) reaches another host; no
   process outside can be seen or signalled, the grader included; and when the judge
   ends, the kernel ends everything the worker started. This needs user namespaces (or
   root); where the system forbids them, as some hardened CI runners do, it is skipped.
4. **A private /tmp** (``enter_private_tmp``): a mount namespace gives the grading a /tmp
   of its own (with /var/tmp and /dev/shm; in memory, with a size limit) and a /proc
   that lists only its processes. The files of the notebooks graded at the same time
   are out of sight. Everything else is read-only (``make_read_only``): the grading runs
   as the grader's user, but cannot change the course, Python's libraries, the hidden
   tests or earlier results.
5. **The worker's own view** (``confine_worker``): the hidden tests covered, the judge's
   data read-only but for the exchange folder, a /dev/shm of its own, and no file of the
   judge's open; then (``confine``) every capability given up, address space, file size
   and processes capped, the working directory and HOME its own, and the hidden tests'
   location, pytest's options, the grader's command line and the user's agents not
   passed on. A guard refuses, with a clear message, every socket connection and name
   lookup that is not for this machine (the only network rule where namespaces are
   missing; code that goes around Python's ``socket`` module is not stopped by it alone).
6. **A check that the hidden tests are the grader's** (``tests_digest``): without a
   private /tmp another grading may have changed them; they are checked at the last
   moment before the judge loads them, and changed tests run no test.

After the grading, whatever the submission left running is killed: with the PID
namespace, with the cgroup (``remove_cgroup``), and by process group
(``kill_process_group``); without namespaces or cgroups, the learner's processes, which
run in process groups of their own, escape that.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import ipaddress
import multiprocessing.connection
import multiprocessing.resource_tracker
import multiprocessing.util
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from autograder.paths import HIDDEN_TESTS_VARIABLE, PACKAGED_HIDDEN_TESTS, ROOT

DEFAULT_TEST_TIMEOUT = 60.0
LOG_NAME = "output.log"  # in the grader's folder for one grading
USER_SESSION_VARIABLES = (
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "XDG_RUNTIME_DIR",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
)


@dataclass(frozen=True)
class Limits:
    """What one notebook's, and one submission's, grading may use before it is stopped."""

    notebook_seconds: float = 600  # wall clock for all of a notebook's tests; then the process group is killed
    test_seconds: float = DEFAULT_TEST_TIMEOUT  # per test, raised inside the test as a timeout
    memory_mb: int = 4096  # address space on top of the preloaded libraries: room for DataLoader workers
    submission_seconds: float = 1200  # wall clock for all the notebooks of one learner's assignment
    file_mb: int = 1024  # largest file (output included), and all a private /tmp holds: a print loop fills no disk or memory
    processes: int = 256  # processes and threads at once, all of a notebook's together: a fork loop stops there
    device: str = "cpu"  # where tests of training code train: "cuda" grades the same tests on the GPU


@dataclass(frozen=True)
class Sandbox:
    """Where and how one notebook's tests run."""

    work: str  # the submission's working directory and HOME
    package_root: str  # where its exported package can be imported from
    grader: str  # the grader's files: the copy of the hidden tests, the log
    tests: str  # the copy of the hidden tests; in judged grading, their folder, which the worker must not see
    tests_digest: str  # of that copy, as the grader made it
    memory_mb: int | None  # None: no cap on address space
    file_mb: int
    processes: int
    namespaces: bool  # user, network, PID and mount namespaces, where the system allows them
    secret: str = ""  # a folder that no process of the grading may read: the one with the results' signing key

    @property
    def name(self) -> str:
        """Unique among the gradings running now: it names the cgroup."""
        return Path(self.grader).name

    @property
    def exchange(self) -> str:
        """Where, in judged grading, the tests ask the learner's code to write: the one folder both can write."""
        return str(Path(self.grader) / "exchange")

    @property
    def log(self) -> str:
        """pytest's output, and anything the submission prints."""
        return str(Path(self.grader) / LOG_NAME)


def run_judged(args: list[str], sandbox: Sandbox, results: multiprocessing.connection.Connection, modules: list[str]) -> None:
    """In the forked process: the judge, which runs the hidden tests, and beside it the learner's worker.

    A session of its own makes this process and everything below it one group, so one
    signal stops all of it; output goes to a file, not a pipe (a process the submission
    left running would keep a pipe open, and reading it to the end would wait for it).
    Then a cgroup and namespaces. The judge (process 1 of the PID namespace, which no
    process inside may kill or stop) makes the private /tmp, then forks the *zygote*
    before it has loaded any hidden test: the zygote confines itself further
    (``confine_worker``) and starts a session of the learner's code each time the judge
    asks. Learner code runs only there; the judge holds the results pipe, which the
    zygote closes. This process waits for the judge, so a submission that kills its
    parent kills the zygote, not the grading server.
    """
    os.setsid()
    log = os.open(sandbox.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    enter_cgroup(sandbox)
    if sandbox.namespaces:
        enter_namespaces()
    judge = os.fork()
    if judge == 0:
        keep = [sandbox.package_root, sandbox.tests, *code_folders()]  # the hidden tests where they are, read-only
        private = sandbox.namespaces and enter_private_tmp(keep, sandbox.file_mb, [sandbox.secret])
        for folder in (sandbox.work, sandbox.exchange, multiprocessing.util.get_temp_dir()):
            os.makedirs(folder, exist_ok=True)
        # Nothing of this process (its memory with the hidden tests, its open files) may be
        # read through /proc by another process of the same user: the worker's, above all.
        _call("prctl", PR_SET_DUMPABLE, 0, 0, 0, 0)
        control, worker_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # one command per message
        starter = os.fork()
        if starter == 0:
            _start_zygote(sandbox, private, worker_control, modules)
        os.waitpid(starter, 0)
        worker_control.close()
        # Process 1 of its PID namespace: the kernel delivers it no signal from inside the
        # namespace that it has no handler for, and it keeps none (its time limits are not alarms).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(signum, signal.SIG_IGN)
        os.environ.pop("PYTEST_ADDOPTS", None)
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        # Without a private /tmp, another grading could have changed the hidden tests: checked
        # at the last moment before pytest loads them. The grader, missing every planned
        # test, then says what happened.
        try:
            intact = tests_digest(Path(sandbox.tests)) == sandbox.tests_digest
        except OSError:
            intact = False
        code = pytest.ExitCode.NO_TESTS_COLLECTED
        if intact:
            code = pytest.main([*args, "--results-fd", str(results.fileno()), "--judge-control-fd", str(control.fileno())])
        sys.stdout.flush()
        os._exit(int(code))
    _, status = os.waitpid(judge, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _start_zygote(sandbox: Sandbox, private_tmp: bool, control: socket.socket, modules: list[str]) -> None:
    """In a process forked by the judge: fork the zygote, in a PID namespace of its own below the judge's, and end.

    The zygote is process 1 there: the learner's processes see neither the judge nor
    anything outside, and cannot signal the zygote (the kernel drops signals to process 1
    that it has no handler for). The namespace is entered by this short-lived process,
    not the judge: a process that has entered one may no longer start threads.
    """
    if private_tmp:
        _call("unshare", CLONE_NEWPID)
    if os.fork() == 0:
        from autograder.worker import run_zygote  # here: the worker imports the plugin, which imports this module

        _close_all_but(control.fileno())  # the results pipe above all
        confine_worker(sandbox, private_tmp)
        run_zygote(control, modules)
    os._exit(0)


def confine_worker(sandbox: Sandbox, private_tmp: bool) -> None:
    """In the zygote of the learner's worker: hide what the judge keeps, then confine as ``confine`` does.

    In a mount namespace of its own, with a /proc that lists only the processes of its
    own PID namespace (the judge is not among them): the hidden tests (of every chapter) are covered by
    an empty tmpfs; the judge's folder (the data that session fixtures generate) is
    read-only, but for the exchange folder in it, where tests ask the learner's code to
    write; /dev/shm (where DataLoader workers share tensors) is a tmpfs of its own, not
    the judge's /tmp under another name. The rest of the private /tmp stays writable, as
    programs expect of /tmp.
    """
    if private_tmp:
        _call("unshare", CLONE_NEWNS)
        _mount("none", "/", flags=MS_REC | MS_PRIVATE)
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)  # the zygote's PID namespace, not the judge's
        # The chapter's folder and the one holding every chapter's, unless code that grading
        # imports lies inside (an instructor's tests kept beside the course, say).
        code = [sandbox.package_root, *code_folders()]
        hidden = [str(Path(sandbox.tests).parent), sandbox.tests, str(PACKAGED_HIDDEN_TESTS)]
        for folder in _outermost([f for f in hidden if os.path.isdir(f) and not any(Path(c).is_relative_to(f) for c in code)]):
            _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=555")
        if os.path.isdir("/dev/shm"):
            _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={sandbox.file_mb}m")
        _mount(sandbox.exchange, sandbox.exchange, flags=MS_BIND)
        _mount(sandbox.grader, sandbox.grader, flags=MS_BIND | MS_REC)  # the exchange folder's mount comes along
        _mount("none", sandbox.grader, flags=MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    install_network_guard()  # a clear message for a connection to another host, which the namespace refuses anyway
    confine(sandbox)


def _close_all_but(keep: int) -> None:
    """Close every file this process inherited but ``keep`` (and standard input and output).

    Among them the pipe to the grading server's resource tracker, which unlinks, outside
    any sandbox, the shared memory and semaphores it is told of: the learner's processes
    start a tracker of their own, inside, when they first need one (a DataLoader's workers).
    """
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
    tracker = multiprocessing.resource_tracker._resource_tracker
    tracker._fd = tracker._pid = None  # what it holds when none was started: the next use starts one


def confine(sandbox: Sandbox) -> None:
    """In the process that will run the submission, its mounts made: privileges, resource limits, a clean environment."""
    if sandbox.namespaces:
        drop_privileges()
        # Counted per user in this user namespace, so only this grading's processes. (Outside
        # namespaces it would count every process of the instructor's.) It does not bind a
        # grader run as root on the host: there the cgroup caps the processes.
        resource.setrlimit(resource.RLIMIT_NPROC, (sandbox.processes, sandbox.processes))
    # The limit counts on top of the libraries this process was forked with.
    if sandbox.memory_mb is not None:
        in_use = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = in_use + sandbox.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Python ignores SIGXFSZ, so a write past the limit raises OSError in the code that wrote.
    resource.setrlimit(resource.RLIMIT_FSIZE, (sandbox.file_mb * 2**20,) * 2)
    os.chdir(sandbox.work)
    os.environ["HOME"] = sandbox.work
    os.environ.pop("PYTEST_ADDOPTS", None)
    for name in USER_SESSION_VARIABLES:  # where the user's agents and displays are: nothing graded code needs
        os.environ.pop(name, None)
    # Graded code reaches only loopback, where a proxy named by the machine would send its
    # requests for 127.0.0.1 (HTTP clients bypass a proxy only for hosts in NO_PROXY).
    for name in [name for name in os.environ if name.lower().endswith("_proxy")]:
        os.environ.pop(name)
    # The tests run from a copy: the submission is not told where the originals are,
    # neither by the environment nor by the grader's command line, which it inherited.
    os.environ.pop(HIDDEN_TESTS_VARIABLE, None)
    sys.argv = ["autograder-grading"]
    sys.path.insert(0, sandbox.package_root)


# prctl(2) options and securebits, from <linux/prctl.h> and <linux/securebits.h>.
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = (
    4,
    24,
    28,
    38,
    47,
    4,
)
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED, SECBIT_NO_SETUID_FIXUP, SECBIT_NO_SETUID_FIXUP_LOCKED = 1, 2, 4, 8
LINUX_CAPABILITY_VERSION_3 = 0x20080522


def drop_privileges() -> None:
    """Give up, for good, the capabilities that the user namespace gave this process.

    Inside its namespaces the process is root with every capability there, which is what
    let it mount its private /tmp; the same capabilities would let the submission unmount
    it (and see the host's /tmp and processes again), mount, or make namespaces of its
    own. So, once the mounts are made: root no longer gains capabilities, by exec or
    otherwise (securebits, locked); the bounding, ambient, effective, permitted and
    inheritable sets are emptied; and no exec may gain privileges again (no_new_privs).
    The uid stays 0 inside the namespace, which is this same user outside.
    """
    bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED
    _call("prctl", PR_SET_SECUREBITS, ctypes.c_ulong(bits), 0, 0, 0)
    for capability in range(int(Path("/proc/sys/kernel/cap_last_cap").read_text()) + 1):
        _call("prctl", PR_CAPBSET_DROP, ctypes.c_ulong(capability), 0, 0, 0)
    _call("prctl", PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0))
    empty = ctypes.create_string_buffer(struct.pack("6I", *[0] * 6))  # two sets of (effective, permitted, inheritable)
    _call("capset", header, empty)
    _call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def code_folders() -> list[str]:
    """Where the code that grading imports lives: Python, its libraries, the course.

    A clone under /tmp (as in the README's check from a fresh clone) keeps its virtual
    environment and the course there; a private /tmp must not hide them, or the first
    import after it fails.
    """
    return [sys.prefix, sys.exec_prefix, str(ROOT), *(p for p in sys.path if os.path.isabs(p) and os.path.isdir(p))]


def tests_digest(folder: Path) -> str:
    """Of every file under ``folder``, with its path (a ``__pycache__`` planted in a copy included)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40
BLOCKED = "network access is disabled while grading (only this machine, via localhost, is reachable)"


def namespaces_available() -> bool:
    """Whether this system lets an ordinary process enter namespaces of its own (user, network, PID)."""
    return _layers() >= 1


def private_tmp_available() -> bool:
    """Whether, inside those namespaces, graded code also gets a /tmp of its own (see enter_private_tmp)."""
    return _layers() == 2


def protections() -> dict[str, bool]:
    """Each protection that depends on the system, and whether this one gives it.

    Grading without any of them still grades, marked not safe for credit. (Verdicts
    from a process that never runs the submission's code, and signed results, are
    given everywhere: see judge.py and signing.py; the key is out of the submission's
    sight only with the second protection.)
    """
    return {
        "network, process and mount namespaces (no network; no process outside in sight)": namespaces_available(),
        "a private /tmp, /var/tmp and /dev/shm, the signing key out of sight, the rest read-only, and capabilities"
        " dropped once made": private_tmp_available(),
        "cgroups: a cap on each grading's processes and memory, and an equal share of the CPU": cgroups_available(),
    }


def missing_protections() -> list[str]:
    """The protections this system does not give: grading without them is not safe for credit."""
    return [name for name, present in protections().items() if not present]


@cache
def cgroups_available() -> bool:
    """Whether the grader can put a grading in a cgroup that caps its processes and memory: tried in a fresh process."""
    name = f"autograder-probe-{os.getpid()}"
    probe = f"from autograder.sandbox import _probe_cgroup; print(_probe_cgroup({name!r}))"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        remove_cgroup(_probe_sandbox(name))
    return {"pids", "memory"} <= set(result.stdout.split())


def _probe_cgroup(name: str) -> str:
    return " ".join(enter_cgroup(_probe_sandbox(name)))


def _probe_sandbox(name: str) -> Sandbox:
    return Sandbox("", "", grader=name, tests="", tests_digest="", memory_mb=256, file_mb=1, processes=64, namespaces=False)


@cache
def _layers() -> int:
    """0, 1 (namespaces) or 2 (namespaces and a private /tmp): what this system allows, tried in a fresh process."""
    probe = "from autograder.sandbox import _enter_layers; print(_enter_layers())"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return int(result.stdout) if result.stdout.strip() in ("1", "2") else 0  # anything else, a crash included: none


def _enter_layers() -> int:
    if not enter_namespaces():
        return 0
    child = os.fork()  # the private /tmp is made by process 1 of the new PID namespace, as when grading
    if child == 0:
        os._exit(0 if enter_private_tmp([], 1) else 1)
    return 2 if os.waitpid(child, 0)[1] == 0 else 1


def enter_namespaces() -> bool:
    """Move this single-threaded process into new user, network and PID namespaces, loopback up.

    From then on it reaches no other host, and the next process it forks is process 1 of
    a PID namespace: that process, and all it starts, can neither see nor signal any
    process outside, and the kernel ends them all when it ends. The user namespace maps
    this user to root inside it, which is what lets an ordinary user create the others.
    Returns False, changing nothing, where the system forbids it.
    """
    uid, gid = os.getuid(), os.getgid()
    try:
        _call("unshare", CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID)
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING))
    except OSError:
        return False
    return True


def enter_private_tmp(keep: list[str], size_mb: int, secret: list[str] = ()) -> bool:
    """Give this process, process 1 of the namespaces that enter_namespaces made, a /tmp of its own and a read-only host.

    Every grading runs as the same user, and the grader keeps each one's copy of the
    hidden tests and its results in the temporary folder: without this, a submission
    could find and change those of another notebook graded at the same time. In a new
    mount namespace, one tmpfs of at most ``size_mb`` covers the temporary folder, /tmp,
    /var/tmp and /dev/shm, so all that the others keep there is out of sight, and what
    this one writes there cannot fill the machine's memory. The folders in ``keep``
    that lie there (the code it runs, the hidden tests) are mounted back where they
    were, so their paths still work. /proc is mounted afresh, listing only this namespace's processes: the old one
    listed every process on the machine with its command line, and the grader's may
    name the hidden tests. The user's runtime folders (/run/user, ``$XDG_RUNTIME_DIR``)
    and the folders in ``secret`` (the signing key's) are covered by an empty tmpfs. Then everything else becomes read-only
    (``make_read_only``): the tmpfs is the only place this process can write. Returns
    False, hiding nothing, where the system forbids it.
    """
    shared = list(dict.fromkeys([tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"]))
    # Only what lies inside a shared folder needs mounting back, and never a whole shared
    # folder (a script run from /tmp puts /tmp itself on sys.path).
    inside = [p for p in keep if any(Path(p).is_relative_to(f) and Path(p) != Path(f) for f in shared)]
    keep = _outermost(inside)
    try:
        _call("unshare", CLONE_NEWNS)
        _mount("none", "/", flags=MS_REC | MS_PRIVATE)  # nothing mounted here shows outside
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        # Opened now: a bind mount needs a source in this mount namespace, and the tmpfs is about to hide them.
        folders = [os.open(path, os.O_PATH | os.O_DIRECTORY) for path in keep]
        _mount("tmpfs", shared[0], "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m")
    except OSError:
        return False
    for path in shared[1:]:
        if os.path.isdir(path):
            _mount(shared[0], path, flags=MS_BIND)
    for path, folder in zip(keep, folders):
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{folder}", path, flags=MS_BIND)
        os.close(folder)
    # The user's runtime folders hold the sockets of their session bus (through which a
    # process can start services outside any sandbox) and of their SSH and GPG agents.
    # The signing key's folder: a process that could read the key could sign forged results.
    for path in dict.fromkeys(filter(None, [os.environ.get("XDG_RUNTIME_DIR"), "/run/user", *secret])):
        if os.path.isdir(path) and not any(Path(path).is_relative_to(f) for f in shared):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=700")
    make_read_only([p for p in shared if os.path.isdir(p)])
    return True


MS_RDONLY, MS_REMOUNT, MS_NOSYMFOLLOW, MS_NOATIME, MS_NODIRATIME = 0x1, 0x20, 0x100, 0x400, 0x800
MS_RELATIME, MS_STRICTATIME = 0x200000, 0x1000000
# A mount inherited from outside the user namespace is locked: remounting it must keep these
# as they are (and the rest are kept too, so that remounting only ever adds read-only).
KEPT_MOUNT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "nosymfollow": MS_NOSYMFOLLOW,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}


def make_read_only(writable: list[str]) -> None:
    """Remount every mount of this mount namespace read-only, except /proc and the mounts at ``writable``.

    The grading runs as the instructor (or as root, if the grader does): without this, a
    submission could plant a ``.pth`` file in the virtual environment (code that runs at
    every later Python start, outside any sandbox), rewrite the original hidden tests,
    other learners' notebooks or earlier results, or move itself out of its cgroup. The
    kernel keeps inherited mounts read-only once made so, even for a process that makes a
    user namespace of its own and regains capabilities there.
    """
    kept = {os.path.realpath(path) for path in writable} | {"/proc"}
    for target, options in _mounts():
        if target in kept or "ro" in options:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | sum(KEPT_MOUNT_FLAGS.get(option, 0) for option in options)
        if not flags & (MS_NOATIME | MS_RELATIME):
            flags |= MS_STRICTATIME
        try:
            _mount("none", target, flags=flags)
        except OSError as e:
            # Under the private /tmp, out of sight and out of reach: the path is not there,
            # or is a plain folder of the tmpfs.
            if e.errno not in (errno.ENOENT, errno.EINVAL):
                raise


def _mounts() -> list[tuple[str, list[str]]]:
    """Each mount of this mount namespace: where it is mounted, and its options (``ro``, ``nosuid``...)."""
    fields = (line.split() for line in Path("/proc/self/mountinfo").read_text().splitlines())
    return [(_unescape(mount[4]), mount[5].split(",")) for mount in fields]


def _unescape(path: str) -> str:
    """A path as /proc/self/mountinfo writes it: space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda octal: chr(int(octal.group(1), 8)), path)


def _outermost(paths: list[str]) -> list[str]:
    """The paths that lie in none of the others: mounting a folder back brings what is inside it."""
    unique = sorted({os.path.realpath(path) for path in paths}, key=len)
    return [path for i, path in enumerate(unique) if not any(Path(path).is_relative_to(other) for other in unique[:i])]


def _mount(source: str, target: str, fstype: str | None = None, flags: int = 0, options: str | None = None) -> None:
    fstype_arg = None if fstype is None else fstype.encode()
    options_arg = None if options is None else options.encode()
    _call("mount", source.encode(), target.encode(), fstype_arg, ctypes.c_ulong(flags), options_arg)


def _call(function: str, *args) -> None:
    """Call a libc function that returns 0 on success; raise OSError, with its errno, when it fails."""
    if getattr(ctypes.CDLL(None, use_errno=True), function)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{function}: {os.strerror(errno)}")


CGROUPS = Path("/sys/fs/cgroup")
CGROUP_CONTROLLERS = ("pids", "memory", "cpu")


def enter_cgroup(sandbox: Sandbox) -> list[str]:
    """Move this process, and so all it starts, into a cgroup of its own, where the system lets the grader make one.

    Limits per process do not bind a submission that starts many: twenty processes
    under the cap on address space, or a fork loop, could take the machine down or make
    the gradings beside it time out. The cgroup caps the number of processes and threads
    (``pids``), their memory together (``memory``: what one process may address, plus what
    its /tmp may hold, which is memory too), and gives each grading an equal share of
    the CPU however many processes it runs (``cpu``, at its default weight). The
    grader removes it when the grading ends (``remove_cgroup``). Returns the controllers joined.
    """
    limits = {"pids": sandbox.processes}
    if sandbox.memory_mb is not None:
        limits["memory"] = (sandbox.memory_mb + sandbox.file_mb) * 2**20
    controllers_by_folder: dict[Path, list[str]] = {}  # cgroups v2: one folder for every controller
    for controller, folder in _cgroup_folders(sandbox.name).items():
        controllers_by_folder.setdefault(folder, []).append(controller)
    joined = []
    for folder, controllers in controllers_by_folder.items():
        try:
            folder.mkdir()
            version_2 = (folder / "cgroup.controllers").exists()
            settings = {"pids": "pids.max", "memory": "memory.max" if version_2 else "memory.limit_in_bytes"}
            for controller in set(controllers) & set(limits):
                (folder / settings[controller]).write_text(str(limits[controller]))
            (folder / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            continue  # not delegated to this user: the limits per process remain
        joined += controllers
    return joined


def remove_cgroup(sandbox: Sandbox) -> None:
    """Kill what is left in the grading's cgroup, then remove it: nothing is left behind.

    Left there are processes outside the grading's process group: the learner's code
    runs in groups of its own (so that it cannot kill the judge's), and may start new
    sessions; no process leaves its cgroup. (Killed ones may take a moment to go.)
    """
    for folder in set(_cgroup_folders(sandbox.name).values()):
        for _ in range(100):
            try:
                for pid in (folder / "cgroup.procs").read_text().split():
                    kill_process(int(pid))
                folder.rmdir()
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
            else:
                break


def _cgroup_folders(name: str) -> dict[str, Path]:
    """Where the cgroup called ``name`` goes for each controller: inside this process's own, cgroups v1 or v2."""
    folders: dict[str, Path] = {}
    for line in sorted(Path("/proc/self/cgroup").read_text().splitlines(), reverse=True):  # v1 lines, then v2's
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy != "0":
            for controller in set(controllers.split(",")) & set(CGROUP_CONTROLLERS):
                folders[controller] = CGROUPS / controllers / path.lstrip("/") / name
            continue
        own = (CGROUPS if (CGROUPS / "cgroup.controllers").exists() else CGROUPS / "unified") / path.lstrip("/")
        try:
            delegated = (own / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        for controller in set(delegated) & set(CGROUP_CONTROLLERS) - set(folders):
            folders[controller] = own / name
    return folders


def kill_process_group(pid: int) -> None:
    """Kill every process left in the group that ``pid`` leads; nothing if it is empty."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_process(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def install_network_guard() -> None:
    """Refuse connections and name lookups that leave this machine, for the rest of this process."""
    original_connect, original_connect_ex = socket.socket.connect, socket.socket.connect_ex
    original_sendto, original_getaddrinfo = socket.socket.sendto, socket.getaddrinfo

    def connect(self, address):
        _check(self, address)
        return original_connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return original_connect_ex(self, address)

    def sendto(self, data, *args):
        _check(self, args[-1])
        return original_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local_host(host):
            raise PermissionError(f"{BLOCKED}: cannot look up {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
    socket.getaddrinfo = getaddrinfo


def _check(sock: socket.socket, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local_host(address[0]):
        raise PermissionError(f"{BLOCKED}: cannot connect to {address[0]!r}")


def _is_local_host(host) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port): this machine's own addresses
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
