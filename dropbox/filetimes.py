"""File times that date nothing finer than a day, and files that go without a dated trace.

The database keeps days only (dropbox/db.py); the file system would keep more: every inode
has a modification, access and change time, and a freed inode keeps its deletion time. So:

- :func:`settle` sets a file's (or directory's) access and modification times to 00:00 UTC
  of the day of its modification, right after every write, and the parent directory's after
  every name made, renamed or removed in it. (The data file system is mounted ``noatime``,
  so reads change nothing; it has 128-byte inodes, so there is no creation time to keep.)
- The change time no program can set: the kernel sets it to the present at every change,
  :func:`settle` included. :func:`blur` runs once a day (dropbox/sweep.py's thread, and at
  every start) and settles every file and directory of the data directory at once, so that
  afterwards every change time is the moment of that blur, which dates no source's action.
  Until the next blur, the files changed since the last one keep their change time: what a
  seizure of a running server sees (docs/threat-model.md, "Seizure").
- An inode freed by ``unlink`` keeps the moment of its deletion, to the second. So nothing
  is unlinked while the server serves: :func:`discard` overwrites a file with zeros, cuts it
  to nothing and renames it to a random ``.discarded-*`` name, and the next blur unlinks
  every discarded file at once (all freed at the moment of the blur).

Nothing here reads a clock: days come from the times the kernel wrote.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Final

_log = logging.getLogger(__name__)

DAY_NS: Final = 86_400 * 1_000_000_000
#: The names of discarded files, waiting for the next blur to be unlinked.
DISCARDED_PREFIX: Final = ".discarded-"
_ZEROS: Final = bytes(1 << 20)


def day_of(ns: int) -> int:
    """00:00 UTC of the day of ``ns`` (nanoseconds since the epoch), in nanoseconds."""
    return ns - ns % DAY_NS


def settle(path: Path | str, *, always: bool = False) -> None:
    """Set the access and modification times of ``path`` to the day of its modification.

    Skipped when they are that day already, unless ``always`` (the blur: setting them is
    what sets the change time). Does not follow a symbolic link. A path gone meanwhile is fine.
    """
    try:
        info = os.stat(path, follow_symlinks=False)
        day = day_of(info.st_mtime_ns)
        if always or info.st_mtime_ns != day or info.st_atime_ns != day:
            os.utime(path, ns=(day, day), follow_symlinks=False)
    except FileNotFoundError:
        return


def settle_fd(fd: int) -> None:
    """:func:`settle` for an open file."""
    day = day_of(os.fstat(fd).st_mtime_ns)
    os.utime(fd, ns=(day, day))


def settle_with_parent(path: Path) -> None:
    """Settle ``path`` and the directory holding it (after a name was made or changed)."""
    settle(path)
    settle(path.parent)


def overwrite(fd: int) -> None:
    """Overwrite an open file's bytes with zeros, in place, and flush them to the disk."""
    size = os.fstat(fd).st_size
    done = 0
    while done < size:
        done += os.pwrite(fd, _ZEROS[: min(len(_ZEROS), size - done)], done)
    os.fsync(fd)


def discard(path: Path) -> bool:
    """Overwrite ``path`` with zeros, empty it and rename it to a ``.discarded-*`` name in its
    directory, for the next :func:`blur` to unlink; whether there was a file to discard.

    Its name is gone at once; its inode is freed only at the blur, so its deletion time is
    the blur's. On this file system (ext4 without a journal, see docs/operations.md) the
    zeros land on the blocks that held the bytes.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        overwrite(fd)
        os.ftruncate(fd, 0)
        settle_fd(fd)
    finally:
        os.close(fd)
    try:
        os.rename(path, path.parent / f"{DISCARDED_PREFIX}{secrets.token_hex(16)}")
    except FileNotFoundError:
        return False  # removed meanwhile by another discard
    settle(path.parent)
    return True


def blur(data_dir: Path) -> int:
    """The daily blur: unlink every discarded file, then settle every file and directory of
    ``data_dir`` (itself included) at once; return how many were settled.

    Files that cannot be settled (not the server's: lost+found when the operator left it to
    root) are skipped and counted in one log line.
    """
    for directory, _dirs, files in os.walk(data_dir):
        for name in files:
            if name.startswith(DISCARDED_PREFIX):
                _unlink_discarded(os.path.join(directory, name))
    settled = refused = 0
    for path in _everything(data_dir):
        try:
            settle(path, always=True)
            settled += 1
        except PermissionError:
            refused += 1
    # Directories last were settled after their files: the unlinks above changed them.
    if refused:
        _log.warning("the daily blur could not settle %d path(s) not owned by the server", refused)
    return settled


def _unlink_discarded(path: str) -> None:
    """Unlink a discarded file; overwrite it first if a writer that still held it when it was
    discarded (an append in flight) wrote into it since."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if os.fstat(fd).st_size:
            overwrite(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _everything(root: Path) -> Iterator[str]:
    """Every file and directory under ``root``, each directory after what it holds."""
    for directory, dirs, files in os.walk(root, topdown=False):
        for name in (*files, *dirs):
            yield os.path.join(directory, name)
    yield str(root)
