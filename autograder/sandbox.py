"""What keeps a submission from reaching the network, other processes, or outliving its grading.

Two layers, because the strong one is not available everywhere:

- fresh *namespaces* (the ``unshare`` system call): the tests run as process 1 of a
  PID namespace, in a network namespace with only a loopback interface. No call of
  any kind (Python, C, a subprocess) reaches another host; no process outside can be
  seen or signalled, the grader included; and when the tests end, the kernel ends
  everything they started. It needs user namespaces (or root); where the system
  forbids them, as some hardened CI runners do, it is skipped;
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
from functools import cache
from pathlib import Path

CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
SIOCSIFFLAGS, IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x8914, 0x1, 0x8, 0x40
BLOCKED = "network access is disabled while grading (only this machine, via localhost, is reachable)"


@cache
def namespaces_available() -> bool:
    """Whether this system lets an ordinary process enter namespaces of its own (user, network, PID)."""
    probe = "import sys; from autograder.sandbox import enter_namespaces; sys.exit(not enter_namespaces())"
    try:
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def enter_namespaces() -> bool:
    """Move this single-threaded process into new user, network and PID namespaces, loopback up.

    From then on it reaches no other host, and the next process it forks is process 1 of
    a PID namespace: that process, and all it starts, can neither see nor signal any
    process outside, and the kernel ends them all when it ends. The user namespace maps
    this user to root inside it, which is what lets an ordinary user create the others.
    Returns False, changing nothing, where the system forbids it.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID) != 0:
        return False
    try:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING))
    except OSError:
        return False
    return True


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
