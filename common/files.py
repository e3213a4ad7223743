"""File-system durability helpers used by every program that writes files it must keep."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path

#: Read size for hashing whole files: large enough that the hash, not the system calls, is
#: the cost.
_HASH_BLOCK = 1024 * 1024


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new names, renames, unlinks) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` to ``fd``; os.write may write less than it is given."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def sha256_file(path: Path) -> str:
    """The SHA-256 of a whole file, as lowercase hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, replace: bool = True) -> None:
    """Write ``data`` as the whole content of ``path`` (created with ``mode``), atomically:
    a temporary file in the same directory, synced, then renamed into place, and the
    directory synced, so that a reader never sees a mixture, even after a crash.

    With ``replace=False`` an existing ``path`` is never replaced (``FileExistsError``).
    """
    temp = path.with_name(f".tmp-{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_dir(path.parent)
