"""The keyring file on disk: wrapped by the KEK, written atomically, changed under a lock.

File layout: magic ``PHIKR`` | format byte | KEK id length (1 byte) | KEK id (ASCII) |
the KEK's wrapping of the keyring JSON. Magic, format and KEK id are the wrap's
associated data, so a file cannot be relabelled to another KEK.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal.core.phi.errors import KeyringError, KeyringMissingError
from portal.core.phi.kek import KeyEncryptionKey
from portal.core.phi.keyring import Keyring

MAGIC = b"PHIKR"
FILE_FORMAT = 1


def load(path: Path, kek: KeyEncryptionKey) -> Keyring:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyringMissingError(f"no PHI keyring at {path}") from None
    if raw[:5] != MAGIC or len(raw) < 7 or raw[5] != FILE_FORMAT:
        raise KeyringError(f"{path} is not a PHI keyring file (format {FILE_FORMAT})")
    end = 7 + raw[6]
    kek_id = raw[7:end].decode("ascii", "replace")
    if kek_id != kek.key_id:
        raise KeyringError(
            f"keyring {path} was wrapped by KEK {kek_id}, but PHI_KEK is {kek.key_id}: "
            "configure the KEK that was in use when the keyring was written"
        )
    document = kek.unwrap(raw[end:], raw[:end])
    return Keyring.from_json(json.loads(document))


def save(path: Path, kek: KeyEncryptionKey, keyring: Keyring) -> None:
    """Write to a temporary file, fsync, then rename: a crash leaves the old or the new keyring."""
    kek_id = kek.key_id.encode("ascii")
    head = MAGIC + bytes((FILE_FORMAT, len(kek_id))) + kek_id
    blob = head + kek.wrap(json.dumps(keyring.to_json()).encode(), head)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".keyring-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the keyring between concurrent CLI runs on one host."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
