"""File-system durability helpers used by every program that writes files it must keep."""

from __future__ import annotations

import hashlib
import os
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
