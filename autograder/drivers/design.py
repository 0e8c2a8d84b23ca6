"""Drivers of the system-design chapter: the learner's model registry saving on a disk that fills up."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os


class _HalfWrites:
    """A file open for writing whose first write stops halfway, as on a full disk."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(28, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


@contextlib.contextmanager
def _full_disk():
    """Every file opened for writing fills the disk halfway: through open, io.open, os.fdopen, pathlib and
    json.dump, and through os.write on a descriptor that os.open (tempfile.mkstemp among its callers) opened to write."""
    real_open, real_fdopen, real_dump = io.open, os.fdopen, json.dump
    real_os_open, real_os_write = os.open, os.write
    writable: set[int] = set()

    def os_open(path, flags, *args, **kwargs):
        descriptor = real_os_open(path, flags, *args, **kwargs)
        if flags & (os.O_WRONLY | os.O_RDWR):
            writable.add(descriptor)
        return descriptor

    def os_write(descriptor, data):
        if descriptor not in writable:
            return real_os_write(descriptor, data)
        real_os_write(descriptor, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    def opening(real):
        def open_(file, mode="r", *args, **kwargs):
            handle = real(file, mode, *args, **kwargs)
            return _HalfWrites(handle) if any(flag in mode for flag in "wax+") else handle

        return open_

    def dump(obj, fp, *args, **kwargs):
        fp.write(json.dumps(obj, *args, **kwargs))

    builtins.open = io.open = opening(real_open)
    os.fdopen = opening(real_fdopen)
    os.open, os.write = os_open, os_write
    json.dump = dump
    try:
        yield
    finally:
        builtins.open, io.open, os.fdopen, json.dump = real_open, real_open, real_fdopen, real_dump
        os.open, os.write = real_os_open, real_os_write


def promote_on_a_full_disk(registry, version: str, canary: dict, slo: dict) -> None:
    """Promote ``version`` while the disk fills halfway through the registry's save (OSError)."""
    with _full_disk():
        registry.promote(version, canary, slo)
