"""What keeps a submission from reaching the network or outliving its grading.

Two layers against the network, because the strong one is not available everywhere:

- a fresh *network namespace* (``unshare``): the grading process sees only its own
  loopback interface, so no call of any kind (Python, C, a subprocess) reaches another
  host. It needs user namespaces (or root); where the system forbids them, as some
  hardened CI runners do, it is skipped;
- a guard inside the grading process that refuses, with a clear message, every socket
  connection and name lookup that is not for this machine. Loopback stays open, so
  tests may start a server and call it. Code that goes around Python's ``socket``
  module (ctypes, a subprocess running curl) is not stopped by this layer alone.

After the tests, whatever the submission left running in its process group is killed.
A process that started a session of its own escapes that; the instructor guide says so.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
from functools import cache

BLOCKED = "network access is disabled while grading (only this machine, via localhost, is reachable)"


@cache
def network_namespace_prefix() -> tuple[str, ...]:
    """A command prefix that runs a program in a new network namespace with loopback up, or () if impossible here."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare is None or ip is None:
        return ()
    # -r maps the user to root inside a new user namespace, which lets an ordinary user
    # create the network namespace and bring its loopback interface up.
    prefix = (unshare, "--net", "--map-root-user", "--", "sh", "-c", f'{ip} link set lo up && exec "$0" "$@"')
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return prefix if probe.returncode == 0 else ()


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
