"""What keeps a submission from reaching the network, other processes, other gradings' files, or outliving its grading.

Two layers, because the strong one is not available everywhere:

- fresh *namespaces* (the ``unshare`` system call): the tests run as process 1 of a
  PID namespace, in a network namespace with only a loopback interface. No call of
  any kind (Python, C, a subprocess) reaches another host; no process outside can be
  seen or signalled, the grader included; and when the tests end, the kernel ends
  everything they started. A mount namespace on top gives them a /tmp of their own
  (with /var/tmp and /dev/shm; in memory, with a size limit) and a /proc that lists
  only their processes: the files of the notebooks graded at the same time are out of
  sight, so a submission cannot change another's copy of the hidden tests or its
  results. Files elsewhere stay shared: the tests run as the grader's user, and can
  read and change whatever it can outside /tmp. All this needs user namespaces (or
  root); where the system forbids them, as some hardened CI runners do, it is
  skipped, and the grader can only detect a run whose tests were changed (runner.py);
- a guard inside the grading process that refuses, with a clear message, every socket
  connection and name lookup that is not for this machine. Loopback stays open, so
  tests may start a server and call it. Code that goes around Python's ``socket``
  module (ctypes, a subprocess running curl) is not stopped by this layer alone.

After the tests, whatever the submission left running in its process group is killed;
without namespaces, a process that started a session of its own escapes that.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

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


def enter_private_tmp(keep: list[str], size_mb: int) -> bool:
    """Give this process, process 1 of the namespaces that enter_namespaces made, a /tmp of its own.

    Every grading runs as the same user, and the grader keeps each one's copy of the
    hidden tests and its results in the temporary folder: without this, a submission
    could find and change those of another notebook graded at the same time. In a new
    mount namespace, one tmpfs of at most ``size_mb`` covers the temporary folder, /tmp,
    /var/tmp and /dev/shm, so all that the others keep there is out of sight, and what
    this one writes there cannot fill the machine's memory. The folders in ``keep``
    that lie there (this grading's own, and the code it runs) are mounted back where
    they were, so their paths still work, and files written in them reach the grader. /proc is mounted
    afresh, listing only this namespace's processes: the old one listed every process
    on the machine with its command line, and the grader's may name the hidden tests.
    Returns False, hiding nothing, where the system forbids it.
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
    return True


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


def kill_process_group(pid: int) -> None:
    """Kill every process left in the group that ``pid`` leads; nothing if it is empty."""
    try:
        os.killpg(pid, signal.SIGKILL)
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
