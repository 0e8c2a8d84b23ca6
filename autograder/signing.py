"""Results signed with a key that no graded process can read.

``grade --out`` reuses a ``results.json`` whose inputs have not changed, so a forged one
(full marks written by hand, or by a submission graded on a system without a read-only
sandbox) would otherwise be trusted on every later run. Each one carries an HMAC of its
contents; a file whose signature does not match is reported to the instructor and
graded again.

The key is a file in a folder of its own, by default ``~/.config/autograder/signing-key``,
made on first use (or named by ``AUTOGRADER_SIGNING_KEY``). The sandbox covers that
folder with an empty tmpfs (``sandbox.enter_private_tmp``); the grading server, started
before any key is read, never holds it. Machines that grade shards of one class share
the key, as they share the hidden tests, so that the merged folder verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

KEY_VARIABLE = "AUTOGRADER_SIGNING_KEY"
KEY_BYTES = 32


class ForgedResults(ValueError):
    """A results file whose signature does not match its contents."""


def key_path() -> Path:
    if named := os.environ.get(KEY_VARIABLE):
        return Path(named).absolute()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return (config / "autograder" / "signing-key").absolute()


def check_key_folder(code: list[str]) -> None:
    """The key's folder is hidden from graded code as a whole: it must not hold what grading needs."""
    folder = key_path().parent
    for path in code:
        if Path(path).absolute().is_relative_to(folder):
            raise ValueError(
                f"the signing key {key_path()} is in a folder that also holds {path}, which grading needs;"
                f" move the key to a folder of its own (set {KEY_VARIABLE})"
            )


def load_key() -> bytes:
    """The key, made now (readable by this user only) if there is none yet."""
    path = key_path()
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another grader made it first: read theirs
        else:
            with os.fdopen(handle, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
    key = path.read_bytes()
    if len(key) < KEY_BYTES // 2:
        raise ValueError(f"the signing key {path} holds {len(key)} bytes; remove it to have a new one made")
    return key


def sign(payload: dict, key: bytes) -> str:
    """The signature of ``payload``: of its JSON with sorted keys, so that layout does not matter."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def check(payload: dict, signature: object, key: bytes) -> None:
    if not isinstance(signature, str) or not hmac.compare_digest(signature, sign(payload, key)):
        raise ForgedResults("its signature does not match its contents: it was changed after grading, or signed with another key")
